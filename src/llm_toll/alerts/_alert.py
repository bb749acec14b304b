"""What an alert says: the value callbacks receive, and its Slack-compatible message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

WEBHOOK_ENV: Final = "LLM_TOLL_ALERT_WEBHOOK"
"""The webhook of every budget whose decorator or run names none (``alert_webhook=``)."""

AlertKind = Literal["threshold", "exceeded"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One budget crossing, told once across every process that shares the store.

    ``kind`` is ``"threshold"`` (``threshold`` percent of the limit reached: 50, 80 or 100)
    or ``"exceeded"``: the call that took the spend to the limit or past it, or, with
    ``refused`` set, the first call of the period refused by the spent budget. Money is
    exact USD (``Decimal``).
    """

    kind: AlertKind
    project: str
    budget_key: str | None
    """The budget key whose own budget crossed (``key_budget=``); None for the project's."""
    period: str
    """The budget's period, as the CLI and dashboard show it: ``2026-11-30`` (daily),
    ``2026-W49`` (weekly, an ISO week), ``2026-11`` (monthly) or ``lifetime`` (a budget
    that never resets)."""
    limit: Decimal
    spent: Decimal
    threshold: int
    """Percent of the limit: the threshold reached, 100 for ``exceeded``."""
    at: datetime
    """When the crossing was recorded (UTC)."""
    refused: bool = False
    """An ``exceeded`` alert raised by a refused call (``BudgetExceededError``)."""

    @property
    def text(self) -> str:
        """One line for a human: what crossed, and the figures."""
        scope = f"project '{self.project}'"
        if self.budget_key is not None:
            scope += f", budget key '{self.budget_key}'"
        figures = f"{usd(self.spent)} of {usd(self.limit)}, period {self.period}"
        if self.kind == "threshold":
            return f"llm_toll: {scope} has spent {self.threshold}% of its budget ({figures})"
        if self.refused:
            return f"llm_toll: {scope} refused a call over its budget ({figures})"
        return f"llm_toll: {scope} has exceeded its budget ({figures})"

    def slack_message(self) -> dict[str, Any]:
        """The webhook's JSON body: Slack's ``text``, and an attachment whose fields hold
        each figure (exact decimals), as Slack, Mattermost and other compatible receivers
        show them."""
        fields = [
            ("project", self.project),
            ("budget key", self.budget_key or ""),
            ("period", self.period),
            ("limit (USD)", str(self.limit)),
            ("spent (USD)", str(self.spent)),
            ("threshold (%)", str(self.threshold)),
            ("kind", "refused" if self.refused else self.kind),
        ]
        return {
            "text": self.text,
            "attachments": [
                {
                    "fallback": self.text,
                    "color": "warning" if self.kind == "threshold" else "danger",
                    "fields": [
                        {"title": title, "value": value, "short": True}
                        for title, value in fields
                        if value
                    ],
                    "footer": "llm_toll",
                    "ts": int(self.at.timestamp()),
                }
            ],
        }


AlertCallback = Callable[[Alert], object]
"""``on_threshold`` / ``on_exceeded``: called with the Alert in llm_toll's alert thread."""


def usd(amount: Decimal) -> str:
    """An exact amount for a human: every significant decimal, and at least cents."""
    text = format(amount.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"
