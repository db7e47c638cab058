"""Fault campaign: the real worker processes against the real broker and PostgreSQL, under faults.

Run as `python -m bench.faults [-n 20000] [--only kill9,fuzz] [--stall 60] [--refuse 45]
[--fuzz 100000] …` (`--help` lists every flag). Each scenario gets a fresh Tansu broker, a fresh
PostgreSQL database (created, migrated with `sinks.migrations.upgrade`, dropped at the end), its own
topic prefix and consumer group, and two `python -m reghub worker` processes configured by
`REGHUB_*` variables (as `tests/test_worker_process.py` starts one). N synthetic reports
(`reghub.synthetic`, spread over persons and 4 partitions) stream in while the fault happens:

1. `kill9`: 20 `kill -9`s of a random live worker at random moments of the stream; each killed
   worker is started again after a random 0.5-3 s.
2. `broker-stall`: half the reports paced, then the other half at once; while the workers work
   through that backlog (once the register has 500 more rows), Tansu is stopped (SIGSTOP) for
   `--stall` seconds; 2 s before it continues (SIGCONT) the workers are killed with -9 (all of
   them, or `--stall-victims N`), so that a batch the register has committed is never published by
   the worker that wrote it; they are started again after SIGCONT. (A produce request already
   written to the stopped broker's socket is still taken when it continues; what a big batch's
   publish had not yet written is what a worker without an outbox loses.)
3. `db-refuses`: the database refuses connections for `--refuse` seconds (`ALTER DATABASE …
   ALLOW_CONNECTIONS false` and `pg_terminate_backend` of its backends, as the admin user on the
   admin database), then accepts them again.
4. `pg-terminate`: `--terminations` times, the workers' backends are terminated while one of them
   is inside a transaction (polled in pg_stat_activity).
5. `fuzz`: `--fuzz` hostile records (`bench.hostile`: hypothesis strategies derived from the input
   schemas) produced to the input topics as fast as the broker takes them; the workers must stay
   alive with /health answering, and every record must be dead-lettered with a reason (matched by
   the source position in its headers), or, if it happens to be valid, be taken: registered or
   parked (`purchases`, `processed_messages`) or applied (the change feed, for topics that keep no
   ids). A record identical to an earlier one with the same id is answered by that one's dead letter. In
   this row "registered" counts the valid records taken and "decided" the dispensings among them
   with a decision.

After the fault, the scenario waits until it is quiet: the register's and the broker's committed
offsets together cover every input record, and nothing changed on the register or the output topics
for a few seconds (or 40 s when something is still missing: a worker retries a failed batch after
up to 30 s). The workers are stopped (SIGTERM), then everything is counted from its source of truth:

- sent: reports the broker acknowledged (acks=all), by report id;
- registered: distinct report ids in `purchases` (SQL);
- decided: distinct report ids with a decision on `ctr.decisions.v1` (the whole topic read by a new
  consumer); decisions of the same report published more than once are counted as republished
  (at-least-once; consumers dedupe by report id), not as doubled;
- dead-lettered: records on `ctr.dead-letter.v1`;
- lost: reports sent but neither registered nor dead-lettered ("lost reports"), and registered
  reports without a decision ("lost decisions");
- doubled: report ids with more than one purchase row, plus subsidy periods whose saldo is not the
  sum of the bases of the purchases registered in them (a report counted twice shows there even
  though its row is upserted once);
- recovered: seconds from the end of the fault (or of the stream, if that ended later) until every
  sent report was registered or dead-lettered and every registered one decided.

A scenario passes with nothing lost, nothing doubled, no worker exit it did not cause, and quiet
within `--settle-timeout`; fuzz also needs every record accounted for, every dead letter with a
non-empty `reghub-reason` and /health answering throughout. The exit status is 0 when all pass.
"""
