"""The treatment-place register's read side and the demo's registrations, through the real broker and
worker: the clinics `reghub up --demo` registers become places the API lists with their history, and the
dashboard's data counts them by state and category. Every place read needs a token, shows what the
caller's role may see (README, "Reading a treatment place") and is audited."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from api.tokens import TokenKeys, mint
from reghub.demo_places import registrations
from reghub.settings import Settings
from sinks.register import Register
from sinks.tables import read_audit
from streams.topics import CHANGES, REGISTRATIONS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.sor_ids import sor_id
from tests.test_treatment_places import PHYSIOS, _run, company_registered, information, unit_added

pytestmark = [pytest.mark.broker, pytest.mark.database]

SECRET = b"places-read-test-secret-0123456789abcdef"
KEYS = TokenKeys(audience="reghub-api", issuer="reghub-dev", secret=SECRET)


def token(role: str, **claims: str) -> dict[str, str]:
    signed = mint(
        SECRET, role, f"{role}-user", audience=KEYS.audience, issuer=KEYS.issuer, **claims
    )  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {signed}"}


async def test_the_demo_clinics_are_registered_and_listed_by_the_api(
    settings: Settings, register: Register
) -> None:
    from api.app import create_api

    names = TopicNames(settings.topic_prefix)
    sent = registrations("t")
    await produce(
        settings.kafka_bootstrap, names(REGISTRATIONS), [(k, as_json(m)) for k, m in sent]
    )
    async with running_worker(settings, register):
        changes = await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda r: len(r) >= len(sent), timeout=60
        )
    assert not [c for c in changes if b'"rejected"' in c.value], [c.value for c in changes]
    api = create_api(settings.database_url, tokens=KEYS)
    stps = token("stps")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        monitor = (await c.get("/monitor")).json()
        first = sent[1][1]["sor_id"]  # the first clinic's unit
        place = await c.get(f"/v1/places/{first}", headers=stps)
        by_reference = await c.get(f"/v1/places/BST-{first}", headers=stps)
        missing = await c.get("/v1/places/nowhere", headers=stps)
    # six clinics, every third deregistered in September
    assert monitor["places"] == {
        "by_state": {"DEREGISTERED": 2, "REGISTERED": 4},
        "by_category": {"2": 6},
    }
    assert place.status_code == 200
    shown = place.json()
    assert shown["view"] == "full"
    assert shown["state"]["state"] == "REGISTERED"
    assert shown["state"]["reference_number"] == f"BST-{first}"
    assert [v["category"] for v in shown["versions"]] == [2]
    assert {p["authorisation_id"] for p in shown["practitioners"]} == {"0C4MN", "1D5NP"}
    assert by_reference.json() == shown
    assert missing.status_code == 404 and "no treatment place" in missing.text


REGISTRANT = "registrant-1207"
HOME = "Birkevej 17"  # the registrant's own home: the company address of a no-CVR place
CLINIC = "Torvet 3"
FEE_EMAIL = "karen.fysio@example.dk"
TURNOVER = 31_415_900  # øre


async def test_a_private_registrants_place_is_read_only_with_a_token_and_cut_to_the_callers_role(
    settings: Settings, register: Register
) -> None:
    """Issue 29 point 6: a no-CVR registrant's name, home address, fee e-mail and turnover are personal
    data. Without a token: 401. STPS and the agency: everything. The registrant's own token: its own
    place in full; another registrant's or a public token: only what STPS publishes about a registered
    place. A place not registered is not shown to the public. Every read, refused or not, is audited."""
    from api.app import create_api

    place, unregistered = sor_id("6101"), sor_id("6102")
    form, key = "private_no_cvr", REGISTRANT
    messages = [
        company_registered(
            "pr-company",
            form,
            key,
            name="Karen Fysio Jensen",
            address={"street": HOME, "postal_code": "4000", "city": "Roskilde"},
        ),
        unit_added(
            "pr-unit",
            form,
            key,
            place,
            PHYSIOS[:1],
            name="Fysioterapi Torvet",
            unit_type="Fysioterapi",
            postal_address={"street": CLINIC, "postal_code": "4000", "city": "Roskilde"},
        ),
        information(
            "information_added",
            "pr-info",
            form,
            key,
            place,
            5,
            fee_email=FEE_EMAIL,
            turnover_year=2024,
            turnover=TURNOVER,
        ),
        unit_added("pr-unit-2", form, key, unregistered, PHYSIOS[:1], name="Fysioterapi Havnen"),
    ]
    changes = await _run(settings, register, messages)
    assert {c["outcome"] for c in changes} == {"applied"}, changes

    api = create_api(settings.database_url, tokens=KEYS)
    callers: dict[str, dict[str, str]] = {
        "none": {},
        "stps": token("stps"),
        "agency": token("agency"),
        "own": token("registrant", registrant_id=REGISTRANT),
        "other": token("registrant", registrant_id="registrant-9"),
        "public": token("public"),
        "pharmacy": token("pharmacy", pharmacy_number="12300"),
    }
    got: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        for who, headers in callers.items():
            got[who] = await c.get(f"/v1/places/{place}", headers=headers)
        by_reference = await c.get(f"/v1/places/BST-{place}", headers=callers["public"])
        hidden = await c.get(f"/v1/places/{unregistered}", headers=callers["public"])
        own_unregistered = await c.get(f"/v1/places/{unregistered}", headers=callers["own"])

    private = ("Karen Fysio Jensen", HOME, FEE_EMAIL, str(TURNOVER), REGISTRANT)
    assert got["none"].status_code == 401
    assert got["none"].headers["WWW-Authenticate"] == "Bearer"
    assert not [p for p in private if p in got["none"].text]
    for who in ("stps", "agency", "own"):
        full: dict[str, Any] = got[who].json()
        assert got[who].status_code == 200 and full["view"] == "full", who
        assert full["company"][0]["street"] == HOME and full["company"][0]["name"] == private[0]
        assert full["versions"][0]["fee_email"] == FEE_EMAIL
        assert full["versions"][0]["turnover"] == TURNOVER
    for who in ("other", "public", "pharmacy"):
        public = got[who].json()
        assert got[who].status_code == 200, who
        assert public == {
            "view": "public",
            "sor_id": place,
            "reference_number": f"BST-{place}",
            "state": "REGISTERED",
            "since": public["since"],
            "category": 5,
            "name": "Fysioterapi Torvet",
            "unit_type": "Fysioterapi",
            "address": {"street": CLINIC, "postal_code": "4000", "city": "Roskilde"},
            "company": None,
        }, who
        assert not [p for p in private if p in got[who].text], who
    assert by_reference.json() == got["public"].json()
    assert hidden.status_code == 404 and "Havnen" not in hidden.text
    assert own_unregistered.status_code == 200 and own_unregistered.json()["view"] == "full"

    async with register.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(read_audit).where(read_audit.c.resource == "place").order_by(read_audit.c.id)
            )
        ).all()
    # the read without a token is counted, and audited per minute with the others (`api.gate`)
    assert [(r.role, r.place, r.status) for r in rows] == [
        ("stps", place, 200),
        ("agency", place, 200),
        ("registrant", place, 200),
        ("registrant", place, 200),
        ("public", place, 200),
        ("pharmacy", place, 200),
        ("public", place, 200),
        ("public", unregistered, 404),
        ("registrant", unregistered, 200),
    ]
    assert rows[2].actor == REGISTRANT and rows[3].actor == "registrant-9"
    assert "versions" in orjson.loads(rows[0].fields)
    assert orjson.loads(rows[4].fields) == sorted(k for k in got["public"].json() if k != "view")
    assert rows[7].outcome == "refused"
