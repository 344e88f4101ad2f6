"""Layer 3: the timing model, shared by the MPI executor and the predictor."""
from .engine import EXACT_TRANSFERS, EXACT_WORK, Engine, StepwiseEngine, TimingModel, TimingResult, choose_engine
from .exact import ExactEngine, OverBudget
from .fairshare import max_min_rates
from .table import RECORD_DTYPE, TransferTable, empty_records

__all__ = ["EXACT_TRANSFERS", "EXACT_WORK", "Engine", "ExactEngine", "OverBudget", "RECORD_DTYPE", "StepwiseEngine",
           "TimingModel", "TimingResult", "TransferTable", "choose_engine", "empty_records", "max_min_rates"]
