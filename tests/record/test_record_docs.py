"""docs/data-format.md shows the schema table generated from the code, and every event flag."""

from __future__ import annotations

from pathlib import Path

from drivesim.record import FIELDS, Event
from drivesim.record.schema import schema_markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-format.md"


def test_doc_shows_the_schema_table_of_the_code():
    text = DOC.read_text()
    assert schema_markdown_table() in text, "regenerate the table: python -c 'from drivesim.record.schema import schema_markdown_table as t; print(t())'"
    for field in FIELDS:
        assert f"`{field.name}`" in text
    for flag in Event:
        assert f"| {flag.value} | `{flag.name}` |" in text
