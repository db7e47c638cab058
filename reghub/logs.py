"""No person number in a log line, and the log's format: text for a terminal, one JSON object a line.

Masking: every record the hub's processes make is masked as it is made.

A record's message, its arguments and its exception text (a library's error may quote a key or a
value) are masked once, at creation, with anything that may be a CPR number replaced (also inside a
longer run of digits: `rules.identifiers.person_number_runs`); handlers set up
later (faust's, uvicorn's) print the masked text. The arguments stay arguments where that is safe,
because some formatters read them rather than the message (uvicorn's access log unpacks its five);
otherwise the record carries its rendered, masked message and no arguments. Library loggers that dump
whole records at DEBUG (aiokafka, aiosqlite) are held at INFO besides. The JSON formatter masks
what it writes once more, so a record made without the factory (`logging.makeLogRecord`) is masked too.

Format: `REGHUB_LOG_FORMAT=json` (the compose file's) makes every handler of the worker, the supervisor,
the API (uvicorn's access log included) and the CLI write one JSON object a line (`JsonFormatter`);
`text` (the default on a bare machine) keeps the libraries' own formats. `logging_config` is the one
`logging.config.dictConfig` for all of them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from rules.identifiers import mask_person_numbers as _mask_strict

mask_person_numbers = partial(_mask_strict, within_runs=True)
"""In a log line a CPR number is masked also inside a longer run of digits (an id glued onto it)."""

_CHATTY = ("aiokafka", "aiosqlite", "asyncpg")
_formatter = logging.Formatter()


def _masked_argument(value: object) -> object:
    """`value` itself when its text holds nothing to mask, else its masked text."""
    if isinstance(value, str):
        return mask_person_numbers(value)
    try:
        shown = str(value)
    except Exception:  # an argument whose __str__ fails is left for the formatter to report
        return value
    masked = mask_person_numbers(shown)
    return value if masked == shown else masked


def _mask(record: logging.LogRecord) -> None:
    """Mask `record` in place: its message, its arguments (kept as arguments when the masked ones
    still format and nothing is left to mask in the result), and its exception text."""
    msg = mask_person_numbers(record.msg) if isinstance(record.msg, str) else record.msg
    args = record.args
    kept = False
    if isinstance(args, tuple) and args and isinstance(msg, str):
        masked_args = tuple(_masked_argument(a) for a in args)
        try:
            text = msg % masked_args
        except Exception:  # a caller's bad format string, or an argument masked into text
            pass
        else:
            # two harmless arguments can still spell a number together ("%s-%s")
            if mask_person_numbers(text) == text:
                record.msg, record.args, kept = msg, masked_args, True
    if not kept:
        try:
            text = record.getMessage()
        except Exception:  # a caller's bad format string must not turn into an exception here
            text = f"{record.msg} (arguments: {record.args!r})"
        record.msg = mask_person_numbers(text)
        record.args = ()  # not None: some formatters (mode's) wrap a non-tuple into one and format again
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_person_numbers(_formatter.formatException(record.exc_info))
        record.exc_info = None  # the text above is the only rendering


def _masking(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        _mask(record)
        return record

    make.masks_person_numbers = True  # type: ignore[attr-defined]
    return make


def mask_person_numbers_in_logs() -> None:
    """Install the masking record factory (once per process) and quiet the chatty libraries."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "masks_person_numbers", False):
        logging.setLogRecordFactory(_masking(factory))
    for name in _CHATTY:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)


LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# uvicorn's access record: its message and its five arguments, named as fields in the JSON line
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time` (UTC, ISO 8601), `level`, `logger`, `message`, `pid`, and
    `exception` when there is one; uvicorn's access lines also name `client`, `method`, `path`,
    `http_version` and `status`. Every text is masked (`mask_person_numbers`) as it is written."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a caller's bad format string is logged, not raised
            message = f"{record.msg} (arguments: {record.args!r})"
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_person_numbers(message),
            "pid": record.process,
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            for field, value in zip(_ACCESS_FIELDS, args, strict=True):
                line[field] = value if isinstance(value, int) else mask_person_numbers(str(value))
        exception = record.exc_text
        if record.exc_info and not exception:
            exception = self.formatException(record.exc_info)
        if exception:
            line["exception"] = mask_person_numbers(exception)
        if record.stack_info:
            line["stack"] = mask_person_numbers(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(
    level: str, log_format: LogFormat, stream: str = "ext://sys.stderr"
) -> dict[str, Any]:
    """The `dictConfig` of a hub process: the root logger and uvicorn's loggers at `level`, written to
    `stream` in `log_format` (`text`: time, level, logger and message)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "reghub", "stream": stream}
    named = {"level": level.upper(), "handlers": ["reghub"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"reghub": formatter},
        "handlers": {"reghub": handler},
        "root": {"level": level.upper(), "handlers": ["reghub"]},
        "loggers": {name: dict(named) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Mask person numbers (`mask_person_numbers_in_logs`) and log at `level` in `log_format` to
    stderr, replacing the handlers set before."""
    import logging.config

    mask_person_numbers_in_logs()
    logging.config.dictConfig(logging_config(level, log_format))
    for name in _CHATTY:  # dictConfig may have set them lower again
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)


def log_format_named(value: str | None) -> LogFormat:
    """`value` (REGHUB_LOG_FORMAT as given, None if unset) as a format; anything else is `text`."""
    named = (value or "text").strip().lower()
    return "json" if named == "json" else "text"
