"""Reuters-21578: the SGML parser, the 46-topic set, the DataModule, the real data."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import ChecksumError, DataFormatError, DataNotFoundError, ReutersDataModule
from rnnkit.data.datasets import reuters as reuters_module
from rnnkit.data.datasets.reuters import parse_sgml, read_reuters, topic_corpora

# Keras's reuters.get_label_names(): the label ids of the course's Reuters example.
KERAS_TOPICS = [
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
]  # fmt: skip


def doc(newid: int, split: str, topics: list[str], text: str, has_topics: bool = True) -> str:
    d = "".join(f"<D>{t}</D>" for t in topics)
    flag = "YES" if has_topics else "NO"
    return (
        f'<REUTERS TOPICS="{flag}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" '
        f'OLDID="{5000 + newid}" NEWID="{newid}">\n<DATE>26-FEB-1987 15:01:01.79</DATE>\n'
        f"<TOPICS>{d}</TOPICS>\n<PLACES><D>usa</D></PLACES>\n{text}\n</REUTERS>\n"
    )


def body(title: str, text: str) -> str:
    return (
        f"<TEXT>&#2;\n<TITLE>{title}</TITLE>\n<DATELINE>NEW YORK, Feb 26 - </DATELINE>"
        f"<BODY>{text}\n Reuter\n&#3;</BODY></TEXT>"
    )


FILE_0 = (
    '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
    + "".join(
        [
            doc(
                1, "TRAIN", ["cocoa"], body("BAHIA COCOA REVIEW", "Showers &lt;rain&gt; &amp; sun")
            ),
            doc(2, "TRAIN", ["grain", "wheat"], body("GRAIN", "Wheat and grain")),
            doc(3, "TEST", ["earn"], body("PROFIT", "Net profit up")),
            doc(4, "TRAIN", [], body("NOTHING", "No topic"), has_topics=False),
            doc(5, "NOT-USED", ["cocoa"], body("COCOA", "More cocoa")),
            doc(
                6,
                "TEST",
                ["earn"],
                '<TEXT TYPE="BRIEF">&#2;\n<TITLE>BRIEF EARNINGS</TITLE>\n&#3;</TEXT>',
            ),
            doc(7, "TRAIN", ["acq"], '<TEXT TYPE="UNPROC">&#2;\nraw unprocessed text\n&#3;</TEXT>'),
            doc(8, "TRAIN", ["earn"], body("NO FLAG", "earn without TOPICS=YES"), has_topics=False),
        ]
    )
).encode()
FILE_1 = "".join(
    [
        doc(9, "TEST", ["grain"], body("CORN", "Corn")),
        doc(10, "TRAIN", ["earn"], body("CAF\udcfc", "Gr\udcfcn profit")),
    ]
).encode("utf-8", "surrogateescape")  # two Latin-1 bytes, as in reut2-017.sgm


def make_reuters(root: Path, archive: bool) -> Path:
    folder = root / "sgml"
    folder.mkdir(parents=True)
    (folder / "reut2-000.sgm").write_bytes(FILE_0)
    (folder / "reut2-001.sgm").write_bytes(FILE_1)
    (folder / "README.txt").write_text("readme", encoding="utf-8")
    if not archive:
        return folder
    path = root / "reuters21578" / "reuters21578.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f.name)
    return path


def test_parse_sgml_documents() -> None:
    docs = {d.newid: d for d in parse_sgml(FILE_0.decode())}
    assert len(docs) == 8
    assert docs[1].text == "BAHIA COCOA REVIEW\n\nShowers <rain> & sun\n Reuter"
    assert docs[1].topics == ("cocoa",) and docs[1].lewis_split == "TRAIN" and docs[1].has_topics
    assert docs[2].topics == ("grain", "wheat")
    assert docs[6].text == "BRIEF EARNINGS"  # title only
    assert docs[7].text == "raw unprocessed text" and docs[7].title == ""
    assert docs[4].topics == () and not docs[4].has_topics


@pytest.mark.parametrize("archive", [True, False])
def test_read_reuters_counts_invalid_bytes(tmp_path: Path, archive: bool) -> None:
    documents, report = read_reuters(make_reuters(tmp_path, archive))
    assert [d.newid for d in documents] == list(range(1, 11))
    assert report.files == 2 and report.replaced_bytes == 2
    assert documents[-1].text.startswith("CAF\ufffd")


def test_topic_corpora_first_topic_modapte(tmp_path: Path) -> None:
    documents, _ = read_reuters(make_reuters(tmp_path, archive=True))
    corpora = topic_corpora(documents, num_topics=3)
    train, test = corpora["train"], corpora["test"]
    assert train.class_names == ["cocoa", "grain", "earn"]  # first appearance
    assert train.ids == ["1", "2", "10"] and train.labels.tolist() == [0, 1, 2]
    assert test.ids == ["3", "6", "9"] and test.labels.tolist() == [2, 2, 1]
    dropped = topic_corpora(documents, num_topics=3, multi_topic="drop")
    assert "2" not in dropped["train"].ids
    rnd = topic_corpora(documents, num_topics=3, split="random", test_fraction=0.25, seed=0)
    assert len(rnd["train"]) + len(rnd["test"]) == 8 and len(rnd["test"]) == 2
    with pytest.raises(DataFormatError, match="asked for 50 topics"):
        topic_corpora(documents, num_topics=50)


def test_read_reuters_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"reut2-000.sgm … reut2-021.sgm, found none"):
        read_reuters(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "reut2-000.sgm").write_text("<html>no articles</html>", encoding="utf-8")
    with pytest.raises(DataFormatError, match="<REUTERS> elements"):
        read_reuters(tmp_path / "bad")
    with pytest.raises(DataNotFoundError, match=r"reuters21578\.tar\.gz"):
        ReutersDataModule(data_dir=tmp_path / "none").prepare_data()


def test_datamodule_on_a_fixture(tmp_path: Path) -> None:
    make_reuters(tmp_path, archive=True)
    with pytest.raises(ChecksumError, match=r"none of the known digests.*data\.accept_modified"):
        ReutersDataModule(data_dir=tmp_path).prepare_data()  # a home-made archive
    dm = ReutersDataModule(
        data_dir=tmp_path, num_topics=3, val_fraction=0.0, batch_size=2, accept_modified=True
    )
    with pytest.warns(UserWarning, match="none of the known digests"):
        dm.prepare_data()
    dm.setup()
    assert dm.num_classes == 3 and dm.split_sizes == {"train": 3, "val": 0, "test": 3}
    assert dm.decode_report.replaced_bytes == 2
    batch = next(iter(dm.test_dataloader()))
    assert batch.inputs.shape[0] == 2 and batch.targets.tolist()[0] in (1, 2)


# --- the real data -------------------------------------------------------------------------


def test_real_reuters_collection(reuters_real) -> None:
    documents, report = reuters_real
    assert len(documents) == 21_578 and documents[-1].newid == 21_578
    assert report.files == 22 and report.replaced_bytes == 1
    assert report.examples[0][0].endswith("reut2-017.sgm")


def test_real_reuters_46_topics_modapte(reuters_real) -> None:
    documents, _ = reuters_real
    corpora = topic_corpora(documents)
    train, test = corpora["train"], corpora["test"]
    assert train.class_names == KERAS_TOPICS  # same topics, same label ids as Keras
    assert (len(train), len(test)) == (7_697, 2_974)
    assert len(np.unique(train.labels)) == 46 and len(np.unique(test.labels)) <= 46
    assert min(len(t) for t in train.texts) > 0


def test_real_reuters_keras_sized_split(reuters_real) -> None:
    documents, _ = reuters_real
    corpora = topic_corpora(documents, split="random", seed=113)
    assert (len(corpora["train"]), len(corpora["test"])) == (8_982, 2_246)  # 11,228 in all
    single = topic_corpora(documents, multi_topic="drop", split="random")
    assert len(single["train"]) + len(single["test"]) == 9_435


def test_real_reuters_datamodule_course_setting(reuters_real, shared_data, monkeypatch) -> None:
    monkeypatch.setattr(reuters_module, "read_reuters", lambda source: reuters_real)
    dm = ReutersDataModule(data_dir=shared_data, max_size=998, max_length=100, batch_size=64)
    dm.setup()
    assert dm.num_classes == 46 and len(dm.vocab) == 1000
    assert dm.split_sizes == {"train": 6_927, "val": 770, "test": 2_974}
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape[0] == 64 and batch.inputs.shape[1] <= 100
    assert int(batch.inputs.max()) < 1000
