"""The day of payment a dispensing report is checked and booked by (`schemas.dispensing`): the Danish local
date of `paid_or_invoiced_at`, whatever offset the time is sent with. The schema skips the time zone
for a birth a day or more before the payment's own date and caches the day on the report; both are
checked here against the date worked out directly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.dispensing import DispensingReport
from streams.decode import reason_of
from tests.messages import report

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
FUTURE = (
    "schema.value_error: person: birth_date lies after the day of payment: a date in the future"
)


@settings(max_examples=400, deadline=None)
@given(
    paid=st.datetimes(min_value=datetime(2000, 1, 3), max_value=datetime(2099, 12, 29)),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    born_days=st.integers(min_value=-3, max_value=3),
)
def test_born_after_the_danish_date_of_payment_whatever_the_offset(
    paid: datetime, offset_minutes: int, born_days: int
) -> None:
    """A fictitious number's birth date within three days of a payment sent with any offset: refused
    exactly when it lies after the payment's date in Copenhagen; accepted, the report's `paid_day` is
    that date and `paid_at_utc` the time in UTC."""
    at = paid.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    born = at.date() + timedelta(days=born_days)
    data = report("r1", 100, paid_at=at.isoformat())
    data["person"] = {"key": "4208000001", "birth_date": born.isoformat()}
    raw = orjson.dumps(data)
    day = at.astimezone(COPENHAGEN).date()
    if born > day:
        with pytest.raises(ValidationError) as caught:
            DispensingReport.model_validate_json(raw)
        assert reason_of(caught.value, DispensingReport) == FUTURE
    else:
        m = DispensingReport.model_validate_json(raw)
        assert m.paid_day == day
        assert m.paid_at_utc == at and m.paid_at_utc.tzinfo is UTC


def test_a_copy_with_another_payment_time_has_its_own_day() -> None:
    """The day and UTC time are worked out once per report; a copy that changes the payment time
    (`model_copy(update=…)`) works them out again, from its own time."""
    m = DispensingReport.model_validate_json(orjson.dumps(report("r1", 100)))
    assert (m.paid_day, m.paid_at_utc) == (date(2024, 4, 2), datetime(2024, 4, 2, 9, tzinfo=UTC))
    late = datetime(2024, 6, 1, 23, 30, tzinfo=UTC)  # 2 June in Copenhagen
    copied = m.model_copy(update={"paid_or_invoiced_at": late})
    assert (copied.paid_day, copied.paid_at_utc) == (date(2024, 6, 2), late)
    assert m.model_copy().paid_day == date(2024, 4, 2)
