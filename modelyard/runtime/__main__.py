"""Start a replica: `python -m modelyard.runtime --image-dir CONTEXT [options]`.

    --image-dir CONTEXT     an image's build context (holds image.json)
    --fd N                  serve on this inherited, listening TCP socket ...
    --host H --port P       ... or bind this address (default 127.0.0.1:5001; $HOST, $PORT)
    --admin-socket PATH     also serve on this unix socket (readiness, metrics)
    --service-dir DIR       where collected data goes ($MODELYARD_SERVICE_DIR; default: cwd)
    --replica-id ID         names this replica's files ($MODELYARD_REPLICA_ID; default: pid)

The environment variables are described in `modelyard.runtime.settings`. The order
matters: the driver's `init()` runs before anything listens, so a replica that
answers at all has its model loaded. Exit status: 0 after a clean drain, 2 for bad
arguments, 3 when the replica could not start (bad image, driver or settings).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from modelyard.domain.errors import ModelyardError
from modelyard.runtime.driver import Driver, load_builtin, load_driver
from modelyard.runtime.factory import create_app
from modelyard.runtime.image import ImageSpec, read_image
from modelyard.runtime.models import IMAGE_DIR_ENV
from modelyard.runtime.server import (
    bind_tcp,
    inherited_socket,
    listen_unix,
    serve,
    set_parent_death_signal,
)
from modelyard.runtime.settings import RuntimeSettings

STARTUP_FAILED = 3
_log = logging.getLogger("modelyard.runtime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modelyard.runtime", description="Serve an image's model over HTTP."
    )
    parser.add_argument("--image-dir", type=Path, required=True, help="an image's build context")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--fd", type=int, help="an inherited listening socket to serve on")
    where.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default 5001)")
    parser.add_argument("--admin-socket", type=Path, help="also serve on this unix socket")
    parser.add_argument("--service-dir", type=Path, help="the service's folder (collected data)")
    parser.add_argument("--replica-id", help="this replica's name within its service")
    args = parser.parse_args(argv)
    if args.fd is not None and args.port is not None:
        parser.error("--port cannot be combined with --fd")
    return args


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        settings = RuntimeSettings.from_env(os.environ)
        if settings.pdeathsig and set_parent_death_signal() and os.getppid() != parent:
            _log.error("the supervising process exited before this replica started")
            return STARTUP_FAILED
        image = read_image(args.image_dir)
        os.environ[IMAGE_DIR_ENV] = str(image.context)
        if image.model_dir is not None:
            os.environ.setdefault("AZUREML_MODEL_DIR", str(image.model_dir))
        if args.fd is not None:
            listener = inherited_socket(args.fd)
        else:
            host = args.host or os.environ.get("HOST") or "127.0.0.1"
            listener = bind_tcp(host, args.port or int(os.environ.get("PORT") or 5001))
        driver = _driver(image)
        driver.init()
        app = create_app(
            driver,
            settings,
            title=image.name or image.context.name,
            service_dir=args.service_dir or _env_path("MODELYARD_SERVICE_DIR"),
            replica_id=args.replica_id
            or os.environ.get("MODELYARD_REPLICA_ID")
            or str(os.getpid()),
        )
        admin = listen_unix(args.admin_socket) if args.admin_socket is not None else None
    except ModelyardError as exc:
        _log.error("replica cannot start: %s", exc.message)
        return STARTUP_FAILED
    except Exception:
        _log.exception("replica cannot start")
        return STARTUP_FAILED
    _log.info(
        "serving %s on %s%s (max %d concurrent%s)",
        driver.name,
        listener.getsockname(),
        f" and {args.admin_socket}" if args.admin_socket else "",
        settings.max_concurrent,
        ", batching" if app.batcher is not None else "",
    )
    serve(app, listener, admin=admin, drain_s=settings.drain_s)
    return 0


def _driver(image: ImageSpec) -> Driver:
    if image.driver is not None:
        return load_driver(image.driver)
    assert image.builtin is not None  # read_image guarantees one of the two
    return load_builtin(image.builtin)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


if __name__ == "__main__":
    sys.exit(main())
