"""Running scenario cases: each case's events through its translators in order (`run_case`), many
cases at once against one hub, and the report (`main`: results, or with `check` a comparison with
each case's `expected` ending in `N passed, M failed`)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from reghub.scenarios.cases import ScenarioError, load_cases, refuse_unsupported
from reghub.scenarios.events import TRANSLATORS, CaseRun
from reghub.scenarios.hub import Hub, in_process, pipeline
from reghub.scenarios.results import compare


async def run_case(hub: Hub, case: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one scenario; returns its results in the shape of `expected`.

    Events are sent in the file's order (their arrival order), whatever their payment dates. Each `as`
    label (default "a") is a key of its own, fresh for this run; a purchase's `is_return_of` and a
    correction's `target` name an earlier event, whatever label it was sent under.

    Raises:
        ScenarioError: an event type the runner cannot send (nothing is sent then), or a setup
            event the hub rejected.
        TimeoutError: the hub did not answer a message within `hub.WAIT_SECONDS`.
    """
    refuse_unsupported(case["events"])
    run = await CaseRun.begin(hub, case)
    for fields in case["events"]:
        event = await run.arrive(fields)
        await TRANSLATORS[event.type](run, event)
    return run.results


async def main(paths: list[Path], *, check: bool, concurrency: int = 32, fast: bool = False) -> int:
    """Run (and with `check`, compare) every case; returns the exit code.

    `fast` runs them in this process without a broker (`InProcessHub`).
    """
    cases = load_cases(paths)
    limit = asyncio.Semaphore(concurrency)
    async with in_process() if fast else pipeline() as hub:

        async def one(case: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | str]:
            async with limit:
                try:
                    return case, await run_case(hub, case)
                except (ScenarioError, TimeoutError) as exc:
                    return case, f"{type(exc).__name__}: {exc}"

        done = await asyncio.gather(*(one(c) for c in cases))
    for note in sorted(hub.notes):
        print(note, file=sys.stderr)
    passed = failed = 0
    for case, results in done:
        if isinstance(results, str):
            failed += 1
            print(f"FAIL {case['id']}: {results}")
            continue
        if not check:
            print(json.dumps({"id": case["id"], "results": results}, ensure_ascii=False))
            passed += 1
            continue
        problems = compare(case.get("expected", []), results)
        if problems:
            failed += 1
            print(f"FAIL {case['id']}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"ok   {case['id']}")
    if check:
        print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
