"""The worker's retry policies, in one place and through one library (tenacity): what is retried, how
long it waits between attempts, and the one log line per attempt that says so.

Every policy here waits a doubling delay without jitter, from a first delay up to a cap, and retries
forever: a worker does not give up on its register or its broker, it says what it waits for (log,
`/ready`) and goes on when they are back.

- `batches` — a batch the register could not take (`RegisterUnavailable`): 0.5 s, doubling up to
  `retry_backoff_max_s` (`streams.processor.RegisterProcessor.run`); a batch that passes starts the
  next one at 0.5 s again.
- `publishing` — a committed batch's outputs the broker or the outbox did not take: the same delays,
  and a stop ends the wait at once (`RegisterProcessor._publish`).
- `register_at_start` — a register that does not answer at start: 1 s, doubling up to
  `retry_backoff_max_s` (`streams.app.wait_for_register`).
- `restarts` — a child of `reghub worker --processes N` that exited on its own: 0.5 s, doubling up to
  30 s, counted over the supervisor's life (`reghub.supervisor`).

An error a policy does not retry is raised as it is. tenacity keeps its per-call state on the policy object (per thread, not per task), so each function
returns a new object, and each call (a batch, a publish, a child) uses its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_never,
    wait_exponential,
)

BeforeSleep = Callable[[RetryCallState], Awaitable[None] | None]
Sleep = Callable[[float], Awaitable[None]]

FIRST_S = 0.5
"""The first delay of a batch, a publish and a restart."""
REGISTER_FIRST_S = 1.0
"""The first delay of the wait for the register at start."""


def doubling(first: float, cap: float) -> wait_exponential:
    """`first`, `2 * first`, `4 * first` … seconds, at most `cap`."""
    return wait_exponential(multiplier=first, max=cap)


def _on(
    errors: type[BaseException] | tuple[type[BaseException], ...],
    first: float,
    cap: float,
    before_sleep: BeforeSleep,
    sleep: Sleep = asyncio.sleep,
) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(errors),
        wait=doubling(first, cap),
        stop=stop_never,
        before_sleep=before_sleep,
        sleep=sleep,
    )


def batches(errors: type[BaseException], cap: float, before_sleep: BeforeSleep) -> AsyncRetrying:
    """One batch, fetched again and retried while it fails with `errors`."""
    return _on(errors, FIRST_S, cap, before_sleep)


def publishing(
    errors: tuple[type[BaseException], ...], cap: float, before_sleep: BeforeSleep, sleep: Sleep
) -> AsyncRetrying:
    """One publish of a committed batch's outputs; `sleep` waits the delay or until the worker stops."""
    return _on(errors, FIRST_S, cap, before_sleep, sleep)


def register_at_start(
    errors: type[BaseException], cap: float, before_sleep: BeforeSleep
) -> AsyncRetrying:
    """The first read of the register, repeated until it answers."""
    return _on(errors, REGISTER_FIRST_S, cap, before_sleep)


def restarts(
    again: Callable[[Any], bool], cap: float, before_sleep: BeforeSleep, sleep: Sleep
) -> AsyncRetrying:
    """One child process, started again after it exits while `again(exit code)` says so."""
    return AsyncRetrying(
        retry=retry_if_result(again),
        wait=doubling(FIRST_S, cap),
        stop=stop_never,
        before_sleep=before_sleep,
        sleep=sleep,
    )


def next_delay(state: RetryCallState) -> float:
    """Seconds until the next attempt; valid in a `before_sleep` callback."""
    assert state.next_action is not None
    return state.next_action.sleep


def failure(state: RetryCallState) -> BaseException:
    """The error of the attempt that just failed; valid in a `before_sleep` callback of an
    exception-driven policy."""
    assert state.outcome is not None
    error = state.outcome.exception()
    assert error is not None
    return error


async def until(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
