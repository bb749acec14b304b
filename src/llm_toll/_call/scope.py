"""``llm_toll.run(...)``: a run as a ``with`` (or ``async with``) block, and
``llm_toll.instrument(...)``: the run of every request made outside any other."""

from __future__ import annotations

from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from llm_toll import _hooks
from llm_toll._call.gates import Admission, admit, admit_async
from llm_toll._call.plan import Plan
from llm_toll._call.run import Run, current_run, set_process_run
from llm_toll._worker import worker

DEFAULT_RUN_NAME = "llm_toll.run"


class RunScope:
    """The context manager ``llm_toll.run()`` returns; its ``__enter__`` gives the Run.

    Without ``project`` (or any other budget option), a run inside another inherits the
    enclosing run's project, budgets and budget key, and adds only its own cap.
    """

    def __init__(
        self, project: str | None, *, max_cost: float | None, name: str | None, **options: Any
    ) -> None:
        from llm_toll._options import text_option, usd_option
        from llm_toll._runtime import check_store_environment
        from llm_toll.decorator import plan_options

        self._cap = usd_option("max_cost", max_cost)
        self._name = name or DEFAULT_RUN_NAME
        key = text_option("budget_key", options.pop("budget_key", None))
        self._own_plan: Plan | None = None
        if project is not None or options or key is not None:
            fields = plan_options(
                # An empty project is refused by name, not quietly made "default".
                project="default" if project is None else project,
                budget_key=None if key is None else (lambda *a, **k: key),
                max_run_cost=max_cost,
                **options,
            )
            fields["max_run_cost_nanos"] = None  # the cap of this run only, not of its plan
            self._own_plan = Plan(name=self._name, **fields)
        check_store_environment()
        self._run: Run | None = None
        self._tokens: Any = None

    def _inherited(self) -> tuple[Plan, Admission] | None:
        """The enclosing run's plan and key, for a run that sets no budget of its own."""
        if self._own_plan is not None:
            return None
        enclosing = current_run()
        plan = enclosing.plan if enclosing is not None else Plan(name=self._name, project="default")
        key = enclosing.budget_key if enclosing is not None else None
        return plan, Admission(datetime.now(timezone.utc), key, None, None)

    def _start(self, plan: Plan, admission: Admission) -> Run:
        run = Run(plan, admission, name=self._name, max_cost_nanos=self._cap)
        self._run = run
        self._tokens = run.enter()
        return run

    def __enter__(self) -> Run:
        _hooks.ensure_installed()
        inherited = self._inherited()
        if inherited is not None:
            return self._start(*inherited)
        assert self._own_plan is not None
        return self._start(self._own_plan, admit(self._own_plan, (), {}))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._end()
        run.end(exc)

    async def __aenter__(self) -> Run:
        _hooks.ensure_installed()
        inherited = self._inherited()
        if inherited is not None:
            return self._start(*inherited)
        assert self._own_plan is not None
        return self._start(self._own_plan, await admit_async(self._own_plan, (), {}))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._end()
        worker.submit(run.end, exc)  # span ends off the loop, as a call's does

    def _end(self) -> Run:
        run = self._run
        assert run is not None, "the run was not entered"
        Run.exit(self._tokens)
        run.release_unused()
        return run


def run(
    project: str | None = None,
    *,
    max_cost: float | None = None,
    name: str | None = None,
    **options: Any,
) -> RunScope:
    """A run as a block: every provider request made inside (at any depth, across awaits,
    in tasks it creates, in ``asyncio.to_thread``) is gated before it is sent, becomes a span
    under the run's, and is recorded once.

    ``max_cost`` (USD) caps the run: once its requests have spent it, the next is refused
    with ``BudgetExceededError`` before it is sent; a run inside another keeps its own cap
    and counts in the enclosing one. ``name`` names the run's span. The other options are
    those of ``track_costs`` (``max_budget``, ``reset``, ``rate_limit``, ``strict``...), but
    ``budget_key`` is the key itself, a ``str``. Use as ``with llm_toll.run(...) as r:`` or
    ``async with``; ``r.cost`` and ``r.requests`` are the run's figures so far.
    """
    return RunScope(project, max_cost=max_cost, name=name, **options)


def instrument(
    project: str | None = None, *, max_cost: float | None = None, **options: Any
) -> bool:
    """Hook the provider SDKs now (an explicit ``@track_costs`` or ``run()`` does it too).

    With ``project`` (or any budget option), every request made outside any run is tracked
    too, under that project and its budgets, with no decorator at all. Returns False when
    ``LLM_TOLL_HOOKS`` turns the hooks off.
    """
    tracked = project is not None or bool(options) or max_cost is not None
    # The options are checked (a ValueError) before the SDKs are touched.
    scope = RunScope(project, max_cost=max_cost, name="llm_toll.instrument", **options)
    active = _hooks.install()
    if tracked:
        plan = scope._own_plan or Plan(name="llm_toll.instrument", project="default")
        key = plan.budget_key_of((), {})
        admission = Admission(datetime.now(timezone.utc), key, None, None)
        set_process_run(
            Run(plan, admission, name="llm_toll.instrument", max_cost_nanos=scope._cap, span=False)
        )
    return active


def uninstrument() -> None:
    """Take the hooks off the SDKs, and forget the run of requests made outside any run."""
    _hooks.uninstall()
    set_process_run(None)
