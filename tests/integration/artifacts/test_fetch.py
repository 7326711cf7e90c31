"""URLs are fetched into the blob store only where the policy allows, hop by hop."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from modelyard.artifacts.blobstore import BlobRef, LocalBlobStore
from modelyard.artifacts.fetch import FetchPolicy, fetch_into
from modelyard.domain.errors import FetchFailed, ForbiddenUrl, PayloadTooLarge

BODY = b"0123456789" * 10_000

# path -> (status, headers, body); a missing Content-Length means "read until close".
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/model.bin": (200, {"Content-Length": str(len(BODY))}, BODY),
    "/no-length.bin": (200, {}, BODY),
    "/moved": (302, {"Location": "/model.bin", "Content-Length": "0"}, b""),
    "/to-file": (302, {"Location": "file:///etc/passwd", "Content-Length": "0"}, b""),
    "/loop": (302, {"Location": "/loop", "Content-Length": "0"}, b""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        status, headers, body = ROUTES.get(path, (404, {"Content-Length": "0"}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may give up on purpose (a size cap)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def policy(root: Path) -> FetchPolicy:
    return FetchPolicy(allowed_file_roots=(root,), timeout_s=5.0)


def fetch(url: str, store: LocalBlobStore, policy: FetchPolicy) -> tuple[str, BlobRef]:
    with store.writer() as writer:
        name = fetch_into(url, writer, policy)
        ref, _ = writer.commit()
    return name, ref


def expected(data: bytes) -> BlobRef:
    return BlobRef(hashlib.sha256(data).hexdigest(), len(data))


def test_fetches_an_http_body(server: str, store: LocalBlobStore, policy: FetchPolicy) -> None:
    assert fetch(f"{server}/model.bin?sig=1", store, policy) == ("model.bin", expected(BODY))


def test_fetches_a_body_without_a_length(
    server: str, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    assert fetch(f"{server}/no-length.bin", store, policy)[1] == expected(BODY)


def test_a_missing_page_fails_without_showing_secrets(
    server: str, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    url = server.replace("http://", "http://user:hunter2@") + "/missing?token=abc"
    with pytest.raises(FetchFailed) as caught:
        fetch(url, store, policy)
    assert caught.value.message == f"url: {server}/missing returned HTTP 404"
    assert caught.value.target == "url"


def test_follows_a_redirect(server: str, store: LocalBlobStore, policy: FetchPolicy) -> None:
    assert fetch(f"{server}/moved", store, policy) == ("moved", expected(BODY))


def test_refuses_a_redirect_to_a_file_url(
    server: str, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    with pytest.raises(ForbiddenUrl, match="redirects to a file URL") as caught:
        fetch(f"{server}/to-file", store, policy)
    assert caught.value.target == "url"


def test_gives_up_after_too_many_redirects(
    server: str, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    with pytest.raises(FetchFailed, match="redirected more than 5 times"):
        fetch(f"{server}/loop", store, policy)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_refuses_private_networks_when_the_policy_says_so(
    server: str, store: LocalBlobStore, policy: FetchPolicy, host: str
) -> None:
    url = server.replace("127.0.0.1", host) + "/model.bin"
    with pytest.raises(ForbiddenUrl, match="private network"):
        fetch(url, store, replace(policy, allow_private_networks=False))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://0.0.0.0:80/",
        "http://224.0.0.1/",
    ],
)
def test_refuses_always_forbidden_addresses_without_connecting(
    url: str, store: LocalBlobStore, policy: FetchPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[httpx.Request] = []

    def no_dns(*args: object, **kwargs: object) -> object:
        raise AssertionError("no DNS lookup expected for an IP literal")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(record)) as client:
        writer = store.writer()
        with pytest.raises(ForbiddenUrl, match="not allowed"):
            fetch_into(url, writer, policy, client=client)
        writer.abort()
    assert requests == []


def test_refuses_numeric_host_forms_of_link_local(
    store: LocalBlobStore, policy: FetchPolicy
) -> None:
    with pytest.raises(ForbiddenUrl, match="resolves to a link-local address"):
        fetch("http://2852039166/", store, policy)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/m.bin", "gopher://x/", "data:,hello", "javascript:alert(1)", "m.bin"]
)
def test_refuses_other_schemes(url: str, store: LocalBlobStore, policy: FetchPolicy) -> None:
    with pytest.raises(ForbiddenUrl, match="use http, https or file") as caught:
        fetch(url, store, policy)
    assert caught.value.target == "url"


def test_a_refused_connection_fails_cleanly(store: LocalBlobStore, policy: FetchPolicy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match="could not fetch"):
        fetch(f"http://127.0.0.1:{port}/x", store, policy)


def test_fetches_a_file_inside_an_allowed_root(
    root: Path, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    (root / "my model.bin").write_bytes(b"weights")
    url = (root / "my model.bin").as_uri()
    assert fetch(url, store, policy) == ("my model.bin", expected(b"weights"))


def test_refuses_a_file_outside_the_roots(
    tmp_path: Path, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    (tmp_path / "secret").write_bytes(b"x")
    with pytest.raises(ForbiddenUrl, match="outside the folders"):
        fetch((tmp_path / "secret").as_uri(), store, policy)
    with pytest.raises(ForbiddenUrl, match="outside the folders"):
        fetch(f"{root_uri(policy)}/../secret", store, policy)


def test_refuses_a_symlink_out_of_the_roots(
    tmp_path: Path, root: Path, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    (tmp_path / "secret").write_bytes(b"x")
    (root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ForbiddenUrl, match="outside the folders"):
        fetch((root / "link").as_uri(), store, policy)


def test_a_missing_or_non_regular_file_fails(
    root: Path, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    with pytest.raises(FetchFailed, match="does not exist"):
        fetch((root / "nope").as_uri(), store, policy)
    (root / "dir").mkdir()
    with pytest.raises(FetchFailed, match="not a regular file"):
        fetch((root / "dir").as_uri(), store, policy)


@pytest.mark.parametrize("path", ["/model.bin", "/no-length.bin"])
def test_max_bytes_is_enforced(
    server: str, store: LocalBlobStore, policy: FetchPolicy, path: str
) -> None:
    with pytest.raises(PayloadTooLarge, match="limit of 1000 bytes"):
        fetch(f"{server}{path}", store, replace(policy, max_bytes=1000))
    assert list((store.root / "tmp").iterdir()) == []


def test_max_bytes_is_enforced_for_files(
    root: Path, store: LocalBlobStore, policy: FetchPolicy
) -> None:
    (root / "big").write_bytes(BODY)
    with pytest.raises(PayloadTooLarge):
        fetch((root / "big").as_uri(), store, replace(policy, max_bytes=1000))


def root_uri(policy: FetchPolicy) -> str:
    return policy.allowed_file_roots[0].as_uri()
