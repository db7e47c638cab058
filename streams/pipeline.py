"""The one batch pipeline — steps 3-5 of a batch: load, handle, write — used by the worker, the in-process
runner and the benchmark.

Steps 1-2 (fetch, decode) and 6-7 (publish, commit) belong to the caller (`streams.processor`): the
worker publishes the outputs and commits offsets only after `Pipeline.run` returned, i.e. after the
register committed the batch. Load goes through each register's store (`uow.ctr`, `uow.places`), write
through the unit of work; the handlers in between see values only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from rules.scales import ScaleBook
from sinks.ctr_store import Row, record_of
from sinks.errors import RegisterRefused, RegisterUnavailable
from sinks.register import Register, RegisterUnitOfWork
from sinks.rows import Outgoing
from streams.batch import Batch, Loaded
from streams.decode import Decoded, Rejected
from streams.effects import NO_NEEDS, Needs
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Context, Handler
from streams.outputs import Outputs
from streams.topics import TopicNames, TopicSpec

log = logging.getLogger(__name__)

CONFLICT_REASON = (
    "conflict.same_id_different_content: this id was processed with other content; the first stays"
)


StepHook = Callable[[str, float], None]
"""Called with a step's name and its wall seconds: "load", "handle", "write", "transaction" (the whole
unit of work, BEGIN to COMMIT) and, from the worker, "fetch", "publish", "commit"."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a committed batch leaves to publish, and what became of its messages."""

    outputs: list[Outgoing]
    counts: dict[str, int]
    outbox_id: int | None = None  # the outbox row holding `outputs`, committed with the batch


class Pipeline:
    """Runs decoded batches through the handlers into the register.

    Not safe for two batches at once: one worker runs one batch at a time.
    """

    def __init__(
        self,
        register: Register,
        names: TopicNames,
        config: ApplyConfig,
        handlers: Mapping[TopicSpec, Handler] = HANDLERS,
        on_step: StepHook | None = None,
    ) -> None:
        self.register = register
        self.names = names
        self.config = config
        self.handlers = handlers
        self.on_step = on_step
        self.on_write: Callable[[], None] | None = None  # called as a batch's write begins
        self.scales = ScaleBook(())

    async def start(self) -> None:
        """Read the scales. Raises: RegisterUnavailable."""
        await self.refresh_scales()

    async def refresh_scales(self) -> None:
        """Read the scales again: another worker may have loaded one. Raises: RegisterUnavailable."""
        async with self.register.unit_of_work() as uow:
            self.scales = ScaleBook(await uow.ctr.load_scales())

    def outputs(self) -> Outputs:
        """An output builder on the current clock, for outputs that belong to no batch."""
        return Outputs(
            self.names,
            self.config.pseudonym_secret,
            datetime.now(UTC),
            self.config.dead_letter_max_bytes,
        )

    def step(self, name: str, started: float) -> None:
        if self.on_step is not None:
            self.on_step(name, time.perf_counter() - started)

    async def run(
        self,
        decoded: list[Decoded],
        rejected: list[Rejected],
        offsets: Mapping[tuple[str, int], int],
        log_ids: Mapping[str, str] | None = None,
    ) -> BatchResult:
        """Load, handle and write one batch in one register transaction, with its consumed offsets
        (and the log they belong to, per topic) and its outputs (the outbox row).

        A register error caused by one message's data is isolated (`isolate`): that message is
        dead-lettered with its `register.*` reason and the batch is run again without it.

        Raises:
            RegisterUnavailable: transient; nothing was written. Retry the batch with backoff.
        """
        poisoned: list[Rejected] = []
        while True:
            try:
                return await self._attempt(decoded, [*rejected, *poisoned], offsets, log_ids)
            except RegisterRefused as exc:
                culprit = await self.isolate(decoded)
                if culprit is None:
                    raise RegisterUnavailable(
                        f"{exc.reason}, and no single message causes it: retrying"
                    ) from exc
                d = decoded[culprit]
                log.error(
                    "register refused %s at %s/%d: %s",
                    d.source.topic,
                    d.source.partition,
                    d.source.offset,
                    exc.reason,
                )
                reason = (await self._refusal(decoded[: culprit + 1])) or exc.reason
                poisoned.append(Rejected(d.source, reason, d.message_id, d.person_key))
                decoded = decoded[:culprit] + decoded[culprit + 1 :]

    async def isolate(self, decoded: list[Decoded]) -> int | None:
        """The first message whose effects the register refuses, by bisecting trial writes (rolled
        back) of ever shorter prefixes of the batch; None when even no message fails or all pass.

        A prefix that fails keeps failing when it grows (the culprit stays in it), so the smallest
        failing prefix ends with the culprit: about log2(n) trials.
        """
        if await self._refusal(decoded) is None or await self._refusal([]) is not None:
            return None
        good, bad = 0, len(decoded)  # prefix of `good` messages passes; of `bad` messages fails
        while bad - good > 1:
            mid = (good + bad) // 2
            if await self._refusal(decoded[:mid]) is None:
                good = mid
            else:
                bad = mid
        return bad - 1

    async def _refusal(self, decoded: list[Decoded]) -> str | None:
        """The register's reason for refusing these messages' effects, from a trial write rolled back."""
        try:
            await self._attempt(decoded, [], {}, None, trial=True)
        except RegisterRefused as exc:
            return exc.reason
        return None

    async def _attempt(
        self,
        decoded: list[Decoded],
        rejected: list[Rejected],
        offsets: Mapping[tuple[str, int], int],
        log_ids: Mapping[str, str] | None,
        trial: bool = False,
    ) -> BatchResult:
        """Steps 3-5 of a batch in one transaction (rolled back if `trial`):

        3. load — everything the batch needs from each register's store, one round trip per table;
        4. handle — each message through its topic's handler, merging effects only on success; the
           messages whose handler says so (`Handler.first`: a person's identity) before the others;
        5. write — the batch's rows, processed ids and consumed offsets, parked reports a new scale
           releases (marked replayed; replayed onto their topic), and all outputs as one outbox row.
        """
        now = datetime.now(UTC)
        out = Outputs(
            self.names, self.config.pseudonym_secret, now, self.config.dead_letter_max_bytes
        )
        ctx = Context(now, self.config, out)
        replays: list[Outgoing] = []
        begun = time.perf_counter()
        async with self.register.unit_of_work(rollback=trial) as uow:
            # Step 3
            started = time.perf_counter()
            loaded, fresh, duplicates, scales = await self.load(uow, decoded)
            self.step("load", started)
            # Step 4
            started = time.perf_counter()
            batch = Batch(loaded, scales, out)
            for r in (*rejected, *loaded.conflicts):
                batch.reject(r)
            for d in duplicates:
                row = loaded.duplicates.get((d.source.topic, d.message_id))
                redecide = self.handlers[d.spec].redecide
                batch.duplicate(d, redecide(row, ctx) if row and redecide else None)
            later: list[Decoded] = []
            for d in fresh:
                first = self.handlers[d.spec].first
                if first is not None and first(batch, d):
                    self._handle(batch, d, ctx)
                else:
                    later.append(d)
            for d in later:
                self._handle(batch, d, ctx)
            self._dead_letter_ratio(batch, decoded, rejected)
            batch.changes.offsets = dict(offsets)
            batch.changes.log_ids = dict(log_ids or {})
            self.step("handle", started)
            # Step 5
            started = time.perf_counter()
            if self.on_write is not None:
                self.on_write()
            await uow.write(batch.changes, self.config.group_id)
            for scale in batch.new_scales:
                released = await uow.ctr.take_parked(scale.effective_from, scale.valid_to)
                for parked in replay_order(released):
                    replays.append(
                        Outgoing(
                            parked["source_topic"],
                            parked["key"],
                            parked["value"],
                            (("reghub-replay-of", parked["message_id"].encode()),),
                        )
                    )
            outputs = batch.outputs + replays
            outbox_id = None
            if outputs and not trial:
                outbox_id = await uow.keep_outputs(outputs, now)
            self.step("write", started)
        self.step("transaction", begun)
        if not trial:
            self.scales = batch.scales
        return BatchResult(outputs, batch.counts, outbox_id)

    def _handle(self, batch: Batch, d: Decoded, ctx: Context) -> None:
        """One message: its handler's effects merged, or, if the handler raised, an `internal_error`."""
        replaces = (d.source.topic, d.message_id) in batch.loaded.known
        handler = self.handlers[d.spec]
        try:
            fx = handler.handle(batch, d, ctx)
        except Exception:  # a bug on one message never stops the partition
            log.exception(
                "internal error handling %s at %s/%d",
                d.source.topic,
                d.source.partition,
                d.source.offset,
            )
            batch.reject(Rejected(d.source, "internal_error", d.message_id, d.person_key))
            return
        batch.merge(d, fx, replaces, known_by_purchase=handler.known_by_purchase)

    async def load(
        self, uow: RegisterUnitOfWork, decoded: list[Decoded]
    ) -> tuple[Loaded, list[Decoded], list[Decoded], ScaleBook]:
        """Step 3, load: read what the batch needs through the stores (the CTR's: processed ids,
        persons, purchases, parked messages, chains, histories, obligations; the places': the
        companies and places registrations name); split it into fresh messages and duplicates.

        A message id already processed (or seen earlier in this batch) is a duplicate, except one that
        was parked: that is decided again when it is replayed.
        """
        loaded = Loaded()
        known = await uow.known_messages(
            ((d.source.topic, d.message_id) for d in decoded),
            {d.source.topic for d in decoded if self.handlers[d.spec].known_by_purchase},
        )
        loaded.known = {k: v[:2] for k, v in known.items() if v[0] == "parked"}
        fresh: list[Decoded] = []
        duplicates: list[Decoded] = []
        seen = loaded.hashes
        for d in decoded:
            where = (d.source.topic, d.message_id)
            digest = d.digest
            earlier = known.get(where)
            first = seen.get(where, earlier[2] if earlier is not None else None)
            if first is not None and first != digest:
                loaded.conflicts.append(
                    Rejected(d.source, CONFLICT_REASON, d.message_id, d.person_key)
                )
            elif where in seen or (earlier is not None and earlier[0] != "parked"):
                duplicates.append(d)
            else:
                fresh.append(d)
                seen[where] = digest
        needs = [(d, self._needs(d)) for d in fresh]
        keys = {d.person_key for d in fresh if d.person_key is not None}
        keys.update(key for _, n in needs for key in n.persons)
        loaded.states, loaded.aliases = await uow.ctr.load_persons(keys)
        redecided = [
            d.message_id
            for d in duplicates
            if known.get((d.source.topic, d.message_id), ("",))[0] == "registered"
            and self.handlers[d.spec].redecide is not None
        ]
        referred = {rid for _, n in needs for rid in n.report_ids}
        rows = await uow.ctr.purchase_rows(referred | set(redecided))
        by_id = {row.report_id: row for row in rows}
        loaded.purchases = {
            rid: (by_id[rid].person_key, record_of(by_id[rid])) for rid in referred if rid in by_id
        }
        loaded.parked = await uow.ctr.parked_days(
            (d.source.topic, rid) for d, n in needs for rid in n.parked_ids if rid not in by_id
        )
        for d in duplicates:
            row = by_id.get(d.message_id)
            if row is not None and d.message_id in redecided:
                loaded.duplicates[(d.source.topic, d.message_id)] = row
        chains = set()
        for d, n in needs:
            key = _canonical(loaded, d.person_key)
            for rid in n.chains:
                if rid in by_id and by_id[rid].period_start is not None:
                    chains.add((by_id[rid].person_key, by_id[rid].period_start))
                elif key in loaded.states:  # a report of this batch: the current period
                    period = loaded.states[key].period
                    if period is not None:
                        chains.add((key, period.start))
            if n.current_period and key in loaded.states:
                period = loaded.states[key].period
                if period is not None:
                    chains.add((key, period.start))
        loaded.chains = await uow.ctr.load_chains(chains)
        loaded.histories = await uow.ctr.load_histories(self._histories(needs, loaded))
        obligation_ids: list[str] = []
        companies: set[str] = set()
        places: set[str] = set()
        with_places = False
        for d in fresh:
            handler = self.handlers[d.spec]
            if handler.obligations is not None:
                obligation_ids.extend(handler.obligations(d))
            if handler.places is not None:
                company, named = handler.places(d)
                companies.add(company)
                places.update(named)
                with_places = True
        loaded.obligations = await uow.ctr.load_obligations(obligation_ids)
        if with_places:
            loaded.places = await uow.places.load_places(companies, places)
        scales = self.scales
        if any(n.day is not None and scales.on(n.day) is None for _, n in needs):
            # another worker may have loaded the scale since this one read them
            scales = ScaleBook(await uow.ctr.load_scales())
        return loaded, fresh, duplicates, scales

    def _histories(self, needs: list[tuple[Decoded, Needs]], loaded: Loaded) -> set[str]:
        """The persons whose whole history the batch needs: declared by a message's needs, or found
        by its handler's `history` check against the person as loaded (a late report)."""
        wanted: set[str] = set()
        seen: dict[str, datetime] = {}

        for d, n in needs:
            if d.person_key is None:
                continue
            key = _canonical(loaded, d.person_key)
            check = self.handlers[d.spec].history
            if n.history or (check is not None and check(d, loaded.states.get(key), seen)):
                wanted.add(key)
                wanted.update(_canonical(loaded, k) for k in n.persons)
        return wanted

    def _needs(self, d: Decoded) -> Needs:
        needs = self.handlers[d.spec].needs
        return needs(d) if needs is not None else NO_NEEDS

    def _dead_letter_ratio(
        self, batch: Batch, decoded: list[Decoded], rejected: list[Rejected]
    ) -> None:
        """Alert when most of a partition's batch was rejected; the worker itself goes on."""
        totals: dict[tuple[str, int], int] = {}
        for item in (*decoded, *rejected):
            where = (item.source.topic, item.source.partition)
            totals[where] = totals.get(where, 0) + 1
        cfg = self.config
        for (topic, partition), total in totals.items():
            bad = batch.rejected_at.get((topic, partition), 0)
            if (
                total >= cfg.dead_letter_alert_min_messages
                and bad / total >= cfg.dead_letter_alert_ratio
            ):
                batch.outputs.append(batch.out.dead_letter_ratio(topic, partition, bad, total))


def _canonical(loaded: Loaded, key: str | None) -> str | None:
    """The internal id of the person a key belongs to, as loaded (`rules.identity`)."""
    alias = loaded.aliases.get(key) if key is not None else None
    return alias.person_key if alias is not None else key


def replay_order(parked: list[Row]) -> list[Row]:
    """Released parked messages in the order they were parked, each return after the sale it returns.

    A return parked with its sale may have been parked in the same batch (the same `parked_at`); the
    replays are published in this order per key, so the sale is registered before its return comes.
    """
    ids = {(p["source_topic"], p["message_id"]) for p in parked}

    def returns_one_of_these(p: Row) -> bool:
        try:
            return_of = orjson.loads(p["value"]).get("return_of")
        except (orjson.JSONDecodeError, AttributeError):
            return False
        return (p["source_topic"], return_of) in ids

    return sorted(parked, key=lambda p: (p["parked_at"], returns_one_of_these(p)))
