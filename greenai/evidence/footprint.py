"""The Markdown of ``greenai report``: ``summary.md`` (the totals) and ``FOOTPRINT.md`` (the
SCI method as applied to these rows). What varies comes from the rows; the method text is
fixed and says where each figure comes from. Pure text; writing the files is the caller's."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from greenai.core.settings import Settings
from greenai.core.time import format_time
from greenai.evidence.accounting import embodied_grams
from greenai.evidence.report import EvidenceRow, Facts, Totals, facts_of, totals_by

SCI_SPEC = "https://sci.greensoftware.foundation/"
GROUPINGS = (("signal",), ("signal", "meter"), ("signal", "source"))
TOTAL_COLUMNS = (
    "runs", "energy kWh", "operational g", "embodied g", "counterfactual g", "saved g",
)  # fmt: skip


def _g(value: float) -> str:
    return f"{value:.3f}"


def _total_cells(totals: Totals) -> list[str]:
    operational = _g(totals.operational_g)
    if totals.operational_rows < totals.runs:
        operational += f" ({totals.runs - totals.operational_rows} unknown)"
    counterfactual, saved = _g(totals.counterfactual_g), _g(totals.saved_g)
    if totals.saved_rows < totals.runs:
        saved += f" ({totals.runs - totals.saved_rows} unknown)"
    energy = f"{totals.energy_kwh:.6f}"
    return [str(totals.runs), energy, operational, _g(totals.embodied_g), counterfactual, saved]


def _table(header: Iterable[str], lines: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def summary_markdown(rows: list[EvidenceRow], scope: str) -> str:
    """``summary.md``: totals by signal, then by signal and meter, then by signal and source.
    Rows of different signals are never added together."""
    text = ["# greenai report: summary", "", scope, ""]
    text += [
        "Grams are summed over the rows where they are known; `(N unknown)` counts rows whose",
        "cell is empty (no intensity history). Counterfactual and saved grams are summed over",
        "the same rows. Average and marginal figures are never added together.",
    ]
    for keys in GROUPINGS:
        text += ["", f"## By {' and '.join(keys)}", ""]
        groups = totals_by(rows, *keys)
        text += _table(
            [*keys, *TOTAL_COLUMNS],
            ([*key, *_total_cells(t)] for key, t in groups.items()),
        )
    return "\n".join(text) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"`{name}` ({_runs(n)})" for name, n in counts.items()) or "none"


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _span(first: datetime | None, last: datetime | None) -> str:
    return f"from {format_time(first)} to {format_time(last)}" if first and last else "(none)"


def embodied_matches(rows: Iterable[EvidenceRow], settings: Settings) -> int:
    """How many rows' ``embodied_g`` is what these settings' factors give (to the CSV's
    rounding): the CSV does not record the factors a row was written with."""
    return sum(
        math.isclose(
            row.embodied_g,
            embodied_grams(settings, row.gpu_count, row.duration_s),
            rel_tol=1e-4,
            abs_tol=2e-6,
        )
        for row in rows
    )


def footprint_markdown(rows: list[EvidenceRow], settings: Settings, scope: str) -> str:
    """``FOOTPRINT.md``: the SCI method as applied to ``rows``."""
    facts = facts_of(rows)
    parts = [
        "# FOOTPRINT: how these emissions were obtained",
        "",
        scope,
        "",
        *_boundary(facts),
        *_meters(facts),
        *_sources(facts),
        *_formulas(),
        *_embodied(rows, settings),
        *_caveats(facts),
    ]
    return "\n".join(parts) + "\n"


def _boundary(facts: Facts) -> list[str]:
    return [
        "## Boundary",
        "",
        f"Runs that ran {_span(facts.first_start, facts.last_finish)}, one row",
        "of the SCI evidence CSV (docs/formats.md §4) each. Inside the boundary: the energy",
        "the meters attribute to each run (GPU, CPU and RAM parts where measured) and the",
        "embodied share of the GPUs and host the run reserved, for the time it reserved them.",
        "Outside it: cooling and other data-centre overhead (no PUE factor is applied),",
        "networking, storage systems, idle time between runs, and the scheduler itself.",
        "",
    ]


METER_TEXT = {
    "nvml": "the GPU's cumulative energy counter read through NVML",
    "nvml-power": "NVML power readings integrated over time (no energy counter on that GPU)",
    "codecarbon": "CodeCarbon's tracker (its CPU and RAM models and counters)",
    "rapl": "Intel/AMD RAPL energy counters of the CPU package and DRAM",
    "estimate": "a model, not a measurement: declared power (`GREENAI_POWER_WATTS`) or TDP "
    "times the run's duration",
}


def _meters(facts: Facts) -> list[str]:
    lines = ["## Meters and how each column was obtained", "", "Meters in these rows:", ""]
    for meter, count in facts.meters.items():
        parts = meter.split("+")
        described = "; ".join(
            f"`{p}`: {METER_TEXT.get(p, 'not a meter greenai names')}" for p in parts
        )
        lines.append(f"- `{meter}`, {_runs(count)}: {described}")
    return [
        *lines,
        "",
        "- `cpu_kwh`, `gpu_kwh`, `ram_kwh`, `energy_kwh`: from the meter above, per part;",
        "  `energy_kwh` is their sum.",
        "- `actual_intensity`, `operational_g`: the run's energy timeline charged interval by",
        "  interval at the intensity history of its source (below).",
        "- `counterfactual_intensity`, `counterfactual_g`: the same energy timeline shifted to",
        "  start at `submitted_at`, charged the same way.",
        "- `saved_g`: `counterfactual_g - operational_g` (negative when waiting made it worse).",
        "- `embodied_g`: the settings' embodied factors (below), amortised over the run's time.",
        "- `forecast_intensity`: what the deciding policy expected, from the forecast it used.",
        "",
    ]


def _sources(facts: Facts) -> list[str]:
    return [
        "## Data sources and signal types",
        "",
        f"- Intensity sources (provider:region): {_counts(facts.sources)}.",
        f"- Signals: {_counts(facts.signals)}.",
        f"- Fallbacks (a source that stood in for the configured one): {_counts(facts.fallbacks)}.",
        "",
        "`average` is the grid's mean intensity over all generation; `marginal` is the",
        "intensity of the generation that responds to a change in demand. Every intensity and",
        "gram figure of one row uses that row's signal.",
        "",
    ]


def _formulas() -> list[str]:
    return [
        "## Formulas",
        "",
        f"Software Carbon Intensity (SCI, Green Software Foundation, {SCI_SPEC}):",
        "",
        "    SCI = (E x I + M) / R      per row: (operational_g + embodied_g) / units",
        "",
        "- `O = E x I` is time-resolved: the run is cut at the intensity grid's boundaries,",
        "  each piece's energy is read from the meter's cumulative timeline (spread evenly",
        "  over the run when there is none) and charged at that interval's intensity:",
        "  `operational_g = sum_i E_i x I_i`; `actual_intensity = operational_g / energy_kwh`.",
        "- Counterfactual: the same `E_i` shifted by `submitted_at - started_at` (had the job",
        "  started when it was submitted): `counterfactual_g = sum_i E_i x I(t_i + shift)`.",
        "- `M = TE x TiR/EL x RR/ToR`: `TE x RR/ToR` = `kg_per_gpu x gpus + kg_host x gpus /",
        "  host_gpus` (a run without GPUs pays one GPU's share of the host), `TiR` = the run's",
        "  duration, `EL` = the hardware lifetime.",
        "- `R`: the functional unit of each row (`functional_unit`, `units`).",
        "",
    ]


def _embodied(rows: list[EvidenceRow], settings: Settings) -> list[str]:
    matching = embodied_matches(rows, settings)
    return [
        "## Embodied factors",
        "",
        "The CSV does not record the factors a row was written with; these are the settings",
        f"of this report, and {matching} of {len(rows)} rows' `embodied_g` agree with them.",
        "",
        "| setting | value | source |",
        "|---|---|---|",
        f"| `GREENAI_EMBODIED_KG_PER_GPU` | {settings.embodied_kg_per_gpu:g} kgCO2e | order of "
        "magnitude of cradle-to-gate estimates for one data-centre GPU board: NVIDIA's product "
        "carbon footprint summaries for HGX H100/B200 baseboards; Chien et al., HotCarbon '23 "
        "(an A100 with 1/8 of its host ~318 kg). No link is recorded in greenai. |",
        f"| `GREENAI_EMBODIED_KG_HOST` | {settings.embodied_kg_host:g} kgCO2e | lower end of the "
        "~1,200-2,500 kgCO2e of Dell and HPE product carbon footprints for 2-socket rack "
        "servers. No link is recorded in greenai. |",
        f"| `GREENAI_HOST_GPUS` | {settings.host_gpus} | GPUs the host's share is split over; a "
        "configuration choice, not a published figure. |",
        f"| `GREENAI_HARDWARE_LIFETIME_YEARS` | {settings.hardware_lifetime_years:g} years | "
        "the usual amortisation period for servers and accelerators; no published source is "
        "cited. |",
        "",
        "These defaults are estimates; take your vendor's product carbon footprint where you",
        "have one.",
        "",
    ]


def _caveats(facts: Facts) -> list[str]:
    return [
        "## Caveats",
        "",
        "- Average and marginal signals are never mixed in one row, and the summary never adds",
        "  them together; they answer different questions (attribution vs consequence).",
        f"- Estimates: the energy of {_runs(facts.estimated)} comes wholly or partly from the",
        "  `estimate` meter's model (declared power or TDP), not from a measurement.",
        f"- Unknown values: {facts.no_operational} runs have no operational figure (no",
        f"  intensity history), {facts.no_counterfactual} no counterfactual, {facts.no_forecast}",
        "  no forecast intensity. Empty cells are unknown, never 0, and are left out of sums.",
        "- Intensities are the sources' figures (forecasts where no actual value was",
        "  published); their own methods and uncertainties apply.",
        "- Counterfactuals assume the run would have drawn the same energy profile had it",
        "  started at submission, and that deferring it did not move anyone else's work.",
        "- Shared nodes: a run is charged only the GPUs it was given. NVML counts a GPU's",
        "  energy whoever used it: where other processes used the GPU too, the run gets its",
        "  share by per-process utilisation, else an even split between the process groups",
        "  seen; CodeCarbon and RAPL count the whole CPU package and DRAM, and a run gets its",
        "  CPU-time share of the host. Each row's `notes` say which rule applied. Work outside",
        "  greenai that NVML cannot see (another container's processes) is not split off.",
        "- MIG: an instance is charged its share of its GPU's compute slices of the GPU's",
        "  energy, but the whole GPU's embodied share (conservative: the GPU is counted once",
        "  per instance running on it).",
        "- The embodied share is an amortised estimate, not a measurement.",
        "",
    ]
