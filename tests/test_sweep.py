"""Sweeps, result files, output layouts and plots: figures equal the API's modeled times, interrupted
sweeps resume to the same file, bad sweep files name the field at fault."""
import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import hccl_sim
from hccl_sim.cli import main, size_steps
from hccl_sim.topology.placement import host_placement
from hccl_sim.cli.plot import plot_results
from hccl_sim.cli.report import FILE_COLUMNS, hccl_test_table, nccl_tests_table, read_results
from hccl_sim.cli.sweep import SweepError, expand, load_sweep
from hccl_sim.dtypes import dtype_from_name

HCCL_SIM = [sys.executable, "-m", "hccl_sim.cli"]

GRID = """
collectives: allreduce
algos: [ring, rhd, hier, auto]
sizes: {min: 1K, max: 256K, factor: 16}
topologies: [flat, "two-level:server=2"]
placements: [linear, spread]
ranks: [4, 8]
"""


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _predicted_us(row):
    p = hccl_sim.predict(row["collective"], int(row["count"]), int(row["ranks"]), topology=row["topology"],
                         placement=row["placement"], algo=row["requested_algo"], dtype=dtype_from_name(row["dtype"]))
    return p.time * 1e6, p.algo


def test_predict_sweep_matches_api_and_resumes_to_the_same_file(tmp_path, capsys):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(GRID)
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    assert main(["sweep", str(sweep), "--predict", "--output", str(full)]) == 0
    rows = read_results(str(full))
    assert len(rows) == 2 * 2 * 2 * 4 * 3 and list(rows[0]) == FILE_COLUMNS
    for row in rows:
        assert row["status"] == "ok" and row["mode"] == "predicted"
        time_us, algo = _predicted_us(row)
        if row["requested_algo"] == "hier" and row["topology"] == "flat":
            assert algo == "ring"  # one server: HCCL runs the level-0 algorithm alone
        assert row["modeled_time_us"] == time_us and row["algo"] == algo  # exact: the file keeps full precision
        assert row["busbw_GBps"] == pytest.approx(row["algbw_GBps"] * 2 * (row["ranks"] - 1) / row["ranks"])
        assert row["hccl_sim_version"] == hccl_sim.__version__ and row["torch_version"]

    # interrupted twice (a job's share, then a kill that cut a row in half), resumed: the same bytes
    assert main(["sweep", str(sweep), "--predict", "--output", str(part), "--max-cases", "7"]) == 0
    assert len(read_results(str(part))) == 7
    assert main(["sweep", str(sweep), "--predict", "--output", str(part), "--max-cases", "20"]) == 0
    with open(part, "a") as f:
        f.write("predicted,allreduce,two-le")
    assert main(["sweep", str(sweep), "--predict", "--output", str(part)]) == 0
    assert part.read_bytes() == full.read_bytes()
    assert "resuming" in capsys.readouterr().err

    # JSON results resume too, and a changed sweep file is refused, naming the row
    js = tmp_path / "r.json"
    assert main(["sweep", str(sweep), "--predict", "--output", str(js), "--max-cases", "5"]) == 0
    assert main(["sweep", str(sweep), "--predict", "--output", str(js)]) == 0
    assert read_results(str(js)) == rows
    sweep.write_text(GRID.replace("factor: 16", "factor: 4"))
    assert main(["sweep", str(sweep), "--predict", "--output", str(part)]) == 2
    assert "row 2" in capsys.readouterr().err
    assert main(["sweep", str(sweep), "--predict", "--output", str(part), "--restart", "--no-progress"]) == 0

    # plots: size curves per case family, scaling (two rank counts), topologies (two topologies)
    written = plot_results(str(full), str(tmp_path / "plots"))
    names = [p.rsplit("/", 1)[1] for p in written]
    assert "full_allreduce_two-level-server=2_linear_8r_fp32_size.png" in names
    assert any(n.endswith("_scaling.svg") for n in names) and any(n.endswith("_topologies.png") for n in names)
    for path in written:
        if path.endswith(".png"):
            assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")


@pytest.mark.parametrize("text,message", [
    ("algoz: [ring]", "unknown field 'algoz'"),
    ("sizes: {min: 1K, max: 1M, factor: 1}", "sizes: factor must be a number greater than 1"),
    ("sizes: {min: 1M, max: 1K}", "sizes: max 1024 is smaller than min"),
    ("sizes: [1K, lots]", "sizes: size 'lots'"),
    ("sizes: {min: 1K, mux: 2K}", "sizes: unknown key 'mux'"),
    ("iters: many", "iters: expected an integer"),
    ("check: -1", "check: must be >= 0"),
    ("algos: []", "algos: must not be empty"),
    ("ranks: [4, x]", "ranks[1]: expected an integer"),
    ("topologies: [{a: 1}]", "topologies[0]: expected a name"),
    ("[1, 2]", "expected a mapping"),
    ("algos: [ring\n", "not valid YAML"),
])
def test_bad_sweep_files_name_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SweepError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_sweep(str(path))


def test_grid_errors_name_the_field(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('algos = ["ring", "rnig"]\nranks = [4]\n')
    sweep = load_sweep(str(path))
    with pytest.raises(SweepError, match="algos: 'rnig' is not an algorithm; known: ring"):
        expand(sweep, None)
    with pytest.raises(SweepError, match="ranks: an emulated sweep runs on the 3 mpirun ranks"):
        expand(sweep, 3)
    path.write_text('collectives = ["allfoo"]\n')
    with pytest.raises(SweepError, match="collectives: 'allfoo' is not supported"):
        expand(load_sweep(str(path)), None)
    path.write_text('dtypes = ["int32"]\nreduce_ops = ["mean"]\n')
    with pytest.raises(SweepError, match="reduce op 'mean'"):
        expand(load_sweep(str(path)), None)


def test_output_layouts():
    rows = [{"size_bytes": s, "count": s // 4, "dtype": "fp32", "op": "sum", "root": -1, "algo": a,
             "requested_algo": r, "modeled_time_us": t, "algbw_GBps": s / t / 1e3, "busbw_GBps": 1.5 * s / t / 1e3,
             "wrong": w, "wall_time_us": 100.0, "status": "ok"}
            for s, a, r, t, w in [(1024, "ring", "ring", 4.0, 0), (2048, "ring", "ring", 5.0, 0),
                                  (1024, "tree", "auto", 3.0, 0), (2048, "rhd", "auto", 4.5, 2)]]
    table = nccl_tests_table(rows, "test")
    header = next(line for line in table.splitlines() if "redop" in line).split()
    assert header[1:] == ["size", "count", "type", "redop", "root", "algo", "time", "algbw", "busbw", "#wrong", "wall"]
    assert "auto(rhd)" in table and "# Out of bounds values : 2 FAILED" in table
    ring_avg = (1.5 * 1024 / 4.0 / 1e3 + 1.5 * 2048 / 5.0 / 1e3) / 2
    assert f"# Avg bus bandwidth    : {ring_avg:.4f}  (modeled, ring)" in table
    hccl = hccl_test_table(rows, 1024, 2048, 20, 5).splitlines()
    assert hccl[0] == "the minbytes is 1024, maxbytes is 2048, iters is 20, warmup_iters is 5"
    assert hccl[2].split("|")[0].strip() == "data_size(Bytes):" and "check_result:" in hccl[2]
    assert hccl[3].split() == ["1024", "4.00", "0.25600", "success"]
    assert hccl[-1].split()[-1] == "failed"
    rows[0]["wrong"] = ""
    assert hccl_test_table(rows[:1], 1024, 1024, 1, 1).splitlines()[-1].split()[-1] == "NULL"


def test_emulated_bench_and_sweep_under_mpirun(tmp_path):
    """bench: hccl_test layout on stdout, CSV and JSON files, a trace; sweep: interrupted and resumed."""
    out_json, trace = tmp_path / "bench.json", tmp_path / "trace.json"
    proc = _run(["mpirun", "-n", "3"] + HCCL_SIM + [
        "bench", "allreduce", "-b", "1K", "-e", "64K", "-f", "8", "-n", "2", "-w", "1", "--algo", "ring,auto",
        "--topology", "two-level:server=2", "--format", "hccl_test", "--output", str(out_json),
        "--trace", str(trace), "--seed", "7"])
    lines = proc.stdout.splitlines()
    assert lines[0] == "the minbytes is 1024, maxbytes is 65536, iters is 2, warmup_iters is 1"
    assert sum(line.endswith("success") for line in lines) == 6
    data = json.loads(out_json.read_text())
    assert data["config"]["ranks"] == 3 and "level1" in data["config"]["topology_description"]
    assert data["config"]["mpi_library"] and data["config"]["mpi4py_version"]
    assert [r["size_bytes"] for r in data["results"]] == [1024, 1024, 8192, 8192, 65536, 65536]
    for row in data["results"]:
        assert set(row) == set(FILE_COLUMNS) and row["mode"] == "emulated" and row["wrong"] == 0
        assert row["seed"] == 7 and row["iters"] == 2 and row["wall_time_us"] > 0
        assert (row["modeled_time_us"], row["algo"]) == _predicted_us(row)
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["pid"] for e in events if e["ph"] == "X"} == {0, 1, 2}
    assert any(e["ph"] == "C" for e in events)

    sweep = tmp_path / "s.yaml"
    sweep.write_text("algos: [ring, tree]\nsizes: [1K, 32K]\ntopologies: [flat, 'two-level:server=2']\n"
                     "iters: 1\nwarmup_iters: 0\n")
    cmd = ["mpirun", "-n", "3"] + HCCL_SIM + ["sweep", str(sweep)]
    _run(cmd + ["--output", str(tmp_path / "full.csv")])
    _run(cmd + ["--output", str(tmp_path / "part.csv"), "--max-cases", "3"])
    assert len(read_results(str(tmp_path / "part.csv"))) == 3
    _run(cmd + ["--output", str(tmp_path / "part.csv")])
    assert (tmp_path / "part.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()
    rows = read_results(str(tmp_path / "full.csv"))
    assert len(rows) == 8 and all(r["wall_time_us"] == "" and r["wrong"] == 0 for r in rows)
    for row in rows:
        assert (row["modeled_time_us"], row["algo"]) == _predicted_us(row)
    with open(tmp_path / "full.csv.wall.csv") as f:
        walls = list(csv.DictReader(f))
    assert len(walls) == 8 and all(float(w["wall_time_us"]) > 0 for w in walls)


def test_hosts_placement_maps_each_host_to_a_server():
    names = ["a", "b", "a", "b", "a", "c"]
    assert host_placement("hosts", names, "two-level:server=4") == "list:0,4,1,5,2,8"
    assert host_placement("spread", names, "two-level:server=4") == "spread"
    with pytest.raises(ValueError, match="host a runs more ranks than a level-0 group"):
        host_placement("hosts", names, "two-level:server=2")


def test_size_steps_stop_where_the_factor_no_longer_grows_the_size():
    """bench, predict and sweep share one size loop; -b 1 -f 1.5 used to repeat size 1 forever in bench."""
    assert size_steps(1, 10, 1.5, 1) == [1]
    assert size_steps(2, 10, 1.5, 1) == [2, 3, 4, 6, 9]
    assert size_steps(1024, 4096, None, 1024) == [1024, 2048, 3072, 4096]
