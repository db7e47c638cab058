"""Monitoring topics: the change feed and alerts. They never carry a CPR number, only a keyed pseudonym."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Change(BaseModel):
    """`ctr.changes.v1` (keyed by pseudonym): one processed input message and what became of it."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    source_topic: str
    message_id: str
    outcome: Literal["applied", "parked", "held", "duplicate", "rejected"]
    reason: str | None = None
    person: str
    at: datetime


class Alert(BaseModel):
    """`ctr.alerts.v1`: a deadline missed or at risk, a rejected-message ratio too high, or an input log
    that is not the one the register read (replaced, or deleted before it was read)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal[
        "late_report",
        "dead_letter_ratio",
        "log_replaced",
        "messages_deleted_unread",
        "purchase_after_death",
        "report_missing",
        "report_resolved",
        "obligations_at_risk",
        "obligations_at_risk_cleared",
        "renumbering_held",
        "output_undeliverable",
    ]
    source_topic: str
    message_id: str | None = None
    reporter: str | None = None
    person: str | None = None
    detail: str
    at: datetime


class ComplianceSummary(BaseModel):
    """`ctr.compliance.v1`: one reporter's reporting obligations of one day (Europe/Copenhagen), once
    the day is closed."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    day: date
    reporter: str
    on_time: int
    late: int
    missing: int
    resolved: int
    worst_seconds_late: int
    at: datetime
