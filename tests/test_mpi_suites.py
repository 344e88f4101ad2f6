"""Runs tests/mpi under mpirun for each rank count; every rank must pass."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RANKS = [int(n) for n in os.environ.get("HCCL_SIM_TEST_RANKS", "1,2,3,4,5,8").split(",")]


@pytest.mark.parametrize("nranks", RANKS)
def test_mpi_suite(nranks):
    cmd = ["mpirun", "-n", str(nranks), sys.executable, "-m", "pytest", "--with-mpi", "-q", "-x",
           "-p", "no:cacheprovider", os.path.join(HERE, "mpi")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
