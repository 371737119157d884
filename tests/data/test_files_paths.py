"""Decoding with counted replacements, data-dir resolution, locating and downloading."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    ChecksumError,
    ChecksumWarning,
    DataFormatError,
    DataNotFoundError,
    DecodeReport,
    decode_utf8,
    read_text,
    resolve_data_dir,
)
from rnnkit.data.paths import (
    RemoteFile,
    download,
    find_or_download,
    locate,
    require_file,
    verify_checksum,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=20).map(lambda t: t.encode() + b"\xff\xc3"))
def test_decode_utf8_equals_replace_and_counts_bytes(data: bytes) -> None:
    text, replaced = decode_utf8(data)
    assert text == data.decode("utf-8", "replace")
    # Re-encoding the text gives back the valid bytes; the rest were replaced.
    valid = len(text.replace("\ufffd", "").encode()) + 3 * (
        data.decode("utf-8", "ignore").count("\ufffd")
    )
    assert replaced == len(data) - valid


def test_decode_utf8_examples() -> None:
    assert decode_utf8("café".encode()) == ("café", 0)
    assert decode_utf8(b"caf\xe9!") == ("caf\ufffd!", 1)
    assert decode_utf8(b"\xe2\x82") == ("\ufffd", 2)  # one truncated sequence, two bytes


def test_read_text_reports_and_errors(tmp_path: Path) -> None:
    good, bad, empty = tmp_path / "good.txt", tmp_path / "bad.txt", tmp_path / "empty.txt"
    good.write_text("hello", encoding="utf-8")
    bad.write_bytes(b"a\xffb\xfe\n" + b"fine\n" * 3)
    empty.write_bytes(b"")
    report = DecodeReport()
    assert read_text(good, report=report) == "hello"
    assert read_text(bad, report=report) == "a\ufffdb\ufffd\n" + "fine\n" * 3
    assert (report.files, report.replaced_bytes, report.files_with_replacements) == (2, 2, 1)
    assert "2 invalid bytes in 1 files" in str(report) and not report.clean
    with pytest.raises(DataFormatError, match="empty file"):
        read_text(empty)
    with pytest.raises(DataNotFoundError, match=r"missing\.txt"):
        read_text(tmp_path / "missing.txt")


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RNNKIT_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache" / "rnnkit"


def test_locate_lists_every_path_tried(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    assert locate(tmp_path, ["a.tar.gz", "b"], dataset="X", how_to_get="") == tmp_path / "b"
    with pytest.raises(DataNotFoundError) as info:
        locate(tmp_path, ["x/a.tar.gz", "y"], dataset="Thing", how_to_get="Get it from Z.")
    message = str(info.value)
    assert str(tmp_path / "x" / "a.tar.gz") in message and str(tmp_path / "y") in message
    assert "Get it from Z." in message and "RNNKIT_DATA_DIR" in message


def _remote(tmp_path: Path, payload: bytes, digest: str | None = None) -> RemoteFile:
    source = tmp_path / "server" / "file.bin"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(payload)
    digest = digest or hashlib.sha256(payload).hexdigest()
    return RemoteFile(source.as_uri(), "dataset/file.bin", {digest: "official"})


def test_download_verifies_and_renames_atomically(tmp_path: Path) -> None:
    root = tmp_path / "data"
    path = download(_remote(tmp_path, b"payload"), root)
    assert path == root / "dataset" / "file.bin" and path.read_bytes() == b"payload"
    assert not list(root.rglob("*.part"))


def test_download_rejects_a_wrong_digest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(ChecksumError, match="expected one of 0000"):
        download(_remote(tmp_path, b"payload", digest="0" * 64), root)
    assert not (root / "dataset" / "file.bin").exists() and not list(root.rglob("*.part"))


def test_download_failure_says_where_to_put_the_file(tmp_path: Path) -> None:
    remote = RemoteFile((tmp_path / "nowhere.bin").as_uri(), "d/f.bin", {})
    with pytest.raises(DataNotFoundError, match=r"copy the file to .*d/f\.bin"):
        download(remote, tmp_path / "data")


def test_find_or_download_downloads_only_what_is_missing_and_allowed(tmp_path: Path) -> None:
    root, remote = tmp_path / "data", _remote(tmp_path, b"payload")

    def find() -> Path:
        return locate(root, [remote.path], dataset="Thing", how_to_get="Get it from Z.")

    with pytest.raises(DataNotFoundError, match=r"Get it from Z\."):
        find_or_download(find, remote, root, allowed=False)
    assert not (root / remote.path).exists()
    path = find_or_download(find, remote, root, allowed=True)
    assert path == root / remote.path and path.read_bytes() == b"payload"
    path.write_bytes(b"local copy")  # found now: nothing is downloaded over it
    assert find_or_download(find, remote, root, allowed=True).read_bytes() == b"local copy"


def test_require_file_names_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("x")
    assert require_file(str(tmp_path / "f.csv"), "a CSV file") == tmp_path / "f.csv"
    for missing in (tmp_path / "g.csv", tmp_path):  # nothing there, or a directory
        with pytest.raises(DataNotFoundError, match=r"expected a CSV file at .*, found nothing"):
            require_file(missing, "a CSV file")


def test_verify_checksum_warns_or_raises(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify_checksum(path, {digest: "ok"}) == digest
    with pytest.raises(ChecksumError, match=f"SHA-256 {digest} is none of .* {'1' * 64} \\(other"):
        verify_checksum(path, {"1" * 64: "other"})
    with pytest.warns(ChecksumWarning, match="none of the known digests"):
        verify_checksum(path, {"1" * 64: "other"}, strict=False)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=200, max_size=2000), st.floats(0.05, 0.95))
def test_a_compressed_file_cut_short_is_reported_as_damaged(payload: bytes, keep: float) -> None:
    import gzip
    import tempfile

    from rnnkit.data.errors import DamagedArchiveError
    from rnnkit.data.files import decompressing
    from rnnkit.errors import DamagedFileError

    whole = gzip.compress(payload)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.gz"
        path.write_bytes(whole[: max(11, int(len(whole) * keep))])
        damaged = pytest.raises(DamagedArchiveError, match=r"x\.gz is damaged")
        with damaged as info, decompressing(path):
            gzip.decompress(path.read_bytes())
    assert isinstance(info.value, DamagedFileError) and isinstance(info.value, DataFormatError)
    assert "\n" not in str(info.value)


def test_a_file_that_is_no_tar_is_left_to_its_reader(tmp_path: Path) -> None:
    import tarfile

    from rnnkit.data.files import decompressing

    path = tmp_path / "x.tar"
    path.write_bytes(b"plain text, not a tar archive" * 20)
    with pytest.raises(tarfile.ReadError), decompressing(path), tarfile.open(path, "r|*"):
        pass


@pytest.mark.parametrize(
    ("bad", "total", "refused"), [(6, 10, True), (5, 10, False), (0, 0, False)]
)
def test_mostly_undecodable_text_is_refused(bad: int, total: int, refused: bool) -> None:
    from rnnkit.data.errors import UndecodableTextError
    from rnnkit.data.files import check_decodable

    if refused:
        with pytest.raises(UndecodableTextError, match=f"{bad} of {total} rows have invalid"):
            check_decodable("x.csv", bad, total, "rows")
    else:
        check_decodable("x.csv", bad, total, "rows")


def test_a_latin1_text_file_is_refused_and_a_stray_byte_is_not(tmp_path: Path) -> None:
    from rnnkit.data.errors import UndecodableTextError

    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème\nthé glacé\n".encode("latin-1"))
    with pytest.raises(UndecodableTextError, match="2 of 2 lines"):
        read_text(latin)
    stray = tmp_path / "stray.txt"
    stray.write_bytes(b"caf\xe9\n" + b"fine\n" * 9)
    assert read_text(stray).startswith("caf\ufffd")
