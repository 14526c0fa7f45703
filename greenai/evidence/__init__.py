"""Evidence: the SCI CSV of finished runs, the decision log, and the accounting behind them."""

from greenai.evidence.accounting import (
    counterfactual,
    embodied_grams,
    time_resolved_intensity,
)
from greenai.evidence.decisions import (
    DECISION_KEYS,
    append_decision,
    append_decisions,
    decision_to_dict,
)
from greenai.evidence.records import build_run_record
from greenai.evidence.sci import SCI_COLUMNS, append_run

__all__ = [
    "DECISION_KEYS",
    "SCI_COLUMNS",
    "append_decision",
    "append_decisions",
    "append_run",
    "build_run_record",
    "counterfactual",
    "decision_to_dict",
    "embodied_grams",
    "time_resolved_intensity",
]
