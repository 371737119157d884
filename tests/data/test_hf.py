"""Local Hugging Face datasets (``data.name: hf``); skipped without the datasets package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.data import DataFormatError, DataNotFoundError
from rnnkit.data.datasets.hf import HFDataModule, load_hf_dataset

datasets = pytest.importorskip("datasets", reason="the optional extra rnnkit[hf] is not installed")

POS = ["a great film", "loved it", "wonderful acting", "great fun"]
NEG = ["a dull film", "hated it", "awful acting", "boring mess"]


def _rows(n: int) -> dict[str, list]:
    texts = [f"{(POS if i % 2 else NEG)[i % 4]} {i}" for i in range(n)]
    return {"text": texts, "label": [i % 2 for i in range(n)]}


def saved_imdb_like(root: Path) -> Path:
    """A DatasetDict with train/test splits and a ClassLabel, saved with save_to_disk."""
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(_rows(40), features=features),
            "test": datasets.Dataset.from_dict(_rows(10), features=features),
        }
    )
    path = root / "imdb_hf"
    dd.save_to_disk(str(path))
    return path


def test_a_saved_dataset_dict_with_class_labels(tmp_path: Path) -> None:
    dm = HFDataModule(path=str(saved_imdb_like(tmp_path)), batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert dm.class_names == ["neg", "pos"]  # the ClassLabel's names, in its order
    assert dm.split_sizes == {"train": 36, "val": 4, "test": 10}
    assert next(iter(dm.train_dataloader())).targets.shape == (4,)


def test_a_local_csv_through_load_dataset(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = _rows(30)
    lines = [
        "text,label",
        *(f"{t},{'pos' if y else 'neg'}" for t, y in zip(*rows.values(), strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dm = HFDataModule(path=str(path), test_fraction=0.2)
    dm.setup()
    assert dm.class_names == ["neg", "pos"] and dm.test_size == 6


def test_data_files_by_split_and_multi_label_lists(tmp_path: Path) -> None:
    files = {}
    for split, n in (("train", 20), ("test", 6)):
        path = tmp_path / f"{split}.jsonl"
        records = [{"text": f"doc {i}", "tags": ["a", "b"] if i % 2 else ["a"]} for i in range(n)]
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        files[split] = str(path)
    dm = HFDataModule(data_files=files, label_column="tags", multi_label=True)
    dm.setup()
    assert dm.class_names == ["a", "b"] and dm.test_size == 6
    assert dm.train_set.labels.shape[1] == 2


def test_missing_columns_splits_and_paths_are_named(tmp_path: Path) -> None:
    path = saved_imdb_like(tmp_path)
    with pytest.raises(DataFormatError, match=r"\['review'\].*columns are \['text', 'label'\]"):
        HFDataModule(path=str(path), text_column="review").setup()
    with pytest.raises(DataFormatError, match=r"split 'training'.*\['train', 'test'\]"):
        HFDataModule(path=str(path), train_split="training").setup()
    with pytest.raises(DataNotFoundError, match="found nothing"):
        HFDataModule(path=str(tmp_path / "none")).prepare_data()
    with pytest.raises(DataFormatError, match="one format"):
        load_hf_dataset(data_files={"train": str(tmp_path / "a.xlsx")})
