"""Records replayed from a spill journal: written once each, however often a replay runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from llm_toll._budget.records import BudgetState, PendingWrite
from llm_toll.store._reservations import release_in
from llm_toll.store._time import utc_now
from llm_toll.store._totals import record_in
from llm_toll.store._transaction import Transaction

MARK: Final = (
    "INSERT INTO spill_replays (record_id, replayed_at) VALUES (?, ?) "
    "ON CONFLICT (record_id) DO NOTHING RETURNING record_id"
)


def replay_in(
    tx: Transaction,
    write: PendingWrite,
    record_id: str,
    time_param: Callable[[datetime], object],
) -> BudgetState | None:
    """Write ``write`` as its call's one transaction would have, unless ``record_id`` was
    replayed before (then None). The mark goes first: a second replay of the same record
    finds it whatever the order in which replays of several processes run."""
    if not tx.run(MARK, (record_id, time_param(utc_now()))):
        return None
    reservation = write.reservation
    if reservation is None:
        return record_in(
            tx, write.call, budget=write.budget, key_budget=write.key_budget,
            time_param=time_param,
        )  # fmt: skip
    # As settle_reservation: the call's rows first, then the reservation (if it was not
    # reclaimed meanwhile: release_in takes off only what is still there).
    state = record_in(
        tx, write.call, budget=reservation.spec, key_budget=reservation.key_spec,
        time_param=time_param,
    )  # fmt: skip
    release_in(tx, reservation)
    return state
