"""The worker's watchdog: a stall is never silent, and ends in a recovery or a restart.

Stalled is what `/ready` calls it (`streams.health.Health.stalled`): nothing committed for
`REGHUB_READY_STALL_SECONDS` while the assigned partitions have lag. Batches that fail are not a
stall here: each failure is logged and retried with backoff, and `/ready` names it.

When the worker stalls, the watchdog logs one line naming what the batch loop and the publishing wait on
and for how long (`streams.steps`), who holds the relay's lock, and what the broker and register probes
last said. Then:

- the loop keeps fetching and the fetches bring nothing although the log's end is ahead — the
  consumer's side: every assigned partition is moved back to the offset the register has read to,
  which drops whatever the consumer fetched, buffered or waits for;
- anything else (a step that does not return) cannot be mended in the process.

If the worker is still stalled `stall_seconds` after that line, it exits with `EXIT_STALLED`, so its
supervisor (`reghub worker --processes`, compose's `restart:`, an orchestrator) starts it again; the
register's offsets make that safe (a batch is in the register with its offsets or not at all, and
unsent outputs are in the outbox). While the broker or the register does not answer its probe, a restart
would not bring it back: the watchdog then waits `OUTSIDE_FACTOR` times as long before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from streams.health import Health
from streams.processor import RegisterProcessor
from streams.steps import FETCH, LOOP, PUBLISHING

log = logging.getLogger(__name__)

EXIT_STALLED = 70
"""The worker's exit status when the watchdog ends a stall it could not mend (EX_SOFTWARE)."""

OUTSIDE_FACTOR = 5
"""How many times `stall_seconds` a stall may last before the exit while the broker or the register
does not answer (the cause is outside the worker)."""


def exit_now(status: int) -> None:
    """Flush the log and leave at once: a graceful stop would wait for the step that does not return
    (publishing, offset commits) before it let go."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # leaving anyway
            handler.flush()
    os._exit(status)


class Watchdog:
    """Watches one worker's processor; `run` checks every few seconds until cancelled."""

    def __init__(
        self,
        processor: RegisterProcessor,
        health: Health,
        exit: Callable[[int], None] = exit_now,
    ) -> None:
        self.processor = processor
        self.health = health
        self.exit = exit
        self.stall_seconds = health.config.stall_seconds
        self.every = max(0.2, min(5.0, self.stall_seconds / 5))
        self.noticed: float | None = None  # monotonic time the current stall was logged
        self.reseeks = 0
        self._empty_fetches = 0  # the processor's count at the last check

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.check()
            except Exception:  # the watchdog outlives anything it runs into
                log.exception("watchdog check failed")

    async def check(self) -> None:
        """One look: log a new stall and try the consumer's remedy; exit if it lasts."""
        stats = self.processor.stats
        stall = self.health.stalled()
        empties, self._empty_fetches = (
            stats.empty_fetches - self._empty_fetches,
            stats.empty_fetches,
        )
        if stall is None or stats.failing_since is not None:
            if stall is None and self.noticed is not None:
                log.warning(
                    "stall over: batches committed again %.0f s after it was noticed",
                    time.monotonic() - self.noticed,
                )
            self.noticed = None
            return
        lag, seconds = stall
        outside = self.outside()
        if self.noticed is None:
            self.noticed = time.monotonic()
            waits_on = self.health.waits_on()  # before the remedy changes it
            step = self.processor.steps.current(LOOP)
            # the consumer's side only while no batch waits to be published: a publish that does not
            # return leaves the loop fetching nothing more, as it has nothing more to fetch
            fetching = (empties > 0 or (step is not None and step[0] == FETCH)) and (
                self.processor.steps.current(PUBLISHING) is None
            )
            if fetching and outside is None:
                remedy = (
                    f"fetches bring nothing ({stats.empty_fetches} empty since the last committed "
                    f"batch) though the log's end is ahead: {await self.reseek(lag)}"
                )
            elif outside is not None:
                remedy = (
                    f"{outside}; exiting with {EXIT_STALLED} for a restart if this lasts "
                    f"{OUTSIDE_FACTOR * self.stall_seconds:.0f} s more"
                )
            else:
                remedy = (
                    f"exiting with {EXIT_STALLED} for a restart if nothing is committed in "
                    f"{self.stall_seconds:.0f} s"
                )
            log.error(
                "stalled: nothing committed for %.0f s with lag %s; %s — %s",
                seconds,
                "unknown (no fetch answered since the partitions were assigned)"
                if lag is None
                else lag,
                waits_on,
                remedy,
            )
            return
        waited = time.monotonic() - self.noticed
        if waited >= self.stall_seconds * (OUTSIDE_FACTOR if outside else 1):
            log.critical(
                "still stalled %.0f s after it was noticed (lag %s; %s): exiting with %d so that "
                "the worker is started again from the register's offsets",
                waited,
                lag,
                self.health.waits_on(),
                EXIT_STALLED,
            )
            self.exit(EXIT_STALLED)

    def outside(self) -> str | None:
        """What the broker's or the register's last probe said when it was not `ok`; None if both
        answered."""
        probes = self.health.probes
        said = [
            f"{name}: {answer}"
            for name, answer in (("broker", probes.broker), ("register", probes.register))
            if answer not in (None, "ok")
        ]
        return "; ".join(said) or None

    async def reseek(self, lag: int | None) -> str:
        """Ask the broker to wait longer per fetch and move the consumer back to the register's
        offsets; says what came of it."""
        wider = self.processor.widen_fetch_wait(lag or 0)
        said = f"fetch wait now {self.processor.stats.fetch_wait_ms} ms; " if wider else ""
        try:
            moved = await asyncio.wait_for(self.processor.reseek(), self.stall_seconds)
        except Exception as exc:  # the exit follows if nothing moves
            return (
                f"{said}could not move the consumer back to the register's offsets ({exc!r:.200})"
            )
        self.reseeks += 1
        return f"{said}moved the consumer back to the register's offsets on {moved} partitions"
