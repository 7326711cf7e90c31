"""The adaptive batch queue: cut by size, by wait, at once when idle; errors reach every item."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from modelyard.runtime.batching import BatchQueue, QueueFull, QueueStopped


class Recorder:
    """A batch handler that doubles its inputs and remembers each batch."""

    def __init__(self, answer: Callable[[list[int]], Sequence[Any]] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.answer = answer

    def __call__(self, items: list[int]) -> Sequence[Any]:
        self.batches.append(list(items))
        if self.answer is not None:
            return self.answer(items)
        return [item * 2 for item in items]


def queue(
    handler: Recorder,
    *,
    max_size: int = 8,
    max_wait_s: float = 0.05,
    capacity: int = 64,
    pending: Callable[[], int] | None = None,
) -> BatchQueue[int, Any]:
    return BatchQueue(
        handler, max_size=max_size, max_wait_s=max_wait_s, capacity=capacity, pending=pending
    )


def test_a_batch_is_cut_when_it_reaches_max_size() -> None:
    async def scenario() -> None:
        handler = Recorder()
        batches = queue(handler, max_size=3, max_wait_s=0.02, pending=lambda: 100)
        batches.start()
        results = await asyncio.gather(*(batches.submit(i) for i in range(7)))
        await batches.stop()
        assert results == [i * 2 for i in range(7)]
        assert [len(b) for b in handler.batches] == [3, 3, 1]

    asyncio.run(scenario())


def test_a_batch_is_cut_when_max_wait_passed_since_its_first_item() -> None:
    async def scenario() -> None:
        handler = Recorder()
        batches = queue(handler, max_wait_s=0.1, pending=lambda: 1)  # "someone is coming"
        batches.start()
        started = time.monotonic()
        assert await batches.submit(5) == 10
        elapsed = time.monotonic() - started
        await batches.stop()
        assert 0.09 <= elapsed < 1.0
        assert handler.batches == [[5]]

    asyncio.run(scenario())


def test_nothing_waits_when_no_other_request_is_pending() -> None:
    async def scenario() -> None:
        handler = Recorder()
        batches = queue(handler, max_wait_s=5.0, pending=lambda: 0)
        batches.start()
        started = time.monotonic()
        for i in range(3):
            assert await batches.submit(i) == i * 2
        elapsed = time.monotonic() - started
        await batches.stop()
        assert elapsed < 0.5  # each one at once, never the 5 s wait
        assert handler.batches == [[0], [1], [2]]

    asyncio.run(scenario())


def test_items_submitted_together_share_one_batch() -> None:
    async def scenario() -> None:
        handler = Recorder()
        batches = queue(handler, max_size=32, max_wait_s=0.01)
        batches.start()
        await asyncio.gather(*(batches.submit(i) for i in range(5)))
        await batches.stop()
        assert handler.batches == [[0, 1, 2, 3, 4]]

    asyncio.run(scenario())


def test_an_exception_from_the_handler_goes_to_every_item_of_the_batch() -> None:
    def fail(items: list[int]) -> Sequence[Any]:
        raise ValueError("model exploded")

    async def scenario() -> None:
        batches = queue(Recorder(fail), max_wait_s=0.01)
        batches.start()
        results = await asyncio.gather(
            *(batches.submit(i) for i in range(4)), return_exceptions=True
        )
        await batches.stop()
        assert all(isinstance(r, ValueError) and str(r) == "model exploded" for r in results)

    asyncio.run(scenario())


def test_an_exception_returned_as_a_result_fails_only_its_own_item() -> None:
    def answer(items: list[int]) -> Sequence[Any]:
        return [ValueError("odd") if item % 2 else item for item in items]

    async def scenario() -> None:
        batches = queue(Recorder(answer), max_wait_s=0.01)
        batches.start()
        results = await asyncio.gather(
            *(batches.submit(i) for i in range(4)), return_exceptions=True
        )
        await batches.stop()
        assert results[0] == 0
        assert results[2] == 2
        assert isinstance(results[1], ValueError)
        assert isinstance(results[3], ValueError)

    asyncio.run(scenario())


def test_a_result_list_of_the_wrong_length_fails_the_whole_batch() -> None:
    async def scenario() -> None:
        batches = queue(Recorder(lambda items: [1]), max_wait_s=0.01)
        batches.start()
        results = await asyncio.gather(
            *(batches.submit(i) for i in range(3)), return_exceptions=True
        )
        await batches.stop()
        assert all(isinstance(r, RuntimeError) and "1 results for 3" in str(r) for r in results)

    asyncio.run(scenario())


def test_stop_fails_the_items_still_waiting_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        handler = Recorder()
        batches = queue(handler, max_wait_s=30.0, pending=lambda: 1)
        batches.start()
        waiting = [asyncio.ensure_future(batches.submit(i)) for i in range(3)]
        await asyncio.sleep(0.05)  # collected, waiting for company that never comes
        await batches.stop()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, QueueStopped) for r in results)
        assert handler.batches == []
        with pytest.raises(QueueStopped):
            await batches.submit(9)

    asyncio.run(scenario())


def test_a_full_queue_refuses_instead_of_growing() -> None:
    async def scenario() -> None:
        batches = queue(Recorder(), capacity=2, max_wait_s=0.01)
        batches.start()
        results = await asyncio.gather(
            *(batches.submit(i) for i in range(3)), return_exceptions=True
        )
        await batches.stop()
        assert results[:2] == [0, 2]
        assert isinstance(results[2], QueueFull)

    asyncio.run(scenario())


def test_outstanding_counts_items_until_they_are_answered() -> None:
    async def scenario() -> None:
        seen: list[int] = []
        batches: BatchQueue[int, Any]

        def handler(items: list[int]) -> Sequence[Any]:
            seen.append(batches.outstanding)
            return items

        batches = BatchQueue(handler, max_size=8, max_wait_s=0.01, capacity=8)
        batches.start()
        await asyncio.gather(*(batches.submit(i) for i in range(3)))
        assert seen == [3]
        assert batches.outstanding == 0
        await batches.stop()

    asyncio.run(scenario())
