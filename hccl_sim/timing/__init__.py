"""Layer 3: the timing model, shared by the MPI executor and the predictor."""
from .engine import TimingModel, TimingResult, max_min_rates, simulate

__all__ = ["TimingModel", "TimingResult", "max_min_rates", "simulate"]
