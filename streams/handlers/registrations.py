"""`stps.registrations.v1`: the treatment-place register's events, from the six registration forms and SOR.

Runs once per message of a batch, after the places store loaded the companies and places the batch's
messages name (`places`, `sinks.places_store.PlacesStore.load_places`). Pure: it checks identifiers, the
form and the state move (`rules.treatment_places`), and returns the rows to upsert (`Effects.rows`, typed
rows of `sinks.places_rows`), a registration summary as the message's output, and any deadline alert on
`stps.alerts.v1`. A rule violation is dead-lettered with its `rule.*` reason.

Rows come from the load (the register before the batch) overlaid with the rows earlier messages of
the batch wrote (`BatchView.written`), so a company's first events may share one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from rules.identifiers import DANISH_MUNICIPALITY_CODES
from rules.treatment_places import identifiers as ids
from rules.treatment_places.categories import Practitioner, category_refusal
from rules.treatment_places.fees import (
    Fee,
    FeeBook,
    FeeTable,
    NoCategory,
    NoFeeTable,
    annual_fee,
    invoice_to,
)
from rules.treatment_places.forms import CHANGES_BY_EMAIL, LATER_CHANGES, form_refusal
from rules.treatment_places.sor import converged_event
from rules.treatment_places.states import (
    State,
    deregistration_days_late,
    move,
    registered_in_year,
    treatment_days_before_registration,
)
from schemas.common import local_day
from schemas.treatment_places import (
    Address,
    CompanyChanged,
    CompanyRegistered,
    Deregistered,
    ExemptPlaceNotified,
    InformationAdded,
    InformationChanged,
    PlaceAlert,
    Reregistered,
    UnitAdded,
    UnitChanged,
    UnitClosed,
)
from sinks.places_rows import (
    READ,
    CompanyRow,
    FeeRow,
    FeeTableRow,
    InformationRow,
    NotificationRow,
    PlaceRows,
    PractitionerRow,
    StateHistoryRow,
    StateRow,
    UnitRow,
    key_of,
)
from sinks.rows import Outgoing, utc
from streams.decode import Decoded
from streams.effects import Effects, refused
from streams.handlers.base import BatchView, Context, Handler, rejection
from streams.topics import PLACE_ALERTS, REGISTRATIONS

FEES = FeeBook()
"""The bundled fee tables (`rules.treatment_places.fees.KNOWN_FEE_TABLES`); tables loaded into the
register (`place_fee_tables`) are added to them per batch."""

Row = tuple[Any, ...]
"""A typed row of `sinks.places_rows`: its type names its table."""


def places(d: Decoded) -> tuple[str, tuple[str, ...]]:
    """The company and the places a message names (its unit, the unit it replaces), for the places
    store to load before the batch is handled."""
    e: Any = d.message
    named = (getattr(e, "sor_id", None), getattr(e, "replaces_sor_id", None))
    return e.company.key, tuple(s for s in named if s)


# -- the company's rows as this message sees them ---------------------------------------------------


@dataclass(slots=True)
class Book:
    """The register's rows for this message: loaded by the places store, overlaid with the batch's earlier writes."""

    companies: dict[str, CompanyRow]
    units: dict[str, UnitRow]
    practitioners: dict[tuple[str, str], PractitionerRow]
    information: dict[tuple[str, int], InformationRow]
    states: dict[str, StateRow]
    fees: dict[tuple[str, int], FeeRow]
    history: dict[tuple[str, int], StateHistoryRow] = field(default_factory=dict)
    fee_book: FeeBook = FEES

    @classmethod
    def of(cls, view: BatchView) -> Book:
        loaded = view.places()
        if loaded is None:  # never guess from an empty register: the message becomes internal_error
            raise LookupError("a registration needs its places loaded, which did not happen")
        merged: PlaceRows = {}
        for row_type in READ:
            rows = dict(loaded.get(row_type, {}))
            for row in view.written(row_type):
                rows[key_of(row)] = row
            merged[row_type] = rows
        return cls.loaded(merged)

    @classmethod
    def loaded(cls, merged: PlaceRows) -> Book:
        """The book of rows as a store loaded them (`sinks.places_store`), the batch's writes aside."""
        merged = {t: merged.get(t, {}) for t in READ}
        return cls(
            {k[0]: r for k, r in merged[CompanyRow].items()},
            {k[0]: r for k, r in merged[UnitRow].items()},
            merged[PractitionerRow],
            merged[InformationRow],
            {k[0]: r for k, r in merged[StateRow].items()},
            merged[FeeRow],
            merged[StateHistoryRow],
            FEES.with_tables(fee_table(r) for r in merged[FeeTableRow].values()),
        )

    def state(self, sor_id: str) -> State | None:
        row = self.states.get(sor_id)
        return row.state if row is not None else None  # type: ignore[return-value]

    def info(self, sor_id: str, version: int | None = None) -> InformationRow | None:
        versions = [r for (s, _), r in self.information.items() if s == sor_id]
        if version is not None:
            versions = [r for r in versions if r.version == version]
        return max(versions, key=lambda r: r.version, default=None)

    def turnover(self, sor_id: str, year: int) -> int | None:
        """The turnover for `year` in the latest information version that reports one."""
        versions = [
            r for (s, _), r in self.information.items() if s == sor_id and r.turnover_year == year
        ]
        latest = max(versions, key=lambda r: r.version, default=None)
        return latest.turnover if latest is not None else None

    def active_practitioners(self, sor_id: str) -> list[PractitionerRow]:
        return [r for (s, _), r in self.practitioners.items() if s == sor_id and r.active]

    def registered_in(self, sor_id: str, year: int) -> bool:
        """Whether the place was registered at some time in `year`, by its state history."""
        entries = sorted((r for (s, _), r in self.history.items() if s == sor_id), key=_seq)
        return registered_in_year([(r.state, r.since) for r in entries], year)


def _seq(row: StateHistoryRow) -> int:
    return row.seq


def fee_table(row: FeeTableRow) -> FeeTable:
    """A loaded fee table as the rules take it. Raises: ValueError, a table the rules refuse."""
    fees = (row.fee_1, row.fee_2, row.fee_3, row.fee_4, row.fee_5)
    halves = (row.half_1, row.half_2, row.half_3, row.half_4, row.half_5)
    return FeeTable(
        row.year,
        row.de_minimis_limit,
        dict(enumerate(fees, start=1)),
        row.care_only_fee_free,
        row.source,
        None if None in halves else dict(enumerate(halves, start=1)),  # type: ignore[arg-type]
    )


# -- checks ------------------------------------------------------------------------------------------


def _addresses(e: Any) -> Iterable[Address]:
    for name in ("address", "postal_address", "visiting_address", "activity_address"):
        a = getattr(e, name, None)
        if a is not None:
            yield a


def identifier_refusal(e: Any) -> str | None:
    """The first identifier of the event that fails its check, as a `rule.*` reason (spec § 3)."""
    if e.company.cvr is not None and not ids.is_cvr(e.company.cvr):
        return "rule.cvr_check_digit"
    for name in ("sor_id", "parent_sor_id", "replaces_sor_id", "replaced_by_sor_id"):
        value = getattr(e, name, None)
        if value is not None and not ids.is_sor_id(value):
            return "rule.sor_id_invalid"
    if any(not ids.is_postal_code(a.postal_code) for a in _addresses(e)):
        return "rule.postal_code_unknown"
    named: set[str] = set()
    for p in getattr(e, "practitioners", None) or ():
        if not ids.is_authorisation_id(p.authorisation_id):
            return "rule.authorisation_id_invalid"
        if p.ydernummer is not None and not ids.is_ydernummer(p.ydernummer):
            return "rule.ydernummer_invalid"
        if p.authorisation_id in named:
            return "rule.practitioner_named_twice"
        named.add(p.authorisation_id)
    ean = getattr(e, "ean", None)
    if ean is not None and not ids.is_ean_location_number(ean):
        return "rule.ean_check_digit"
    responsible = getattr(e, "responsible_authorisation_id", None)
    if responsible is not None and not ids.is_authorisation_id(responsible):
        return "rule.authorisation_id_invalid"
    return None


def owner_refusal(e: Any, company: CompanyRow | None, place: StateRow | None = None) -> str | None:
    """Whether the filer may act for this company: the form (spec § 2) and, for a municipal or regional
    place, the filer's own municipality or region. STPS changing a registered place of an e-mail form
    quotes its reference number (the owner's e-mail names it)."""
    registered = place is not None and place.reference_number is not None
    reason = form_refusal(
        e.event,
        e.form,
        e.filer.role,
        has_cvr=e.company.cvr is not None,
        se_number=e.filer.se_number,
        registered_form=company.form if company is not None else None,  # type: ignore[arg-type]
        place_registered=registered,
    )
    if reason is not None:
        return reason
    if (
        e.filer.role == "stps"
        and e.form in CHANGES_BY_EMAIL
        and e.event in LATER_CHANGES
        and registered
        and getattr(e, "reference_number", None) != place.reference_number  # type: ignore[union-attr]
    ):
        return "rule.reference_number_does_not_match"
    owner_code = (
        company.owner_municipality_code
        if company is not None
        else getattr(e, "owner_municipality_code", None)
    )
    if e.form == "municipal":
        if owner_code not in DANISH_MUNICIPALITY_CODES:
            return "rule.municipality_code_unknown"
        if e.filer.role == "municipality" and e.filer.municipality_code != owner_code:
            return "rule.another_municipalitys_place"
    region = company.owner_region_code if company is not None else None
    region = region or getattr(e, "owner_region_code", None)
    if e.form == "regional" and e.filer.role == "region" and e.filer.region_code != region:
        return "rule.another_regions_place"
    return None


# -- the handler ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """What handling one event produced, before it becomes `Effects`."""

    rows: tuple[Row, ...]
    reason: str
    alerts: tuple[Outgoing, ...] = ()


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    """One registration event: checked, then its rows, summary and alerts (see the module docstring)."""
    e: Any = d.message
    book = Book.of(view)
    key = e.company.key
    company = book.companies.get(key)
    place = book.states.get(getattr(e, "sor_id", None) or "")
    reason = identifier_refusal(e) or owner_refusal(e, company, place)
    if reason is None and e.event != "company_registered" and company is None:
        reason = "rule.company_not_registered"
    sor = getattr(e, "sor_id", None)
    if reason is None and sor is not None:
        unit = book.units.get(sor)
        if unit is not None and unit.company_key != key:
            reason = "rule.unit_of_another_company"
    if reason is not None:
        return refused(rejection(d, reason))
    result = _STEPS[e.event](book, d, e, ctx)
    if isinstance(result, str):
        return refused(rejection(d, result))
    summary = {"event": e.event, "company": key, "sor_id": sor, "result": result.reason}
    if sor is not None:
        after = {r[0]: r for r in result.rows if isinstance(r, StateRow)}.get(
            sor
        ) or book.states.get(sor)
        if after is not None:
            summary.update(state=after.state, reference_number=after.reference_number)
    return Effects(
        outcome="applied",
        output=orjson.dumps(summary),
        reason=result.reason,
        rows=result.rows,
        outputs=result.alerts,
    )


def _day(e: Any) -> date:
    return local_day(e.sent_at) or e.sent_at.date()


def _company(
    book: Book, d: Decoded, e: CompanyRegistered | CompanyChanged, ctx: Context
) -> Step | str:
    before = book.companies.get(e.company.key)
    if e.event == "company_registered" and before is not None:
        return "rule.company_already_registered_send_a_change"
    municipality, region = e.owner_municipality_code, e.owner_region_code
    if before is not None:  # a change that leaves the owner out keeps it
        municipality = municipality or before.owner_municipality_code
        region = region or before.owner_region_code
    row = CompanyRow(
        e.company.key,
        e.company.cvr,
        e.form,
        e.name,
        e.address.street,
        e.address.postal_code,
        e.address.city,
        e.phone,
        e.website,
        e.sor_id,
        municipality,
        region,
        e.message_id,
        ctx.now,
    )
    what = "company registered" if e.event == "company_registered" else "company changed"
    return Step((row,), what)


def _address_json(a: Address | None) -> str | None:
    return None if a is None else orjson.dumps(a.model_dump()).decode()


def _transition(
    book: Book,
    e: Any,
    sor: str,
    new: State,
    ctx: Context,
    *,
    version: int | None = None,
    registered: bool = False,
    stopped_on: date | None = None,
) -> tuple[Row, ...]:
    """The place's state row and, when its state changes, a history row."""
    before = book.states.get(sor)
    day = _day(e)
    seq = before.history_seq if before is not None else 0
    changed = before is None or before.state != new
    reference = before.reference_number if before is not None else None
    first = before.first_registered_on if before is not None else None
    if registered and reference is None:
        reference = f"BST-{sor}"  # DECISION: the SOR id is unique and never reused, so is this
    if registered and first is None:
        first = day
    stopped = before.treatment_stopped_on if before is not None else None
    if new == "REGISTERED":
        stopped = None
    elif stopped_on is not None:
        stopped = stopped_on
    rows: list[Row] = []
    if changed:
        seq += 1
        rows.append(StateHistoryRow(sor, seq, new, day, e.event, e.message_id, ctx.now))
    state = StateRow(
        sor,
        e.company.key,
        new,
        day if changed or before is None else before.since,
        reference,
        first,
        version if version is not None else (before.version if before is not None else None),
        seq,
        stopped,
        ctx.now,
        before.start_alerted_at if before is not None else None,
    )
    return (state, *rows)


def _alert(
    ctx: Context, d: Decoded, e: Any, sor: str, kind: str, days: int, detail: str
) -> Outgoing:
    alert = PlaceAlert(
        kind=kind,  # type: ignore[arg-type]
        source_topic=d.source.topic,
        message_id=e.message_id,
        company=e.company.key,
        sor_id=sor,
        days=days,
        detail=detail,
        at=ctx.now,
    )
    return ctx.out.emit(PLACE_ALERTS, e.company.key.encode(), alert.model_dump_json().encode())


def _unit(book: Book, d: Decoded, e: UnitAdded | UnitChanged, ctx: Context) -> Step | str:
    from_sor = e.filer.role == "sds"
    kind = converged_event(e.event, book.state(e.sor_id)) if from_sor else e.event
    new = move(kind, book.state(e.sor_id))
    if new not in ("SOR_ONLY", "REGISTERED", "DEREGISTERED", "NOTIFIED"):
        return new
    before = book.units.get(e.sor_id)
    # The SOR connector sends only the columns of SOR's file: a field its event leaves out stays as
    # the register has it (spec § 7). A form sends the whole unit.
    kept = (
        frozenset(UnitRow._fields) - e.model_fields_set
        if from_sor and before is not None
        else frozenset()
    )
    visiting = e.visiting_address or e.postal_address
    care = (
        list(e.care_services)
        if e.care_services is not None
        else (orjson.loads(before.care_services) if before is not None else [])
    )

    def field(name: str, sent: Any) -> Any:
        return getattr(before, name) if name in kept else sent

    unit = UnitRow(
        e.sor_id,
        e.company.key,
        e.name,
        e.unit_type,
        _address_json(e.postal_address),  # type: ignore[arg-type]
        field("visiting_address", _address_json(visiting)),
        field("activity_address", _address_json(e.activity_address or visiting)),
        field("phone", e.phone),
        field("website", e.website),
        field("main_speciality", e.main_speciality),
        field("sub_specialities", orjson.dumps(list(e.sub_specialities)).decode()),
        field("parent_sor_id", e.parent_sor_id),
        orjson.dumps(care).decode(),
        e.treatment_starts_on or (before.treatment_starts_on if before else None),
        None,
        e.replaces_sor_id or (before.replaces_sor_id if before else None),
        before.replaced_by_sor_id if before is not None else None,
        ctx.now,
    )
    rows: list[Row] = [unit]
    if e.practitioners is not None:  # the whole list: anyone not named has left
        named = {p.authorisation_id for p in e.practitioners}
        for p in e.practitioners:
            row = PractitionerRow(
                e.sor_id, p.authorisation_id, p.name, p.ydernummer, p.profession, True, ctx.now
            )
            rows.append(row)
        for gone in book.active_practitioners(e.sor_id):
            if gone.authorisation_id not in named:
                rows.append(gone._replace(active=False, updated_at=ctx.now))
    if book.state(e.sor_id) is None:
        rows.extend(_transition(book, e, e.sor_id, new, ctx))  # type: ignore[arg-type]
    alerts = []
    late = (
        0
        if new in ("REGISTERED", "NOTIFIED") or _alerted(book.states.get(e.sor_id))
        else treatment_days_before_registration(e.treatment_starts_on, None, _day(e))
    )
    if late:
        rows = _mark_alerted(book, rows, e.sor_id, ctx.now)
        alerts.append(
            _alert(
                ctx,
                d,
                e,
                e.sor_id,
                "treatment_before_registration",
                late,
                f"treatment started {e.treatment_starts_on} and the place is not registered",
            )
        )
    if kind != e.event:
        what = "unit adopted from SOR" if e.event == "unit_added" else "unit added from SOR"
    else:
        what = "unit added in SOR" if e.event == "unit_added" else "unit changed in SOR"
    return Step(tuple(rows), f"{what}: {new}", tuple(alerts))


def _unit_closed(book: Book, d: Decoded, e: UnitClosed, ctx: Context) -> Step | str:
    new = move(e.event, book.state(e.sor_id))
    if new != "CLOSED_IN_SOR":
        return new
    unit = book.units.get(e.sor_id)
    if unit is None:
        return "rule.unknown_unit"
    rows = [
        unit._replace(closed_on=e.closed_on, replaced_by_sor_id=e.replaced_by_sor_id),
        *_transition(book, e, e.sor_id, new, ctx),
    ]
    return Step(tuple(rows), "unit closed in SOR: CLOSED_IN_SOR")


def _information(
    book: Book, d: Decoded, e: InformationAdded | InformationChanged, ctx: Context
) -> Step | str:
    before = book.states.get(e.sor_id)
    new = move(e.event, book.state(e.sor_id))
    if new != "REGISTERED":
        return new
    if (
        e.event == "information_changed"
        and e.filer.role == "stps"
        and before is not None
        and e.reference_number != before.reference_number
    ):
        return "rule.reference_number_does_not_match"
    unit = book.units.get(e.sor_id)
    if unit is None:
        return "rule.unknown_unit"
    company = book.companies[e.company.key]
    practitioners = [
        Practitioner(p.authorisation_id, p.profession)  # type: ignore[arg-type]
        for p in book.active_practitioners(e.sor_id)
    ]
    care_only = bool(orjson.loads(unit.care_services)) and not practitioners
    # A unit delivering only §§ 83-87 care states its services and has no category, billing or
    # responsible doctor; a unit giving health treatment has all three (seed, spec § 3).
    if e.category is None and not care_only:
        return "rule.category_needed_for_health_treatment"
    why = (
        category_refusal(
            e.category,
            practitioners,
            e.responsible_authorisation_id,
            company.form,  # type: ignore[arg-type]
            care_only=care_only,
        )
        if e.category is not None
        else None
    )
    if why is not None:
        return why
    if e.fee_free == "care_only" and not care_only:
        return "rule.fee_free_care_only_unit_gives_health_treatment"
    if not care_only and invoice_to(e.ean, company.cvr, e.fee_email) is None:
        return "rule.no_invoice_channel_add_billing_information"
    latest = book.info(e.sor_id)
    version = (latest.version if latest is not None else 0) + 1
    info = InformationRow(
        e.sor_id,
        version,
        e.category,
        e.fee_email,
        e.ean,
        e.turnover_year,
        e.turnover,
        e.responsible_authorisation_id,
        e.fee_free,
        e.message_id,
        e.sent_at,
        ctx.now,
    )
    rows: list[Row] = [info]
    rows.extend(_transition(book, e, e.sor_id, new, ctx, version=version, registered=True))
    alerts: list[Outgoing] = []
    if e.event == "information_added":
        late = treatment_days_before_registration(unit.treatment_starts_on, _day(e), _day(e))
        if late and not _alerted(before):
            rows = _mark_alerted(book, rows, e.sor_id, ctx.now)
            alerts.append(
                _alert(
                    ctx,
                    d,
                    e,
                    e.sor_id,
                    "treatment_before_registration",
                    late,
                    f"registered {late} days after treatment started {unit.treatment_starts_on}",
                )
            )
    after = _apply_rows(book, rows)
    rows.extend(_fees_of_year(after, e.sor_id, _day(e).year, ctx))
    what = "registered" if e.event == "information_added" else "information changed"
    return Step(tuple(rows), f"{what}: version {version}", tuple(alerts))


def _alerted(place: StateRow | None) -> bool:
    """Whether `treatment_before_registration` was raised for the place already (by an event of it
    or by the timer, `streams.place_watch`): it is raised once."""
    return place is not None and place.start_alerted_at is not None


def _mark_alerted(book: Book, rows: list[Row], sor: str, now: datetime) -> list[Row]:
    """`rows` with the place's state row marking the alert as raised (its new row, or the one before)."""
    marked = [
        r._replace(start_alerted_at=now) if isinstance(r, StateRow) and r[0] == sor else r
        for r in rows
    ]
    if not any(isinstance(r, StateRow) and r[0] == sor for r in rows):
        marked.append(book.states[sor]._replace(start_alerted_at=now, updated_at=now))
    return marked


def _apply_rows(book: Book, rows: Iterable[Row]) -> Book:
    """The book with `rows` written (for the fee, which reads the place as it is after the event)."""
    after = Book(
        dict(book.companies),
        dict(book.units),
        dict(book.practitioners),
        dict(book.information),
        dict(book.states),
        dict(book.fees),
        dict(book.history),
        book.fee_book,
    )
    for row in rows:
        if isinstance(row, UnitRow):
            after.units[row[0]] = row
        elif isinstance(row, InformationRow):
            after.information[(row[0], row[1])] = row
        elif isinstance(row, StateRow):
            after.states[row[0]] = row
        elif isinstance(row, StateHistoryRow):
            after.history[(row[0], row[1])] = row
    return after


def _owner_change(book: Book, sor: str, year: int) -> bool:
    """Whether a new owner's place and the place it replaced were both registered in `year`.

    Only a new CVR (another company key) is a new owner; a unit SOR replaces under the same CVR (a
    move, a split) is not, and each place pays by its own band (spec § 1, DECISION).
    """
    unit = book.units.get(sor)
    if unit is None:
        return False
    replaced = book.units.get(unit.replaces_sor_id) if unit.replaces_sor_id else None
    if (
        replaced is not None
        and replaced.company_key != unit.company_key
        and book.registered_in(replaced.sor_id, year)
    ):
        return True
    return any(
        u.replaces_sor_id == sor
        and u.company_key != unit.company_key
        and book.registered_in(u.sor_id, year)
        for u in book.units.values()
    )


def _fee_row(book: Book, sor: str, year: int, now: datetime) -> FeeRow | None:
    """The place's fee for `year`, if it was registered in it and has information (spec § 6): by the
    information version in force at the year's end (the first one for a year before it)."""
    state = book.states.get(sor)
    if state is None or not book.registered_in(sor, year):
        return None
    versions = sorted(
        (r for (s, _), r in book.information.items() if s == sor), key=lambda r: r.version
    )
    if not versions:
        return None
    info = next((r for r in reversed(versions) if _local_year(r.valid_from) <= year), versions[0])
    company = book.companies.get(state.company_key)
    turnover = book.turnover(sor, year)
    fee = annual_fee(
        book.fee_book,
        year,
        info.category,
        turnover,
        fee_free=info.fee_free or ("care_only" if info.category is None else None),  # type: ignore[arg-type]
        owner_change=_owner_change(book, sor, year),
    )
    if isinstance(fee, Fee):
        band, amount = fee.band, fee.amount
    elif isinstance(fee, NoFeeTable):
        band, amount = "no_fee_table", None
    else:
        band, amount = ("no_category" if isinstance(fee, NoCategory) else "no_turnover"), None
    target = invoice_to(info.ean, company.cvr if company else None, info.fee_email)
    return FeeRow(
        sor,
        year,
        state.company_key,
        state.reference_number,
        info.category,
        turnover,
        band,
        amount,
        target[0] if target else None,
        target[1] if target else None,
        now,
    )


def _local_year(at: datetime) -> int:
    """The Copenhagen year of a stored time (SQLite gives it back without its zone: UTC)."""
    aware = utc(at) or at
    return (local_day(aware) or aware.date()).year


def ledger(book: Book, sor: str, until: int, now: datetime) -> list[FeeRow]:
    """The place's fee ledger: a row for every calendar year from its first registration to `until`
    in which it was registered at any time, also a year in which nothing happened (spec § 6)."""
    state = book.states.get(sor)
    first = state.first_registered_on if state is not None else None
    if first is None:
        return []
    rows = (_fee_row(book, sor, year, now) for year in range(first.year, until + 1))
    return [r for r in rows if r is not None]


def _fees_of_year(book: Book, sor: str, year: int, ctx: Context) -> list[Row]:
    """The ledger rows up to `year` for the place and, where one unit replaces another, the other
    place (an owner change makes both pay the full fee)."""
    rows: list[Row] = []
    unit = book.units.get(sor)
    others = {u.sor_id for u in book.units.values() if u.replaces_sor_id == sor}
    if unit is not None and unit.replaces_sor_id is not None:
        others.add(unit.replaces_sor_id)
    for place in (sor, *sorted(others)):
        rows.extend(ledger(book, place, year, ctx.now))
    return rows


def _deregistered(book: Book, d: Decoded, e: Deregistered, ctx: Context) -> Step | str:
    new = move(e.event, book.state(e.sor_id))
    if new != "DEREGISTERED":
        return new
    day = _day(e)
    if e.treatment_stopped_on > day:
        return "rule.treatment_stopped_in_the_future"
    rows = list(_transition(book, e, e.sor_id, new, ctx, stopped_on=e.treatment_stopped_on))
    rows.extend(_fees_of_year(_apply_rows(book, rows), e.sor_id, day.year, ctx))
    alerts = []
    late = deregistration_days_late(e.treatment_stopped_on, day)
    if late:
        alerts.append(
            _alert(
                ctx,
                d,
                e,
                e.sor_id,
                "late_deregistration",
                late,
                f"deregistered {late} days after the deadline: treatment stopped "
                f"{e.treatment_stopped_on}, due within 14 days",
            )
        )
    return Step(tuple(rows), "deregistered", tuple(alerts))


def _reregistered(book: Book, d: Decoded, e: Reregistered, ctx: Context) -> Step | str:
    new = move(e.event, book.state(e.sor_id))
    if new != "REGISTERED":
        return new
    before = book.states[e.sor_id]
    if e.reference_number is not None and e.reference_number != before.reference_number:
        return "rule.reference_number_does_not_match"
    rows = list(_transition(book, e, e.sor_id, new, ctx, registered=True))
    rows.extend(_fees_of_year(_apply_rows(book, rows), e.sor_id, _day(e).year, ctx))
    return Step(tuple(rows), "registered again")


def _notified(book: Book, d: Decoded, e: ExemptPlaceNotified, ctx: Context) -> Step | str:
    if e.operative_procedures:
        return "rule.exemption_not_for_operative_procedures"
    rows: list[Row] = [
        NotificationRow(
            e.message_id,
            e.company.key,
            e.sor_id,
            e.exemption,
            e.treatment_starts_on,
            ctx.now,
        )
    ]
    if e.sor_id is not None:
        new = move(e.event, book.state(e.sor_id))
        if new != "NOTIFIED":
            return new
        rows.extend(_transition(book, e, e.sor_id, new, ctx))
    return Step(tuple(rows), f"exempt place notified ({e.exemption})")


_STEPS: dict[str, Callable[[Book, Decoded, Any, Context], Step | str]] = {
    "company_registered": _company,
    "company_changed": _company,
    "unit_added": _unit,
    "unit_changed": _unit,
    "unit_closed": _unit_closed,
    "information_added": _information,
    "information_changed": _information,
    "deregistered": _deregistered,
    "reregistered": _reregistered,
    "exempt_place_notified": _notified,
}


TOPIC = REGISTRATIONS

HANDLER = Handler(handle, places=places)


# -- the read side: the whole register's fee ledger (`streams.fee_ledger`) ---------------------------


def whole_ledger(book: Book, until: int, now: datetime) -> list[FeeRow]:
    """Every place's ledger up to `until` (`streams.fee_ledger`)."""
    return [row for sor in sorted(book.states) for row in ledger(book, sor, until, now)]
