"""torch's own distributed test suite on a backend: ``DistributedTest._DistTestBase`` from the torch wheel
(``torch/testing/_internal/distributed/distributed_test.py``), run as torch's test_distributed_spawn.py
runs it: each test in fresh processes (``WORLD_SIZE`` of them) with its own process group, file://
rendezvous.

    python scripts/torch_suite.py --backend gloo --write-passing tests/data/torch_suite_gloo_passing.txt
    python scripts/torch_suite.py --backend hccl_sim [--only tests/data/torch_suite_gloo_passing.txt]
    python scripts/torch_suite.py --backend hccl_sim -k test_all_reduce --start fork
    python scripts/torch_suite.py --backend hccl_sim --as-gloo   # hccl_sim standing in for gloo

The suite gates many tests on the backend's name (``BACKEND == "gloo"``, "Only gloo backend supports
timeouts", "get_future is only supported on mpi, nccl and gloo"), so under its own name hccl_sim skips
some tests gloo runs. ``--as-gloo`` runs the suite exactly as for gloo (same tests, same branches) with
every group the tests ask gloo for made by hccl_sim instead: the comparison with gloo test by test.

Prints one line per test (pass / fail / error / skip with the first line of the reason) and the counts.
``--start fork`` forks the test processes instead of spawning them (the same tests, seconds cheaper each:
no fresh interpreter importing torch), which is what CI uses. Exit status 1 if a test fails or errors.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _stand_in_for_gloo() -> None:
    """Process groups asked of gloo are made by hccl_sim (its gloo transport makes ProcessGroupGloo itself)."""
    import torch.distributed.distributed_c10d as c10d

    make = c10d._new_process_group_helper
    if getattr(make, "stand_in", False):
        return

    def helper(group_size, group_rank, global_ranks_in_group, backend, *args, **kwargs):
        if str(backend).lower() == "gloo":
            backend = "hccl_sim"
        return make(group_size, group_rank, global_ranks_in_group, backend, *args, **kwargs)
    helper.stand_in = True
    c10d._new_process_group_helper = helper


def _suite_class():
    """torch's spawn runner class, built after BACKEND/WORLD_SIZE are in the environment (read at import)."""
    if os.environ.get("BACKEND") == "hccl_sim" or os.environ.get("HCCL_SIM_SUITE_AS_GLOO"):
        import hccl_sim.torch  # noqa: F401  registers the backend (also in every spawned child)
    if os.environ.get("HCCL_SIM_SUITE_AS_GLOO"):
        _stand_in_for_gloo()
    from torch.testing._internal.distributed.distributed_test import DistributedTest, TestDistBackend

    start = os.environ.get("HCCL_SIM_SUITE_START", "spawn")

    class TestDistBackendWithSpawn(TestDistBackend, DistributedTest._DistTestBase):
        def setUp(self):
            super().setUp()
            if start == "fork":  # what _spawn_processes does, with the fork context
                import torch.multiprocessing
                self._start_processes(torch.multiprocessing.get_context("fork").Process)
            else:
                self._spawn_processes()

    TestDistBackendWithSpawn.__module__ = __name__
    TestDistBackendWithSpawn.__qualname__ = "TestDistBackendWithSpawn"
    return TestDistBackendWithSpawn


if os.environ.get("BACKEND"):  # also when a spawned child imports this file as its main module
    TestDistBackendWithSpawn = _suite_class()


class _Result(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, tuple[str, str]] = {}

    def _put(self, test, outcome, detail=""):
        name = test.id().rsplit(".", 1)[-1]
        lines = [line for line in str(detail).strip().splitlines() if line.strip()]
        self.outcomes[name] = (outcome, lines[-1][:300] if lines else "")
        print(f"{outcome:<5} {name}" + (f"  -- {self.outcomes[name][1]}" if outcome != "pass" else ""), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._put(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._put(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._put(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._put(test, "skip", reason)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="hccl_sim")
    parser.add_argument("--world-size", type=int, default=3)
    parser.add_argument("--start", choices=("spawn", "fork"), default="spawn")
    parser.add_argument("--only", help="a file of test names (one a line): run just those")
    parser.add_argument("-k", dest="pattern", help="run the tests whose name contains this")
    parser.add_argument("--write-passing", help="write the names of the passing tests to this file")
    parser.add_argument("--as-gloo", action="store_true", help="hccl_sim stands in for gloo (see above)")
    args = parser.parse_args(argv)
    if args.as_gloo:
        if args.backend != "hccl_sim":
            parser.error("--as-gloo: only with --backend hccl_sim")
        os.environ["HCCL_SIM_SUITE_AS_GLOO"] = "1"
    os.environ.update(BACKEND="gloo" if args.as_gloo else args.backend, WORLD_SIZE=str(args.world_size),
                      HCCL_SIM_SUITE_START=args.start)
    os.environ.setdefault("TEMP_DIR", tempfile.mkdtemp(prefix="torch_suite_"))
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID"):
        os.environ.pop(name, None)  # torch's rendezvous, never MPI's
    cls = _suite_class()
    globals()["TestDistBackendWithSpawn"] = cls
    names = unittest.TestLoader().getTestCaseNames(cls)
    if args.only:
        with open(args.only) as f:
            wanted = {line.strip() for line in f if line.strip() and not line.startswith("#")}
        missing = wanted - set(names)
        if missing:
            raise SystemExit(f"--only: not tests of this torch's suite: {sorted(missing)[:5]}")
        names = [n for n in names if n in wanted]
    if args.pattern:
        names = [n for n in names if args.pattern in n]
    suite = unittest.TestSuite(cls(n) for n in names)
    runner = unittest.TextTestRunner(resultclass=_Result, verbosity=0, stream=open(os.devnull, "w"))
    result = runner.run(suite)
    counts = {k: sum(1 for o, _ in result.outcomes.values() if o == k) for k in ("pass", "fail", "error", "skip")}
    print(f"{args.backend}{' as gloo' if args.as_gloo else ''}, world size {args.world_size}, {args.start}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
          flush=True)
    if args.write_passing:
        import torch
        with open(args.write_passing, "w") as f:
            f.write(f"# tests of torch {torch.__version__}'s DistributedTest._DistTestBase that pass on "
                    f"{args.backend} (world size {args.world_size}),\n# made by: python scripts/torch_suite.py "
                    f"--backend {args.backend} --world-size {args.world_size} --start {args.start} "
                    f"--write-passing FILE\n")
            f.writelines(n + "\n" for n, (o, _) in sorted(result.outcomes.items()) if o == "pass")
    return 1 if counts["fail"] or counts["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
