"""Budgets: exact money, calendar periods, the records written to the ledger, this process's
view of the running totals, and the one writer that records every finished call."""
