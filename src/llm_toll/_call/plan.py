"""What a decorated function was configured with: the plan every call of it follows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from llm_toll._budget.limits import every_limit
from llm_toll._budget.records import BudgetSpec
from llm_toll._warnings import warn_once
from llm_toll.exceptions import UsageWarning
from llm_toll.rate_limiter import RateLimiter

if TYPE_CHECKING:
    from llm_toll.alerts._options import AlertOptions

StoreErrorPolicy = Literal["allow", "refuse"]
"""What a call does when the budget store cannot be used before it: go ahead unchecked
(with an AccountingWarning), or be refused (BudgetExceededError)."""
STORE_ERROR_POLICIES: tuple[StoreErrorPolicy, ...] = ("allow", "refuse")
UnpricedPolicy = Literal["warn", "refuse"]
"""What a request to a model with no known price does: go ahead and be recorded at $0
with a PricingMatrixOutdatedWarning, or be refused before it is sent (UnpricedModelError)."""
UNPRICED_POLICIES: tuple[UnpricedPolicy, ...] = ("warn", "refuse")


class CostArgument(NamedTuple):
    """A parameter of a decorated function that says what its calls cost (``model``,
    ``max_tokens``...), for calls that do not pass it by keyword."""

    name: str
    position: int | None
    """Its place among positional arguments; None when it is keyword-only."""
    default: Any
    """Its default; ``NO_DEFAULT`` when it has none."""


NO_DEFAULT: Any = object()


class BudgetScope(NamedTuple):
    """A budget a call must pass: the project's (``key`` None) or one budget key's."""

    spec: BudgetSpec
    key: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a decorator was configured with; shared by all calls of one function."""

    name: str
    project: str
    model: str | None = None
    budget: BudgetSpec | None = None
    limiter: RateLimiter | None = None
    extract_usage: Callable[[Any], Any] | None = None
    budget_key: Callable[..., Any] | None = None
    """Computes a call's budget key (a tenant) from the call's arguments."""
    key_budget: BudgetSpec | None = None
    """Each budget key's own budget, on top of the project's."""
    key_in_metrics: bool = False
    strict: bool = False
    """Reserve each call's worst-case cost before it runs (see ``_call.strict``)."""
    estimate: Callable[..., Any] | None = None
    """``callable(*args, **kwargs)`` returning a call's worst-case cost in USD."""
    wait: bool = False
    """Wait out a rate limit (``retry_after``, then try again) instead of raising."""
    shared_limits: bool = False
    """Check the rate limits in the store, shared by every process that uses it."""
    max_run_cost_nanos: int | None = None
    """Each run's cap (``max_run_cost=``): a request is refused once the run has spent it."""
    clamp: bool = True
    """Strict requests: lower a request's output cap to what the budget has left (False:
    refuse the request instead)."""
    on_store_error: StoreErrorPolicy = "allow"
    """When the store cannot be read or reserve before a call (``gates.store_unavailable``)."""
    on_unpriced: UnpricedPolicy = "warn"
    """When the model a request asks for has no known price: ``"refuse"`` makes the gates
    raise ``UnpricedModelError`` before it is sent."""
    alerts: AlertOptions | None = None
    """Where the alerts of its budgets go (``on_threshold``, ``on_exceeded``,
    ``alert_webhook``); None: only to ``LLM_TOLL_ALERT_WEBHOOK``, if set."""
    cost_arguments: tuple[CostArgument, ...] = ()
    """The decorated function's own parameters named ``model``, ``max_tokens`` & co.
    (``_call.arguments``): read from its calls as the function sees them."""

    def call_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call's keyword arguments as its cost is read from them: ``kwargs``, with the
        cost parameters it passed by position or left to their defaults added (the
        function itself is called with its own arguments, untouched)."""
        if not self.cost_arguments:
            return kwargs
        seen = dict(kwargs)
        for name, position, default in self.cost_arguments:
            if name in seen:
                continue
            if position is not None and position < len(args):
                seen[name] = args[position]
            elif default is not NO_DEFAULT:
                seen[name] = default
        return seen

    @property
    def rate_scope(self) -> str:
        """The store's name of this function's shared rate limits."""
        return f"{self.project}:{self.name}"

    def scopes(self, key: str | None) -> tuple[BudgetScope, ...]:
        """The budgets with a limit that a call with budget key ``key`` must pass: the
        project's first, then the key's; each scope's limit of the plan's own period
        first, then those kept in the store over other periods (``BudgetSpec.also``)."""
        scopes: tuple[BudgetScope, ...] = ()
        if self.budget is not None:
            scopes += _limited(self.budget, None)
        if key is not None and self.key_budget is not None:
            scopes += _limited(self.key_budget, key)
        return scopes

    def reserved_budget(self, key: str | None) -> BudgetSpec:
        """The project's budget a strict reservation of a call with ``key`` holds: the
        plan's, or, with none, no limit over the period of the first budget with one; with
        each period of the key's limits it lacks added without a limit (a reservation holds
        the project's row of every period it holds the key's row of)."""
        key_spec = self.key_budget if key is not None else None
        spec = self.budget or BudgetSpec(None, (key_spec or self.scopes(key)[0].spec).reset)
        if key_spec is None:
            return spec
        held = {limit.reset for limit in every_limit(spec)}
        missing = tuple(
            BudgetSpec(None, limit.reset)
            for limit in every_limit(key_spec)
            if limit.reset not in held
        )
        return replace(spec, also=spec.also + missing) if missing else spec

    def spec_of(self, key: str | None) -> BudgetSpec | None:
        """The budget of the scope named by ``key``: the key's, or the project's (None)."""
        return self.budget if key is None else self.key_budget

    def requested_model(self, kwargs: dict[str, Any] | None) -> str | None:
        """The model asked for, when known before the call: ``model=`` or a ``model``
        argument."""
        if self.model is not None:
            return self.model
        model = None if kwargs is None else kwargs.get("model")
        return model if isinstance(model, str) and model else None

    def budget_key_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The call's budget key from the ``budget_key`` function; None when there is no
        function, it returns None, or it fails (then warned once: the call goes on unkeyed)."""
        key_fn = self.budget_key
        if key_fn is None:
            return None
        try:
            key = key_fn(*args, **kwargs)
        except Exception as exc:
            warn_once(
                f"budget-key-raised:{self.name}",
                f"llm_toll: the budget_key function of {self.name}() in project "
                f"'{self.project}' raised {exc!r}; such calls are recorded without a budget "
                "key.",
                UsageWarning,
            )
            return None
        if key is None:
            return None
        if not isinstance(key, str) or not key:
            warn_once(
                f"budget-key-type:{self.name}",
                f"llm_toll: the budget_key function of {self.name}() in project "
                f"'{self.project}' returned {key!r}, not a non-empty str; such calls are "
                "recorded without a budget key.",
                UsageWarning,
            )
            return None
        return key


def _limited(spec: BudgetSpec, key: str | None) -> tuple[BudgetScope, ...]:
    if not spec.also:  # the usual case, on every call
        return (BudgetScope(spec, key),) if spec.limit_nanos is not None else ()
    return tuple(
        BudgetScope(limit, key) for limit in every_limit(spec) if limit.limit_nanos is not None
    )
