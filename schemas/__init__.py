"""The wire: one pydantic v2 model per message kind, grouped by topic family."""
