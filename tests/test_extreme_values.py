"""Impossible values are refused at the door, on every input topic and route, the same way (issue:
bounded under hostile values): a NUL in any text and a time from year 1, 9999 or before 2000 give a
`schema.*` reason on the topics and a 4xx on the API — never an `internal_error`, a `register.*`
reason found by bisecting a batch, or a NUL registered and carried into a decision.

Valid documents come from the hostile campaign's strategies (`bench.hostile.VALID`, one per input
topic); one text value in each is broken, chosen by hypothesis. Decoding is the worker's own
(`streams.decode.decode`), with the record's broker time set to now.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.hostile import VALID, record_key
from reghub.settings import Settings
from streams.decode import Decoded, Source, decode
from streams.topics import INPUTS, TopicSpec
from tests.messages import PERSON

MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT")
EXTREME_MOMENTS = (
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "1999-12-31T12:00:00+01:00",
    "2099-12-31T12:00:00+01:00",  # far more than a year after the record reached the broker
)


def _texts(doc: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every text value in `doc`, with where it is."""
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in _texts(v, (*path, k))]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in _texts(v, (*path, i))]
    return [(path, doc)] if isinstance(doc, str) else []


def _put(doc: Any, path: tuple[str | int, ...], value: str) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


@pytest.mark.parametrize("spec", INPUTS, ids=lambda s: s.base)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_nul_or_an_impossible_time_is_a_schema_reason_on_every_topic(
    spec: TopicSpec, data: st.DataObject
) -> None:
    doc = data.draw(VALID[spec])
    key = record_key(spec, doc)
    now_ms = int(time.time() * 1000)
    assert isinstance(
        decode(Source(spec.base, 0, 0, key, orjson.dumps(doc), now_ms), spec), Decoded
    )
    path, value = data.draw(st.sampled_from(_texts(doc)))
    if MOMENT.match(value) and data.draw(st.booleans()):
        broken = data.draw(st.sampled_from(EXTREME_MOMENTS))
    else:
        at = data.draw(st.integers(0, len(value)))
        broken = value[:at] + "\x00" + value[at:]
    _put(doc, path, broken)
    got = decode(Source(spec.base, 0, 0, key, orjson.dumps(doc), now_ms), spec)
    assert not isinstance(got, Decoded), (path, broken)
    assert got.reason.startswith("schema."), (path, got.reason)
    assert "\x00" not in got.reason and PERSON not in got.reason


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_nul_or_an_impossible_time_is_a_4xx_on_every_route(settings: Settings) -> None:
    from api.app import create_api
    from tests.test_read_api import KEYS, token

    api = create_api(settings.database_url, tokens=KEYS)
    pharmacy = {"Authorization": f"Bearer {token('pharmacy', pharmacy_number='12300')}"}
    stps = {"Authorization": f"Bearer {token('stps')}"}
    agency = {"Authorization": f"Bearer {token('agency')}"}
    line = {"drug_id": "028100", "reimbursement_price": 10_000, "actual_price": 10_000}
    quotes = [
        {"person_key": PERSON, "paid_at": moment, "lines": [line]} for moment in EXTREME_MOMENTS
    ] + [
        {"person_key": PERSON, "lines": [{**line, "drug_id": "028\x00100"}]},
        {"person_key": "05056\x0001234", "lines": [line]},
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        codes = [(await c.post("/v1/quotes", json=q, headers=pharmacy)).status_code for q in quotes]
        codes += [
            (await c.get("/v1/persons/05056%0001234/status", headers=pharmacy)).status_code,
            (
                await c.get(
                    f"/v1/persons/{PERSON}/status",
                    params={"purpose": "dis\x00pensing"},
                    headers=pharmacy,
                )
            ).status_code,
            (await c.get("/v1/places/1234%00561000016003", headers=stps)).status_code,
            (
                await c.get(
                    "/v1/audit",
                    params={"purpose": "operation", "person": "0505\x00601234"},
                    headers=agency,
                )
            ).status_code,
        ]
    assert all(400 <= code < 500 for code in codes), codes
