"""Model data collection: every scored request and its response, as JSON lines.

Azure ML's model data collector kept inputs and predictions for monitoring and
retraining. Here each replica appends to its own file per UTC hour,

    SERVICE_DIR/collected/<YYYY-MM-DD>/<HH>/replica-<ID>.jsonl

one line per scored request:
`{"time", "requestId", "request", "response", "status", "durationMs"}`. Replicas never
share a file (no locking between processes), and a reader can take whole hours.
`request` and `response` are the JSON bodies when they parse, else their text.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.runtime.sinks import BufferedSink

__all__ = ["DataCollector"]


class DataCollector(BufferedSink):
    """Buffers scored requests and appends them to hourly files, once a second."""

    def __init__(self, service_dir: Path, replica_id: str) -> None:
        super().__init__()
        self.root = service_dir / "collected"
        self.file_name = f"replica-{replica_id}.jsonl"

    def record(
        self, request_id: str, request: str, response: bytes, status: int, duration_s: float
    ) -> None:
        """Queue one scored request (formatting happens later, off the event loop)."""
        self.add((time.time(), request_id, request, response, status, duration_s))

    def path_for(self, when: datetime) -> Path:
        """The file a record made at `when` (UTC) goes to."""
        return self.root / when.strftime("%Y-%m-%d") / when.strftime("%H") / self.file_name

    def write(self, records: list[tuple[Any, ...]]) -> None:
        by_file: defaultdict[Path, list[str]] = defaultdict(list)
        for stamp, request_id, request, response, status, duration_s in records:
            when = datetime.fromtimestamp(stamp, UTC)
            line = {
                "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "requestId": request_id,
                "request": _json_or_text(request),
                "response": _json_or_text(response.decode("utf-8", "replace")),
                "status": status,
                "durationMs": round(duration_s * 1000, 3),
            }
            by_file[self.path_for(when)].append(json.dumps(line) + "\n")
        for path, lines in by_file.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as file:
                file.write("".join(lines))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
