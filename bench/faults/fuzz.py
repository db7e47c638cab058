"""The fuzz scenario: hostile records (`bench.hostile`) on every input topic; the workers must stay
up and account for each record."""

from __future__ import annotations

import argparse
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.faults.hub import Hub
from bench.faults.progress import log
from bench.faults.report import Row
from bench.faults.topics import change_outcome, read_all
from bench.faults.truth import count_truth, reason_summary
from streams.topics import CHANGES, DISPENSINGS, INPUTS


class Fuzz:
    """Hostile records on every input topic; the workers must stay up and account for each."""

    label = "fuzz"

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.row = Row(self.label)

    async def run(self) -> Row:
        from bench import hostile
        from streams.decode import Decoded, Source, decode

        a = self.args
        started = time.monotonic()
        records = hostile.shuffled(hostile.generate(a.fuzz, a.seed), a.seed)
        kinds = ", ".join(f"{k} {n}" for k, n in hostile.iter_kinds(records))
        size = sum(len(r.value or b"") for r in records)
        log(
            f"fuzz: {len(records)} hostile records drawn in {time.monotonic() - started:.0f} s "
            f"({size / 1e6:.0f} MB)"
        )
        self.row.notes.append(f"kinds: {kinds}")
        folder = self.folder / self.label
        folder.mkdir(parents=True, exist_ok=True)
        hub = Hub(self.label, a, folder)
        async with hub.running():
            assert hub.feeder is not None and hub.pool is not None and hub.sql is not None
            items = [
                (i, hub.topic(r.spec), r.key, r.value, None, None) for i, r in enumerate(records)
            ]
            log(f"fuzz: producing {len(items)} records to {len(INPUTS)} input topics")
            await hub.feeder.send(items, attempts=3)
            since = hub.feeder.sent.last_ack_at
            sent = hub.feeder.sent

            async def caught_up() -> bool:
                lag = await hub.lag()
                return lag is not None and lag[0] == 0

            async def snapshot() -> tuple[Any, ...]:
                processed = await hub.sql.scalar(  # type: ignore[union-attr]
                    "SELECT (SELECT count(*) FROM processed_messages) + (SELECT count(*) FROM purchases)"
                )
                return processed, hub.tails[0].records, hub.tails[1].records

            log("fuzz: produced; waiting until quiet")
            quiet, recovered, lag = await hub.settle(since, caught_up, snapshot)
            self.row.quiet, self.row.recovered_s = quiet, recovered
            if not quiet:
                self.row.problems.append(lag)
            pool = hub.pool
            alive_to_the_end = [w.alive for w in pool.workers]
            codes = await pool.stop()
            truth = await count_truth(hub)
            changes = await read_all(hub.bootstrap, hub.topic(CHANGES), change_outcome)
            outcomes: dict[tuple[str, str], set[str]] = {}
            for c in changes:
                if c is not None:
                    outcomes.setdefault(c[:2], set()).add(c[2])

        # What became of each produced record: dead-lettered (its source position in the headers);
        # taken, i.e. registered or parked (purchases and processed_messages keep dispensing and
        # correction ids)
        # or applied or parked on the change feed (the other topics keep no ids); answered by the
        # dead letter of an identical record with the same id; or lost.
        dead_at = Counter(d.source for d in truth.dead)
        no_reason = sum(1 for d in truth.dead if not d.reason.strip())
        at_position = {pos: i for i, pos in sent.positions.items()}
        dead_values: dict[tuple[str, str], set[bytes | None]] = {}
        for dl in truth.dead:
            i = at_position.get(dl.source)
            if i is not None and dl.message_id:
                dead_values.setdefault((dl.source[0], dl.message_id), set()).add(records[i].value)
        taken = truth.processed | {
            k for k, v in outcomes.items() if v & {"applied", "parked", "held"}
        }
        accepted, lost, lost_decisions, decided, twins = 0, 0, 0, 0, 0
        lost_kinds: Counter[str] = Counter()
        examples: list[str] = []
        undecided: dict[str, str] = {}  # report id → what the change feed says became of it
        for i, pos in sent.positions.items():
            if pos in dead_at:
                continue
            r = records[i]
            d = decode(Source(pos[0], pos[1], pos[2], r.key, r.value, 0), r.spec)
            where = (pos[0], d.message_id) if isinstance(d, Decoded) else None
            said = "/".join(sorted(outcomes.get(where, {"nothing"}))) if where else "nothing"
            if where is not None and where in taken:
                accepted += 1
                if r.spec is DISPENSINGS:
                    if d.message_id in truth.decisions:
                        decided += 1
                    else:
                        lost_decisions += 1
                        undecided[d.message_id] = f"{d.message_id} ({r.kind}; {said})"
                continue
            if where is not None and r.value in dead_values.get(where, ()):
                twins += 1
                continue
            lost += 1
            lost_kinds[r.kind] += 1
            if len(examples) < 5:
                what = d.message_id if isinstance(d, Decoded) else d.reason
                examples.append(
                    f"{r.kind} at {pos[0]}/{pos[1]}/{pos[2]} ({what}; change feed: {said})"
                )
        ours = set(sent.positions.values())
        strangers = [d for d in truth.dead if d.source not in ours]
        row = self.row
        row.sent = len(sent.positions)
        row.registered = accepted
        row.decided = decided
        row.dead_lettered = len(truth.dead)
        row.lost_reports = lost
        row.lost_decisions = lost_decisions
        row.doubled = sum(1 for n in truth.purchases.values() if n > 1) + truth.saldo_mismatches
        row.republished = sum(n - 1 for n in dead_at.values() if n > 1)
        if lost:
            row.notes.append(f"not accounted for, by kind: {dict(lost_kinds.most_common())}")
            row.notes.append(f"e.g. {'; '.join(examples)}")
        if twins:
            row.notes.append(
                f"{twins} records answered by the dead letter of an identical record with their id"
            )
        if undecided:
            row.notes.append(
                f"taken without a decision: {len(undecided)} report ids, e.g. "
                + ", ".join(list(undecided.values())[:5])
            )
        if no_reason:
            row.problems.append(f"{no_reason} dead letters without a reghub-reason")
        if strangers:
            row.notes.append(
                f"{len(strangers)} dead letters name a source position the campaign did not produce "
                "to: "
                + "; ".join(f"{'/'.join(map(str, d.source))} {d.reason}" for d in strangers[:3])
            )
        if pool.crashes or not all(alive_to_the_end):
            row.problems.append(f"{len(pool.crashes)} worker crash(es)")
            row.notes.extend(pool.crashes[:3])
        if pool.health_misses:
            row.problems.append(
                f"/health missed {len(pool.health_misses)} of {pool.health_probes} probes "
                f"(first: {pool.health_misses[0]})"
            )
        else:
            row.notes.append(f"/health answered all {pool.health_probes} probes")
        if sent.refused:
            row.notes.append(f"the broker refused records (not sent): {dict(sent.refused)}")
        row.notes.append(f"dead letters: {reason_summary(truth.dead, 8)}")
        failed = {w.index: w.last_health.get("failed_batches") for w in pool.workers}
        if any(failed.values()):
            row.notes.append(f"batches retried (per worker, since its last start): {failed}")
        bad = [c for c in codes if c not in (0, -signal.SIGTERM, None)]
        if bad:
            row.notes.append(f"worker exit codes on SIGTERM: {codes}")
        return row
