"""The cheap thread hops: results and exceptions cross in both directions, and the limiter bounds concurrency."""

import threading

import pytest
import trio

from widecol.net import threads


async def test_run_sync_returns_results_and_raises_exceptions_in_the_caller():
    assert await threads.run_sync(lambda a, b: a + b, 2, 3) == 5
    assert await threads.run_sync(threading.get_ident) != threading.get_ident()
    with pytest.raises(KeyError, match="missing"):
        await threads.run_sync({}.__getitem__, "missing")


async def test_run_async_from_a_worker_thread_reaches_trio_and_back():
    token = trio.lowlevel.current_trio_token()

    async def double(x):
        await trio.sleep(0)
        return 2 * x

    async def fail():
        raise ValueError("inside trio")

    def in_worker():
        got = threads.run_async(token, double, 21)
        with pytest.raises(ValueError, match="inside trio"):
            threads.run_async(token, fail)
        return got

    assert await threads.run_sync(in_worker) == 42


async def test_the_limiter_bounds_how_many_run_at_once():
    limiter = trio.CapacityLimiter(2)
    running = peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def job():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.05)
        with lock:
            running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(lambda: threads.run_sync(job, limiter=limiter))
    assert peak == 2
