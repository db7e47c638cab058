"""`reghub schemas export` and `reghub schemas check`: one JSON Schema file per topic, for partners who
produce or consume, and the check of the code's schemas against the released ones.

The released schemas are kept in the repository (`schemas/released/`, written by `reghub schemas export
schemas/released` when a topic version is released); `schemas.compatibility` says what would break a
partner that has them. What the hub writes is published open (no `additionalProperties: false`): its
consumers ignore fields and values they do not know, so adding one is no break. What the hub reads is
closed: it refuses unknown fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.compatibility import Direction, breaking_changes
from schemas.decisions import SettlementStatement
from streams.topics import ALL, INPUTS, TopicSpec

RELEASED = Path(__file__).resolve().parents[1] / "schemas" / "released"
"""The released schemas, one `<topic>.schema.json` per topic version."""


def direction(spec: TopicSpec) -> Direction:
    """`backward` for a topic partners write (an unchanged producer must still be read), `forward`
    for one the hub writes (an unchanged consumer must still read it)."""
    return "backward" if spec in INPUTS else "forward"


def _opened(node: Any) -> Any:
    """`node` without `additionalProperties: false` anywhere (an output's consumers ignore extras)."""
    if isinstance(node, dict):
        return {
            k: _opened(v)
            for k, v in node.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_opened(v) for v in node]
    return node


def topic_schema(spec: TopicSpec) -> dict[str, Any]:
    """The JSON Schema of `spec`'s values as partners get it (`spec.schema` must not be None)."""
    assert spec.schema is not None
    schema = spec.schema.model_json_schema()
    schema["$id"] = f"urn:reghub:{spec.base}"
    schema["x-topic"] = {"name": spec.base, "key": spec.key, "sender": spec.sender}
    if spec.base == "ctr.decisions.v1":
        schema = {
            "$id": schema["$id"],
            "x-topic": schema["x-topic"],
            "oneOf": [schema, SettlementStatement.model_json_schema()],
        }
    schema["x-compatibility"] = direction(spec)
    return schema if spec in INPUTS else _opened(schema)


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in ALL:
        if spec.schema is None:
            continue
        path = directory / f"{spec.base}.schema.json"
        path.write_text(json.dumps(topic_schema(spec), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def check_released(directory: Path = RELEASED) -> dict[str, list[str]]:
    """Per topic, what breaks a partner that has its released schema in `directory`; a topic with no
    released schema yet is named with the command that releases it. Empty when all is well."""
    problems: dict[str, list[str]] = {}
    for spec in ALL:
        if spec.schema is None:
            continue
        path = directory / f"{spec.base}.schema.json"
        if not path.is_file():
            problems[spec.base] = [f"not released: run `reghub schemas export {directory}`"]
            continue
        released = json.loads(path.read_text())
        breaks = breaking_changes(released, topic_schema(spec), direction(spec))
        if breaks:
            problems[spec.base] = breaks
    return problems
