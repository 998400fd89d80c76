"""Cheap hops between the trio thread and worker threads, for the per-request hot paths.

How this works. `trio.to_thread.run_sync` and `trio.from_thread.run` are general: they copy contexts, name the OS
thread twice per job (two ctypes calls), track the parent task for token-less calls back, and so on. On this
machine a round trip costs about 140 us of CPU each way, which was a fifth of a cluster request. The two functions
here do only what the request paths need, on trio's own thread cache:

- `run_sync(fn, *args, limiter=...)` (from trio): run FN in a cached worker thread and wait for its result or
  exception. Like trio.to_thread.run_sync with abandon_on_cancel=False, the waiting task cannot be cancelled
  until FN returns (FN may be writing to disk). About 75 us a hop.
- `run_async(token, afn, *args)` (from a worker thread): run AFN in a new trio system task and block this thread
  until it finishes; its result or exception comes back here. About 90 us.

Threads started by `run_sync` carry no trio context, so code running in them that calls back into trio must pass
the trio token explicitly (as `run_async` does, and `trio.from_thread.run(..., trio_token=...)` can).
"""

from __future__ import annotations

import functools
import queue
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")


def _no_abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


async def run_sync(fn: Callable[..., T], *args: Any, limiter: trio.CapacityLimiter | None = None) -> T:
    """FN(*ARGS) in a worker thread; at most LIMITER's total at once when given."""
    if limiter is not None:
        async with limiter:
            return await _hop(fn, args)
    return await _hop(fn, args)


async def _hop(fn: Callable[..., T], args: tuple) -> T:
    await trio.lowlevel.checkpoint_if_cancelled()
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()

    def deliver(result: outcome.Outcome) -> None:  # in the worker thread
        token.run_sync_soon(trio.lowlevel.reschedule, task, result)

    trio.lowlevel.start_thread_soon(functools.partial(fn, *args), deliver)  # no name: no OS thread renaming
    return await trio.lowlevel.wait_task_rescheduled(_no_abort)  # type: ignore[no-any-return]


def run_async(token: trio.lowlevel.TrioToken, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """AFN(*ARGS) in the trio thread of TOKEN, from a worker thread; blocks until it returns or raises."""
    done: queue.SimpleQueue[outcome.Outcome] = queue.SimpleQueue()

    async def runner() -> None:
        done.put(await outcome.acapture(afn, *args))

    token.run_sync_soon(trio.lowlevel.spawn_system_task, runner)
    return done.get().unwrap()  # type: ignore[no-any-return]
