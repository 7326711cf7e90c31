"""Content-addressed blob store: artifacts are kept once, named by their SHA-256.

Naming blobs by content makes registration idempotent (the same bytes uploaded twice
are stored once) and makes a stored blob immutable, so readers never need locks.

Layout of `LocalBlobStore` under its root:

    blobs/ab/abcdef...    one file per blob, fanned out by the first two hex digits
    trees/<sha256>/       the unpacked folder of an archive blob, when it was unpacked
    tmp/                  temp files and scratch folders, on the same filesystem so that
                          finishing a write is an atomic rename

Nothing half-written is ever visible under blobs/ or trees/: data goes to tmp/ first and
is renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from modelyard.domain.errors import NotFound, PayloadTooLarge

__all__ = ["BlobRef", "BlobStore", "BlobWriter", "LocalBlobStore"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_BLOB_MODE = 0o444  # blobs are immutable; read-only says so to anyone poking at the files


@dataclass(frozen=True)
class BlobRef:
    """Identifies stored content: its lowercase hex SHA-256 and its size in bytes."""

    sha256: str
    size: int


class BlobWriter(Protocol):
    """Receives one blob's bytes; nothing is visible in the store until `commit`.

    Used as a context manager: leaving the block without `commit` aborts, so an
    exception half-way through a fetch or upload never leaves a blob behind.
    """

    def write(self, data: bytes) -> None:
        """Append bytes; raises PayloadTooLarge once more than `max_bytes` were written."""
        ...

    def commit(self) -> tuple[BlobRef, bool]:
        """Store the bytes; returns the ref and False if the blob already existed."""
        ...

    def abort(self) -> None:
        """Discard the bytes written so far; calling it again does nothing."""
        ...

    @property
    def temp_path(self) -> Path:
        """The file being written (complete so far), so it can be inspected before commit."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobStore(Protocol):
    """Where artifacts live; one protocol so a local folder and S3 are interchangeable."""

    def writer(self, max_bytes: int | None = None) -> BlobWriter:
        """Start writing a new blob, refused once it grows past `max_bytes`."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Open the blob for reading; raises NotFound if it is not stored."""
        ...

    def path(self, sha256: str) -> Path:
        """The blob's local file; raises NotFound if it is not stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the blob and its unpacked tree; a missing blob is not an error."""
        ...

    def put_tree(self, sha256: str, src_dir: Path) -> Path:
        """Move an unpacked folder in as the blob's tree, keeping an existing one."""
        ...

    def tree_path(self, sha256: str) -> Path | None:
        """The blob's unpacked tree, or None if it was never unpacked."""
        ...

    def scratch_dir(self) -> Path:
        """A fresh empty folder on the store's filesystem; the caller removes it."""
        ...


class LocalBlobStore:
    """A `BlobStore` in a local folder (the default deployment's data dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._trees = root / "trees"
        self._tmp = root / "tmp"
        for folder in (self._blobs, self._trees, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def writer(self, max_bytes: int | None = None) -> BlobWriter:
        """Start a blob in tmp/; see `_LocalBlobWriter` for how it lands in blobs/."""
        return _LocalBlobWriter(self, max_bytes)

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored; a malformed digest simply does not exist."""
        if not _is_sha256(sha256):
            return False
        return self._blob_file(sha256.lower()).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """Open the blob for reading; raises NotFound if it is not stored."""
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise _not_found(sha256) from None

    def path(self, sha256: str) -> Path:
        """The blob's file; raises NotFound if missing so callers never get a dead path."""
        if not self.exists(sha256):
            raise _not_found(sha256)
        return self._blob_file(sha256.lower())

    def delete(self, sha256: str) -> None:
        """Remove the blob and its tree; the tree is renamed away first so that no
        reader ever sees it half-deleted."""
        digest = _require_sha256(sha256)
        with contextlib.suppress(FileNotFoundError):
            self._blob_file(digest).unlink()
        tree = self._trees / digest
        doomed = self._tmp / f"deleted-{uuid.uuid4().hex}"
        try:
            tree.rename(doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def put_tree(self, sha256: str, src_dir: Path) -> Path:
        """Rename `src_dir` into trees/ in one step; when the tree already exists (or a
        concurrent caller wins the race) the existing one is kept and `src_dir` removed,
        since both hold the unpacking of the same bytes."""
        digest = _require_sha256(sha256)
        tree = self._trees / digest
        if tree.is_dir():
            shutil.rmtree(src_dir, ignore_errors=True)
            return tree
        try:
            src_dir.rename(tree)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return self._put_tree_across_filesystems(src_dir, tree)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(src_dir, ignore_errors=True)
        return tree

    def tree_path(self, sha256: str) -> Path | None:
        """The blob's unpacked tree, or None when it was never unpacked."""
        if not _is_sha256(sha256):
            return None
        tree = self._trees / sha256.lower()
        return tree if tree.is_dir() else None

    def scratch_dir(self) -> Path:
        """A fresh folder in tmp/, so that `put_tree` can rename it in atomically."""
        return Path(tempfile.mkdtemp(prefix="scratch-", dir=self._tmp))

    def sweep_tmp(self, older_than_s: float) -> int:
        """Remove temp files and folders not modified for `older_than_s` seconds.

        A killed process leaves its temp files behind; call this at startup or
        periodically. Pick an age well above the longest stall of a live upload, since
        an in-progress write older than that would be removed too. Returns the count.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self._tmp.iterdir():
            try:
                st = entry.lstat()
            except FileNotFoundError:
                continue
            if st.st_mtime >= cutoff:
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def _blob_file(self, digest: str) -> Path:
        return self._blobs / digest[:2] / digest

    def _new_temp_file(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=".part", dir=self._tmp)
        return fd, Path(name)

    def _publish(self, temp: Path, digest: str) -> bool:
        """Move a complete temp file to its blob path; returns whether it was new.

        A hard link fails if the blob exists, which tells concurrent writers of the same
        bytes apart without a lock; filesystems without hard links fall back to an
        atomic replace (both writers then report created, and the file is complete).
        """
        target = self._blob_file(digest)
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(temp, target)
        except FileExistsError:
            created = False
        except OSError:
            created = not target.exists()
            os.replace(temp, target)
            _fsync_dir(target.parent)
            return created
        else:
            created = True
            _fsync_dir(target.parent)
        temp.unlink(missing_ok=True)
        return created

    def _put_tree_across_filesystems(self, src_dir: Path, tree: Path) -> Path:
        """Copy a folder from another filesystem into tmp/ first, then rename it in."""
        staged = self.scratch_dir()
        staged.rmdir()
        shutil.copytree(src_dir, staged, symlinks=True)
        shutil.rmtree(src_dir, ignore_errors=True)
        return self.put_tree(tree.name, staged)


class _LocalBlobWriter:
    """Writes to a temp file in the store's tmp/, hashing as it goes.

    On commit the file is fsync'd and linked into blobs/, so a crash at any point
    leaves either no blob or a complete one (plus, at worst, a stale temp file that
    `LocalBlobStore.sweep_tmp` removes).
    """

    def __init__(self, store: LocalBlobStore, max_bytes: int | None) -> None:
        self._store = store
        self._max_bytes = max_bytes
        fd, self._temp_path = store._new_temp_file()
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._closed = False

    @property
    def temp_path(self) -> Path:
        """The temp file, flushed so that what was written so far can be read from it."""
        self._require_open()
        self._file.flush()
        return self._temp_path

    def write(self, data: bytes) -> None:
        """Append bytes; over the cap the writer aborts itself, as it can never commit."""
        self._require_open()
        if self._max_bytes is not None and self._size + len(data) > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(f"artifact is larger than the limit of {self._max_bytes} bytes")
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def commit(self) -> tuple[BlobRef, bool]:
        """Make the bytes durable, then visible; returns (ref, created)."""
        self._require_open()
        try:
            ref = BlobRef(sha256=self._hash.hexdigest(), size=self._size)
            if self._store._blob_file(ref.sha256).exists():
                # Same bytes already stored (content addressing): nothing to make durable.
                self.abort()
                self._closed = True
                return ref, False
            self._file.flush()
            os.fsync(self._file.fileno())
            os.fchmod(self._file.fileno(), _BLOB_MODE)
            self._file.close()
            created = self._store._publish(self._temp_path, ref.sha256)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return ref, created

    def abort(self) -> None:
        """Close and remove the temp file; safe to call any number of times."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        self._temp_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("blob writer is already committed or aborted")


def _is_sha256(value: str) -> bool:
    return _SHA256_RE.fullmatch(value.lower()) is not None


def _require_sha256(value: str) -> str:
    """Digests become path components, so anything but 64 hex digits is refused."""
    if not _is_sha256(value):
        raise ValueError(f"not a SHA-256 hex digest: {value[:80]!r}")
    return value.lower()


def _not_found(sha256: str) -> NotFound:
    return NotFound(f"artifact blob {sha256[:80]} does not exist")


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: the directory entry, not just the file, must reach the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
