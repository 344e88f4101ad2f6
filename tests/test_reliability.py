"""A rank that hangs, stops or dies mid-run: the others fail fast and clearly, and the job ends."""
import os
import subprocess
import sys
import time

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "failing_rank.py")


def _orphans(grace=5.0):
    """Processes of the script still alive ``grace`` seconds after mpirun returned (the launcher's
    kill of the last ranks can land just after it exits)."""
    deadline = time.monotonic() + grace
    while True:
        left = subprocess.run(["pgrep", "-f", SCRIPT], capture_output=True, text=True).stdout.split()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["absent", "stop"])
def test_missing_rank_is_named_by_every_other_rank(tmp_path, mode):
    start = time.monotonic()
    proc = subprocess.run(["mpirun", "-n", "3", sys.executable, SCRIPT, mode, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    reports = {name: (tmp_path / name).read_text() for name in sorted(os.listdir(tmp_path))}
    assert sorted(reports) == ["rank0.txt", "rank1.txt"], proc.stdout + proc.stderr
    for text in reports.values():
        assert "allreduce: timed out after 3 s waiting for rank(s) 2" in text and "missing=[2]" in text
        assert 3.0 <= float(text.rsplit("after=", 1)[1]) < 6.0
    assert elapsed < 30  # the 3 s timeout, start-up, and the abort that ends the hung rank
    assert not _orphans()


def test_killed_rank_is_named_and_the_job_ends(tmp_path):
    """A rank SIGKILLed mid-run. Plain mpirun tears the whole job down at once (no rank is left waiting);
    with -disable-auto-cleanup and the rank behind a shell (so the launcher sees an exit, not a signal),
    the survivors it leaves running time out naming the dead rank. (MPICH 5's launcher still ends some
    survivors early, silently; every survivor that reports names rank 2.)"""
    start = time.monotonic()
    proc = subprocess.run(["mpirun", "-n", "3", sys.executable, SCRIPT, "kill", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "signal 9" in proc.stdout + proc.stderr
    assert time.monotonic() - start < 30
    assert not _orphans()

    start = time.monotonic()
    command = f"{sys.executable} {SCRIPT} kill {tmp_path}; exit $?"
    proc = subprocess.run(["mpirun", "-disable-auto-cleanup", "-n", "3", "sh", "-c", command],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    reports = [(tmp_path / name).read_text() for name in sorted(os.listdir(tmp_path))]
    assert reports and set(os.listdir(tmp_path)) <= {"rank0.txt", "rank1.txt"}, proc.stdout + proc.stderr
    for text in reports:
        assert "allreduce: timed out after 3 s waiting for rank(s) 2" in text and "missing=[2]" in text
        assert 3.0 <= float(text.rsplit("after=", 1)[1]) < 6.0
    assert elapsed < 30
    assert not _orphans()
