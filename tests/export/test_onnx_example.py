"""``examples/onnx_inference.py``: exported runs applied with onnxruntime and NumPy only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from rnnkit.cli import main
from tests.cli.test_recipes_e2e import SMALL_DIGITS, TINY
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "onnx_inference.py"

# Runs the example's main() in a fresh interpreter, then says which packages it imported.
RUNNER = """
import json, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
print(json.dumps({"rnnkit": "rnnkit" in sys.modules, "torch": "torch" in sys.modules}))
"""


def _exported(tmp: Path, recipe: str, extra: list[str]) -> Path:
    run = tmp / recipe
    assert main(["train", recipe, "--out", str(run), *(f"--set={o}" for o in TINY + extra)]) == 0
    out = tmp / f"{recipe}.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("example")
    text = tmp / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 60)
    char_lm = [f"data.path={text}", "data.block_size=16", "model.rnn.hidden_size=8"]
    return {
        "digits": _exported(tmp, "digits", SMALL_DIGITS),
        "char-lm": _exported(tmp, "char-lm", char_lm),
    }


def _run_example(*args: str) -> tuple[list[str], dict[str, bool]]:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *lines, imported = done.stdout.rstrip("\n").split("\n")
    return lines, json.loads(imported)


def _digit_png(path: Path) -> np.ndarray:
    from rnnkit.data.datasets.digits import bundled_digits_path, read_digits

    images, _ = read_digits(bundled_digits_path())
    image = 255 - images[3]  # dark ink on white, as a scan: the example inverts it
    matplotlib.image.imsave(path, image, cmap="gray", vmin=0, vmax=255)
    return images[3]


def test_the_example_classifies_a_digit_png_as_rnnkit_does(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    png = tmp_path / "digit.png"
    _digit_png(png)
    lines, imported = _run_example("classify", str(exported["digits"]), str(png))
    assert imported == {"rnnkit": False, "torch": False}
    label = lines[-1].split(": ", 1)[1].split(" ")[0]

    from rnnkit.training.predict import predict
    from rnnkit.training.run import load_run

    expected = predict(load_run(exported["digits"].parent / "digits"), [str(png)], top=1)
    assert label == expected[0]["label"]


def test_the_example_generates_100_characters_from_the_char_lm(exported: dict[str, Path]) -> None:
    prompt = "to be"
    lines, imported = _run_example(
        "generate", str(exported["char-lm"]), "--prompt", prompt, "--length", "100"
    )
    assert imported == {"rnnkit": False, "torch": False}
    text = "\n".join(lines)
    assert text.startswith(prompt) and len(text) == len(prompt) + 100
    assert set(text) <= set("to be or not to be, that is the question. ")
