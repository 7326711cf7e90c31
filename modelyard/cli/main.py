"""`modelyard`: serve, and manage models and tokens on a server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelyard.cli import deploy, images, manifests, models, tokens, webservices
from modelyard.cli._common import console

if TYPE_CHECKING:
    from modelyard.config import Settings

app = typer.Typer(
    help="modelyard: register models and serve them behind the Azure ML Model Management API.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(models.app, name="model")
app.add_typer(manifests.app, name="manifest")
app.add_typer(images.app, name="image")
app.add_typer(images.operations, name="operation")
app.add_typer(webservices.app, name="service")
app.command("deploy")(deploy.deploy)
app.add_typer(tokens.app, name="token")


def _settings(**flags: Any) -> Settings:
    """Settings from the flags given (None: not given), then env, TOML and defaults."""
    from modelyard.config import Settings
    from modelyard.logs import configure_logging

    settings = Settings(**{key: value for key, value in flags.items() if value is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default 8700.")] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Data dir; default $MODELYARD_HOME or ./.modelyard."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default SQLite in the data dir.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="console or json.")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Run the server (embedded defaults: SQLite and files under the data dir)."""
    import uvicorn

    from modelyard.app import create_app

    settings = _settings(
        host=host,
        port=port,
        home=home,
        database_url=database_url,
        config_file=config,
        log_format=log_format,
    )
    application = create_app(settings)
    console.print(
        f"modelyard serving on http://{settings.host}:{settings.port}  "
        f"data: {settings.home}  admin token: {settings.admin_token_path}",
        highlight=False,
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    home: Annotated[
        Path | None, typer.Option("--home", help="The server's data dir (shared).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="The server's metadata store.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 2,
) -> None:
    """Run operation workers (image builds) beside a server, on the same database and data dir."""
    import signal
    import threading

    from modelyard.app import build_context, build_workers, prepare_home
    from modelyard.store.database import Database

    settings = _settings(home=home, database_url=database_url, config_file=config)
    context = build_context(settings, Database(settings.effective_database_url))
    prepare_home(settings, context)
    pool = build_workers(settings, context, concurrency)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pool.start()
    console.print(
        f"modelyard worker: {concurrency} build workers on {settings.home}",
        highlight=False,
    )
    stop.wait()
    pool.stop()
