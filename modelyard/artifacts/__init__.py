"""Artifact storage: content-addressed blobs, safe URL fetching and safe unpacking."""

from modelyard.artifacts.blobstore import BlobRef, BlobStore, BlobWriter, LocalBlobStore
from modelyard.artifacts.fetch import FetchPolicy, fetch_into
from modelyard.artifacts.unpack import UnpackLimits, UnpackResult, is_archive, unpack_archive

__all__ = [
    "BlobRef",
    "BlobStore",
    "BlobWriter",
    "FetchPolicy",
    "LocalBlobStore",
    "UnpackLimits",
    "UnpackResult",
    "fetch_into",
    "is_archive",
    "unpack_archive",
]
