"""A quote's id never reads as a person number, so a pharmacy's quote is never refused for it."""

from __future__ import annotations

from pydantic import TypeAdapter

from api.quotes import new_quote_id
from rules.identifiers import contains_person_number
from schemas.common import MessageId

_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


def test_no_quote_id_holds_a_person_number_and_each_is_a_valid_message_id() -> None:
    """As 24 hex digits, about one id in 1,250 held ten digits that read as a CPR number, and the
    schema answered the pharmacy's quote with a 422 (`report_id: must not contain a person number`);
    20,000 such ids held about 16."""
    ids = [new_quote_id() for _ in range(20_000)]
    assert [i for i in ids if contains_person_number(i)] == []
    assert len(set(ids)) == len(ids)
    for i in ids[:100]:
        assert _MESSAGE_ID.validate_python(i) == i
