"""Every bad input is one clear line: exit status 2, one line on stderr, no traceback.

Each case builds its tiny bad input in ``tmp_path`` and runs the CLI in-process; the two
trained runs it needs (a language model and a sequence classifier) are trained once.
"""

from __future__ import annotations

import ast
import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from tests.data.test_imdb import make_archive
from tests.data.test_sequences import ragged, write_padded_npz
from tests.data.test_textfiles import reviews, write_csv
from tests.data.test_timeseries import write_csv as write_series_csv

# With data.accept_modified=true a home-made archive is read after a warning; these
# cases are about the error that follows.
pytestmark = pytest.mark.filterwarnings("ignore::rnnkit.data.errors.ChecksumWarning")

REPO = Path(__file__).resolve().parents[2]
QUICK = [
    "--set=train.max_epochs=1",
    "--set=train.progress_bar=false",
    "--set=train.trainer.num_sanity_val_steps=0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained language model (``hello``) and a sequence classifier (``sequences``)."""
    root = tmp_path_factory.mktemp("runs")
    data = write_padded_npz(root / "seq.npz", *ragged(40))
    lm, classifier = root / "hello", root / "classifier"
    assert main(["train", "hello", "--out", str(lm), *QUICK]) == 0
    small = ["--set=data.batch_size=8", "--set=model.rnn.hidden_size=4", f"--set=data.path={data}"]
    assert main(["train", "sequences", "--out", str(classifier), *QUICK, *small]) == 0
    return {"lm": lm, "classifier": classifier}


def _copy_run(source: Path, tmp: Path) -> Path:
    import shutil

    return Path(shutil.copytree(source, tmp / "run"))


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _file(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _train(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["train", *QUICK, *args, "--out", str(tmp / "out")]


def _with_file(
    recipe: str, name: str, content: str | bytes, *sets: str
) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = _file(tmp, name, content)
        return [*_train(recipe, f"--set=data.path={path}", *sets)(tmp)]

    return build


def _config(content: str | bytes) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        return ["train", "--config", str(_file(tmp, "run.yaml", content)), "--out", str(tmp / "o")]

    return build


def _npz(x: np.ndarray, y: np.ndarray, truncate: bool = False) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = tmp / "seq.npz"
        np.savez(path, x=x, y=y)
        if truncate:
            _truncate(path)
        return _train("sequences", f"--set=data.path={path}", "--set=data.batch_size=4")(tmp)

    return build


def _series(*rows: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = write_series_csv(tmp / "s.csv", rows=[*rows])
        return _train("stock", f"--set=data.path={path}")(tmp)

    return build


def _imdb(*, truncate: bool, accept: bool) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        archive = make_archive(tmp / "data")
        if truncate:
            _truncate(archive)
        accepting = ["--set=data.accept_modified=true"] if accept else []
        return [*_train("imdb", "--data-dir", str(tmp / "data"), *accepting)(tmp)]

    return build


def _gzip_idx(tmp: Path) -> list[str]:
    folder = tmp / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    noise = np.random.default_rng(0).bytes(4000)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        _truncate(_file(folder, f"{name}.gz", gzip.compress(b"\0\0\x08\x01" + noise)))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _file(folder, f"{name}.gz", gzip.compress(b"\0\0\x08\x01" + noise))
    sets = ["--set=data.accept_modified=true"]
    return _train("fashion-mnist", "--data-dir", str(tmp / "data"), *sets)(tmp)


def _reuters_truncated(tmp: Path) -> list[str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = np.random.default_rng(0).bytes(50_000)
        info = tarfile.TarInfo("reut2-000.sgm")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    _file(tmp / "data" / "reuters21578", "reuters21578.tar.gz", buffer.getvalue()[:20_000])
    sets = ["--set=data.accept_modified=true"]
    return _train("reuters", "--data-dir", str(tmp / "data"), *sets)(tmp)


def _latin1_csv(tmp: Path) -> list[str]:
    rows = "".join(f"caf\xe9 cr\xe8me {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20))
    path = _file(tmp, "latin1.csv", ("text,label\n" + rows).encode("latin-1"))
    return _train("text", f"--set=data.path={path}")(tmp)


def _run_file(
    run: str, name: str, damage: Callable[[Path], object], *command: str
) -> Callable[[Path, dict[str, Path]], list[str]]:
    def build(tmp: Path, runs: dict[str, Path]) -> list[str]:
        copy = _copy_run(runs[run], tmp)
        damage(copy / name)
        return [command[0], str(copy), *command[1:]]

    return build


def _on_run(run: str, *command: str) -> Callable[[Path, dict[str, Path]], list[str]]:
    return lambda tmp, runs: [command[0], str(runs[run]), *command[1:]]


def _swap_weights(tmp: Path, runs: dict[str, Path]) -> list[str]:
    copy = _copy_run(runs["classifier"], tmp)
    (copy / "model.safetensors").write_bytes((runs["lm"] / "model.safetensors").read_bytes())
    return ["evaluate", str(copy)]


def _incomplete_export(tmp: Path, runs: dict[str, Path]) -> list[str]:
    copy = _copy_run(runs["classifier"], tmp)
    (copy / "model.safetensors").unlink()
    return ["export", str(copy), "--format", "onnx", "--out", str(tmp / "m.onnx")]


def _used_out(tmp: Path) -> list[str]:
    _file(tmp / "out", "notes.txt", "mine")
    return _train("hello")(tmp)


NAN = np.ones((12, 5, 2))
NAN[3, 2, 1] = np.nan
INF = np.ones((12, 5, 2))
INF[7, 0, 0] = np.inf
LABELS = np.arange(12) % 2
BAD_YAML = "name: x\ndata: {name: hello\n"
CSV = "text,label\n"

CASES: dict[str, Callable[..., list[str]]] = {
    # recipes and --set
    "unknown recipe": lambda tmp: ["train", "hellow"],
    "show an unknown recipe": lambda tmp: ["recipes", "hellow"],
    "--set without =": _train("hello", "--set", "train.max_epochs"),
    "--set unknown top-level key": _train("hello", "--set", "trian.max_epochs=1"),
    "--set unknown data option": _train("hello", "--set", "data.batchsize=4"),
    "--set data.batch_size=0": _train("hello", "--set", "data.batch_size=0"),
    "--set batch size a word": _train("hello", "--set", "data.batch_size=eight"),
    "--set batch size a list": _train("hello", "--set", "data.batch_size=[8]"),
    "--set batch size a bool": _train("hello", "--set", "data.batch_size=true"),
    "--set negative num_workers": _train("hello", "--set", "data.num_workers=-1"),
    "--set negative lr": _train("hello", "--set", "optimizer.lr=-0.1"),
    "--set lr a word": _train("hello", "--set", "optimizer.lr=fast"),
    "--set unknown optimiser": _train("hello", "--set", "optimizer.name=adamm"),
    "--set max_epochs=0": _train("hello", "--set", "train.max_epochs=0"),
    "--set unknown cell": _train("hello", "--set", "model.rnn.cell=lstn"),
    "--set negative hidden size": _train("hello", "--set", "model.rnn.hidden_size=-3"),
    "--set model.rnn a number": _train("hello", "--set", "model.rnn=5"),
    "--set unknown task": _train("hello", "--set", "task.name=clasification"),
    "--set unknown dataset": _train("hello", "--set", "data.name=helo"),
    "--set a Trainer typo": _train("hello", "--set", "train.trainer.stratgy=ddp"),
    "--set a Trainer value": _train("hello", "--set", "train.trainer.accumulate_grad_batches=0"),
    "--set a Trainer type": _train("hello", "--set", "train.trainer.max_steps=many"),
    "--set bad YAML value": _train("hello", "--set", "data.batch_size=[8"),
    "--set val_fraction 1.5": _train("digits", "--set", "data.val_fraction=1.5"),
    # YAML files
    "missing YAML": lambda tmp: ["train", "--config", str(tmp / "nope.yaml")],
    "empty YAML": _config(""),
    "malformed YAML": _config(BAD_YAML),
    "list-valued YAML": _config("- name: hello\n- data: x\n"),
    "YAML without a name": _config("data: {name: hello}\nmodel: {name: x}\ntask: {name: y}\n"),
    "YAML with an unknown key": _config("name: x\ntask: {name: a}\ndata: {}\nmodel: {}\nfoo: 1\n"),
    "YAML not UTF-8": _config(b"name: caf\xe9\n\xff\xfe"),
    # datasets and archives
    "text without data.path": _train("text"),
    "text data.path missing": _train("text", "--set=data.path=/no/such/reviews.csv"),
    "empty CSV": _with_file("text", "r.csv", ""),
    "CSV with the header only": _with_file("text", "r.csv", CSV),
    "CSV without the text column": _with_file("text", "r.csv", "review,label\nfun,pos\n"),
    "CSV with a ragged row": _with_file("text", "r.csv", CSV + "fun,pos\nbad,neg,extra\n"),
    "CSV mostly not UTF-8": _latin1_csv,
    "sequences with NaN": _npz(NAN, LABELS),
    "sequences with inf": _npz(INF, LABELS),
    "truncated .npz": _npz(np.ones((200, 50, 3)), np.arange(200) % 2, truncate=True),
    "empty .npz": _with_file("sequences", "s.npz", b""),
    "series with a missing value": _series("2020-01-01,1,2,0,1,1,100", "2020-01-02,1,,0,1,1,100"),
    "series with a word for a number": _series(
        "2020-01-01,1,2,0,1,1,100", "2020-01-02,1,x,0,1,1,9"
    ),
    "modified archive without accept_modified": _imdb(truncate=False, accept=False),
    "truncated .tar.gz": _imdb(truncate=True, accept=True),
    "truncated .tar.gz read in random-access mode": _reuters_truncated,
    "truncated .gz": _gzip_idx,
    "text stream mostly not UTF-8": _with_file("char-lm", "t.txt", b"\xff\xfe\xfa\n" * 30),
    "used --out": _used_out,
    "--resume a missing run": lambda tmp: ["train", "--resume", str(tmp / "nothing")],
    # run directories
    "evaluate a missing run": lambda tmp: ["evaluate", str(tmp / "nothing")],
    "evaluate an empty directory": lambda tmp: ["evaluate", str(tmp)],
    "gradflow with an unknown cell": lambda tmp: ["gradflow", "--cells", "lstn", "--out", str(tmp)],
    "gradflow with one step": lambda tmp: ["gradflow", "--steps", "1", "--out", str(tmp)],
}

RUN_CASES: dict[str, Callable[[Path, dict[str, Path]], list[str]]] = {
    "truncated weights": _run_file("classifier", "model.safetensors", _truncate, "evaluate"),
    "truncated config": _run_file(
        "classifier", "config.yaml", lambda p: p.write_text("name: [x\n"), "evaluate"
    ),
    "truncated data state": _run_file(
        "classifier", "data_state.json", _truncate, "predict", "--input", "x.npz"
    ),
    "weights of another run": _swap_weights,
    "text for a sequence classifier": _on_run("classifier", "predict", "a great film"),
    "predict a missing input file": _on_run("classifier", "predict", "--input", "/no/x.npz"),
    "predict inputs and --input": _on_run("classifier", "predict", "x", "--input", "y.npz"),
    "predict without inputs": _on_run("classifier", "predict"),
    "predict with batch size 0": _on_run("lm", "predict", "hell", "--batch-size", "0"),
    "generate from a classifier": _on_run("classifier", "generate", "--prompt", "hi"),
    "generate at temperature 0": _on_run("lm", "generate", "--prompt", "h", "--temperature", "0"),
    "generate a negative length": _on_run("lm", "generate", "--prompt", "h", "--length", "-1"),
    "generate an unknown character": _on_run("lm", "generate", "--prompt", "xyz"),
    "export an incomplete run": _incomplete_export,
    "export to an unknown format": _on_run(
        "classifier", "export", "--format", "tflite", "--out", "m.tflite"
    ),
    "export with an unknown quantisation": _on_run(
        "classifier", "export", "--format", "onnx", "--quantize", "int4", "--out", "m.onnx"
    ),
}


def _assert_one_line_error(code: int, err: str, command: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rnnkit {command}: error: "), err


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_and_exit_status_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = CASES[case](tmp_path)
    capsys.readouterr()
    code = main(argv)
    _assert_one_line_error(code, capsys.readouterr().err, argv[0])


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_a_bad_input_to_a_trained_run_is_one_line_and_exit_status_2(
    case: str,
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = RUN_CASES[case](tmp_path, runs)
    capsys.readouterr()
    code = main(argv)
    _assert_one_line_error(code, capsys.readouterr().err, argv[0])


def test_there_are_forty_bad_inputs_or_more() -> None:
    assert len(CASES) + len(RUN_CASES) >= 40


def test_the_library_never_prints() -> None:
    calls = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sorted((REPO / "rnnkit").rglob("*.py"))
        if "cli" not in path.relative_to(REPO / "rnnkit").parts[:1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
    ]
    assert calls == []
    texts = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "rnnkit").rglob("*.py"))
        if path.parent.name != "cli" and "print(" in path.read_text(encoding="utf-8")
    ]
    assert texts == []


@pytest.mark.parametrize("checkpointed", [False, True])
def test_a_failed_run_says_what_it_left(
    checkpointed: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rnnkit.data.errors import DataFormatError
    from rnnkit.training import run as run_module

    def fails_late(config: object, run_dir: Path, *args: object, **kwargs: object) -> None:
        _file(run_dir, "config.yaml", "name: hello\n")
        if checkpointed:
            _file(run_dir, run_module.CHECKPOINT_FILE, b"an epoch's checkpoint")
        raise DataFormatError("test.csv, line 9: expected a number, found 'x'")

    monkeypatch.setattr(run_module, "_train", fails_late)
    out = tmp_path / "run"
    assert main(["train", "hello", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("rnnkit train: error: test.csv, line 9: expected a number")
    if checkpointed:
        assert line.endswith(f"{out} keeps its last completed epoch: rnnkit train --resume {out} "
                             "continues it")  # fmt: skip
        assert (out / "config.yaml").exists()
    else:
        assert line.endswith(f"nothing of it was kept in {out}; the same command can run again")
        assert not out.exists()


def test_replaced_bytes_are_one_warning_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "r.csv", reviews(40))
    path.write_bytes(path.read_bytes() + b"caf\xe9 scene,pos\n")  # one stray Latin-1 byte
    sets = ["--set=data.batch_size=8", "--set=model.rnn.hidden_size=4", f"--set=data.path={path}"]
    assert main(["train", "text", "--out", str(tmp_path / "run"), *QUICK, *sets]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("rnnkit: warning")]
    assert warnings == [
        f"rnnkit: warning: data: 1 files decoded as UTF-8; 1 invalid bytes in 1 files replaced "
        f"by U+FFFD: {path} (1)"
    ]
    assert "U+FFFD" not in captured.out
