"""Hostile input for the fault campaign: malformed and adversarial records for every input topic.

Drawn with hypothesis strategies derived from the wire schemas: each input topic's model
(`streams.topics.INPUTS`, `schemas/`) gives its fields, their JSON types, formats, enums and
whether they are required (`model_json_schema()`); a valid document of the topic is drawn, then one
field (or the whole record) is broken in one of these ways:

| kind | what |
|---|---|
| `missing` | a field removed (an optional one may leave the message valid) |
| `extra` | an unknown field added at the top or inside a nested object |
| `wrong_type` | a field's value replaced by JSON of another type |
| `edge` | a value of the field's type at or past its edge (dates that don't exist, 2**63, "", 65 characters, an enum's cousin) |
| `huge_string` | a string field of 10,000-150,000 characters |
| `huge_int` | an integer field of 20-5,000 digits, or just past the signed 64-bit range |
| `deep` | a field nested 100-100,000 arrays or objects deep |
| `invalid_utf8` | bytes that are not UTF-8 inside a string (overlong, lone surrogate, truncated, 0xFF) |
| `escapes` | a JSON escape the database cannot store: NUL (`\\u0000`) or a lone surrogate (`\\ud800`) |
| `wrong_key` | a valid value under a wrong record key (another person, none, empty, not UTF-8) |
| `wrong_topic` | a valid message of another input topic |
| `non_json` | bytes that are not JSON: random, truncated, trailing garbage, NaN, single quotes |
| `empty` | a tombstone (no value), `b""`, whitespace, `null`, `{}`, `[]`, `""`, `0` |
| `wrong_shape` | JSON of the wrong top-level type (an array of the document, a number, a string) |

`generate(count, seed)` starts with the `explicit` records (like hypothesis' `@example`: values the
schemas let through that sit at the edge of what PostgreSQL, the rules or the JSON encoder take, e.g.
an amount of 2**63) and draws the rest reproducibly: hypothesis runs a collecting test (`@given` with
`@seed`, generate phase only, no example database) and keeps what it drew, in batches of 50 per
example because hypothesis' per-example overhead dominates otherwise (about 1 ms a record).

The ids these documents carry avoid runs of ten digits (an id must not look like a CPR number) and
start with `fz`, so they never collide with the synthetic reports of the other scenarios.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from reghub.synthetic import p_number
from rules.treatment_places.identifiers import CVR_WEIGHTS, sor_id
from streams.topics import (
    CORRECTIONS,
    DECISIONS_MADE,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    INPUTS,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    PERSON_EVENTS,
    REGISTRATIONS,
    SUBSIDY_SCALES,
    TREATMENT_RELATIONS,
    TopicSpec,
)

# -- documents and their bytes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes put into a document's JSON as they are: huge numbers, deep nesting, broken strings."""

    data: bytes


def dump(value: Any) -> bytes:
    """JSON bytes of a document that may hold `Raw` pieces (everything else through orjson)."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, dict):
        return (
            b"{" + b",".join(orjson.dumps(str(k)) + b":" + dump(v) for k, v in value.items()) + b"}"
        )
    if isinstance(value, list | tuple):
        return b"[" + b",".join(dump(v) for v in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value).encode()
    return orjson.dumps(value)


@dataclass(frozen=True, slots=True)
class Hostile:
    """One record to produce: its topic, key and value (None: a tombstone), and how it was broken."""

    spec: TopicSpec
    key: bytes | None
    value: bytes | None
    kind: str


# -- the fields of a topic, from its JSON Schema ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A leaf of a topic's schema: where it is in a document and what the schema says it holds."""

    path: tuple[str | int, ...]
    types: frozenset[
        str
    ]  # JSON Schema types: string, integer, number, boolean, null, object, array
    format: str | None
    enum: tuple[Any, ...]
    required: bool


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else schema


def _alternatives(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return [_resolve(s, defs) for s in schema["anyOf"]]
    return [schema]


def fields_of(model: type[BaseModel]) -> list[FieldInfo]:
    """Every leaf of the model's JSON Schema (arrays of objects through their first element)."""
    top = model.model_json_schema()
    defs = top.get("$defs", {})
    found: list[FieldInfo] = []

    def walk(schema: dict[str, Any], path: tuple[str | int, ...]) -> None:
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            where = (*path, name)
            alts = _alternatives(prop, defs)
            types = frozenset(a.get("type", "any") for a in alts)
            fmt = next((a["format"] for a in alts if "format" in a), None)
            enum = tuple(
                v for a in alts for v in a.get("enum", ([a["const"]] if "const" in a else []))
            )
            found.append(FieldInfo(where, types, fmt, enum, name in required))
            for a in alts:
                if a.get("type") == "object" and "properties" in a:
                    walk(a, where)
                elif a.get("type") == "array":
                    items = _resolve(a.get("items", {}), defs)
                    if items.get("type") == "object":
                        walk(items, (*where, 0))

    if "properties" not in top and top.get("oneOf"):
        # a union of events (stps.registrations.v1): its first member, the kind VALID draws
        walk(_resolve(top["oneOf"][0], defs), ())
    else:
        walk(top, ())
    return found


# -- valid documents, one strategy per input topic -------------------------------------------------

PERSONS = 400
"""Fuzz persons (fictitious substitute ids): few enough that valid messages meet each other."""

_P_NUMBERS = [p_number(i) for i in range(1, 6)]
_MUNICIPALITIES = (101, 147, 151, 461, 751, 851)


def _person(i: int) -> dict[str, str]:
    i %= PERSONS
    return {"key": f"4208{i:06d}", "birth_date": f"19{40 + i % 60:02d}-0{1 + i % 9}-1{i % 9}"}


def _day(i: int) -> str:
    """A day of 2024 (whose scale the register has)."""
    i %= 336
    return f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}"


def _moment(i: int) -> str:
    return f"{_day(i)}T10:{i % 60:02d}:00+01:00"


def _dispensing(n: int, prices: list[int]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "report_id": f"fzr-{n:x}",
        "pharmacy_number": ("12300", "10700", "11400")[n % 3],
        "pharmacy_site_p_number": _P_NUMBERS[n % len(_P_NUMBERS)],
        "dispensing_id": f"fzd-{n:x}",
        "ordination_id": f"0{1 + n % 9}",
        "paid_or_invoiced_at": _moment(n >> 3),
        "person": _person(n >> 5),
        "lines": [
            {"drug_id": f"{(n + p) % 99_999:06d}", "reimbursement_price": p, "actual_price": p}
            for p in prices
        ],
    }
    if n % 7 == 0:
        doc["granted_subsidy"] = prices[0] // 2
    if n % 11 == 0:
        doc["lines"][0]["generally_reimbursed"] = False
    return doc


def _grant(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzg-{n:x}",
        "sent_at": _moment(n),
        "sender": {"user": "case-worker-7"},
        "action": ("enter", "change", "end")[n % 3],
        "grant_id": f"fzgi-{n % 1000:x}",
        "kind": ("s145_single", "s151_increased")[n % 2],
        "drug_id": f"{n % 99_999:06d}",
        "valid_from": "2024-01-01",
        "valid_to": ("2024-06-30", "2024-12-31")[n % 2],
        "person": _person(n >> 4),
    }


def _municipal(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzm-{n:x}",
        "sender": {"municipality_code": _MUNICIPALITIES[n % 6], "user": "sagsbehandler"},
        "decided_at": _moment(n),
        "kind": "health_supplement",
        "action": ("grant", "change")[n % 2],
        "decision_id": f"fzmd-{n % 1000:x}",
        "supplement_percentage": ("50", "85", "100", "32.5")[n % 4],
        "valid_from": "2024-01-01",
        "person": _person(n >> 4),
    }


def _deferral(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fza-{n:x}",
        "sent_at": _moment(n),
        "pharmacy_number": "12300",
        "action": "entered",
        "agreement_id": f"fzag-{n:x}",
        "date": _day(n),
        "monthly_rate": 1 + n % 50_000,
        "rates": 1 + n % 12,
        "person": _person(n >> 4),
    }


def _correction(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzc-{n:x}",
        "sent_at": _moment(n),
        "sender": {"ordered_by": "agency", "reported_by": "lmst-user-1"},
        "action": "balancing",
        "amount": (n % 100_000 - 50_000) or 1,
        "person": _person(n >> 4),
    }


def _payment(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzy-{n:x}",
        "pharmacy_number": ("12300", "10700", "11400")[n % 3],
        "dispensing_id": f"fzd-{n:x}",
        "paid_at": _moment(n),
        "person": _person(n >> 4),
    }


def _decision_made(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzn-{n:x}",
        "sender": {"municipality_code": _MUNICIPALITIES[n % 6], "user": "sagsbehandler"},
        "decision_id": f"fzmd-{n % 1000:x}",
        "decided_at": _moment(n),
        "person": _person(n >> 4),
    }


_CVRS = tuple(
    str(body) + str(check)
    for body in range(2_000_000, 2_000_200)
    if (
        check := (11 - sum(int(d) * w for d, w in zip(str(body), CVR_WEIGHTS, strict=False)) % 11)
        % 11
    )
    < 10
)


def _registration(n: int) -> dict[str, Any]:
    """A company registered through the form of a private company with a CVR number."""
    return {
        "event": "company_registered",
        "message_id": f"fzt-{n:x}",
        "sent_at": _moment(n),
        "form": "private_cvr",
        "filer": {"role": "company", "user": "fuzz"},
        "company": {"cvr": _CVRS[n % len(_CVRS)]},
        "name": f"Klinik {n % 1000}",
        "address": {"street": "Nørregade 1", "postal_code": "1165", "city": "København K"},
    }


def _person_event(n: int) -> dict[str, Any]:
    """A death or a custody: valid whatever the register holds. Renumberings change which person a
    report belongs to, which the campaign's count of reports per person cannot follow; they have
    tests of their own (tests/test_person_identity.py, tests/test_renumbering_two_workers.py)."""
    doc: dict[str, Any] = {
        "message_id": f"fzp-{n:x}",
        "sent_at": "2026-11-23T12:00:00+01:00",
        "sender": {"source": "cpr_register"},
        "person": _person(n >> 4),
    }
    if n % 2:
        return {**doc, "event": "death", "died_on": f"2025-{1 + n % 12:02d}-01"}
    return {**doc, "event": "custody", "parent": _person((n >> 4) + 1), "valid_from": "2024-01-01"}


def _treatment_relation(n: int) -> dict[str, Any]:
    """A doctor's relation to a patient at a place, started on 1 January 2024 or ended on a later day:
    valid whatever the register holds."""
    doc: dict[str, Any] = {
        "message_id": f"fzq-{n:x}",
        "sent_at": _moment(n),
        "sender": {"system": "fuzz-ehr"},
        "person": _person(n >> 4),
        "authorisation_id": f"{n % 0x100000:05X}",
        "sor_id": sor_id(f"{100 + n % 900}"),
        "valid_from": "2024-01-01",
    }
    return {**doc, "valid_to": _day(n)} if n % 2 else doc


def _scale(n: int) -> dict[str, Any]:
    return {
        "message_id": f"fzs-{n:x}",
        "effective_from": f"{2031 + n % 69}-01-01",  # years no report of the campaign is dated in
        "t1": 110_000,
        "t2": 184_500,
        "t3": 400_000,
        "t4": 2_190_000,
        "t4_child": 2_679_700,
        "own_payment_cap": 469_625,
        "source": "fuzz scale",
    }


_n = st.integers(0, 2**32 - 1)
VALID: dict[TopicSpec, st.SearchStrategy[dict[str, Any]]] = {
    DISPENSINGS: st.builds(
        _dispensing, _n, st.lists(st.integers(0, 2_000_000), min_size=1, max_size=3)
    ),
    INDIVIDUAL_GRANTS: st.builds(_grant, _n),
    MUNICIPAL_GRANTS: st.builds(_municipal, _n),
    DEFERRALS: st.builds(_deferral, _n),
    CORRECTIONS: st.builds(_correction, _n),
    SUBSIDY_SCALES: st.builds(_scale, _n),
    PERSON_EVENTS: st.builds(_person_event, _n),
    TREATMENT_RELATIONS: st.builds(_treatment_relation, _n),
    PAYMENTS: st.builds(_payment, _n),
    DECISIONS_MADE: st.builds(_decision_made, _n),
    REGISTRATIONS: st.builds(_registration, _n),
}
"""A valid document per input topic, drawn; the values derive from the drawn numbers."""


def record_key(spec: TopicSpec, doc: Any) -> bytes | None:
    """The key a document travels under on its topic: the person key, or a scale's date."""
    if not isinstance(doc, dict):
        return None
    if spec is SUBSIDY_SCALES:
        value = doc.get("effective_from")
        return value.encode() if isinstance(value, str) else None
    if spec is REGISTRATIONS:
        company = doc.get("company")
        if isinstance(company, dict):
            key = company.get("cvr") or company.get("registrant_id")
            return key.encode() if isinstance(key, str) else None
        return None
    person = doc.get("person")
    if isinstance(person, dict) and isinstance(person.get("key"), str):
        return person["key"].encode()
    return None


# -- what breaks a document ------------------------------------------------------------------------

_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

_BAD_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80")
_ESCAPES = (b"\\u0000", b"\\ud800", b"\\udfff", b"a\\u0000b", b"\\ud83d")
_EMPTY: tuple[bytes | None, ...] = (None, b"", b" ", b"\n\t", b"null", b"{}", b"[]", b'""', b"0")
_EDGE_STRINGS = ("", " ", "x" * 65, "x" * 501, "\u202e", "ø", "😀", "0" * 10, "-", "..", "NaN")
_EDGE_INTS = (-1, 0, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64)
_EDGE_DATES = (
    "2024-02-30",
    "2023-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2024-13-01",
    "24-01-01",
    "2024-1-1",
    "2024-01-01T00:00:00",
    "",
)
_EDGE_MOMENTS = (
    "2024-01-01T00:00:00",  # no offset: not aware
    "2024-01-01",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+00:00",
    "2024-01-01T25:00:00+01:00",
    "2024-03-31T02:30:00+01:00",
    "2024-01-01T10:00:00+25:00",
    "1970-01-01T00:00:00Z",
    "2024-01-01T10:00:00.123456789+01:00",
)


def _get(doc: Any, path: tuple[str | int, ...]) -> tuple[Any, str | int] | None:
    """The container holding `path` in `doc` and the last step, or None when it is not there."""
    node = doc
    for step in path[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or len(node) <= step:
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    last = path[-1]
    if isinstance(last, int):
        return (node, last) if isinstance(node, list) and len(node) > last else None
    return (node, last) if isinstance(node, dict) else None


def _put(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    where = _get(doc, path)
    if where is None:  # the field's parent is absent (an optional object): break the top instead
        doc[str(path[0])] = value
        return
    container, last = where
    container[last] = value


def _drop(doc: Any, path: tuple[str | int, ...]) -> None:
    where = _get(doc, path)
    if where is not None and isinstance(where[0], dict):
        where[0].pop(where[1], None)


def _edge_value(f: FieldInfo, pick: int, other: Any) -> Any:
    """A value the field's schema type allows in JSON but that is at or past what the field means."""
    if f.enum:
        cousins = [str(v).upper() for v in f.enum if isinstance(v, str)] + ["", "other", 2]
        return cousins[pick % len(cousins)]
    if f.format == "date-time":
        return _EDGE_MOMENTS[pick % len(_EDGE_MOMENTS)]
    if f.format == "date":
        return _EDGE_DATES[pick % len(_EDGE_DATES)]
    if "integer" in f.types:
        return _EDGE_INTS[pick % len(_EDGE_INTS)]
    if "boolean" in f.types:
        return (0, 1, "true", "false", None)[pick % 5]
    if "string" in f.types:
        return _EDGE_STRINGS[pick % len(_EDGE_STRINGS)]
    return other


def _wrong_type(f: FieldInfo, value: Any) -> Any:
    """`value` (any JSON) if its type is not one the field takes, else a value of another type."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    t = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    t = t or kind.get(type(value), "any")
    if t not in f.types and not (t == "integer" and "number" in f.types):
        return value
    for candidate in ([value], {"v": value}, "1", 1.5, True, None):
        c = (
            "array"
            if isinstance(candidate, list)
            else "object"
            if isinstance(candidate, dict)
            else None
        )
        c = c or kind[type(candidate)]
        if c not in f.types:
            return candidate
    return [value]


def _nested(depth: int, as_object: bool) -> Raw:
    if as_object:
        return Raw(b'{"a":' * depth + b"1" + b"}" * depth)
    return Raw(b"[" * depth + b"]" * depth)


def _break(
    spec: TopicSpec, doc: dict[str, Any], kind: str, f: FieldInfo, n: int, other: Any
) -> tuple[bytes | None, bytes | None]:
    """(key, value) of `doc` broken by `kind` at field `f`; `n` and `other` are drawn choices."""
    key = record_key(spec, doc)
    if kind == "missing":
        _drop(doc, f.path)
    elif kind == "extra":
        where = _get(doc, f.path)
        target = where[0] if where is not None and isinstance(where[0], dict) else doc
        target[f"unexpected_{n % 7}"] = other
    elif kind == "wrong_type":
        _put(doc, f.path, _wrong_type(f, other))
    elif kind == "edge":
        _put(doc, f.path, _edge_value(f, n, other))
    elif kind == "huge_string":
        _put(doc, f.path, "Ø" * (10_000 + n % 140_000) if n % 2 else "x" * (10_000 + n % 140_000))
    elif kind == "huge_int":
        digits = 20 + n % 5_000 if n % 3 else 19 + n % 3
        _put(doc, f.path, Raw(("-" if n % 5 == 0 else "").encode() + b"9" * digits))
    elif kind == "deep":
        depth = 100_000 if n % 97 == 0 else 100 + n % 20_000
        _put(doc, f.path, _nested(depth, n % 2 == 0))
    elif kind == "invalid_utf8":
        bad = _BAD_UTF8[n % len(_BAD_UTF8)]
        _put(doc, f.path, Raw(b'"ab' + bad + b'cd"'))
    elif kind == "escapes":
        _put(doc, f.path, Raw(b'"x' + _ESCAPES[n % len(_ESCAPES)] + b'y"'))
    return key, dump(doc)


_KINDS_AT_A_FIELD = (
    "missing",
    "extra",
    "wrong_type",
    "edge",
    "huge_string",
    "huge_int",
    "deep",
    "invalid_utf8",
    "escapes",
)
# A draw picks a kind from this list: repetition is weight. Huge and deep values are rarer, so that
# 100,000 records stay around 100 MB on the broker.
_WEIGHTED_KINDS = (
    ("wrong_type",) * 14
    + ("missing",) * 12
    + ("extra",) * 10
    + ("edge",) * 14
    + ("huge_string",) * 1
    + ("huge_int",) * 3
    + ("deep",) * 2
    + ("invalid_utf8",) * 6
    + ("escapes",) * 6
    + ("wrong_key",) * 8
    + ("wrong_topic",) * 4
    + ("non_json",) * 8
    + ("empty",) * 4
    + ("wrong_shape",) * 4
)


def _non_json(doc: dict[str, Any], n: int, noise: bytes) -> bytes:
    good = dump(doc)
    forms = (
        noise,
        good[: max(1, n % len(good))],
        good + b"}",
        good + b" trailing",
        good.replace(b'"', b"'"),
        good.replace(b":", b"=", 1),
        b"NaN",
        b"{" + noise + b"}",
        b"\xef\xbb\xbf" + good,  # a byte-order mark
        good + b"\n" + good,
    )
    return forms[n % len(forms)]


def hostile(spec: TopicSpec) -> st.SearchStrategy[Hostile]:
    """A hostile record for `spec`'s topic, drawn from its valid documents and its schema's fields."""
    assert spec.schema is not None
    fields = fields_of(spec.schema)
    others = [s for s in INPUTS if s is not spec]

    @st.composite
    def one(draw: Any) -> Hostile:
        kind = draw(st.sampled_from(_WEIGHTED_KINDS))
        doc = draw(VALID[spec])
        n = draw(st.integers(0, 2**20))
        if kind in _KINDS_AT_A_FIELD:
            f = draw(st.sampled_from(fields))
            other = draw(_json) if kind in ("extra", "wrong_type", "edge") else None
            key, value = _break(spec, doc, kind, f, n, other)
            return Hostile(spec, key, value, kind)
        if kind == "wrong_key":
            choices: tuple[bytes | None, ...] = (
                None,
                b"",
                b"4208999999",
                b"\xff\xfe",
                b"0505601234",
                (record_key(spec, doc) or b"") + b" ",
                draw(st.binary(max_size=40)),
            )
            return Hostile(spec, choices[n % len(choices)], dump(doc), kind)
        if kind == "wrong_topic":
            theirs = others[n % len(others)]
            doc = draw(VALID[theirs])
            return Hostile(spec, record_key(theirs, doc), dump(doc), kind)
        if kind == "non_json":
            noise = draw(st.binary(min_size=1, max_size=200))
            return Hostile(spec, record_key(spec, doc), _non_json(doc, n, noise), kind)
        if kind == "empty":
            return Hostile(spec, record_key(spec, doc), _EMPTY[n % len(_EMPTY)], kind)
        shapes = (dump([doc]), b"42", dump("a document"), b"true", dump([]), dump({"0": doc}))
        return Hostile(spec, record_key(spec, doc), shapes[n % len(shapes)], "wrong_shape")

    return one()


def messages() -> st.SearchStrategy[Hostile]:
    """A hostile record for any input topic (dispensings, the busiest, three times as often)."""
    per_topic = {spec: hostile(spec) for spec in INPUTS}
    weighted = [DISPENSINGS, DISPENSINGS, *INPUTS]
    return st.sampled_from(weighted).flatmap(lambda spec: per_topic[spec])


def _at(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    _put(doc, path, value)
    return doc


def explicit() -> list[Hostile]:
    """Records every run includes first (like hypothesis' `@example`): values the schema lets through
    but that sit at the edge of what the database, the rules or the parser take."""
    out: list[Hostile] = []

    def add(spec: TopicSpec, doc: dict[str, Any], kind: str = "explicit") -> None:
        out.append(Hostile(spec, record_key(spec, doc), dump(doc), kind))

    line = ("lines", 0)
    for i, (path, value) in enumerate(
        [
            ((*line, "reimbursement_price"), 2**63),  # one past BIGINT, still an unsigned 64-bit
            ((*line, "actual_price"), 2**63),
            ((*line, "actual_price"), 2**64),  # past any 64-bit integer
            (("granted_subsidy",), 2**63),
            (("granted_subsidy",), -(2**63) - 1),
            ((*line, "reimbursement_price"), 2**62),  # fits BIGINT, overflows a saldo sum
            ((*line, "drug_id"), Raw(b'"a\\u0000b"')),  # NUL: PostgreSQL text refuses it
            ((*line, "drug_id"), Raw(b'"\\ud800"')),  # a lone surrogate
            (("dispensing_id",), Raw(b'"x\\u0000"')),
            (("lines",), _nested(100_000, as_object=False)),
            (("person",), _nested(100_000, as_object=True)),
            ((*line, "drug_id"), "Ø" * 150_000),
            (("paid_or_invoiced_at",), "9999-12-31T23:59:59+14:00"),
            (("paid_or_invoiced_at",), "0001-01-01T00:00:00-14:00"),
            (("person", "birth_date"), "0001-01-01"),
            (("person", "birth_date"), "9999-12-31"),
            (("lines",), [{"drug_id": "1", "reimbursement_price": 1, "actual_price": 1}] * 101),
        ]
    ):
        add(DISPENSINGS, _at(_dispensing(0xE000 + i, [12_345]), path, value))
    add(DEFERRALS, _at(_deferral(0xE100), ("monthly_rate",), 2**63))
    add(DEFERRALS, _at(_deferral(0xE101), ("date",), "9999-12-31"))
    add(CORRECTIONS, _at(_correction(0xE200), ("amount",), -(2**63) - 1))
    add(CORRECTIONS, _at(_correction(0xE201), ("amount",), 2**62))
    add(SUBSIDY_SCALES, _at(_scale(0xE300), ("t1",), 2**63))
    add(SUBSIDY_SCALES, _at(_scale(0xE301), ("source",), Raw(b'"\\u0000"')))
    for i, pct in enumerate(
        ("NaN", "Infinity", "-0", "1e999999999", "1e-999999999", "100.0000001")
    ):
        add(MUNICIPAL_GRANTS, _at(_municipal(0xE400 + i), ("supplement_percentage",), pct))
    add(INDIVIDUAL_GRANTS, _at(_grant(0xE500), ("valid_from",), "0001-01-01"))
    add(INDIVIDUAL_GRANTS, _at(_grant(0xE501), ("valid_to",), "9999-12-31"))
    return out


def generate(count: int, seed_value: int = 7, batch: int = 50) -> list[Hostile]:
    """`count` hostile records, the same ones for the same seed (and hypothesis version): the
    `explicit` ones first, then drawn ones."""
    out: list[Hostile] = explicit()[:count]
    strategy = st.lists(messages(), min_size=batch, max_size=batch)
    rounds = 0
    while len(out) < count:
        want = count - len(out)

        @seed(seed_value + rounds)
        @settings(
            max_examples=max(1, -(-want // batch)),
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            deadline=None,
            derandomize=False,
        )
        @given(strategy)
        def collect(drawn: list[Hostile]) -> None:
            if len(out) < count:
                out.extend(drawn[: count - len(out)])

        collect()
        rounds += 1
    return out


def iter_kinds(records: list[Hostile]) -> Iterator[tuple[str, int]]:
    """How many records of each kind, most common first."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.kind] = counts.get(r.kind, 0) + 1
    yield from sorted(counts.items(), key=lambda kv: -kv[1])


def shuffled(records: list[Hostile], seed_value: int) -> list[Hostile]:
    """The records in a seeded random order (hypothesis draws simple ones first)."""
    order = list(records)
    random.Random(seed_value).shuffle(order)
    return order
