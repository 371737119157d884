"""Text classification from your own files: every format, every bad-data case, the splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import DataFormatError, DataNotFoundError
from rnnkit.data.datasets.textfiles import (
    TextFilesDataModule,
    label_names,
    read_labelled_texts,
    read_text_rows,
    to_corpus,
)

POSITIVE = ["a great film", "loved it", "wonderful acting", "great fun", "superb story"]
NEGATIVE = ["a dull film", "hated it", "awful acting", "boring mess", "terrible story"]


def write_csv(path: Path, rows: list[tuple[str, str]], *, delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def reviews(n: int = 40) -> list[tuple[str, str]]:
    """``n`` labelled sentences, half of each class, words that tell them apart."""
    rows = []
    for i in range(n // 2):
        rows.append((f"{POSITIVE[i % 5]} number {i}", "pos"))
        rows.append((f"{NEGATIVE[i % 5]} number {i}", "neg"))
    return rows


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -- formats --------------------------------------------------------------------------


def test_csv_rows_carry_their_line_numbers_even_across_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('text,label\n"first\nspans two lines",pos\nsecond,neg\n', encoding="utf-8")
    texts = read_labelled_texts(path)
    assert texts.texts == ["first\nspans two lines", "second"]
    assert texts.labels == [["pos"], ["neg"]]
    assert texts.where == [f"{path}:2", f"{path}:4"]


def test_tsv_and_any_delimiter_and_column_names(tmp_path: Path) -> None:
    tsv = write_csv(tmp_path / "r.tsv", [("good, very good", "pos")], delimiter="\t")
    assert read_labelled_texts(tsv).texts == ["good, very good"]
    semi = tmp_path / "r.txt"
    semi.write_text("body;topic\nhello;greeting\n", encoding="utf-8")
    got = read_labelled_texts(
        semi, format="csv", delimiter=";", text_column="body", label_column="topic"
    )
    assert got.texts == ["hello"] and got.labels == [["greeting"]]


def test_jsonl_with_numbers_as_labels(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0}])
    got = read_labelled_texts(path)
    assert got.labels == [["1"], ["0"]] and got.where[1] == f"{path}:2"
    assert label_names([["10"], ["2"], ["1"]]) == ["1", "2", "10"]  # numeric order


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"text": ["good", "bad"], "label": ["pos", "neg"]}), path)
    got = read_labelled_texts(path)
    assert got.texts == ["good", "bad"] and got.where == [f"{path}, row 1", f"{path}, row 2"]
    with pytest.raises(
        DataFormatError, match=r"expected column\(s\) \['body'\].*\['text', 'label'\]"
    ):
        read_labelled_texts(path, text_column="body")


def test_folder_per_class_in_natural_order(tmp_path: Path) -> None:
    for label, names in (("pos", ["10.txt", "2.txt"]), ("neg", ["1.txt"])):
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).write_text(f"{label} {name}", encoding="utf-8")
    got = read_labelled_texts(tmp_path)
    assert got.texts == ["neg 1.txt", "pos 2.txt", "pos 10.txt"]
    assert got.labels == [["neg"], ["pos"], ["pos"]]
    with pytest.raises(DataFormatError, match="no folders"):
        read_labelled_texts(tmp_path / "neg")


def test_multi_label_cells_split_on_the_separator_or_come_as_lists(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [{"text": "a", "label": "x|y"}, {"text": "b", "label": ["y"]}, {"text": "c", "label": ""}],
    )
    got = read_labelled_texts(path, multi_label=True)
    assert got.labels == [["x", "y"], ["y"], []]
    corpus = to_corpus(got, ["x", "y"], multi_label=True)
    assert corpus.labels.tolist() == [[1, 1], [0, 1], [0, 0]] and corpus.multi_label


# -- bad data -------------------------------------------------------------------------


def test_a_missing_column_names_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("review,sentiment\ngood,pos\n", encoding="utf-8")
    with pytest.raises(
        DataFormatError, match=r"line 1.*\['text', 'label'\].*\['review', 'sentiment'\]"
    ):
        read_labelled_texts(path)
    jsonl = write_jsonl(tmp_path / "r.jsonl", [{"text": "a", "label": "x"}, {"text": "b"}])
    with pytest.raises(DataFormatError, match=r"line 2.*\['label'\].*columns are \['text'\]"):
        read_labelled_texts(jsonl)


def test_a_row_with_another_field_count_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("text,label\ngood,pos\ngood, really,pos\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 3: expected 2 fields.*found 3.*quote"):
        read_labelled_texts(path)


def test_invalid_json_and_missing_labels_name_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="line 2: expected a JSON object"):
        read_labelled_texts(bad)
    unlabelled = tmp_path / "u.csv"
    unlabelled.write_text("text,label\ngood,pos\nmeh,\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"u\.csv:3, column 'label': expected a label"):
        read_labelled_texts(unlabelled)


def test_empty_texts_are_counted_and_named_not_silently_dropped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [*reviews(20), ("   ", "pos"), ("", "neg")])
    got = read_labelled_texts(path)
    assert len(got) == 20 and got.empty == [f"{path}:22", f"{path}:23"]
    dm = TextFilesDataModule(path=str(path), batch_size=4, val_fraction=0.2, test_fraction=0.2)
    dm.setup()
    assert sum(dm.split_sizes.values()) == 20
    assert dm.data_report["empty_texts"] == {"policy": "drop", "count": 2, "where": got.empty}
    strict = TextFilesDataModule(path=str(path), empty="error")
    with pytest.raises(DataFormatError, match=r"2 document\(s\) have an empty text.*r\.csv:22"):
        strict.setup()


def test_texts_with_no_tokens_are_counted_too(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [*reviews(20), ("--", "pos")])
    dm = TextFilesDataModule(path=str(path), tokenizer=lambda t: t.split() if t != "--" else [])
    dm.setup()
    assert dm.data_report["empty_texts"]["count"] == 1
    assert dm.data_report["empty_texts"]["where"] == [f"{path}:22"]


def test_a_test_label_the_training_file_never_had_is_named(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", reviews(20))
    test = write_csv(tmp_path / "test.csv", [("fine", "pos"), ("so so", "neutral")])
    dm = TextFilesDataModule(train_path=str(train), test_path=str(test))
    with pytest.raises(DataFormatError, match=r"labels \['neg', 'pos'\]: .*test\.csv:3: 'neutral'"):
        dm.setup()


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews(20))
    path.write_bytes(path.read_bytes() + b"caf\xe9 scene,pos\n")
    got = read_labelled_texts(path)
    assert got.texts[-1] == "caf\ufffd scene" and got.report.replaced_bytes == 1
    dm = TextFilesDataModule(path=str(path))
    dm.setup()
    assert dm.decode_report.replaced_bytes == 1
    assert dm.data_report["decode"]["replaced_bytes"] == 1


def test_missing_files_and_missing_path_are_clear(tmp_path: Path) -> None:
    with pytest.raises(
        DataNotFoundError, match=r"expected data\.path.*--set data\.path=reviews\.csv"
    ):
        TextFilesDataModule().prepare_data()
    with pytest.raises(DataNotFoundError, match=r"none\.csv"):
        TextFilesDataModule(path=str(tmp_path / "none.csv")).prepare_data()
    with pytest.raises(DataFormatError, match=r"suffix '\.xlsx'"):
        (tmp_path / "r.xlsx").write_text("x")
        read_labelled_texts(tmp_path / "r.xlsx")
    with pytest.raises(ValueError, match="not both"):
        TextFilesDataModule(path="a.csv", train_path="b.csv")


def test_one_label_is_not_a_classification(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [("a", "pos"), ("b", "pos")])
    with pytest.raises(DataFormatError, match="at least two distinct labels"):
        TextFilesDataModule(path=str(path)).setup()


def test_read_text_rows_streams_a_plain_file_one_text_per_line(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    path.write_text("great film\n\ndull\n", encoding="utf-8")
    rows = list(read_text_rows(path))
    assert rows == [
        (f"{path}:1", {"text": "great film"}),
        (f"{path}:2", {"text": ""}),
        (f"{path}:3", {"text": "dull"}),
    ]


# -- the DataModule -------------------------------------------------------------------


def test_one_file_is_split_stratified_with_the_seed(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews(100))
    dm = TextFilesDataModule(path=str(path), batch_size=8, test_fraction=0.2, val_fraction=0.25)
    dm.setup()
    assert dm.split_sizes == {"train": 60, "val": 20, "test": 20}
    assert dm.class_names == ["neg", "pos"] and dm.num_classes == 2
    for name in ("train_set", "val_set", "test_set"):
        assert np.bincount(getattr(dm, name).labels).tolist()[0] * 2 == len(getattr(dm, name))
    again = TextFilesDataModule(path=str(path), batch_size=8, test_fraction=0.2, val_fraction=0.25)
    again.setup()
    assert again.test_set.ids.tolist() == dm.test_set.ids.tolist()
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.dtype == torch.long and batch.targets.shape == (8,)
    assert dm.data_report["label_counts"]["train"] == {"neg": 30, "pos": 30}


def test_explicit_train_validation_and_test_files(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", reviews(40))
    val = write_csv(tmp_path / "val.csv", reviews(10))
    test = write_csv(tmp_path / "test.csv", reviews(12))
    dm = TextFilesDataModule(train_path=str(train), val_path=str(val), test_path=str(test))
    dm.setup()
    assert dm.split_sizes == {"train": 40, "val": 10, "test": 12}
    carved = TextFilesDataModule(train_path=str(train), test_fraction=0.25, val_fraction=0.0)
    carved.setup()
    assert carved.split_sizes == {"train": 30, "val": 0, "test": 10}


def test_label_names_are_kept_in_the_data_state(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews(40))
    dm = TextFilesDataModule(path=str(path), text_column="text")
    dm.setup()
    state = json.loads(json.dumps(dm.state_dict()))  # plain JSON
    assert state["class_names"] == ["neg", "pos"] and state["text_column"] == "text"
    fresh = TextFilesDataModule(path=str(tmp_path / "gone.csv"))
    fresh.load_state_dict(state)
    assert fresh.class_names == ["neg", "pos"] and fresh.vocab == dm.vocab


def test_fixed_label_order_and_labels_outside_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", reviews(40))
    dm = TextFilesDataModule(path=str(path), labels=["pos", "neg"])
    dm.setup()
    assert dm.class_names == ["pos", "neg"]
    with pytest.raises(DataFormatError, match=r"labels \['pos'\] are not among data\.labels"):
        TextFilesDataModule(path=str(path), labels=["neg", "other"]).setup()


def test_multi_label_batches_have_multi_hot_targets(tmp_path: Path) -> None:
    records = [{"text": f"sport and politics {i}", "label": "sport|politics"} for i in range(10)]
    records += [{"text": f"only sport {i}", "label": "sport"} for i in range(10)]
    path = write_jsonl(tmp_path / "m.jsonl", records)
    dm = TextFilesDataModule(path=str(path), multi_label=True, batch_size=4)
    dm.setup()
    assert dm.class_names == ["politics", "sport"]
    batch = next(iter(dm.train_dataloader()))
    assert batch.targets.dtype == torch.float32 and batch.targets.shape == (4, 2)
    assert dm.data_report["label_counts"]["train"]["sport"] == len(dm.train_set)
    with pytest.raises(DataFormatError, match="multi_label needs"):
        read_labelled_texts(tmp_path, multi_label=True, format="folder")


# -- real data: IMDB written as a CSV and as a folder per class ------------------------


def _write_imdb_csv(corpus, path: Path) -> Path:
    rows = [
        (t, corpus.class_names[int(y)]) for t, y in zip(corpus.texts, corpus.labels, strict=True)
    ]
    return write_csv(path, rows)


def _write_imdb_folders(corpus, root: Path) -> Path:
    for text, label, name in zip(corpus.texts, corpus.labels, corpus.ids, strict=True):
        path = root / corpus.class_names[int(label)] / f"{name.rsplit('/', 1)[1]}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_real_imdb_as_csv_and_as_folders_reads_the_same_reviews(imdb_real, tmp_path: Path) -> None:
    for split in ("train", "test"):
        corpus = imdb_real[split]
        expected = [[corpus.class_names[int(y)]] for y in corpus.labels]
        from_csv = read_labelled_texts(_write_imdb_csv(corpus, tmp_path / f"{split}.csv"))
        from_folders = read_labelled_texts(_write_imdb_folders(corpus, tmp_path / split))
        for got in (from_csv, from_folders):
            assert len(got) == 25_000 and not got.empty
            assert got.texts == corpus.texts and got.labels == expected  # same order, too


@pytest.mark.slow
def test_real_imdb_from_csv_trains_to_the_imdb_recipes_accuracy(
    shared_data: Path, tmp_path: Path
) -> None:
    from rnnkit.api import build_config
    from rnnkit.data.datasets.imdb import find_imdb, read_imdb
    from rnnkit.recipes import load_recipe
    from rnnkit.training.run import train

    corpora = read_imdb(find_imdb(shared_data))
    paths = {s: _write_imdb_csv(corpora[s], tmp_path / f"{s}.csv") for s in ("train", "test")}
    same = ["data.limit=2000", "train.max_epochs=1", "train.progress_bar=false"]
    imdb = train(
        build_config("imdb", overrides=same), run_dir=tmp_path / "imdb", data_dir=shared_data
    )
    recipe = load_recipe("imdb")
    recipe["data"] = {
        **recipe["data"],
        "name": "text",
        "train_path": str(paths["train"]),
        "test_path": str(paths["test"]),
    }
    text = train(build_config(recipe, overrides=same), run_dir=tmp_path / "text")
    assert imdb.metrics["test_acc"] > 0.7
    assert abs(text.metrics["test_acc"] - imdb.metrics["test_acc"]) <= 0.01
