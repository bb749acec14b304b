"""The exceptions llm_toll raises on purpose, and the warning it gives for unpriced models."""

from __future__ import annotations


class BudgetExceededError(Exception):
    """A budget was already spent when a call was about to start (or, with
    ``strict=True``, the call's worst-case cost did not fit in what was left of it).

    Raised before the wrapped function runs, so no money is spent on the refused call.

    ``budget_key`` is set when the spent budget is that of one key of the project (a
    per-tenant budget, ``key_budget=``); ``max_budget`` is then the key's budget.
    ``scope`` says which limit refused: ``"project"``, ``"key"`` or ``"run"`` (a run's cap,
    ``max_run_cost=`` / ``run(max_cost=...)``: ``current_cost`` is then the run's spend and
    ``max_budget`` its cap), ``"store"``: the budget could not be checked because the
    store is down, and the call's ``on_store_error="refuse"`` (the message says why), or
    ``"unpriced"``: the model asked for has no known price and the call's
    ``on_unpriced="refuse"`` (an :class:`UnpricedModelError`).
    """

    project: str | None
    current_cost: float | None
    max_budget: float | None
    budget_key: str | None
    scope: str

    def __init__(
        self,
        message: str | None = None,
        *,
        project: str | None = None,
        current_cost: float | None = None,
        max_budget: float | None = None,
        budget_key: str | None = None,
        scope: str | None = None,
    ) -> None:
        self.project = project
        self.current_cost = current_cost
        self.max_budget = max_budget
        self.budget_key = budget_key
        self.scope = scope or ("key" if budget_key is not None else "project")
        if message is None and None not in (project, current_cost, max_budget):
            scope = f"project '{project}'"
            if budget_key is not None:
                scope += f", budget key '{budget_key}'"
            message = f"Budget exceeded for {scope}: ${current_cost:.4f} >= ${max_budget:.4f}"
        super().__init__(*(() if message is None else (message,)))


class UnpricedModelError(BudgetExceededError):
    """A request to a model with no known price was refused before it was sent, because
    its run said ``on_unpriced="refuse"``: a budget cannot hold a call it cannot price.

    A ``BudgetExceededError`` (``scope="unpriced"``), so code that handles budget refusals
    handles it too; ``model`` is the model asked for. Register its price
    (``default_registry.register_model``) or a fallback price to let such requests through.
    """

    model: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        project: str | None = None,
        model: str | None = None,
    ) -> None:
        self.model = model
        if message is None and model is not None:
            message = (
                f"llm_toll refused a request to model {model!r}"
                + ("" if project is None else f" in project '{project}'")
                + " before it was sent: no price is known for it, and on_unpriced='refuse'. "
                "Register its price with llm_toll.default_registry.register_model("
                f"{model!r}, input_cost_per_token, output_cost_per_token)."
            )
        super().__init__(message, project=project, scope="unpriced")


class LocalRateLimitError(Exception):
    """A local requests-per-minute or tokens-per-minute limit would be breached."""

    limit_type: str | None
    limit_value: int | None
    retry_after: float | None

    def __init__(
        self,
        message: str | None = None,
        *,
        limit_type: str | None = None,
        limit_value: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.limit_type = limit_type
        self.limit_value = limit_value
        self.retry_after = retry_after
        if message is None and limit_type is not None and limit_value is not None:
            message = f"Rate limit exceeded: {limit_value} {limit_type} limit reached."
            if retry_after is not None:
                message += f" Retry after {retry_after:.1f}s."
        super().__init__(*(() if message is None else (message,)))


class PricingMatrixOutdatedWarning(UserWarning):
    """A model has no known price: its tokens are recorded, its cost as 0 and flagged."""


class UsageWarning(UserWarning):
    """Usage could not be read from a response, or was estimated instead of reported."""


class AccountingWarning(UserWarning):
    """The budget store could not be read or written; the call went on, and a record that
    could not be written is kept in memory and written when the store recovers."""


class TelemetryWarning(UserWarning):
    """Telemetry (spans, metrics, export) failed; the call itself and its accounting are fine."""
