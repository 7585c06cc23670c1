"""Blocking work of the DSP endpoints and the per-process management routes (a message's transaction, a
catalog, a process read or query) in worker threads.

WHY not Starlette's ``run_in_threadpool``: anyio's hand-off (capacity limiter, cancel scope, its own worker
queue, a backend look-up) cost about twice a plain executor's per call, and every DSP message makes one.
What it guaranteed is kept: at most 40 such calls run at once (anyio's default limit), the caller's
context variables (the correlation id every log line carries) travel with the call, and a caller that is
cancelled still waits for its thread, which may hold a process lock and an open transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_WORKERS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="pactum-worker")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, in a copy of the caller's context."""
    context = contextvars.copy_context()
    future = asyncio.get_running_loop().run_in_executor(_WORKERS, lambda: context.run(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise
