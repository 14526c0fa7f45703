"""Evidence: the SCI CSV of finished runs, the decision log, and the accounting behind them."""

from greenai.evidence.accounting import counterfactual, embodied_grams, time_resolved_intensity
from greenai.evidence.decisions import (
    DECISION_KEYS,
    append_decision,
    append_decisions,
    decision_to_dict,
    decode_decision,
    encode_decision,
)
from greenai.evidence.records import FinishedRun, account_run, intensity_history
from greenai.evidence.sci import SCI_COLUMNS, append_row, append_run, run_ids, sci_row

__all__ = [
    "DECISION_KEYS",
    "SCI_COLUMNS",
    "FinishedRun",
    "account_run",
    "append_decision",
    "append_decisions",
    "append_row",
    "append_run",
    "counterfactual",
    "decision_to_dict",
    "decode_decision",
    "embodied_grams",
    "encode_decision",
    "intensity_history",
    "run_ids",
    "sci_row",
    "time_resolved_intensity",
]
