"""Workloads: a recorded training run (format.py) and its replay at any scale and topology (replay.py)."""
from .format import FORMAT, VERSION, Group, Workload, WorkloadError, load, parse
from .replay import ReplayResult, ScaleError, StepResult, parse_scale, replay

__all__ = ["FORMAT", "VERSION", "Group", "Workload", "WorkloadError", "load", "parse", "ReplayResult", "ScaleError",
           "StepResult", "parse_scale", "replay"]
