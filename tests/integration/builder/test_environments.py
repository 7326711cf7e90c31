"""Environments are resolved and built with the real uv, cached by their lock's hash.

These tests reach PyPI through uv (its cache makes repeated runs fast). `six` is the
package of choice: tiny, pure Python, and not installed in the server's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelyard.builder import requirements
from modelyard.builder.environments import (
    READY_MARKER,
    Environment,
    FakeEnvironmentBuilder,
    Lock,
    UvEnvironmentBuilder,
    runtime_bundle_version,
)
from modelyard.builder.subprocesses import Never, run_logged
from modelyard.domain.errors import BuildFailed, OperationCancelled, UpstreamUnavailable

MISSING = "nosuchpackage-modelyard-xyz"


class Log(list[str]):
    """A log sink that keeps its lines (list.append is atomic, so threads may share it)."""

    def __call__(self, line: str) -> None:
        self.append(line)


def cancel_after(seconds: float) -> threading.Event:
    token = threading.Event()
    timer = threading.Timer(seconds, token.set)
    timer.daemon = True
    timer.start()
    return token


@pytest.fixture(scope="module")
def six_lock(tmp_path_factory: pytest.TempPathFactory) -> Lock:
    builder = UvEnvironmentBuilder(tmp_path_factory.mktemp("resolve"))
    return builder.resolve([*requirements.RUNTIME_REQUIREMENTS, "six"], log=Log(), cancel=Never())


@pytest.fixture
def builder(tmp_path: Path) -> UvEnvironmentBuilder:
    return UvEnvironmentBuilder(tmp_path / "envs")


def run_python(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


# -- resolve ----------------------------------------------------------------------------


def test_a_lock_pins_every_package_and_holds_no_temporary_paths(six_lock: Lock) -> None:
    pins = [line for line in six_lock.text.splitlines() if line and not line.startswith(" ")]
    assert any(line.startswith("six==") for line in pins)
    assert any(line.startswith("uvicorn==") for line in pins)
    assert all("==" in line for line in pins)
    assert "/tmp" not in six_lock.text
    assert len(six_lock.sha256) == 64


def test_resolving_the_same_requirements_again_gives_the_same_lock(
    builder: UvEnvironmentBuilder, six_lock: Lock
) -> None:
    again = builder.resolve([*requirements.RUNTIME_REQUIREMENTS, "six"], log=Log(), cancel=Never())
    assert again == six_lock


def test_an_unresolvable_requirement_fails_naming_it(builder: UvEnvironmentBuilder) -> None:
    with pytest.raises(BuildFailed) as caught:
        builder.resolve([f"{MISSING}==1.0"], log=Log(), cancel=Never())
    assert caught.value.message.startswith("resolving requirements failed")
    assert MISSING in caught.value.message


def test_conda_packages_missing_from_pypi_are_named(builder: UvEnvironmentBuilder) -> None:
    lines, conda_names = requirements.combined_requirements(
        requirements.RuntimeKind.PYTHON, None, f"dependencies: [six, {MISSING}=1.0]"
    )
    log = Log()
    with pytest.raises(BuildFailed) as caught:
        builder.resolve(lines, conda_names=conda_names, log=log, cancel=Never())
    message = caught.value.message
    assert f"not available on PyPI under the same name: {MISSING}" in message
    assert "six" not in message.split("same name:")[1]


def test_a_changed_runtime_changes_the_bundle_version(tmp_path: Path) -> None:
    source = tmp_path / "modelyard"
    (source / "domain").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "domain" / "errors.py").write_text("class A: ...\n")
    before = runtime_bundle_version(source)
    (source / "runtime").mkdir()
    (source / "runtime" / "__init__.py").write_text("")
    assert runtime_bundle_version(source) != before
    (source / "runtime" / "notes.txt").write_text("not copied")
    after = runtime_bundle_version(source)
    assert runtime_bundle_version(source) == after


# -- materialize ------------------------------------------------------------------------


def test_an_environment_has_its_packages_and_the_runtime_but_not_the_servers(
    builder: UvEnvironmentBuilder, six_lock: Lock
) -> None:
    env = builder.materialize(six_lock, log=Log(), cancel=Never())
    assert not env.reused
    assert env.path == builder.root / six_lock.sha256
    assert (env.path / READY_MARKER).is_file()
    probe = run_python(env.python, "import six, modelyard.runtime, modelyard.domain.errors")
    assert probe.returncode == 0, probe.stderr
    assert run_python(env.python, "import fastapi").returncode != 0
    assert run_python(Path(sys.executable), "import six").returncode != 0

    started = time.monotonic()
    again = builder.materialize(six_lock, log=Log(), cancel=Never())
    assert time.monotonic() - started < 2
    assert again == Environment(env.path, env.python, six_lock, reused=True)


def test_concurrent_builders_of_one_lock_build_it_once(
    builder: UvEnvironmentBuilder, six_lock: Lock
) -> None:
    with ThreadPoolExecutor(4) as pool:
        envs = list(
            pool.map(lambda _: builder.materialize(six_lock, log=Log(), cancel=Never()), range(4))
        )
    assert sorted(env.reused for env in envs) == [False, True, True, True]
    assert {env.path for env in envs} == {builder.root / six_lock.sha256}


def test_a_half_built_environment_is_removed_and_rebuilt(
    builder: UvEnvironmentBuilder, six_lock: Lock
) -> None:
    leftover = builder.root / six_lock.sha256
    (leftover / "bin").mkdir(parents=True)
    (leftover / "bin" / "python").write_text("killed half-way")
    log = Log()
    env = builder.materialize(six_lock, log=log, cancel=Never())
    assert not env.reused
    assert any("half-built" in line for line in log)
    assert run_python(env.python, "import six").returncode == 0


def test_a_failed_install_leaves_no_folder(builder: UvEnvironmentBuilder) -> None:
    bad = Lock(text=f"{MISSING}==1.0\n", sha256="0" * 64)
    with pytest.raises(BuildFailed) as caught:
        builder.materialize(bad, log=Log(), cancel=Never())
    assert caught.value.message.startswith("installing requirements failed")
    assert not (builder.root / bad.sha256).exists()


@pytest.fixture
def slow_uv(tmp_path: Path) -> tuple[str, Path]:
    """A uv that hangs in `pip install` (after the venv exists), recording its sleeper."""
    import uv

    pid_file = tmp_path / "sleeper.pid"
    script = tmp_path / "slow-uv"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = pip ] && [ "$2" = install ]; then\n'
        f"  sleep 60 & echo $! > {pid_file}; wait\n"
        "fi\n"
        f'exec {uv.find_uv_bin()} "$@"\n'
    )
    script.chmod(0o755)
    return str(script), pid_file


def test_cancelling_a_build_stops_its_tools_and_leaves_no_folder(
    tmp_path: Path, six_lock: Lock, slow_uv: tuple[str, Path]
) -> None:
    script, pid_file = slow_uv
    builder = UvEnvironmentBuilder(tmp_path / "envs", uv=script)
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        builder.materialize(six_lock, log=Log(), cancel=cancel_after(0.3))
    assert time.monotonic() - started < 5
    assert pid_file.exists(), "the build never reached the install step"
    assert not (builder.root / six_lock.sha256).exists()
    assert wait_gone(int(pid_file.read_text()))


def test_a_builder_waiting_for_another_can_be_cancelled(
    tmp_path: Path, six_lock: Lock, slow_uv: tuple[str, Path]
) -> None:
    script, _ = slow_uv
    slow = UvEnvironmentBuilder(tmp_path / "envs", uv=script)
    first_cancel = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(slow.materialize, six_lock, log=Log(), cancel=first_cancel)
        time.sleep(0.3)
        log = Log()
        with pytest.raises(OperationCancelled):
            slow.materialize(six_lock, log=log, cancel=cancel_after(0.3))
        assert "waiting for another build of the same environment" in log
        first_cancel.set()
        with pytest.raises(OperationCancelled):
            first.result()


def test_sweeping_removes_half_built_environments_nobody_builds(
    builder: UvEnvironmentBuilder,
) -> None:
    import fcntl

    builder.root.mkdir(parents=True)
    dead, busy, done = ("a" * 64, "b" * 64, "c" * 64)
    for sha in (dead, busy, done):
        (builder.root / sha).mkdir()
    (builder.root / done / READY_MARKER).write_text(done)
    with open(builder.root / f"{busy}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert builder.sweep_partial() == [builder.root / dead]
    assert not builder.is_ready(dead)
    assert (builder.root / busy).is_dir()
    assert builder.is_ready(done)


def test_the_fake_builder_builds_nothing_and_reports_reuse(tmp_path: Path) -> None:
    fake = FakeEnvironmentBuilder(tmp_path)
    lock = fake.resolve(["b", "a"], log=Log(), cancel=Never())
    assert lock.text == "a\nb\n"
    assert not fake.materialize(lock, log=Log(), cancel=Never()).reused
    assert fake.materialize(lock, log=Log(), cancel=Never()).reused
    assert fake.resolved == [["b", "a"]]


def wait_gone(pid: int, within_s: float = 5) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# -- run_logged: the runner every build step goes through ---------------------------------


def test_run_logged_streams_merged_output_line_by_line() -> None:
    log = Log()
    output = run_logged(
        ["sh", "-c", "echo one; echo two >&2; printf three"], log=log, step="saying"
    )
    assert log == ["one", "two", "three"]
    assert output == "one\ntwo\nthree"


def test_run_logged_failure_names_the_step_and_ends_with_the_output_tail() -> None:
    script = "for i in $(seq 1 100); do echo line $i; done; exit 3"
    with pytest.raises(BuildFailed) as caught:
        run_logged(["sh", "-c", script], log=Log(), step="counting")
    message = caught.value.message
    assert message.startswith("counting failed (exit 3): ")
    assert message.endswith("line 99 line 100")
    assert "line 70 " not in message


def test_run_logged_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(OperationCancelled, match="sleeping cancelled"):
        run_logged(
            ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"],
            log=Log(),
            cancel=cancel_after(0.3),
            step="sleeping",
        )
    assert time.monotonic() - started < 4
    assert wait_gone(int(pid_file.read_text()))


def test_run_logged_times_out_as_a_failed_build() -> None:
    with pytest.raises(BuildFailed, match=r"sleeping timed out after 0\.3 s"):
        run_logged(["sh", "-c", "echo zzz; sleep 60"], log=Log(), timeout_s=0.3, step="sleeping")


def test_run_logged_reports_a_tool_that_cannot_start() -> None:
    with pytest.raises(BuildFailed, match="checking failed: cannot run"):
        run_logged(["/nonexistent/tool"], log=Log(), step="checking")


def test_run_logged_feeds_stdin_and_masks_secrets() -> None:
    log = Log()
    output = run_logged(
        ["sh", "-c", "read secret; echo got $secret"],
        log=log,
        step="reading",
        stdin_text="hunter2\n",
        redact=["hunter2"],
    )
    assert log == ["got ********"]
    assert "hunter2" not in output


def test_run_logged_passes_cwd_and_env(tmp_path: Path) -> None:
    output = run_logged(
        ["sh", "-c", "pwd; echo $GREETING"],
        log=Log(),
        cwd=tmp_path,
        env={**os.environ, "GREETING": "hello"},
        step="greeting",
    )
    assert output.splitlines() == [str(tmp_path), "hello"]


def test_a_built_environment_is_found_again_without_the_package_index(tmp_path: Path) -> None:
    builder = UvEnvironmentBuilder(tmp_path / "envs")
    first = builder.resolve(["six"], log=Log(), cancel=Never())
    builder.materialize(first, log=Log(), cancel=Never())
    offline = UvEnvironmentBuilder(tmp_path / "envs", uv="/nonexistent/uv")  # no tool at all
    log = Log()
    again = offline.resolve(["six"], log=log, cancel=Never())
    assert again == first
    assert any("reusing the resolution" in line for line in log)
    assert offline.materialize(again, log=Log(), cancel=Never()).reused


def test_an_unreachable_index_is_an_upstream_failure_not_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = UvEnvironmentBuilder(tmp_path / "envs", resolution_ttl_s=0)
    monkeypatch.setenv("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    with pytest.raises(UpstreamUnavailable):
        builder.resolve(["nosuchpackage-modelyard-abc"], log=Log(), cancel=Never())
