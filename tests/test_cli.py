"""The hccl-sim command line: bench under mpirun agrees with predict, and runs are reproducible."""
import csv
import io
import json
import shutil
import subprocess
import sys

import pytest

import hccl_sim.algorithms
from hccl_sim.cli import build_parser, sizes_from

HCCL_SIM = [sys.executable, "-m", "hccl_sim.cli"]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_sizes_follow_nccl_tests():
    args = build_parser().parse_args(["bench", "allreduce", "-b", "8K", "-e", "64K", "-f", "2"])
    assert sizes_from(args) == [8192, 16384, 32768, 65536]
    args = build_parser().parse_args(["bench", "allreduce", "-b", "1M", "-e", "3M", "-i", "1M"])
    assert sizes_from(args) == [1 << 20, 2 << 20, 3 << 20]
    args = build_parser().parse_args(["bench", "allreduce"])
    assert (args.iters, args.warmup_iters, args.check, sizes_from(args)) == (20, 5, 1, [32 << 20])


def test_bench_matches_predict_and_is_reproducible():
    common = ["-b", "1K", "-e", "256K", "-f", "4", "--algo", "ring", "--topology", "two-level:server=2",
              "--format", "csv"]
    bench = ["mpirun", "-n", "4"] + HCCL_SIM + ["bench", "allreduce", "-n", "2", "-w", "1"] + common
    first = _csv(_run(bench))
    predicted = _csv(_run(HCCL_SIM + ["predict", "allreduce", "--ranks", "4"] + common))
    assert [r["size_bytes"] for r in first] == ["1024", "4096", "16384", "65536", "262144"]
    for b, p in zip(first, predicted):
        assert b["modeled_time_us"] == p["modeled_time_us"]
        assert b["busbw_GBps"] == p["busbw_GBps"]
        assert b["wrong"] == "0"
    # oversubscribed again, then pinned to a single core: the same modeled times to the last digit
    again = _csv(_run(bench))
    runs = [again]
    if shutil.which("taskset"):
        runs.append(_csv(_run(["taskset", "-c", "0"] + bench)))
    for other in runs:
        assert [r["modeled_time_us"] for r in other] == [r["modeled_time_us"] for r in first]


def test_predict_json_and_auto():
    rows = json.loads(_run(HCCL_SIM + ["predict", "allreduce", "--size", "64M", "--ranks", "8", "--format", "json"]))
    assert len(rows) == 1 and rows[0]["size_bytes"] == 64 << 20 and rows[0]["algo"] in hccl_sim.algorithms.algorithms_for("allreduce")
    assert rows[0]["busbw_GBps"] == pytest.approx(rows[0]["algbw_GBps"] * 2 * 7 / 8)


@pytest.mark.parametrize("argv,message", [
    (["predict", "allreduce", "--topology", "nope"], "unknown"),
    (["predict", "allreduce", "-d", "complex64"], "dtype"),
    (["predict", "allreduce", "-d", "int32", "-o", "mean"], "reduce op 'mean'"),
    (["predict", "allreduce", "--topology", "flat:npus=4", "--ranks", "8"], "more NPUs"),
    (["predict", "allreduce", "--topology", "flat:bw=-1"], "bandwidth"),
    (["predict", "frobnicate"], "not supported"),
])
def test_bad_input_is_named(argv, message):
    proc = subprocess.run(HCCL_SIM + argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_algos_and_topology_listing():
    assert "2(p-1)a" in _run(HCCL_SIM + ["algos"])
    assert "two-level" in _run(HCCL_SIM + ["topology", "list"])
    assert "level1 top" in _run(HCCL_SIM + ["topology", "show", "two-level", "--ranks", "16"])
