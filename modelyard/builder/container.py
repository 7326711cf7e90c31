"""The one wrapper around the docker CLI: is an engine there, build, log in, push.

Container images are optional: with a working engine an image build also produces a
real container image, without one the image runs from its environment on local
compute. Every docker call lives here so the rest of the builder is tested without
an engine, and so the rules for registry credentials are in one place:

- the password reaches docker only on stdin (`--password-stdin`), never on argv,
  where every local user can read it, and it is masked in the build log and errors;
- login and push use a throw-away docker config folder, so the credentials are not
  left in the server user's `~/.docker/config.json` and concurrent builds pushing to
  different registries (or as different users) do not overwrite each other's login.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from modelyard.builder.subprocesses import CancelToken, LogSink, run_logged

__all__ = ["build_and_push", "engine_available", "image_reference"]

_DOCKER = "docker"


def engine_available(timeout_s: float = 5) -> bool:
    """True when the docker CLI exists and its daemon answers, within `timeout_s`.

    Any failure (no CLI, no daemon, no permission on the socket, a hang) means no
    engine: images then run from their environments, which is not an error.
    """
    try:
        completed = subprocess.run(
            [_DOCKER, "info", "--format", "{{.ServerVersion}}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0


def image_reference(tag: str, registry: str | None) -> str:
    """The name an image is built and pushed as: `tag` under `registry` when one is given.

    A registry may be given as a URL (`https://example.azurecr.io/`); docker wants the
    bare host. A tag already naming that registry is kept as it is.
    """
    tag = tag.split("://", 1)[-1]
    if not registry:
        return tag
    host = _registry_host(registry)
    return tag if tag.startswith(f"{host}/") else f"{host}/{tag}"


def build_and_push(
    context: Path,
    tag: str,
    *,
    registry: str | None,
    user: str | None,
    password: str | None,
    log: LogSink,
    cancel: CancelToken,
) -> str:
    """Build the image in `context`; with a registry, push it there. Return its reference.

    The image is tagged `image_reference(tag, registry)`. Without a registry the image
    stays in the local engine. With a registry and both `user` and `password`, docker
    logs in first; with a registry but no credentials it pushes anonymously (a local
    registry). Only call this when `engine_available()`.
    """
    reference = image_reference(tag, registry)
    run_logged(
        [_DOCKER, "build", "-t", reference, str(context)],
        log=log,
        cancel=cancel,
        step="building container image",
    )
    if not registry:
        return reference
    host = _registry_host(registry)
    secrets = [password] if password else []
    with tempfile.TemporaryDirectory(prefix="modelyard-docker-") as config:
        env = dict(os.environ, DOCKER_CONFIG=config)
        if user is not None and password is not None:
            run_logged(
                [_DOCKER, "login", host, "--username", user, "--password-stdin"],
                log=log,
                cancel=cancel,
                env=env,
                step="logging in to the container registry",
                stdin_text=password,
                redact=secrets,
            )
        run_logged(
            [_DOCKER, "push", reference],
            log=log,
            cancel=cancel,
            env=env,
            step="pushing container image",
            redact=secrets,
        )
    return reference


def _registry_host(registry: str) -> str:
    return registry.split("://", 1)[-1].rstrip("/")
