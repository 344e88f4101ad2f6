"""Inputs users send, taken from public bug reports against torch.distributed, nccl-tests and HCCL
(issue 13): each kind of input gets the right behaviour or an error naming the problem."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest
import torch

import hccl_sim
from hccl_sim import NetworkModel
from hccl_sim.algorithms import selection
from hccl_sim.cli import ALGO_HELP, build_parser, combinations, dtypes_from, main, ops_from
from hccl_sim.cli.bench import BENCH_COLUMNS
from hccl_sim.cli.plot import plot_results
from hccl_sim.cli.report import hccl_test_table, nccl_tests_table, render
from hccl_sim.cli.sweep import expand, load_sweep
from hccl_sim.dtypes import DTYPES, UnsupportedError, check_reducible, dtype_from_name
from hccl_sim.topology.units import parse_size

HCCL_SIM = [sys.executable, "-m", "hccl_sim.cli"]
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
HCCL_SYNTAX = "level0:NA;level1:H-D_R"


@pytest.fixture
def no_algo_env(monkeypatch):
    for name in selection.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _predict(capsys, *argv):
    code = main(["predict", *argv])
    return code, capsys.readouterr()


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


# ---- 1: one algorithm syntax, and HCCL_ALGO / HCCL_SIM_ALGO, in every front end -----------------------
def test_bench_predict_help_and_readme_list_the_same_algorithm_syntax():
    sub = build_parser()._subparsers._group_actions[0].choices
    helps = {name: next(a.help for a in sub[name]._actions if "--algo" in a.option_strings)
             for name in ("bench", "predict")}
    assert helps["bench"] == helps["predict"] == ALGO_HELP
    readme = " ".join(open(README).read().split())  # the README quotes the help text word for word
    assert f"--algo {ALGO_HELP}" in readme
    for text in (HCCL_SYNTAX, "$HCCL_SIM_ALGO", "$HCCL_ALGO", "A0/A1", "comma-separated"):
        assert text in ALGO_HELP


def test_the_environment_names_the_default_algorithm(no_algo_env):
    assert selection.default_algo() == "auto"
    no_algo_env.setenv("HCCL_ALGO", HCCL_SYNTAX)
    assert selection.default_algo() == HCCL_SYNTAX and selection.default_algo("ring") == "ring"
    no_algo_env.setenv("HCCL_SIM_ALGO", "nhr")  # ours wins when both are set
    assert selection.default_algo() == "nhr"
    assert hccl_sim.predict("allreduce", 1 << 20, 8).algo == "nhr"  # the Python predict, as the Communicator
    assert "HCCL_SIM_ALGO='nhr'" in selection.algo_source()


def test_predict_and_sweep_take_hccl_algo_syntax_and_the_environment(no_algo_env, capsys, tmp_path):
    code, out = _predict(capsys, "allreduce", "--size", "1M", "--ranks", "4", "--algo", HCCL_SYNTAX, "--format", "json")
    explicit = json.loads(out.out)[0]
    assert code == 0 and explicit["requested_algo"] == HCCL_SYNTAX and explicit["algo"] == "rhd"
    no_algo_env.setenv("HCCL_ALGO", HCCL_SYNTAX)
    code, out = _predict(capsys, "allreduce", "--size", "1M", "--ranks", "4", "--format", "json")
    assert json.loads(out.out)[0]["modeled_time_us"] == explicit["modeled_time_us"]
    no_algo_env.setenv("HCCL_ALGO", "bogus")
    code, out = _predict(capsys, "allreduce", "--size", "1M", "--ranks", "4")
    assert code == 2 and "HCCL_ALGO='bogus'" in out.err and "is not an algorithm" in out.err
    # sweep: the syntax in the file, and the environment when the file names no algorithm
    path = tmp_path / "s.yaml"
    path.write_text(f"algos: ['{HCCL_SYNTAX}', ring]\nranks: [4]\n")
    assert [c.algo for c in expand(load_sweep(str(path)), None)] == [HCCL_SYNTAX, "ring"]
    no_algo_env.setenv("HCCL_ALGO", HCCL_SYNTAX)
    path.write_text("ranks: [4]\n")
    assert [c.algo for c in expand(load_sweep(str(path)), None)] == [HCCL_SYNTAX]


# ---- 2: a case that cannot run says why in every format, never OK ----------------------------------------
def _rows():
    ok = {"size_bytes": 1024, "count": 256, "dtype": "fp32", "op": "sum", "root": -1, "algo": "ring",
          "requested_algo": "ring", "modeled_time_us": 4.0, "algbw_GBps": 0.256, "busbw_GBps": 0.384,
          "wrong": 0, "wall_time_us": 10.0, "status": "ok"}
    bad = dict(ok, requested_algo="hier", algo="hier", modeled_time_us="", algbw_GBps="", busbw_GBps="",
               wrong="", wall_time_us="", status="n/a: hier needs servers with the same number of ranks")
    return [ok, bad]


def test_a_case_that_cannot_run_says_why_in_every_format():
    rows = _rows()
    table = nccl_tests_table(rows, "test")
    assert "n/a: hier needs servers" in table and "OK" not in table and "FAILED" in table
    assert "Cases not run        : 1 of 2" in table
    assert "n/a: hier needs servers" in hccl_test_table(rows, 1024, 1024, 1, 0)
    for fmt in ("csv", "json"):
        assert "n/a: hier needs servers" in render(rows, fmt, BENCH_COLUMNS)


# ---- 4: nccl-tests' values: dtypes, ops, all, fractional sizes ------------------------------------------
def test_nccl_tests_dtype_and_op_names():
    for name in ("int8", "uint8", "int32", "uint32", "int64", "uint64", "half", "float16", "float", "float32",
                 "double", "float64", "bfloat16", "f8e4m3", "f8e5m2"):
        dtype_from_name(name)
    sub = build_parser()._subparsers._group_actions[0].choices
    dtype_help = next(a.help for a in sub["bench"]._actions if "-d" in a.option_strings)
    assert all(name in dtype_help.split() for name in DTYPES)
    args = build_parser().parse_args(["predict", "allreduce", "-d", "all", "-o", "all"])
    assert dtypes_from(args) == list(DTYPES) and ops_from(args, True) == ["sum", "prod", "max", "min", "avg"]
    assert ops_from(args, False) == ["sum"]  # one row for a collective that does not reduce
    with pytest.raises(UnsupportedError, match="'sum' on uint32: torch cannot compute it on CPU"):
        check_reducible("sum", torch.uint32)
    check_reducible("prod", torch.uint32)  # torch can: it runs
    check_reducible("avg", torch.int32)  # NCCL's integer average
    assert (parse_size("1.5K"), parse_size("0.5M"), parse_size("64M")) == (1536, 1 << 19, 64 << 20)
    with pytest.raises(ValueError, match="whole number of bytes"):
        parse_size("1.3K")
    # bench: a reduction torch cannot compute is an error when named, left out of "all"
    named = build_parser().parse_args(["bench", "allreduce", "-d", "uint32,int8", "-o", "prod,sum"])
    with pytest.raises(UnsupportedError, match="'sum' on uint32"):
        combinations(named, reduces=True, emulated=True)
    assert len(combinations(named, reduces=True, emulated=False)) == 4  # predict: no data, all timed
    pairs = combinations(build_parser().parse_args(["bench", "allreduce", "-d", "all", "-o", "all"]), True, True)
    assert ("uint32", "prod") in pairs and ("uint32", "sum") not in pairs and ("fp8_e4m3", "max") not in pairs


def test_integer_average_truncates_like_nccl():
    from hccl_sim.collectives import reference
    got = reference("avg", [torch.tensor([1, -1, 7], dtype=torch.int32), torch.tensor([2, -2, 0], dtype=torch.int32)])
    assert got.tolist() == [1, -1, 3] and got.dtype == torch.int32


# ---- 5, 7, 8: predict of whole presets, hier on one level, several algorithms ---------------------------
def test_predict_a_fixed_size_preset_whole(no_algo_env, capsys):
    code, out = _predict(capsys, "allreduce", "--size", "1G", "--topology", "atlas950-superpod", "--algo", "hier,ring")
    assert code == 0 and "8192 ranks (every NPU of atlas950-superpod" in out.out
    lines = [line.split() for line in out.out.splitlines()[2:]]
    assert [line[4:7] for line in lines] == [["hier", "hier", "8192"], ["ring", "ring", "8192"]]
    code, out = _predict(capsys, "allreduce", "--size", "1G", "--format", "csv")  # sized to fit: 8
    assert _csv(out.out)[0]["ranks"] == "8"


def test_hier_on_one_level_runs_that_level_alone_and_unequal_servers_are_named():
    one_server = NetworkModel(3, "flat")
    assert one_server.resolve("allreduce", "hier", 1024, 4) == "ring"
    assert one_server.resolve("allreduce", "hier:rhd/nhr", 1024, 4) == "rhd"
    assert one_server.resolve("reduce_scatterv", "hier:nb", 1024, 4) == "nb"
    one_per_server = NetworkModel(4, "two-level:server=1")
    assert one_per_server.resolve("broadcast", "hier", 1024, 4) == "tree"  # HCCL's level1 default here
    assert one_per_server.resolve("allreduce", "hier:ring/rhd", 1024, 4) == "rhd"
    ring = one_server.time("allreduce", "ring", 1 << 20, 4).time
    assert one_server.time("allreduce", one_server.resolve("allreduce", "hier", 1 << 20, 4), 1 << 20, 4).time == ring
    with pytest.raises(ValueError, match=r"server sizes \[4, 2\]"):
        NetworkModel(6, "two-level:server=4").resolve("allreduce", "hier", 1024, 4)


def test_predict_compares_several_algorithms_and_reports_those_that_cannot_run(no_algo_env, capsys):
    code, out = _predict(capsys, "allreduce", "--size", "1M", "--ranks", "6", "--topology", "two-level:server=4",
                         "--algo", "ring,rhd,nhr,hier", "--format", "csv")
    rows = _csv(out.out)
    assert [r["requested_algo"] for r in rows] == ["ring", "rhd", "nhr", "hier"]
    assert all(r["status"] == "ok" and float(r["modeled_time_us"]) > 0 for r in rows[:3])
    assert code == 1 and rows[3]["status"].startswith("n/a") and "[4, 2]" in rows[3]["status"]
    code, out = _predict(capsys, "allreduce", "--size", "1M", "--ranks", "6", "--topology", "two-level:server=4",
                         "--algo", "hier", "--format", "hccl_test")
    assert code == 1 and "server sizes [4, 2]" in out.out and "success" not in out.out


# ---- 6, 9: plot takes predict's output, and names the extra without matplotlib --------------------------
def test_plot_takes_what_predict_writes(no_algo_env, capsys, tmp_path):
    for fmt in ("csv", "json"):
        _, out = _predict(capsys, "allreduce", "-b", "1K", "-e", "64K", "-f", "8", "--ranks", "4", "--algo",
                          "ring,auto", "--format", fmt)
        path = tmp_path / f"predicted.{fmt}"
        path.write_text(out.out)
        written = plot_results(str(path), str(tmp_path / fmt), ["svg"])
        assert written and all(os.path.getsize(p) > 1000 for p in written)


def test_plot_without_matplotlib_names_the_extra(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("size_bytes,busbw_GBps,modeled_time_us\n1024,1.0,2.0\n")
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from hccl_sim.cli import main\n"
            f"sys.exit(main(['plot', {str(path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "pip install 'hccl_sim[plot]'" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- under mpirun: bench with the same inputs -----------------------------------------------------------
def test_bench_takes_what_users_type_under_mpirun(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in selection.ENVIRONMENT}
    # every dtype and op nccl-tests names, a fractional size, -i 2K (one size; the header says what was
    # asked), HCCL_ALGO syntax, and an algorithm that cannot run on servers of 2 and 1 ranks
    argv = ["-n", "3"] + HCCL_SIM + ["bench", "allreduce", "-d", "all", "-o", "all", "-b", "1.5K", "-e", "3K",
                                     "-i", "2K", "-n", "1", "-w", "0", "--algo", f"{HCCL_SYNTAX},hier",
                                     "--topology", "two-level:server=2", "--output", str(tmp_path / "b.csv")]
    proc = subprocess.run(["mpirun"] + argv, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout
    assert proc.returncode == 1 and "minBytes 1536 maxBytes 3072" in out, out + proc.stderr
    assert "server sizes [2, 1]" in out and "FAILED" in out and " OK" not in out
    rows = _csv(open(tmp_path / "b.csv").read())
    ran = [r for r in rows if r["requested_algo"] == HCCL_SYNTAX]
    pairs = {(r["dtype"], r["op"]) for r in ran}
    assert ("uint32", "prod") in pairs and ("int32", "avg") in pairs and ("uint32", "sum") not in pairs
    assert all(r["status"] == "ok" and r["wrong"] == "0" and r["algo"] == "rhd" for r in ran)
    assert all(r["status"].startswith("n/a") for r in rows if r["requested_algo"] == "hier")
    assert plot_results(str(tmp_path / "b.csv"), str(tmp_path), ["svg"])  # and plot takes bench's file
    # HCCL_ALGO from the environment, even a bogus one, is used; the error is printed once
    proc = subprocess.run(["mpirun", "-n", "2"] + HCCL_SIM + ["bench", "allreduce", "-b", "1K", "-e", "1K"],
                          capture_output=True, text=True, timeout=300, env=dict(env, HCCL_ALGO="bogus"))
    assert proc.returncode != 0 and proc.stderr.count("HCCL_ALGO='bogus'") == 1, proc.stderr


# ---- what a new user then found from the README (fix13) -------------------------------------------------
BAD_RUN_ARGS = [  # (argv, the flag the error names)
    (["bench", "allreduce", "-n", "-1"], "-n -1"), (["bench", "allreduce", "-w", "-1"], "-w -1"),
    (["bench", "allreduce", "-c", "-1"], "-c -1"), (["bench", "allreduce", "-b", "1K", "-e", "4K", "-i", "0"], "-i 0"),
    (["bench", "allreduce", "--algo", "ring,,"], "--algo"), (["bench", "allreduce", "-b", "64M", "-e", "1M"], "-e 1M"),
    (["bench", "allreduce", "-b", "1K", "-e", "4K", "-f", "1"], "-f 1"),
    (["predict", "allreduce", "-b", "1K", "-e", "4K", "-f", "0.5"], "-f 0.5"),
    (["predict", "allreduce", "--size", "1M", "-b", "2M"], "--size"), (["predict", "allreduce", "--ranks", "0"], "--ranks 0"),
    (["bench", "allreduce", "--output", "/nonexistent/x.csv"], "'/nonexistent/x.csv'"),
    (["bench", "allreduce", "--trace", "/nonexistent/t.json"], "'/nonexistent/t.json'"),
    (["bench", "allreduce", "--output", "x.txt"], "--output 'x.txt'"),
]


@pytest.mark.parametrize("argv,flag", BAD_RUN_ARGS)
def test_bad_run_arguments_name_the_flag_exit_2_and_print_once(argv, flag, capsys, no_algo_env):
    # in process: checked before bench imports MPI, so no mpirun is needed to see the error path
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err and err.count("\n") == 1, err
    no_algo_env.setenv("PMI_RANK", "1")  # another rank of an mpirun job: the same exit, nothing printed
    assert main(argv) == 2 and capsys.readouterr().err == ""


def test_unwritable_outputs_are_named_before_the_run(tmp_path, capsys, no_algo_env):
    grid = tmp_path / "g.yaml"
    grid.write_text("collectives: [allreduce]\nsizes: [1K]\n")
    results = tmp_path / "out.csv"
    (tmp_path / "out.csv.tmp").mkdir()  # the temporary file the sweep writes first cannot be created
    for argv, named in ((["sweep", str(grid), "--predict", "--output", "/nonexistent/g.csv"], "/nonexistent/g.csv"),
                        (["sweep", str(grid), "--predict", "--output", str(results)], str(results))):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert named in err and ".tmp" not in err and "Traceback" not in err, err
    assert main(["sweep", str(grid), "--predict", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "g.csv"), "--outdir", "/proc/x"]) == 2
    assert "--outdir '/proc/x'" in capsys.readouterr().err
    # plot names its own argument for a file that is not results
    assert main(["plot", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "results file" in err and "--output" not in err, err


@pytest.mark.parametrize("algo,named", [("bogus", "'bogus'"), ("hier:foo/ring", "'foo' (a level of 'hier:foo/ring')"),
                                        ("ring,hier:ring/bogus", "'bogus'")])
def test_an_unknown_algorithm_anywhere_is_an_argument_error_naming_it(algo, named, capsys, no_algo_env):
    for command in (["predict", "allreduce", "--size", "1M"], ["bench", "allreduce"]):
        assert main(command + ["--algo", algo]) == 2
        err = capsys.readouterr().err
        assert named in err and "known: ring" in err, err


def test_a_known_algorithm_that_does_not_apply_is_a_row_and_never_aborts_a_sweep(tmp_path, capsys, no_algo_env):
    code, out = _predict(capsys, "broadcast", "--size", "1M", "--algo", "ring,rhd", "--format", "csv")
    rows = {r["requested_algo"]: r for r in _csv(out.out)}
    assert code == 1 and rows["ring"]["status"] == "ok"
    assert rows["rhd"]["status"] == "n/a: broadcast: algorithm 'rhd' does not apply (its algorithms: " \
        + ", ".join(hccl_sim.algorithms.algorithms_for("broadcast")) + ")"
    grid = tmp_path / "g.yaml"
    grid.write_text("collectives: [allreduce, broadcast]\nalgos: [ring, rhd]\nsizes: [1K]\n")
    assert main(["sweep", str(grid), "--predict", "--no-progress"]) == 0
    assert "Case(" not in capsys.readouterr().err
    status = {(r["collective"], r["requested_algo"]): r["status"] for r in _csv(open(tmp_path / "g.csv").read())}
    assert status[("allreduce", "rhd")] == "ok" and status[("broadcast", "rhd")].startswith("n/a: broadcast: algorithm 'rhd'")


def test_an_algorithm_from_the_environment_that_does_not_fit_falls_back_to_auto(capsys, no_algo_env):
    auto = {c: _csv(_predict(capsys, c, "--size", "1M", "--format", "csv")[1].out)[0] for c in ("alltoall", "broadcast")}
    for name in selection.ENVIRONMENT:
        no_algo_env.setenv(name, HCCL_SYNTAX)
        for collective in ("alltoall", "broadcast"):
            code, out = _predict(capsys, collective, "--size", "1M", "--format", "csv")
            row = _csv(out.out)[0]
            assert code == 0 and row["status"] == "ok" and row["requested_algo"] == HCCL_SYNTAX
            assert (row["algo"], row["modeled_time_us"]) == (auto[collective]["algo"], auto[collective]["modeled_time_us"])
            assert f"does not apply to {collective}: auto instead" in out.err
            code, out = _predict(capsys, collective, "--size", "1M")  # the table says so in its header
            assert "# note: " + name in out.out
        # the same setting named explicitly stays a row that says why
        code, out = _predict(capsys, "alltoall", "--size", "1M", "--algo", HCCL_SYNTAX, "--format", "csv")
        assert code == 1 and "algorithm 'rhd' does not apply" in _csv(out.out)[0]["status"]
        no_algo_env.delenv(name)


def test_plot_gives_every_case_family_its_own_figure(tmp_path, capsys, no_algo_env):
    pytest.importorskip("matplotlib")
    grid = tmp_path / "g.yaml"
    grid.write_text("collectives: [allreduce, broadcast]\nreduce_ops: [sum, max]\nroots: [0, 1]\nalgos: [ring]\n"
                    "sizes: [1K, 4K]\nranks: [2, 4]\n")
    assert main(["sweep", str(grid), "--predict", "--no-progress"]) == 0
    written = plot_results(str(tmp_path / "g.csv"), str(tmp_path / "fig"), ["svg"])
    assert len(written) == len(set(written)), "a figure was overwritten"
    names = [os.path.basename(p) for p in written]
    # size figures: allreduce per op, broadcast per root, each per rank count; scaling per op and root
    assert sum(n.endswith("_size.svg") for n in names) == 2 * (2 + 2)
    assert "g_allreduce_flat_linear_4r_fp32_op=max_size.svg" in names
    assert "g_broadcast_flat_linear_4r_fp32_root=1_size.svg" in names
    assert {n for n in names if n.endswith("_scaling.svg")} == {
        "g_allreduce_flat_linear_fp32_op=max_scaling.svg", "g_allreduce_flat_linear_fp32_op=sum_scaling.svg",
        "g_broadcast_flat_linear_fp32_root=0_scaling.svg", "g_broadcast_flat_linear_fp32_root=1_scaling.svg"}
    title = open(tmp_path / "fig" / "g_broadcast_flat_linear_4r_fp32_root=1_size.svg").read()
    assert "root 1" in title


def test_a_reason_every_rank_shares_is_said_once_under_mpirun():
    from hccl_sim.comm.header import rank_list as _rank_list
    assert (_rank_list([2]), _rank_list([0, 1, 2, 3, 6]), _rank_list([0, 2])) == ("rank 2", "ranks 0-3,6", "ranks 0,2")
    code = ("import torch; from mpi4py import MPI; from hccl_sim import Communicator, CollectiveError\n"
            "comm = Communicator(MPI.COMM_WORLD)\n"
            "try:\n    comm.allreduce(torch.ones(4, dtype=torch.uint32))\n    said = 'no error'\n"
            "except CollectiveError as exc:\n    said = str(exc)\n"
            # rank 0 prints every rank's error: mpirun may merge lines that ranks print at once
            "said = MPI.COMM_WORLD.gather(said, root=0)\n"
            "if comm.rank == 0:\n    print('\\n'.join(said), flush=True)\n")
    env = {k: v for k, v in os.environ.items() if k not in selection.ENVIRONMENT}
    proc = subprocess.run(["mpirun", "-n", "3", sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 3, proc.stdout + proc.stderr
    for line in lines:  # every rank raises the same error, the shared reason once
        assert "invalid input on 3 rank(s): ranks 0-2: " in line and line.count("uint32") == 1, line


def test_small_things_a_new_user_noticed(capsys, no_algo_env):
    from hccl_sim.cli.predict import FILE_ROW_COLUMNS
    from hccl_sim.cli.report import FILE_COLUMNS
    for columns in (BENCH_COLUMNS, FILE_ROW_COLUMNS):  # --format csv in the order of --output files
        assert columns == [c for c in FILE_COLUMNS if c in columns]
    code, out = _predict(capsys, "allreduce", "-b", "1K", "-e", "4K", "-f", "2", "--format", "hccl_test")
    assert code == 0 and "iters is" not in out.out and out.out.startswith("the minbytes is 1024, maxbytes is 4096")
    code, out = _predict(capsys, "allreduce", "--size", "1K", "--placement", "bogus")
    assert code == 2 and "hosts" in out.err and "per-group:K" in out.err
    # the nccl-tests table widens a column to its longest value: every row as wide as the header
    long = f"allreduce={HCCL_SYNTAX}/others=level0:NA;level1:ring"
    code, out = _predict(capsys, "allreduce", "-b", "1K", "-e", "4K", "-f", "2", "--algo", long, "--format", "json")
    rows = json.loads(out.out)
    table = nccl_tests_table([{**r, "wall_time_us": 1.0, "wrong": 0} for r in rows], "h").splitlines()
    assert len({len(line) for line in table[2:2 + 2 + len(rows)]}) == 1, "\n".join(table)
    assert f"{long}(rhd)" in table[4]
