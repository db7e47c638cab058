"""Retention (BEK 764/2025 § 4): when each piece of the register is deleted. Pure: no I/O.

§ 4 stk. 1: "Oplysninger i CTR slettes efter 2 år", with the exceptions of stk. 2-7: a deceased person's
data 1 year after the death (stk. 2); individual grants 2 years after they expired (stk. 3); deferral
agreements (stk. 4), municipal health supplements (stk. 5) and rights-based entitlements (stk. 6) 2 years
after they ended; balancing amounts 2 years after they arose, settled or not (stk. 7).

DECISION (counting): data that arose on the Copenhagen calendar day D is kept through its anniversary,
D + 2 years (D + 1 year for a death), and deleted from the day after. The anniversary of 29 February in a
year without one is 28 February. So on `as_of`, everything that arose on or before `cutoff(rule, as_of)`
is deleted, and `as_of` is the first day it is gone: a purchase paid on 2024-03-01 is kept through
2026-03-01 and gone on 2026-03-02; one paid on 2024-02-29 is kept through 2026-02-28.

DECISION (what "arose" means, per table; `RETAINED` is the list, one line per table and rule):
- purchases: the Copenhagen date of `paid_or_invoiced_at`.
- subsidy_periods: a period row (its dates and saldo) arises with its purchases (spec § 8, DECISION): it
  goes when the last of its purchases goes, i.e. by `last_paid_at` (the latest payment registered in
  it), and never while a purchase in it is kept (`kept_by`). A period with no payment registered (one
  imported with its saldo) goes by `period_end`, the latest its purchases can have been.
- grants: `valid_to` (stk. 3, the grant's expiry).
- supplements: `valid_to`, per kind: health supplement (stk. 5), rights-based (stk. 6). Open-ended (no
  `valid_to`): never, while the person lives.
- deferral_agreements: `ended_on` (stk. 4); an agreement not ended: never, while the person lives.
- balances: `arose_on` (stk. 7), whether settled or not.
- corrections: `received_at`; person_merges: `merged_at`; parked_messages: `parked_at`;
  processed_messages: `processed_at`; obligations: `event_at`, or `updated_at` when it has none.
- custody: `valid_to`; open custody: never, while both persons live.
- treatment_relations: `valid_to`; a relation not ended: never, while the person lives.
- read_audit: `at`, the day of the read; the entries about a deceased person go with them.
- persons: a person's row and its alias rows go together when nothing person-keyed of any of their
  numbers is left and every one of those rows was last updated on or before the general cutoff.
- a deceased person (stk. 2, `died_on` + 1 year): every row naming the person or any of their numbers
  (alias rows) in every person-keyed table (`Retained.persons`), their persons rows last.

Times are compared as the Copenhagen calendar day they fall on. compliance_days, subsidy_scales,
consumer_offsets, the outbox and the dashboard's counts (register_minutes: purchases per minute;
register_totals: the register's sums) hold no personal data and are not touched here (the outbox purges
its own sent rows; a run takes what it deleted off register_totals, `sinks.counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    """One paragraph of § 4: data is kept `years` after the day it arose (see the module's DECISION)."""

    name: str
    paragraph: str
    years: int
    what: str


GENERAL = Rule("general", "§ 4 stk. 1", 2, "2 years after it arose")
DECEASED = Rule("deceased", "§ 4 stk. 2", 1, "1 year after the person's death")
GRANT = Rule("grant", "§ 4 stk. 3", 2, "2 years after the grant expired")
DEFERRAL = Rule("deferral", "§ 4 stk. 4", 2, "2 years after the agreement ended")
HEALTH_SUPPLEMENT = Rule("health_supplement", "§ 4 stk. 5", 2, "2 years after the grant ended")
RIGHTS_BASED = Rule("rights_based", "§ 4 stk. 6", 2, "2 years after the right lapsed")
BALANCING = Rule("balancing", "§ 4 stk. 7", 2, "2 years after the amount arose")

RULES: tuple[Rule, ...] = (
    GENERAL,
    DECEASED,
    GRANT,
    DEFERRAL,
    HEALTH_SUPPLEMENT,
    RIGHTS_BASED,
    BALANCING,
)


@dataclass(frozen=True, slots=True)
class Retained:
    """A table (or the rows of one kind in it) whose rows are deleted by `rule` from the day `arose`.

    `arose` names a date column, or a time column compared as its Copenhagen day; a row where it is
    null is never deleted by `rule` (open-ended), unless `fallback` names a column to take instead.
    `only` = (column, value) restricts the line to the rows with that value. `persons` names the
    columns holding a person number: those rows go with a deceased person (stk. 2) and keep a person's
    own row alive; () for a table without one. `kept_by` = (table, columns): a row stays while a row of
    that table sharing those columns' values is kept (a period while a purchase in it is).
    """

    table: str
    arose: str
    rule: Rule = GENERAL
    persons: tuple[str, ...] = ("person_key",)
    fallback: str | None = None
    only: tuple[str, str] | None = None
    kept_by: tuple[str, tuple[str, ...]] | None = None

    @property
    def label(self) -> str:
        """The line's name in counts and logs: the table, and the kind when the table has several."""
        return self.table if self.only is None else f"{self.table}.{self.only[1]}"


# One line per table (and rule). Persons rows are not listed: they follow the rest (module docstring).
RETAINED: tuple[Retained, ...] = (
    Retained("purchases", "paid_or_invoiced_at"),
    Retained(
        "subsidy_periods",
        "last_paid_at",
        fallback="period_end",
        kept_by=("purchases", ("person_key", "period_start")),
    ),
    Retained("grants", "valid_to", GRANT),
    Retained("supplements", "valid_to", HEALTH_SUPPLEMENT, only=("kind", "health_supplement")),
    Retained("supplements", "valid_to", RIGHTS_BASED, only=("kind", "rights_based")),
    Retained("deferral_agreements", "ended_on", DEFERRAL),
    Retained("balances", "arose_on", BALANCING),
    Retained("corrections", "received_at"),
    Retained("person_merges", "merged_at", persons=("person_key", "merged_key")),
    Retained("custody", "valid_to", persons=("parent_key", "child_key")),
    Retained("obligations", "event_at", fallback="updated_at"),
    Retained("parked_messages", "parked_at", persons=("key",)),
    Retained("processed_messages", "processed_at", persons=()),
    Retained("treatment_relations", "valid_to"),
    Retained("read_audit", "at"),
)
"""Every table holding personal data except persons. `parked_messages.key` is the message's Kafka key:
the person number as bytes."""

PERSONS_TABLE = "persons"
PERSONS_RULE = GENERAL
NOT_TOUCHED: tuple[str, ...] = (
    "compliance_days",
    "subsidy_scales",
    "consumer_offsets",
    "outbox",
    "register_minutes",
    "register_totals",
)


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def anniversary(day: date, years: int) -> date:
    """`day` `years` later; 29 February becomes 28 February in a year without one."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return date(day.year + years, 2, 28)


def kept_through(arose: date, rule: Rule) -> date:
    """The last day data that arose on `arose` is kept."""
    return anniversary(arose, rule.years)


def deleted_from(arose: date, rule: Rule) -> date:
    """The first day data that arose on `arose` is gone."""
    return kept_through(arose, rule) + timedelta(days=1)


def is_deleted(arose: date, rule: Rule, as_of: date) -> bool:
    """Is data that arose on `arose` deleted on `as_of`?"""
    return as_of > kept_through(arose, rule)


def cutoff(rule: Rule, as_of: date) -> date:
    """The last day of arising deleted on `as_of`: data that arose on or before it is deleted.

    The latest D with D + `years` (anniversary) before `as_of`. Counting back from the day before: its
    28 February in a common year is also the anniversary of a 29 February `years` before.
    """
    last_gone = as_of - timedelta(days=1)  # the latest anniversary already past
    back = last_gone.year - rule.years
    if last_gone.month == 2 and last_gone.day == 28 and is_leap(back):
        return date(back, 2, 29)
    try:
        return last_gone.replace(year=back)
    except ValueError:  # 29 February back into a common year
        return date(back, 2, 28)


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a retention run: `label` rows of `table` that arose on or before `cutoff` go."""

    rule: Rule
    table: str
    label: str
    cutoff: date


def schedule(as_of: date, retained: tuple[Retained, ...] = RETAINED) -> list[Step]:
    """The steps of a run on `as_of`, in the order they run: first everything of deceased persons
    (stk. 2, per person-keyed table, their persons rows last), then each line of `retained`, then the
    persons rows nothing is left of."""
    dead = cutoff(DECEASED, as_of)
    steps = [
        Step(DECEASED, r.table, f"deceased.{r.table}", dead)
        for r in _unique_tables(retained)
        if r.persons
    ]
    steps.append(Step(DECEASED, PERSONS_TABLE, f"deceased.{PERSONS_TABLE}", dead))
    steps += [Step(r.rule, r.table, r.label, cutoff(r.rule, as_of)) for r in retained]
    steps.append(Step(PERSONS_RULE, PERSONS_TABLE, PERSONS_TABLE, cutoff(PERSONS_RULE, as_of)))
    return steps


def _unique_tables(retained: tuple[Retained, ...]) -> list[Retained]:
    seen: dict[str, Retained] = {}
    for r in retained:
        seen.setdefault(r.table, r)
    return list(seen.values())
