"""The local blob store keeps content by digest and never shows a half-written blob."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from modelyard.artifacts.blobstore import BlobRef, LocalBlobStore
from modelyard.domain.errors import NotFound, PayloadTooLarge


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def put(store: LocalBlobStore, data: bytes) -> tuple[BlobRef, bool]:
    with store.writer() as writer:
        writer.write(data)
        return writer.commit()


def leftovers(store: LocalBlobStore) -> list[Path]:
    return list((store.root / "tmp").iterdir())


def test_commit_stores_content_under_its_digest(store: LocalBlobStore) -> None:
    data = b"model weights"
    digest = hashlib.sha256(data).hexdigest()

    ref, created = put(store, data)

    assert (ref, created) == (BlobRef(digest, len(data)), True)
    assert store.exists(digest)
    assert store.path(digest) == store.root / "blobs" / digest[:2] / digest
    with store.open(digest) as f:
        assert f.read() == data
    assert leftovers(store) == []


def test_committing_the_same_content_again_reports_it_existed(store: LocalBlobStore) -> None:
    put(store, b"same")
    ref, created = put(store, b"same")
    assert created is False
    assert store.exists(ref.sha256)
    assert leftovers(store) == []


def test_content_is_readable_from_the_temp_file_before_commit(store: LocalBlobStore) -> None:
    with store.writer() as writer:
        writer.write(b"abc")
        assert writer.temp_path.read_bytes() == b"abc"
        writer.commit()


def test_delete_removes_the_blob_and_its_tree(store: LocalBlobStore) -> None:
    ref, _ = put(store, b"archive")
    scratch = store.scratch_dir()
    (scratch / "file").write_bytes(b"x")
    store.put_tree(ref.sha256, scratch)

    store.delete(ref.sha256)
    store.delete(ref.sha256)  # missing is not an error

    assert not store.exists(ref.sha256)
    assert store.tree_path(ref.sha256) is None
    with pytest.raises(NotFound):
        store.open(ref.sha256)
    assert leftovers(store) == []


def test_unknown_or_malformed_digests_do_not_exist(store: LocalBlobStore) -> None:
    assert not store.exists("0" * 64)
    assert not store.exists("../../etc/passwd")
    with pytest.raises(NotFound):
        store.path("0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        store.delete("../x")


def test_leaving_the_block_without_commit_leaves_nothing(store: LocalBlobStore) -> None:
    def write_then_fail() -> None:
        with store.writer() as writer:
            writer.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert leftovers(store) == []
    assert list((store.root / "blobs").iterdir()) == []


def test_abort_is_idempotent(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"partial")
    writer.abort()
    writer.abort()
    assert leftovers(store) == []


def test_exceeding_max_bytes_is_refused_and_leaves_no_temp_file(store: LocalBlobStore) -> None:
    with store.writer(max_bytes=5) as writer:
        writer.write(b"12345")
        with pytest.raises(PayloadTooLarge, match="limit of 5 bytes"):
            writer.write(b"6")
        assert leftovers(store) == []


def test_concurrent_commits_of_the_same_content_all_succeed(store: LocalBlobStore) -> None:
    data = os.urandom(256 * 1024)
    barrier = threading.Barrier(6)
    results: list[tuple[BlobRef, bool]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with store.writer() as writer:
                writer.write(data)
                barrier.wait()
                results.append(writer.commit())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert {ref for ref, _ in results} == {BlobRef(hashlib.sha256(data).hexdigest(), len(data))}
    assert any(created for _, created in results)
    with store.open(results[0][0].sha256) as f:
        assert f.read() == data
    assert leftovers(store) == []


def test_put_tree_keeps_the_first_tree(store: LocalBlobStore) -> None:
    digest = "a" * 64
    first = store.scratch_dir()
    (first / "one").write_bytes(b"1")
    second = store.scratch_dir()
    (second / "two").write_bytes(b"2")

    tree = store.put_tree(digest, first)
    again = store.put_tree(digest, second)

    assert tree == again == store.tree_path(digest)
    assert sorted(p.name for p in tree.iterdir()) == ["one"]
    assert not first.exists()
    assert not second.exists()


def test_sweep_tmp_removes_only_stale_leftovers(store: LocalBlobStore) -> None:
    stale_file = store.root / "tmp" / "blob-dead.part"
    stale_file.write_bytes(b"x")
    stale_dir = store.scratch_dir()
    long_ago = time.time() - 3600
    os.utime(stale_file, (long_ago, long_ago))
    os.utime(stale_dir, (long_ago, long_ago))
    with store.writer() as live:
        live.write(b"in progress")

        assert store.sweep_tmp(older_than_s=600) == 2

        assert leftovers(store) == [live.temp_path]
