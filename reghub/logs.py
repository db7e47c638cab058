"""No person number in a log line: every record the hub's processes make is masked as it is made.

A record's message, its arguments and its exception text (a library's error may quote a key or a
value) are rendered once, at creation, with anything that may be a CPR number replaced; handlers set up
later (faust's, uvicorn's) print the masked text. Library loggers that dump whole records at DEBUG
(aiokafka, aiosqlite) are held at INFO besides.
"""

from __future__ import annotations

import logging
from typing import Any

from rules.identifiers import mask_person_numbers

_CHATTY = ("aiokafka", "aiosqlite", "asyncpg")
_formatter = logging.Formatter()


def _masking(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a caller's bad format string must not turn into an exception here
            text = f"{record.msg} (arguments: {record.args!r})"
        record.msg = mask_person_numbers(text)
        record.args = ()  # not None: some formatters (mode's) wrap a non-tuple into one and format again
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_person_numbers(_formatter.formatException(record.exc_info))
            record.exc_info = None  # the text above is the only rendering
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
