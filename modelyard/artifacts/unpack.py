"""Unpack user-supplied zip and tar archives without trusting them.

An archive registered with `unpack: true` comes from whoever registered the model, so
it is treated as hostile: entry names may try to escape the folder (`../x`, `/etc/x`,
`C:\\x`, a link that points outside and a later entry written through it), headers may
lie about sizes, and a few kilobytes may expand to terabytes.

What is allowed, and why:

- Regular files (written 0644) and folders (0755): setuid bits and owners are dropped,
  since the tree is served to other processes.
- Symbolic links with a relative target that stays inside the unpack folder: model
  snapshots use them to share weights. Nothing is ever written *through* a link, and
  once everything is written every link is resolved for real and must land inside.
- Tar hard links to an earlier file of the same archive are written as copies (counted
  against the caps like any file), so the unpacked tree never aliases an inode.
- Devices, fifos and sockets are refused, as are encrypted zip entries and zip
  compression methods other than stored and deflate (bzip2/lzma zip entries decompress
  without an output bound, which makes them a memory bomb).

Caps are checked twice: first against the sizes the archive declares, so an obvious
bomb is refused before anything is written, then against the bytes actually written,
so a lying header is caught too. On any refusal everything written is removed.
"""

from __future__ import annotations

import contextlib
import errno
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from modelyard.domain.errors import UnsafeArchive

__all__ = ["UnpackLimits", "UnpackResult", "is_archive", "unpack_archive"]

_RATIO_FLOOR = 1024 * 1024  # below this, a high ratio is just a small, compressible file
_CHUNK = 1024 * 1024
_MAX_LINK_TARGET = 4096
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_EOCD_SEARCH = 22 + 0xFFFF  # the end record, plus the longest comment it may carry
_ZIP_DIR_BYTES_PER_ENTRY = 1024  # a directory record is 46 bytes plus name and extras
_DRIVE_RE = re.compile(r"[A-Za-z]:")
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)

_Kind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True)
class UnpackLimits:
    """Caps on what one archive may unpack to.

    `max_files` counts entries of every kind, folders included; `max_ratio` is
    unpacked bytes over the archive file's size, ignored below 1 MiB unpacked.
    """

    max_total_bytes: int = 4 * 1024**3
    max_files: int = 100_000
    max_ratio: float = 200.0


@dataclass(frozen=True)
class UnpackResult:
    """What was written: entries other than folders, and bytes of file content."""

    files: int
    total_bytes: int


@dataclass(frozen=True)
class _Entry:
    """One archive member, reduced to what unpacking needs, with a checked path."""

    name: str
    parts: tuple[str, ...]
    kind: _Kind
    size: int = 0
    link: str = ""


def is_archive(path: Path) -> bool:
    """Whether the file is a zip or a (plain, gzip, bzip2 or xz) tar, by its content."""
    return _detect(path) is not None


def unpack_archive(archive: Path, dest: Path, limits: UnpackLimits) -> UnpackResult:
    """Unpack `archive` into `dest` (created if missing, and it must be empty).

    Raises UnsafeArchive when the file is not an archive, is corrupt, or breaks a rule
    or a cap; `dest` is then left empty.
    """
    kind = _detect(archive)
    if kind is None:
        raise UnsafeArchive(
            "unpack is true but the artifact is not a zip or tar archive", target="url"
        )
    _prepare_dest(dest)
    budget = _Budget(limits, archive.stat().st_size)
    try:
        extractor = _Extractor(dest, budget)
        with _translate_corruption():
            if kind == "zip":
                _unpack_zip(archive, extractor)
            else:
                _unpack_tar(archive, extractor)
        extractor.verify_links()
    except BaseException:
        _clear(dest)
        raise
    return UnpackResult(files=extractor.written_entries, total_bytes=budget.written)


def _detect(path: Path) -> Literal["zip", "tar"] | None:
    """Tell the format from magic bytes; tar is checked first because a tar whose last
    member is a zip would otherwise look like a zip."""
    with path.open("rb") as f:
        head = f.read(512)
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith(_COMPRESSED_MAGIC):
        return "tar" if _is_compressed_tar(path) else None
    if zipfile.is_zipfile(path):
        return "zip"
    return None


def _is_compressed_tar(path: Path) -> bool:
    """A compressed file is a tar if its first header parses (a .gz of a pickle is not)."""
    try:
        with tarfile.open(path, "r:*"):
            return True
    except (OSError, *_CORRUPT):
        return False


def _unpack_zip(archive: Path, extractor: _Extractor) -> None:
    _check_zip_directory(archive, extractor.budget.limits)
    with zipfile.ZipFile(archive) as zf:
        members = [(_zip_entry(info), info) for info in zf.infolist()]
        _precheck((entry for entry, _ in members), extractor.budget)
        for entry, info in members:
            if entry.kind == "dir":
                extractor.make_dir(entry)
                continue
            with zf.open(info) as source:
                if entry.kind == "symlink":
                    extractor.make_symlink(entry, _read_link_target(entry, source))
                else:
                    extractor.write_file(entry, source)


def _check_zip_directory(archive: Path, limits: UnpackLimits) -> None:
    """Refuse a huge central directory before zipfile builds one object per entry.

    zipfile parses as many bytes of directory as the end record declares, whatever
    entry count it claims, so the directory's size is capped as well as its count.
    """
    entries, size = _zip_directory_size(archive)
    if entries > limits.max_files:
        raise _too_many_entries(limits)
    if size > limits.max_files * _ZIP_DIR_BYTES_PER_ENTRY:
        raise UnsafeArchive("archive's table of contents is too large", target="url")


def _zip_directory_size(archive: Path) -> tuple[int, int]:
    """(entries, bytes) of the central directory as the end record (zip64 or not)
    declares them; (0, 0) when there is none, which zipfile then reports as corrupt."""
    with archive.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(max(0, end - _EOCD_SEARCH))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return 0, 0
        entries = int.from_bytes(tail[at + 10 : at + 12], "little")
        size = int.from_bytes(tail[at + 12 : at + 16], "little")
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator[:4] == b"PK\x06\x07":
            f.seek(int.from_bytes(locator[8:16], "little"))
            record = f.read(56)
            if record[:4] == b"PK\x06\x06":
                entries = int.from_bytes(record[32:40], "little")
                size = int.from_bytes(record[40:48], "little")
    return entries, size


def _zip_entry(info: zipfile.ZipInfo) -> _Entry:
    name = info.filename
    if info.flag_bits & 0x1:
        raise _refuse(name, "is encrypted, which is not supported")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _refuse(name, "uses a compression method other than stored or deflate")
    parts = _safe_parts(name)
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(mode)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return _Entry(name, parts, "dir")
    if file_type == stat.S_IFLNK:
        return _Entry(name, _require_name(name, parts), "symlink", size=info.file_size)
    if file_type in (0, stat.S_IFREG):
        return _Entry(name, _require_name(name, parts), "file", size=info.file_size)
    raise _refuse(name, "is a device, fifo or socket, which is not allowed")


def _read_link_target(entry: _Entry, source: IO[bytes]) -> str:
    """A zip stores a link's target as the entry's content."""
    raw = source.read(_MAX_LINK_TARGET + 1)
    if len(raw) > _MAX_LINK_TARGET:
        raise _refuse(entry.name, "is a link with an overlong target")
    return os.fsdecode(raw)


def _unpack_tar(archive: Path, extractor: _Extractor) -> None:
    """Two passes over the headers: the first checks every entry and the declared sizes
    before anything is written. Random-access mode ("r:*") rather than stream mode,
    because its decompressors bound their output per read (a bzip2 stream can expand
    by a factor of a million in one unbounded call)."""
    with tarfile.open(archive, "r:*") as tf:
        _precheck((_tar_entry(member) for member in tf), extractor.budget)
        for member in tf.getmembers():
            entry = _tar_entry(member)
            _check_data_filter(member, extractor.dest)
            if entry.kind == "dir":
                extractor.make_dir(entry)
            elif entry.kind == "symlink":
                extractor.make_symlink(entry, entry.link)
            elif entry.kind == "hardlink":
                extractor.copy_hardlink(entry)
            else:
                source = tf.extractfile(member)
                if source is None:
                    raise _refuse(entry.name, "has no readable content")
                with source:
                    extractor.write_file(entry, source)


def _tar_entry(member: tarfile.TarInfo) -> _Entry:
    name = member.name
    parts = _safe_parts(name)
    if member.isdir():
        return _Entry(name, parts, "dir")
    parts = _require_name(name, parts)
    if member.isreg():
        return _Entry(name, parts, "file", size=member.size)
    if member.issym():
        entry = _Entry(name, parts, "symlink", link=member.linkname)
        _check_link_target(entry, entry.link)
        return entry
    if member.islnk():
        _safe_parts(member.linkname)
        return _Entry(name, parts, "hardlink", link=member.linkname)
    raise _refuse(name, "is a device, fifo or other special file, which is not allowed")


def _check_data_filter(member: tarfile.TarInfo, dest: Path) -> None:
    """The standard library's own rules for untrusted tars, as a second opinion; its
    message names server paths, so only its verdict is kept. Python before 3.11.4
    lacks it; the checks here do not depend on it."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(member, str(dest))
    except tarfile.FilterError:
        raise _refuse(member.name, "is not allowed in an unpacked artifact") from None


def _precheck(entries: Iterable[_Entry], budget: _Budget) -> None:
    """Refuse on declared counts and sizes before writing; a hard link counts as the
    size of the file it copies."""
    sizes: dict[tuple[str, ...], int] = {}
    for entry in entries:
        budget.declare_entry()
        if entry.kind == "file":
            sizes[entry.parts] = entry.size
            budget.declare_bytes(entry.size)
        elif entry.kind == "hardlink":
            budget.declare_bytes(sizes.get(_safe_parts(entry.link), 0))


class _Budget:
    """Counts entries and bytes against the limits, declared and actually written."""

    def __init__(self, limits: UnpackLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = archive_size
        self.declared = 0
        self.declared_entries = 0
        self.written = 0

    def declare_entry(self) -> None:
        self.declared_entries += 1
        if self.declared_entries > self.limits.max_files:
            raise _too_many_entries(self.limits)

    def declare_bytes(self, size: int) -> None:
        self.declared += size
        self._check(self.declared)

    def add_written(self, size: int) -> None:
        """Called before each write, so the cap is never overshot on disk."""
        self.written += size
        self._check(self.written)

    def _check(self, total: int) -> None:
        limit = self.limits.max_total_bytes
        if total > limit:
            raise UnsafeArchive(
                f"archive would unpack to more than {limit} bytes (the limit)", target="url"
            )
        if total > _RATIO_FLOOR and total > self.limits.max_ratio * self.archive_size:
            raise UnsafeArchive(
                f"archive would unpack to more than {self.limits.max_ratio:g} times its "
                f"own size of {self.archive_size} bytes, which looks like a zip bomb",
                target="url",
            )


class _Extractor:
    """Creates entries under `dest`, never following a link while doing so."""

    def __init__(self, dest: Path, budget: _Budget) -> None:
        self.dest = dest
        self.budget = budget
        self.written_entries = 0
        self._dirs: set[tuple[str, ...]] = {()}
        self._files: set[tuple[str, ...]] = set()
        self._links: list[_Entry] = []

    def make_dir(self, entry: _Entry) -> None:
        self._ensure_dirs(entry, entry.parts)

    def write_file(self, entry: _Entry, source: IO[bytes]) -> None:
        path = self._prepare(entry)
        with self._create(entry, path) as out:
            while chunk := _read(source):
                self.budget.add_written(len(chunk))
                out.write(chunk)
        self._files.add(entry.parts)
        self.written_entries += 1

    def make_symlink(self, entry: _Entry, target: str) -> None:
        _check_link_target(entry, target)
        path = self._prepare(entry)
        try:
            os.symlink(target, path)
        except FileExistsError:
            raise _refuse(entry.name, "appears more than once") from None
        self._links.append(entry)
        self.written_entries += 1

    def copy_hardlink(self, entry: _Entry) -> None:
        original = _safe_parts(entry.link)
        if original not in self._files:
            raise _refuse(entry.name, "is a hard link to something other than an earlier file")
        fd = os.open(self.dest.joinpath(*original), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as source:
            self.write_file(entry, source)

    def verify_links(self) -> None:
        """Resolve every link for real, through chains of links, once all exist."""
        root = os.path.realpath(self.dest)
        for entry in self._links:
            resolved = os.path.realpath(self.dest.joinpath(*entry.parts))
            if resolved != root and not resolved.startswith(root + os.sep):
                raise _refuse(entry.name, "is a link that leaves the unpack folder")

    def _prepare(self, entry: _Entry) -> Path:
        self._ensure_dirs(entry, entry.parts[:-1])
        return self.dest.joinpath(*entry.parts)

    def _ensure_dirs(self, entry: _Entry, parts: tuple[str, ...]) -> None:
        """Create each folder on the way, refusing to pass through a link or a file."""
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if prefix in self._dirs:
                continue
            path = self.dest.joinpath(*prefix)
            try:
                os.mkdir(path, _DIR_MODE)
                os.chmod(path, _DIR_MODE)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise _refuse(entry.name, "goes through a link or a file") from None
            except OSError as exc:
                _refuse_long_name(entry, exc)
                raise
            self._dirs.add(prefix)

    @contextlib.contextmanager
    def _create(self, entry: _Entry, path: Path) -> Iterator[IO[bytes]]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, _FILE_MODE)
        except FileExistsError:
            raise _refuse(entry.name, "appears more than once") from None
        except OSError as exc:
            _refuse_long_name(entry, exc)
            raise
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, _FILE_MODE)
            yield out


def _read(source: IO[bytes]) -> bytes:
    """Read a chunk of member data; an OSError without an errno comes from a
    decompressor (bad data), not from the disk."""
    try:
        return source.read(_CHUNK)
    except OSError as exc:
        if exc.errno is None:
            raise _corrupt(exc) from exc
        raise


def _safe_parts(name: str) -> tuple[str, ...]:
    """Split an entry name into path components, refusing any that could escape."""
    if "\\" in name or "\x00" in name:
        raise _refuse(name, "has a backslash or NUL in its name")
    if name.startswith("/"):
        raise _refuse(name, "has an absolute path")
    if _DRIVE_RE.match(name):
        raise _refuse(name, "starts with a drive letter")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _refuse(name, "leaves the unpack folder")
    return parts


def _require_name(name: str, parts: tuple[str, ...]) -> tuple[str, ...]:
    """Only a folder may be the unpack folder itself ("./")."""
    if not parts:
        raise _refuse(name, "has an empty name")
    return parts


def _check_link_target(entry: _Entry, target: str) -> None:
    """Refuse targets that leave the folder on paper; `verify_links` checks for real."""
    if not target or target.startswith("/") or "\\" in target or "\x00" in target:
        raise _refuse(entry.name, "is a link with an absolute or malformed target")
    depth = len(entry.parts) - 1
    for part in target.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            raise _refuse(entry.name, "is a link that leaves the unpack folder")


def _prepare_dest(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"unpack destination {dest} is not empty")


def _clear(dest: Path) -> None:
    """Remove everything under `dest` without following links out of it."""
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


@contextlib.contextmanager
def _translate_corruption() -> Iterator[None]:
    try:
        yield
    except _CORRUPT as exc:
        raise _corrupt(exc) from exc
    except OSError as exc:
        if exc.errno is None:
            raise _corrupt(exc) from exc
        raise


def _too_many_entries(limits: UnpackLimits) -> UnsafeArchive:
    return UnsafeArchive(
        f"archive has more than {limits.max_files} entries (the limit)", target="url"
    )


def _corrupt(exc: BaseException) -> UnsafeArchive:
    return UnsafeArchive(f"archive is corrupt or truncated: {exc}", target="url")


def _refuse_long_name(entry: _Entry, exc: OSError) -> None:
    """A name the filesystem cannot hold is the archive's fault, not the server's."""
    if exc.errno == errno.ENAMETOOLONG:
        raise _refuse(entry.name, "has a name that is too long") from exc


def _refuse(name: str, reason: str) -> UnsafeArchive:
    return UnsafeArchive(f"archive entry '{_shown(name)}' {reason}", target="url")


def _shown(name: str) -> str:
    """Entry names go into user-facing messages: bounded and printable."""
    short = name if len(name) <= 200 else name[:200] + "..."
    return "".join(ch if ch.isprintable() else "?" for ch in short)
