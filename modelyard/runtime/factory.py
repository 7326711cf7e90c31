"""`create_app`: assemble a ScoringApp for an initialised driver from the settings.

One explicit function decides which optional parts exist (keys, batching, data
collection, request log), so the app itself only tests `is None` on the hot path and
nothing is built at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelyard.runtime.app import ScoringApp
from modelyard.runtime.auth import KeyFileWatcher, KeyRing
from modelyard.runtime.collection import DataCollector
from modelyard.runtime.driver import Driver
from modelyard.runtime.insights import RequestLog
from modelyard.runtime.settings import RuntimeSettings
from modelyard.runtime.swagger import infer_schema, swagger_document

__all__ = ["create_app", "driver_swagger"]


def create_app(
    driver: Driver,
    settings: RuntimeSettings,
    *,
    title: str = "modelyard service",
    service_dir: Path | None = None,
    replica_id: str = "0",
) -> ScoringApp:
    """The app for `driver` (already initialised: its attributes are read now)."""
    keys: KeyRing | None = None
    watcher: KeyFileWatcher | None = None
    if settings.keys_file is not None:
        keys = KeyRing()
        watcher = KeyFileWatcher(settings.keys_file, keys)
    app = ScoringApp(
        driver,
        swagger=json.dumps(driver_swagger(driver, title, secured=keys is not None)).encode(),
        max_concurrent=settings.max_concurrent,
        keys=keys,
        key_watcher=watcher,
        collector=(
            DataCollector(service_dir or Path.cwd(), replica_id)
            if settings.data_collection
            else None
        ),
        request_log=RequestLog() if settings.app_insights else None,
    )
    if driver.run_batch is not None and settings.batching:
        app.enable_batching(
            max_size=max(1, int(driver.number("batch_max_size", settings.batch_max_size))),
            max_wait_s=driver.number("batch_max_wait_ms", settings.batch_max_wait_ms) / 1000,
        )
    return app


def driver_swagger(driver: Driver, title: str, *, secured: bool) -> dict[str, Any]:
    """The swagger document for what `driver` declares about its input and output."""
    input_sample = driver.attribute("input_sample")
    output_sample = driver.attribute("output_sample")
    input_schema = driver.attribute("input_schema")
    output_schema = driver.attribute("output_schema")
    if not isinstance(input_schema, dict):
        input_schema = infer_schema(input_sample) if input_sample is not None else None
    if not isinstance(output_schema, dict):
        output_schema = infer_schema(output_sample) if output_sample is not None else None
    return swagger_document(
        title=title,
        input_schema=input_schema,
        output_schema=output_schema,
        input_example=input_sample,
        output_example=output_sample,
        secured=secured,
    )
