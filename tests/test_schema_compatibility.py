"""The topics' released JSON Schemas (`schemas/released/`) still fit the code, and the checker
(`schemas.compatibility`) tells a breaking change from a harmless one, on hand-made pairs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from reghub.export import RELEASED, check_released, topic_schema
from schemas.compatibility import breaking_changes
from streams.topics import ALL, DISPENSINGS

REPO = Path(__file__).resolve().parents[1]


def test_every_topic_is_released_and_the_code_is_compatible_with_it() -> None:
    """Fails on a change that would break a partner's producer or consumer: make it under a new topic
    version (`.v2`) and release that with `reghub schemas export schemas/released`."""
    released = {p.name for p in RELEASED.glob("*.schema.json")}
    assert {f"{s.base}.schema.json" for s in ALL if s.schema is not None} <= released
    assert check_released() == {}


# --- hand-made pairs: a partner's message with fields a, b (closed, as the hub reads inputs) ---------


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: int | None = None
    kind: Literal["sale", "return"] = "sale"


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


class _NewOptional(_Message):
    c: str | None = None


class _NewRequired(_Message):
    c: str


class _BRequired(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: int
    kind: Literal["sale", "return"] = "sale"


class _WithoutB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    kind: Literal["sale", "return"] = "sale"


class _KindNarrowed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: int | None = None
    kind: Literal["sale"] = "sale"


class _KindWidened(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: int | None = None
    kind: Literal["sale", "return", "refund"] = "sale"


class _AShorter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=5)
    b: int | None = None
    kind: Literal["sale", "return"] = "sale"


class _ALonger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=40)
    b: int | None = None
    kind: Literal["sale", "return"] = "sale"


class _BString(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: str | None = None
    kind: Literal["sale", "return"] = "sale"


class _BNumber(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(max_length=10)
    b: float | None = None
    kind: Literal["sale", "return"] = "sale"


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price: int


class _LineWithDrug(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price: int
    drug: str


class _WithLines(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[_Line]


class _WithLinesDrug(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[_LineWithDrug]


@pytest.mark.parametrize(
    ("new", "broken"),
    [
        (_Message, []),
        (_NewOptional, []),
        (_ALonger, []),
        (_KindWidened, []),
        (_BNumber, []),  # an integer is a number
        (_NewRequired, ["c: newly required"]),
        (_BRequired, ["b: newly required", "b: type narrowed, ['null'] no longer read"]),
        (_WithoutB, ["b: removed (unknown fields are refused)"]),
        (_KindNarrowed, ["kind: values narrowed, 'return' no longer accepted"]),
        (_AShorter, ["a: string narrowed (maxLength 10 -> 5)"]),
        (_BString, ["b: type narrowed, ['integer'] no longer read"]),
    ],
)
def test_an_input_topic_must_still_read_what_producers_send(
    new: type[BaseModel], broken: list[str]
) -> None:
    assert breaking_changes(schema_of(_Message), schema_of(new), "backward") == broken


@pytest.mark.parametrize(
    ("new", "broken"),
    [
        (_Message, []),
        (_BRequired, []),  # consumers get b always now: more than they had
        (_AShorter, []),
        (_KindNarrowed, []),
        (_KindWidened, []),  # consumers ignore a value they do not know
        (_WithoutB, []),  # b was optional: consumers cannot rely on it
        (_NewOptional, ["c: added (unknown fields are refused)"]),  # the released one is closed
        (_ALonger, ["a: string widened (maxLength 10 -> 40)"]),
        (_BString, ["b: type widened, ['string'] no longer read"]),
    ],
)
def test_an_output_topic_must_still_be_read_by_consumers(
    new: type[BaseModel], broken: list[str]
) -> None:
    assert breaking_changes(schema_of(_Message), schema_of(new), "forward") == broken


def test_a_required_field_an_output_drops_breaks_its_consumers() -> None:
    assert breaking_changes(schema_of(_BRequired), schema_of(_Message), "forward") == [
        "b: made optional (a consumer relies on it)",
        "b: type widened, ['null'] no longer read",
    ]
    assert breaking_changes(schema_of(_BRequired), schema_of(_WithoutB), "forward") == [
        "b: removed (a consumer relies on it)"
    ]


def test_nested_models_behind_refs_are_compared_field_by_field() -> None:
    assert breaking_changes(schema_of(_WithLines), schema_of(_WithLinesDrug), "backward") == [
        "lines[].drug: newly required"
    ]
    assert breaking_changes(schema_of(_WithLinesDrug), schema_of(_WithLines), "backward") == [
        "lines[].drug: removed (unknown fields are refused)"
    ]


def test_a_new_required_field_on_dispensings_is_found_and_a_v2_is_not_checked_against_v1(
    tmp_path: Path,
) -> None:
    """The real dispensing schema: a released copy without `report_id` required stands for the code
    adding a required field; the check names it, `reghub schemas check` exits 1 naming it; the same
    code under `ctr.dispensings.v2` (no released schema of that version) is only asked to be released."""
    current = topic_schema(DISPENSINGS)
    released = copy.deepcopy(current)
    released["required"].remove("report_id")
    assert breaking_changes(released, current, "backward") == ["report_id: newly required"]

    for spec in ALL:
        if spec.schema is not None:
            (tmp_path / f"{spec.base}.schema.json").write_text(json.dumps(topic_schema(spec)))
    (tmp_path / "ctr.dispensings.v1.schema.json").write_text(json.dumps(released))
    done = subprocess.run(
        [sys.executable, "-m", "reghub", "schemas", "check", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stdout.splitlines() == ["ctr.dispensings.v1: report_id: newly required"]
    assert ".v2" in done.stderr

    (tmp_path / "ctr.dispensings.v1.schema.json").unlink()  # as if the code now had .v2
    assert check_released(tmp_path) == {
        "ctr.dispensings.v1": [f"not released: run `reghub schemas export {tmp_path}`"]
    }


def test_outputs_are_published_open_and_inputs_closed() -> None:
    released = json.loads((RELEASED / "ctr.alerts.v1.schema.json").read_text())
    assert '"additionalProperties": false' not in json.dumps(released)
    assert released["x-compatibility"] == "forward"
    dispensings = json.loads((RELEASED / "ctr.dispensings.v1.schema.json").read_text())
    assert dispensings["additionalProperties"] is False
    assert dispensings["x-compatibility"] == "backward"
