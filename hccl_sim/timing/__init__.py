"""Layer 3: the timing model, shared by the MPI executor and the predictor."""
from .engine import EXACT_TRANSFERS, Engine, StepwiseEngine, TimingModel, TimingResult, choose_engine
from .exact import ExactEngine
from .fairshare import max_min_rates
from .table import RECORD_DTYPE, TransferTable, empty_records

__all__ = ["EXACT_TRANSFERS", "Engine", "ExactEngine", "StepwiseEngine", "RECORD_DTYPE", "TimingModel", "TimingResult", "TransferTable",
           "choose_engine", "empty_records", "max_min_rates"]
