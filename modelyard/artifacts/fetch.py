"""Fetch an artifact from a user-supplied URL into a blob writer, without becoming a proxy.

Registering a model by URL makes the server fetch whatever the user names, so every URL
is checked before it is used (server-side request forgery):

- Only http, https and file URLs. A file URL must resolve, after symlinks, inside one
  of the folders the operator allowed; an http(s) redirect to a file URL is refused.
- Every address a host resolves to is checked, on every redirect hop: link-local
  (cloud metadata at 169.254.169.254 lives there), unspecified, multicast and reserved
  addresses are always refused; loopback and private networks unless the policy allows
  them. IPv4 addresses embedded in IPv6 (::ffff:a.b.c.d, 64:ff9b::/96, 6to4) are judged
  as the IPv4 address they reach. Numeric host forms (2852039166, 0x7f.1) are covered
  because what is checked is what the resolver returns.

Known gap: the host is resolved for the check and again by the HTTP client when it
connects, so a DNS server that answers differently the second time (DNS rebinding)
can still reach a refused address. Closing it needs connecting to the checked address
itself; deployments that must rule it out should also block those ranges at the network.

Messages never carry credentials: user info, query strings and fragments are dropped
from every URL shown.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from modelyard.artifacts.blobstore import BlobWriter
from modelyard.domain.errors import FetchFailed, ForbiddenUrl, PayloadTooLarge

__all__ = ["FetchPolicy", "fetch_into"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALLOWED_SCHEMES = "http, https or file"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 256 * 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


@dataclass(frozen=True)
class FetchPolicy:
    """What the server may fetch, set by the operator.

    `timeout_s` bounds connecting and each read, not the whole download, so a large
    artifact on a slow link still arrives. `max_bytes` caps the body (None: no cap).
    """

    allowed_file_roots: tuple[Path, ...]
    allow_private_networks: bool = True
    timeout_s: float = 30.0
    max_redirects: int = 5
    max_bytes: int | None = None


def fetch_into(
    url: str, writer: BlobWriter, policy: FetchPolicy, *, client: httpx.Client | None = None
) -> str:
    """Write the content at `url` into `writer`; returns the file name the URL ends in
    (possibly ""), for callers that need a name for the artifact.

    Raises ForbiddenUrl for a URL the policy refuses, FetchFailed when an allowed URL
    cannot be fetched, PayloadTooLarge over `policy.max_bytes`. The writer is neither
    committed nor aborted here: its owner decides. Without `client`, a client that
    ignores proxy and .netrc settings from the environment is used for this call; a
    client passed in is used as is (its auth and headers go to every hop), except that
    redirects are always followed here, one checked hop at a time.
    """
    scheme = _scheme_of(url)
    if scheme == "file":
        _fetch_file(url, writer, policy)
    elif client is None:
        with httpx.Client(follow_redirects=False, trust_env=False) as own_client:
            _fetch_http(url, writer, policy, own_client)
    else:
        _fetch_http(url, writer, policy, client)
    return _filename_of(url)


def _scheme_of(url: str) -> str:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        raise ForbiddenUrl(f"url: {_display(url)} is not a valid URL", target="url") from None
    if scheme not in ("http", "https", "file"):
        named = f"scheme '{scheme}'" if scheme else "a URL without a scheme"
        raise ForbiddenUrl(f"url: {named} is not allowed; use {_ALLOWED_SCHEMES}", target="url")
    return scheme


def _fetch_file(url: str, writer: BlobWriter, policy: FetchPolicy) -> None:
    """Copy a local file; where it is is judged before whether it exists, so a refused
    URL tells the user nothing about files outside the allowed folders."""
    shown = _display(url)
    path = _file_url_path(url, shown)
    resolved = Path(os.path.realpath(path))
    if not _is_under_roots(resolved, policy.allowed_file_roots):
        raise ForbiddenUrl(
            f"url: {shown} is outside the folders this server may read", target="url"
        )
    with _open_regular_file(resolved, shown) as source:
        chunks = iter(lambda: source.read(_CHUNK), b"")
        _copy_chunks(chunks, writer, policy.max_bytes, shown)


def _file_url_path(url: str, shown: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ForbiddenUrl(f"url: {shown} names a host; use file:///absolute/path", target="url")
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise ForbiddenUrl(f"url: {shown} is not an absolute file path", target="url")
    return path


def _is_under_roots(path: Path, roots: Iterable[Path]) -> bool:
    return any(path.is_relative_to(os.path.realpath(root)) for root in roots)


@contextlib.contextmanager
def _open_regular_file(path: Path, shown: str) -> Iterator[BinaryIO]:
    """Open without following a final symlink (the path is already resolved) and
    without blocking on a fifo, then insist on a regular file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FetchFailed(f"url: {shown} does not exist", target="url") from None
    except OSError as exc:
        raise FetchFailed(
            f"url: {shown} could not be read ({exc.strerror})", target="url"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FetchFailed(f"url: {shown} is not a regular file", target="url")
    with os.fdopen(fd, "rb") as source:
        yield source


def _fetch_http(url: str, writer: BlobWriter, policy: FetchPolicy, client: httpx.Client) -> None:
    """Follow redirects by hand so that each hop's scheme and addresses are checked."""
    current = _parse_http_url(url, _display(url))
    for _hop in range(policy.max_redirects + 1):
        _check_host(current, policy)
        next_url = _get_once(current, writer, policy, client)
        if next_url is None:
            return
        current = next_url
    raise FetchFailed(
        f"url: {_display(url)} redirected more than {policy.max_redirects} times", target="url"
    )


def _get_once(
    url: httpx.URL, writer: BlobWriter, policy: FetchPolicy, client: httpx.Client
) -> httpx.URL | None:
    """One request: returns where it redirects, or None once the body is written.

    Asks for the bytes as stored (identity encoding) and reads them raw, so a
    compressed response cannot expand in memory and the blob is what the server holds.
    """
    shown = _display(str(url))
    headers = {"Accept-Encoding": "identity"}
    try:
        with client.stream(
            "GET", url, headers=headers, follow_redirects=False, timeout=policy.timeout_s
        ) as response:
            if response.status_code in _REDIRECT_STATUSES:
                return _redirect_target(response, url, shown)
            if not response.is_success:
                raise FetchFailed(
                    f"url: {shown} returned HTTP {response.status_code}", target="url"
                )
            _check_declared_length(response, policy.max_bytes, shown)
            _copy_chunks(response.iter_raw(_CHUNK), writer, policy.max_bytes, shown)
            return None
    except httpx.TimeoutException as exc:
        raise FetchFailed(
            f"url: {shown} timed out after {policy.timeout_s:g} s", target="url"
        ) from exc
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise FetchFailed(f"url: could not fetch {shown}: {reason}", target="url") from exc


def _redirect_target(response: httpx.Response, url: httpx.URL, shown: str) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchFailed(
            f"url: {shown} returned HTTP {response.status_code} without a Location",
            target="url",
        )
    try:
        target = url.join(location)
    except httpx.InvalidURL:
        raise FetchFailed(f"url: {shown} redirects to an invalid URL", target="url") from None
    if target.scheme not in ("http", "https"):
        raise ForbiddenUrl(
            f"url: {shown} redirects to a {target.scheme or 'schemeless'} URL, "
            "which is not allowed",
            target="url",
        )
    return _parse_http_url(str(target), _display(str(target)))


def _parse_http_url(url: str, shown: str) -> httpx.URL:
    """Parse with the client's own parser, so the host checked is the host connected to."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ForbiddenUrl(f"url: {shown} is not a valid URL", target="url") from None
    if parsed.scheme not in ("http", "https"):
        raise ForbiddenUrl(
            f"url: scheme '{parsed.scheme}' is not allowed; use {_ALLOWED_SCHEMES}",
            target="url",
        )
    if not parsed.raw_host:
        raise ForbiddenUrl(f"url: {shown} has no host", target="url")
    return parsed


def _check_host(url: httpx.URL, policy: FetchPolicy) -> None:
    """Refuse if any address of the host is refused: the client may use any of them."""
    host = url.raw_host.decode("ascii")
    literal = _ip_literal(host)
    addresses = [literal] if literal is not None else _resolve(host, url.port, url.scheme)
    for address in addresses:
        problem = _address_problem(address, policy.allow_private_networks)
        if problem is not None:
            verb = "is" if literal is not None else "resolves to"
            raise ForbiddenUrl(
                f"url: host {url.host} {verb} {problem}, which is not allowed", target="url"
            )


def _ip_literal(host: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolve(host: str, port: int | None, scheme: str) -> list[_IPAddress | None]:
    """All addresses of `host`; one that cannot be parsed is kept as None (refused)."""
    default_port = 443 if scheme == "https" else 80
    try:
        infos = socket.getaddrinfo(host, port or default_port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed(f"url: host {host} could not be resolved", target="url") from None
    return [_ip_literal(str(info[4][0])) for info in infos]


def _address_problem(address: _IPAddress | None, allow_private: bool) -> str | None:
    """Why an address is refused, or None. Non-global addresses other than the ones
    always refused count as private networks (RFC 1918, ULA, loopback, CGNAT...)."""
    if address is None:
        return "an address that could not be parsed"
    for candidate in _judged_as(address):
        problem = _always_refused(candidate)
        if problem is None and not allow_private and not candidate.is_global:
            problem = "a private network address"
        if problem is not None:
            return problem
    return None


def _judged_as(address: _IPAddress) -> tuple[_IPAddress, ...]:
    """IPv6 forms that reach an IPv4 address are judged as that address (too)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return (address.ipv4_mapped,)
        if address in _NAT64:
            return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
        if address.sixtofour is not None:
            return (address, address.sixtofour)
    return (address,)


def _always_refused(address: _IPAddress) -> str | None:
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or (
        isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK
    ):
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved and not address.is_loopback:
        return "a reserved address"
    return None


def _check_declared_length(response: httpx.Response, max_bytes: int | None, shown: str) -> None:
    """Refuse early when the server announces a body over the cap."""
    declared = response.headers.get("content-length", "")
    if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(shown, max_bytes)


def _copy_chunks(
    chunks: Iterable[bytes], writer: BlobWriter, max_bytes: int | None, shown: str
) -> None:
    """Count bytes as they arrive: a declared length may be absent or wrong."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise _too_large(shown, max_bytes)
        writer.write(chunk)


def _too_large(shown: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"url: {shown} is larger than the limit of {max_bytes} bytes", target="url"
    )


def _filename_of(url: str) -> str:
    """The last path segment, decoded; never a path (no slash, not '.' or '..')."""
    name = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
    if name in (".", "..") or "\x00" in name:
        return ""
    return name


def _display(url: str) -> str:
    """The URL as shown to users: no user info, query or fragment, bounded length."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if len(shown) > 300:
        shown = shown[:300] + "..."
    return "".join(ch if ch.isprintable() else "?" for ch in shown)
