"""Budget alerts without a Collector: ``on_threshold=`` / ``on_exceeded=`` callbacks and a
Slack-compatible webhook, fired once per crossing across every process sharing the store.

``Alert`` is what a callback receives; the options are those of ``@track_costs`` and
``llm_toll.run(...)`` (``on_threshold``, ``on_exceeded``, ``alert_webhook``), and the
environment variable ``LLM_TOLL_ALERT_WEBHOOK`` names a webhook for every budget.
"""

from __future__ import annotations

from llm_toll.alerts._alert import WEBHOOK_ENV, Alert, AlertCallback, AlertKind

__all__ = ["WEBHOOK_ENV", "Alert", "AlertCallback", "AlertKind"]
