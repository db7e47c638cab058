"""The treatment-place register (spec/treatment-places.md) through the real broker, worker and register:
each of the six forms from its first event to registered, changed and deregistered; SOR data alone is not
a registration; an owner change; deadline alerts; invalid registrations dead-lettered with their reasons.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import select

from reghub.settings import Settings
from rules.treatment_places.identifiers import CVR_WEIGHTS, gs1_check_digit
from sinks import places_tables as pt
from sinks.register import Register, make_engine
from streams.decode import Rejected, Source, decode
from streams.handlers.base import ApplyConfig
from streams.pipeline import Pipeline
from streams.topics import CHANGES, DEAD_LETTER, PLACE_ALERTS, REGISTRATIONS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.sor_ids import sor_id

pytestmark = [pytest.mark.broker, pytest.mark.database]

REPO = Path(__file__).resolve().parent.parent

# -- registration events with valid identifiers ----------------------------------------------------

FORM_ROLE = {
    "private_cvr": "company",
    "private_no_cvr": "person",
    "private_hospital": "private_hospital",
    "municipal": "municipality",
    "regional": "region",
    "state": "state_authority",
}
MUNICIPALITY = 101  # Copenhagen
REGION = 1084  # the Capital Region


def cvr(n: int) -> str:
    """The `n`-th valid CVR number from 2000000x on (modulus 11, spec § 3)."""
    found = 0
    for prefix in range(2_000_000, 3_000_000):
        body = str(prefix)
        rest = sum(int(d) * w for d, w in zip(body, CVR_WEIGHTS, strict=False)) % 11
        check = (11 - rest) % 11
        if check == 10:
            continue
        if found == n:
            return body + str(check)
        found += 1
    raise ValueError(n)


def ean(body: str = "579800041660") -> str:
    return body + str(gs1_check_digit(body))


def sor(n: int) -> str:
    return sor_id(str(4_000 + n))


def company_ref(form: str, key: str) -> dict[str, str]:
    return {"registrant_id": key} if form == "private_no_cvr" else {"cvr": key}


def event(
    kind: str,
    message_id: str,
    form: str,
    key: str,
    sent_at: str = "2024-03-01T10:00:00+01:00",
    role: str | None = None,
    **fields: Any,
) -> tuple[bytes, dict[str, Any]]:
    """(record key, message) of one event filed through `form` by its owner (or `role`)."""
    role = role or FORM_ROLE[form]
    filer: dict[str, Any] = {"role": role, "user": f"user-{role}"}
    if role == "municipality":
        filer["municipality_code"] = MUNICIPALITY
    if role == "region":
        filer["region_code"] = REGION
    message = {
        "event": kind,
        "message_id": message_id,
        "sent_at": sent_at,
        "form": form,
        "filer": filer,
        "company": company_ref(form, key),
        **fields,
    }
    return key.encode(), message


def company_registered(message_id: str, form: str, key: str, **more: Any) -> tuple[bytes, dict]:
    fields: dict[str, Any] = {
        "name": f"Clinic {key}",
        "address": {"street": "Nørregade 1", "postal_code": "1165", "city": "København K"},
    }
    if form == "municipal":
        fields["owner_municipality_code"] = MUNICIPALITY
    if form == "regional":
        fields["owner_region_code"] = REGION
    return event("company_registered", message_id, form, key, **{**fields, **more})


DOCTORS = [
    {"name": "Dr A", "authorisation_id": "0C4MN", "ydernummer": "123456", "profession": "doctor"},
    {"name": "Dr B", "authorisation_id": "1D5NP", "profession": "doctor"},
]
PHYSIOS = [
    {"name": "Physio A", "authorisation_id": "2E6PQ", "profession": "other"},
    {"name": "Physio B", "authorisation_id": "3F7QR", "profession": "other"},
]


def unit_added(
    message_id: str, form: str, key: str, sor_id_: str, practitioners: list[dict], **more: Any
) -> tuple[bytes, dict]:
    fields: dict[str, Any] = {
        "sor_id": sor_id_,
        "name": f"Unit {sor_id_}",
        "unit_type": "Almen praksis",
        "postal_address": {"street": "Vestergade 2", "postal_code": "8000", "city": "Aarhus C"},
        "practitioners": practitioners,
    }
    return event("unit_added", message_id, form, key, **{**fields, **more})


def information(
    kind: str, message_id: str, form: str, key: str, sor_id_: str, category: int, **more: Any
) -> tuple[bytes, dict]:
    fields: dict[str, Any] = {
        "sor_id": sor_id_,
        "category": category,
        "fee_email": "fees@example.dk",
    }
    return event(kind, message_id, form, key, **{**fields, **more})


Message = tuple[bytes, dict[str, Any]]


async def _run(
    settings: Settings, register: Register, messages: list[Message]
) -> list[dict[str, Any]]:
    """Produce `messages` on the registrations topic and run the worker until each has its change-feed
    entry; returns those entries."""
    names = TopicNames(settings.topic_prefix)
    wanted = {m["message_id"] for _, m in messages}

    def seen(records: list[ConsumerRecord]) -> set[str]:
        return {
            orjson.loads(r.value)["message_id"]
            for r in records
            if orjson.loads(r.value)["source_topic"] == names(REGISTRATIONS)
        }

    async with running_worker(settings, register):
        await produce(
            settings.kafka_bootstrap,
            names(REGISTRATIONS),
            [(key, as_json(message)) for key, message in messages],
        )
        records = await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda r: wanted <= seen(r), timeout=60
        )
    changes = [orjson.loads(r.value) for r in records]
    assert wanted <= {c["message_id"] for c in changes}
    return [c for c in changes if c["message_id"] in wanted]


async def _rows(register: Register, table: Any) -> list[Any]:
    async with register.engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def _alerts(settings: Settings, count: int) -> list[dict[str, Any]]:
    names = TopicNames(settings.topic_prefix)
    records = await read_until(
        settings.kafka_bootstrap, names(PLACE_ALERTS), lambda r: len(r) >= count, timeout=15
    )
    return [orjson.loads(r.value) for r in records]


# Per form: the company key, its practitioners, the category it files, who files a change of the
# treatment-place information (the e-mail forms: STPS, quoting the reference number).
FORMS: dict[str, tuple[str, list[dict[str, Any]], int, str | None]] = {
    "private_cvr": (cvr(1), DOCTORS, 2, None),
    "private_no_cvr": ("registrant-7", PHYSIOS[:1], 5, "stps"),
    "private_hospital": (cvr(2), DOCTORS[:1], 1, None),
    "municipal": (cvr(3), PHYSIOS, 4, "stps"),
    "regional": (cvr(4), DOCTORS[:1], 1, None),
    "state": (cvr(5), DOCTORS[:1], 1, None),
}


def _walk(i: int, form: str) -> list[Message]:
    """A place's life through one form: company, unit in SOR, information, a change, deregistration."""
    key, practitioners, category, changer = FORMS[form]
    place = sor(100 + i)
    responsible = {"responsible_authorisation_id": "0C4MN"} if category == 2 else {}
    change: dict[str, Any] = {"fee_email": "new-fees@example.dk", **responsible}
    by_stps: dict[str, Any] = {}  # the e-mail forms: every later change is filed by STPS (spec § 2)
    if changer == "stps":
        by_stps = {"role": "stps", "reference_number": f"BST-{place}"}
        change.update(by_stps)
    return [
        company_registered(f"{form}-company", form, key),
        unit_added(f"{form}-unit", form, key, place, practitioners),
        information(
            "information_added",
            f"{form}-info",
            form,
            key,
            place,
            category,
            turnover_year=2024,
            turnover=10_000_000,
            **responsible,
        ),
        information(
            "information_changed",
            f"{form}-change",
            form,
            key,
            place,
            category,
            sent_at="2024-05-01T10:00:00+02:00",
            **change,
        ),
        event(
            "deregistered",
            f"{form}-gone",
            form,
            key,
            sent_at="2024-09-10T10:00:00+02:00",
            sor_id=place,
            treatment_stopped_on="2024-09-01",
            **by_stps,
        ),
    ]


async def test_each_of_the_six_forms_registers_changes_and_deregisters(
    settings: Settings, register: Register
) -> None:
    """spec § 2, § 4: each form's place goes SOR_ONLY → REGISTERED (a reference number issued, version
    1) → a change (version 2, version 1 kept) → DEREGISTERED; one registers again."""
    messages = [m for i, form in enumerate(FORMS) for m in _walk(i, form)]
    again = event(
        "reregistered",
        "private_cvr-again",
        "private_cvr",
        FORMS["private_cvr"][0],
        sent_at="2024-10-01T10:00:00+02:00",
        sor_id=sor(100),
        reference_number=f"BST-{sor(100)}",
    )
    changes = await _run(settings, register, [*messages, again])

    assert {c["outcome"] for c in changes} == {"applied"}, [
        c for c in changes if c["outcome"] != "applied"
    ]
    states = {r.sor_id: r for r in await _rows(register, pt.states)}
    history = sorted((r.sor_id, r.seq, r.state) for r in await _rows(register, pt.state_history))
    versions = sorted(
        (r.sor_id, r.version, r.fee_email) for r in await _rows(register, pt.information)
    )
    for i, form in enumerate(FORMS):
        place = sor(100 + i)
        state = states[place]
        assert state.reference_number == f"BST-{place}", form
        assert state.version == 2 and state.first_registered_on.isoformat() == "2024-03-01"
        walked = [s for p, _, s in history if p == place]
        expected = ["SOR_ONLY", "REGISTERED", "DEREGISTERED"]
        if form == "private_cvr":
            assert state.state == "REGISTERED" and walked == [*expected, "REGISTERED"]
        else:
            assert state.state == "DEREGISTERED" and walked == expected, form
            assert state.treatment_stopped_on.isoformat() == "2024-09-01"
        assert [(v, e) for p, v, e in versions if p == place] == [
            (1, "fees@example.dk"),
            (2, "new-fees@example.dk"),
        ]
    fees = {r.sor_id: r for r in await _rows(register, pt.fees)}
    # 100,000 kr turnover in 2024, above 2L: the full fee of the category (spec § 6)
    assert fees[sor(100)].amount == 852_000 and fees[sor(100)].band == "full"
    assert fees[sor(101)].amount == 225_800 and fees[sor(101)].invoice_channel == "email"
    assert (
        fees[sor(102)].amount == 1_277_500 and fees[sor(102)].invoice_channel == "digital_mailbox"
    )
    assert fees[sor(103)].amount == 263_600


async def test_sor_data_without_treatment_place_information_is_not_registered_and_owes_no_fee(
    settings: Settings, register: Register
) -> None:
    """spec § 4: a place is only registered once its treatment-place information is added; a unit
    that starts treating before that raises an alert on stps.alerts.v1."""
    key, place = cvr(6), sor(200)
    await _run(
        settings,
        register,
        [
            company_registered("sor-company", "private_cvr", key),
            unit_added(
                "sor-unit",
                "private_cvr",
                key,
                place,
                DOCTORS[:1],
                treatment_starts_on="2024-02-20",
            ),
        ],
    )
    [state] = await _rows(register, pt.states)
    assert state.state == "SOR_ONLY" and state.reference_number is None
    assert await _rows(register, pt.fees) == []
    assert await _rows(register, pt.information) == []
    [alert] = await _alerts(settings, 1)
    assert alert["kind"] == "treatment_before_registration" and alert["sor_id"] == place
    # 20 Feb to 1 Mar 2024: 10 days late (the start day itself is not late, issue 29 point 5)
    assert alert["days"] == 10 and alert["company"] == key


async def test_an_owner_change_makes_two_places_that_both_owe_the_full_fee(
    settings: Settings, register: Register
) -> None:
    """spec § 1: a new owner (a new CVR) is a new place, the old one deregisters; both pay the full
    fee for the year in which both were registered — here even in the half-fee band. The old place
    deregistered more than two weeks after treatment stopped: an alert (spec § 4)."""
    old_key, new_key = cvr(7), cvr(8)
    old, new = sor(300), sor(301)
    half_band = {"turnover_year": 2024, "turnover": 4_000_000}  # 40,000 kr: L < t ≤ 2L in 2024
    messages = [
        company_registered("old-company", "private_cvr", old_key),
        unit_added("old-unit", "private_cvr", old_key, old, DOCTORS[:1]),
        information("information_added", "old-info", "private_cvr", old_key, old, 3, **half_band),
        event(
            "deregistered",
            "old-gone",
            "private_cvr",
            old_key,
            sent_at="2024-07-20T10:00:00+02:00",
            sor_id=old,
            treatment_stopped_on="2024-06-30",
        ),
        company_registered("new-company", "private_cvr", new_key),
        unit_added(
            "new-unit",
            "private_cvr",
            new_key,
            new,
            DOCTORS[:1],
            replaces_sor_id=old,
            sent_at="2024-06-25T10:00:00+02:00",
            treatment_starts_on="2024-07-01",
        ),
        information(
            "information_added",
            "new-info",
            "private_cvr",
            new_key,
            new,
            3,
            sent_at="2024-06-28T10:00:00+02:00",
            ean=ean(),
            **half_band,
        ),
    ]
    changes = await _run(settings, register, messages)
    assert {c["outcome"] for c in changes} == {"applied"}

    fees = {r.sor_id: r for r in await _rows(register, pt.fees)}
    assert set(fees) == {old, new}
    for place in (old, new):
        assert (fees[place].year, fees[place].band, fees[place].amount) == (
            2024,
            "owner_change",
            468_100,
        )
    assert fees[new].invoice_channel == "ean" and fees[new].invoice_address == ean()
    assert fees[old].invoice_channel == "digital_mailbox"
    states = {r.sor_id: r.state for r in await _rows(register, pt.states)}
    assert states == {old: "DEREGISTERED", new: "REGISTERED"}
    [alert] = await _alerts(settings, 1)
    assert alert["kind"] == "late_deregistration" and alert["sor_id"] == old
    assert alert["days"] == 6  # due 14 July, deregistered 20 July

    # the invoice list of 2024 (`reghub fees`) and the place's history (`reghub place show`)
    env = {"REGHUB_DATABASE_URL": settings.database_url}
    listed = await asyncio.to_thread(_reghub, "fees", "--year", "2024", env=env)
    lines = list(csv.DictReader(io.StringIO(listed)))
    assert [
        (x["reference_number"], x["band"], x["amount_ore"], x["invoice_channel"]) for x in lines
    ] == [
        (f"BST-{old}", "owner_change", "468100", "digital_mailbox"),
        (f"BST-{new}", "owner_change", "468100", "ean"),
    ]
    later = await asyncio.to_thread(_reghub, "fees", "--year", "2025", env=env)
    assert [x["band"] for x in csv.DictReader(io.StringIO(later))] == ["no_fee_table"]
    # a table for 2025 loaded: the year has fees from then on (here without a de-minimis limit)
    table = {"year": 2025, "de_minimis_limit": None, "source": "test", "care_only_fee_free": True}
    table["fees"] = {str(c): 100_000 * c for c in range(1, 6)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fees-2025.json"
        path.write_text(json.dumps(table))
        await asyncio.to_thread(_reghub, "fee-table", "load", str(path), env=env)
    later = await asyncio.to_thread(_reghub, "fees", "--year", "2025", env=env)
    assert [(x["band"], x["amount_ore"]) for x in csv.DictReader(io.StringIO(later))] == [
        ("full", "300000")
    ]
    shown = json.loads(await asyncio.to_thread(_reghub, "place", "show", f"BST-{old}", env=env))
    assert [h["state"] for h in shown["history"]] == ["SOR_ONLY", "REGISTERED", "DEREGISTERED"]
    assert shown["company"][0]["cvr"] == old_key and len(shown["versions"]) == 1


def _reghub(*args: str, env: dict[str, str]) -> str:
    """`python -m reghub ARGS` in a child process with only the given `REGHUB_*` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    with tempfile.TemporaryDirectory() as empty:  # no local `.reghub/` leaks in
        clean.update({"PYTHONPATH": str(REPO), "REGHUB_DATA_DIR": empty, **env})
        done = subprocess.run(
            [sys.executable, "-m", "reghub", *args],
            cwd=empty,
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_invalid_registrations_are_dead_lettered_with_their_reasons(
    settings: Settings, register: Register
) -> None:
    """Issue 16: a bad CVR check digit, an EAN with a wrong check digit, category 2 without a
    responsible doctor, a municipality filing for a private place; the worker goes on."""
    key, place = cvr(9), sor(400)
    good = cvr(10)
    bad_cvr = good[:-1] + str((int(good[-1]) + 1) % 10)  # one check digit passes, the others fail
    wrong_ean = ean()[:-1] + str((int(ean()[-1]) + 1) % 10)
    messages = [
        company_registered("ok-company", "private_cvr", key),
        unit_added("ok-unit", "private_cvr", key, place, DOCTORS),
        company_registered("bad-cvr", "private_cvr", bad_cvr),
        information("information_added", "bad-ean", "private_cvr", key, place, 2, ean=wrong_ean),
        information("information_added", "no-responsible", "private_cvr", key, place, 2),
        event(
            "unit_changed",
            "municipality-on-private",
            "municipal",
            key,
            role="municipality",
            sor_id=place,
            name="Taken over",
            unit_type="Almen praksis",
            postal_address={"street": "Vej 1", "postal_code": "2100", "city": "København Ø"},
        ),
        information(
            "information_added",
            "ok-info",
            "private_cvr",
            key,
            place,
            2,
            responsible_authorisation_id="1D5NP",
        ),
    ]
    changes = await _run(settings, register, messages)

    outcome = {c["message_id"]: (c["outcome"], c["reason"]) for c in changes}
    assert outcome["ok-info"][0] == "applied"
    names = TopicNames(settings.topic_prefix)
    records = await read_until(
        settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 4, timeout=15
    )
    reasons = {
        dict(r.headers)["reghub-message-id"].decode(): dict(r.headers)["reghub-reason"].decode()
        for r in records
    }
    assert reasons == {
        "bad-cvr": "rule.cvr_check_digit",
        "bad-ean": "rule.ean_check_digit",
        "no-responsible": "rule.category_2_needs_responsible_doctor",
        "municipality-on-private": "rule.municipality_filing_for_private_place",
    }
    [state] = await _rows(register, pt.states)
    assert state.state == "REGISTERED" and state.version == 1


DATA = REPO / "tests" / "data"


async def test_sor_import_publishes_exactly_the_differences_and_the_hub_applies_them(
    settings: Settings, register: Register
) -> None:
    """spec § 7, issue 16: `reghub sor import` on two successive snapshots publishes exactly their
    differences (created, changed, closed, replaced); the same snapshot twice publishes nothing. The
    connector's events (role `sds`) reach the units of the companies the forms registered."""
    names = TopicNames(settings.topic_prefix)
    env = {
        "REGHUB_DATABASE_URL": settings.database_url,
        "REGHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "REGHUB_KAFKA_IDEMPOTENCE": "false",
        "REGHUB_TOPIC_PREFIX": settings.topic_prefix,
    }

    async def imported(name: str, day: str) -> str:
        return (
            await asyncio.to_thread(
                _reghub, "sor", "import", str(DATA / name), "--date", day, env=env
            )
        ).strip()

    async def published(count: int) -> list[dict[str, Any]]:
        records = await read_until(
            settings.kafka_bootstrap,
            names(REGISTRATIONS),
            lambda r: len(r) >= count + 5,
            timeout=15,
        )
        return [orjson.loads(r.value) for r in records if b'"sds"' in r.value]

    # the companies register through their forms first
    companies = [
        company_registered("sor-a", "private_cvr", cvr(20)),
        company_registered("sor-b", "private_cvr", cvr(21)),
        company_registered("sor-m", "municipal", cvr(22)),
        company_registered("sor-n", "private_cvr", cvr(23)),
        company_registered("sor-r", "private_no_cvr", "reg-4711"),
    ]
    await _run(settings, register, companies)

    assert (
        await imported("sor_snapshot_1.csv", "2024-07-01")
        == "created 5, changed 0, closed 0, replaced 0"
    )
    assert (
        await imported("sor_snapshot_1.csv", "2024-07-01")
        == "created 0, changed 0, closed 0, replaced 0"
    )
    first = {e["message_id"] for e in await published(5)}
    assert len(first) == 5
    assert (
        await imported("sor_snapshot_2.csv", "2024-07-02")
        == "created 1, changed 1, closed 1, replaced 1"
    )
    assert (
        await imported("sor_snapshot_2.csv", "2024-07-03")
        == "created 0, changed 0, closed 0, replaced 0"
    )
    events = await published(9)
    assert len(events) == 9
    later = [e for e in events if e["message_id"] not in first]  # partitions: no global order
    assert sorted((e["event"], e["sor_id"][:4]) for e in later) == [
        ("unit_added", "5106"),
        ("unit_changed", "5102"),
        ("unit_closed", "5103"),
        ("unit_closed", "5105"),
    ]

    sor_ids = {e["message_id"] for e in events}
    async with running_worker(settings, register):
        await read_until(
            settings.kafka_bootstrap,
            names(CHANGES),
            lambda r: sor_ids <= {orjson.loads(x.value)["message_id"] for x in r},
            timeout=60,
        )
    states = {r.sor_id[:4]: r.state for r in await _rows(register, pt.states)}
    assert states == {
        "5101": "SOR_ONLY",
        "5102": "SOR_ONLY",
        "5103": "CLOSED_IN_SOR",
        "5104": "SOR_ONLY",
        "5105": "CLOSED_IN_SOR",
        "5106": "SOR_ONLY",
    }
    units = {r.sor_id[:4]: r for r in await _rows(register, pt.units)}
    assert "Toftegårds Allé 5" in units["5102"].postal_address
    assert units["5106"].replaces_sor_id == units["5105"].sor_id
    assert units["5105"].replaced_by_sor_id == units["5106"].sor_id


async def test_sor_import_takes_real_verhoeff_ids_that_a_wrong_table_refused(
    settings: Settings, register: Register
) -> None:
    """Issue 29, spec § 3: a snapshot whose ids have an 8 or a 9 at position 11 from the right (where
    σ^3 applies) is imported and its units reach the register. The ids come from `tests.sor_ids`,
    which checks against Verhoeff's published values; with a typo in σ^3 the import exited 1 on them."""
    key = cvr(24)
    await _run(settings, register, [company_registered("sor-v", "private_cvr", key)])
    ids = [sor_id("5181"), sor_id("5191")]
    header = (
        "sor_id;name;unit_type;cvr;registrant_id;form;parent_sor_id;street;postal_code;city;"
        "main_speciality;end_date;replaced_by_sor_id"
    )
    rows = [
        f"{u};Klinik {u[:4]};Almen praksis;{key};;private_cvr;;Algade 1;4000;Roskilde;Almen medicin;;"
        for u in ids
    ]
    env = {
        "REGHUB_DATABASE_URL": settings.database_url,
        "REGHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "REGHUB_KAFKA_IDEMPOTENCE": "false",
        "REGHUB_TOPIC_PREFIX": settings.topic_prefix,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sor.csv"
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        out = await asyncio.to_thread(_reghub, "sor", "import", str(path), env=env)
    assert out.strip() == "created 2, changed 0, closed 0, replaced 0"

    names = TopicNames(settings.topic_prefix)
    records = await read_until(
        settings.kafka_bootstrap, names(REGISTRATIONS), lambda r: len(r) >= 3, timeout=15
    )
    wanted = {orjson.loads(r.value)["message_id"] for r in records if b'"sds"' in r.value}
    async with running_worker(settings, register):
        changes = await read_until(
            settings.kafka_bootstrap,
            names(CHANGES),
            lambda r: wanted <= {orjson.loads(x.value)["message_id"] for x in r},
            timeout=60,
        )
    outcomes = {
        orjson.loads(r.value)["message_id"]: orjson.loads(r.value)["outcome"] for r in changes
    }
    assert {outcomes[m] for m in wanted} == {"applied"}
    states = {r.sor_id: r.state for r in await _rows(register, pt.states)}
    assert states == dict.fromkeys(ids, "SOR_ONLY")


SNAPSHOT_HEADER = (
    "sor_id;name;unit_type;cvr;registrant_id;form;parent_sor_id;street;postal_code;city;"
    "main_speciality;end_date;replaced_by_sor_id"
)


async def test_the_sor_connector_converges_on_the_units_the_forms_added(
    settings: Settings, register: Register
) -> None:
    """spec § 7, issue 29 point 2: the first import adopts a unit a form added and registered (no
    `rule.unit_already_in_sor`; SOR's name arrives); each change touches only what the snapshot
    carries (phone, website, visiting and activity address, sub-specialities and practitioners stay);
    a name that changes back (N1 -> N2 -> N1 -> N2 on four days) is applied every time, not refused
    as a conflict; the same snapshot again changes nothing."""
    key, place = cvr(26), sor(700)
    visiting = {"street": "Algade 5", "postal_code": "8000", "city": "Aarhus C"}
    activity = {"street": "Algade 7", "postal_code": "8000", "city": "Aarhus C"}
    await _run(
        settings,
        register,
        [
            company_registered("cv-company", "private_cvr", key),
            unit_added(
                "cv-unit",
                "private_cvr",
                key,
                place,
                DOCTORS,
                name="Form name",
                phone="+45 86 12 34 56",
                website="https://laegehuset.example.dk",
                visiting_address=visiting,
                activity_address=activity,
                sub_specialities=["Rejsemedicin"],
            ),
            information(
                "information_added",
                "cv-info",
                "private_cvr",
                key,
                place,
                2,
                responsible_authorisation_id="1D5NP",
            ),
        ],
    )
    env = {
        "REGHUB_DATABASE_URL": settings.database_url,
        "REGHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "REGHUB_KAFKA_IDEMPOTENCE": "false",
        "REGHUB_TOPIC_PREFIX": settings.topic_prefix,
    }

    async def imported(name: str, day: str) -> str:
        row = f"{place};{name};Almen praksis;{key};;private_cvr;;Vestergade 2;8000;Aarhus C;Almen medicin;;"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"sor-{day}.csv"
            path.write_text(f"{SNAPSHOT_HEADER}\n{row}\n", encoding="utf-8")
            out = await asyncio.to_thread(
                _reghub, "sor", "import", str(path), "--date", day, env=env
            )
        return out.strip()

    n1, n2 = "Lægehuset Nord", "Lægehuset Syd"
    assert await imported(n1, "2024-07-01") == "created 1, changed 0, closed 0, replaced 0"
    assert await imported(n2, "2024-07-02") == "created 0, changed 1, closed 0, replaced 0"
    assert await imported(n1, "2024-07-03") == "created 0, changed 1, closed 0, replaced 0"
    assert await imported(n2, "2024-07-04") == "created 0, changed 1, closed 0, replaced 0"
    assert await imported(n2, "2024-07-04") == "created 0, changed 0, closed 0, replaced 0"
    assert await imported(n2, "2024-07-05") == "created 0, changed 0, closed 0, replaced 0"

    names = TopicNames(settings.topic_prefix)
    wanted = {f"sor-{place}-2024-07-0{d}" for d in (1, 2, 3, 4)}
    async with running_worker(settings, register):
        records = await read_until(
            settings.kafka_bootstrap,
            names(CHANGES),
            lambda r: wanted <= {orjson.loads(x.value)["message_id"] for x in r},
            timeout=60,
        )
    outcomes = {
        orjson.loads(r.value)["message_id"]: (
            orjson.loads(r.value)["outcome"],
            orjson.loads(r.value).get("reason"),
        )
        for r in records
    }
    assert {m: outcomes[m] for m in sorted(wanted)} == {
        f"sor-{place}-2024-07-01": ("applied", "unit adopted from SOR: REGISTERED"),
        f"sor-{place}-2024-07-02": ("applied", "unit changed in SOR: REGISTERED"),
        f"sor-{place}-2024-07-03": ("applied", "unit changed in SOR: REGISTERED"),
        f"sor-{place}-2024-07-04": ("applied", "unit changed in SOR: REGISTERED"),
    }
    [unit] = await _rows(register, pt.units)
    assert (unit.name, unit.unit_type, unit.main_speciality) == (
        n2,
        "Almen praksis",
        "Almen medicin",
    )
    assert orjson.loads(unit.postal_address)["street"] == "Vestergade 2"
    assert (unit.phone, unit.website) == ("+45 86 12 34 56", "https://laegehuset.example.dk")
    assert orjson.loads(unit.visiting_address) == visiting
    assert orjson.loads(unit.activity_address) == activity
    assert orjson.loads(unit.sub_specialities) == ["Rejsemedicin"]
    practitioners = await _rows(register, pt.practitioners)
    assert {(p.authorisation_id, p.active) for p in practitioners} == {
        ("0C4MN", True),
        ("1D5NP", True),
    }
    [state] = await _rows(register, pt.states)
    assert state.state == "REGISTERED" and state.version == 1


# -- the handler through the pipeline and the register (no broker) -------------------------------------


async def _through_pipeline(url: str, messages: list[Message]) -> dict[str, str | None]:
    """Each message in a batch of its own; returns message id -> dead-letter reason (None: applied)."""
    names = TopicNames("p.")
    register = Register(make_engine(url))
    outcome: dict[str, str | None] = {}
    try:
        pipeline = Pipeline(register, names, ApplyConfig("places", 60, b"k" * 32))
        await pipeline.start()
        for offset, (key, message) in enumerate(messages):
            source = Source(names(REGISTRATIONS), 0, offset, key, as_json(message), 0)
            item = decode(source, REGISTRATIONS)
            assert not isinstance(item, Rejected), item.reason
            result = await pipeline.run([item], [], {})
            reasons = [
                dict(o.headers or ())["reghub-reason"].decode()
                for o in result.outputs
                if o.topic == names(DEAD_LETTER)
            ]
            outcome[message["message_id"]] = reasons[0] if reasons else None
    finally:
        await register.close()
    return outcome


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_exempt_place_notifies_and_registers_when_it_becomes_liable(
    database_url: str,
) -> None:
    """spec § 1, § 4: an exempt place notifies (NOTIFIED, no fee); when liable it registers. A place
    doing operative procedures cannot be exempt."""
    key, place = cvr(30), sor(500)
    notified = event(
        "exempt_place_notified",
        "n-1",
        "private_cvr",
        key,
        sor_id=place,
        exemption="de_minimis",
        treatment_starts_on="2024-04-01",
    )
    operative = event(
        "exempt_place_notified",
        "n-2",
        "private_cvr",
        key,
        exemption="de_minimis",
        treatment_starts_on="2024-04-01",
        operative_procedures=True,
    )
    outcome = await _through_pipeline(
        database_url,
        [
            company_registered("n-company", "private_cvr", key),
            notified,
            operative,
            unit_added("n-unit", "private_cvr", key, place, PHYSIOS),
            information("information_added", "n-info", "private_cvr", key, place, 4),
        ],
    )
    assert outcome == {
        "n-company": None,
        "n-1": None,
        "n-2": "rule.exemption_not_for_operative_procedures",
        "n-unit": None,
        "n-info": None,
    }
    register = Register(make_engine(database_url))
    try:
        history = [(r.state, r.event) for r in await _rows(register, pt.state_history)]
        [notification] = await _rows(register, pt.notifications)
    finally:
        await register.close()
    assert history == [("NOTIFIED", "exempt_place_notified"), ("REGISTERED", "information_added")]
    assert notification.exemption == "de_minimis" and notification.sor_id == place


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_rules_of_forms_and_states_refuse_with_their_reasons(database_url: str) -> None:
    """spec § 2-5: each refusal names its rule; the register keeps what was valid."""
    key, place, other = cvr(31), sor(600), sor(601)
    no_cvr, no_cvr_place = "reg-31", sor(602)
    outcome = await _through_pipeline(
        database_url,
        [
            unit_added("before-company", "private_cvr", key, place, DOCTORS[:1]),
            company_registered("company", "private_cvr", key),
            company_registered("company-again", "private_cvr", key),
            unit_added("unit", "private_cvr", key, place, DOCTORS[:1]),
            information("information_changed", "change-first", "private_cvr", key, place, 3),
            information("information_added", "hospital", "private_cvr", key, place, 1),
            unit_added(
                "bad-authorisation",
                "private_cvr",
                key,
                other,
                [{"name": "X", "authorisation_id": "ab12", "profession": "doctor"}],
            ),
            unit_added(
                "bad-postal-code",
                "private_cvr",
                key,
                other,
                DOCTORS[:1],
                postal_address={"street": "Vej 1", "postal_code": "0123", "city": "Nowhere"},
            ),
            unit_added("bad-sor", "private_cvr", key, "12345678901", DOCTORS[:1]),
            event(
                "unit_closed",
                "closed",
                "private_cvr",
                key,
                sor_id=place,
                closed_on="2024-03-01",
            ),
            information("information_added", "after-close", "private_cvr", key, place, 3),
            company_registered("no-cvr", "private_no_cvr", no_cvr),
            unit_added("no-cvr-unit", "private_no_cvr", no_cvr, no_cvr_place, PHYSIOS[:1]),
            information(
                "information_added", "no-cvr-info", "private_no_cvr", no_cvr, no_cvr_place, 5
            ),
            information(
                "information_changed", "by-person", "private_no_cvr", no_cvr, no_cvr_place, 5
            ),
            information(
                "information_changed",
                "wrong-reference",
                "private_no_cvr",
                no_cvr,
                no_cvr_place,
                5,
                role="stps",
                reference_number="BST-1",
            ),
        ],
    )
    assert outcome == {
        "before-company": "rule.company_not_registered",
        "company": None,
        "company-again": "rule.company_already_registered_send_a_change",
        "unit": None,
        "change-first": "rule.not_registered_add_information_first",
        "hospital": "rule.category_1_is_for_hospital_units",
        "bad-authorisation": "rule.authorisation_id_invalid",
        "bad-postal-code": "rule.postal_code_unknown",
        "bad-sor": "rule.sor_id_invalid",
        "closed": None,
        "after-close": "rule.closed_in_sor_register_anew",
        "no-cvr": None,
        "no-cvr-unit": None,
        "no-cvr-info": None,
        "by-person": "rule.change_by_email_to_stps",
        "wrong-reference": "rule.reference_number_does_not_match",
    }


async def _decoded_then_pipeline(url: str, messages: list[Message]) -> dict[str, str | None]:
    """Each message decoded, then (when valid) through the pipeline into the register in a batch of its
    own; returns message id -> the reason it was refused (decode's or the dead letter's), None: applied."""
    names = TopicNames("p.")
    register = Register(make_engine(url))
    outcome: dict[str, str | None] = {}
    try:
        pipeline = Pipeline(register, names, ApplyConfig("places", 60, b"k" * 32))
        await pipeline.start()
        for offset, (key, message) in enumerate(messages):
            source = Source(names(REGISTRATIONS), 0, offset, key, as_json(message), 0)
            item = decode(source, REGISTRATIONS)
            if isinstance(item, Rejected):
                outcome[message["message_id"]] = item.reason
                continue
            result = await pipeline.run([item], [], {})
            reasons = [
                dict(o.headers or ())["reghub-reason"].decode()
                for o in result.outputs
                if o.topic == names(DEAD_LETTER)
            ]
            outcome[message["message_id"]] = reasons[0] if reasons else None
    finally:
        await register.close()
    return outcome


CPR_IN_TEXT = "0505601234"  # a well-formed CPR number (5 May 1960), fictitious


async def test_bad_input_is_refused_with_the_same_schema_reason_on_sqlite_and_postgresql(
    database_url: str,
) -> None:
    """Issue 29 point 7, through decode, the pipeline and the register on both databases: a NUL byte in
    a text field, a `sent_at` in year 9999 or before 2017, a date more than a year after the event, a
    turnover year before 2017, and a CPR number inside free text (a unit name, a fee e-mail) are
    refused by the schema with the same reason on SQLite and PostgreSQL; the reason never repeats the
    CPR number; nothing of them reaches the register (no fee row for year 9999)."""
    key, place = cvr(40), sor(600)
    good_sent = "2024-03-01T10:00:00+01:00"
    messages = [
        company_registered("bi-nul-name", "private_cvr", key, name="Klinik\x00Nord"),
        company_registered("bi-company", "private_cvr", key),
        unit_added(
            "bi-nul-street",
            "private_cvr",
            key,
            place,
            DOCTORS,
            postal_address={"street": "Vestergade\x002", "postal_code": "8000", "city": "Aarhus C"},
        ),
        unit_added("bi-cpr-name", "private_cvr", key, place, DOCTORS, name=f"Klinik {CPR_IN_TEXT}"),
        unit_added("bi-unit", "private_cvr", key, place, DOCTORS),
        information(
            "information_added",
            "bi-year-9999",
            "private_cvr",
            key,
            place,
            2,
            sent_at="9999-12-31T10:00:00+01:00",
            responsible_authorisation_id="1D5NP",
            turnover_year=2024,
            turnover=10_000_000,
        ),
        information(
            "information_added",
            "bi-before-2017",
            "private_cvr",
            key,
            place,
            2,
            sent_at="2016-12-31T10:00:00+01:00",
            responsible_authorisation_id="1D5NP",
        ),
        information(
            "information_added",
            "bi-cpr-email",
            "private_cvr",
            key,
            place,
            2,
            fee_email=f"{CPR_IN_TEXT}@example.dk",
            responsible_authorisation_id="1D5NP",
        ),
        information(
            "information_added",
            "bi-turnover-2016",
            "private_cvr",
            key,
            place,
            2,
            responsible_authorisation_id="1D5NP",
            turnover_year=2016,
            turnover=10_000_000,
        ),
        information(
            "information_added",
            "bi-info",
            "private_cvr",
            key,
            place,
            2,
            sent_at=good_sent,
            responsible_authorisation_id="1D5NP",
        ),
        event(
            "deregistered",
            "bi-stop-far-ahead",
            "private_cvr",
            key,
            sor_id=place,
            treatment_stopped_on="2026-01-01",
        ),
    ]
    outcome = await _decoded_then_pipeline(database_url, messages)

    at_sent = "schema.value_error: sent_at: must be a time from 2017 to a year ahead"
    assert outcome == {
        "bi-company": None,
        "bi-nul-name": "schema.value_error: name: must not contain a control character",
        "bi-nul-street": (
            "schema.value_error: postal_address.street: must not contain a control character"
        ),
        "bi-cpr-name": "schema.value_error: name: must not contain a person number",
        "bi-unit": None,
        "bi-year-9999": at_sent,
        "bi-before-2017": at_sent,
        "bi-cpr-email": "schema.value_error: fee_email: must not contain a person number",
        "bi-turnover-2016": "schema.greater_than_equal: turnover_year: Input should be greater "
        "than or equal to 2017",
        "bi-info": None,
        "bi-stop-far-ahead": "schema.value_error: treatment_stopped_on: must be a day from 2017 "
        "to a year after the event was sent",
    }
    assert not [r for r in outcome.values() if r and CPR_IN_TEXT in r]
    register = Register(make_engine(database_url))
    try:
        companies = await _rows(register, pt.companies)
        units = await _rows(register, pt.units)
        fees = await _rows(register, pt.fees)
        versions = await _rows(register, pt.information)
    finally:
        await register.close()
    assert [c.name for c in companies] == [f"Clinic {key}"]
    assert [u.name for u in units] == [f"Unit {place}"]
    assert [v.message_id for v in versions] == ["bi-info"]
    assert fees and max(f.year for f in fees) < 9999


async def test_fee_table_load_refuses_bad_tables_alike_on_sqlite_and_postgresql(
    database_url: str,
) -> None:
    """Issue 29 point 7, `reghub fee-table load` for real on both databases: a year before 2017 or
    after next year, a NUL byte or a CPR number in the source, an amount no 64-bit column holds, and a
    file that is no JSON are refused with the same one-line reason (exit 1) and leave nothing behind;
    a good table then loads."""
    good: dict[str, Any] = {
        "year": 2025,
        "de_minimis_limit": 2_900_000,
        "fees": {str(c): 100_000 * c for c in range(1, 6)},
        "care_only_fee_free": True,
        "source": "stps.dk",
    }
    bad: dict[str, tuple[Any, str]] = {
        "year 9999": ({**good, "year": 9999}, "the year is from 2017 to next year"),
        "year 2016": ({**good, "year": 2016}, "the year is from 2017 to next year"),
        "NUL in source": (
            {**good, "source": "stps\x00.dk"},
            "the source holds no control character and no person number",
        ),
        "CPR in source": (
            {**good, "source": f"mail from {CPR_IN_TEXT}"},
            "the source holds no control character and no person number",
        ),
        "huge fee": (
            {**good, "fees": {**good["fees"], "1": 10**20}},
            "an amount is at most 10^13 øre",
        ),
        "not json": (
            "{year: 2025",
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    with tempfile.TemporaryDirectory() as folder:
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "REGHUB_DATA_DIR": folder,
                "REGHUB_DATABASE_URL": database_url,
            }
        )

        def load(content: Any) -> subprocess.CompletedProcess[str]:
            path = Path(folder) / "table.json"
            text = content if isinstance(content, str) else json.dumps(content)
            path.write_text(text, encoding="utf-8")
            return subprocess.run(
                [sys.executable, "-m", "reghub", "fee-table", "load", str(path)],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        for name, (content, reason) in bad.items():
            done = await asyncio.to_thread(load, content)
            assert done.returncode == 1, name
            assert done.stderr.splitlines() == [f"not a fee table: {reason}"], name
            assert CPR_IN_TEXT not in done.stderr, name
        register = Register(make_engine(database_url))
        try:
            assert await _rows(register, pt.fee_tables) == []
        finally:
            await register.close()
        done = await asyncio.to_thread(load, good)
        assert (done.returncode, done.stdout.strip()) == (0, "fee table 2025 loaded"), done.stderr


# -- Issue 29 point 3: fees as STPS charges them --------------------------------------------------------

# spec § 6, 2024 (stps.dk, 'Gebyr for registrering af behandlingssted'): L = 28,615 kr; category 5 pays
# 2,258 kr in full and 1,129 kr as STPS publishes the half fee (rounded up to whole kroner).
L_2024 = 2_861_500
FULL_5_2024, HALF_5_2024 = 225_800, 112_900


async def test_a_unit_sor_replaces_under_the_same_cvr_pays_its_own_band_and_the_ledger_fills_every_year(
    database_url: str,
) -> None:
    """Issue 29 point 3, spec § 1 and § 6: a unit SOR replaces under the same CVR (a move) is no owner
    change, so the old and the new place each pay their own half fee (2 × 1,129 kr, not 2 × 2,258 kr).
    The ledger holds a row for every year a place was registered, also 2025 in which nothing happened
    to it; a 2025 fee table loaded later fills that row; `reghub fees`, `reghub place show` and
    `GET /v1/places/{id}` show the same rows."""
    import httpx

    from api.app import create_api
    from tests.test_places_read import KEYS, token

    key, old, new = cvr(40), sor(700), sor(701)
    half_band = {"turnover_year": 2024, "turnover": L_2024 + 100_000}  # 29,615 kr: L < t ≤ 2L
    outcome = await _decoded_then_pipeline(
        database_url,
        [
            company_registered("mv-company", "private_cvr", key),
            unit_added("mv-old-unit", "private_cvr", key, old, PHYSIOS[:1]),
            information(
                "information_added", "mv-old-info", "private_cvr", key, old, 5, **half_band
            ),
            unit_added(
                "mv-new-unit",
                "private_cvr",
                key,
                new,
                PHYSIOS[:1],
                replaces_sor_id=old,
                sent_at="2024-06-25T10:00:00+02:00",
            ),
            information(
                "information_added",
                "mv-new-info",
                "private_cvr",
                key,
                new,
                5,
                sent_at="2024-06-28T10:00:00+02:00",
                **half_band,
            ),
            event(
                "deregistered",
                "mv-old-gone",
                "private_cvr",
                key,
                sent_at="2024-07-05T10:00:00+02:00",
                sor_id=old,
                treatment_stopped_on="2024-06-30",
            ),
        ],
    )
    assert set(outcome.values()) == {None}, outcome
    env = {"REGHUB_DATABASE_URL": database_url}

    async def listed(year: int) -> list[tuple[str, str, str, str]]:
        out = await asyncio.to_thread(_reghub, "fees", "--year", str(year), env=env)
        return [
            (x["sor_id"], x["band"], x["amount_ore"], x["invoice_channel"])
            for x in csv.DictReader(io.StringIO(out))
        ]

    async def shown(place: str) -> dict[int, tuple[str, int | None]]:
        out = await asyncio.to_thread(_reghub, "place", "show", place, env=env)
        return {f["year"]: (f["band"], f["amount"]) for f in json.loads(out)["fees"]}

    assert await listed(2024) == [
        (old, "half", str(HALF_5_2024), "digital_mailbox"),
        (new, "half", str(HALF_5_2024), "digital_mailbox"),
    ]
    this_year = datetime.now(UTC).year  # the place is registered to this day
    waiting = {2024: ("half", HALF_5_2024)} | {
        y: ("no_fee_table", None) for y in range(2025, this_year + 1)
    }
    assert await shown(new) == waiting
    assert await shown(old) == {2024: ("half", HALF_5_2024)}  # deregistered since July 2024
    assert await listed(2025) == [(new, "no_fee_table", "", "digital_mailbox")]

    # a table for 2025 loaded (the test's own figures, no de-minimis limit: every place pays in full)
    table = {"year": 2025, "de_minimis_limit": None, "source": "test", "care_only_fee_free": True}
    table["fees"] = {str(c): 100_000 * c for c in range(1, 6)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fees-2025.json"
        path.write_text(json.dumps(table))
        await asyncio.to_thread(_reghub, "fee-table", "load", str(path), env=env)
    filled = {**waiting, 2025: ("full", 500_000)}
    assert await shown(new) == filled
    assert await listed(2025) == [(new, "full", "500000", "digital_mailbox")]
    api = create_api(database_url, tokens=KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        read = await c.get(f"/v1/places/BST-{new}", headers=token("stps"))
    assert read.status_code == 200, read.text
    assert {f["year"]: (f["band"], f["amount"]) for f in read.json()["fees"]} == filled


# -- Issue 29 point 4: the forms as the seed has them ----------------------------------------------------


async def test_the_forms_changes_go_by_the_seeds_channels_and_care_only_units_need_no_category(
    database_url: str,
) -> None:
    """Issue 29 point 4, spec § 2-3 and the seed ('Ændring til registrering'): a no-CVR or municipal
    owner's own unit change, deregistration and re-registration are refused with the reason naming
    the e-mail channel, and STPS files them quoting the reference number; a state authority's SOR
    change goes through Sundhedsdatastyrelsen; a place without any invoice channel is refused (a
    no-CVR place without fee e-mail or EAN); a care-only unit states its §§ 83-87 services and
    registers without a category, billing or responsible doctor."""
    person, person_place = "registrant-41", sor(800)
    town, town_place = cvr(42), sor(801)
    state, state_place = cvr(43), sor(802)
    care, care_place, bare_place = cvr(44), sor(803), sor(804)
    nobill, nobill_place = "registrant-45", sor(805)

    def life(form: str, key: str, place: str, staff: list[dict], category: int) -> list[Message]:
        return [
            company_registered(f"{place}-company", form, key),
            unit_added(f"{place}-unit", form, key, place, staff),
            information("information_added", f"{place}-info", form, key, place, category),
        ]

    def changed(mid: str, form: str, key: str, place: str, **more: Any) -> Message:
        return event(
            "unit_changed",
            mid,
            form,
            key,
            sor_id=place,
            name="Moved",
            unit_type="Fysioterapi",
            postal_address={"street": "Nørregade 9", "postal_code": "1165", "city": "København K"},
            **more,
        )

    def gone(mid: str, form: str, key: str, place: str, **more: Any) -> Message:
        return event(
            "deregistered",
            mid,
            form,
            key,
            sent_at="2024-06-10T10:00:00+02:00",
            sor_id=place,
            treatment_stopped_on="2024-06-05",
            **more,
        )

    def again(mid: str, form: str, key: str, place: str, **more: Any) -> Message:
        sent = "2024-08-01T10:00:00+02:00"
        return event("reregistered", mid, form, key, sent_at=sent, sor_id=place, **more)

    def stps(place: str) -> dict[str, str]:
        return {"role": "stps", "reference_number": f"BST-{place}"}

    care_unit = {"care_services": ["83", "84"], "unit_type": "Plejehjem"}
    outcome = await _decoded_then_pipeline(
        database_url,
        [
            *life("private_no_cvr", person, person_place, PHYSIOS[:1], 5),
            changed("p-unit-own", "private_no_cvr", person, person_place),
            gone("p-gone-own", "private_no_cvr", person, person_place),
            gone("p-gone-no-ref", "private_no_cvr", person, person_place, role="stps"),
            gone("p-gone-stps", "private_no_cvr", person, person_place, **stps(person_place)),
            again("p-again-own", "private_no_cvr", person, person_place),
            again("p-again-stps", "private_no_cvr", person, person_place, **stps(person_place)),
            changed("p-unit-stps", "private_no_cvr", person, person_place, **stps(person_place)),
            *life("municipal", town, town_place, PHYSIOS, 4),
            changed("m-unit-own", "municipal", town, town_place),
            gone("m-gone-own", "municipal", town, town_place),
            gone("m-gone-stps", "municipal", town, town_place, **stps(town_place)),
            *life("state", state, state_place, DOCTORS[:1], 1),
            changed("s-unit-own", "state", state, state_place),
            changed("s-unit-sds", "state", state, state_place, role="sds"),
            company_registered("nb-company", "private_no_cvr", nobill),
            unit_added("nb-unit", "private_no_cvr", nobill, nobill_place, PHYSIOS[:1]),
            information(
                "information_added",
                "nb-info",
                "private_no_cvr",
                nobill,
                nobill_place,
                5,
                fee_email=None,
            ),
            company_registered("c-company", "private_cvr", care),
            unit_added("c-unit", "private_cvr", care, care_place, [], **care_unit),
            event(
                "information_added",
                "c-info",
                "private_cvr",
                care,
                sor_id=care_place,
            ),
            unit_added("b-unit", "private_cvr", care, bare_place, []),
            event("information_added", "b-info", "private_cvr", care, sor_id=bare_place),
        ],
    )
    email = "rule.change_by_email_to_stps"
    assert outcome == {
        **{f"{p}-{s}": None for p in (person_place, town_place, state_place) for s in ("company", "unit", "info")},
        "p-unit-own": email,
        "p-gone-own": email,
        "p-gone-no-ref": "rule.reference_number_does_not_match",
        "p-gone-stps": None,
        "p-again-own": email,
        "p-again-stps": None,
        "p-unit-stps": None,
        "m-unit-own": email,
        "m-gone-own": email,
        "m-gone-stps": None,
        "s-unit-own": "rule.sor_changes_through_sds",
        "s-unit-sds": None,
        "nb-company": None,
        "nb-unit": None,
        "nb-info": "rule.no_invoice_channel_add_billing_information",
        "c-company": None,
        "c-unit": None,
        "c-info": None,
        "b-unit": None,
        "b-info": "rule.category_needed_for_health_treatment",
    }  # fmt: skip
    register = Register(make_engine(database_url))
    try:
        states = {r.sor_id: r.state for r in await _rows(register, pt.states)}
        versions = {r.sor_id: r for r in await _rows(register, pt.information)}
        fees = {(r.sor_id, r.year): r for r in await _rows(register, pt.fees)}
    finally:
        await register.close()
    assert states[person_place] == "REGISTERED" and states[town_place] == "DEREGISTERED"
    assert states[care_place] == "REGISTERED" and states[bare_place] == "SOR_ONLY"
    assert states[nobill_place] == "SOR_ONLY"
    assert versions[care_place].category is None
    # spec § 1: units delivering only §§ 83-87 care pay no fee (stated for 2018-2024)
    assert (fees[care_place, 2024].band, fees[care_place, 2024].amount) == ("fee_free", 0)


# -- Issue 29 point 5: registration deadlines as alerts that fire on time -------------------------------


async def test_a_place_unregistered_when_its_treatment_start_passes_is_alerted_by_the_timer_once(
    database_url: str,
) -> None:
    """Issue 29 point 5, RBT § 1 stk. 3 (register before treatment starts): a unit added on its start
    day and a place registered on its start day are not late; the watch raises
    `treatment_before_registration` for the unregistered one as soon as the start day has passed
    (Copenhagen), not when its next event comes; once, even with two watches at the same time, after
    a restart and when the late registration comes. The alert is kept in the outbox with the mark."""
    from sinks.tables import outbox
    from streams.outputs import Outputs
    from streams.place_watch import raise_unregistered_starts

    key, late, on_time = cvr(46), sor(900), sor(901)
    names = TopicNames("p.")
    config = ApplyConfig("places", 60, b"k" * 32)
    register = Register(make_engine(database_url))
    pipeline = Pipeline(register, names, config)
    await pipeline.start()
    offsets = iter(range(100))

    async def send(message: Message) -> tuple[str | None, list[dict[str, Any]]]:
        source = Source(names(REGISTRATIONS), 0, next(offsets), message[0], as_json(message[1]), 0)
        item = decode(source, REGISTRATIONS)
        assert not isinstance(item, Rejected), item.reason
        result = await pipeline.run([item], [], {})
        refused = [
            dict(o.headers or ())["reghub-reason"].decode()
            for o in result.outputs
            if o.topic == names(DEAD_LETTER)
        ]
        alerts = [orjson.loads(o.value) for o in result.outputs if o.topic == names(PLACE_ALERTS)]
        return (refused[0] if refused else None), alerts

    kept: list[int] = []

    async def watch(at: str) -> list[dict[str, Any]]:
        now = datetime.fromisoformat(at)
        row, alerts = await raise_unregistered_starts(register, Outputs(names, b"k" * 32, now), now)
        kept.extend([row] if row is not None else [])
        return [orjson.loads(a.value) for a in alerts]

    try:
        assert await send(company_registered("w-company", "private_cvr", key)) == (None, [])
        on_start_day = {"sent_at": "2024-03-05T09:00:00+01:00", "treatment_starts_on": "2024-03-05"}
        assert await send(
            unit_added("w-late-unit", "private_cvr", key, late, PHYSIOS[:1], **on_start_day)
        ) == (None, [])
        ahead = {"sent_at": "2024-03-04T09:00:00+01:00", "treatment_starts_on": "2024-03-05"}
        assert await send(
            unit_added("w-ok-unit", "private_cvr", key, on_time, PHYSIOS[:1], **ahead)
        ) == (None, [])
        registered_that_day = information(
            "information_added",
            "w-ok-info",
            "private_cvr",
            key,
            on_time,
            5,
            sent_at="2024-03-05T16:00:00+01:00",
        )
        assert await send(registered_that_day) == (None, [])

        assert await watch("2024-03-05T23:59:00+01:00") == []  # the start day has not passed
        ticks = ["2024-03-06T00:01:00+01:00"] * (2 if "postgresql" in database_url else 1)
        raised = [a for alerts in await asyncio.gather(*map(watch, ticks)) for a in alerts]
        assert [(a["kind"], a["sor_id"], a["company"], a["days"]) for a in raised] == [
            ("treatment_before_registration", late, key, 1)
        ]
        assert await watch("2024-03-06T00:02:00+01:00") == []  # a restart, the next tick
        assert await watch("2024-03-09T12:00:00+01:00") == []
        late_registration = information(
            "information_added",
            "w-late-info",
            "private_cvr",
            key,
            late,
            5,
            sent_at="2024-03-08T10:00:00+01:00",
        )
        assert await send(late_registration) == (None, [])  # alerted already: not a second time
        states = {r.sor_id: r for r in await _rows(register, pt.states)}
        assert states[late].state == "REGISTERED" and states[late].start_alerted_at is not None
        assert states[on_time].start_alerted_at is None
        assert [(r.id, r.records) for r in await _rows(register, outbox) if r.id in kept] == [
            (kept[0], 1)
        ]  # the one alert, in the outbox, committed with the mark
    finally:
        await register.close()


async def test_the_worker_wires_the_treatment_start_watch(
    settings: Settings, register: Register
) -> None:
    """Issue 29 point 5: the worker's faust app has the timer, and its tick in a running worker
    publishes the alert on stps.alerts.v1 (a unit added before its start, unregistered since)."""
    from streams.app import create_app, watch_treatment_starts

    key, place = cvr(47), sor(902)
    await _run(
        settings,
        register,
        [
            company_registered("ww-company", "private_cvr", key),
            unit_added(
                "ww-unit",
                "private_cvr",
                key,
                place,
                PHYSIOS[:1],
                sent_at="2024-03-01T09:00:00+01:00",
                treatment_starts_on="2024-03-05",
            ),
        ],
    )
    async with running_worker(settings, register) as processor:
        app = create_app(
            processor,
            app_id=f"{settings.consumer_group}-wiring",
            bootstrap=settings.kafka_bootstrap,
            web_port=6099,  # never opened: the app is built, not started
            session_timeout_ms=6000,
        )
        assert "watch_place_starts" in {t.__name__ for t in app._app_tasks}
        assert await watch_treatment_starts(processor) == 1
        assert await watch_treatment_starts(processor) == 0
    [alert] = await _alerts(settings, 1)
    assert (alert["kind"], alert["sor_id"], alert["company"]) == (
        "treatment_before_registration",
        place,
        key,
    )
