"""Builds the hub's outputs: dead letters, the change feed and alerts; monitoring carries pseudonyms only.

Used by the batch driver and the handlers while a batch is handled; builds values, does no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

from rules.deadlines import human_duration, seconds_late
from rules.identifiers import mask_person_numbers
from rules.obligations import Obligation
from rules.privacy import pseudonym
from schemas.monitoring import Alert, Change
from sinks.rows import Outgoing
from streams.decode import Decoded, Rejected
from streams.topics import ALERTS, CHANGES, DEAD_LETTER, TopicNames, TopicSpec


@dataclass(frozen=True, slots=True)
class Outputs:
    """Output builder for one batch: topic names, the pseudonym key, and the batch's clock."""

    names: TopicNames
    pseudonym_secret: bytes
    now: datetime
    dead_letter_max_bytes: int = 262_144

    def emit(self, spec: TopicSpec, key: bytes, value: bytes) -> Outgoing:
        return Outgoing(self.names(spec), key, value)

    def pseudonym(self, person_key: str | None) -> str:
        return pseudonym(person_key, self.pseudonym_secret) if person_key else "unknown"

    def dead_letter(self, r: Rejected) -> tuple[Outgoing, Outgoing]:
        """The dead letter (original key and bytes; reason and source position in headers) and its
        change-feed entry. Bytes beyond `dead_letter_max_bytes` are cut off; the headers then give the
        original's length and SHA-256, so the sender can still match it and the dead letter never
        outgrows the broker's record limit that the original stayed under."""
        s = r.source
        value = s.value or b""
        headers: tuple[tuple[str, bytes], ...] = (
            ("reghub-reason", r.reason.encode()),
            ("reghub-source-topic", s.topic.encode()),
            ("reghub-source-partition", str(s.partition).encode()),
            ("reghub-source-offset", str(s.offset).encode()),
            ("reghub-message-id", (r.message_id or "").encode()),
        )
        if len(value) > self.dead_letter_max_bytes:
            headers += (
                ("reghub-original-bytes", str(len(value)).encode()),
                ("reghub-original-sha256", hashlib.sha256(value).hexdigest().encode()),
            )
            value = value[: self.dead_letter_max_bytes]
        dead = Outgoing(self.names(DEAD_LETTER), s.key, value, headers)
        person = r.person_key or (s.key.decode("utf-8", "replace") if s.key else None)
        change = Change(
            source_topic=s.topic,
            message_id=r.message_id or f"offset:{s.partition}:{s.offset}",
            outcome="rejected",
            reason=r.reason,
            person=self.pseudonym(person),
            at=self.now,
        )
        return dead, self.emit(CHANGES, change.person.encode(), change.model_dump_json().encode())

    def change(self, d: Decoded, outcome: str, reason: str | None = None) -> Outgoing:
        """What became of one message, for monitoring."""
        change = Change(
            source_topic=d.source.topic,
            message_id=d.message_id,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            person=self.pseudonym(d.person_key),
            at=self.now,
        )
        return self.emit(CHANGES, change.person.encode(), change.model_dump_json().encode())

    def late_report(self, d: Decoded, due: datetime, reporter: str, rule: str) -> Outgoing | None:
        """An alert if the message reached the broker after its legal deadline (record timestamp)."""
        if d.source.timestamp_ms / 1000 <= due.timestamp():
            return None
        received = datetime.fromtimestamp(d.source.timestamp_ms / 1000, UTC)
        late = seconds_late(due, received)
        if not late:
            return None
        alert = Alert(
            kind="late_report",
            source_topic=d.source.topic,
            message_id=d.message_id,
            reporter=reporter,
            person=self.pseudonym(d.person_key),
            detail=f"received {human_duration(late)} after its deadline {due.isoformat()} ({rule})",
            at=self.now,
        )
        return self.emit(ALERTS, reporter.encode(), alert.model_dump_json().encode())

    def purchase_after_death(self, d: Decoded, reporter: str, died_on: date, day: date) -> Outgoing:
        """A purchase paid after the person's registered death: registered, and flagged."""
        alert = Alert(
            kind="purchase_after_death",
            source_topic=d.source.topic,
            message_id=d.message_id,
            reporter=reporter,
            person=self.pseudonym(d.person_key),
            detail=f"paid {(day - died_on).days} days after the registered date of death",
            at=self.now,
        )
        return self.emit(ALERTS, reporter.encode(), alert.model_dump_json().encode())

    def renumbering_held(self, d: Decoded, reporter: str, why: str) -> Outgoing:
        """A pharmacy's renumbering held for review (`rules.identity.hold`): the old number's person by
        pseudonym only; the numbers themselves stay in the register's input log."""
        alert = Alert(
            kind="renumbering_held",
            source_topic=d.source.topic,
            message_id=mask_person_numbers(d.message_id, within_runs=True),
            reporter=reporter,
            person=self.pseudonym(d.person_key),
            detail=(
                f"{why}: nothing merged, reports under both numbers are decided on their own until "
                "the CPR register confirms the change or the agency decides it"
            ),
            at=self.now,
        )
        return self.emit(ALERTS, reporter.encode(), alert.model_dump_json().encode())

    def obligation_alert(self, o: Obligation, kind: str, note: str | None = None) -> Outgoing:
        """`report_missing`: an obligation passed its due time unmet; `report_resolved`: its report came
        after all. Keyed by the reporter; the person by pseudonym only, and a CPR-shaped dispensing id
        inside the obligation's id masked (a pharmacy chooses it freely, spec § 9)."""
        due = o.due_at.isoformat() if o.due_at else "unknown"
        late = f"; {human_duration(o.seconds_late)} late" if o.seconds_late is not None else ""
        alert = Alert(
            kind=kind,  # type: ignore[arg-type]
            source_topic=o.kind,
            message_id=mask_person_numbers(o.obligation_id, within_runs=True),
            reporter=o.reporter,
            person=self.pseudonym(o.person_key),
            detail=f"due {due} ({o.legal_basis}){late}" + (f"; {note}" if note else ""),
            at=self.now,
        )
        return self.emit(ALERTS, o.reporter.encode(), alert.model_dump_json().encode())

    def incident(self, kind: str, topic: str, detail: str) -> Outgoing:
        """An alert about the input log itself (keyed by topic): no person, no message."""
        alert = Alert(kind=kind, source_topic=topic, detail=detail, at=self.now)  # type: ignore[arg-type]
        return self.emit(ALERTS, topic.encode(), alert.model_dump_json().encode())

    def dead_letter_ratio(self, topic: str, partition: int, bad: int, total: int) -> Outgoing:
        alert = Alert(
            kind="dead_letter_ratio",
            source_topic=topic,
            detail=f"partition {partition}: {bad} of {total} messages in one batch rejected",
            at=self.now,
        )
        return self.emit(ALERTS, f"{topic}/{partition}".encode(), alert.model_dump_json().encode())
