"""Prediction needs neither torch nor mpi4py: `import hccl_sim`, `hccl_sim.predict` and `hccl-sim predict`
load them only when an emulated run or the torch backend needs them (torch's import alone is ~1 s)."""
import subprocess
import sys

CODE = """
import sys
import hccl_sim
hccl_sim.predict("allreduce", 1 << 20, 64, topology="two-level:server=8", dtype="bf16")
from hccl_sim.cli import main
main(["predict", "allreduce", "--size", "1M", "--ranks", "8", "-d", "fp16,int8", "-o", "sum,avg"])
assert "torch" not in sys.modules and "mpi4py" not in sys.modules, sorted(m for m in ("torch", "mpi4py") if m in sys.modules)
from hccl_sim.dtypes import DTYPES  # asking for torch dtypes loads torch
assert "torch" in sys.modules and len(DTYPES) >= 10
"""


def test_prediction_imports_neither_torch_nor_mpi4py():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
