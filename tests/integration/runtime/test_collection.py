"""Data collection files: one per replica and UTC hour, one JSON line per scored request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from modelyard.runtime.collection import DataCollector


def test_records_go_to_the_file_of_their_utc_hour(tmp_path: Path) -> None:
    collector = DataCollector(tmp_path, "r7")
    late = datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    early = datetime(2024, 5, 2, 0, 0, 1, tzinfo=UTC).timestamp()
    collector.add((late, "id-1", '{"data": [1]}', b"[0]", 200, 0.0015))
    collector.add((early, "id-2", "not json", b'{"error": "bad"}', 500, 0.002))
    collector.flush()

    first = tmp_path / "collected" / "2024-05-01" / "23" / "replica-r7.jsonl"
    second = tmp_path / "collected" / "2024-05-02" / "00" / "replica-r7.jsonl"
    assert json.loads(first.read_text()) == {
        "time": "2024-05-01T23:59:59.000Z",
        "requestId": "id-1",
        "request": {"data": [1]},
        "response": [0],
        "status": 200,
        "durationMs": 1.5,
    }
    record = json.loads(second.read_text())
    assert record["request"] == "not json"
    assert record["response"] == {"error": "bad"}
    assert record["status"] == 500


def test_flushes_append_to_the_same_file(tmp_path: Path) -> None:
    collector = DataCollector(tmp_path, "r1")
    for request_id in ("a", "b"):
        collector.record(request_id, "1", b"1", 200, 0.001)
        collector.flush()
    (path,) = (tmp_path / "collected").glob("*/*/replica-r1.jsonl")
    assert [json.loads(line)["requestId"] for line in path.read_text().splitlines()] == ["a", "b"]
