"""scripts/compare.py: Atlas 950 SuperPoD against NVL144, predicted, with figures."""
import csv
import os
import subprocess
import sys

import hccl_sim

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "compare.py")


def test_compare_writes_table_results_and_figures(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--ranks", "16,2048", "-b", "1M", "-e", "4M", "-f", "4",
                           "--outdir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["topology"], r["ranks"], r["size_bytes"]) for r in rows} == {
        (t, r, s) for t in ("atlas950-superpod", "nvl144") for r in ("16", "2048") for s in ("1048576", "4194304")}
    # the figures exist and are PNGs, one comparison per rank count
    for ranks in (16, 2048):
        path = tmp_path / f"compare_allreduce_linear_{ranks}r_fp32_topologies.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the table's ratio is nvl144's modeled time over the Atlas 950's, as the predictor gives them
    line = next(l for l in proc.stdout.splitlines() if l.split()[:2] == ["2048", "4M"])
    atlas = hccl_sim.predict("allreduce", (4 << 20) // 4, 2048, topology="atlas950-superpod").time
    nvl = hccl_sim.predict("allreduce", (4 << 20) // 4, 2048, topology="nvl144").time
    assert float(line.split()[-1]) == round(nvl / atlas, 2)
