"""Typed rows and tables agree: each row's fields are its table's columns, in the table's order."""

from __future__ import annotations

import pytest

from sinks import places_rows, places_tables, rows, tables

PAIRS = [
    (rows.PersonRow, tables.persons),
    (rows.PeriodRow, tables.subsidy_periods),
    (rows.PurchaseRow, tables.purchases),
    (rows.ProcessedRow, tables.processed_messages),
    (rows.OffsetRow, tables.consumer_offsets),
    (rows.CorrectionRow, tables.corrections),
    (rows.ScaleRow, tables.subsidy_scales),
    (rows.ParkedRow, tables.parked_messages),
    (rows.GrantRow, tables.grants),
    (rows.SupplementRow, tables.supplements),
    (rows.BalanceRow, tables.balances),
    (rows.AgreementRow, tables.deferral_agreements),
    (rows.PersonMergeRow, tables.person_merges),
    (rows.CustodyRow, tables.custody),
    (rows.ObligationRow, tables.obligations),
    (rows.ComplianceRow, tables.compliance_days),
    (rows.TreatmentRelationRow, tables.treatment_relations),
    (places_rows.CompanyRow, places_tables.companies),
    (places_rows.UnitRow, places_tables.units),
    (places_rows.PractitionerRow, places_tables.practitioners),
    (places_rows.InformationRow, places_tables.information),
    (places_rows.NotificationRow, places_tables.notifications),
    (places_rows.StateRow, places_tables.states),
    (places_rows.StateHistoryRow, places_tables.state_history),
    (places_rows.FeeRow, places_tables.fees),
    (places_rows.FeeTableRow, places_tables.fee_tables),
    (places_rows.SorSnapshotRow, places_tables.sor_snapshot),
]


@pytest.mark.parametrize(("row", "table"), PAIRS, ids=lambda x: getattr(x, "__name__", None))
def test_a_row_is_its_tables_columns_in_order(row: type, table: object) -> None:
    columns = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]  # type: ignore[attr-defined]
    assert list(row._fields) == columns


def test_every_written_table_has_a_row() -> None:
    bookkeeping = {
        "alembic_version",
        "outbox",  # one framed blob per batch (sinks/outbox.py)
        "read_audit",  # written by the API, one entry per read (sinks/read_audit.py)
        "register_minutes",  # counters the batch adds to (sinks/counts.py), no row values
        "register_totals",
    }
    covered = {table.name for _, table in PAIRS}
    assert set(tables.metadata.tables) - covered - bookkeeping == set()


@pytest.mark.parametrize(
    ("row", "table"),
    [(r, t) for r, t in PAIRS if r in places_rows.KEY_WIDTH],
    ids=lambda x: getattr(x, "__name__", None),
)
def test_a_place_rows_key_is_its_tables_primary_key(row: type, table: object) -> None:
    primary = [c.name for c in table.primary_key.columns]  # type: ignore[attr-defined]
    assert list(row._fields[: places_rows.KEY_WIDTH[row]]) == primary  # type: ignore[attr-defined]


def test_every_place_row_has_its_key_width() -> None:
    place_rows = {r for r, t in PAIRS if t.name.startswith("place_")}
    assert set(places_rows.KEY_WIDTH) == place_rows
