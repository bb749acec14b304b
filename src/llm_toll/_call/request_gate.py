"""A strict provider request's reservation: its worst case reserved under the caps of its
runs and in the budget store before it is sent, its output cap set or lowered to what the
budget has left, waiting while requests in flight hold the room it needs."""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from llm_toll import _runtime
from llm_toll._budget.records import Reservation
from llm_toll._call.gates import store_unavailable
from llm_toll._call.plan import Plan
from llm_toll._call.request_bound import RequestBound
from llm_toll._call.strict import RESERVATION_TTL_S, store_refusal
from llm_toll.exceptions import BudgetExceededError
from llm_toll.pricing import default_registry
from llm_toll.store import StoreError
from llm_toll.usage import Usage

if TYPE_CHECKING:
    from llm_toll._call.run import Run

# A request without an output cap gets this one in strict mode (lowered further when the
# budget pays for less); one whose budget pays for fewer output tokens than this is refused.
DEFAULT_OUTPUT_CAP = 4096
MIN_ANSWER_TOKENS = 16
# A strict request whose room is held by requests in flight waits for them, backing off
# from the first pause to the longest, for at most this long in all.
STRICT_WAIT_S = 120.0
WAIT_FIRST_S = 0.002
WAIT_MAX_S = 0.05


class Granted(NamedTuple):
    """What a strict request was admitted with."""

    reservation: Reservation | None
    """Its worst case, reserved in the store; None when no store budget applies (only run
    caps bound it)."""
    output_cap: int | None
    """The output cap it is sent with; None for a request without output."""
    requested_cap: int | None
    """The cap it asked for (None: it had none)."""
    amount_nanos: int
    run_held: int
    """What it holds under the caps of its runs until it is recorded."""
    choices: int = 1

    @property
    def output_limit(self) -> int | None:
        """The most output tokens its reservation pays for (None: it has no output)."""
        return None if self.output_cap is None else self.output_cap * self.choices

    @property
    def lowered(self) -> bool:
        """True when llm_toll set the cap the request is sent with (lower than its own, or
        it had none)."""
        return self.output_cap is not None and self.output_cap != self.requested_cap


def unbounded(plan: Plan, why: str) -> BudgetExceededError:
    """The refusal of a strict request whose worst case cannot be known: strict budgets
    never fall back to a plain check."""
    return BudgetExceededError(
        f"strict budget of project '{plan.project}': a request was refused because its "
        f"worst-case cost cannot be bounded: {why}.",
        project=plan.project,
    )


class RequestGate:
    """One strict request's reservation, attempted until it is granted or refused.

    Each attempt (:meth:`attempt`, blocking: async callers run it in the worker) reserves
    the request's worst case under its runs' caps and in the store. The output cap is
    lowered only to what the budgets have *left* (limit - spent); when what is left pays for
    the request but requests in flight hold that room (their worst cases, reserved), the
    attempt asks to wait: they settle at their real cost, which gives most of it back.
    """

    __slots__ = (
        "_base",
        "_per_token",
        "bound",
        "cap",
        "clamp",
        "key",
        "now",
        "plan",
        "run",
        "waited",
        "waits",
    )

    def __init__(
        self,
        plan: Plan,
        key: str | None,
        now: datetime,
        bound: RequestBound,
        *,
        run: Run | None,
    ) -> None:
        self.plan = plan
        self.key = key
        self.now = now
        self.bound = bound
        self.run = run
        self.clamp = plan.clamp
        self.cap = bound.cap if bound.cap is not None else DEFAULT_OUTPUT_CAP
        self.waited = 0.0
        self.waits = 0
        self._base = self._per_token = 0

    def refusal(self) -> BudgetExceededError | None:
        """Why the request cannot be reserved at all, before any attempt; None when it can
        (then its prices are worked out)."""
        model = self.bound.model
        if not default_registry.has_model(model):  # a fallback price is a guess, not a bound
            return unbounded(self.plan, f"model {model!r} has no known price (price it with "
                             "default_registry.register_model())")  # fmt: skip
        if self.bound.generates and self.bound.cap is None and not self.clamp:
            return unbounded(self.plan, "it has no output cap, and clamp=False forbids "
                             "llm_toll to set one")  # fmt: skip
        self._base = self._price(0)
        # What one more token of cap costs at most (one output token for each answer asked
        # for), rounded up: a cap it affords is checked against the exact price.
        per_thousand = self._price(1000 * self.bound.choices) - self._base
        self._per_token = -(-per_thousand // 1000)
        return None

    def _price(self, output_tokens: int) -> int:
        usage = Usage(input_tokens=self.bound.input_tokens, output_tokens=output_tokens)
        return default_registry.price(self.bound.model, usage, at=self.now).cost_nanos

    def cost(self, cap: int) -> int:
        """The worst case with output cap ``cap``: the input bound and ``cap`` output tokens
        for each answer, at the model's price."""
        if not self.bound.generates:
            return self._base
        return self._price(cap * self.bound.choices)

    def _fit(self, left: int) -> int | None:
        """The output cap that ``left`` pays for (at most the current one); None when not
        even a minimal answer fits, or ``clamp=False`` forbids lowering the cap."""
        if left < self._base:
            return None
        if not self.bound.generates or self._per_token <= 0:
            return self.cap
        fits = min(self.cap, (left - self._base) // self._per_token)
        while fits > 0 and self.cost(fits) > left:  # a price that is not linear in tokens
            fits -= 1
        if fits < min(MIN_ANSWER_TOKENS, self.cap) or (fits < self.cap and not self.clamp):
            return None
        return fits

    def attempt(self) -> Granted | BudgetExceededError | float:
        """Try once: the grant, the refusal, or how many seconds to wait before the next
        attempt."""
        run = self.run
        held = 0
        caps = None if run is None else run.caps_left()
        if run is not None and caps is not None:
            fit = self._fit(caps.left)
            if fit is None:
                return self._run_refusal()
            self.cap = fit
            held = self.cost(fit)
            if held > caps.free or not run.hold(held):
                return self._wait()
        amount = self.cost(self.cap)
        reservation = None
        if self.plan.budget is not None or (self.key is not None and self.plan.key_budget):
            try:
                reservation = self._reserve(amount)
                after = None if reservation is not None else self._after_full_store()
            except NotImplementedError as exc:
                self._unhold(held)
                return unbounded(self.plan, f"the budget store could not reserve it ({exc})")
            except StoreError as exc:  # down: refused, or sent unreserved, as the plan says
                refused = store_unavailable(self.plan, exc, "reserve budget for")
                if refused is not None:
                    self._unhold(held)
                    return refused
                amount = 0
            else:
                if after is not None:
                    self._unhold(held)
                    return after
        output_cap = self.cap if self.bound.generates else None
        return Granted(reservation, output_cap, self.bound.cap, amount, held, self.bound.choices)

    def _reserve(self, amount: int) -> Reservation | None:
        plan, key = self.plan, self.key
        spec = plan.reserved_budget(key)
        return _runtime.get_store().reserve(
            plan.project,
            budget_key=key,
            spec=spec,
            at=self.now,
            amount_nanos=amount,
            ttl_s=RESERVATION_TTL_S,
            key_spec=plan.key_budget if key is not None else None,
        )

    def _after_full_store(self) -> BudgetExceededError | float:
        """The store had no room for the worst case: lower the cap to what the budgets have
        left and try again at once, or wait for requests in flight, or refuse. ``StoreError``
        when the store cannot be read."""
        store = _runtime.get_store()
        scopes = self.plan.scopes(self.key)
        lefts: list[int] = []
        frees: list[int] = []
        for scope in scopes:
            limit = scope.spec.limit_nanos
            if limit is None:
                continue
            reset = scope.spec.reset
            spent = store.get_spent(self.plan.project, reset, self.now, budget_key=scope.key)
            reserved = store.get_reserved(self.plan.project, reset, self.now, budget_key=scope.key)
            lefts.append(limit - spent)
            frees.append(limit - spent - reserved)
        fit = self._fit(min(lefts, default=0))
        if fit is None:
            return store_refusal(store, self.plan, scopes=scopes, now=self.now, amount=self.cost(
                min(self.cap, MIN_ANSWER_TOKENS) if self.bound.generates else 0))  # fmt: skip
        self.cap = fit
        if self.cost(fit) <= min(frees, default=0):
            return 0.0
        return self._wait()

    def _wait(self) -> BudgetExceededError | float:
        """How long to wait for requests in flight to settle (backing off); the refusal
        once ``STRICT_WAIT_S`` have passed."""
        if self.waited >= STRICT_WAIT_S:
            return BudgetExceededError(
                f"strict budget of project '{self.plan.project}': the room a request needs "
                f"has been held by requests in flight for {self.waited:.0f} s",
                project=self.plan.project,
            )
        pause: float = min(WAIT_MAX_S, WAIT_FIRST_S * 2 ** min(self.waits, 10))
        pause *= 0.5 + random.random()  # jitter: waiters do not retry in step
        self.waits += 1
        self.waited += pause
        return pause

    def _unhold(self, held: int) -> None:
        if held and self.run is not None:
            self.run.unhold(held)

    def _run_refusal(self) -> BudgetExceededError:
        assert self.run is not None
        refusal = self.run.refusal(strict=True)
        assert refusal is not None  # a run without caps never refuses
        return refusal


def stream_overrun(plan: Plan, limit: int) -> BudgetExceededError:
    """The error of a strict request's stream cut at its reservation: the provider sent
    more output than the cap it was asked for."""
    return BudgetExceededError(
        f"strict budget of project '{plan.project}': a stream ran past the {limit} output "
        "tokens its reservation pays for (the provider did not keep to the request's cap); "
        "it was closed, and its tokens so far are recorded",
        project=plan.project,
    )
