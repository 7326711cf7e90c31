"""Container builds go through the docker CLI; secrets reach it only on stdin.

The real engine is only asked whether it works: building and pushing are checked with
a fake `docker` placed first on PATH, which records how it was called.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from modelyard.builder.container import build_and_push, engine_available, image_reference
from modelyard.builder.subprocesses import Never
from modelyard.domain.errors import BuildFailed, OperationCancelled

PASSWORD = "s3cr3t-Pa55word"

FAKE_DOCKER = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
record = {{"argv": args, "docker_config": os.environ.get("DOCKER_CONFIG")}}
if args[:1] == ["login"]:
    record["stdin"] = sys.stdin.read()
    # A careless tool might echo what it read: the log must still not show it.
    print("Login with " + record["stdin"].strip())
    print("Login Succeeded")
elif args[:1] == ["info"]:
    mode = os.environ.get("FAKE_DOCKER_INFO", "fail")
    if mode == "hang":
        time.sleep(60)
    if mode == "fail":
        print("Cannot connect to the Docker daemon", file=sys.stderr)
        sys.exit(1)
elif args[:1] == ["build"]:
    print("Step 1/1 : FROM python:3.11-slim")
    if os.environ.get("FAKE_DOCKER_BUILD") == "slow":
        time.sleep(60)
    if os.environ.get("FAKE_DOCKER_BUILD") == "fail":
        print("ERROR: failed to solve: python:9-slim: not found", file=sys.stderr)
        sys.exit(1)
elif args[:1] == ["push"]:
    print("latest: digest: sha256:abc size: 1234")
with open(os.environ["FAKE_DOCKER_CALLS"], "a") as calls:
    calls.write(json.dumps(record) + "\\n")
"""


class Log(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake docker first on PATH; returns the file its calls are recorded in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_CALLS", str(calls))
    return calls


def recorded(calls: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_engine_available_answers_quickly_on_this_machine() -> None:
    started = time.monotonic()
    available = engine_available(timeout_s=5)
    assert isinstance(available, bool)
    assert time.monotonic() - started < 6


def test_no_engine_when_the_docker_cli_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert engine_available() is False


def test_no_engine_when_the_daemon_does_not_answer_with_fake_docker_cli(
    fake_docker: Path,
) -> None:
    assert engine_available() is False


def test_no_engine_when_docker_hangs_with_fake_docker_cli(
    fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_INFO", "hang")
    started = time.monotonic()
    assert engine_available(timeout_s=0.5) is False
    assert time.monotonic() - started < 3


def test_an_engine_that_answers_is_available_with_fake_docker_cli(
    fake_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_INFO", "ok")
    assert engine_available() is True


def test_build_without_a_registry_only_builds_with_fake_docker_cli(
    fake_docker: Path, tmp_path: Path
) -> None:
    log = Log()
    reference = build_and_push(
        tmp_path, "my-image:3", registry=None, user=None, password=None, log=log, cancel=Never()
    )
    assert reference == "my-image:3"
    assert [call["argv"] for call in recorded(fake_docker)] == [
        ["build", "-t", "my-image:3", str(tmp_path)]
    ]
    assert "Step 1/1 : FROM python:3.11-slim" in log


def test_build_login_and_push_keep_the_password_off_argv_and_log_with_fake_docker_cli(
    fake_docker: Path, tmp_path: Path
) -> None:
    log = Log()
    reference = build_and_push(
        tmp_path,
        "my-image:3",
        registry="https://example.azurecr.io/",
        user="robot",
        password=PASSWORD,
        log=log,
        cancel=Never(),
    )
    assert reference == "example.azurecr.io/my-image:3"
    calls = recorded(fake_docker)
    assert [call["argv"] for call in calls] == [
        ["build", "-t", reference, str(tmp_path)],
        ["login", "example.azurecr.io", "--username", "robot", "--password-stdin"],
        ["push", reference],
    ]
    assert calls[1]["stdin"] == PASSWORD
    assert all(PASSWORD not in " ".join(call["argv"]) for call in calls)
    assert all(PASSWORD not in line for line in log)
    assert "Login Succeeded" in log
    # Login and push share a private docker config that is gone afterwards.
    config = calls[1]["docker_config"]
    assert config is not None
    assert calls[2]["docker_config"] == config
    assert not Path(str(config)).exists()


def test_a_tag_that_already_names_the_registry_is_kept() -> None:
    assert image_reference("example.io/a:1", "example.io") == "example.io/a:1"
    assert image_reference("https://example.io/a:1", "https://example.io") == "example.io/a:1"
    assert image_reference("a:1", "localhost:5000") == "localhost:5000/a:1"
    assert image_reference("a:1", None) == "a:1"


def test_a_registry_without_credentials_pushes_without_login_with_fake_docker_cli(
    fake_docker: Path, tmp_path: Path
) -> None:
    build_and_push(
        tmp_path,
        "a:1",
        registry="localhost:5000",
        user=None,
        password=None,
        log=Log(),
        cancel=Never(),
    )
    assert [call["argv"][0] for call in recorded(fake_docker)] == ["build", "push"]


def test_a_failed_build_says_so_with_the_engines_message_with_fake_docker_cli(
    fake_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_BUILD", "fail")
    with pytest.raises(BuildFailed) as caught:
        build_and_push(
            tmp_path,
            "a:1",
            registry="r.io",
            user="u",
            password=PASSWORD,
            log=Log(),
            cancel=Never(),
        )
    assert caught.value.message.startswith("building container image failed (exit 1)")
    assert "python:9-slim: not found" in caught.value.message


def test_a_build_can_be_cancelled_with_fake_docker_cli(
    fake_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_BUILD", "slow")
    token = threading.Event()
    timer = threading.Timer(0.3, token.set)
    timer.daemon = True
    timer.start()
    with pytest.raises(OperationCancelled, match="building container image cancelled"):
        build_and_push(
            tmp_path, "a:1", registry=None, user=None, password=None, log=Log(), cancel=token
        )
