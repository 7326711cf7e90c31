"""What the benchmarks share: the server process under test and a few small helpers.

`ServerProcess` runs `python -m modelyard serve` on a free loopback port with the
defaults (inherited `MODELYARD_*` settings are dropped, so runs compare), plus only
the settings a benchmark passes on purpose in `extra_env`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0


class BenchError(Exception):
    """A request failed or the server misbehaved: the run is not a valid measurement."""


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return ordered[int(rank) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m modelyard serve` in `workdir` (so file:// URLs under it are allowed).

    `extra_env` is added to the server's environment after inherited `MODELYARD_*`
    settings are dropped: the settings (or tool variables such as `UV_CACHE_DIR`) a
    benchmark changes deliberately.
    """

    def __init__(
        self,
        home: Path,
        workdir: Path,
        database_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.workdir = workdir
        self.database_url = database_url
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.log = workdir.parent / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def start(self) -> None:
        args = [sys.executable, "-m", "modelyard", "serve", "--port", str(self.port)]
        args += ["--home", str(self.home)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        # Inherited MODELYARD_* settings would make runs incomparable: use the defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(self.extra_env)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchError(f"server exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise BenchError(f"server not ready in {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used (from /proc: Linux only)."""
        if self._process is None:
            return None
        return cpu_seconds_of(self._process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def positive_int(raw: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {raw})")
    return value


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every number."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU process `pid` has used, all its threads (/proc: Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields 14 and 15: utime, stime
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_bytes(pid: int) -> int | None:
    """Process `pid`'s resident memory (VmRSS in /proc/PID/status); None if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel's "kB" are KiB
    return None


def cores_busy_seconds(cores: set[int]) -> float | None:
    """Seconds `cores` spent busy (neither idle nor waiting for I/O) since boot, steal
    included (time the hypervisor gave to others); from /proc/stat, Linux only."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        ticks = [int(value) for value in rest.split()[:8]]
        busy += sum(ticks) - ticks[3] - ticks[4]  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")
