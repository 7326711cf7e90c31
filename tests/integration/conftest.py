"""Fixtures for integration tests: a real HTTP file server and an in-process app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.app import create_app
from modelyard.config import Settings


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class FileServer:
    root: Path
    url: str


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """Serves `root` over real HTTP on 127.0.0.1 (a random port)."""
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Api:
    """An app on a real database, called in-process, with the admin token set."""

    http: TestClient
    settings: Settings
    admin_token: str
    files: Path

    @property
    def blob_files(self) -> list[Path]:
        root = self.settings.blob_root
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    files = tmp_path / "files"
    files.mkdir()
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        allowed_file_roots=[files],
        port=8700,
    )
    with TestClient(create_app(settings), base_url="http://testserver") as http:
        token = settings.admin_token_path.read_text().strip()
        http.headers["Authorization"] = f"Bearer {token}"
        yield Api(http, settings, token, files)
