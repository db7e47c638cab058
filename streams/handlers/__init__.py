"""The registry: one handler per input topic, keyed by the topic, found in this package.

Each handler module names its topic (`TOPIC`, a `streams.topics.TopicSpec` of `INPUTS`) and its
`HANDLER`; a new topic's handler file is found here without a registry line. The order is `INPUTS`'s: the
order a batch applies the topics (reference data and grants first). tests/test_architecture.py proves
that every input topic has a handler and every handler an input topic.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from streams.handlers.base import Handler
from streams.topics import INPUTS, TopicSpec


def discover() -> dict[TopicSpec, Handler]:
    """Every handler module of this package, by its topic.

    Raises:
        ValueError: a module names a topic another module handles already, or a handler without a
            topic (or a topic without a handler).
    """
    found: dict[TopicSpec, Handler] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        topic = getattr(module, "TOPIC", None)
        handler = getattr(module, "HANDLER", None)
        if topic is None and handler is None:
            continue  # a helper module of the handlers
        if topic is None or handler is None:
            raise ValueError(f"{module.__name__}: a handler module needs TOPIC and HANDLER")
        if topic in found:
            raise ValueError(f"{module.__name__}: {topic.base} has a handler already")
        found[topic] = handler
    return found


_FOUND = discover()

HANDLERS: Mapping[TopicSpec, Handler] = {spec: _FOUND[spec] for spec in INPUTS if spec in _FOUND}
"""Input topics in the order a batch applies them (reference data and grants first)."""
