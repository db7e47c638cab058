"""The CTR's store: every read and write of the CTR register's tables for a batch (`sinks.tables`).

Reads: the persons a batch touches (locked on PostgreSQL), the purchases, periods and histories its
messages refer to, parked messages, the scales, and the obligations its messages name. Writes: persons,
periods and purchases (on PostgreSQL through asyncpg directly: `COPY` for purchases, `unnest()` and JSON
upserts for persons and periods, measured several times faster than `executemany`, design.md "The hot
path, measured"), grants, supplements, balances, agreements, obligations (new ones by `COPY`), custody
and relations, and the dashboard's counts. Set-based statements only: no ORM object per event. Runs in the transaction of
the unit of work that owns it (`sinks.register.RegisterUnitOfWork.ctr`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    Table,
    and_,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rules.compliance import DaySummary
from rules.history import History
from rules.identity import Alias
from rules.obligations import OPEN_STATES, Obligation
from rules.outcomes import PurchaseRecord
from rules.scales import KNOWN_SCALES, Scale
from rules.state import Agreement, Balance, Grant, Period, PersonState, Supplement
from schemas.dispensing import DispensingLine
from sinks import counts, obligations
from sinks import tables as t
from sinks.changes import BatchChanges, Merge
from sinks.errors import RegisterUnavailable
from sinks.rows import (
    AgreementRow,
    BalanceRow,
    ComplianceRow,
    CustodyRow,
    GrantRow,
    ObligationRow,
    PeriodRow,
    PersonRow,
    PurchaseRow,
    SupplementRow,
    TreatmentRelationRow,
    obligation_of,
    utc,
)
from sinks.sql import OnTransaction, joined, json_rows, plain, split_sql, upsert

Row = dict[str, Any]

TABLES: dict[type, Table] = {
    ObligationRow: t.obligations,
    CustodyRow: t.custody,
    TreatmentRelationRow: t.treatment_relations,
}
"""The CTR tables whose typed rows handlers return in `Effects.rows`, upserted by primary key."""


class CtrStore(OnTransaction):
    """The CTR register on one unit of work's connection: `load_*` read, `write_*` write, in its
    transaction; committing is the unit of work's."""

    # -- reads ------------------------------------------------------------------------------------

    async def load_persons(
        self, keys: Iterable[str], *, lock: bool = True
    ) -> tuple[dict[str, PersonState], dict[str, Alias]]:
        """The persons `keys` belong to, by their internal id, and the keys among them that are another
        number of a person (`rules.identity`). On PostgreSQL every row read is locked (unless `lock` is
        false: a read that writes nothing), an alias's and its person's alike, so a renumbering and a
        report under either number take turns."""
        states, aliases = await self._load_states(list(keys), lock=lock)
        missing = sorted({a.person_key for a in aliases.values()} - states.keys())
        if missing:
            more, _ = await self._load_states(missing, lock=lock)
            states.update(more)
        return states, aliases

    async def _load_states(
        self, keys: list[str], *, lock: bool = True
    ) -> tuple[dict[str, PersonState], dict[str, Alias]]:
        if not keys:
            return {}, {}
        if self.is_postgres:
            raw = await self._raw()
            listed = joined(keys)
            if lock:
                # locked first, read after: a `FOR UPDATE` that waits for another transaction returns
                # the person's new row but the period it joins as it was before that one committed
                await raw.fetchval(_LOCK_PERSONS, listed)
            rows = await raw.fetch(_READ_STATES, listed)
        else:
            rows = await self.conn.execute(self._states_query(), {"among": keys})
        states: dict[str, PersonState] = {}
        aliases: dict[str, Alias] = {}
        with_extras: list[str] = []
        # by position: person_key, birth_date, has_extras, alias_of, alias_from, alias_since, died_on,
        # period_start, period_end, previous_period_end, under18, saldo, last_paid_at
        for key, born, extras, alias_of, alias_from, since, died, start, *period in rows:
            if alias_of is not None:
                aliases[key] = Alias(key, alias_of, alias_from, since)
                continue
            found = None
            if start is not None:
                end, previous_end, under18, saldo, last_paid_at = period
                found = Period(start, end, saldo, under18, previous_end, utc(last_paid_at))
            states[key] = PersonState(key, born, found, died_on=died)
            if extras:
                with_extras.append(key)
        if with_extras:
            await self._load_extras(states, with_extras)
        return states, aliases

    def _states_query(self) -> Any:
        """`_READ_STATES` as a SQLAlchemy query, for SQLite (which has no row locks)."""
        p, sp = t.persons, t.subsidy_periods
        return (
            select(
                p.c.person_key,
                p.c.birth_date,
                p.c.has_extras,
                p.c.alias_of,
                p.c.alias_from,
                p.c.alias_since,
                p.c.died_on,
                sp.c.period_start,
                sp.c.period_end,
                sp.c.previous_period_end,
                sp.c.under18,
                sp.c.saldo,
                sp.c.last_paid_at,
            )
            .select_from(
                p.outerjoin(
                    sp,
                    and_(
                        sp.c.person_key == p.c.person_key,
                        sp.c.period_start == p.c.current_period_start,
                    ),
                )
            )
            .where(self._among(p.c.person_key))
        )

    async def _load_extras(self, states: dict[str, PersonState], keys: list[str]) -> None:
        grants: dict[str, list[Grant]] = {}
        among = {"among": keys}
        for r in await self.conn.execute(
            select(t.grants).where(self._among(t.grants.c.person_key)), among
        ):
            grants.setdefault(r.person_key, []).append(
                Grant(r.grant_id, r.kind, r.drug_id, r.valid_from, r.valid_to)
            )
        supplements: dict[str, list[Supplement]] = {}
        query = select(t.supplements).where(self._among(t.supplements.c.person_key))
        for r in await self.conn.execute(query, among):
            supplements.setdefault(r.person_key, []).append(
                Supplement(
                    r.decision_id,
                    r.kind,
                    r.municipality_code,
                    r.percentage,
                    r.valid_from,
                    r.valid_to,
                )
            )
        balances: dict[str, list[Balance]] = {}
        b = t.balances
        query = (
            select(b)
            .where(self._among(b.c.person_key), (b.c.remaining != 0) | b.c.skip_once)
            .order_by(b.c.person_key, b.c.arose_on, b.c.balance_id)
        )
        for r in await self.conn.execute(query, among):
            balances.setdefault(r.person_key, []).append(
                Balance(
                    r.balance_id,
                    r.amount,
                    r.remaining,
                    r.arose_on,
                    r.arose_in_period,
                    r.origin,
                    r.skip_once,
                )
            )
        agreements: dict[str, list[Agreement]] = {}
        a = t.deferral_agreements
        for r in await self.conn.execute(
            select(a).where(self._among(a.c.person_key), a.c.settled.is_(False)), among
        ):
            agreements.setdefault(r.person_key, []).append(
                Agreement(
                    r.agreement_id,
                    r.pharmacy_number,
                    r.entered_on,
                    r.monthly_rate,
                    r.rates,
                    r.ended_on,
                    r.ended_by_default,
                    r.deferred_total,
                    r.settled,
                )
            )
        for key in keys:
            s = states[key]
            states[key] = PersonState(
                s.key,
                s.birth_date,
                s.period,
                tuple(grants.get(key, ())),
                tuple(supplements.get(key, ())),
                tuple(balances.get(key, ())),
                tuple(agreements.get(key, ())),
                s.died_on,
            )

    async def purchase_rows(self, report_ids: Iterable[str]) -> list[PurchaseRow]:
        """Registered purchases' rows by report id."""
        ids = list(set(report_ids))
        if not ids:
            return []
        p = t.purchases
        query = select(*(p.c[name] for name in PurchaseRow._fields)).where(
            self._among(p.c.report_id)
        )
        return [PurchaseRow(*r) for r in await self.conn.execute(query, {"among": ids})]

    async def parked_days(
        self, ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[date, bool]]:
        """Messages whose outcome is still `parked`, in one round trip: (topic, id) -> (the day whose
        scale they wait for, whether a scale released them already: replayed onto their topic and not
        handled again yet)."""
        wanted = set(ids)
        if not wanted:
            return {}
        pm, m = t.parked_messages, t.processed_messages
        query = (
            select(pm.c.source_topic, pm.c.message_id, pm.c.day, pm.c.replayed_at)
            .join(
                m,
                (m.c.message_id == pm.c.message_id) & (m.c.source_topic == pm.c.source_topic),
            )
            .where(
                self._among(pm.c.message_id, "ids"),
                self._among(pm.c.source_topic, "topics"),
                m.c.outcome == "parked",
            )
        )
        ids = sorted({mid for _, mid in wanted})
        topics = sorted({topic for topic, _ in wanted})
        return {
            (r.source_topic, r.message_id): (r.day, r.replayed_at is not None)
            for r in await self.conn.execute(query, {"ids": ids, "topics": topics})
            if (r.source_topic, r.message_id) in wanted
        }

    async def load_chains(
        self, periods: Iterable[tuple[str, date]]
    ) -> dict[tuple[str, date], tuple[Period, tuple[PurchaseRecord, ...]]]:
        """Periods and their purchases in register order, for corrections to recompute: one query for
        the periods and one for their purchases, whatever their number."""
        wanted = set(periods)
        if not wanted:
            return {}
        sp, p = t.subsidy_periods, t.purchases
        keys = sorted({key for key, _ in wanted})
        found: dict[tuple[str, date], Period] = {}
        among = {"among": keys}
        for row in await self.conn.execute(select(sp).where(self._among(sp.c.person_key)), among):
            if (row.person_key, row.period_start) in wanted:
                found[(row.person_key, row.period_start)] = _period_of(row)
        records: dict[tuple[str, date], list[PurchaseRecord]] = {where: [] for where in found}
        query = select(p).where(self._among(p.c.person_key)).order_by(p.c.id)
        for row in await self.conn.execute(query, among):
            chain = records.get((row.person_key, row.period_start))
            if chain is not None:
                chain.append(record_of(row))
        return {where: (period, tuple(records[where])) for where, period in found.items()}

    async def load_histories(self, keys: Iterable[str]) -> dict[str, History]:
        """Every period and purchase of these persons (`rules.history.History`), for a report placed by
        its payment date among them: one query for the periods and one for the purchases."""
        keys = sorted(set(keys))
        if not keys:
            return {}
        sp, p = t.subsidy_periods, t.purchases
        periods: dict[str, list[Period]] = {key: [] for key in keys}
        among = {"among": keys}
        query = select(sp).where(self._among(sp.c.person_key)).order_by(sp.c.period_start)
        for row in await self.conn.execute(query, among):
            periods[row.person_key].append(_period_of(row))
        records: dict[str, list[PurchaseRecord]] = {key: [] for key in keys}
        query = select(p).where(self._among(p.c.person_key)).order_by(p.c.id)
        for row in await self.conn.execute(query, among):
            records[row.person_key].append(record_of(row))
        return {key: History(tuple(periods[key]), tuple(records[key])) for key in keys}

    async def load_scales(self) -> tuple[Scale, ...]:
        """The known scales and those loaded through the scale topic (a loaded one supersedes)."""
        loaded = {
            r.effective_from: Scale(
                r.effective_from,
                r.valid_to,
                r.t1,
                r.t2,
                r.t3,
                r.t4,
                r.t4_child,
                r.own_payment_cap,
                r.source,
            )
            for r in await self.conn.execute(select(t.subsidy_scales))
        }
        known = tuple(s for s in KNOWN_SCALES if s.effective_from not in loaded)
        return known + tuple(loaded.values())

    async def load_obligations(self, ids: Iterable[str]) -> dict[str, Obligation]:
        """The obligations a batch's messages name, locked for this transaction on PostgreSQL
        (`sinks.obligations.by_id`): an obligation is either met by this batch or alerted as missing
        by the watch, never both at once."""
        return await obligations.by_id(self.conn, ids)

    # -- obligations outside a batch: the watch, the day's compliance, the gauge ---------------------

    async def overdue_obligations(self, now: datetime, limit: int) -> list[Obligation]:
        """Open obligations past their due time, oldest first, locked (`sinks.obligations.overdue`)."""
        return await obligations.overdue(self.conn, now, limit)

    async def mark_missing(self, due: Sequence[Obligation], now: datetime) -> None:
        """The overdue obligations `due` become `missing`, with the dashboard's obligations by state."""
        ob = t.obligations
        await self.conn.execute(
            update(ob)
            .where(ob.c.obligation_id.in_([o.obligation_id for o in due]))
            .values(state="missing", updated_at=now)
        )
        moved = counts.obligation_moves((o.state for o in due), ("missing" for _ in due))
        await counts.add(self.conn, 0, {}, moved)

    async def earliest_due(self, now: datetime) -> datetime | None:
        """The earliest due time of an open obligation not yet due."""
        ob = t.obligations
        found = (
            await self.conn.execute(
                select(func.min(ob.c.due_at)).where(ob.c.state.in_(OPEN_STATES), ob.c.due_at > now)
            )
        ).scalar()
        return utc(found)

    async def obligations_by_state(self) -> dict[str, int]:
        """How many obligations are in each state."""
        ob = t.obligations
        query = select(ob.c.state, func.count()).group_by(ob.c.state)
        return {state: n for state, n in (await self.conn.execute(query)).all()}

    async def last_closed_day_totals(self) -> tuple[date, dict[str, int]] | None:
        """The last closed day and its obligations by outcome over all reporters; None before any
        day was closed."""
        cd = t.compliance_days
        day = (await self.conn.execute(select(func.max(cd.c.day)))).scalar()
        if day is None:
            return None
        row = (
            await self.conn.execute(
                select(
                    func.sum(cd.c.on_time),
                    func.sum(cd.c.late),
                    func.sum(cd.c.missing),
                    func.sum(cd.c.resolved),
                ).where(cd.c.day == day)
            )
        ).one()
        outcomes = ("on_time", "late", "missing", "resolved")
        return day, {state: int(n or 0) for state, n in zip(outcomes, row, strict=True)}

    async def obligations_of(self, start: datetime, end: datetime) -> list[Obligation]:
        """The obligations whose event happened in [start, end) (times in UTC, as stored: SQLite
        compares the text of times and keeps no offset)."""
        ob = t.obligations
        rows = await self.conn.execute(
            select(ob).where(ob.c.event_at >= start, ob.c.event_at < end)
        )
        return [obligation_of(r) for r in rows]

    async def closed_day(self, day: date) -> list[DaySummary]:
        """The compliance summaries stored when `day` was closed; empty if it is not closed yet."""
        cd = t.compliance_days
        rows = await self.conn.execute(select(cd).where(cd.c.day == day).order_by(cd.c.reporter))
        return [
            DaySummary(
                r.day, r.reporter, r.on_time, r.late, r.missing, r.resolved, r.worst_seconds_late
            )
            for r in rows
        ]

    async def close_day(self, row: ComplianceRow) -> bool:
        """Keep a reporter's summary of a day, never replacing one: whether this call kept it (False:
        the day was closed already, by this worker or another)."""
        insert = pg_insert if self.is_postgres else sqlite_insert
        cd = t.compliance_days
        stmt = insert(cd).on_conflict_do_nothing().returning(cd.c.day)
        return (await self.conn.execute(stmt, [row._asdict()])).first() is not None

    async def take_parked(self, first: date, last: date | None) -> list[Row]:
        """Parked messages dated within [first, last], marked replayed in this transaction; in the
        order they were parked."""
        pm = t.parked_messages
        cond = [pm.c.replayed_at.is_(None), pm.c.day >= first]
        if last is not None:
            cond.append(pm.c.day <= last)
        query = select(pm).where(*cond).order_by(pm.c.parked_at)
        rows = [dict(r._mapping) for r in await self.conn.execute(query)]
        if rows:
            await self.conn.execute(
                update(pm)
                .where(
                    tuple_(pm.c.message_id, pm.c.source_topic).in_(
                        [(r["message_id"], r["source_topic"]) for r in rows]
                    )
                )
                .values(replayed_at=datetime.now(UTC))
            )
        return rows

    # -- the write --------------------------------------------------------------------------------

    async def write_batch(self, changes: BatchChanges, now: datetime) -> counts.Tally:
        """Write the CTR's part of a batch (steps 0-4 of `RegisterUnitOfWork.write`), in the unit of
        work's transaction:

        0. merges of two persons (the merged one's rows move to the kept one, its key becomes an
           alias) and new aliases (another number of a person);
        1. persons and their touched periods;
        2. purchases (new rows, then the changed columns of earlier rows);
        3. grants, supplements, balances and deferral agreements that changed;
        4. the CTR's other rows the handlers returned (obligations, custody, treatment relations),
           corrections, scales, parked messages.

        Returns:
            What the batch changed of the register's totals, for `write_counts`.

        Raises:
            RegisterUnavailable: a person's key was registered by another worker meanwhile (a report
                under a new number and its renumbering at once): run the batch again.
            sqlalchemy.exc.DBAPIError, asyncpg.PostgresError, OSError: the database refused or failed;
                `Register.unit_of_work` classifies it.
        """
        # Step 0
        merged = 0  # persons rows that were a person and are an alias now
        for merge in changes.merges:
            merged += await self._merge(merge, now)
        new_keys = [
            PersonRow(a.key, born, None, False, now, a.person_key, a.replaced, a.since, None)
            for a, born in changes.aliases
        ]
        # Step 1
        person_rows = []
        for s in changes.persons.values():
            row = PersonRow(
                s.key,
                s.birth_date,
                s.period.start if s.period else None,
                _has_extras(s),
                now,
                died_on=s.died_on,
            )
            before = changes.loaded.get(s.key)
            if before is None:
                new_keys.append(row)
            elif (
                (before.period.start if before.period else None) != row.current_period_start
                or _has_extras(before) != row.has_extras
                or before.died_on != row.died_on
            ):
                person_rows.append(row)
        await self._insert_new_keys(new_keys)
        period_rows = [
            PeriodRow(key, p.start, p.end, p.previous_end, p.under18, p.saldo, utc(p.last_paid_at))
            for (key, _), p in changes.periods.items()
        ]
        sp = t.subsidy_periods
        for key, start in changes.removed_periods - changes.periods.keys():
            await self.conn.execute(
                delete(sp).where(sp.c.person_key == key, sp.c.period_start == start)
            )
        if self.is_postgres:
            await self._write_hot_postgres(changes, person_rows, period_rows)
        else:
            for table, rows in (
                (t.persons, person_rows),
                (t.subsidy_periods, period_rows),
                (t.purchases, changes.purchases),
            ):
                if rows:
                    await self.conn.execute(upsert(self.conn, table), [r._asdict() for r in rows])
        total = counts.of_purchases(changes.purchases) + counts.Tally(
            persons=sum(1 for r in new_keys if r.alias_of is None) - merged
        )
        # Step 2 (changes to purchases registered before this batch)
        total += await self._counts_changed(changes.purchase_updates)
        for report_id, values in changes.purchase_updates.items():
            await self.conn.execute(
                update(t.purchases).where(t.purchases.c.report_id == report_id).values(**values)
            )
        # Step 3
        await self._write_extras(changes, now)
        # Step 4
        grouped: dict[type, list[Any]] = {}
        for row in changes.rows:
            if type(row) in TABLES:
                grouped.setdefault(type(row), []).append(row)
        if ObligationRow in grouped:
            written = grouped[ObligationRow]
            if self.is_postgres:
                del grouped[ObligationRow]
                total += await self._write_obligations(written, changes.known_obligations)
            else:  # the states before, read before the upsert below
                total += await self._obligation_moves_sqlite(written)
        for row_type, rows in grouped.items():
            await self.conn.execute(
                upsert(self.conn, TABLES[row_type]), [r._asdict() for r in rows]
            )
        for table, rows in (
            (t.corrections, changes.corrections),
            (t.subsidy_scales, changes.scales),
            (t.parked_messages, changes.parked),
        ):
            if rows:
                await self.conn.execute(upsert(self.conn, table), [r._asdict() for r in rows])
        return total

    async def write_counts(self, changes: BatchChanges, total: counts.Tally) -> None:
        """The counts the dashboard reads (`sinks.counts`): the new purchases by the minute they were
        registered in, and what the batch changed of the register's totals (`write_batch`'s)."""
        slot = counts.slot_of(partition for _, partition in changes.offsets)
        await counts.add(self.conn, slot, counts.by_minute(changes.purchases), total)

    async def _counts_changed(self, updates: dict[str, dict[str, Any]]) -> counts.Tally:
        """What changing earlier purchases' subsidy or deviation changes of the totals: their values
        before, read by report id (only when the batch changes one of them: a correction, a replay)."""
        touched = [rid for rid, v in updates.items() if "subsidy" in v or "deviation" in v]
        if not touched:
            return counts.Tally()
        p = t.purchases
        query = select(p.c.report_id, p.c.subsidy, p.c.deviation).where(self._among(p.c.report_id))
        change = counts.Tally()
        for report_id, subsidy, deviation in await self.conn.execute(query, {"among": touched}):
            values = updates[report_id]
            after = counts.of_purchase(
                values.get("subsidy", subsidy), values.get("deviation", deviation)
            )
            change += after + -counts.of_purchase(subsidy, deviation)
        return change

    async def _insert_new_keys(self, rows: list[PersonRow]) -> None:
        """Persons and aliases the batch saw for the first time. A key another worker registered since
        the batch read it (a report under a new number beside its renumbering) is not overwritten: the
        batch is run again, and then sees it.

        Raises:
            RegisterUnavailable: one of the keys exists now.
        """
        if not rows:
            return
        if not self.is_postgres:  # one writer at a time: nobody can have come between
            await self.conn.execute(
                sqlite_insert(t.persons).on_conflict_do_nothing(), [r._asdict() for r in rows]
            )
            return
        raw = await self._raw()
        inserted = await raw.fetch(_INSERT_NEW_PERSONS, json_rows(rows))
        if len(inserted) != len(rows):
            raise RegisterUnavailable(
                "a person's key was registered by another worker meanwhile: running the batch again"
            )

    async def _merge(self, merge: Merge, now: datetime) -> int:
        """Move a merged person's rows to the kept one; its key (and its aliases) become aliases.

        Returns 1 if the merged key was a person in the register, 0 if it is new in this batch (its
        reports came in the batch of the merge: it is written as an alias only)."""
        kept, gone = merge.alias.person_key, merge.alias.key
        p = t.persons
        was_person = (
            await self.conn.execute(
                select(func.count()).where(p.c.person_key == gone, p.c.alias_of.is_(None))
            )
        ).scalar_one()
        for table in (t.grants, t.supplements, t.balances, t.deferral_agreements, t.purchases):
            await self.conn.execute(
                update(table).where(table.c.person_key == gone).values(person_key=kept)
            )
        for table, column, same in (
            (t.treatment_relations, "person_key", ("authorisation_id", "sor_id", "valid_from")),
            (t.custody, "child_key", ("parent_key", "valid_from")),
            (t.custody, "parent_key", ("child_key", "valid_from")),
        ):
            await self._move_keyed(table, column, same, gone, kept)
        sp, p = t.subsidy_periods, t.persons
        await self.conn.execute(delete(sp).where(sp.c.person_key == gone))
        await self.conn.execute(update(p).where(p.c.alias_of == gone).values(alias_of=kept))
        row = PersonRow(
            gone, merge.birth_date, None, False, now, kept, merge.alias.replaced, merge.alias.since
        )
        await self.conn.execute(upsert(self.conn, p), [row._asdict()])
        await self.conn.execute(upsert(self.conn, t.person_merges), [merge.record._asdict()])
        return int(was_person)

    async def _move_keyed(
        self, table: Table, column: str, same: tuple[str, ...], gone: str, kept: str
    ) -> None:
        """Re-key `table`'s rows from `gone` to `kept` in `column`; a row the kept person already has
        (the same values in `same`) is the one kept."""
        have = table.alias("have")
        duplicate = exists().where(have.c[column] == kept, *(have.c[c] == table.c[c] for c in same))
        await self.conn.execute(delete(table).where(table.c[column] == gone, duplicate))
        await self.conn.execute(update(table).where(table.c[column] == gone).values({column: kept}))

    async def _write_hot_postgres(
        self,
        changes: BatchChanges,
        person_rows: list[PersonRow],
        period_rows: list[PeriodRow],
    ) -> None:
        raw = await self._raw()
        if person_rows:
            await raw.execute(_UPSERT_PERSONS, json_rows(person_rows))
        if period_rows:
            await raw.execute(
                """INSERT INTO subsidy_periods (person_key, period_start, period_end, previous_period_end, under18, saldo, last_paid_at)
                SELECT (r->>0)::varchar, (r->>1)::date, (r->>2)::date, (r->>3)::date, (r->>4)::bool,
                  (r->>5)::bigint, (r->>6)::timestamptz
                FROM jsonb_array_elements($1::text::jsonb) AS r
                ON CONFLICT (person_key, period_start) DO UPDATE SET saldo = EXCLUDED.saldo,
                  previous_period_end = EXCLUDED.previous_period_end, last_paid_at = EXCLUDED.last_paid_at,
                  under18 = EXCLUDED.under18""",
                json_rows(period_rows),
            )
        if changes.purchases:
            await raw.copy_records_to_table(
                "purchases", records=plain(changes.purchases), columns=PurchaseRow._fields
            )

    async def _write_obligations(self, rows: list[Any], known: set[str]) -> counts.Tally:
        """Obligation rows (a row per report). The latest row of an obligation the batch wrote twice
        is the one that stays, as with one upsert per row. Those the batch did not find in the register
        (`known`: loaded and locked) are new: one `COPY` (most are a report whose payment was not
        announced, met as it comes). The others are one upsert of a JSON array of rows (`json_rows`).

        Returns how the obligations moved between states (`sinks.counts`): a new one enters its
        state; for the others, from the upsert itself: its sub-statements all read the table as it was
        before the upsert, so `found` holds the states the batch found (the rows are locked since the
        batch loaded them).

        Raises:
            asyncpg.UniqueViolationError: another worker inserted one of the new obligations since the
                batch loaded them (`sinks.errors`: run the batch again, which then finds it).
        """
        latest = {row[0]: row for row in rows}
        raw = await self._raw()
        new = [row for oid, row in latest.items() if oid not in known]
        moved = counts.obligation_moves((), (row.state for row in new))
        if new:
            await raw.copy_records_to_table(
                "obligations", records=plain(new), columns=ObligationRow._fields
            )
        found = [row for oid, row in latest.items() if oid in known]
        if not found:
            return moved
        moves = await raw.fetch(
            """WITH incoming AS (
              SELECT (r->>0)::varchar AS obligation_id, (r->>1)::varchar AS kind,
                (r->>2)::varchar AS reporter, (r->>3)::varchar AS legal_basis,
                (r->>4)::varchar AS person_key, (r->>5)::timestamptz AS event_at,
                (r->>6)::timestamptz AS due_at, (r->>7)::timestamptz AS arrived_at,
                (r->>8)::varchar AS state, (r->>9)::timestamptz AS updated_at
              FROM jsonb_array_elements($1::text::jsonb) AS r
            ), found AS (
              SELECT o.state FROM obligations o JOIN incoming i ON o.obligation_id = i.obligation_id
            ), written AS (
              INSERT INTO obligations (obligation_id, kind, reporter, legal_basis, person_key,
                event_at, due_at, arrived_at, state, updated_at)
              SELECT * FROM incoming
              ON CONFLICT (obligation_id) DO UPDATE SET kind = EXCLUDED.kind,
                reporter = EXCLUDED.reporter, legal_basis = EXCLUDED.legal_basis,
                person_key = EXCLUDED.person_key, event_at = EXCLUDED.event_at,
                due_at = EXCLUDED.due_at, arrived_at = EXCLUDED.arrived_at, state = EXCLUDED.state,
                updated_at = EXCLUDED.updated_at
              RETURNING state
            )
            SELECT state, sum(n)::bigint AS n
            FROM (SELECT state, -1 AS n FROM found UNION ALL SELECT state, 1 AS n FROM written) AS moves
            GROUP BY state""",
            json_rows(found),
        )
        return moved + counts.Tally(obligations={r["state"]: int(r["n"]) for r in moves if r["n"]})

    async def _obligation_moves_sqlite(self, rows: list[Any]) -> counts.Tally:
        """How the obligation rows about to be written move obligations between states: the states
        they have now, read by id, and the latest row's of each (SQLite: one writer at a time)."""
        latest = {row[0]: row[8] for row in rows}  # obligation_id -> state
        ob = t.obligations
        query = select(ob.c.state).where(self._among(ob.c.obligation_id))
        before = (await self.conn.execute(query, {"among": list(latest)})).scalars().all()
        return counts.obligation_moves(before, latest.values())

    async def _write_extras(self, changes: BatchChanges, now: datetime) -> None:
        grant_rows: list[GrantRow] = []
        supplement_rows: list[SupplementRow] = []
        balance_rows: list[BalanceRow] = []
        agreement_rows: list[AgreementRow] = []
        for key, state in changes.persons.items():
            before = changes.loaded.get(key)
            old = before or PersonState(key, state.birth_date)
            if (
                state.grants is old.grants
                and state.supplements is old.supplements
                and state.balances is old.balances
                and state.agreements is old.agreements
            ):
                continue  # the usual purchase: none of these changed
            for g in set(state.grants) - set(old.grants):
                grant_rows.append(
                    GrantRow(key, g.grant_id, g.kind, g.drug_id, g.valid_from, g.valid_to, now)
                )
            for s in set(state.supplements) - set(old.supplements):
                supplement_rows.append(
                    SupplementRow(
                        key,
                        s.decision_id,
                        s.kind,
                        s.municipality_code,
                        s.percentage,
                        s.valid_from,
                        s.valid_to,
                        now,
                    )
                )
            for b in set(state.balances) - set(old.balances):
                balance_rows.append(
                    BalanceRow(
                        b.balance_id,
                        key,
                        b.amount,
                        b.remaining,
                        b.arose_on,
                        b.arose_in_period,
                        b.origin,
                        b.skip_once,
                        changes.settled_by.get(b.balance_id),
                        now,
                    )
                )
            for a in set(state.agreements) - set(old.agreements):
                agreement_rows.append(
                    AgreementRow(
                        key,
                        a.agreement_id,
                        a.pharmacy_number,
                        a.entered_on,
                        a.monthly_rate,
                        a.rates,
                        a.ended_on,
                        a.ended_by_default,
                        a.deferred_total,
                        a.settled,
                        now,
                    )
                )
        for table, rows in (
            (t.grants, grant_rows),
            (t.supplements, supplement_rows),
            (t.balances, balance_rows),
            (t.deferral_agreements, agreement_rows),
        ):
            if rows:
                await self.conn.execute(upsert(self.conn, table), [r._asdict() for r in rows])


_INSERT_PERSONS = """INSERT INTO persons (person_key, birth_date, current_period_start, has_extras,
  updated_at, alias_of, alias_from, alias_since, died_on)
SELECT (r->>0)::varchar, (r->>1)::date, (r->>2)::date, (r->>3)::bool, (r->>4)::timestamptz,
  (r->>5)::varchar, (r->>6)::varchar, (r->>7)::date, (r->>8)::date
FROM jsonb_array_elements($1::text::jsonb) AS r"""
"""`PersonRow`s from one JSON array (`sinks.sql.json_rows`), in its column order. As `unnest()` arrays
(nine per person) they cost the driver about 3 µs of CPU a person in its check of each element, 12-13 ms
of a batch's 4,400 persons, and PostgreSQL 1-5 ms less than parsing the JSON (40 batches of each)."""
_INSERT_NEW_PERSONS = _INSERT_PERSONS + " ON CONFLICT (person_key) DO NOTHING RETURNING person_key"
_UPSERT_PERSONS = (
    _INSERT_PERSONS
    + """ ON CONFLICT (person_key) DO UPDATE SET current_period_start = EXCLUDED.current_period_start,
  has_extras = EXCLUDED.has_extras, updated_at = EXCLUDED.updated_at, died_on = EXCLUDED.died_on,
  birth_date = EXCLUDED.birth_date"""
)
_READ_STATES = (
    """SELECT p.person_key, p.birth_date, p.has_extras, p.alias_of, p.alias_from,
  p.alias_since, p.died_on, sp.period_start, sp.period_end, sp.previous_period_end, sp.under18,
  sp.saldo, sp.last_paid_at
FROM persons p LEFT OUTER JOIN subsidy_periods sp
  ON sp.person_key = p.person_key AND sp.period_start = p.current_period_start
WHERE p.person_key = ANY("""
    + split_sql("$1")
    + ")"
)
"""The persons among $1 (`sinks.sql.joined`) with their current periods, on PostgreSQL (asyncpg,
positional rows)."""
_LOCK_PERSONS = (
    """SELECT count(*) FROM (SELECT 1 FROM persons
  WHERE person_key = ANY("""
    + split_sql("$1")
    + ") ORDER BY person_key FOR UPDATE) locked"
)
"""Lock the persons among $1 for this transaction, in key order (two batches locking the same persons
take them in the same order), before `_READ_STATES` reads them in a statement of its own: under READ
COMMITTED a statement that waited for a lock reads the rows it joins as they were when it began. A count,
not the rows, to spare the client. `bench.person_lock`: about 11 ms more a batch of 4,300 than locking
in the read, 2 ms of it the client's CPU."""


def _period_of(row: Any) -> Period:
    return Period(
        row.period_start,
        row.period_end,
        row.saldo,
        row.under18,
        row.previous_period_end,
        utc(row.last_paid_at),
    )


def _has_extras(s: PersonState) -> bool:
    return bool(s.grants or s.supplements or s.balances or s.agreements)


def record_of(r: Any) -> PurchaseRecord:
    """What later rules (returns, corrections, grants) need of a registered purchase: a row or a
    result row.

    Its lines come from the row's `lines` column (JSON): the object the dispensings handler keeps
    (`streams.handlers.dispensings.kept_details`, the lines under "lines"), or, for a purchase
    registered before that, the list of lines alone. They were validated when the report came in,
    so they are rebuilt without validating again; a line kept without `generally_reimbursed` had it.
    """
    stored = orjson.loads(r.lines)
    kept = stored["lines"] if isinstance(stored, dict) else stored
    lines = tuple(
        DispensingLine.model_construct(
            drug_id=ln["drug_id"],
            reimbursement_price=ln.get("reimbursement_price", 0),
            actual_price=ln.get("actual_price", 0),
            generally_reimbursed=ln.get("generally_reimbursed", True),
        )
        for ln in kept
    )
    return PurchaseRecord(
        report_id=r.report_id,
        day=r.day,
        period_start=r.period_start,
        basis=r.basis,
        entitled=r.subsidy_entitled,
        terminal=r.terminal,
        returned_basis=r.returned_basis,
        status=r.status,
        deferred=r.deferred_to_agreement,
        lines=lines,
        paid_at=utc(r.paid_or_invoiced_at),
        return_of=r.return_of,
        subsidised=r.subsidised,
        actual=sum(ln.actual_price for ln in lines),
        paid=r.citizen_pays + r.balancing_applied,
    )
