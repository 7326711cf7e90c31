"""Sockets and the uvicorn server of a replica, with a graceful drain on SIGTERM.

A replica serves on one TCP socket, usually inherited from the supervisor
(`--fd`): every replica of a service shares that listening socket, so the kernel
spreads connections over them and a replica can go away without the port closing.
It may also serve the same app on a unix socket (`--admin-socket`) through which
the supervisor probes readiness and reads metrics, whatever the TCP socket is doing.

SIGTERM (or SIGINT) starts a drain rather than uvicorn's shutdown, which closes idle
keep-alive connections at once, racing clients that are just sending on them:

1. stop accepting on both sockets (the other replicas keep accepting on the shared one)
   and remove the admin socket's file;
2. keep answering requests on connections already open, each with
   `Connection: close`, so clients reconnect (to another replica) between requests
   instead of having a request cut;
3. when no connection and no request remain, or MODELYARD_DRAIN_S passed, let
   uvicorn shut down (lifespan shutdown flushes buffers) and exit 0.

A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn

from modelyard.runtime.app import ScoringApp

__all__ = [
    "BACKLOG",
    "AdminSocket",
    "DrainingServer",
    "accept_backlog",
    "bind_tcp",
    "inherited_socket",
    "listen_unix",
    "serve",
    "set_parent_death_signal",
]

BACKLOG = 2048
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_TCP_INFO_SIZE = 32
_TCPI_UNACKED = 24  # after 8 one-byte fields and rto, ato, snd_mss, rcv_mss (u32 each)
_PR_SET_PDEATHSIG = 1
_log = logging.getLogger("modelyard.runtime")


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket the supervisor passed as file descriptor `fd`."""
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        raise OSError(f"file descriptor {fd} is not a stream socket")
    return sock


def bind_tcp(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port, not yet listening.

    Bound before the driver's (possibly long) init so a taken port fails fast;
    listening only after it, so nothing connects to a replica that cannot answer.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def accept_backlog(sock: socket.socket) -> Callable[[], int]:
    """A function counting the connections waiting for accept() on `sock` (Linux; else 0).

    Linux reports a listening socket's accept queue in TCP_INFO (`tcpi_unacked`).
    The queue belongs to the socket, so replicas sharing one see the same number.
    """
    if not sys.platform.startswith("linux") or sock.family not in _TCP_FAMILIES:
        return _nothing_waiting

    def backlog() -> int:
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        except OSError:  # closed by the drain
            return 0
        waiting: int = struct.unpack_from("=I", info, _TCPI_UNACKED)[0]
        return waiting

    return backlog


def _nothing_waiting() -> int:
    return 0


@dataclass
class AdminSocket:
    """The replica's unix socket, and what it takes to remove only our own file."""

    sock: socket.socket
    path: Path
    identity: tuple[int, int]

    def remove(self) -> None:
        """Remove the socket file, unless a successor replica already bound that path."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        if (stat.st_dev, stat.st_ino) == self.identity:
            self.path.unlink()


def listen_unix(path: Path) -> AdminSocket:
    """A listening unix socket at `path`, replacing a stale socket file left there.

    Bound under a temporary name and renamed into place once listening, so the file
    appearing means connecting works: a prober never meets a refused connection.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(staging))
        sock.listen(BACKLOG)
        os.replace(staging, path)
    except OSError:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise
    stat = os.stat(path)
    return AdminSocket(sock, path, (stat.st_dev, stat.st_ino))


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` when our parent dies; False on other systems.

    Note Linux's meaning of parent: the *thread* that forked us. A supervisor must
    start replicas from a thread that lives as long as it does.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
    return True


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain described in the module docstring."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: ScoringApp,
        drain_s: float,
        admin: AdminSocket | None = None,
    ) -> None:
        super().__init__(config)
        self.app = app
        self.drain_s = drain_s
        self.admin = admin
        self.drain_requested = False
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's: it would re-raise the signal once shut down, so the process
        # would end killed by SIGTERM instead of exiting 0 after a clean drain.
        if self.drain_requested:
            self.should_exit = True
            self.force_exit = True
        else:
            self.drain_requested = True

    async def on_tick(self, counter: int) -> bool:
        """uvicorn calls this every 0.1 s; True ends the main loop (and starts shutdown)."""
        if await super().on_tick(counter):
            return True
        if not self.drain_requested:
            return False
        if self.drain_deadline is None:
            self.begin_drain()
        state = self.server_state
        if not state.connections and not state.tasks:
            _log.info("drained: no connection left")
            return True
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            _log.warning(
                "drain time (%gs) over with %d connections and %d requests left",
                self.drain_s,
                len(state.connections),
                len(state.tasks),
            )
            return True
        return False

    def begin_drain(self) -> None:
        """Stop accepting and make every further response close its connection."""
        self.drain_deadline = time.monotonic() + self.drain_s
        self.app.draining = True
        for server in getattr(self, "servers", []):
            server.close()
        if self.admin is not None:
            self.admin.remove()  # probes now see "not there" rather than "refused"
        for connection in list(self.server_state.connections):
            if _is_unix(connection):
                # The supervisor's idle keep-alive probe connection: the supervisor is the
                # one stopping us, so nothing races the close, and waiting for its
                # keep-alive timeout would only slow every rolling update down.
                connection.shutdown()
        _log.info(
            "draining: %d connections, %d requests in flight",
            len(self.server_state.connections),
            len(self.server_state.tasks),
        )


def _is_unix(connection: object) -> bool:
    transport = getattr(connection, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


def serve(
    app: ScoringApp,
    listener: socket.socket,
    *,
    admin: AdminSocket | None = None,
    drain_s: float = 30.0,
) -> None:
    """Serve `app` on `listener` (and the unix socket `admin`) until drained after SIGTERM."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(config, app, drain_s, admin)
    app.bind_server(server.server_state.tasks, accept_backlog(listener))
    listener.listen(BACKLOG)
    sockets = [listener] if admin is None else [listener, admin.sock]
    try:
        server.run(sockets=sockets)
    finally:
        app.flush()
        if admin is not None:
            admin.remove()
