"""The worker's Prometheus metrics, served at `/metrics` (prometheus-client's text format).

- `reghub_messages_in_total{topic}`: input records handled, valid or not;
- `reghub_outputs_total{topic}`: records published (decisions, dead letters, changes, alerts, …);
- `reghub_dead_letters_total{reason}`: dead letters by the kind of their reason (the part before `:`,
  e.g. `schema.missing`, `rule.return_of_unknown_report`: never a value, never a person);
- `reghub_batch_commit_seconds`: load, handle and write of one batch, one register transaction;
- `reghub_consumer_lag{topic,partition}`: records not yet committed, per assigned partition, at scrape;
- `reghub_obligations{state}`: reporting obligations by state (`rules.obligations`), refreshed by a timer;
- `reghub_outbox_unsent_records`, `reghub_outbox_oldest_unsent_seconds`: outputs committed and not yet
  published (the outbox backlog), refreshed by the same timer;
- `reghub_compliance_last_day{state}` and `reghub_compliance_last_day_timestamp_seconds`: the obligations
  of the last closed day (`streams.compliance`) by outcome (on_time, late, missing, resolved), over all
  reporters, and that day's start (UTC midnight) as a Unix time; refreshed by the same timer.

The register-wide gauges (obligations, outbox, compliance) are the same in every worker process: a
dashboard takes their `max` over the processes, never their sum.

One registry per worker process (not the library's global one), so that tests can run several.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sinks.ctr_store import CtrStore
from sinks.outbox import unsent_records
from sinks.rows import Outgoing

disable_created_metrics()  # no `*_created` series: a counter's start time is no figure to graph

CONTENT_TYPE = "text/plain; version=0.0.4"


class _Lag(Collector):
    def __init__(self, lag: Any) -> None:
        self.lag = lag

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "reghub_consumer_lag",
            "Records in an assigned partition not yet committed by this worker.",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(self.lag().items()):
            family.add_metric([topic, str(partition)], value)
        yield family


class Metrics:
    """The worker's metrics; `lag` returns {(topic, partition): records behind} when scraped."""

    def __init__(self, lag: Any = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "reghub_messages_in", "Input records handled.", ["topic"], registry=r
        )
        self.outputs = Counter("reghub_outputs", "Records published.", ["topic"], registry=r)
        self.dead_letters = Counter(
            "reghub_dead_letters", "Dead letters by kind of reason.", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "reghub_batch_commit_seconds",
            "One batch's register transaction: load, handle, write and commit.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.obligations = Gauge(
            "reghub_obligations", "Reporting obligations by state.", ["state"], registry=r
        )
        self.outbox_unsent = Gauge(
            "reghub_outbox_unsent_records",
            "Output records committed to the outbox and not yet published.",
            registry=r,
        )
        self.outbox_oldest = Gauge(
            "reghub_outbox_oldest_unsent_seconds",
            "Age of the oldest unsent outbox row; 0 when none is waiting.",
            registry=r,
        )
        self.compliance = Gauge(
            "reghub_compliance_last_day",
            "Obligations of the last closed day by outcome, over all reporters.",
            ["state"],
            registry=r,
        )
        self.compliance_day = Gauge(
            "reghub_compliance_last_day_timestamp_seconds",
            "The last closed day (its UTC midnight) as a Unix time.",
            registry=r,
        )
        r.register(_Lag(lag))

    def batch(
        self, records: Mapping[str, int], outputs: Sequence[Outgoing], seconds: float
    ) -> None:
        """One committed and published batch: records per input topic, its outputs, its time."""
        for topic, count in records.items():
            self.messages_in.labels(topic).inc(count)
        # counted here first: a labelled counter's increment takes a lock, and a batch has thousands
        per_topic: dict[str, int] = {}
        per_reason: dict[str, int] = {}
        for out in outputs:
            per_topic[out.topic] = per_topic.get(out.topic, 0) + 1
            reason = dict(out.headers).get("reghub-reason") if out.headers else None
            if reason is not None:
                kind = reason.decode().split(":", 1)[0]
                per_reason[kind] = per_reason.get(kind, 0) + 1
        for topic, count in per_topic.items():
            self.outputs.labels(topic).inc(count)
        for kind, count in per_reason.items():
            self.dead_letters.labels(kind).inc(count)
        self.batch_seconds.observe(seconds)

    def set_obligations(self, found: Mapping[str, int]) -> None:
        """The obligations-by-state gauge, from the counts the CTR store read
        (`sinks.ctr_store.CtrStore.obligations_by_state`)."""
        for state in (
            "open",
            "rejected_open",
            "reported",
            "on_time",
            "late",
            "missing",
            "resolved",
        ):
            self.obligations.labels(state).set(found.get(state, 0))

    def set_outbox(self, records: int, oldest: datetime | None, now: datetime) -> None:
        """The outbox backlog: unsent records, and the age of the oldest unsent row
        (`sinks.outbox.unsent_records`)."""
        self.outbox_unsent.set(records)
        if oldest is None:
            self.outbox_oldest.set(0)
            return
        if oldest.tzinfo is None:  # SQLite gives the stored UTC time without its zone
            oldest = oldest.replace(tzinfo=UTC)
        self.outbox_oldest.set(max(0.0, (now - oldest).total_seconds()))

    def set_compliance(self, day: date, by_outcome: Mapping[str, int]) -> None:
        """The last closed day's obligations by outcome (`CtrStore.last_closed_day_totals`)."""
        for state in ("on_time", "late", "missing", "resolved"):
            self.compliance.labels(state).set(by_outcome.get(state, 0))
        self.compliance_day.set(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())

    async def refresh_register(self, store: CtrStore, now: datetime) -> None:
        """The register-wide gauges (obligations by state, the outbox backlog, the last closed day's
        compliance), read through the CTR store's connection."""
        found = await store.obligations_by_state()
        backlog = await unsent_records(store.conn)
        last_day = await store.last_closed_day_totals()
        self.set_obligations(found)
        self.set_outbox(*backlog, now)
        if last_day is not None:
            self.set_compliance(*last_day)

    def text(self) -> bytes:
        return generate_latest(self.registry)
