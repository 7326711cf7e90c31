"""Archives are unpacked only when every entry stays inside the folder and under the caps."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pytest

from modelyard.artifacts import unpack
from modelyard.artifacts.unpack import UnpackLimits, is_archive, unpack_archive
from modelyard.domain.errors import Invalid, UnsafeArchive

LIMITS = UnpackLimits()


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def tar_member(
    name: str,
    data: bytes = b"",
    *,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    mode: int = 0o644,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(
    path: Path,
    members: Iterable[tuple[tarfile.TarInfo, bytes]],
    mode: Literal["w", "w:gz"] = "w:gz",
) -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def refused(archive: Path, dest: Path, limits: UnpackLimits = LIMITS) -> str:
    """Unpack expecting a refusal; returns the message after checking dest is empty."""
    with pytest.raises(UnsafeArchive) as caught:
        unpack_archive(archive, dest, limits)
    assert caught.value.target == "url"
    assert list(dest.iterdir()) == []
    return caught.value.message


def test_unpacks_a_zip_with_files_and_folders(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.txt": b"hello", "sub/": b"", "sub/b.bin": b"xyz"})
    dest = tmp_path / "out"

    result = unpack_archive(archive, dest, LIMITS)

    assert (result.files, result.total_bytes) == (2, 8)
    assert (dest / "a.txt").read_bytes() == b"hello"
    assert (dest / "sub" / "b.bin").read_bytes() == b"xyz"
    assert stat.S_IMODE((dest / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "sub").stat().st_mode) == 0o755


def test_unpacks_a_tar_gz_with_an_inner_symlink(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tgz",
        [
            tar_member("model/weights.bin", b"w" * 100),
            tar_member("model/latest", kind=tarfile.SYMTYPE, link="weights.bin"),
        ],
    )
    dest = tmp_path / "out"

    result = unpack_archive(archive, dest, LIMITS)

    assert (result.files, result.total_bytes) == (2, 100)
    assert (dest / "model" / "latest").is_symlink()
    assert (dest / "model" / "latest").read_bytes() == b"w" * 100


def test_drops_setuid_and_other_mode_bits(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_member("run", b"#!", mode=0o4777)], "w")
    unpack_archive(archive, tmp_path / "out", LIMITS)
    assert stat.S_IMODE((tmp_path / "out" / "run").stat().st_mode) == 0o644


def test_copies_a_hard_link_instead_of_linking(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar",
        [tar_member("a", b"data"), tar_member("b", kind=tarfile.LNKTYPE, link="a")],
        "w",
    )
    dest = tmp_path / "out"
    result = unpack_archive(archive, dest, LIMITS)
    assert (result.files, result.total_bytes) == (2, 8)
    assert (dest / "b").read_bytes() == b"data"
    assert (dest / "a").stat().st_ino != (dest / "b").stat().st_ino


def test_refuses_a_parent_entry_in_a_zip_and_writes_nothing(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"ok.txt": b"fine", "../evil": b"x"})
    message = refused(archive, tmp_path / "out")
    assert message == "archive entry '../evil' leaves the unpack folder"
    assert not (tmp_path / "evil").exists()


def test_refuses_a_parent_entry_in_a_tar(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tgz", [tar_member("a/../../evil", b"x")])
    assert "leaves the unpack folder" in refused(archive, tmp_path / "out")


@pytest.mark.parametrize("name", ["/etc/cron.d/evil", "//server/share"])
def test_refuses_an_absolute_path(tmp_path: Path, name: str) -> None:
    archive = make_tar(tmp_path / "a.tgz", [tar_member(name, b"x")])
    assert "absolute path" in refused(archive, tmp_path / "out")


@pytest.mark.parametrize("name", ["..\\evil", "C:/Windows/evil", "C:evil"])
def test_refuses_backslashes_drive_letters_and_nul(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "a.zip", {name: b"x"})
    refused(archive, tmp_path / "out")


def test_refuses_a_symlink_that_leaves_the_folder(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tgz",
        [tar_member("ok", b"x"), tar_member("sub/link", kind=tarfile.SYMTYPE, link="../../etc")],
    )
    message = refused(archive, tmp_path / "out")
    assert message == "archive entry 'sub/link' is a link that leaves the unpack folder"


def test_refuses_a_symlink_with_an_absolute_target(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tgz", [tar_member("link", kind=tarfile.SYMTYPE, link="/etc/passwd")]
    )
    assert "absolute" in refused(archive, tmp_path / "out")


def test_refuses_a_chain_of_links_that_leaves_the_folder(tmp_path: Path) -> None:
    # "b" looks inside on paper (a/.. is the top), but "a" points at the top itself.
    archive = make_tar(
        tmp_path / "a.tar",
        [
            tar_member("a", kind=tarfile.SYMTYPE, link="."),
            tar_member("b", kind=tarfile.SYMTYPE, link="a/.."),
        ],
        "w",
    )
    refused(archive, tmp_path / "out")


def test_refuses_to_write_through_a_link(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar",
        [
            tar_member("real/", kind=tarfile.DIRTYPE),
            tar_member("alias", kind=tarfile.SYMTYPE, link="real"),
            tar_member("alias/file", b"x"),
        ],
        "w",
    )
    assert "goes through a link" in refused(archive, tmp_path / "out")


def test_refuses_a_zip_symlink_that_leaves_the_folder(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "../outside")
    assert "leaves the unpack folder" in refused(archive, tmp_path / "out")


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_refuses_devices_and_fifos(tmp_path: Path, kind: bytes) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_member("dev", kind=kind)], "w")
    assert "not allowed" in refused(archive, tmp_path / "out")


def test_refuses_a_duplicate_entry(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [tar_member("a", b"1"), tar_member("a", b"2")], "w")
    assert "appears more than once" in refused(archive, tmp_path / "out")


def test_refuses_bzip2_zip_entries(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a": b"x"}, zipfile.ZIP_BZIP2)
    assert "compression method" in refused(archive, tmp_path / "out")


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 MB of zeros, about 200 KB compressed, written without holding it in memory."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros", "w") as out:
        for _ in range(200):
            out.write(chunk)
    return path


def test_refuses_a_zip_bomb_before_writing(tmp_path: Path, zip_bomb: Path) -> None:
    assert "zip bomb" in refused(zip_bomb, tmp_path / "out")


def test_refuses_declared_sizes_over_the_total_cap(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a": bytes(2048)})
    limits = UnpackLimits(max_total_bytes=1024)
    assert refused(archive, tmp_path / "out", limits) == (
        "archive would unpack to more than 1024 bytes (the limit)"
    )


def test_a_high_ratio_is_fine_for_small_archives(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"zeros": bytes(512 * 1024)})
    assert unpack_archive(archive, tmp_path / "out", LIMITS).total_bytes == 512 * 1024


def test_caps_bytes_actually_written_when_declared_sizes_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_zip(tmp_path / "a.zip", {f"f{i}": os.urandom(400_000) for i in range(3)})
    monkeypatch.setattr(unpack, "_precheck", lambda entries, budget: None)
    limits = UnpackLimits(max_total_bytes=1_000_000)
    assert "more than 1000000 bytes" in refused(archive, tmp_path / "out", limits)


def test_a_zip_that_understates_a_size_is_refused(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    archive = make_zip(tmp_path / "a.zip", {"big": data}, zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    small = (10).to_bytes(4, "little")
    raw[22:26] = small  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = small  # central directory: uncompressed size
    archive.write_bytes(bytes(raw))

    assert "corrupt" in refused(archive, tmp_path / "out", UnpackLimits(max_total_bytes=50))


def test_refuses_more_entries_than_the_cap(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {f"f{i}": b"" for i in range(5)})
    limits = UnpackLimits(max_files=3)
    message = refused(archive, tmp_path / "out", limits)
    assert message == "archive has more than 3 entries (the limit)"


def test_counts_zip_entries_even_when_the_end_record_understates_them(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {f"f{i}": b"" for i in range(5)})
    raw = bytearray(archive.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    raw[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # entries on disk, in total
    archive.write_bytes(bytes(raw))
    message = refused(archive, tmp_path / "out", UnpackLimits(max_files=3))
    assert message == "archive has more than 3 entries (the limit)"


def test_refuses_a_file_that_is_not_an_archive(tmp_path: Path) -> None:
    plain = tmp_path / "model.zip"
    plain.write_bytes(b"just some weights" * 100)
    with pytest.raises(Invalid) as caught:
        unpack_archive(plain, tmp_path / "out", LIMITS)
    assert caught.value.message == "unpack is true but the artifact is not a zip or tar archive"
    assert caught.value.target == "url"


def test_refuses_a_truncated_archive(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tgz", [tar_member("a", os.urandom(200_000))])
    archive.write_bytes(archive.read_bytes()[:100_000])
    assert "corrupt or truncated" in refused(archive, tmp_path / "out")


def test_refuses_a_destination_that_is_not_empty(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a": b"x"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_bytes(b"")
    with pytest.raises(ValueError, match="not empty"):
        unpack_archive(archive, tmp_path / "out", LIMITS)


def test_recognises_archives_by_content_not_name(tmp_path: Path) -> None:
    tar_bytes = make_tar(tmp_path / "plain", [tar_member("a", b"x")], "w").read_bytes()
    samples = {
        "zip": make_zip(tmp_path / "model.bin", {"a": b"x"}).read_bytes(),
        "tar": tar_bytes,
        "gz": gzip.compress(tar_bytes),
        "bz2": bz2.compress(tar_bytes),
        "xz": lzma.compress(tar_bytes),
    }
    for label, content in samples.items():
        path = tmp_path / f"{label}.data"
        path.write_bytes(content)
        assert is_archive(path), label

    gzipped_text = tmp_path / "weights.tar.gz"
    gzipped_text.write_bytes(gzip.compress(b"not a tar" * 200))
    text = tmp_path / "archive.zip"
    text.write_text("hello")
    assert not is_archive(gzipped_text)
    assert not is_archive(text)
