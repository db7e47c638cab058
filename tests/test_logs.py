"""The hub's log lines never carry a person number, whatever a message or an exception quoted."""

from __future__ import annotations

import io
import logging

from reghub.logs import mask_person_numbers_in_logs
from tests.messages import PERSON


def test_messages_arguments_and_exceptions_are_masked_and_p_numbers_kept() -> None:
    mask_person_numbers_in_logs()
    mask_person_numbers_in_logs()  # installing twice masks once
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("reghub.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("report for %s at P-number %s", PERSON, "1000000198")
        logger.warning(f"key {PERSON[:6]}-{PERSON[6:]} refused")
        logger.error("no placeholder here", PERSON)  # a bad format string is still logged
        try:
            raise KeyError(PERSON)
        except KeyError:
            logger.exception("internal error")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert PERSON not in text and f"{PERSON[:6]}-{PERSON[6:]}" not in text
    assert "1000000198" in text  # "100000" is no date: this P-number stays readable
    assert "KeyError" in text and "Traceback" in text
    assert "no placeholder here (arguments: ('**********',))" in text
    assert text.count("**********") == 4
    assert logging.getLogger("aiokafka").getEffectiveLevel() >= logging.INFO


def test_arguments_stay_arguments_for_formatters_that_read_them_and_are_masked() -> None:
    mask_person_numbers_in_logs()
    record = logging.getLogger("reghub.test-logs").makeRecord(
        "reghub.test-logs",
        logging.INFO,
        __file__,
        1,
        '%s - "%s" %d',
        ("127.0.0.1:1", f"GET /v1/{PERSON}", 404),
        None,
    )
    assert record.args == ("127.0.0.1:1", "GET /v1/**********", 404)  # uvicorn unpacks these
    joined = logging.getLogger("reghub.test-logs").makeRecord(
        "reghub.test-logs", logging.INFO, __file__, 1, "%s-%s", (PERSON[:6], PERSON[6:]), None
    )
    assert joined.getMessage() == "**********" and joined.args == ()


def test_a_cpr_number_inside_a_longer_run_of_digits_is_masked_in_logs() -> None:
    """An id glued onto a CPR number ("9" + the number + "7") hides it from the strict mask, not
    from the log's; a timestamp in milliseconds reads as no date and stays."""
    mask_person_numbers_in_logs()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("reghub.test-logs-runs")
    logger.addHandler(handler)
    try:
        logger.warning("dispensing 9%s7 at %s", PERSON, "1765000000000")
        logger.warning(f"ordination x9{PERSON}7 refused")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert PERSON not in text
    assert text.splitlines() == [
        "dispensing 9**********7 at 1765000000000",
        "ordination x********** refused",
    ]


def test_a_worker_logging_at_warning_makes_no_debug_records() -> None:
    """faust's start-up spinner set the root logger to DEBUG at WARNING and above: every library's
    debug record (aiokafka's, with each request's repr) was made and masked only to be dropped."""
    import faust

    from reghub.cli import faust_worker
    from reghub.settings import Settings

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    worker = faust_worker(
        faust.App("t-logs-spinner"),
        Settings(log_level="warning", pseudonym_key="test-pseudonym-key-0123456789"),
    )
    try:
        worker.on_setup_root_logger(root, logging.WARNING)  # what faust does once it set logging up
        assert not logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG)
        assert root.getEffectiveLevel() == logging.WARNING
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
