"""Whether a topic's new JSON Schema still works for the partners that have the released one.

Pure: two schemas (pydantic's `model_json_schema` output, `$ref`s into `$defs`) in, the breaking
changes out, each a line naming the field's path. Which side must keep working depends on who writes
the topic:

- an input topic (partners write, the hub reads) is checked **backward**: every message valid under the
  released schema must be valid under the new one, or a producer that has not changed is refused. A
  field newly required, a property removed where unknown ones are refused (`additionalProperties:
  false`), a type, an enum or a bound narrowed: each breaks.
- an output topic (the hub writes, partners read) is checked **forward**: every message the new schema
  allows must be valid under the released one, or a consumer that has not changed fails. A field it
  relied on removed or made optional, a type or a bound widened, a property added where the released
  schema refused unknown ones: each breaks. New enum values are not a break: consumers of the hub's
  topics are told to ignore a value they do not know (README, "Production").

A breaking change is made under a new topic version (`ctr.dispensings.v2`), beside the old one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

Direction = Literal["backward", "forward"]
Schema = Mapping[str, Any]

_JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
# (keyword, True when a larger value accepts more)
_BOUNDS = (
    ("maximum", True),
    ("exclusiveMaximum", True),
    ("maxLength", True),
    ("maxItems", True),
    ("minimum", False),
    ("exclusiveMinimum", False),
    ("minLength", False),
    ("minItems", False),
)


class _Side:
    """One schema and its `$defs`, to resolve `$ref`s in."""

    def __init__(self, root: Schema) -> None:
        self.defs: Mapping[str, Any] = root.get("$defs", {})

    def resolve(self, node: Schema) -> Schema:
        seen = 0
        while "$ref" in node and seen < 50:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            merged = {k: v for k, v in node.items() if k != "$ref"}
            node = {**self.defs.get(name, {}), **merged}
            seen += 1
        return node

    def branches(self, node: Schema) -> list[Schema]:
        """The alternatives of `node` (its `anyOf`/`oneOf`, flattened), each resolved."""
        node = self.resolve(node)
        options = node.get("anyOf") or node.get("oneOf")
        if not options:
            return [node]
        found: list[Schema] = []
        for option in options:
            found.extend(self.branches(option))
        return found


def _types(side: _Side, node: Schema) -> set[str]:
    """The JSON types `node` accepts (all of them when it says nothing); an integer is also a number."""
    found: set[str] = set()
    for branch in side.branches(node):
        if "const" in branch or "enum" in branch:
            values = [branch["const"]] if "const" in branch else list(branch["enum"])
            found |= {_type_of(v) for v in values}
            continue
        named = branch.get("type")
        if named is None:
            found |= set(_JSON_TYPES)
        else:
            found |= {named} if isinstance(named, str) else set(named)
    return found


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _values(side: _Side, node: Schema) -> set[str] | None:
    """The values `node` is limited to (as JSON text of each), None when not limited to a list."""
    found: set[str] = set()
    for branch in side.branches(node):
        if "const" in branch:
            found.add(repr(branch["const"]))
        elif "enum" in branch:
            found |= {repr(v) for v in branch["enum"]}
        elif branch.get("type") == "null":
            found.add(repr(None))
        else:
            return None
    return found


def _tighter(writer: Schema, reader: Schema, direction: Direction) -> Iterator[str]:
    """Bounds of the reader's branch tighter than the writer's, each named released -> current."""
    for keyword, larger_is_wider in _BOUNDS:
        wrote, reads = writer.get(keyword), reader.get(keyword)
        if reads is None:
            continue
        if wrote is None or (reads < wrote if larger_is_wider else reads > wrote):
            released, current = (wrote, reads) if direction == "backward" else (reads, wrote)
            yield f"{keyword} {released} -> {current}"
    if reader.get("pattern") is not None and reader.get("pattern") != writer.get("pattern"):
        yield "pattern changed"
    if reader.get("format") is not None and reader.get("format") != writer.get("format"):
        yield "format changed"


def _compare(
    reader: _Side, writer: _Side, r: Schema, w: Schema, path: str, direction: Direction
) -> Iterator[str]:
    """Breaks for a reader schema `r` that must accept every value of the writer schema `w`.

    Backward: the reader is the new schema, the writer the released one; forward: the other way round.
    """
    where = path or "(message)"
    read = _types(reader, r)
    wider = _types(writer, w) - read - ({"integer"} if "number" in read else set())
    if wider:
        verb = "narrowed" if direction == "backward" else "widened"
        yield f"{where}: type {verb}, {sorted(wider)} no longer read"
    r_values, w_values = _values(reader, r), _values(writer, w)
    if r_values is not None and (w_values is None or not w_values <= r_values):
        if direction == "backward":
            lost = "any value" if w_values is None else ", ".join(sorted(w_values - r_values))
            yield f"{where}: values narrowed, {lost} no longer accepted"
        elif w_values is None:
            yield f"{where}: values widened from a fixed list to any"
        # forward: new values of an output are for consumers to ignore (module docstring)
    r_branches, w_branches = reader.branches(r), writer.branches(w)
    r_objects = [b for b in r_branches if b.get("type") == "object" or "properties" in b]
    w_objects = [b for b in w_branches if b.get("type") == "object" or "properties" in b]
    for w_obj in w_objects:
        r_obj = _match(w_obj, r_objects)
        if r_obj is not None:
            yield from _compare_objects(reader, writer, r_obj, w_obj, path, direction)
    r_arrays = [b for b in r_branches if b.get("type") == "array"]
    w_arrays = [b for b in w_branches if b.get("type") == "array"]
    if r_arrays and w_arrays and "items" in r_arrays[0] and "items" in w_arrays[0]:
        r_items, w_items = r_arrays[0]["items"], w_arrays[0]["items"]
        yield from _compare(reader, writer, r_items, w_items, f"{path}[]", direction)
    for w_branch in w_branches:
        kind = w_branch.get("type")
        same = [b for b in r_branches if b.get("type") == kind and kind not in ("object", "null")]
        if kind is None or not same:
            continue
        tighter = list(_tighter(w_branch, same[0], direction))
        if tighter:
            verb = "narrowed" if direction == "backward" else "widened"
            yield f"{where}: {kind} {verb} ({'; '.join(tighter)})"


def _match(branch: Schema, candidates: list[Schema]) -> Schema | None:
    """The object branch of the other schema that is the same model: by title, else the only one."""
    titled = [c for c in candidates if c.get("title") and c.get("title") == branch.get("title")]
    if titled:
        return titled[0]
    return candidates[0] if len(candidates) == 1 else None


def _compare_objects(
    reader: _Side, writer: _Side, r: Schema, w: Schema, path: str, direction: Direction
) -> Iterator[str]:
    r_props: Mapping[str, Any] = r.get("properties", {})
    w_props: Mapping[str, Any] = w.get("properties", {})
    r_required, w_required = set(r.get("required", ())), set(w.get("required", ()))
    closed = r.get("additionalProperties") is False
    for name in sorted(r_required - w_required):
        field = f"{path}.{name}" if path else name
        if direction == "backward":
            yield f"{field}: newly required"
        else:
            gone = name not in w_props
            yield f"{field}: {'removed' if gone else 'made optional'} (a consumer relies on it)"
    for name in sorted(set(w_props) - set(r_props)):
        field = f"{path}.{name}" if path else name
        if closed:
            yield f"{field}: {'removed' if direction == 'backward' else 'added'} (unknown fields are refused)"
    for name in sorted(set(w_props) & set(r_props)):
        field = f"{path}.{name}" if path else name
        yield from _compare(reader, writer, r_props[name], w_props[name], field, direction)


def breaking_changes(released: Schema, current: Schema, direction: Direction) -> list[str]:
    """The changes from `released` to `current` that break a partner, one line each; empty when none.

    Args:
        released: the schema partners have (from the repository's released files).
        current: the schema the code has now.
        direction: `backward` for a topic partners write (the hub reads `current`), `forward` for one
            the hub writes (partners read with `released`).
    """
    new, old = _Side(current), _Side(released)
    if direction == "backward":
        return list(_compare(new, old, current, released, "", direction))
    return list(_compare(old, new, released, current, "", direction))
