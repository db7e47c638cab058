"""Times as the register stores them: in UTC (`sinks.rows.utc`, kept here for the readers that import it
from this module)."""

from __future__ import annotations

from sinks.rows import utc

__all__ = ["utc"]
