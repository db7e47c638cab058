"""The campaign's result: one row per scenario, printed as a table and the details behind it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of the table, and what the scenario noticed on the way."""

    scenario: str
    sent: int = 0
    registered: int = 0
    decided: int = 0
    dead_lettered: int = 0
    lost_reports: int = 0
    lost_decisions: int = 0
    doubled: int = 0
    republished: int = 0
    recovered_s: float | None = None
    quiet: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.lost_reports + self.lost_decisions

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled and self.quiet and not self.problems


HEADER = (
    "scenario",
    "sent",
    "registered",
    "decided",
    "dead-lettered",
    "lost (reports+decisions)",
    "doubled",
    "republished",
    "recovered",
    "verdict",
)


def table(rows: list[Row]) -> str:
    """The campaign's table: one line per scenario, columns as wide as their widest cell."""
    body = [
        (
            r.scenario,
            str(r.sent),
            str(r.registered),
            str(r.decided),
            str(r.dead_lettered),
            f"{r.lost} ({r.lost_reports}+{r.lost_decisions})",
            str(r.doubled),
            str(r.republished),
            "never" if r.recovered_s is None else f"{r.recovered_s:.1f} s",
            "pass" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(HEADER, *body, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    head = line(HEADER)
    return "\n".join([head, "-" * len(head), *(line(b) for b in body)])


def details(rows: list[Row]) -> str:
    out = []
    for r in rows:
        out.append(f"{r.scenario}:")
        out.extend(f"  problem: {p}" for p in r.problems)
        out.extend(f"  {n}" for n in r.notes)
    return "\n".join(out)
