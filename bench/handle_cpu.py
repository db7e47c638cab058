"""Handler CPU: the CPU time per dispensing report of the worker's handler path, without broker or database.

Run as `python -m bench.handle_cpu [-n 50000] [--persons 5000] [--batch 500] [--runs 3]`.

N synthetic reports (`reghub.synthetic`, as `bench.dispensing_throughput` produces them, in paid-time
order, persons repeating) are decoded, afresh in each run (`streams.decode.decode`, timed on its own:
the fetch step's CPU per report, before the handler path). Then, per run, they go
in batches of `--batch` through what the pipeline does per report between load and write: the
handler's `needs` and `history` checks (step 2's per-report part), then `handle` and `Batch.merge`
(`Pipeline._handle`), on a `Batch` over a `Loaded` that holds the persons as the batches before left
them (so periods, saldo and balancing carry on as in the register) and no obligations.

Printed: CPU µs per report (`time.process_time`, best of `--runs`), in total and per stage (needs,
handle, merge), and decoding's apart. Process CPU time, so a benchmark running on another core does not disturb it.
It is read per chunk of reports, never per report: a clock read costs about a microsecond on these
machines, and the three per report the bench used to take added 3-6 µs to its figure. Handle and
merge take turns report by report, so their chunk's CPU time is split by their shares of the wall
clock on one report in `SPLIT_SAMPLE`.
The garbage collector runs with the worker's settings (`streams.processor.Processor.start`: the objects
alive at the start frozen, a gen-0 threshold of 200,000): with Python's defaults it rescans the decoded
reports kept alive again and again, which doubled the decode figure without being the worker's cost.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from datetime import UTC, datetime, timedelta

from reghub import synthetic
from rules.scales import KNOWN_SCALES, ScaleBook
from rules.state import PersonState
from streams.batch import Batch, Loaded
from streams.decode import Decoded, Source, decode
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Context
from streams.outputs import Outputs
from streams.topics import DISPENSINGS, TopicNames

SPLIT_SAMPLE = 32
"""Handle and merge are timed apart on one report in this many (a clock read costs about 1 µs here)."""

CONFIG = ApplyConfig("bench", 60, b"bench-pseudonym-key-0123456789ab")


def records(n: int, persons: int, seed: int = 7) -> list[Source]:
    """N synthetic reports over 2024 for `persons` persons, as records of the dispensings topic."""
    rng = random.Random(seed)
    people = synthetic.persons(persons, rng)
    encoded = synthetic.encoded_reports(
        n, people, synthetic.pharmacies(), synthetic.DEMO_START, timedelta(days=360), seed=seed
    )
    topic = DISPENSINGS.base
    return [
        Source(topic, 0, offset, key, value, ts) for offset, (key, value, ts) in enumerate(encoded)
    ]


def decode_all(sources: list[Source]) -> list[Decoded]:
    """Each record decoded as the worker decodes it (`streams.decode.decode`)."""
    out = []
    for source in sources:
        d = decode(source, DISPENSINGS)
        assert isinstance(d, Decoded), d
        out.append(d)
    return out


def run(reports: list[Decoded], batch_size: int) -> dict[str, float]:
    """One pass of the reports through the handler path; CPU seconds per stage."""
    handler = HANDLERS[DISPENSINGS]
    assert handler.needs is not None and handler.history is not None
    scales = ScaleBook(KNOWN_SCALES)
    names = TopicNames()
    states: dict[str, PersonState] = {}
    spent = {"needs": 0.0, "handle": 0.0, "merge": 0.0}
    clock = time.process_time  # a system call: read per chunk, never per report
    # only to split the chunk's CPU time, read on every SPLIT_SAMPLE-th report
    wall = time.perf_counter_ns
    registered = 0
    for first in range(0, len(reports), batch_size):
        chunk = reports[first : first + batch_size]
        now = datetime.now(UTC)
        out = Outputs(names, CONFIG.pseudonym_secret, now)
        ctx = Context(now, CONFIG, out)
        loaded = Loaded(
            states={d.person_key: states[d.person_key] for d in chunk if d.person_key in states}
        )  # type: ignore[index]
        batch = Batch(loaded, scales, out)
        seen: dict[str, datetime] = {}
        started = clock()
        for d in chunk:
            handler.needs(d)
            handler.history(d, loaded.states.get(d.person_key or ""), seen)
        t1 = clock()
        handle_ns = merge_ns = 0
        for i, d in enumerate(chunk):
            if i % SPLIT_SAMPLE:
                batch.merge(d, handler.handle(batch, d, ctx), False)
                continue
            a = wall()
            fx = handler.handle(batch, d, ctx)
            b = wall()
            batch.merge(d, fx, False)
            merge_ns += wall() - b
            handle_ns += b - a
        both = clock() - t1
        spent["needs"] += t1 - started
        spent["handle"] += both * handle_ns / (handle_ns + merge_ns)
        spent["merge"] += both * merge_ns / (handle_ns + merge_ns)
        registered += batch.counts.get("registered", 0)
        states.update(batch.changes.persons)
    assert registered == len(reports), (registered, len(reports))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)  # as the worker (streams.processor.Processor.start)
    sources = records(args.n, args.persons)
    best: dict[str, float] | None = None
    decoding: list[float] = []
    for _ in range(args.runs):
        gc.collect()
        started = time.process_time()
        # decoded afresh each run: nothing a run worked out on a report carries to the next
        reports = decode_all(sources)
        decoding.append(time.process_time() - started)
        gc.collect()
        spent = run(reports, args.batch)
        if best is None or sum(spent.values()) < sum(best.values()):
            best = spent
    assert best is not None
    per = {k: v / args.n * 1e6 for k, v in best.items()}
    print(
        f"{args.n} reports, {args.persons} persons, batches of {args.batch}, best of {args.runs}: "
        f"{sum(per.values()):.1f} µs CPU per report "
        f"(needs {per['needs']:.1f}, handle {per['handle']:.1f}, merge {per['merge']:.1f}); "
        f"decode {min(decoding) / args.n * 1e6:.1f} µs per report (streams.decode.decode: parse, "
        f"validate, content hash, key check)"
    )


if __name__ == "__main__":
    main()
