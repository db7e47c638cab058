"""A batch's lookups leave nothing of their values behind once they return, even while the cyclic garbage
collector does not run (the worker runs it seldom: `streams.processor`).

SQLAlchemy's statement objects refer to one another in cycles, freed only by that collector; values built
into a statement (a batch's ids, keys, its outbox payload) lived as long as those cycles, for many
batches. Each read here is given values no other code makes, the collector is kept off, and then every
object it finds unreachable is searched for them.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from sinks import obligations
from sinks.register import Register, worker_engine
from sinks.rows import Outgoing

pytestmark = pytest.mark.database


def _holds(container: object, marker: str) -> bool:
    """Whether a container refers directly to a string or bytes carrying `marker`, or to a list or
    tuple of such."""
    for ref in gc.get_referents(container):
        if isinstance(ref, str) and marker in ref:
            return True
        if isinstance(ref, bytes) and marker.encode() in ref:
            return True
        if isinstance(ref, (list, tuple)) and any(
            isinstance(x, (str, bytes))
            and marker.encode() in (x if isinstance(x, bytes) else x.encode())
            for x in ref
        ):
            return True
    return False


def _unreachable_holding(marker: str) -> list[str]:
    """The types of the unreachable objects that hold `marker` (collected now, kept for inspection)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sorted({type(o).__qualname__ for o in gc.garbage if _holds(o, marker)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_batchs_reads_and_outbox_row_keep_none_of_their_values_in_garbage(
    database_url: str, collector_off: None
) -> None:
    marker = f"probe{uuid.uuid4().hex[:12]}"
    keys = [f"{marker}{i:03d}" for i in range(200)]
    register = Register(worker_engine(database_url))
    try:
        async with register.unit_of_work(rollback=True) as uow:
            await uow.known_messages(("ctr.dispensings.v1", k) for k in keys)
            await uow.ctr.purchase_rows(keys)
            await uow.ctr.load_persons(keys)
            await uow.ctr.load_chains((k, date(2024, 1, 1)) for k in keys)
            await uow.ctr.load_histories(keys)
            await obligations.by_id(uow.conn, keys)
            outputs = [Outgoing("ctr.decisions.v1", k.encode(), k.encode() * 20) for k in keys]
            await uow.keep_outputs(outputs, datetime.now(UTC))
            del outputs
        del keys
        assert _unreachable_holding(marker) == []
    finally:
        await register.close()
