"""Python environments for images: resolved once into a lock, built once per lock.

An image's environment is built in two steps with uv. `resolve` turns requirement
lines into a lock (every package pinned, for the interpreter that will run it);
`materialize` turns a lock into a virtual environment. Environments are cached by the
hash of the resolved lock (plus the interpreter's version and the bundled scoring
runtime), so two manifests that resolve to the same packages share one environment,
and rebuilding an image whose requirements did not change costs nothing.

Two rules keep the cache safe:

- Never a half-built environment in use. An environment is complete only once the
  marker `.modelyard-ready` is written, last and fsynced, after every package and the
  runtime are in place. A build killed at any point (kill -9, power cut of the
  process, cancellation) leaves a folder without the marker, which the next build of
  that lock removes and builds again, and which `sweep_partial` removes at start-up.
- One build per lock at a time. Builders of the same lock take an exclusive `flock`
  on `<root>/<sha>.lock` while they check and build: the first builds, the others
  wait and then reuse its environment. A lock held by a dead process is released by
  the kernel, so a crashed builder never blocks the next one.

Nothing from the server's own environment enters an image environment except the
scoring runtime (`modelyard/__init__.py`, `modelyard/domain/`, `modelyard/runtime/`),
copied into `<env>/modelyard-runtime/` and put on the path with a `.pth` file: the
runtime imports nothing above `domain/`, and the model's packages must not be shadowed
by, or conflict with, the server's.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelyard.builder.subprocesses import CancelToken, LogSink, run_logged
from modelyard.domain.errors import BuildFailed, OperationCancelled, UpstreamUnavailable

__all__ = [
    "READY_MARKER",
    "Environment",
    "EnvironmentBuilder",
    "FakeEnvironmentBuilder",
    "Lock",
    "UvEnvironmentBuilder",
    "runtime_bundle_version",
]

READY_MARKER = ".modelyard-ready"
_RUNTIME_DIR = "modelyard-runtime"
_PTH_NAME = "modelyard-runtime.pth"
_LOCK_FILE = "lock.txt"
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_WAIT_POLL_S = 0.2
_MAX_CHECKS = 8
# uv's words when the package index cannot be reached (not the user's mistake).
_NETWORK_MARKERS = (
    "Request failed after",
    "Connection refused",
    "dns error",
    "failed to lookup address",
    "Could not connect",
    "operation timed out",
)
# Variables that would point uv or the new interpreter at the server's environment.
_SCRUBBED_ENV = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "PYTHONPATH", "UV_PYTHON")
_PLACEHOLDER_RUNTIME = b'"""Placeholder: this server was installed without a scoring runtime."""\n'


@dataclass(frozen=True)
class Lock:
    """A resolved, fully pinned set of requirements for one interpreter version."""

    text: str
    """The pins as `uv pip compile` writes them, without header or absolute paths."""
    sha256: str
    """Hash of `text`, the interpreter's major.minor and the runtime bundle: the cache key."""


@dataclass(frozen=True)
class Environment:
    """A complete virtual environment built from a lock."""

    path: Path
    """The environment's root folder."""
    python: Path
    """Its interpreter: `path/bin/python`."""
    lock: Lock
    reused: bool
    """True when it was already built (a cache hit), False when this call built it."""


class EnvironmentBuilder(Protocol):
    """Resolves requirements into locks and builds environments from them."""

    def resolve(
        self,
        requirements: list[str],
        *,
        conda_names: Sequence[str] = (),
        log: LogSink,
        cancel: CancelToken,
    ) -> Lock: ...

    def materialize(self, lock: Lock, *, log: LogSink, cancel: CancelToken) -> Environment: ...


def runtime_bundle_version(source: Path) -> str:
    """Hash of the runtime sources copied into every environment from `source`.

    `source` is the `modelyard` package folder. Part of every lock's cache key, so a
    server with a changed runtime builds new environments rather than reusing ones
    that carry the old runtime.
    """
    return _bundle_hash(_bundle_files(source))


class UvEnvironmentBuilder:
    """Builds environments under `root` with uv, one folder per lock hash.

    `python` is the interpreter environments are built for (default: the server's);
    `uv` the uv binary (default: the one installed with modelyard); `runtime_source`
    the `modelyard` package folder whose runtime is copied in (default: this one).
    """

    def __init__(
        self,
        root: Path,
        *,
        python: str = sys.executable,
        uv: str | None = None,
        runtime_source: Path | None = None,
        resolution_ttl_s: float = 24 * 3600,
    ) -> None:
        self.root = root
        self.resolution_ttl_s = resolution_ttl_s
        self._python = python
        self._uv = uv
        self._runtime_source = runtime_source
        self._cache_lock = threading.Lock()
        self._python_version: str | None = None
        self._bundle: list[tuple[str, bytes]] | None = None

    # -- resolve ---------------------------------------------------------------------

    def resolve(
        self,
        requirements: list[str],
        *,
        conda_names: Sequence[str] = (),
        log: LogSink,
        cancel: CancelToken,
    ) -> Lock:
        """Pin `requirements` for the target interpreter with `uv pip compile`.

        When resolution fails and some requirements came from conda package names,
        those names are checked one by one so the error can say which ones PyPI does
        not have (the usual reason a conda file fails here); otherwise the error
        carries uv's own explanation.
        """
        if cancel.is_set():
            raise OperationCancelled("resolving requirements cancelled")
        reused = self._recent_resolution(requirements, log)
        if reused is not None:
            return reused
        with tempfile.TemporaryDirectory(prefix="modelyard-resolve-") as tmp:
            workdir = Path(tmp)
            (workdir / "requirements.in").write_text("\n".join(requirements) + "\n")
            args = [
                self._uv_bin(),
                "pip",
                "compile",
                "requirements.in",
                "-o",
                _LOCK_FILE,
                "--python",
                self._python,
                "--no-header",
            ]
            log(f"resolving {len(requirements)} requirements with uv for {self._python}")
            try:
                run_logged(
                    args,
                    log=log,
                    cancel=cancel,
                    cwd=workdir,
                    env=_tool_env(),
                    step="resolving requirements",
                )
            except BuildFailed as exc:
                if any(marker in exc.message for marker in _NETWORK_MARKERS):
                    raise UpstreamUnavailable(
                        "resolving requirements failed: the package index could not be "
                        f"reached ({exc.message[-300:]})"
                    ) from exc
                if conda_names:
                    log(f"checking whether conda packages exist on PyPI: {', '.join(conda_names)}")
                    missing = self._missing_on_pypi(conda_names, workdir, cancel)
                    if missing:
                        raise BuildFailed(
                            "resolving requirements failed: conda packages not available on "
                            f"PyPI under the same name: {', '.join(missing)}"
                        ) from exc
                raise
            text = _deterministic(
                (workdir / _LOCK_FILE).read_text(), [str(workdir), os.path.realpath(workdir)]
            )
        digest = hashlib.sha256()
        for part in (text, self._target_python_version(), self._bundle_version()):
            digest.update(part.encode())
            digest.update(b"\0")
        lock = Lock(text=text, sha256=digest.hexdigest())
        log(f"resolved lock {lock.sha256}")
        self._remember_resolution(requirements, lock)
        return lock

    def _resolution_file(self, requirements: list[str]) -> Path:
        digest = hashlib.sha256()
        for part in (*requirements, self._python, self._target_python_version()):
            digest.update(part.encode())
            digest.update(b"\0")
        return self.root / "resolutions" / f"{digest.hexdigest()}.lock"

    def _recent_resolution(self, requirements: list[str], log: LogSink) -> Lock | None:
        """The lock of identical requirements resolved within `resolution_ttl_s`, if its
        environment is still complete: such a build then needs no package index at all.
        """
        if self.resolution_ttl_s <= 0:
            return None
        path = self._resolution_file(requirements)
        try:
            age = time.time() - path.stat().st_mtime
            text = path.read_text()
        except OSError:
            return None
        if age > self.resolution_ttl_s:
            return None
        digest = hashlib.sha256()
        for part in (text, self._target_python_version(), self._bundle_version()):
            digest.update(part.encode())
            digest.update(b"\0")
        lock = Lock(text=text, sha256=digest.hexdigest())
        if not self.is_ready(lock.sha256):
            return None
        log(
            f"reusing the resolution of identical requirements from {age:.0f} s ago: "
            f"lock {lock.sha256}"
        )
        return lock

    def _remember_resolution(self, requirements: list[str], lock: Lock) -> None:
        path = self._resolution_file(requirements)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        staging.write_text(lock.text)
        staging.replace(path)

    def _missing_on_pypi(
        self, names: Sequence[str], workdir: Path, cancel: CancelToken
    ) -> list[str]:
        """The names that PyPI does not know, each compiled alone (cheap: uv caches)."""

        def missing(index: int, name: str) -> bool:
            source = workdir / f"check-{index}.in"
            source.write_text(name + "\n")
            try:
                run_logged(
                    [
                        self._uv_bin(),
                        "pip",
                        "compile",
                        source.name,
                        "--no-deps",
                        "--no-header",
                        "--python",
                        self._python,
                    ],
                    log=_discard,
                    cancel=cancel,
                    cwd=workdir,
                    env=_tool_env(),
                    step=f"looking up {name}",
                )
            except BuildFailed as exc:
                return "not found in the package registry" in exc.message
            return False

        workers = min(_MAX_CHECKS, len(names))
        with concurrent.futures.ThreadPoolExecutor(workers, "conda-check") as pool:
            found = list(pool.map(missing, range(len(names)), names))
        return [name for name, is_missing in zip(names, found, strict=True) if is_missing]

    # -- materialize -----------------------------------------------------------------

    def materialize(self, lock: Lock, *, log: LogSink, cancel: CancelToken) -> Environment:
        """Return the environment for `lock`, building it unless a finished one exists.

        Waits (cancellably) while another builder holds the same lock, then reuses its
        result. A folder without the ready marker is a killed build: it is removed
        and built again. On failure or cancellation the partial folder is removed.
        """
        path = self._env_path(lock.sha256)
        if cancel.is_set():
            raise OperationCancelled("materializing environment cancelled")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_ready(lock.sha256):
            # The marker is written last and fsynced: a finished environment needs no lock.
            log(f"reusing environment {path}")
            return Environment(path, path / "bin" / "python", lock, reused=True)
        with self._exclusive(lock.sha256, log=log, cancel=cancel):
            if self.is_ready(lock.sha256):
                log(f"reusing environment {path}")
                return Environment(path, path / "bin" / "python", lock, reused=True)
            if path.exists():
                log(f"removing half-built environment {path} left by an interrupted build")
                shutil.rmtree(path)
            log(f"building environment {path}")
            try:
                self._build(path, lock, log=log, cancel=cancel)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
        log(f"environment ready: {path}")
        return Environment(path, path / "bin" / "python", lock, reused=False)

    def _build(self, path: Path, lock: Lock, *, log: LogSink, cancel: CancelToken) -> None:
        env = _tool_env()
        run_logged(
            [self._uv_bin(), "venv", str(path), "--python", self._python, "--no-project"],
            log=log,
            cancel=cancel,
            cwd=self.root,
            env=env,
            step="creating environment",
        )
        lock_file = path / _LOCK_FILE
        lock_file.write_text(lock.text)
        python = path / "bin" / "python"
        run_logged(
            [
                self._uv_bin(),
                "pip",
                "install",
                "-r",
                str(lock_file),
                "--python",
                str(python),
                "--compile-bytecode",
            ],
            log=log,
            cancel=cancel,
            cwd=self.root,
            env=env,
            step="installing requirements",
        )
        if cancel.is_set():
            raise OperationCancelled("installing the scoring runtime cancelled")
        self._install_runtime(path, log)
        _write_synced(path / READY_MARKER, lock.sha256 + "\n")

    def _install_runtime(self, path: Path, log: LogSink) -> None:
        """Copy the scoring runtime in and put it on the environment's path."""
        target = path / _RUNTIME_DIR
        for relative, content in self._bundle_files():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(content)
        site_packages = sorted(path.glob("lib/python*/site-packages"))
        if len(site_packages) != 1:
            raise BuildFailed(
                f"installing the scoring runtime failed: no single site-packages under {path}"
            )
        (site_packages[0] / _PTH_NAME).write_text(f"{target}\n")
        log(f"installed the modelyard scoring runtime ({self._bundle_version()[:12]})")

    # -- cache housekeeping ----------------------------------------------------------

    def is_ready(self, sha: str) -> bool:
        """True when the environment for lock hash `sha` is completely built."""
        return (self._env_path(sha) / READY_MARKER).is_file()

    def sweep_partial(self) -> list[Path]:
        """Remove half-built environments nobody is building; return what was removed.

        For start-up: a folder without the ready marker whose lock can be taken at
        once was left by a build that died. One whose lock is held is still being
        built (by another process sharing the root) and is left alone.
        """
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for path in sorted(self.root.iterdir()):
            if not path.is_dir() or not _SHA_RE.fullmatch(path.name):
                continue
            fd = os.open(self.root / f"{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if not self.is_ready(path.name):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            finally:
                os.close(fd)
        return removed

    # -- helpers ---------------------------------------------------------------------

    def _env_path(self, sha: str) -> Path:
        if not _SHA_RE.fullmatch(sha):
            raise ValueError(f"not a lock hash: {sha!r}")
        return self.root / sha

    @contextlib.contextmanager
    def _exclusive(self, sha: str, *, log: LogSink, cancel: CancelToken) -> Iterator[None]:
        """Hold the per-lock flock; poll so that waiting for it can be cancelled."""
        fd = os.open(self.root / f"{sha}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        log("waiting for another build of the same environment")
                        waiting = True
                if cancel.is_set():
                    raise OperationCancelled("waiting for the environment build cancelled")
                time.sleep(_WAIT_POLL_S)
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    def _uv_bin(self) -> str:
        if self._uv is None:
            import uv  # deferred: finding the binary touches the filesystem

            self._uv = uv.find_uv_bin()
        return self._uv

    def _target_python_version(self) -> str:
        """The target interpreter's major.minor: a lock only fits that version."""
        with self._cache_lock:
            if self._python_version is None:
                try:
                    completed = subprocess.run(
                        [self._python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                        capture_output=True,
                        text=True,
                        timeout=30,
                        check=True,
                    )
                except (OSError, subprocess.SubprocessError) as exc:
                    raise BuildFailed(
                        f"resolving requirements failed: cannot run {self._python}: {exc}"
                    ) from exc
                self._python_version = completed.stdout.strip()
            return self._python_version

    def _bundle_files(self) -> list[tuple[str, bytes]]:
        with self._cache_lock:
            if self._bundle is None:
                source = self._runtime_source
                if source is None:
                    import modelyard

                    source = Path(modelyard.__file__).parent
                self._bundle = _bundle_files(source)
            return self._bundle

    def _bundle_version(self) -> str:
        return _bundle_hash(self._bundle_files())


class FakeEnvironmentBuilder:
    """An EnvironmentBuilder that runs no tool: for tests of the code that builds images.

    `resolve` returns a lock of the sorted requirement lines; `materialize` creates
    `root/<sha>` with the ready marker and reports the running interpreter (which can
    import the scoring runtime) as the environment's python. Set `fail_resolve` or
    `fail_materialize` to an error to make that step raise it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resolved: list[list[str]] = []
        self.materialized: list[Lock] = []
        self.fail_resolve: Exception | None = None
        self.fail_materialize: Exception | None = None

    def resolve(
        self,
        requirements: list[str],
        *,
        conda_names: Sequence[str] = (),
        log: LogSink,
        cancel: CancelToken,
    ) -> Lock:
        if cancel.is_set():
            raise OperationCancelled("resolving requirements cancelled")
        self.resolved.append(list(requirements))
        if self.fail_resolve is not None:
            raise self.fail_resolve
        text = "".join(f"{line}\n" for line in sorted(requirements))
        log(text.rstrip("\n"))
        return Lock(text=text, sha256=hashlib.sha256(text.encode()).hexdigest())

    def materialize(self, lock: Lock, *, log: LogSink, cancel: CancelToken) -> Environment:
        if cancel.is_set():
            raise OperationCancelled("creating environment cancelled")
        self.materialized.append(lock)
        if self.fail_materialize is not None:
            raise self.fail_materialize
        path = self.root / lock.sha256
        reused = (path / READY_MARKER).is_file()
        path.mkdir(parents=True, exist_ok=True)
        (path / _LOCK_FILE).write_text(lock.text)
        (path / READY_MARKER).write_text(lock.sha256 + "\n")
        log(f"{'reusing' if reused else 'built'} environment {path}")
        return Environment(path, Path(sys.executable), lock, reused=reused)


def _bundle_files(source: Path) -> list[tuple[str, bytes]]:
    """The runtime's files as (path inside the bundle, content), sorted by path."""
    files: dict[str, bytes] = {}
    for name in ("__init__.py", "py.typed"):
        if (source / name).is_file():
            files[f"modelyard/{name}"] = (source / name).read_bytes()
    for package in ("domain", "runtime"):
        for file in (source / package).rglob("*.py"):
            if "__pycache__" not in file.parts:
                files[f"modelyard/{file.relative_to(source).as_posix()}"] = file.read_bytes()
    # Without a runtime yet, an importable empty package keeps environments uniform.
    files.setdefault("modelyard/runtime/__init__.py", _PLACEHOLDER_RUNTIME)
    return sorted(files.items())


def _bundle_hash(files: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for relative, content in files:
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def _deterministic(text: str, volatile: list[str]) -> str:
    """Drop comment lines that name temporary paths, so equal pins give equal text."""
    kept = [
        line
        for line in text.splitlines()
        if not (line.lstrip().startswith("#") and any(v in line for v in volatile))
    ]
    return "\n".join(kept) + "\n"


def _tool_env() -> dict[str, str]:
    """The server's environment minus what would point tools at the server's Python."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["NO_COLOR"] = "1"
    return env


def _write_synced(path: Path, content: str) -> None:
    """Write a file and make it, and its name in the folder, durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _discard(line: str) -> None:
    """A log sink for look-ups whose output would only clutter the build log."""
