"""Liveness, Prometheus metrics and the SCI evidence file."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from greenai.api.deps import ApiDeps, Deps, ReadAuthorized
from greenai.scheduling.admission import budget_usage

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(deps: Deps) -> dict[str, object]:
    """Alive (answering at all); ``degraded`` with the problems of the latest tick (a stage
    that failed) until a tick passes cleanly, or while the loop has not ticked for long."""
    stats = deps.engine.stats if deps.engine else None
    problems = stats.problems(deps.clock.now(), deps.tick_every, deps.clock_speed) if stats else []
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "last_tick_at": stats.last_tick_at if stats else None,
        "ticks": stats.ticks if stats else 0,
        "last_error": stats.last_error if stats else None,
    }


class StoreCollector(Collector):
    """Reads the store at scrape time, so the numbers survive daemon restarts."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps

    def collect(self) -> Iterator[Metric]:
        store = self.deps.store
        jobs = GaugeMetricFamily("greenai_jobs", "Jobs by state", labels=["state"])
        for state, count in store.count_by_state().items():
            jobs.add_metric([str(state)], count)
        yield jobs
        decisions = CounterMetricFamily(
            "greenai_decisions", "Decisions by action", labels=["action"]
        )
        for action, count in sorted(store.count_by_action().items()):
            decisions.add_metric([action], count)
        yield decisions
        totals = store.totals()
        yield CounterMetricFamily(
            "greenai_deferral_seconds", "Seconds runs waited", totals.deferral_s
        )
        yield CounterMetricFamily(
            "greenai_energy_kwh", "Energy of finished runs", totals.energy_kwh
        )
        yield CounterMetricFamily(
            "greenai_emissions_grams", "Operational gCO2", totals.operational_g
        )
        yield CounterMetricFamily("greenai_saved_grams", "gCO2 saved vs. no wait", totals.saved_g)
        yield from self._budget_metrics()
        yield from self._engine_metrics()

    def _budget_metrics(self) -> Iterator[Metric]:
        """Each project's budget and what its current period has used (measured + estimated)."""
        deps = self.deps
        usages = budget_usage(deps.store, deps.store.budgets(), deps.clock.now(), deps.power_watts)
        limit = GaugeMetricFamily(
            "greenai_budget_grams", "Carbon budget per period, gCO2e", labels=["project"]
        )
        used = GaugeMetricFamily(
            "greenai_budget_used_grams",
            "Budget used in the current period: measured runs + admitted jobs' estimates, gCO2e",
            labels=["project"],
        )
        for usage in usages:
            limit.add_metric([usage.budget.project], usage.budget.limit_g)
            used.add_metric([usage.budget.project], usage.used_g)
        yield limit
        yield used

    def _engine_metrics(self) -> Iterator[Metric]:
        stats = self.deps.engine.stats if self.deps.engine else None
        yield CounterMetricFamily(
            "greenai_provider_errors",
            "Forecast refreshes that failed",
            stats.provider_errors if stats else 0,
        )
        yield CounterMetricFamily(
            "greenai_provider_fallbacks",
            "Forecasts a fallback source answered",
            stats.fallbacks if stats else 0,
        )
        for name, help_text, value in (
            ("greenai_start_failures", "Runs the executor could not start", "start_failures"),
            ("greenai_lost_runs", "Runs that ended with nothing saying how", "lost_runs"),
            (
                "greenai_accounting_failures",
                "Runs accounted without intensity",
                "accounting_failures",
            ),
        ):
            yield CounterMetricFamily(name, help_text, getattr(stats, value) if stats else 0)
        errors = CounterMetricFamily("greenai_tick_errors", "Failed tick stages", labels=["stage"])
        for stage, count in sorted((stats.stage_errors if stats else {}).items()):
            errors.add_metric([stage], count)
        yield errors


def metrics_registry(deps: ApiDeps) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(deps))
    return registry


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/evidence.csv", response_class=FileResponse, dependencies=[ReadAuthorized])
def evidence_csv(deps: Deps) -> Response:
    """The SCI evidence file, one row per finished run (empty until the first run ends)."""
    path = deps.evidence_path
    if path is None or not path.is_file():
        return Response("", media_type="text/csv")
    return FileResponse(path, media_type="text/csv", filename="evidence.csv")
