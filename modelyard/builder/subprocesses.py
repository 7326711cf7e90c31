"""Run one build tool (uv, docker) as a cancellable, logged child process.

Every build step is an outside program whose output is the build log a user reads
when something goes wrong, and whose failure must become a typed error that says which
step failed and why. A build also has to stop promptly when its operation is cancelled,
including any grandchildren the tool started (uv runs build backends, docker runs
helpers), so each tool runs in its own process group and the whole group is killed.

Output is read by a thread (a blocking pipe read cannot also watch the cancel token)
and handed to the calling thread through a queue, so the log sink is only ever called
from the thread that called `run_logged` and need not be thread-safe.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol

from modelyard.domain.errors import BuildFailed, OperationCancelled

__all__ = ["CancelToken", "LogSink", "Never", "run_logged"]

LogSink = Callable[[str], None]
"""Receives one line of output (no trailing newline) at a time; appends to the build log."""

_POLL_S = 0.2
_TERM_GRACE_S = 3.0
_TAIL_LINES = 30
_TAIL_CHARS = 4000
_REDACTED = "********"


class CancelToken(Protocol):
    """Anything that says whether the work was cancelled; `threading.Event` is one."""

    def is_set(self) -> bool: ...


class Never:
    """A token that is never set: for work nobody can cancel (tests, start-up checks)."""

    def is_set(self) -> bool:
        return False


def run_logged(
    args: list[str],
    *,
    log: LogSink,
    cancel: CancelToken | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
    step: str,
    stdin_text: str | None = None,
    redact: Sequence[str] = (),
) -> str:
    """Run `args`, stream its merged output to `log` line by line, and return all of it.

    `step` names the build step in errors ("resolving requirements failed (exit 1): …").
    `stdin_text` is written to the child's stdin and then closed: the only way a secret
    (a registry password) may reach a tool, since argv is visible to every local user.
    Every string in `redact` is masked in what reaches `log`, the return value and
    error messages, in case a tool echoes it.

    Raises OperationCancelled when `cancel` is set, BuildFailed on timeout, a non-zero
    exit, or a tool that cannot be started; in each case the process group is gone.
    """
    secrets = [s for s in redact if s]

    def clean(line: str) -> str:
        for secret in secrets:
            line = line.replace(secret, _REDACTED)
        return line

    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise BuildFailed(f"{step} failed: cannot run {args[0]}: {exc.strerror or exc}") from exc

    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_read_lines, args=(proc.stdout, lines), name=f"run_logged:{step}", daemon=True
    )
    reader.start()
    output: list[str] = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    exited_at: float | None = None
    try:
        if stdin_text is not None:
            _feed_stdin(proc, stdin_text)
        eof = False
        while not eof or proc.poll() is None:
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                raise OperationCancelled(f"{step} cancelled")
            if deadline is not None and time.monotonic() > deadline:
                _kill_group(proc)
                _drain(lines, output, clean)
                raise BuildFailed(f"{step} timed out after {timeout_s:g} s: {_tail(output)}")
            if eof:
                # Output ended before the tool exited: only its exit is left to wait for.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_POLL_S)
                continue
            try:
                item = lines.get(timeout=_POLL_S)
            except queue.Empty:
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > _TERM_GRACE_S:
                        # Something the tool started still holds the pipe open.
                        _signal_group(proc.pid, signal.SIGKILL)
                continue
            while item is not None:
                line = clean(item)
                output.append(line)
                log(line)
                try:
                    item = lines.get_nowait()
                except queue.Empty:
                    break
            else:
                eof = True
        returncode = proc.returncode
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        else:
            # The tool exited; anything it left behind in its group goes with it.
            _signal_group(proc.pid, signal.SIGKILL)
        reader.join(timeout=_TERM_GRACE_S)
        if not reader.is_alive():
            # A reader still blocked means a process that left our group holds the
            # pipe; closing under it would block on the reader's lock, so leave it.
            proc.stdout.close()
    if returncode != 0:
        raise BuildFailed(f"{step} failed (exit {returncode}): {_tail(output)}")
    return "\n".join(output)


def _read_lines(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Pump the pipe into the queue; None marks end of output."""
    try:
        for raw in stream:
            lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass  # the pipe was closed under us while the group was being killed
    finally:
        lines.put(None)


def _feed_stdin(proc: subprocess.Popen[bytes], text: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode())
    except BrokenPipeError:
        pass  # the tool exited without reading; its exit status says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()


def _drain(lines: queue.Queue[str | None], output: list[str], clean: Callable[[str], str]) -> None:
    """Collect what is already queued, so a timeout's message shows the latest output."""
    while True:
        try:
            item = lines.get_nowait()
        except queue.Empty:
            return
        if item is not None:
            output.append(clean(item))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, then SIGKILL it if the leader has not exited in time."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_TERM_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_TERM_GRACE_S)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(output: list[str]) -> str:
    """The last lines of output on one line: enough to say why without the whole log."""
    text = " ".join(line.strip() for line in output[-_TAIL_LINES:] if line.strip())
    if len(text) > _TAIL_CHARS:
        text = "…" + text[-_TAIL_CHARS:]
    return text or "(no output)"
