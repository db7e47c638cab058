"""The end-of-day compliance summary: per reporter, how the day's reporting obligations were met.

An obligation belongs to the Danish local date of its event (the payment). Counted per reporter:
`on_time`, `late` (met after its due time, before the watch found it missing), `missing` (still unmet),
`resolved` (met after its missing alert), and the worst lateness in seconds among those met late.
Obligations whose event is not known (a report whose payment was never announced) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from rules.deadlines import COPENHAGEN
from rules.obligations import OPEN_STATES, Obligation


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: date
    reporter: str
    on_time: int = 0
    late: int = 0
    missing: int = 0
    resolved: int = 0
    worst_seconds_late: int = 0

    @property
    def total(self) -> int:
        return self.on_time + self.late + self.missing + self.resolved


def summarize(day: date, obligations: Iterable[Obligation]) -> list[DaySummary]:
    """One summary per reporter with an obligation whose event fell on `day`, by reporter."""
    counts: dict[str, dict[str, int]] = {}
    for o in obligations:
        if o.event_at is None or o.event_at.astimezone(COPENHAGEN).date() != day:
            continue
        c = counts.setdefault(
            o.reporter, {"on_time": 0, "late": 0, "missing": 0, "resolved": 0, "worst": 0}
        )
        state = "missing" if o.state in (*OPEN_STATES, "missing") else o.state
        if state in c:
            c[state] += 1
        if state in ("late", "resolved") and o.seconds_late is not None:
            c["worst"] = max(c["worst"], o.seconds_late)
    return [
        DaySummary(day, reporter, c["on_time"], c["late"], c["missing"], c["resolved"], c["worst"])
        for reporter, c in sorted(counts.items())
    ]
