"""No person number in a log line: every record the hub's processes make is masked as it is made.

A record's message, its arguments and its exception text (a library's error may quote a key or a
value) are masked once, at creation, with anything that may be a CPR number replaced (also inside a
longer run of digits: `rules.identifiers.person_number_runs`); handlers set up
later (faust's, uvicorn's) print the masked text. The arguments stay arguments where that is safe,
because some formatters read them rather than the message (uvicorn's access log unpacks its five);
otherwise the record carries its rendered, masked message and no arguments. Library loggers that dump
whole records at DEBUG (aiokafka, aiosqlite) are held at INFO besides.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

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
