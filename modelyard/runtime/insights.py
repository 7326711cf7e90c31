"""Request telemetry (Azure's "App Insights" switch): one JSON line per request on stdout.

`{"time", "requestId", "path", "status", "durationMs"}` per request, for whatever
collects the replica's stdout (the supervisor's log files, a container runtime).
Lines are written in small batches from a thread, a quarter of a second apart, so
a slow reader of stdout never stalls the event loop.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from modelyard.runtime.sinks import BufferedSink

__all__ = ["RequestLog"]


class RequestLog(BufferedSink):
    """Buffers one record per request and prints them as JSON lines."""

    interval_s = 0.25

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream

    def record(self, request_id: str, path: str, status: int, duration_s: float) -> None:
        self.add((time.time(), request_id, path, status, duration_s))

    def write(self, records: list[tuple[Any, ...]]) -> None:
        stream = self.stream or sys.stdout
        lines = []
        for stamp, request_id, path, status, duration_s in records:
            when = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
            line = {
                "time": when.replace("+00:00", "Z"),
                "requestId": request_id,
                "path": path,
                "status": status,
                "durationMs": round(duration_s * 1000, 3),
            }
            lines.append(json.dumps(line) + "\n")
        stream.write("".join(lines))
        stream.flush()
