"""`ctr.subsidy-scales.v1`: a § 146 subsidy scale loaded by LMST; reports parked for lack of it replay."""

from __future__ import annotations

from rules.subsidy import scale_problems
from schemas.scales import SubsidyScale
from sinks.rows import ScaleRow
from streams.decode import Decoded
from streams.effects import Effects, refused
from streams.handlers.base import BatchView, Context, Handler, rejection
from streams.topics import SUBSIDY_SCALES


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: SubsidyScale = d.message  # type: ignore[assignment]
    scale = m.to_scale()
    problems = scale_problems(scale)
    if problems:
        return refused(rejection(d, "; ".join(problems)))
    row = ScaleRow(
        scale.effective_from,
        scale.valid_to,
        scale.t1,
        scale.t2,
        scale.t3,
        scale.t4,
        scale.t4_child,
        scale.own_payment_cap,
        scale.source,
        ctx.now,
    )
    return Effects(outcome="applied", scales=((row, scale),))


TOPIC = SUBSIDY_SCALES

HANDLER = Handler(handle)
