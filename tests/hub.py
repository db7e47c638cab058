"""One register and the real pipeline in this process, without a broker: the tests' way to run messages
through the handlers batch by batch and look at the rows they leave."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sinks.register import Register, make_engine
from streams.pipeline import BatchResult, Pipeline
from streams.topics import TopicSpec
from tests.test_handler_atomicity import CONFIG, NAMES, decoded

Message = tuple[TopicSpec, dict[str, Any]]


class Hub:
    """One register and pipeline; `send` runs one batch and returns what came of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.register = Register(make_engine(url))
        self.pipeline = Pipeline(self.register, NAMES, CONFIG)
        self.offset = 0

    async def send(self, *messages: Message) -> BatchResult:
        items = []
        for spec, message in messages:
            items.append(decoded(spec, message, self.offset))
            self.offset += 1
        return await self.pipeline.run(items, [], {})

    async def rows(self, table: Any) -> list[Any]:
        async with self.register.engine.connect() as conn:
            return list((await conn.execute(select(table))).all())
