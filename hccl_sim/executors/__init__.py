"""Layer 4: executors of schedules — the no-data predictor and the MPI executor."""
