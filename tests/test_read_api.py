"""The read API's § 5 access control, its audit log and its quotes, on a register filled through the
real broker and worker: every role against every endpoint and field, with the custody and treatment
relation cases at their edges (a child turning 15 today, a relation that ended yesterday, a place that
deregistered), tokens of every bad kind, and a quote that must equal the decision the stream then gives.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from api.tokens import TokenKeys, mint
from reghub.demo_places import registrations
from reghub.settings import Settings
from rules.deadlines import COPENHAGEN
from rules.privacy import pseudonym
from sinks import tables
from sinks.register import Register, make_engine
from sinks.tables import read_audit
from streams.topics import (
    DECISIONS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PERSON_EVENTS,
    REGISTRATIONS,
    TREATMENT_RELATIONS,
    TopicNames,
)
from tests.hub import Hub
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import (
    NEW_NUMBER,
    NOW,
    PERSON,
    grant,
    municipal,
    renumbering,
    report,
    treatment_relation,
)
from tests.sor_ids import sor_id

pytestmark = [pytest.mark.broker, pytest.mark.database]

SECRET = b"test-api-token-secret-0123456789abcdef"
KEYS = TokenKeys(audience="reghub-api", issuer="reghub-dev", secret=SECRET)
TODAY = date(2024, 6, 15)
CLOCK_AT = datetime(2024, 6, 15, 10, 0, tzinfo=COPENHAGEN)

ENDED_YESTERDAY = "0606601234"  # a patient whose relation ended 14 June
AT_CLOSED_PLACE = "0707601234"  # a patient at a place that deregistered
PARENT = "0101701234"
CHILD = "0303124321"  # born 3 March 2012: 12
TURNS_15_TODAY = "1506094321"  # born 15 June 2009
CUSTODY_ENDED = "0404144321"  # born 4 April 2014; custody ended yesterday
STRANGER_CHILD = "0505154321"  # born 5 May 2015; no custody
DOCTOR = "0C4MN"  # an active practitioner of the demo clinics
OTHER_DOCTOR = "1D5NP"  # also a practitioner there, but with no relation to anyone
REGISTERED_PLACE = sor_id("7000")
DEREGISTERED_PLACE = sor_id("7002")


def token(role: str, **claims: str) -> str:
    return mint(SECRET, role, f"{role}-user", audience=KEYS.audience, issuer=KEYS.issuer, **claims)


PRINCIPALS: dict[str, dict[str, str]] = {
    "pharmacy": {"pharmacy_number": "12300"},
    "doctor": {"authorisation_id": DOCTOR},
    "other_doctor": {"authorisation_id": OTHER_DOCTOR},
    "citizen_self": {"cpr": PERSON},
    "citizen_renumbered": {"cpr": NEW_NUMBER},
    "parent": {"cpr": PARENT},
    "agency": {},
    "operator": {},
    "municipality": {},
    "monitoring": {},
}


def _role(name: str) -> str:
    citizens = ("citizen_self", "citizen_renumbered", "parent")
    return "citizen" if name in citizens else {"other_doctor": "doctor"}.get(name, name)


def custody(message_id: str, child: str, valid_from: str, valid_to: str | None = None) -> dict:
    message: dict[str, Any] = {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": {"source": "cpr_register"},
        "event": "custody",
        "person": {"key": child},
        "parent": {"key": PARENT},
        "valid_from": valid_from,
    }
    if valid_to is not None:
        message["valid_to"] = valid_to
    return message


async def _fill(settings: Settings, register: Register) -> None:
    """The register as the tests read it, through the broker and the worker."""
    names = TopicNames(settings.topic_prefix)
    sales = [
        report("r-prev", 150_000, paid_at="2023-05-10T10:00:00+02:00"),
        report("r-cur1", 80_000, paid_at="2024-06-01T10:00:00+02:00"),
        report("r-cur2", 40_000, paid_at="2024-06-10T10:00:00+02:00", granted_subsidy=9_000),
    ]
    relations = [
        treatment_relation(
            "tr-1", "2024-01-01", authorisation_id=DOCTOR, sor_id=REGISTERED_PLACE
        ),
        treatment_relation(
            "tr-2",
            "2024-01-01",
            "2024-06-14",
            person=ENDED_YESTERDAY,
            authorisation_id=DOCTOR,
            sor_id=REGISTERED_PLACE,
        ),
        treatment_relation(
            "tr-3", "2024-01-01", person=AT_CLOSED_PLACE, authorisation_id=DOCTOR,
            sor_id=DEREGISTERED_PLACE,
        ),
    ]  # fmt: skip
    custodies = [
        custody("c-1", CHILD, "2012-03-03"),
        custody("c-2", TURNS_15_TODAY, "2009-06-15"),
        custody("c-3", CUSTODY_ENDED, "2014-04-04", "2024-06-14"),
    ]
    batches = [
        (REGISTRATIONS, registrations("ra", clinics=3)),
        (INDIVIDUAL_GRANTS, [(PERSON.encode(), grant("g-1", "2024-01-01", "2024-12-31"))]),
        (MUNICIPAL_GRANTS, [(PERSON.encode(), municipal("m-1", 101, "50.00"))]),
        (DISPENSINGS, [(PERSON.encode(), s) for s in sales]),
        (TREATMENT_RELATIONS, [(m["person"]["key"].encode(), m) for m in relations]),
        (PERSON_EVENTS, [(m["person"]["key"].encode(), m) for m in custodies]),
        # the person's new number: a citizen logging in with it is still themselves
        (PERSON_EVENTS, [(PERSON.encode(), renumbering("n-1"))]),
    ]
    for spec, messages in batches:
        await produce(settings.kafka_bootstrap, names(spec), [(k, as_json(v)) for k, v in messages])
    want = {
        tables.persons: 2,  # the person and their new number
        tables.purchases: 3,
        tables.treatment_relations: 3,
        tables.custody: 3,
        tables.grants: 1,
        tables.supplements: 1,
    }
    async with running_worker(settings, register):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with register.engine.connect() as conn:
                counts = {
                    t: (await conn.execute(select(func.count()).select_from(t))).scalar()
                    for t in want
                }
                places = (
                    await conn.execute(
                        select(func.count()).where(
                            tables_places_state().c.state.in_(["REGISTERED", "DEREGISTERED"])
                        )
                    )
                ).scalar()
            if counts == want and places == 3:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail(f"the register did not fill: {counts}, places {places}")


def tables_places_state() -> Any:
    from sinks import places_tables

    return places_tables.states


def _client(settings: Settings, at: datetime = CLOCK_AT) -> httpx.AsyncClient:
    from api.app import create_api

    api = create_api(settings.database_url, tokens=KEYS, clock=lambda: at)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t")


async def _known_person(database_url: str) -> None:
    """PERSON in the register with one purchase (through the pipeline, no broker): a person the
    register does not know is answered 404."""
    hub = Hub(database_url)
    await hub.pipeline.start()
    try:
        await hub.send((DISPENSINGS, report("r-known", 10_000)))
    finally:
        await hub.register.close()


async def _last_audit(register: Register) -> Any:
    async with register.engine.connect() as conn:
        return (
            await conn.execute(select(read_audit).order_by(read_audit.c.id.desc()).limit(1))
        ).one()


# § 3 field by field, and what § 5 stk. 2 and 4 give doctors and citizens (nr. 7, 10, stk. 2 nr. 1, saldo)
ALL = frozenset(
    {
        "current_period",
        "previous_period",
        "saldo",
        "under18",
        "individual_grants",
        "deferral_agreement",
        "health_supplement",
        "rights_based",
        "balancing_amounts",
    }
)
SUBSET = frozenset(
    {"current_period", "previous_period", "saldo", "individual_grants", "balancing_amounts"}
)


def _status_cases() -> list[tuple[str, str, str | None, frozenset[str] | int]]:
    """(principal, person, purpose, the fields allowed or the refusal's status)."""
    cases: list[tuple[str, str, str | None, frozenset[str] | int]] = []
    for purpose in ("dispensing", "information", "deferral_assessment"):
        cases.append(("pharmacy", PERSON, purpose, ALL))
    cases += [
        ("pharmacy", PERSON, None, 403),
        ("pharmacy", PERSON, "marketing", 403),
        ("doctor", PERSON, None, SUBSET),
        ("doctor", ENDED_YESTERDAY, None, 403),
        ("doctor", AT_CLOSED_PLACE, None, 403),
        ("other_doctor", PERSON, None, 403),
        ("citizen_self", PERSON, None, SUBSET),
        ("citizen_self", CHILD, None, 403),
        ("citizen_self", NEW_NUMBER, None, SUBSET),
        ("citizen_renumbered", PERSON, None, SUBSET),
        ("pharmacy", NEW_NUMBER, "dispensing", ALL),
        ("parent", CHILD, None, SUBSET),
        ("parent", TURNS_15_TODAY, None, 403),
        ("parent", CUSTODY_ENDED, None, 403),
        ("parent", STRANGER_CHILD, None, 403),
        ("parent", PERSON, None, 403),
        ("parent", PARENT, None, SUBSET),
        ("agency", PERSON, "operation", ALL),
        ("agency", PERSON, "data_quality", ALL),
        ("operator", PERSON, "operation", ALL),
        ("agency", PERSON, None, 403),
        ("agency", PERSON, "marketing", 403),
        ("operator", PERSON, "dispensing", 403),
        ("municipality", PERSON, None, 403),
        ("monitoring", PERSON, None, 403),
    ]
    return cases


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_role_reads_exactly_what_section_5_gives_it_and_every_read_is_audited(
    settings: Settings, register: Register
) -> None:
    await _fill(settings, register)
    wrong: list[str] = []
    async with _client(settings) as client:
        for who, person, purpose, expected in _status_cases():
            headers = {"Authorization": f"Bearer {token(_role(who), **PRINCIPALS[who])}"}
            params = {"purpose": purpose} if purpose else {}
            got = await client.get(f"/v1/persons/{person}/status", params=params, headers=headers)
            entry = await _last_audit(register)
            label = f"{who} -> {person} status ({purpose})"
            if isinstance(expected, int):
                if got.status_code != expected or set(got.json()) != {"detail"}:
                    wrong.append(f"{label}: {got.status_code} {got.text[:200]}")
                if (entry.outcome, entry.status, entry.fields) != ("refused", expected, "[]"):
                    wrong.append(f"{label}: audited {entry.outcome} {entry.status} {entry.fields}")
            else:
                body = got.json()
                if got.status_code != 200 or set(body["status"]) != expected:
                    wrong.append(
                        f"{label}: {got.status_code} {sorted(body.get('status', {}))} {body.get('detail')}"
                    )
                if (entry.outcome, orjson.loads(entry.fields)) != ("allowed", sorted(expected)):
                    wrong.append(f"{label}: audited {entry.outcome} {entry.fields}")
            internal = PERSON if person == NEW_NUMBER else person
            if (
                entry.role != _role(who)
                or entry.person_key != internal
                or entry.resource != "status"
            ):
                wrong.append(f"{label}: audit names {entry.role} {entry.resource}")
            if entry.actor is None or PERSON in entry.actor or PARENT in entry.actor:
                wrong.append(
                    f"{label}: the audit's actor is {entry.actor}, status {got.status_code}"
                )

        for who in PRINCIPALS:
            headers = {"Authorization": f"Bearer {token(_role(who), **PRINCIPALS[who])}"}
            for purpose in (None, "information", "dispensing", "operation", "marketing"):
                params = {"period": "current", **({"purpose": purpose} if purpose else {})}
                got = await client.get(
                    f"/v1/persons/{PERSON}/purchases", params=params, headers=headers
                )
                allowed = (who in ("agency", "operator") and purpose == "operation") or (
                    who == "pharmacy" and purpose == "information"
                )
                label = f"{who} -> purchases ({purpose})"
                entry = await _last_audit(register)
                if allowed:
                    body = got.json()
                    if got.status_code != 200 or set(body) != {
                        "as_of",
                        "fields",
                        "period",
                        "purchases",
                    }:
                        wrong.append(f"{label}: {got.status_code} {got.text[:200]}")
                    elif [p["report_id"] for p in body["purchases"]] != ["r-cur1", "r-cur2"]:
                        wrong.append(f"{label}: purchases {body['purchases']}")
                    if entry.outcome != "allowed":
                        wrong.append(f"{label}: audited {entry.outcome}")
                else:
                    if got.status_code != 403 or set(got.json()) != {"detail"}:
                        wrong.append(f"{label}: {got.status_code} {got.text[:200]}")
                    if (entry.outcome, entry.status) != ("refused", 403):
                        wrong.append(f"{label}: audited {entry.outcome}")

            quote = {
                "person_key": PERSON,
                "paid_at": "2024-06-15T10:00:00+02:00",
                "lines": [
                    {"drug_id": "028100", "reimbursement_price": 10_000, "actual_price": 10_000}
                ],
                **({} if who == "pharmacy" else {"pharmacy_number": "12300"}),
            }
            agency = who in ("agency", "operator")
            params = {"purpose": "data_quality"} if agency else {}
            got = await client.post("/v1/quotes", json=quote, headers=headers, params=params)
            allowed = who == "pharmacy" or agency
            if (got.status_code == 200) != allowed or (not allowed and got.status_code != 403):
                wrong.append(f"{who} -> quote: {got.status_code} {got.text[:200]}")
            entry = await _last_audit(register)
            if entry.resource != "quote" or entry.outcome != ("allowed" if allowed else "refused"):
                wrong.append(f"{who} -> quote: audited {entry.resource} {entry.outcome}")

            got = await client.get(
                "/v1/audit", params={"person": PERSON, "purpose": "operation"}, headers=headers
            )
            if (got.status_code == 200) != (who == "agency") or got.status_code not in (200, 403):
                wrong.append(f"{who} -> audit: {got.status_code}")

    assert wrong == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_status_fields_are_the_registers_figures_and_the_edges_move_with_the_day(
    settings: Settings, register: Register
) -> None:
    await _fill(settings, register)
    agency = {"Authorization": f"Bearer {token('agency')}"}
    parent = {"Authorization": f"Bearer {token('citizen', cpr=PARENT)}"}
    doctor = {"Authorization": f"Bearer {token('doctor', authorisation_id=DOCTOR)}"}
    async with _client(settings) as client:
        status = (
            await client.get(f"/v1/persons/{PERSON}/status", params=OPERATION, headers=agency)
        ).json()
        previous = await client.get(
            f"/v1/persons/{PERSON}/purchases",
            params={"period": "previous", **OPERATION},
            headers=agency,
        )
    shown = status["status"]
    assert shown["current_period"] == {"start": "2024-06-01", "end": "2025-05-31"}
    assert shown["previous_period"] == {"start": "2023-05-10", "end": "2024-05-09"}
    assert shown["saldo"] == {"ore": 120_000}
    assert shown["under18"] is False
    assert [g["grant_id"] for g in shown["individual_grants"]] == ["g-1"]
    assert [s["decision_id"] for s in shown["health_supplement"]] == ["m-1"]
    assert shown["rights_based"] == [] and shown["deferral_agreement"] == []
    [balance] = shown["balancing_amounts"]
    async with register.engine.connect() as conn:
        deviation = (
            await conn.execute(
                select(tables.purchases.c.deviation).where(tables.purchases.c.report_id == "r-cur2")
            )
        ).scalar()
    assert balance["remaining_ore"] == -deviation != 0
    assert [p["report_id"] for p in previous.json()["purchases"]] == ["r-prev"]

    # the day before: the teenager is 14, the ended relation and custody were still in force
    async with _client(settings, CLOCK_AT - timedelta(days=1)) as client:
        teen = await client.get(f"/v1/persons/{TURNS_15_TODAY}/status", headers=parent)
        ended = await client.get(f"/v1/persons/{CUSTODY_ENDED}/status", headers=parent)
        patient = await client.get(f"/v1/persons/{ENDED_YESTERDAY}/status", headers=doctor)
    assert [teen.status_code, ended.status_code, patient.status_code] == [200, 200, 200]
    assert set(teen.json()["status"]) == SUBSET


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_tokens_are_refused_with_401_and_audited(settings: Settings) -> None:
    from api.app import create_api

    now = datetime.now(UTC)
    good = {"role": "agency", "sub": "a", "aud": KEYS.audience, "iss": KEYS.issuer}
    times = {"iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp())}
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = jwt.encode({**good, **times}, key=None, algorithm="none")  # type: ignore[arg-type]
    bad = {
        "missing": None,
        "not bearer": f"Basic {token('agency')}",
        "forged": "Bearer " + jwt.encode({**good, **times}, b"another-secret" * 3, "HS256"),
        "expired": "Bearer "
        + jwt.encode(
            {**good, "iat": int(now.timestamp()) - 7200, "exp": int(now.timestamp()) - 3600},
            SECRET,
            "HS256",
        ),
        "wrong audience": "Bearer "
        + jwt.encode({**good, **times, "aud": "another-api"}, SECRET, "HS256"),
        "wrong issuer": "Bearer " + jwt.encode({**good, **times, "iss": "evil"}, SECRET, "HS256"),
        "alg none": f"Bearer {unsigned}",
        "no expiry": "Bearer " + jwt.encode({**good, "iat": times["iat"]}, SECRET, "HS256"),
        "unknown role": "Bearer " + jwt.encode({**good, **times, "role": "root"}, SECRET, "HS256"),
        "pharmacy without number": f"Bearer {token('pharmacy')}",
        "citizen with a bad cpr": f"Bearer {token('citizen', cpr='3213991234')}",
        "registrant without its company": f"Bearer {token('registrant')}",
        "registrant with a bad cvr": f"Bearer {token('registrant', cvr='20000237')}",
        "registrant id a cpr": f"Bearer {token('registrant', registrant_id='0505601234')}",
        "RS256 against a secret": "Bearer " + jwt.encode({**good, **times}, private, "RS256"),
        "garbage": "Bearer not.a.token",
    }
    await _known_person(settings.database_url)
    api = create_api(settings.database_url, tokens=KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        for name, header in bad.items():
            headers = {"Authorization": header} if header else {}
            got = await c.get(f"/v1/persons/{PERSON}/status", headers=headers)
            assert got.status_code == 401, name
            assert set(got.json()) == {"detail"} and PERSON not in got.text, name
        ok = await c.get(f"/v1/persons/{PERSON}/status", params=OPERATION, headers=_bearer())
        assert ok.status_code == 200
        metrics = (await c.get("/metrics")).text
    reader = Register(make_engine(settings.database_url))
    async with reader.engine.connect() as conn:
        rows = (await conn.execute(select(read_audit).order_by(read_audit.c.id))).all()
    # refusals without a valid token are audited per minute, not one row each (a flood would fill
    # the log): none yet, then one row per minute and resource that counts them
    assert [r.outcome for r in rows] == ["allowed"]
    assert f'reghub_api_unauthenticated_total{{resource="status"}} {float(len(bad))}' in metrics
    assert await api.state.refusals.flush(everything=True) >= 1
    async with reader.engine.connect() as conn:
        rows = (await conn.execute(select(read_audit).order_by(read_audit.c.id))).all()
    await reader.close()
    counted = [r for r in rows if r.status == 401]
    assert {(r.outcome, r.subject, r.person_key, r.resource) for r in counted} == {
        ("refused", "-", None, "status")
    }
    assert sum(int(r.reason.split()[0]) for r in counted) == len(bad)

    # a public key verifies RS256, and refuses an HS256 token "signed" with the public key itself
    public = TokenKeys(KEYS.audience, KEYS.issuer, public_key=public_pem.decode())
    api = create_api(settings.database_url, tokens=public)
    signed = jwt.encode({**good, **times}, private, "RS256")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        ok = await c.get(f"/v1/persons/{PERSON}/status", params=OPERATION, headers=_bearer(signed))
        confused = await c.get(
            f"/v1/persons/{PERSON}/status",
            params=OPERATION,
            headers=_bearer(_hs256_with(public_pem, good, times)),
        )
    assert (ok.status_code, confused.status_code) == (200, 401)


OPERATION = {"purpose": "operation"}
"""The agency's stated purpose (§ 5 stk. 3: drift og datakvalitet)."""


def _bearer(value: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {value or token('agency')}"}


def _hs256_with(key: bytes, claims: dict[str, Any], times: dict[str, int]) -> str:
    """An HS256 token whose HMAC key is the issuer's public key (the algorithm-confusion attack),
    built by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    body = part(orjson.dumps({**claims, **times}))
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_quote_equals_the_decision_the_stream_then_gives_and_writes_nothing(
    settings: Settings, register: Register
) -> None:
    await _fill(settings, register)
    paid_at = "2024-06-15T10:00:00+02:00"
    lines = [
        {"drug_id": "028100", "reimbursement_price": 30_000, "actual_price": 32_000},
        {"drug_id": "047200", "reimbursement_price": 12_345, "actual_price": 12_345},
        {
            "drug_id": "999999",
            "reimbursement_price": 0,
            "actual_price": 5_000,
            "generally_reimbursed": False,
        },
    ]
    async with register.engine.connect() as conn:
        before = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
    pharmacy = {"Authorization": f"Bearer {token('pharmacy', pharmacy_number='12300')}"}
    async with _client(settings) as client:
        got = await client.post(
            "/v1/quotes",
            json={"person_key": PERSON, "paid_at": paid_at, "lines": lines},
            headers=pharmacy,
        )
        bad = await client.post(
            "/v1/quotes",
            json={"person_key": PERSON, "paid_at": "2024-06-02T10:00:00+02:00", "lines": lines},
            headers=pharmacy,
        )
        other = await client.post(
            "/v1/quotes",
            json={"person_key": PERSON, "pharmacy_number": "45600", "lines": lines},
            headers=pharmacy,
        )
    assert got.status_code == 200, got.text
    assert bad.status_code == 422 and "paid_at" in bad.json()["detail"]
    assert other.status_code == 403
    quote = got.json()
    async with register.engine.connect() as conn:
        after = (await conn.execute(select(func.count()).select_from(tables.purchases))).scalar()
    assert after == before  # nothing written

    names = TopicNames(settings.topic_prefix)
    sale = report("r-quoted", 0, paid_at=paid_at)
    sale["lines"] = lines
    await produce(settings.kafka_bootstrap, names(DISPENSINGS), [(PERSON.encode(), as_json(sale))])
    async with running_worker(settings, register):
        records = await read_until(
            settings.kafka_bootstrap,
            names(DECISIONS),
            lambda rs: any(orjson.loads(r.value)["report_id"] == "r-quoted" for r in rs),
        )
    [decision] = [
        orjson.loads(r.value) for r in records if orjson.loads(r.value)["report_id"] == "r-quoted"
    ]
    for field, value in quote.items():
        if field in ("paid_at", "died_on", "notice"):  # the quote's own: what the counter is told
            continue
        assert decision[field] == value, field
    assert (quote["died_on"], quote["notice"]) == (None, None)
    assert quote["balancing_applied"] != 0  # the open balancing amount was applied in both
    assert quote["health_supplement"] > 0  # and the municipal supplement


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_jwks_url_verifies_the_issuers_tokens_and_reads_are_counted(
    settings: Settings,
) -> None:
    """Production: the issuer publishes its keys at a JWKS URL; a token signed with a key it does not
    publish is refused. /metrics counts reads by resource and outcome."""
    import http.server
    import json
    import threading

    from api.app import create_api

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        keys = TokenKeys(KEYS.audience, KEYS.issuer, jwks_url=url)
        now = int(time.time())
        claims = {
            "role": "agency",
            "sub": "a",
            "aud": KEYS.audience,
            "iss": KEYS.issuer,
            "iat": now,
            "exp": now + 300,
        }
        good = jwt.encode(claims, private, "RS256", headers={"kid": "k1"})
        unknown_kid = jwt.encode(claims, stranger, "RS256", headers={"kid": "k2"})
        wrong_key = jwt.encode(claims, stranger, "RS256", headers={"kid": "k1"})
        await _known_person(settings.database_url)
        api = create_api(settings.database_url, tokens=keys)
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            codes = [
                (
                    await client.get(
                        f"/v1/persons/{PERSON}/status", params=OPERATION, headers=_bearer(t)
                    )
                ).status_code
                for t in (good, unknown_kid, wrong_key)
            ]
            metrics = (await client.get("/metrics")).text
    finally:
        server.shutdown()
    assert codes == [200, 401, 401]
    assert 'reghub_api_reads_total{outcome="allowed",resource="status"} 1.0' in metrics
    assert 'reghub_api_reads_total{outcome="refused",resource="status"} 2.0' in metrics
    assert "_created" not in metrics  # a counter's start time is no series to scrape


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_request_not_understood_is_refused_without_its_values_and_audited(
    settings: Settings, register: Register
) -> None:
    pharmacy = {"Authorization": f"Bearer {token('pharmacy', pharmacy_number='12300')}"}
    await _known_person(settings.database_url)
    async with _client(settings, datetime.now(UTC)) as client:
        period = await client.get(
            f"/v1/persons/{PERSON}/purchases", params={"period": "all"}, headers=pharmacy
        )
        body = await client.post(
            "/v1/quotes", json={"person_key": PERSON, "lines": "0505601234"}, headers=pharmacy
        )
        key = await client.get("/v1/persons/0505601-23/status", headers=pharmacy)
        nul = await client.get(f"/v1/persons/{PERSON}/status", params={"purpose": "dis\x00pensing"})
        allowed = await client.get(
            f"/v1/persons/{PERSON}/status", params={"purpose": "dispensing"}, headers=pharmacy
        )
        monitor = await client.get("/monitor")
    assert (period.status_code, body.status_code, key.status_code) == (422, 422, 400)
    assert nul.status_code == 422  # found by the fuzz run: PostgreSQL's text holds no NUL
    for response in (period, body, key):
        assert PERSON not in response.text and "0505601" not in response.text
    async with register.engine.connect() as conn:
        rows = (await conn.execute(select(read_audit).order_by(read_audit.c.id))).all()
    assert [(r.resource, r.outcome, r.status) for r in rows] == [
        ("purchases", "refused", 422),
        ("quote", "refused", 422),
        ("status", "refused", 400),
        ("status", "refused", 422),
        ("status", "allowed", 200),
    ]
    # the dashboard counts them by role, and names no one
    assert allowed.status_code == 200
    assert monitor.json()["reads"] == {"allowed": {"pharmacy": 1}, "refused": {"-": 4}}
    assert PERSON not in monitor.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_audit_names_a_citizen_by_a_pseudonym_never_by_the_cpr_in_the_tokens_subject(
    settings: Settings, register: Register
) -> None:
    """Spec § 8: an identity provider may put the citizen's CPR number in `sub`; the audit entry
    names that caller by the hub's pseudonym of it, allowed or refused."""
    from api.app import create_api

    await _fill(settings, register)
    secret = settings.pseudonym_key.get_secret_value().encode()
    api = create_api(
        settings.database_url, tokens=KEYS, clock=lambda: CLOCK_AT, pseudonym_secret=secret
    )
    own = mint(SECRET, "citizen", PERSON, audience=KEYS.audience, issuer=KEYS.issuer, cpr=PERSON)
    headers = {"Authorization": f"Bearer {own}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        allowed = await c.get(f"/v1/persons/{PERSON}/status", headers=headers)
        refused = await c.get(f"/v1/persons/{CHILD}/status", headers=headers)
    assert (allowed.status_code, refused.status_code) == (200, 403)
    async with register.engine.connect() as conn:
        rows = (await conn.execute(select(read_audit).order_by(read_audit.c.id))).all()
    assert [r.outcome for r in rows[-2:]] == ["allowed", "refused"]
    for row in rows[-2:]:
        assert row.subject == row.actor == f"pseudonym {pseudonym(PERSON, secret)}"
        assert PERSON not in f"{row.subject} {row.actor} {row.reason}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_token_is_checked_before_the_body_is_read_and_bodies_are_capped(
    settings: Settings, register: Register
) -> None:
    """Without a valid token a quote's body is never parsed (invalid JSON gets 401, not 422); a body
    over 64 KiB is 413, whether it says its length or streams; 200 refused requests leave no audit
    row each, only their count per minute."""
    from api.app import create_api

    api = create_api(settings.database_url, tokens=KEYS)
    pharmacy = {"Authorization": f"Bearer {token('pharmacy', pharmacy_number='12300')}"}
    big = b'{"person_key": "' + b"1" * 70_000 + b'"}'

    async def streamed() -> Any:
        for _ in range(70):
            yield b"x" * 1024

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        garbage = await c.post("/v1/quotes", content=b"{not json", headers={})
        sized = await c.post("/v1/quotes", content=big, headers=pharmacy)
        chunked = await c.post("/v1/quotes", content=streamed(), headers=pharmacy)
        small_bad = await c.post("/v1/quotes", content=b"{not json", headers=pharmacy)
        flood = [(await c.get(f"/v1/persons/{PERSON}/status")).status_code for _ in range(200)]
    assert garbage.status_code == 401 and garbage.headers["www-authenticate"] == "Bearer"
    assert (sized.status_code, chunked.status_code) == (413, 413)
    assert sized.json() == {"detail": "the request body is over 65536 bytes"}
    assert small_bad.status_code == 422  # with a valid token the body is read, and refused
    assert set(flood) == {401}
    async with register.engine.connect() as conn:
        refused = (
            await conn.execute(
                select(func.count()).select_from(read_audit).where(read_audit.c.status == 401)
            )
        ).scalar()
    assert refused == 0
    await api.state.refusals.flush(everything=True)
    async with register.engine.connect() as conn:
        rows = (await conn.execute(select(read_audit).where(read_audit.c.status == 401))).all()
    assert 1 <= len(rows) <= 4  # a row per minute and resource, not one per request
    assert sum(int(r.reason.split()[0]) for r in rows) == 201


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_person_the_register_does_not_know_is_404_not_a_zero_saldo(
    settings: Settings, register: Register
) -> None:
    """Only once § 5 allows the read: a doctor without a treatment relation is refused 403 as for a
    known person, so the answer never tells a caller without access whether the person exists."""
    pharmacy = {"Authorization": f"Bearer {token('pharmacy', pharmacy_number='12300')}"}
    doctor = {"Authorization": f"Bearer {token('doctor', authorisation_id=DOCTOR)}"}
    async with _client(settings) as client:
        status = await client.get(
            f"/v1/persons/{PERSON}/status", params={"purpose": "dispensing"}, headers=pharmacy
        )
        assert (status.status_code, status.json()) == (
            404,
            {"detail": "no person with that number in the register"},
        )
        entry = await _last_audit(register)
        assert (entry.resource, entry.outcome, entry.status) == ("status", "refused", 404)
        purchases = await client.get(
            f"/v1/persons/{PERSON}/purchases", params={"purpose": "information"}, headers=pharmacy
        )
        assert purchases.status_code == 404
        refused = await client.get(f"/v1/persons/{PERSON}/status", headers=doctor)
        assert refused.status_code == 403
