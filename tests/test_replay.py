"""Recorded torch runs replayed: the run's own step times at the recorded scale, scaled runs, concurrent
groups sharing links, and errors naming the record and field."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from hccl_sim.workload import ScaleError, WorkloadError, load, parse, replay
from hccl_sim.workload.format import FORMAT, VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
RUNS = {"ddp": (4, "ddp.py", ["--steps", "3"]), "fsdp2": (4, "fsdp.py", ["--steps", "2"]),
        "pipeline": (2, "pipeline.py", ["--steps", "2", "--micro", "2"])}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The three examples recorded under mpirun at once (HCCL_SIM_RECORD), one file per rank."""
    folder = tmp_path_factory.mktemp("workloads")
    procs = {}
    for name, (n, script, args) in RUNS.items():
        env = {**os.environ, "HCCL_SIM_RECORD": str(folder / f"{name}.json")}
        procs[name] = subprocess.Popen(["mpirun", "-n", str(n), sys.executable, os.path.join(EXAMPLES, script), *args],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    return {name: str(folder / f"{name}.json") for name in RUNS}


@pytest.mark.parametrize("name", list(RUNS))
def test_replay_at_recorded_scale_gives_the_runs_step_times(recordings, name):
    workload = load(recordings[name])
    assert len(workload.ranks) == RUNS[name][0]
    result = replay(workload)
    recorded = np.array([[s["time"] for s in workload.steps(r)] for r in range(workload.world_size)]).T
    replayed = np.array([s.rank_times for s in result.steps])
    assert replayed.shape == recorded.shape and len(recorded) >= 2
    np.testing.assert_allclose(replayed, recorded, rtol=0.01)
    roles = {s for step in result.steps for s in step.comm_by_role}
    assert roles == {"ddp": {"dp"}, "fsdp2": {"fsdp"}, "pipeline": {"pp"}}[name]


def test_ddp_scaled_to_a_superpod(recordings):
    workload = load(recordings["ddp"])
    small = replay(workload, "atlas950-superpod", {"dp": 8})
    started = time.perf_counter()
    big = replay(workload, "atlas950-superpod", {"dp": 8192}, trace=True)
    assert time.perf_counter() - started < 60
    assert big.nranks == 8192 and big.scale == {"dp": 8192}
    # the same buckets over more ranks: more communication on the critical rank's stream
    assert big.mean("comm") > small.mean("comm") > 0
    names = {e["name"] for e in big.trace["traceEvents"] if e.get("ph") == "X"}
    assert "compute" in names and any(n.startswith("allreduce/") for n in names)


def test_fsdp_keeps_the_full_size_and_shards_it_over_the_new_group(recordings):
    workload = load(recordings["fsdp2"])
    result = replay(workload, "atlas950-superpod", {"fsdp": 64})
    assert result.nranks == 64 and set(result.steps[0].comm_by_role) == {"fsdp"}


def test_scale_that_does_not_fit_names_scale_and_topology(recordings):
    workload = load(recordings["ddp"])
    with pytest.raises(ScaleError, match=r"dp=9000.*atlas950-superpod|atlas950-superpod.*dp=9000"):
        replay(workload, "atlas950-superpod", {"dp": 9000})
    with pytest.raises(ScaleError, match="pp=4.*keep their recorded size 2"):
        replay(load(recordings["pipeline"]), "atlas950-superpod", {"pp": 4})
    with pytest.raises(ScaleError, match="tp=2: the recording has no tp groups"):
        replay(workload, "atlas950-superpod", {"tp": 2})


# ---- synthetic workloads (no torch) ---------------------------------------------------------------
def _doc(groups, programs, world):
    return {"format": FORMAT, "version": VERSION, "world_size": world, "topology": None, "placement": None,
            "compute_model": {}, "groups": groups, "ranks": [{"rank": r, "records": recs} for r, recs in programs.items()]}


def _allreduce_program(group, count=1 << 22):
    return [{"type": "step_begin", "name": "s", "clock": 0.0, "stream": 0.0},
            {"type": "compute", "seconds": 1e-6},
            {"type": "collective", "id": 0, "group": group, "kind": "allreduce", "count": count, "dtype": "fp32",
             "bytes": 4 * count, "algo": "ring", "root": 0, "issue": 0, "start": 0, "end": 0, "stream": "comm"},
            {"type": "wait", "op": 0}, {"type": "step_end", "name": "s", "time": 0.0}]


def _pairs(pairs):
    groups = [{"id": i, "ranks": list(p), "role": "tp", "name": str(i)} for i, p in enumerate(pairs)]
    programs = {r: _allreduce_program(i) for i, p in enumerate(pairs) for r in p}
    return parse(_doc(groups, programs, 4))


def _one(pair):
    groups = [{"id": 0, "ranks": list(pair), "role": "tp", "name": "0"}]
    programs = {r: (_allreduce_program(0) if r in pair else
                    [{"type": "step_begin", "name": "s"}, {"type": "step_end", "name": "s"}]) for r in range(4)}
    return parse(_doc(groups, programs, 4))


def test_concurrent_groups_sharing_a_link_slow_each_other_disjoint_ones_do_not():
    topo = "two-level:server=2,servers=2"  # ranks 0,1 on server 0; 2,3 on server 1
    shared_both = replay(_pairs([(0, 2), (1, 3)]), topo).step_time  # both cross the servers' uplinks
    shared_alone = replay(_one((0, 2)), topo).step_time
    assert shared_both > shared_alone * 1.5
    disjoint_both = replay(_pairs([(0, 1), (2, 3)]), topo).step_time  # each inside its server
    disjoint_alone = replay(_one((0, 1)), topo).step_time
    assert disjoint_both == pytest.approx(disjoint_alone, rel=1e-9)


def test_truncated_and_malformed_files_name_the_record_and_field(tmp_path, recordings):
    text = open(recordings["ddp"].replace(".json", ".rank0.json")).read()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(WorkloadError, match=r"cut.json: not valid JSON at line 1 column \d+.*truncated"):
        load(str(cut))
    doc = json.loads(text)
    bad = doc["ranks"][0]["records"]
    index = next(i for i, r in enumerate(bad) if r["type"] == "collective")
    bad[index]["count"] = "many"
    with pytest.raises(WorkloadError, match=rf"rank 0 record {index}: field 'count' must be an integer, got 'many'"):
        parse(doc, "x.json")
    del bad[index]["count"]
    with pytest.raises(WorkloadError, match=rf"rank 0 record {index}: field 'count' is missing"):
        parse(doc, "x.json")
    bad[index]["count"], bad[index]["group"] = 4, 12345
    with pytest.raises(WorkloadError, match=rf"record {index}: field 'group' 12345 is not a group"):
        parse(doc, "x.json")
    with pytest.raises(WorkloadError, match="no records of rank"):
        load(recordings["ddp"].replace(".json", ".rank0.json"))


def test_cli_replay_table_and_trace(recordings, tmp_path):
    trace, plot = tmp_path / "t.json", tmp_path / "p.png"
    proc = subprocess.run([sys.executable, "-m", "hccl_sim.cli", "replay", recordings["ddp"], "--topology",
                           "atlas950-superpod,nvl144", "--scale", "dp=16", "--trace", str(trace), "--plot", str(plot),
                           "--scales", "dp=4", "dp=16", "--from-step", "2"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "atlas950-superpod" in lines[0] and "nvl144" in lines[0]
    assert any(line.startswith("step time (us)") for line in lines)
    # the table has a column for every topology at every scale plotted (--scale's dp=16 is one of them)
    assert next(line for line in lines if line.startswith("scale")).split()[1:] == ["dp=4"] * 2 + ["dp=16"] * 2
    assert json.load(open(trace))["otherData"]["nranks"] == 16
    assert plot.stat().st_size > 1000


def test_pipeline_replicated_by_a_new_dp_dimension(recordings):
    workload = load(recordings["pipeline"])
    alone = replay(workload, "atlas950-superpod")
    replicated = replay(workload, "atlas950-superpod", {"dp": 4})
    assert replicated.nranks == 8 and replicated.scale == {"dp": 4, "pp": 2}
    assert replicated.step_time >= alone.step_time * (1 - 1e-9)


RECORD_ONE_PROCESS = """
import socket, sys
import torch, torch.distributed as dist
import hccl_sim.torch as ht
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
dist.init_process_group("hccl_sim", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
ht.configure(compute="none")
with ht.record(sys.argv[1]):
    with ht.step():
        ht.advance(1e-3)
        work = dist.all_reduce(torch.ones(1000), async_op=True)
        ht.advance(2e-3)
        work.wait()
dist.destroy_process_group()
"""


def test_record_context_manager_in_one_process(tmp_path):
    """``hccl_sim.torch.record``: an async allreduce hidden behind compute, replayed to the same step
    (in a child process: the backend's hooks stay out of this one)."""
    path = str(tmp_path / "one.json")
    proc = subprocess.run([sys.executable, "-c", RECORD_ONE_PROCESS, path], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    workload = load(path)
    kinds = [r["type"] for r in workload.ranks[0]]
    assert kinds[:4] == ["step_begin", "compute", "collective", "compute"] and "wait" in kinds
    assert workload.steps(0)[0]["time"] == pytest.approx(3e-3, rel=1e-9)  # the allreduce hidden behind 2 ms
    assert replay(workload).step_time == pytest.approx(workload.steps(0)[0]["time"], rel=1e-12)


def test_two_dimensional_mesh_scales_dp_and_replicates_tp():
    """tp groups {0,1},{2,3} (inner), dp groups {0,2},{1,3}: dp=4 makes 8 ranks, 4 tp copies, 2 dp groups of 4."""
    from hccl_sim.workload.replay import Layout

    groups = [{"id": 0, "ranks": [0, 1], "role": "tp"}, {"id": 1, "ranks": [2, 3], "role": "tp"},
              {"id": 2, "ranks": [0, 2], "role": "dp"}, {"id": 3, "ranks": [1, 3], "role": "dp"}]
    programs = {}
    for r in range(4):
        tp, dp = (0 if r < 2 else 1), (2 if r % 2 == 0 else 3)
        steps = _allreduce_program(tp, 1 << 16)
        dp_call = dict(steps[2], id=1, group=dp)
        programs[r] = steps[:4] + [dp_call, {"type": "wait", "op": 1}] + steps[4:]
    workload = parse(_doc(groups, programs, 4))
    layout = Layout(workload, {"dp": 4})
    assert layout.dims == ["dp", "tp"] and layout.nranks == 8
    assert layout.instances(0).tolist() == [[0, 1], [4, 5]] and layout.instances(1).tolist() == [[2, 3], [6, 7]]
    assert layout.instances(2).tolist() == [[0, 2, 4, 6]] and layout.instances(3).tolist() == [[1, 3, 5, 7]]
    assert layout.template.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    result = replay(workload, "atlas950-superpod", {"dp": 4})
    assert set(result.steps[0].comm_by_role) == {"tp", "dp"} and result.nranks == 8
    with pytest.raises(ScaleError, match="tp=4: tp groups keep their recorded size 2"):
        replay(workload, "atlas950-superpod", {"dp": 4, "tp": 4})


def test_a_receive_nobody_sends_is_an_error_naming_the_rank_and_record():
    groups = [{"id": 0, "ranks": [0, 1], "role": "pp"}]
    recv = {"type": "p2p", "id": 0, "group": 0, "ops": [["recv", 1, 64, 0]], "issue": 0, "start": 0, "end": 0}
    programs = {0: [{"type": "step_begin", "name": "s"}, recv, {"type": "step_end", "name": "s"}],
                1: [{"type": "step_begin", "name": "s"}, {"type": "step_end", "name": "s"}]}
    with pytest.raises(WorkloadError, match=r"none can go on: rank 0 record 1 \(p2p on group 0\)"):
        replay(parse(_doc(groups, programs, 2)))


COMMUNICATOR_RUN = """
import sys, torch
from hccl_sim import Communicator
from hccl_sim.workload.recorder import RecordingCommunicator
comm = RecordingCommunicator(Communicator(topology="atlas950-superpod"), sys.argv[1], role="dp")
for step in range(2):
    with comm.step():
        comm.advance(1e-4 * (1 + comm.rank))  # rank 1 computes longer: rank 0 waits in the allreduce
        comm.allreduce(torch.ones(1 << 16))
        peer = 1 - comm.rank
        comm.batch_send_recv([("send", torch.ones(256), peer), ("recv", torch.empty(256), peer)])
comm.save()
"""


def test_communicator_recording_replays_to_its_own_clock(tmp_path):
    path = str(tmp_path / "comm.json")
    proc = subprocess.run(["mpirun", "-n", "2", sys.executable, "-c", COMMUNICATOR_RUN, path], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workload = load(path)
    assert workload.topology == "atlas950-superpod" and workload.groups[next(iter(workload.groups))].role == "dp"
    recorded = np.array([[s["time"] for s in workload.steps(r)] for r in range(2)]).T
    result = replay(workload)
    np.testing.assert_allclose(np.array([s.rank_times for s in result.steps]), recorded, rtol=1e-9)
    assert result.steps[0].exposed > 0  # rank 1's longer compute shows as rank 0's wait


def test_flop_rate_retimes_compute_with_recorded_flops():
    workload = _pairs([(0, 1), (2, 3)])
    for records in workload.ranks:
        records[1]["flops"] = 4e9  # the 1 us compute span did 4 GFLOP
    base = replay(workload, "flat")
    fast = replay(workload, "flat", flop_rate=1e15)  # 4 us at 1 PFLOP/s
    assert base.steps[0].compute == pytest.approx(1e-6) and fast.steps[0].compute == pytest.approx(4e-6)
    assert fast.step_time == pytest.approx(base.step_time + 3e-6)


# ---- what a new user ran into (issue 18 follow-up) -------------------------------------------------
def _dp4(count=1 << 16, steps=2):
    groups = [{"id": 0, "ranks": [0, 1, 2, 3], "role": "dp", "name": "0"}]
    return _doc(groups, {r: [rec for _ in range(steps) for rec in _allreduce_program(0, count)] for r in range(4)}, 4)


def test_scale_all_on_a_sized_to_fit_topology_is_an_error_and_spares_the_other_columns(tmp_path, capsys):
    from hccl_sim.cli import main

    with pytest.raises(ScaleError, match=r"dp=all on topology flat: .*1 NPU.*give dp a number"):
        replay(parse(_dp4()), "flat", "dp=all")
    assert replay(parse(_dp4()), "nvl144", "dp=all").nranks == 144  # a preset's default size
    path = tmp_path / "dp4.json"
    path.write_text(json.dumps(_dp4()))
    assert main(["replay", str(path), "--topology", "flat,nvl144", "--scale", "dp=all", "--format", "json"]) == 1
    flat, nvl = json.loads(capsys.readouterr().out)
    assert "give dp a number" in flat["error"] and nvl["npus"] == 144 and nvl["step_us"] > 0
    assert main(["replay", str(path), "--topology", "flat,nvl144", "--scale", "dp=all"]) == 1
    table = capsys.readouterr().out
    assert "error (flat, dp=all): scale dp=all on topology flat" in table and "dp=144" in table


@pytest.mark.parametrize("field, value, message", [
    ("count", -5, "field 'count' must be >= 0, got -5"),
    ("count", 0, r"field 'bytes' 262144 disagrees with 0 x 4 bytes of fp32 = 0"),
    ("dtype", "fp33", r"field 'dtype': dtype 'fp33' is not supported"),
    ("bytes", -1, "field 'bytes' must be >= 0, got -1"),
    ("bytes", 1000, "field 'bytes' 1000 disagrees with 65536 x 4 bytes of fp32 = 262144"),
    ("root", 4, r"field 'root' 4 is not a rank of the group \(0..3\)"),
    ("seconds", "x", "field 'seconds' must be a number, got 'x'"),
    ("issue", "x", "field 'issue' must be a number, got 'x'"),
    ("algo", 3, "field 'algo' must be a string, got 3"),
])
def test_every_field_is_checked_naming_file_rank_record_and_field(field, value, message):
    doc = _dp4()
    index = 1 if field == "seconds" else 7  # rank 2's compute span, or its second collective
    doc["ranks"][2]["records"][index][field] = value
    with pytest.raises(WorkloadError, match=rf"^w.json: rank 2 record {index}: {message}"):
        parse(doc, "w.json")


def test_a_zero_size_collective_is_valid_only_when_every_member_recorded_it():
    doc = _dp4(count=0)  # count 0 and bytes 0 on every rank: an empty bucket
    assert replay(parse(doc), "atlas950-superpod").nranks == 4
    doc["ranks"][3]["records"][2].update(count=8, bytes=32)
    with pytest.raises(WorkloadError, match=r"rank 0 record 2 is allreduce of 0 fp32, rank 3 record 2 is "
                                            r"allreduce of 8 fp32"):
        replay(parse(doc), "atlas950-superpod")


def test_from_step_outside_the_recording_names_the_valid_range():
    workload = parse(_dp4(steps=4), "w.json")
    for step in (-1, 4, 9):
        with pytest.raises(WorkloadError, match=rf"w.json: from_step {step}: every rank recorded 4 step\(s\); "
                                                r"valid steps are 0..3"):
            replay(workload, "flat", from_step=step)
    assert len(replay(workload, "flat", from_step=3).steps) == 1


def test_replay_takes_a_path_or_a_workload_and_names_what_it_wants(tmp_path):
    path = tmp_path / "dp4.json"
    path.write_text(json.dumps(_dp4()))
    expected = replay(load(str(path)), "flat").step_time
    assert replay(str(path), "flat").step_time == replay(path, "flat").step_time == expected
    with pytest.raises(TypeError, match="workload must be a Workload .* or the path of a workload file .*got dict"):
        replay(_dp4(), "flat")


def test_recorder_names_arguments_however_they_were_passed():
    # a root given positionally (comm.broadcast(t, 3)) is recorded as 3, not as the default
    from types import SimpleNamespace
    from hccl_sim.workload.recorder import WorkloadRecorder

    class FakeComm:
        algo, size = "auto", 4

        def broadcast(self, tensor, root=0, algo=None):
            pass

        def allgatherv(self, output, input, counts, algo=None):
            pass

    recorder = WorkloadRecorder("unused.json")
    gid = recorder.add_group([0, 1, 2, 3], "dp", "world")
    record = SimpleNamespace(collective="broadcast", count=5, dtype="fp32", nbytes=20, algo="ring", start=0.0, end=1e-6)
    recorder.op(gid, FakeComm(), "broadcast", (None, 3), {}, record, 0.0)
    recorder.op(gid, FakeComm(), "broadcast", (None,), {"root": 2, "algo": "tree"}, record, 0.0)
    recorder.op(gid, FakeComm(), "allgatherv", (None, None, [1, 2, 3, 4]), {}, record, 0.0)
    roots = [r["root"] for r in recorder.records if r["type"] == "collective"]
    assert roots == [3, 2, 0]
    assert recorder.records[1]["algo"] == "tree" and recorder.records[2]["counts"] == [1, 2, 3, 4]
