"""The audit log of reads of personal data (order § 5): every read through the API, allowed or refused.

Who (the token's subject, role and their identifier in it), whose data (the person's internal id, or
the treatment place), which resource and fields, the stated purpose, when, and the outcome with its
HTTP status and reason. The agency lists it (`GET /v1/audit`). A read that cannot be audited is not
served.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sinks.tables import read_audit
from sinks.times import utc


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One read, as it is written."""

    at: datetime
    subject: str
    role: str | None
    actor: str | None
    person_key: str | None
    resource: str
    purpose: str | None
    fields: tuple[str, ...]
    status: int
    reason: str | None = None
    place: str | None = (
        None  # a treatment place read, as asked for (its SOR id or reference number)
    )

    @property
    def outcome(self) -> str:
        return "allowed" if self.status < 400 else "refused"


def anonymous_refusal(at: datetime, resource: str, status: int, reason: str) -> AuditEntry:
    """An entry for a request refused before its caller was known (no valid token, not understood)."""
    return AuditEntry(
        at=at,
        subject="-",
        role=None,
        actor=None,
        person_key=None,
        resource=resource,
        purpose=None,
        fields=(),
        status=status,
        reason=reason,
    )


def _text(value: str | None, length: int) -> str | None:
    """A caller's text as the log keeps it: cut to its column, without NUL (PostgreSQL's text has none)."""
    return None if value is None else value.replace("\x00", "")[:length]


async def record(conn: AsyncConnection, entry: AuditEntry) -> None:
    """Write one entry (the caller commits)."""
    await conn.execute(
        insert(read_audit).values(
            at=entry.at,
            subject=_text(entry.subject, 200),
            role=entry.role,
            actor=_text(entry.actor, 64),
            person_key=entry.person_key,
            place=_text(entry.place, 40),
            resource=entry.resource,
            purpose=_text(entry.purpose, 32),
            fields=orjson.dumps(sorted(entry.fields)).decode(),
            outcome=entry.outcome,
            status=entry.status,
            reason=entry.reason,
        )
    )


async def entries(
    conn: AsyncConnection,
    *,
    person_key: str | None = None,
    limit: int = 100,
) -> list[dict[str, object]]:
    """The newest entries first, of one person or all."""
    a = read_audit
    query = select(a).order_by(a.c.id.desc()).limit(limit)
    if person_key is not None:
        query = query.where(a.c.person_key == person_key)
    rows = (await conn.execute(query)).mappings().all()
    return [
        {
            **{k: v for k, v in row.items() if k not in ("fields", "at")},
            "at": utc(row["at"]).isoformat(),
            "fields": orjson.loads(row["fields"]),
        }
        for row in rows
    ]
