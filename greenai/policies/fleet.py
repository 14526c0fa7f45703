"""``fleet``: the whole queue planned onto the GPU capacity, re-planned at every step.

Planned one by one, every flexible job chases the same clean night, overflows it, and rigid
work queues behind it past its SLA. ``fleet`` plans the batch into one occupancy grid
(``cells.py``: the forecast steps cut into cells of at most 15 min) instead:

- Rigid jobs (``flexible=0``, no slack left, or beyond the flexible fraction) first, first
  come first served, at their earliest room: now when slots are free, else they wait.
- Then flexible jobs, greedily: those that must start within two forecast steps first, then
  by ``order``: ``deadline`` (the default), its latest start; ``regret``, the gap between
  the mean and the best of a job's starts, so a job with one good start comes before one
  with many; or ``saving``, its saving per GPU-hour against starting now. Each takes the
  cheapest start (intensity plus the price of the cells it holds, below) whose every cell
  has room before its deadline (an hour's margin before its latest start), outside the room
  kept for rigid arrivals (``reserve.py``); failing that, its earliest such room (planned
  late), and the reserve only when there is no other room at all.
- Cell prices (``_priced``): placed one by one from the queue alone, the first jobs took the
  cleanest room and later ones, queued or yet to arrive, ran in dirty hours although the first
  could have run almost as cleanly elsewhere. So before placing, a Lagrangian relaxation of
  the capacity prices every cell by how far the flexible jobs queued and those expected
  (``fleet_arrivals.py``: the last day's flexible arrivals, again) ask for more than its
  room; the greedy placement then sees each cell's scarcity.
- ``max_flexible_fraction`` F: at most F of the queued GPU-hours (the batch and the held
  slots' remaining work) wait for carbon; the jobs with the largest saving per GPU-hour stay
  flexible and the rest run as rigid.

Savings per GPU-hour are in g/kWh (start now against the best start before the deadline):
equal to grams per GPU-hour at equal power per GPU, which a batch does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from greenai.policies.base import BatchPlan, BoolArray, Capacity, IntArray, JobBatch, Policy
from greenai.policies.cells import Cells, make_cells, window_mins
from greenai.policies.fleet_arrivals import ArrivalMemory
from greenai.policies.fleet_reasons import fleet_reasons
from greenai.policies.placement import NO_ROOM, Run, cheapest_fit, earliest_fit, take
from greenai.policies.registry import register
from greenai.policies.reserve import forecast_rigid, reserve_per_cell
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray

ORDERS = ("saving", "regret", "deadline")
URGENT_STEPS = 2  # a job that must start within this many forecast steps is placed first


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """How ``fleet`` plans: the flexible fraction, the greedy order, the rigid reserve's
    forecast (a quantile of past demand by hour of day, or the mean with ``None``) and the
    longest cell of the occupancy grid (forecast steps are cut evenly into such cells). A
    flexible job is planned to start ``margin_minutes`` before its latest start at the
    latest: planned right at it, rigid arrivals in between made it late by minutes. With
    ``protect_reserve`` flexible work never takes the room kept for rigid arrivals unless no
    other room exists at all: it is planned late instead (rigid SLAs come first).
    ``price_rounds`` rounds of ``price_step`` set the cell prices (0: none); with
    ``expect_arrivals`` the prices count the flexible jobs the last day says will come."""

    max_flexible_fraction: float = 1.0
    order: str = "deadline"
    reserve_quantile: float | None = 0.9
    reserve_days: int = 14
    cell_minutes: float = 15.0
    margin_minutes: float = 60.0
    protect_reserve: bool = True
    price_rounds: int = 30
    price_step: float = 1.0
    expect_arrivals: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_flexible_fraction <= 1.0:
            raise ValueError("max_flexible_fraction must be in [0, 1]")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}")


@dataclass(frozen=True, eq=False)
class FleetPlan:
    """A fleet plan as cells, entry ``i`` of each job column for job ``i``. ``cell`` is the
    start cell (``NO_ROOM``: none in the grid); ``free`` is the room left in each cell.
    ``cost`` is the forecast intensity of each start, prices excluded."""

    cells: Cells
    slots: int
    free: IntArray
    cell: IntArray
    flexible: BoolArray
    demoted: BoolArray
    into_reserve: BoolArray
    late: BoolArray
    cost: FloatArray
    now_cost: FloatArray
    saving: FloatArray
    best_cell: IntArray
    reserve: IntArray
    rigid_forecast: IntArray
    forecast_how: str
    queued_gpu_h: float
    passed_over: BoolArray  # the best start still has room: left, at its price, to arrivals
    best_price: FloatArray  # the cell price a job would pay at its best start (g/kWh)

    def starts(self, now: float) -> FloatArray:
        """Planned starts: rigid work and anything without room starts (or queues) now."""
        later = self.flexible & (self.cell > 0)
        return np.where(later, self.cells.edges[np.maximum(self.cell, 0)], now)


@register
class Fleet(Policy):
    name = "fleet"
    summary = (
        "plan the whole queue onto the GPU capacity: rigid jobs first come first served, "
        "flexible ones into the lowest-carbon room before their deadlines, with room kept "
        "for rigid arrivals; re-planned at every step"
    )
    rank = 5  # before the oracle (same rank, later name): the yardstick comes last
    needs_duration = True

    def __init__(self, settings: FleetSettings | None = None) -> None:
        self.settings = settings or FleetSettings()
        self.arrivals = ArrivalMemory()  # flexible jobs seen: the arrivals to expect

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        if len(jobs) == 0:
            return BatchPlan(np.zeros(0), np.zeros(0), [])
        coming = None
        if self.settings.expect_arrivals and self.settings.price_rounds > 0:
            history = capacity.rigid_demand
            self.arrivals.see(jobs, now, None if history is None else history.first_hour)
            coming = self.arrivals.expected(jobs.origin, now)
        planned = plan_fleet(jobs, view, now, capacity, self.settings, coming)
        reasons = fleet_reasons(jobs, planned, self.settings.max_flexible_fraction)
        expected = np.where(planned.flexible & (planned.cell >= 0), planned.cost, np.nan)
        return BatchPlan(planned.starts(now), expected, reasons)


def plan_fleet(
    jobs: JobBatch,
    view: ForecastView,
    now: float,
    capacity: Capacity,
    settings: FleetSettings,
    future: JobBatch | None = None,
) -> FleetPlan:
    """Place every job of ``jobs`` into the grid from ``now`` (see the module's text);
    ``future``: flexible jobs expected to arrive, which only set the cell prices."""
    cells = make_cells(view, now, _horizon(jobs, now, capacity), settings.cell_minutes * 60)
    runs, costs = _runs(jobs, view, now, cells, settings.margin_minutes * 60)
    now_cost = np.asarray([costs[i][0] for i in range(len(jobs))])
    best = np.asarray([r.lo + int(np.argmin(c[r.lo : r.hi + 1])) if r.hi >= r.lo else 0
                       for c, r in zip(costs, runs, strict=True)])  # fmt: skip
    best_cost = np.asarray([c[b] for c, b in zip(costs, best.tolist(), strict=True)])
    saving = now_cost - best_cost
    regret = np.asarray([c[r.lo : r.hi + 1].mean() if r.hi >= r.lo else c[0]
                         for c, r in zip(costs, runs, strict=True)]) - best_cost  # fmt: skip
    can_wait = jobs.flexible & np.asarray([r.hi > r.lo for r in runs], dtype=np.bool_)
    gpu_h = jobs.gpus * jobs.remaining / 3600.0
    queued = float(gpu_h.sum()) + _held_gpu_h(capacity, now)
    flexible = _within_fraction(can_wait, saving, gpu_h, settings.max_flexible_fraction * queued)
    slots, free = _room(jobs, cells, capacity)
    reserve, forecast, how = _reserve(jobs, cells, capacity, settings)
    room = free - reserve
    cell = np.full(len(jobs), NO_ROOM, dtype=np.int64)
    first_come = np.lexsort((np.arange(len(jobs)), jobs.submit))
    for i in first_come[~flexible[first_come]].tolist():  # rigid work, first come first served
        protect = settings.protect_reserve and bool(jobs.flexible[i])
        cell[i] = _take(free, room, runs[i], earliest_fit(room if protect else free, runs[i]))
        if cell[i] == NO_ROOM and protect:
            cell[i] = _take(free, room, runs[i], earliest_fit(free, runs[i]))
    into_reserve = np.zeros(len(jobs), dtype=np.bool_)
    placing = costs
    if settings.price_rounds > 0 and flexible.any():
        extra = None
        if future is not None and len(future):
            fr, fc = _runs(future, view, now, cells, settings.margin_minutes * 60)
            extra = (future, fr, fc)
        placing = _priced(jobs, runs, costs, flexible, room, cells, settings, extra)
    priority = {"saving": saving, "regret": regret, "deadline": saving}[settings.order]
    urgent = now + URGENT_STEPS * view.step
    for i in _greedy_order(jobs, priority, flexible, settings.order, urgent).tolist():
        cell[i], into_reserve[i] = _place_flexible(free, room, runs[i], placing[i], settings)
    cost = np.asarray([costs[i][max(c, 0)] for i, c in enumerate(cell.tolist())])
    late = _late(jobs, cells, cell)
    best_price = np.asarray([placing[i][b] - costs[i][b] for i, b in enumerate(best.tolist())])
    at = np.maximum(cell, 0)
    chosen = np.asarray([placing[i][c] for i, c in enumerate(at.tolist())])
    best_placing = np.asarray([placing[i][b] for i, b in enumerate(best.tolist())])
    passed_over = flexible & (cell >= 0) & (cell != best) & (chosen < best_placing - EPS)
    for i in np.flatnonzero(passed_over).tolist():  # full by now: taken by the queue after all
        r, b = runs[i], int(best[i])
        passed_over[i] = window_mins(room, r.first_span, r.span, b, b)[0] >= r.gpus
    return FleetPlan(
        cells, slots, free, cell, flexible, can_wait & ~flexible, into_reserve, late, cost,
        now_cost, saving, best, reserve, forecast, how, queued, passed_over, best_price,
    )  # fmt: skip


def _priced(
    jobs: JobBatch,
    runs: list[Run],
    costs: list[FloatArray],
    flexible: BoolArray,
    room: IntArray,
    cells: Cells,
    settings: FleetSettings,
    extra: tuple[JobBatch, list[Run], list[FloatArray]] | None = None,
) -> list[FloatArray]:
    """Each job's start costs plus a price on the cells its run would hold.

    Placed one by one, the first jobs take the cleanest cells and the rest overflow into
    dirty ones, even when a first job could have run almost as cleanly elsewhere. Prices
    from a Lagrangian relaxation of the capacity fix that: every flexible job picks its
    cheapest start at the current prices, ignoring the others; cells asked for beyond their
    room get dearer (a subgradient step, ``price_step`` times the intensity spread over the
    square root of the round, times the excess as a share of the larger of demand and room),
    for ``price_rounds`` rounds. The mean price over the rounds is added to the intensity (per
    GPU, spread over the job's run), so the greedy placement that follows sees the
    scarcity of each cell. ``extra``: jobs expected to arrive (their batch, runs and start
    costs), which ask for room at the prices but are never placed."""
    chosen = np.flatnonzero(flexible)
    keys: dict[int, int] = {}
    rows: list[FloatArray] = []
    allc = [costs[i] for i in chosen.tolist()]
    sub = [runs[i] for i in chosen.tolist()]
    length = jobs.remaining[chosen]
    if extra is not None:
        fb, fr, fc = extra
        ok = [k for k, r in enumerate(fr) if r.hi >= r.lo]
        allc += [fc[k] for k in ok]
        sub += [fr[k] for k in ok]
        length = np.concatenate((length, fb.remaining[ok]))
    for c in allc:
        if id(c) not in keys:
            keys[id(c)] = len(rows)
            rows.append(c)
    base = np.vstack(rows)
    row = np.asarray([keys[id(c)] for c in allc])
    lo = np.asarray([r.lo for r in sub])
    hi = np.maximum(np.asarray([r.hi for r in sub]), lo)
    span = np.asarray([r.span for r in sub])
    first = np.asarray([r.first_span for r in sub])
    gpus = np.asarray([r.gpus for r in sub], dtype=np.float64)
    n = cells.count
    width = cells.edges[1:] - cells.edges[:-1]
    at = lo[:, None] + np.arange(int((hi - lo).max()) + 1)[None, :]
    at = np.minimum(at, n - 1)
    fixed = np.where(at > hi[:, None], np.inf, base[row[:, None], at])
    spans, span_row = np.unique(span, return_inverse=True)
    at_zero = at[:, 0] == 0
    cut = np.minimum(np.arange(n)[None, :] + spans[:, None], n)
    per_length = 1.0 / length
    limit = np.maximum(room, 0).astype(np.float64)
    spread = float(np.ptp(base[np.isfinite(base)])) if np.isfinite(base).any() else 0.0
    price = np.zeros(n)
    mean = np.zeros(n)
    picks = np.arange(len(sub))
    for k in range(settings.price_rounds):
        paid = np.concatenate(([0.0], np.cumsum(price * width)))
        held = paid[cut] - paid[:n][None, :]  # price of a run of each span from each cell
        value = fixed + held[span_row[:, None], at] * per_length[:, None]
        value[at_zero, 0] = fixed[at_zero, 0] + paid[first[at_zero]] * per_length[at_zero]
        pick = np.argmin(value, axis=1)
        start = at[picks, pick]
        stop = np.minimum(np.where(start == 0, first, start + span), n)
        load = np.zeros(n + 1)
        np.add.at(load, start, gpus)
        np.add.at(load, stop, -gpus)
        asked = np.cumsum(load[:-1])
        over = (asked - limit) / np.maximum(np.maximum(asked, limit), 1.0)
        price = np.maximum(price + settings.price_step * spread / np.sqrt(k + 1) * over, 0.0)
        mean += price
    mean /= settings.price_rounds
    paid = np.concatenate(([0.0], np.cumsum(mean * width)))
    out = list(costs)
    done: dict[tuple[int, float], FloatArray] = {}
    starts = np.arange(n)
    for i in chosen.tolist():
        r = runs[i]
        key = (id(costs[i]), float(jobs.remaining[i]))
        priced = done.get(key)
        if priced is None:
            stop = np.minimum(np.where(starts == 0, r.first_span, starts + r.span), n)
            priced = done[key] = costs[i] + (paid[stop] - paid[starts]) / jobs.remaining[i]
        out[i] = priced
    return out


def _horizon(jobs: JobBatch, now: float, capacity: Capacity) -> float:
    """Far enough for every deadline, and for a late job to start once every hold has ended
    and the rigid jobs ahead of it have run (their GPU-time spread over all the slots)."""
    held = capacity.holds
    freed = float(held.end.max(initial=now)) if held is not None else now
    rigid = ~jobs.flexible
    drain = float((jobs.gpus[rigid] * jobs.remaining[rigid]).sum()) / (capacity.slots or np.inf)
    return float(max(jobs.deadline.max(), freed, now) + drain + jobs.remaining.max())


def _runs(
    jobs: JobBatch, view: ForecastView, now: float, cells: Cells, margin: float
) -> tuple[list[Run], list[FloatArray]]:
    """Each job's ``Run`` and the mean forecast intensity of each start cell (shared by jobs
    of one length)."""
    starts = cells.edges[:-1]
    grid = view.grid_until(float(cells.edges[-1] + jobs.remaining.max()))
    latest = np.where(jobs.flexible, jobs.deadline - jobs.remaining - margin, -np.inf)
    his = np.searchsorted(starts, latest + EPS, side="right") - 1
    los = np.where(jobs.submit > now + EPS, np.searchsorted(starts, jobs.submit - EPS), 0)
    by_length: dict[float, tuple[FloatArray, int, int]] = {}
    runs, costs = [], []
    for length, gpus, lo, hi in zip(
        jobs.remaining.tolist(), jobs.gpus.tolist(), los.tolist(), his.tolist(), strict=True
    ):
        shared = by_length.get(length)
        if shared is None:
            begin = starts - view.origin
            mean = grid.integral(begin, begin + length) / max(length, EPS)
            shared = by_length[length] = (mean, *cells.spans(length))
        runs.append(Run(gpus, shared[1], shared[2], lo, min(hi, cells.count - shared[2])))
        costs.append(shared[0])
    return runs, costs


def _room(jobs: JobBatch, cells: Cells, capacity: Capacity) -> tuple[int, IntArray]:
    """The slots and the room left in each cell by what is already held."""
    held = cells.held(capacity.holds)
    if capacity.holds is None:
        held[0] += capacity.in_use
    slots = capacity.slots
    if slots is None:  # no limit: room for everything at once
        slots = int(jobs.gpus.sum()) + int(held.max(initial=0)) + 1
    return slots, slots - held


def _held_gpu_h(capacity: Capacity, now: float) -> float:
    holds = capacity.holds
    if holds is None:
        return 0.0
    left = np.maximum(holds.end - np.maximum(holds.start, now), 0.0)
    return float((holds.gpus * left).sum()) / 3600.0


def _within_fraction(
    can_wait: BoolArray, saving: FloatArray, gpu_h: FloatArray, limit: float
) -> BoolArray:
    """Jobs kept flexible: those that can wait, largest saving first, while their GPU-hours
    stay within ``limit``."""
    ranked = np.flatnonzero(can_wait)
    ranked = ranked[np.argsort(-saving[ranked], kind="stable")]
    kept = ranked[np.cumsum(gpu_h[ranked]) <= limit + 1e-9]
    flexible = np.zeros(can_wait.size, dtype=np.bool_)
    flexible[kept] = True
    return flexible


def _greedy_order(
    jobs: JobBatch, value: FloatArray, flexible: BoolArray, order: str, urgent_before: float
) -> IntArray:
    """Flexible jobs in the order they get room: jobs that must start before
    ``urgent_before`` first (ordered by the others' measure, they were squeezed out and
    made late), then by ``value``, largest first, or by latest start."""
    latest = jobs.deadline - jobs.remaining
    calm = latest >= urgent_before
    keys = (-value, latest, calm) if order == "deadline" else (latest, -value, calm)
    ranked = np.lexsort(keys)  # the last key sorts first
    return ranked[flexible[ranked]]


def _place_flexible(
    free: IntArray, room: IntArray, run: Run, cost: FloatArray, settings: FleetSettings
) -> tuple[int, bool]:
    """The cheapest start with room outside the reserve before the deadline; failing that,
    with ``protect_reserve`` the earliest such start after it (late), else the cheapest start
    in the reserve; and with no room outside the reserve anywhere, the earliest at all.
    Returns the cell and whether it took reserved slots."""
    cell = _take(free, room, run, cheapest_fit(room, run, cost))
    if cell == NO_ROOM and not settings.protect_reserve:
        cell = _take(free, room, run, cheapest_fit(free, run, cost))
        if cell != NO_ROOM:
            return cell, True
    if cell == NO_ROOM:
        cell = _take(free, room, run, earliest_fit(room, run))
    if cell == NO_ROOM:
        cell = _take(free, room, run, earliest_fit(free, run))
        return cell, cell != NO_ROOM
    return cell, False


def _take(free: IntArray, room: IntArray, run: Run, cell: int) -> int:
    if cell != NO_ROOM:
        take(free, run, cell)
        take(room, run, cell)
    return cell


def _reserve(
    jobs: JobBatch, cells: Cells, capacity: Capacity, settings: FleetSettings
) -> tuple[IntArray, IntArray, str]:
    """GPUs kept for rigid arrivals in each cell, the forecast behind them and how it was made."""
    zeros = np.zeros(cells.count, dtype=np.int64)
    if capacity.slots is None:
        return zeros, zeros, "no capacity limit"
    quantile, days = settings.reserve_quantile, settings.reserve_days
    known = cells.held(capacity.holds, rigid_only=True)
    forecast = forecast_rigid(capacity.rigid_demand, quantile, days, float(known[0]))
    epoch = jobs.origin.timestamp() + cells.edges[:-1]
    reserve, expected = reserve_per_cell(forecast, epoch, known)
    return reserve, expected, forecast.describe()


def _late(jobs: JobBatch, cells: Cells, cell: IntArray) -> BoolArray:
    """Jobs planned to finish after their deadline, or with no room in the grid."""
    begins = cells.edges[np.maximum(cell, 0)]
    return (cell == NO_ROOM) | (begins + jobs.remaining > jobs.deadline + EPS)
