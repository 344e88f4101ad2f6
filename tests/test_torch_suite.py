"""torch's own distributed test suite (DistributedTest._DistTestBase from the torch wheel) on hccl_sim.

Runs, with hccl_sim standing in for gloo (``--as-gloo``: the suite's backend-name gates as for gloo, every
group it asks gloo for made by hccl_sim), every test that passes on gloo in the same runner
(tests/data/torch_suite_gloo_passing.txt, made by ``python scripts/torch_suite.py --backend gloo
--write-passing FILE``; re-make it for another torch), minus the exceptions the README lists with the
error each gets (tests/data/torch_suite_exceptions.txt). Test processes are forked rather than spawned to
keep this within about 3 minutes on 2 cores; ``python scripts/torch_suite.py --backend hccl_sim`` spawns
them, as torch's test_distributed_spawn.py does, and runs the whole suite.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")


def _names(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


def test_gloo_passing_tests_pass_on_hccl_sim(tmp_path):
    exceptions = set(_names(os.path.join(DATA, "torch_suite_exceptions.txt")))
    wanted = [n for n in _names(os.path.join(DATA, "torch_suite_gloo_passing.txt")) if n not in exceptions]
    only = tmp_path / "only.txt"
    only.write_text("\n".join(wanted) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "torch_suite.py"), "--backend", "hccl_sim",
                           "--as-gloo", "--start", "fork", "--only", str(only)], capture_output=True, text=True, timeout=900,
                          env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.split(" ")[0] in ("pass", "fail", "error", "skip")]
    bad = [line for line in lines if not line.startswith("pass")]
    assert proc.returncode == 0 and not bad, "\n".join(bad) + proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(lines) == len(wanted), proc.stdout[-3000:]
