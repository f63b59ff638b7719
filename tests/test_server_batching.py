"""Micro-batching: concurrent requests are scored together (counted on a fake backend),
off the event loop, and never mixed up."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from haloguard import Guard  # noqa: E402
from haloguard.backends.keyword import KeywordBackend  # noqa: E402
from haloguard.server import Settings, create_app  # noqa: E402
from haloguard.server.batching import MicroBatcher, QueueFullError  # noqa: E402


class CountingBackend(KeywordBackend):
    """Counts calls and units; each call takes ``delay`` seconds (holds no event loop)."""

    max_batch_size = 1024

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def _score_batch(self, units):
        with self._lock:
            self.calls.append(len(units))
            self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return super()._score_batch(units)


def _guard(be):
    return Guard(be, canonicalize=False)  # one unit per prompt: calls are easy to count


def _concurrent_posts(client, bodies):
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: client.post("/v1/classify", json=b), bodies))


def test_concurrent_requests_share_batches():
    be = CountingBackend(delay=0.05)
    app = create_app(Settings(max_batch_size=64, max_wait_ms=20), guard=_guard(be))
    words = ["sarin", "bread", "anthrax", "cake", "malware", "tea", "meth", "soup"] * 3
    bodies = [{"query": f"tell me about {w} #{i}"} for i, w in enumerate(words)]
    with TestClient(app) as c:
        rs = _concurrent_posts(c, bodies)
        metrics = c.get("/metrics").text
    assert all(r.status_code == 200 for r in rs)
    assert sum(be.calls) == len(bodies)
    assert len(be.calls) < len(bodies) / 2, be.calls  # really batched
    assert max(r.json()["_debug"]["batch_size"] for r in rs) > 1
    # every response belongs to its own request
    unsafe = {"sarin", "anthrax", "malware", "meth"}
    for w, r in zip(words, rs):
        assert (r.json()["safety_label"] == "Unsafe") == (w in unsafe)
    assert be.threads and all(t.startswith("haloguard-score") for t in be.threads)
    assert "haloguard_batch_size_count" in metrics


def test_batching_off_scores_each_request_alone():
    be = CountingBackend(delay=0.01)
    app = create_app(Settings(batching=False), guard=_guard(be))
    with TestClient(app) as c:
        rs = _concurrent_posts(c, [{"query": f"q{i}"} for i in range(8)])
    assert all(r.status_code == 200 for r in rs)
    assert be.calls == [1] * 8


def test_max_batch_size_is_respected():
    be = CountingBackend(delay=0.05)
    app = create_app(Settings(max_batch_size=4, max_wait_ms=20), guard=_guard(be))
    with TestClient(app) as c:
        rs = _concurrent_posts(c, [{"query": f"q{i}"} for i in range(16)])
    assert all(r.status_code == 200 for r in rs)
    assert max(be.calls) <= 4 and sum(be.calls) == 16


# -- the batcher on its own ---------------------------------------------------------------
def _run(coro):
    return asyncio.run(coro)


def test_batcher_gathers_within_wait_and_keeps_order():
    calls = []

    def score(items):
        calls.append(len(items))
        return [f"r{x}" for x, _ in items]

    async def main():
        b = MicroBatcher(score, max_batch_size=100, max_wait_ms=30)
        await b.start()
        outs = await asyncio.gather(*(b.submit([(i, None), (i + 1000, None)]) for i in range(10)))
        await b.stop()
        return outs

    outs = _run(main())
    assert calls == [20]
    for i, (res, n) in enumerate(outs):
        assert res == [f"r{i}", f"r{i + 1000}"] and n == 20


def test_batcher_event_loop_stays_responsive():
    def slow(items):
        time.sleep(0.2)
        return items

    async def main():
        b = MicroBatcher(slow, max_batch_size=8, max_wait_ms=0)
        await b.start()
        task = asyncio.create_task(b.submit([(1, None)]))
        t0 = time.perf_counter()
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await b.stop()
        return ticks, time.perf_counter() - t0

    ticks, elapsed = _run(main())
    assert elapsed >= 0.18 and ticks >= 10  # the loop kept ticking while the model ran


def test_batcher_oversized_request_is_scored_alone():
    calls = []

    def score(items):
        calls.append(len(items))
        return items

    async def main():
        b = MicroBatcher(score, max_batch_size=4, max_wait_ms=10)
        await b.start()
        await asyncio.gather(b.submit([(i, None) for i in range(10)]), b.submit([(0, None)]))
        await b.stop()

    _run(main())
    assert sorted(calls) == [1, 10]


def test_batcher_queue_limit():
    def slow(items):
        time.sleep(0.1)
        return items

    async def main():
        b = MicroBatcher(slow, max_batch_size=1, max_wait_ms=0, max_queue_items=2)
        await b.start()
        tasks = [asyncio.create_task(b.submit([(i, None)])) for i in range(6)]
        res = await asyncio.gather(*tasks, return_exceptions=True)
        await b.stop()
        return res

    res = _run(main())
    assert any(isinstance(r, QueueFullError) for r in res)
    assert any(not isinstance(r, Exception) for r in res)


def test_batcher_stop_drains_queue():
    def score(items):
        time.sleep(0.01)
        return items

    async def main():
        b = MicroBatcher(score, max_batch_size=2, max_wait_ms=0)
        await b.start()
        tasks = [asyncio.create_task(b.submit([(i, None)])) for i in range(7)]
        await asyncio.sleep(0)
        await b.stop()
        return await asyncio.gather(*tasks)

    res = _run(main())
    assert [r[0][0][0] for r in res] == list(range(7))


def test_batcher_delivers_errors_to_every_waiter():
    def boom(items):
        raise RuntimeError("model exploded")

    async def main():
        b = MicroBatcher(boom, max_batch_size=8, max_wait_ms=10)
        await b.start()
        res = await asyncio.gather(*(b.submit([(i, None)]) for i in range(3)),
                                   return_exceptions=True)
        await b.stop()
        return res

    res = _run(main())
    assert all(isinstance(r, RuntimeError) for r in res)


def test_lone_request_is_not_delayed_by_max_wait():
    be = CountingBackend(delay=0.0)
    app = create_app(Settings(max_wait_ms=800), guard=_guard(be))
    with TestClient(app) as c:
        c.post("/v1/classify", json={"query": "warm up"})
        t0 = time.perf_counter()
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 200
        assert time.perf_counter() - t0 < 0.4  # the batcher saw nobody else in flight


def test_batcher_load_hint_stops_waiting():
    def score(items):
        return items

    async def main():
        b = MicroBatcher(score, max_batch_size=64, max_wait_ms=1000, load_hint=lambda: 1)
        await b.start()
        t0 = time.perf_counter()
        await b.submit([(1, None)])
        dt = time.perf_counter() - t0
        await b.stop()
        return dt

    assert _run(main()) < 0.5
