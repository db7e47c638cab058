"""Building blocks shared by every wire schema: strict base model, person reference, identifier types,
and the two types every input topic uses for what no register should keep:

- `PlainText`: free text without control characters (PostgreSQL's text holds no NUL; SQLite would keep
  it, and it would reach the decisions);
- `EventTime`: a time with its offset, from `WINDOW.earliest` (1 January 2000) to `WINDOW.ahead` (366
  days) after the record reached the broker (the decoder passes that time; without one, before 2100).
  A year-1 or year-9999 time is no event of the register's, and near the calendar's ends it has no
  UTC time at all. The window follows the record, not the hub's clock, so a message read again (a
  rebuild) gets the same answer. Settings may move it (`set_window`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Generic, Self, TypeVar, overload
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rules.identifiers import (
    P_NUMBER_OLD_WEIGHTS_UNTIL,
    PHARMACY_NUMBER_PATTERN,
    check_born_by,
    contains_person_number,
    is_p_number,
    normalise_person_key,
    parse_person_key,
    person_birth_date,
)

T = TypeVar("T")


class once(Generic[T]):
    """A value a model works out from its fields the first time it is asked for, then keeps in the
    instance's `__dict__` (a non-data descriptor: later reads never call it). Not a field: neither on
    the wire nor in the JSON Schema. `functools.cached_property` without its lock, which on Python
    3.11 costs some 3 µs per first read: more than the values it keeps here.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T | once[T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value


class WireModel(BaseModel):
    """Strict, closed and immutable: an unknown field or a wrongly typed value is a rejection, not a guess."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, ignored_types=(once,))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, without the values `once` worked out from the fields it changes."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            for cls in type(self).__mro__:
                for name, attr in vars(cls).items():
                    if isinstance(attr, once):
                        copied.__dict__.pop(name, None)
        return copied


def _p_number(value: str) -> str:
    if not is_p_number(value):
        raise ValueError(
            "P-number must be ten digits passing modulus 11 with the weights of its series"
        )
    return value


PharmacyNumber = Annotated[
    str,
    Field(
        pattern=PHARMACY_NUMBER_PATTERN,
        description="AAAnn: five digits (nn 00 pharmacy, 01-09 branch, 10-99 outlet)",
    ),
]
PNumber = Annotated[
    str,
    Field(
        description="the site's P-number: ten digits, modulus 11 with the weights 4,3,2,7,6,5,4,3,2 "
        f"(and 1 on the check digit); up to and including {P_NUMBER_OLD_WEIGHTS_UNTIL} the weights "
        "1,5,6,7,3,6,4,8,9 pass too"
    ),
    AfterValidator(_p_number),
]


def _no_person_number(value: str) -> str:
    if contains_person_number(value):
        raise ValueError("must not contain a person number")
    return value


MessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="chosen by the sender; must not contain a person number (ten digits, or "
        "DDMMYY-SSSS, that read as a CPR number)",
    ),
    AfterValidator(_no_person_number),
]
"""An id a partner chooses for its message (report, message, agreement, grant, decision). It travels on
shared topics and in dead-letter headers, so one that could be a CPR number is refused."""

PharmacySystemId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
]
"""A dispensing or ordination id (order § 3 stk. 1 nr. 2, 3): the number the pharmacy's or the
prescription system gave it, often ten digits. Not checked for person numbers: a real one may read like a
CPR number (`2106149173`), and refusing it would leave a legally required report unregistered."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain a control character")
    return value


PlainText = Annotated[str, AfterValidator(_no_control_characters)]
"""Free text a partner sends: one line, no control character (NUL included)."""


@dataclass(frozen=True, slots=True)
class Window:
    """The plausible times of an event: not before `earliest`, not later than `ahead` after the record
    reached the broker (or than `latest` when that time is not known)."""

    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    ahead: timedelta = timedelta(days=366)
    latest: datetime = datetime(2100, 1, 1, tzinfo=UTC)


WINDOW = Window()
RECEIVED_AT = "received_at"
"""The validation context's key for the time the record reached the broker (`streams.decode`)."""


def set_window(earliest_year: int, ahead_days: int) -> None:
    """Move the plausible window (settings `REGHUB_EARLIEST_EVENT_YEAR`, `REGHUB_EVENT_AHEAD_DAYS`)."""
    global WINDOW
    WINDOW = Window(datetime(earliest_year, 1, 1, tzinfo=UTC), timedelta(days=ahead_days))


def _plausible_time(value: datetime, info: ValidationInfo) -> datetime:
    window = WINDOW
    received = (info.context or {}).get(RECEIVED_AT)
    latest = received + window.ahead if isinstance(received, datetime) else window.latest
    try:
        plausible = window.earliest <= value.astimezone(UTC) <= latest
    except (OverflowError, ValueError):  # so near the calendar's ends it has no UTC time
        plausible = False
    if not plausible:
        raise ValueError(
            f"must be a time from {window.earliest.year} to {window.ahead.days} days after the "
            "message reached the broker"
        )
    return value


EventTime = Annotated[AwareDatetime, AfterValidator(_plausible_time)]
"""When an event happened or a message was sent, with its offset, within `WINDOW`."""

DrugId = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_no_control_characters)]
ORE_LIMIT = 10**13
"""A hundred billion kroner: far above any amount the register can meet, far below a 64-bit column."""
Ore = Annotated[int, Field(ge=-ORE_LIMIT, le=ORE_LIMIT, description="amount in øre (1/100 DKK)")]


class PersonRef(WireModel):
    """Who the message is about: a CPR number or a substitute id, with the birth date for a fictitious one.

    Error messages never repeat the key, so a rejection can be shown to the sender's operators.
    """

    key: Annotated[
        str,
        Field(
            description="CPR number DDMMYYSSSS (hyphen allowed), a system-assigned number xxMMYYnnnn "
            "(xx 38 or 39) or a fictitious number xLLLnnnnnn (x 4 or 5, LLL a country code)"
        ),
    ]
    birth_date: date | None = Field(
        default=None,
        description="with a fictitious number only, and required with one; a CPR number and a "
        "system-assigned number carry their own",
    )

    @model_validator(mode="after")
    def _check_key(self) -> PersonRef:
        parsed = parse_person_key(self.key)
        person_birth_date(parsed, self.birth_date)
        if parsed.value != self.key:
            object.__setattr__(self, "key", normalise_person_key(self.key))
        return self

    def born(self) -> date:
        """The person's birth date: the fictitious number's supplied one, or the one the key carries
        (`rules.identifiers.person_birth_date`)."""
        return person_birth_date(parse_person_key(self.key), self.birth_date)

    def check_born_by(self, day: date, event: str = "the day of payment") -> None:
        """Refuse a person born after `day`, the day of the event the message reports (a CPR number
        from the future); see `rules.identifiers.check_born_by`.

        Raises:
            ValueError: born after `day`; the message quotes neither key nor date.
        """
        parsed = parse_person_key(self.key)  # once: `born()` would parse it again
        check_born_by(parsed, person_birth_date(parsed, self.birth_date), day, event)


_COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def local_day(at: datetime) -> date | None:
    """The Danish local date of a time; None for a time so near the ends of the calendar that it has
    no local date."""
    try:
        return at.astimezone(_COPENHAGEN).date()
    except (OverflowError, ValueError):
        return None


def person_born_by(time_field: str, event: str) -> Any:
    """A validator of a message's `person`: refused when born after the Danish local date of the
    message's own `time_field` (a CPR number from the future). The field must come before `person`.

    The day is the message's, never the hub's clock, so a message gets the same answer whenever it is
    read (`rules.identifiers.check_born_by`).
    """

    def check(cls: type, person: PersonRef, info: ValidationInfo) -> PersonRef:
        at = info.data.get(time_field)
        day = local_day(at) if isinstance(at, datetime) else None
        if day is not None:
            person.check_born_by(day, event)
        return person

    return field_validator("person")(classmethod(check))  # type: ignore[arg-type]
