"""Reuters-21578 newswire topics: the 46-topic set of the course's Reuters example.

Parses the official SGML files (``reut2-000.sgm`` … ``reut2-021.sgm``; SGML, not
well-formed XML, so a small regex parser reads them) from ``reuters21578.tar.gz`` or a
directory. :func:`topic_corpora` then derives the classification set:

* every document with at least one topic, labelled by its **first** listed topic;
* restricted to the 46 most frequent first topics.

That reproduces Keras's ``reuters.load_data()`` set exactly: 11,228 documents, the same
46 topics, and label ids in the same order (topics numbered by first appearance in the
collection: 0 = cocoa, 1 = grain, 2 = veg-oil, 3 = earn, 4 = acq, …). Keras then split
those 11,228 at random 80/20 (8,982 / 2,246). This module uses the ModApte split by
default (``LEWISSPLIT="TRAIN"``/``"TEST"`` with ``TOPICS="YES"``): 7,697 train /
2,974 test, leaving out the 557 documents ModApte does not use; ``split="random"``
gives Keras's 8,982 / 2,246 proportions instead (not its exact shuffle).
Keeping only single-topic documents (``multi_topic="drop"``) gives 9,435 documents,
whose 46 most frequent topics are a different set.

Text is ``TITLE``, a blank line, then ``BODY`` (``BRIEF`` items have a title only;
``UNPROC`` items keep their raw text), with SGML entities decoded and the ``\\x03``
end-of-text marker removed.
"""

from __future__ import annotations

import html
import re
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rnnkit.data.datasets.base import TextClassificationDataModule, TextCorpus
from rnnkit.data.errors import DataFormatError
from rnnkit.data.files import DecodeReport, check_decodable, decode_utf8, decompressing
from rnnkit.data.paths import RemoteFile, locate
from rnnkit.data.splits import random_split

__all__ = [
    "REUTERS_ARCHIVE",
    "ReutersDataModule",
    "ReutersDocument",
    "find_reuters",
    "parse_sgml",
    "read_reuters",
    "topic_corpora",
]

REUTERS_ARCHIVE = RemoteFile(
    url="https://archive.ics.uci.edu/ml/machine-learning-databases/reuters21578-mld/reuters21578.tar.gz",
    path="reuters21578/reuters21578.tar.gz",
    sha256={
        "8870b8a7ce7a3871b59ee581c0c4aef35f8ce1be297e8fa09df87fb9e216ce35": (
            "reuters21578.tar.gz, 8,150,158 bytes (Distribution 1.0)"
        ),
    },
)
CANDIDATES = ("reuters21578/reuters21578.tar.gz", "reuters21578", "reuters21578.tar.gz")
HOW_TO_GET = (
    f"Download {REUTERS_ARCHIVE.url} (UCI KDD archive; or pass download=True) and keep it "
    f"as <data_dir>/{REUTERS_ARCHIVE.path}; a directory of reut2-*.sgm files works too."
)
NUM_FILES = 22
NUM_DOCUMENTS = 21_578

_DOC = re.compile(r"<REUTERS([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TEXT = re.compile(r"<TEXT([^>]*)>(.*?)</TEXT>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReutersDocument:
    """One ``<REUTERS>`` element.

    Attributes:
        newid: the ``NEWID`` attribute (1 … 21,578).
        lewis_split: ``"TRAIN"``, ``"TEST"`` or ``"NOT-USED"``.
        has_topics: the ``TOPICS`` attribute is ``"YES"``.
        topics: the ``<TOPICS>`` categories, in listed order.
        title: the title (may be empty).
        text: title, blank line, body (entities decoded).
    """

    newid: int
    lewis_split: str
    has_topics: bool
    topics: tuple[str, ...]
    title: str
    text: str


def _clean(fragment: str) -> str:
    return html.unescape(fragment).replace("\x03", "").strip()


def _document(attrs: str, inner: str) -> ReutersDocument:
    attr = dict(_ATTR.findall(attrs))
    topics_block = _TOPICS.search(inner)
    topics = tuple(_D.findall(topics_block.group(1))) if topics_block else ()
    text_match = _TEXT.search(inner)
    text_inner = text_match.group(2) if text_match else ""
    title_m, body_m = _TITLE.search(text_inner), _BODY.search(text_inner)
    title = _clean(title_m.group(1)) if title_m else ""
    if body_m:
        body = _clean(body_m.group(1))
    elif title_m:
        body = ""
    else:  # TYPE="UNPROC": the raw text sits directly inside <TEXT>
        body = _clean(_TAG.sub(" ", text_inner))
    text = f"{title}\n\n{body}" if title and body else title or body
    return ReutersDocument(
        newid=int(attr.get("NEWID", "0")),
        lewis_split=attr.get("LEWISSPLIT", ""),
        has_topics=attr.get("TOPICS") == "YES",
        topics=topics,
        title=title,
        text=text,
    )


def parse_sgml(text: str) -> list[ReutersDocument]:
    """Every ``<REUTERS>`` element of one ``.sgm`` file's text."""
    return [_document(attrs, inner) for attrs, inner in _DOC.findall(text)]


def find_reuters(root: Path) -> Path:
    """The Reuters-21578 archive or directory under ``root``."""
    return locate(root, CANDIDATES, dataset="Reuters-21578", how_to_get=HOW_TO_GET)


def _sgm_files(source: Path) -> list[tuple[str, bytes]]:
    if source.is_dir():
        return [(p.name, p.read_bytes()) for p in sorted(source.glob("reut2-*.sgm"))]
    try:
        with decompressing(source), tarfile.open(source, "r:*") as archive:
            members = sorted(
                (
                    m
                    for m in archive.getmembers()
                    if m.isfile() and re.search(r"reut2-\d+\.sgm$", m.name)
                ),
                key=lambda m: m.name,
            )
            return [(m.name, archive.extractfile(m).read()) for m in members]  # type: ignore[union-attr]
    except tarfile.TarError as err:
        raise DataFormatError(f"{source}: expected a (gzipped) tar archive: {err}") from err


def read_reuters(source: str | Path) -> tuple[list[ReutersDocument], DecodeReport]:
    """Parse all of Reuters-21578.

    Arguments:
        source: ``reuters21578.tar.gz`` or a directory with ``reut2-*.sgm``.

    Returns:
        ``(documents in NEWID order, decode report)``. The official files have one
        invalid UTF-8 byte (a Latin-1 ``ü`` in ``reut2-017.sgm``), replaced and counted.

    Raises:
        DataFormatError: no ``reut2-*.sgm`` files, or a file without ``<REUTERS>`` elements.
    """
    source = Path(source)
    files = _sgm_files(source)
    if not files:
        raise DataFormatError(
            f"{source}: expected the Reuters-21578 files reut2-000.sgm … reut2-021.sgm, found none"
        )
    report = DecodeReport()
    documents: list[ReutersDocument] = []
    for name, data in files:
        text, replaced = decode_utf8(data)
        report.add(name, replaced)
        docs = parse_sgml(text)
        if not docs:
            raise DataFormatError(f"{source}: expected <REUTERS> elements in {name}, found none")
        documents.extend(docs)
    check_decodable(source, report.files_with_replacements, report.files)
    documents.sort(key=lambda d: d.newid)
    return documents, report


def topic_corpora(
    documents: list[ReutersDocument],
    *,
    num_topics: int = 46,
    multi_topic: Literal["first", "drop"] = "first",
    split: Literal["modapte", "random"] = "modapte",
    test_fraction: float = 0.2,
    seed: int = 0,
    report: DecodeReport | None = None,
) -> dict[str, TextCorpus]:
    """The single-label topic classification set.

    Arguments:
        documents: from :func:`read_reuters`.
        num_topics: keep the documents of this many most frequent topics.
        multi_topic: label a multi-topic document with its first topic (``"first"``,
            Keras's set) or leave it out (``"drop"``).
        split: ``"modapte"`` (``LEWISSPLIT`` TRAIN/TEST with ``TOPICS="YES"``) or
            ``"random"`` (all selected documents, seeded, ``test_fraction`` held out).
        test_fraction, seed: for ``split="random"``.
        report: attached to both corpora.

    Returns:
        ``{"train": TextCorpus, "test": TextCorpus}``; ``class_names`` are the topics in
        order of first appearance (Keras's label order), ids are ``NEWID`` strings.
    """
    labelled = [d for d in documents if d.topics and (multi_topic == "first" or len(d.topics) == 1)]
    counts = Counter(d.topics[0] for d in labelled)
    if len(counts) < num_topics:
        raise DataFormatError(f"asked for {num_topics} topics, the documents have {len(counts)}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = {t for t, _ in ranked[:num_topics]}
    chosen = [d for d in labelled if d.topics[0] in keep]
    names: list[str] = []
    for d in chosen:  # first appearance, in NEWID order
        if d.topics[0] not in names:
            names.append(d.topics[0])
    if split == "modapte":
        parts = {
            "train": [d for d in chosen if d.has_topics and d.lewis_split == "TRAIN"],
            "test": [d for d in chosen if d.has_topics and d.lewis_split == "TEST"],
        }
    elif split == "random":
        train_idx, test_idx = random_split(len(chosen), test_fraction, seed=seed)
        parts = {"train": [chosen[i] for i in train_idx], "test": [chosen[i] for i in test_idx]}
    else:
        raise ValueError(f"split must be 'modapte' or 'random', got {split!r}")
    index = {t: i for i, t in enumerate(names)}
    return {
        name: TextCorpus(
            texts=[d.text for d in docs],
            labels=np.array([index[d.topics[0]] for d in docs], dtype=np.int64),
            ids=[str(d.newid) for d in docs],
            class_names=list(names),
            report=report or DecodeReport(),
        )
        for name, docs in parts.items()
    }


class ReutersDataModule(TextClassificationDataModule):
    """Reuters newswire topic classification (46 topics) as a LightningDataModule.

    Splits (defaults): ModApte test, 2,974 documents; ModApte train, 7,697 documents,
    minus a stratified seeded ``val_fraction``. After ``setup``: ``vocab``,
    ``num_classes == 46``, ``class_names`` (Keras's label order), ``split_sizes``.
    The course's setting (1,000-word vocabulary, 100 tokens) is
    ``ReutersDataModule(max_size=998, max_length=100)`` (998 words + pad + unk).

    Arguments (beyond the text DataModule's): ``num_topics``, ``multi_topic``,
    ``split`` (see :func:`topic_corpora`).
    """

    def __init__(
        self,
        *,
        num_topics: int = 46,
        multi_topic: Literal["first", "drop"] = "first",
        split: Literal["modapte", "random"] = "modapte",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.num_topics = num_topics
        self.multi_topic: Literal["first", "drop"] = multi_topic
        self.split: Literal["modapte", "random"] = split

    archive = REUTERS_ARCHIVE

    def _find(self) -> Path:
        return find_reuters(self.data_dir)

    def _read(self) -> tuple[TextCorpus, TextCorpus]:
        documents, report = read_reuters(self._find())
        corpora = topic_corpora(
            documents,
            num_topics=self.num_topics,
            multi_topic=self.multi_topic,
            split=self.split,
            seed=self.seed,
            report=report,
        )
        # Both corpora share one report; count it once.
        corpora["test"].report = DecodeReport()
        return corpora["train"], corpora["test"]
