"""The DSP endpoints' thread hand-off keeps what Starlette's run_in_threadpool guaranteed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connector.logs import correlation, current_correlation_id
from connector.protocol.errors import ProtocolError
from connector.threads import in_thread


def test_the_call_runs_in_another_thread_with_the_callers_context() -> None:
    async def main() -> tuple[str | None, str]:
        with correlation("corr-7"):
            return await in_thread(lambda: (current_correlation_id(), threading.current_thread().name))

    corr, thread = asyncio.run(main())
    assert corr == "corr-7" and thread.startswith("pactum-worker") and thread != threading.current_thread().name


def test_results_arguments_and_errors_come_back() -> None:
    def refuse(reason: str, *, code: str) -> None:
        raise ProtocolError(reason, code=code)

    async def main() -> None:
        assert await in_thread(divmod, 7, 2) == (3, 1)
        with pytest.raises(ProtocolError) as info:
            await in_thread(refuse, "no", code="not_now")
        assert info.value.code == "not_now"

    asyncio.run(main())


def test_a_cancelled_caller_waits_for_its_thread() -> None:
    """The thread may hold a process lock and an open transaction: the caller ends only after it does."""
    release = threading.Event()
    finished: list[str] = []

    def slow() -> None:
        release.wait(10)
        finished.append("thread")

    async def main() -> None:
        task = asyncio.create_task(in_thread(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done()  # cancelled, yet still waiting for the thread
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["thread"]

    asyncio.run(main())
