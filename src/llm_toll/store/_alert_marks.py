"""The store's mark that a budget's refusal was alerted in a period: one process of a fleet
wins it, and only that one fires the alert.

Threshold crossings need no statement of their own: the transaction that records a call
flips their bits of ``budget_totals.thresholds_fired`` (``_totals``). A refused call records
nothing, so its alert claims the next bit of the same mask in a statement of its own, which
sets it only where it is not set yet: of any number of processes, one sees a row come back.
A reset clears the mask, and with it this mark.
"""

from __future__ import annotations

from typing import Final

from llm_toll._budget.periods import THRESHOLDS

REFUSAL_ALERTED: Final = 1 << len(THRESHOLDS)
"""The bit of ``thresholds_fired`` set once a refusal of the period was alerted."""
THRESHOLD_BITS: Final = REFUSAL_ALERTED - 1
"""The bits of ``thresholds_fired`` that are thresholds (as reports show the mask)."""

CLAIM_REFUSAL_ALERT: Final = f"""
INSERT INTO budget_totals AS t (project, budget_key, period, spent_nanos, limit_nanos,
                                thresholds_fired, updated_at)
VALUES (?, ?, ?, 0, ?, {REFUSAL_ALERTED}, ?)
ON CONFLICT (project, budget_key, period) DO UPDATE SET
    thresholds_fired = t.thresholds_fired | {REFUSAL_ALERTED}
WHERE (t.thresholds_fired & {REFUSAL_ALERTED}) = 0
RETURNING thresholds_fired
"""
"""Set the mark of (project, key, period), making the row if the budget has none yet (a
limit of 0 refuses before anything is spent); a row comes back only to the one that set
it. Parameters (project, key, period, limit, now)."""
