"""Record (or check) the modeled time of every algorithm of every collective on every preset at 8, 64,
1,024 and 8,192 ranks: the values a refactor must leave unchanged (tests/test_recorded_predictions.py).

    python tests/scripts/record_predictions.py tests/data/recorded_predictions.jsonl [PRESET ...]  # record
    python tests/scripts/record_predictions.py --check tests/data/recorded_predictions.json  # compare all

The test compares the cases that took under half a second of CPU to record; ``--check`` compares every one.
"""
from __future__ import annotations

import json
import signal
import sys
import time

RANKS = (8, 64, 1024, 8192)
COLLECTIVES = ("allreduce", "allgather", "reduce_scatter", "broadcast", "reduce", "alltoall", "scatter", "gather")
BYTES = 1 << 22  # 4 MiB of fp32 working buffer: divisible by every rank count above
CPU_BUDGET = 5.0  # seconds of CPU per case when recording; slower cases are left out ("over budget")
MEMORY_BUDGET = 4 << 30  # bytes of address space per recording process, likewise


class OverBudget(Exception):
    pass


def _over_budget(signum, frame):
    raise OverBudget


def cases(only=None):
    """(preset, ranks, collective, algorithm) for every preset that holds (or grows to) the ranks."""
    from hccl_sim.algorithms import algorithms_for
    from hccl_sim.topology import presets  # noqa: F401  (registers the presets)
    from hccl_sim.topology.registry import PRESETS, load_topology
    from hccl_sim.topology.core import TopologyError
    for preset in sorted(only or PRESETS):
        for n in RANKS:
            try:
                load_topology(preset, min_npus=n)
            except TopologyError:
                continue
            for collective in COLLECTIVES:
                for algo in algorithms_for(collective):
                    yield preset, n, collective, algo


def predict(preset, n, collective, algo):
    """Modeled seconds, or the error's text when the algorithm does not fit the case."""
    import hccl_sim
    try:
        return hccl_sim.predict(collective, BYTES // 4, n, topology=preset, algo=algo).time
    except (ValueError, RuntimeError) as error:
        return f"error: {type(error).__name__}"


def same(recorded, value) -> bool:
    """Equal errors, or times equal to 1e-12 relative (float order may change in an engine)."""
    if isinstance(recorded, str) or isinstance(value, str):
        return recorded == value
    return abs(value - recorded) <= 1e-12 * abs(recorded)


def check(path) -> int:
    with open(path) as f:
        recorded = json.load(f)
    wrong = 0
    for key, entry in recorded.items():
        if entry["time"] == "over budget":
            continue
        preset, n, collective, algo = key.split("/")
        value = predict(preset, int(n), collective, algo)
        if not same(entry["time"], value):
            wrong += 1
            print(f"{key}: recorded {entry['time']}, now {value}", flush=True)
    print(f"{len(recorded)} cases, {wrong} differ")
    return 1 if wrong else 0


def main(path, only=None):
    """Append one JSON line per case to ``path`` (cases already there are kept), then write ``path``
    without its ``l`` suffix as one JSON object (``x.jsonl`` -> ``x.json``)."""
    import os
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BUDGET, MEMORY_BUDGET))
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            done = {entry.pop("case"): entry for entry in map(json.loads, f)}
    signal.signal(signal.SIGPROF, _over_budget)
    with open(path, "a") as log:
        for case in cases(only):
            key = "/".join(map(str, case))
            if key in done:
                continue
            start = time.process_time()
            signal.setitimer(signal.ITIMER_PROF, CPU_BUDGET)
            try:
                value = predict(*case)
            except (OverBudget, MemoryError):
                value = "over budget"
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            done[key] = {"time": value, "cpu": round(time.process_time() - start, 3)}
            log.write(json.dumps({"case": key, **done[key]}) + "\n")
            log.flush()
            print(*case, value, done[key]["cpu"], flush=True)
    if not only:
        with open(path.removesuffix("l"), "w") as f:
            json.dump(done, f, indent=0, sort_keys=True)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    main(sys.argv[1], sys.argv[2:])
