"""Times as the register stores them: in UTC. SQLite keeps no offset, so a time read back without one is
UTC, and a time written is converted to UTC first."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)
