"""Write per-request records off the hot path: buffer in memory, flush from a thread.

Request logging and data collection both write one line per request. Writing (and
even formatting) a line per request on the event loop would put disk and pipe
latency into every response, so a request only appends a tuple to a list; a task
hands the list to a worker thread every `interval_s`, which formats and writes it.
The buffer is bounded: when writing falls that far behind, new records are dropped
and counted rather than letting memory grow without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

__all__ = ["BufferedSink"]

_log = logging.getLogger("modelyard.runtime")


class BufferedSink:
    """Base class: subclasses implement `write(records)`, called from a worker thread."""

    interval_s = 1.0
    max_buffered = 100_000

    def __init__(self) -> None:
        self._buffer: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None
        self._write_lock = threading.Lock()
        self.dropped = 0

    def add(self, record: tuple[Any, ...]) -> None:
        """Queue one record; cheap enough for every request."""
        if len(self._buffer) >= self.max_buffered:
            self.dropped += 1
            return
        self._buffer.append(record)

    def write(self, records: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Flush every `interval_s` from a task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def stop(self) -> None:
        """Stop the periodic flush and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._write_now, self._take())

    def flush(self) -> None:
        """Write every buffered record now; call it from the loop's thread (or after it)."""
        self._write_now(self._take())

    def _take(self) -> list[tuple[Any, ...]]:
        # Swapped on the loop's thread, where records are added, so none slips between.
        records, self._buffer = self._buffer, []
        return records

    def _write_now(self, records: list[tuple[Any, ...]]) -> None:
        if not records:
            return
        with self._write_lock:  # a final flush never interleaves with a periodic one
            try:
                self.write(records)
            except Exception:
                _log.exception("%s lost %d records", type(self).__name__, len(records))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            records = self._take()
            if records:
                await asyncio.to_thread(self._write_now, records)
