"""`hccl-sim sweep FILE`: a grid of cases from one YAML or TOML file, into one resumable results file.

    mpirun -n 8 hccl-sim sweep grid.yaml          # emulated: real data through the collectives
    hccl-sim sweep grid.yaml --predict            # no MPI: the predictor, any rank counts

- ``spec.py``: the sweep file (its fields) and the grid of cases it expands to;
- ``results.py``: the resumable results file and the progress line;
- ``runners.py``: the loop over the cases, with the predicting and the emulating runner.
"""
from .runners import run
from .spec import SweepError, expand, load_sweep

__all__ = ["SweepError", "expand", "load_sweep", "run"]
