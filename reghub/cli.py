"""The `reghub` command line: run the hub (embedded or production), send and tail topics, run scenarios."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.main

from reghub.config import load_settings
from reghub.failures import Failure, check_broker, check_register, check_web_ports, explain
from reghub.logs import LogFormat, configure_logging, log_format_named, logging_config
from reghub.settings import DATABASE_URL_FORMS, LOG_FORMAT_VARIABLE, Settings
from reghub.supervisor import Supervisor, default_processes

_ENVIRONMENT = (
    "Configuration comes from REGHUB_* environment variables (or files named like them in the folder "
    "REGHUB_SECRETS_DIR names). `reghub up` needs none: it makes its own, and the other commands "
    "run in its folder, or below it, use that hub while it runs.\n\n"
    "REGHUB_PSEUDONYM_KEY (16 characters or more) is required by worker, api, db upgrade, register "
    "import and person show.\n\n"
    f"REGHUB_DATABASE_URL is the register: {DATABASE_URL_FORMS}; default "
    "sqlite:///.reghub/register.db.\n\n"
    "REGHUB_KAFKA_BOOTSTRAP is the broker, host:port; default 127.0.0.1:9092."
)
app = typer.Typer(
    help="reghub: the CTR and treatment-place register hub.",
    epilog=_ENVIRONMENT,
    no_args_is_help=True,
)
db_app = typer.Typer(help="The register database.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="Wire schemas.", no_args_is_help=True)
scenario_app = typer.Typer(
    help="Worked CTR scenarios through the real pipeline.", no_args_is_help=True
)
register_app = typer.Typer(help="Register data.", no_args_is_help=True)
person_app = typer.Typer(help="Persons and their numbers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(scenario_app, name="scenario")
app.add_typer(register_app, name="register")
app.add_typer(person_app, name="person")


def _log_format() -> LogFormat:
    """REGHUB_LOG_FORMAT, read here before the settings (which may be what fails) so that even a
    failure's line is in the format asked for."""
    return log_format_named(os.environ.get(LOG_FORMAT_VARIABLE))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Also produce synthetic pharmacy traffic.")] = False,
    rate: Annotated[int, typer.Option(help="Demo reports per second.")] = 200,
    persons: Annotated[int, typer.Option(help="Demo persons.")] = 500,
    api_port: Annotated[int, typer.Option(help="Port of the read API and dashboard.")] = 8000,
    duration: Annotated[
        float, typer.Option(help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0,
) -> None:
    """Run the embedded hub: Tansu broker, SQLite register, worker and API; Ctrl-C stops all of it."""
    from reghub.embedded import run_embedded

    code = asyncio.run(
        run_embedded(demo=demo, rate=rate, persons=persons, api_port=api_port, duration=duration)
    )
    raise typer.Exit(code)


_WORKER_HELP = (
    "Run the register workers: they need REGHUB_PSEUDONYM_KEY, REGHUB_KAFKA_BOOTSTRAP and "
    "REGHUB_DATABASE_URL, migrated with `reghub db upgrade` (see `reghub --help`).\n\n"
    "A broker that does not answer, or a register that is missing or not migrated, stops the command "
    "at start with one line; a database that does not answer is waited for, with backoff."
)


@app.command(help=_WORKER_HELP)
def worker(
    processes: Annotated[
        int | None,
        typer.Option(
            help="Worker processes of the one consumer group (default: the number of cores on "
            "PostgreSQL, 1 on SQLite); each gets the web port plus its index."
        ),
    ] = None,
) -> None:
    """Run the register workers (see `_WORKER_HELP`)."""
    settings = load_settings(production=True)
    count = processes or settings.worker_processes or default_processes(settings.database_url)
    asyncio.run(_worker_start_checks(settings, count))
    if count > 1:
        configure_logging(settings.log_level, settings.log_format)
        raise typer.Exit(Supervisor(count, settings.web_port).run())
    _one_worker(settings)


async def _worker_start_checks(settings: Settings, count: int) -> None:
    """The web ports are free, the broker answers and the register is at this code's revision,
    before anything starts.

    Raises:
        Failure: a web port is taken; the register is missing, refuses the user, or is not migrated.
            A database that does not answer is logged here and waited for by the worker itself.
        BrokerUnavailable: nothing answers at REGHUB_KAFKA_BOOTSTRAP.
    """
    check_web_ports(settings.web_port, count)
    await check_broker(settings)
    await _register_check(settings, "the worker waits for it")


async def _register_check(settings: Settings, meanwhile: str) -> None:
    """`check_register`, where a database that does not answer is only a warning saying `meanwhile`.

    Raises:
        Failure: the register is missing, refuses the user, or is not at this code's revision.
    """
    try:
        await check_register(settings.database_url)
    except Failure as failure:
        if not failure.retriable:
            raise
        logging.getLogger("reghub").warning("%s; %s", failure, meanwhile)


def _one_worker(settings: Settings) -> None:
    from reghub import wiring
    from reghub.kafka_options import faust_credentials
    from streams.app import OutboxTimers, create_app
    from streams.health import HealthConfig

    processor = wiring.processor(settings)
    faust_app = create_app(
        processor,
        app_id=f"{settings.consumer_group}-host",
        bootstrap=settings.kafka_bootstrap,
        web_port=settings.web_port,
        web_host=settings.web_host,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        scale_refresh_seconds=settings.scale_refresh_seconds,
        obligation_check_seconds=settings.obligation_check_seconds,
        place_check_seconds=settings.place_check_seconds,
        health=HealthConfig(
            stall_seconds=settings.ready_stall_seconds, probe_seconds=settings.health_probe_seconds
        ),
        outbox=OutboxTimers(
            sweep_seconds=settings.outbox_sweep_seconds,
            stale_seconds=settings.outbox_stale_seconds,
            keep_hours=settings.outbox_keep_hours,
        ),
        broker_credentials=faust_credentials(settings),
        replication_factor=settings.topic_replication_factor,
    )
    faust_worker(faust_app, settings).execute_from_commandline()


def faust_worker(faust_app: Any, settings: Settings) -> Any:
    """The faust worker that runs a register worker's app, logging at `settings.log_level`."""
    import faust

    json_logs = settings.log_format == "json"
    worker = faust.Worker(
        faust_app,
        loglevel=settings.log_level.upper(),
        # faust's own set-up replaces the handlers: in JSON it takes ours, and prints no banner
        logging_config=logging_config(settings.log_level, "json") if json_logs else None,
        quiet=json_logs,
    )
    # No start-up spinner: at WARNING and above faust sets the root logger to DEBUG for it, so every
    # library's debug record was made and masked only to be dropped (aiokafka's, with the repr of each
    # request it sends: a worker's CPU per report fell by about a fifth without it)
    worker.spinner = None
    return worker


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the read API and the monitoring dashboard (a register that is missing or not migrated stops
    it at start with one line; one that does not answer yet is reported and the API starts)."""
    import uvicorn

    from api.app import create_api
    from reghub import wiring

    settings = load_settings(production=True)
    asyncio.run(_register_check(settings, "the API starts anyway"))
    uvicorn.run(
        create_api(
            settings.database_url,
            settings.worker_urls,
            tokens=wiring.token_keys(settings),
            rules=wiring.rules_config(settings),
            pseudonym_secret=settings.pseudonym_key.get_secret_value().encode(),
            kafka=wiring.kafka_access(settings),
        ),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        # JSON: uvicorn's own loggers, its access log included, through the hub's formatter
        **(
            {"log_config": logging_config(settings.log_level, "json")}
            if settings.log_format == "json"
            else {}
        ),
    )


@app.command()
def token(
    role: Annotated[
        str, typer.Option(help="pharmacy, doctor, citizen, agency, operator, stps, registrant, ...")
    ],
    subject: Annotated[str, typer.Option(help="Who the token is for (its `sub`).")] = "dev",
    pharmacy_number: Annotated[str | None, typer.Option(help="A pharmacy's number.")] = None,
    authorisation_id: Annotated[str | None, typer.Option(help="A doctor's id.")] = None,
    cpr: Annotated[str | None, typer.Option(help="A citizen's own CPR number.")] = None,
    cvr: Annotated[str | None, typer.Option(help="A registrant's CVR number.")] = None,
    registrant_id: Annotated[
        str | None, typer.Option(help="A registrant without CVR: its registrant id.")
    ] = None,
    minutes: Annotated[int, typer.Option(help="Valid this long.")] = 60,
) -> None:
    """Mint a development token for the read API (signed with REGHUB_API_TOKEN_SECRET, which the
    embedded hub makes); production tokens come from the identity provider."""
    from datetime import timedelta

    from api.tokens import mint
    from rules.access import ROLES

    settings = load_settings(key_needed=False, production=True, register_needed=False)
    if role not in ROLES:
        typer.echo(f"--role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    if settings.api_token_secret is None:
        typer.echo("no REGHUB_API_TOKEN_SECRET: start the hub with `reghub up` or set it", err=True)
        raise typer.Exit(2)
    identifiers = {
        k: v
        for k, v in (
            ("pharmacy_number", pharmacy_number),
            ("authorisation_id", authorisation_id),
            ("cpr", cpr),
            ("cvr", cvr),
            ("registrant_id", registrant_id),
        )
        if v is not None
    }
    typer.echo(
        mint(
            settings.api_token_secret.get_secret_value().encode(),
            role,  # type: ignore[arg-type]
            subject,
            audience=settings.api_token_audience,
            issuer=settings.api_token_issuer,
            ttl=timedelta(minutes=minutes),
            **identifiers,
        )
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the register's tables (idempotent)."""
    from reghub.config import private_sqlite_file
    from sinks.migrations import upgrade
    from sinks.register import make_engine

    settings = load_settings()

    async def go() -> list[str]:
        private_sqlite_file(settings.database_url)  # a new SQLite register: its owner's only
        engine = make_engine(settings.database_url)
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    applied = asyncio.run(go())
    typer.echo(f"applied: {', '.join(applied)}" if applied else "register schema is up to date")


@topics_app.command("create")
def topics_create() -> None:
    """Create every hub topic with its configuration (idempotent)."""
    from reghub.broker import create_hub_topics

    created = asyncio.run(create_hub_topics(load_settings(key_needed=False)))
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the JSON Schema files.")] = Path(
        "schema-export"
    ),
) -> None:
    """Write a JSON Schema per topic, for partners."""
    from reghub.export import export_schemas

    for path in export_schemas(directory):
        typer.echo(str(path))


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="The released schemas (default: the repository's schemas/released)."),
    ] = None,
) -> None:
    """Check the code's topic schemas against the released ones: a change that would break a partner's
    producer or consumer is named, and the exit is 1, unless the topic's version was raised (.v2)."""
    from reghub.export import RELEASED, check_released

    problems = check_released(directory or RELEASED)
    for topic, lines in problems.items():
        for line in lines:
            typer.echo(f"{topic}: {line}")
    if problems:
        typer.echo(
            "a breaking change needs a new topic version (e.g. .v2); see schemas/compatibility.py",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo("every topic's schema is compatible with its released one")


@app.command()
def send(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. ctr.dispensings.v1")],
    file: Annotated[Path, typer.Argument(help="JSON Lines, one message per line")],
    wait: Annotated[
        float | None,
        typer.Option(
            help="Then wait up to this many seconds for each sent line's outcome and print it: its "
            "decision, what was done with it, or its dead-letter reason."
        ),
    ] = None,
) -> None:
    """Validate a JSON Lines file and produce its valid lines; bad lines are reported and not sent.

    A line is checked as the worker checks it where that needs no register: its schema, and a subsidy
    scale's cap against its bands. With --wait, one line per sent line: `line N ID: outcome`, or "no
    answer within N s"; the exit code is 1 when a line was refused, dead-lettered or not answered.
    """
    from reghub.send import send_file
    from rules.identifiers import mask_person_numbers

    done = asyncio.run(send_file(load_settings(key_needed=False), topic, file, wait))
    for line_no, reason in done.refused:
        typer.echo(f"line {line_no}: {reason}", err=True)
    typer.echo(f"sent {len(done.sent)}, refused {len(done.refused)}")
    unanswered = 0
    if wait is not None:
        for s in done.sent:
            answer = done.answers.get(s.line)
            if answer is None:
                unanswered += 1
                answer = f"no answer within {wait:g} s"
            typer.echo(f"line {s.line} {mask_person_numbers(s.message_id)}: {answer}")
    if done.refused or done.dead_lettered or unanswered:
        raise typer.Exit(1)


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. ctr.decisions.v1")],
    limit: Annotated[
        int, typer.Option(help="Stop after printing this many messages (0: no limit).")
    ] = 0,
    latest: Annotated[bool, typer.Option(help="Only messages from now on.")] = False,
    to_end: Annotated[
        bool, typer.Option(help="Stop at the end of the topic as it was when tail started.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="Stop when no message has come for this many seconds, counted from the start or "
            "the last message read (an idle timeout, not a limit on the run; 0: never)."
        ),
    ] = 0,
    report_id: Annotated[
        str | None, typer.Option(help="Only messages whose report_id is this (decisions, reports).")
    ] = None,
    message_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Only messages of this id: their report_id or message_id, or a dead letter's or "
            "replay's reghub-message-id / reghub-replay-of header.",
        ),
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only records with this key, as sent.")] = None,
    show_person_keys: Annotated[bool, typer.Option(help="Show person keys unmasked.")] = False,
) -> None:
    """Print a topic's messages readably (person keys masked unless asked), from its beginning.

    Follows the topic until --limit, --to-end or --timeout stops it (Ctrl-C otherwise).
    """
    from reghub.tail import Filter, tail_topic

    asyncio.run(
        tail_topic(
            load_settings(key_needed=False),
            topic,
            limit=limit,
            latest=latest,
            idle_timeout=timeout,
            show_person_keys=show_person_keys,
            to_end=to_end,
            only=Filter(report_id=report_id, message_id=message_id, key=key),
        )
    )


_FAST = typer.Option(
    "--in-process", help="Rules and register only, no broker: fast, for working on the rules."
)


@scenario_app.command("run")
def scenario_run(
    files: Annotated[list[Path], typer.Argument(help="Scenario files or folders")],
    fast: Annotated[bool, _FAST] = False,
) -> None:
    """Run scenario files through broker, worker and register; print results in the `expected` shape."""
    from reghub.scenarios import main

    raise typer.Exit(asyncio.run(main(files, check=False, fast=fast)))


@scenario_app.command("check")
def scenario_check(
    files: Annotated[list[Path], typer.Argument(help="Scenario files or folders")],
    fast: Annotated[bool, _FAST] = False,
) -> None:
    """Like `run`, and compare with `expected`; ends with `N passed, M failed`."""
    from reghub.scenarios import main

    raise typer.Exit(asyncio.run(main(files, check=True, fast=fast)))


@register_app.command("import")
def register_import(
    file: Annotated[Path, typer.Argument(help="JSON Lines snapshot of the current register")],
) -> None:
    """Import a snapshot of an existing register (periods, saldo, open balancing amounts)."""
    from reghub.snapshot import import_file

    imported, bad = asyncio.run(import_file(load_settings(), file))
    for line_no, reason in bad:
        typer.echo(f"line {line_no}: {reason}", err=True)
    typer.echo(f"imported {imported}, refused {len(bad)}")
    if bad:
        raise typer.Exit(1)


@app.command()
def compliance(
    day: Annotated[str, typer.Option("--date", help="The day, YYYY-MM-DD (Europe/Copenhagen)")],
) -> None:
    """The compliance summary of a day per reporter: on time, late, missing, resolved, worst lateness."""
    from reghub.compliance_table import print_day

    raise typer.Exit(asyncio.run(print_day(load_settings(key_needed=False), day)))


@app.command()
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The day, YYYY-MM-DD (default: today in Europe/Copenhagen)"),
    ] = None,
) -> None:
    """Delete what § 4 says is due (per rule: table, cutoff, rows); --dry-run only counts."""
    from reghub.retention_table import run

    raise typer.Exit(asyncio.run(run(load_settings(key_needed=False), as_of, dry_run=dry_run)))


@person_app.command("show")
def person_show(
    key: Annotated[str, typer.Argument(help="Any number the person has had")],
    show_person_keys: Annotated[bool, typer.Option(help="Show person numbers unmasked.")] = False,
) -> None:
    """A person as the register holds them: numbers, merges, death, custody, periods, purchases."""
    from reghub.person_show import show

    for line in asyncio.run(show(load_settings(), key, show_person_keys=show_person_keys)):
        typer.echo(line)


place_app = typer.Typer(help="The treatment-place register.", no_args_is_help=True)
app.add_typer(place_app, name="place")


@place_app.command("show")
def place_show(
    place: Annotated[str, typer.Argument(help="SOR id or reference number of the place")],
) -> None:
    """A treatment place with its company, unit, practitioners, information versions, states, fees."""
    import json

    from api.places import place_record
    from sinks.register import make_engine

    async def go() -> dict[str, object] | None:
        engine = make_engine(load_settings(key_needed=False).database_url)
        try:
            async with engine.connect() as conn:
                return await place_record(conn, place)
        finally:
            await engine.dispose()

    shown = asyncio.run(go())
    if shown is None:
        typer.echo(f"no treatment place {place}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(shown, indent=2, default=str, ensure_ascii=False))


@app.command()
def fees(
    year: Annotated[int, typer.Option(help="The calendar year to invoice.")],
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the list here (default: print it).")
    ] = None,
) -> None:
    """The treatment places' invoice list for a year as CSV: place, reference number, category, band,
    amount, and where the invoice goes (EAN, digital mailbox or e-mail). It is the fee ledger's rows of
    the year, after the ledger is brought up to date (`streams.fee_ledger`)."""
    import csv
    import io
    from datetime import UTC, datetime

    from sinks.places_store import PlacesStore
    from sinks.register import make_engine
    from streams.fee_ledger import refresh_ledger

    async def go() -> list:
        engine = make_engine(load_settings(key_needed=False).database_url)
        try:
            async with engine.begin() as conn:  # the list is the ledger, brought up to date first
                places = PlacesStore(conn)
                await refresh_ledger(places, datetime.now(UTC))
                return await places.fees_of_year(year)
        finally:
            await engine.dispose()

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["sor_id", "reference_number", "company", "category", "band", "turnover_ore",
         "amount_ore", "invoice_channel", "invoice_address"]
    )  # fmt: skip
    for r in asyncio.run(go()):
        writer.writerow(
            [r.sor_id, r.reference_number, r.company_key, r.category, r.band, r.turnover,
             r.amount, r.invoice_channel, r.invoice_address]
        )  # fmt: skip
    if csv_file is None:
        typer.echo(out.getvalue(), nl=False)
    else:
        csv_file.write_text(out.getvalue())
        typer.echo(f"wrote {csv_file}")


fee_table_app = typer.Typer(help="Treatment-place fee tables, one per year.", no_args_is_help=True)
app.add_typer(fee_table_app, name="fee-table")


@fee_table_app.command("load")
def fee_table_load(
    file: Annotated[
        Path,
        typer.Argument(
            help='JSON: {"year", "de_minimis_limit", "fees": {"1".."5"}, "half_fees": {"1".."5"} '
            "(as STPS published them; left out: the half rounded up to whole kroner), "
            '"care_only_fee_free", "source"}, amounts in øre'
        ),
    ],
) -> None:
    """Load (or replace) a year's fee table; the handler and `reghub fees` use it from then on, and the
    fee ledger's rows of the years that waited for it are filled in the same transaction."""
    import json
    from datetime import UTC, datetime

    from rules.treatment_places.fees import FeeTable, new_table_refusal
    from sinks.places_store import PlacesStore
    from sinks.register import make_engine
    from streams.fee_ledger import refresh_ledger

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        halves = data.get("half_fees")
        table = FeeTable(
            int(data["year"]),
            data.get("de_minimis_limit"),
            {int(k): int(v) for k, v in data["fees"].items()},
            bool(data.get("care_only_fee_free", False)),
            str(data["source"]),
            None if halves is None else {int(k): int(v) for k, v in halves.items()},
        )
        refusal = new_table_refusal(table, datetime.now(UTC).year)
        if refusal is not None:
            raise ValueError(refusal)
    except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        typer.echo(f"not a fee table: {exc}", err=True)
        raise typer.Exit(1) from None

    async def go() -> None:
        engine = make_engine(load_settings(key_needed=False).database_url)
        try:
            async with engine.begin() as conn:
                places = PlacesStore(conn)
                await places.replace_fee_table(table, datetime.now(UTC))
                await refresh_ledger(places, datetime.now(UTC))
        finally:
            await engine.dispose()

    asyncio.run(go())
    typer.echo(f"fee table {table.year} loaded")


sor_app = typer.Typer(help="SOR, the health-care organisation register.", no_args_is_help=True)
app.add_typer(sor_app, name="sor")


@sor_app.command("import")
def sor_import(
    file: Annotated[Path, typer.Argument(help="SOR snapshot, CSV (rules.treatment_places.sor)")],
    snapshot_date: Annotated[
        str | None,
        typer.Option("--date", help="The snapshot's date, YYYY-MM-DD (default: today in Denmark)."),
    ] = None,
) -> None:
    """Diff a SOR snapshot against the previous import and publish the differences (created, changed,
    closed, replaced) on stps.registrations.v1; the snapshot then becomes the previous one.

    The events are published before the snapshot is kept: a failure in between publishes them again
    on the next import of the same date, under the same message ids and content, which the hub
    acknowledges as duplicates. Each event's id names the unit and the snapshot's date.
    """
    import json
    from dataclasses import asdict
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from aiokafka import AIOKafkaProducer

    from reghub.kafka_options import kafka_client_options
    from reghub.wiring import topic_names
    from rules.treatment_places.sor import SorUnit, diff, event_of, parse_snapshot
    from sinks.kafka_client import start_client
    from sinks.places_rows import SorSnapshotRow
    from sinks.places_store import PlacesStore
    from sinks.register import make_engine
    from streams.topics import REGISTRATIONS

    try:
        day = (
            date.fromisoformat(snapshot_date)
            if snapshot_date
            else datetime.now(ZoneInfo("Europe/Copenhagen")).date()
        )
    except ValueError:
        typer.echo("--date must be YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    current, problems = parse_snapshot(file.read_text(encoding="utf-8"))
    for line_no, problem in problems:
        typer.echo(f"line {line_no}: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    settings = load_settings(key_needed=False)

    async def go() -> dict[str, int]:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                rows = await PlacesStore(conn).sor_snapshot()
            previous = {}
            for text in rows:
                values = json.loads(text)
                end = values["end_date"]
                values["end_date"] = date.fromisoformat(end) if end else None
                previous[values["sor_id"]] = SorUnit(**values)
            now = datetime.now(UTC)
            changes = diff(previous, current)
            if changes:
                producer = AIOKafkaProducer(
                    bootstrap_servers=settings.kafka_bootstrap,
                    acks="all",
                    enable_idempotence=settings.kafka_idempotence,
                    **kafka_client_options(settings),
                )
                await start_client(
                    producer, settings.kafka_bootstrap, settings.kafka_security_protocol
                )
                try:
                    topic = topic_names(settings)(REGISTRATIONS)
                    for change in changes:
                        key, message = event_of(change, day)
                        await producer.send_and_wait(
                            topic, json.dumps(message).encode(), key=key.encode()
                        )
                finally:
                    await producer.stop()
            kept = [
                SorSnapshotRow(u.sor_id, u.digest(), json.dumps(asdict(u), default=str), now)
                for u in current.values()
            ]
            async with engine.begin() as conn:
                await PlacesStore(conn).replace_sor_snapshot(kept)
        finally:
            await engine.dispose()
        counts = {"created": 0, "changed": 0, "closed": 0, "replaced": 0}
        for change in changes:
            counts[change.kind] += 1
        return counts

    counts = asyncio.run(go())
    typer.echo(", ".join(f"{kind} {n}" for kind, n in counts.items()))


def _plain_help(command: click.Command) -> None:
    """Show each value's kind in `--help` as a word (INTEGER, PATH), not as the Python type Typer
    prints (`<int>`, `<list[Path]>`); flags show none. Called once on the built command tree."""
    context = click.Context(command)
    params = list(command.params)
    help_option = command.get_help_option(context)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        annotation = getattr(descriptor, "annotation", None)
        label = None if getattr(param, "is_flag", False) else _KINDS.get(str(annotation), "VALUE")
        param.display_type_rich = lambda ctx, label=label: label  # type: ignore[method-assign]
        if param.param_type_name == "argument" and param.metavar is None and param.name:
            param.metavar = param.name.upper()  # Typer would show `{files}`
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


_KINDS = {
    str(int): "INTEGER",
    str(float): "NUMBER",
    str(str): "TEXT",
    str(Path): "PATH",
    str(list[Path]): "PATH...",
    str(int | None): "INTEGER",
    str(str | None): "TEXT",
    str(Path | None): "PATH",
}


def _database_url() -> str | None:
    """The configured register URL, to name the database in a failure's line; None if unreadable."""
    try:
        return load_settings(key_needed=False).database_url
    except Exception:  # the settings' own problem is reported, not this one
        return None


def main() -> None:
    """The `reghub` command: a known failure (a missing setting, a database or broker that does not
    answer, a register not migrated) is one line on stderr and a non-zero exit, not a traceback
    (`reghub.failures`)."""
    log_format = _log_format()
    configure_logging("warning", log_format)
    command = typer.main.get_command(app)
    _plain_help(command)
    try:
        command()
    except Exception as exc:
        failure = explain(exc, _database_url())
        if failure is None:
            raise
        for line in failure.lines:
            if log_format == "json":  # a line of the log like any other
                logging.getLogger("reghub").error("%s", line)
            else:
                typer.echo(line, err=True)
        raise SystemExit(failure.exit_code) from None


if __name__ == "__main__":
    main()
