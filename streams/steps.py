"""Where the worker's batch loop is waiting now: a marker each part of the loop moves as it goes.

The batch loop (`streams.processor`) has two parts that wait: the loop itself (fetch, write, waiting
for the batch before to be published) and the publishing of a committed batch (publish, Kafka offset
commit). Each sets its current step here before it awaits; the relay (`streams.relay`) says who holds
its lock. The watchdog (`streams.watchdog`) names them when nothing is committed any more, so a stall
says what it waits on instead of being silent. Setting a step is one dictionary store.
"""

from __future__ import annotations

import time

LOOP = "batch loop"
PUBLISHING = "publishing"

FETCH = "fetch"
"""The loop waits for records from the broker (`getmany`), or decodes them."""
IDLE_COMMIT = "Kafka offset commit (idle)"
IN_FLIGHT = "in-flight lock (a rebalance hands partitions over)"
WRITE = "load, handle, write (one register transaction)"
BEFORE = "the batch before's publish"
BACKOFF = "backoff after a failed batch"
PUBLISH = "publish (the relay sends the outbox row)"
COMMIT = "Kafka offset commit"


class Steps:
    """The current step of each part of the loop and since when (monotonic seconds)."""

    def __init__(self) -> None:
        self._now: dict[str, tuple[str, float]] = {}

    def enter(self, part: str, step: str) -> None:
        self._now[part] = (step, time.monotonic())

    def leave(self, part: str) -> None:
        self._now.pop(part, None)

    def current(self, part: str) -> tuple[str, float] | None:
        """(step, seconds in it) of `part`; None while it waits for nothing."""
        found = self._now.get(part)
        if found is None:
            return None
        step, since = found
        return step, time.monotonic() - since

    def describe(self, *extra: tuple[str, tuple[str, float] | None]) -> str:
        """`batch loop: fetch for 64 s; publishing: idle`, and each `extra` (name, (holder, since) or
        None when free)."""
        said = [
            f"{name}: idle" if now is None else f"{name}: {now[0]} for {now[1]:.0f} s"
            for name, now in ((name, self.current(name)) for name in (LOOP, PUBLISHING))
        ]
        said += [
            f"{name}: free"
            if at is None
            else f"{name}: {at[0]} for {time.monotonic() - at[1]:.0f} s"
            for name, at in extra
        ]
        return "; ".join(said)
