"""`reghub schemas export`: one JSON Schema file per topic, for partners who produce or consume."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.decisions import SettlementStatement
from streams.topics import ALL


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in ALL:
        if spec.schema is None:
            continue
        schema = spec.schema.model_json_schema()
        schema["$id"] = f"urn:reghub:{spec.base}"
        schema["x-topic"] = {"name": spec.base, "key": spec.key, "sender": spec.sender}
        if spec.base == "ctr.decisions.v1":
            schema = {
                "$id": schema["$id"],
                "x-topic": schema["x-topic"],
                "oneOf": [schema, SettlementStatement.model_json_schema()],
            }
        path = directory / f"{spec.base}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
