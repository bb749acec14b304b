"""What spend is grouped by: the names the ledger's read API and the command line share.

Kept apart from the reads themselves, which bring the ledger's records: the command line
builds its parser (and ``--help``) from these names alone.
"""

from __future__ import annotations

from typing import Final

TIME_DIMENSIONS: Final = ("day", "week", "month")
DIMENSIONS: Final = (*TIME_DIMENSIONS, "project", "model", "key", "provider")
"""What ``spend`` groups by."""
