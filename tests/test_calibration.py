"""Cost terms (overhead, achieved bandwidth, protocol regimes), their files, auto with the full cost,
measurement parsers and `hccl-sim calibrate` (no MPI)."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import yaml

from hccl_sim.calibration.fit import FitError, calibrate, errors, summary
from hccl_sim.calibration.parsers import Measurement, MeasurementError, read_measurements
from hccl_sim.cli import main
from hccl_sim.cli.report import hccl_test_table
from hccl_sim.planning import NetworkModel
from hccl_sim.executors.predictor import predict
from hccl_sim.topology import TopologyError, load_topology
from hccl_sim.topology.costs import Costs, Regime
from hccl_sim.topology.files import topology_from_dict, topology_to_dict

MEASUREMENTS = "/work/shared/measurements"
BW, LAT = 100e9, 0.5e-6
OVERHEAD, A_SMALL, F_SMALL, A_LARGE, F_LARGE, BOUND = 5e-6, 0.0, 0.5, 1.5e-6, 0.9, 64 << 10


def flat(costs=Costs(), p=8, eff=1.0, level_overhead=0.0):
    topo = load_topology(f"flat:bw={BW},lat={LAT}s", p)
    levels = tuple(replace(lv, efficiency=eff, overhead=level_overhead) for lv in topo.levels)
    return replace(topo, levels=levels, costs=costs, _cache={})


TRUE = Costs(OVERHEAD, (), (Regime(BOUND, A_SMALL, F_SMALL), Regime(math.inf, A_LARGE, F_LARGE)))
SLICED = replace(TRUE, slice_bytes=256 << 10, max_slices=4)


@pytest.mark.parametrize("n, a, f", [(16 << 10, A_SMALL, F_SMALL), (4 << 20, A_LARGE, F_LARGE)])
def test_cost_terms_closed_form_ring(n, a, f):
    """ring allreduce = overhead + 2(p-1)(2 lat + a) + 2(p-1)/p n / (B eff f), for either regime."""
    p, eff = 4, 0.8
    expected = OVERHEAD + 2 * (p - 1) * (2 * LAT + a) + 2 * (p - 1) / p * n / (BW * eff * f)
    got = predict("allreduce", n // 4, p, topology=flat(TRUE, p, eff), algo="ring").time
    assert got == pytest.approx(expected, rel=1e-12)
    neutral = predict("allreduce", n // 4, p, topology=flat(Costs(), p), algo="ring").time
    assert neutral == pytest.approx(2 * (p - 1) * 2 * LAT + 2 * (p - 1) / p * n / BW, rel=1e-12)


@pytest.mark.parametrize("chunks", [1, 2, 5])
def test_slicing_pipelines_a_chain_closed_form(chunks):
    """A chain 0>1>2>3 of whole-buffer hops: sliced in C chunks it takes (m+C-1)(2 lat + n/(C B))."""
    from hccl_sim.algorithms import Schedule, StepBuilder
    from hccl_sim.timing import TimingModel
    n, hops = 60 << 16, 3  # divisible by every chunk count here
    schedule = Schedule("broadcast", "chain", hops + 1, n)
    for h in range(hops):
        schedule.append(StepBuilder().add(h, h + 1, 0, 0, n))
    topo = flat(Costs(slice_bytes=n / chunks, max_slices=chunks), hops + 1)
    time = TimingModel(topo, np.arange(hops + 1)).run(schedule, 1).time
    assert time == pytest.approx((hops + chunks - 1) * (2 * LAT + n / chunks / BW), rel=1e-12)


def test_slicing_overlaps_hierarchical_phases():
    """Intra reduce-scatter, inter allreduce and intra allgather overlap chunk by chunk."""
    base = load_topology("two-level:server=4", 8)
    sliced = replace(base, costs=Costs(slice_bytes=1 << 20, max_slices=8), _cache={})
    whole = predict("allreduce", 16 << 20, 8, topology=base, algo="hier:ring/ring").time
    assert predict("allreduce", 16 << 20, 8, topology=sliced, algo="hier:ring/ring").time < 0.85 * whole
    assert predict("allreduce", 1024, 8, topology=sliced, algo="hier:ring/ring").time == \
        predict("allreduce", 1024, 8, topology=base, algo="hier:ring/ring").time  # below one slice: whole


def test_cost_terms_in_the_stepwise_engine():
    """2,048 ranks go through the compact schedules and stepwise.py: the same closed form."""
    p, n = 2048, 4 * 2048 * 1000
    expected = OVERHEAD + 2 * (p - 1) * (2 * LAT + A_LARGE) + 2 * (p - 1) / p * n / (BW * 0.8 * F_LARGE)
    assert predict("allreduce", n // 4, p, topology=flat(TRUE, p, 0.8), algo="ring").time == \
        pytest.approx(expected, rel=1e-9)


def test_overhead_moves_exits_and_per_family_override():
    costs = Costs(3e-6, (("alltoall", 7e-6),))
    base = NetworkModel(4, flat(Costs(), 4))
    model = NetworkModel(4, flat(costs, 4))
    entry = np.array([0.0, 1e-6, 0.0, 2e-6])
    for coll, extra in (("allreduce", 3e-6), ("alltoall", 7e-6)):
        a = base.timing.run(base.schedule(coll, "pairwise" if coll == "alltoall" else "ring", 4096), 4, entry)
        b = model.timing.run(model.schedule(coll, "pairwise" if coll == "alltoall" else "ring", 4096), 4, entry)
        assert b.exit == pytest.approx(a.exit + extra, rel=1e-12) and b.time == pytest.approx(a.time + extra)


def test_level_overhead_is_paid_by_calls_spanning_the_level():
    base = load_topology("two-level:server=4", 8)
    levels = (replace(base.levels[0], overhead=2e-6), replace(base.levels[1], overhead=9e-6))
    topo = replace(base, levels=levels, costs=Costs(1e-6), _cache={})
    for ranks, placement, extra in ((4, "linear", 3e-6), (4, "spread", 10e-6), (8, "linear", 10e-6)):
        plain = predict("allreduce", 4096, ranks, topology=base, placement=placement, algo="ring").time
        got = predict("allreduce", 4096, ranks, topology=topo, placement=placement, algo="ring").time
        assert got == pytest.approx(plain + extra, rel=1e-12), (ranks, placement)


def test_dgx_h100_ring_peak_busbw_is_370():
    """Source: NCCL maintainer in nccl-tests #212 and ASTRA-sim's HGX-H100 validation (370.67 GB/s)."""
    n = 8 << 30
    t = predict("allreduce", n // 4, 8, topology="dgx-h100", algo="ring").time
    busbw = n / t * 2 * 7 / 8 / 1e9
    assert abs(busbw - 370) / 370 < 0.02


@pytest.mark.parametrize("spec, ranks", [("flat", 8), ("dgx-h100", 16), ("nvl72", 8), ("cloudmatrix384", 16),
                                         ("calibrated", 8), ("sliced", 8)])
def test_auto_never_picks_a_slower_algorithm(spec, ranks):
    """With the full cost (overhead, regimes, efficiency), auto's pick is never slower than another."""
    costs = {"calibrated": TRUE, "sliced": SLICED}
    topo = flat(costs[spec], ranks, 0.8) if spec in costs else load_topology(spec, ranks)
    model = NetworkModel(ranks, topo)
    for size in [8 << (3 * i) for i in range(10)] + [1 << 30]:
        count = size // 4 or 1
        times = {a: model.time("allreduce", a, count, 4).time for a in model.applicable("allreduce")}
        chosen = model.resolve("allreduce", "auto", count, 4)
        assert times[chosen] <= min(times.values()), (spec, size, chosen, times)


# ---- topology files -------------------------------------------------------------------------------------
def test_costs_round_trip_through_a_topology_file(tmp_path):
    topo = replace(flat(SLICED, 8, 0.75, 2e-6), _cache={})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(topology_to_dict(topo)))
    back = load_topology(str(path), 8)
    assert back.costs == topo.costs and back.levels == topo.levels
    for n in (1 << 10, 1 << 24):
        assert predict("allreduce", n, 8, topology=str(path)).time == predict("allreduce", n, 8, topology=topo).time


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["levels"][0].update(efficiency=1.5), "levels[0].efficiency"),
    (lambda d: d["levels"][0].update(overhead="-3us"), "levels[0].overhead"),
    (lambda d: d.update(costs={"overhed": "1us"}), "unknown field 'overhed'"),
    (lambda d: d.update(costs={"regimes": [{"max_bytes": "64K", "bandwidth_factor": -1}]}),
     "costs.regimes[0].bandwidth_factor"),
    (lambda d: d.update(costs={"regimes": [{"max_bytes": "1M"}, {"max_bytes": "64K"}, {}]}),
     "costs.regimes[1].max_bytes"),
    (lambda d: d.update(costs={"overhead": "5 parsecs"}), "costs.overhead"),
    (lambda d: d.update(costs={"slice_bytes": "1M", "max_slices": 0}), "costs.max_slices"),
])
def test_cost_field_errors_name_the_field(edit, field):
    data = topology_to_dict(flat(TRUE, 8))
    edit(data)
    with pytest.raises(TopologyError) as err:
        topology_from_dict(data, "t.yaml")
    assert field in str(err.value) and "t.yaml" in str(err.value)


# ---- parsers: each on output the test writes itself --------------------------------------------------------
SIZES = [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 26]


def _times(topo=None, ranks=4):
    return [predict("allreduce", s // 4, ranks, topology=topo or flat(TRUE, ranks), algo="ring").time for s in SIZES]


def test_parse_nccl_tests_text_both_columns_with_and_without_root(tmp_path):
    times = _times()
    lines = ["# nThread 1 nGpus 1 minBytes 1024 maxBytes 67108864 step: 16(factor) warmup iters: 5 iters: 20",
             "# Collective test starting: all_reduce_perf"]
    lines += [f"#  Rank {r:2d} Group  0 Pid  1 on host device  {r} [0000:04:00] NVIDIA H100" for r in range(4)]
    lines += ["#                                                              out-of-place                       in-place",
              "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong"]
    for s, t in zip(SIZES, times):
        lines.append(f"{s:12d} {s // 4:12d}     float     sum      -1 {t * 1e6:8.2f}  1.00  1.00      0 "
                     f"{t * 2e6:8.2f}  1.00  1.00      0")
    path = tmp_path / "ar.txt"
    path.write_text("\n".join(lines) + "\n")
    out, _ = read_measurements(str(path))
    assert [m.size for m in out] == SIZES and {m.ranks for m in out} == {4} and {m.collective for m in out} == {"allreduce"}
    assert [m.time for m in out] == pytest.approx([round(t * 1e6, 2) * 1e-6 for t in times])
    inplace, _ = read_measurements(str(path), place="in")
    assert [m.time for m in inplace] == pytest.approx([round(t * 2e6, 2) * 1e-6 for t in times])
    old = tmp_path / "old.txt"  # nccl-tests before the root column
    old.write_text("#       size    count   type   redop    time   algbw   busbw  error     time   algbw   busbw  error\n"
                   "        1024      256  float     sum   20.00    0.05    0.09  0e+00    21.00    0.05    0.09  0e+00\n")
    assert read_measurements(str(old), ranks=8, collective="allreduce")[0][0].time == pytest.approx(20e-6)
    bad = tmp_path / "bad.txt"
    bad.write_text(lines[-1].replace(f"{times[-1] * 1e6:8.2f}", "    fast", 1).join(["#       size  count  type\n", "\n"]))
    with pytest.raises(MeasurementError, match=r"bad.txt:2: expected the out-of-place time in us, got 'fast'"):
        read_measurements(str(bad), ranks=4, collective="allreduce")


def test_calibrate_says_when_the_file_overrides_ranks(tmp_path, capsys):
    lines = [f"#  Rank {r:2d} Group  0 Pid  1 on host device  {r} [0000:04:00] NVIDIA H100" for r in range(4)]
    lines += ["#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong"]
    lines += [f"{s:12d} {s // 4:12d}     float     sum      -1 {t * 1e6:8.2f}  1.00  1.00      0 {t * 1e6:8.2f}  1.00  1.00      0"
              for s, t in zip(SIZES, _times())]
    path = tmp_path / "ar.txt"
    path.write_text("\n".join(lines) + "\n")
    main(["calibrate", str(path), "--topology", "flat", "--ranks", "8", "--collective", "allreduce", "--algo", "ring"])
    assert "gives 4 rank(s), which is used instead of --ranks 8" in capsys.readouterr().err


def test_parse_nccl_tests_json_written_by_predict(tmp_path, capsys):
    assert main(["predict", "allreduce", "-b", "1K", "-e", "64M", "-f", "16", "--ranks", "4", "--algo", "ring",
                 "--topology", "nvl72", "--format", "nccl-json"]) == 0
    path = tmp_path / "ar.nccl.json"
    path.write_text(capsys.readouterr().out)
    out, _ = read_measurements(str(path), collective="allreduce")
    expected = [predict("allreduce", s // 4, 4, topology="nvl72", algo="ring").time for s in SIZES]
    assert [m.size for m in out] == SIZES and out[0].ranks == 4
    assert [m.time for m in out] == pytest.approx(expected, rel=1e-12)
    broken = tmp_path / "b.json"
    broken.write_text('{"results": [{"size": 1024, "out_of_place": {"alg_bw": 1}}]}')
    with pytest.raises(MeasurementError, match=r"results\[0\].out_of_place: expected an object with 'time'"):
        read_measurements(str(broken), ranks=4, collective="allreduce")


def test_parse_hccl_test_output(tmp_path):
    times = _times()
    rows = [{"size_bytes": s, "modeled_time_us": t * 1e6, "algbw_GBps": s / t / 1e9, "wrong": 0, "algo": "ring"}
            for s, t in zip(SIZES, times)]
    path = tmp_path / "hccl.txt"
    path.write_text(hccl_test_table(rows, SIZES[0], SIZES[-1], 20, 5) + "\n")
    out, _ = read_measurements(str(path), ranks=4, collective="allreduce")
    assert [m.size for m in out] == SIZES
    assert [m.time for m in out] == pytest.approx([round(t * 1e6, 2) * 1e-6 for t in times])


def test_parse_csv_time_busbw_and_aliases(tmp_path):
    times = _times()
    path = tmp_path / "m.csv"
    path.write_text("# source: a test\nsize_bytes,busbw_GBps\n" +
                    "".join(f"{s},{s / t * 2 * 3 / 4 / 1e9!r}\n" for s, t in zip(SIZES, times)))
    out, source = read_measurements(str(path), ranks=4, collective="allreduce")
    assert source == "source: a test" and [m.time for m in out] == pytest.approx(times, rel=1e-12)
    moe = tmp_path / "moe.csv"
    moe.write_text("op,ep,latency_us,bw_per_rank_GBps\ndispatch,8,100,80\ncombine,16,120,125\n")
    out, _ = read_measurements(str(moe), collective="alltoall")
    assert [(m.label, m.ranks, m.size) for m in out] == [("dispatch", 8, 8_000_000), ("combine", 16, 15_000_000)]
    assert [m.time for m in out] == pytest.approx([100e-6, 120e-6], rel=1e-12)
    path.write_text("# x\nbytes_per_call,usec\n1,2\n")
    with pytest.raises(MeasurementError, match=r"m.csv:2: expected a CSV header with size_bytes and time_us"):
        read_measurements(str(path))
    path.write_text("size_bytes,time_us\n1024,12.5\n2048,twelve\n")
    with pytest.raises(MeasurementError, match=r"m.csv:3: expected a time in us \(time_us\), got 'twelve'"):
        read_measurements(str(path), ranks=4, collective="allreduce")
    path.write_text("size_bytes,busbw_GBps\n1024,1.0\n")
    with pytest.raises(MeasurementError, match="busbw needs the collective and the rank count"):
        read_measurements(str(path))


# ---- the fit ---------------------------------------------------------------------------------------------
def _synthetic(ranks=(2, 4, 8)):
    """Times of ring allreduce on flat with TRUE costs, 0.8 efficiency and 1 us level overhead, 1K..64M by 4."""
    out = []
    for p in ranks:
        topo = flat(TRUE, p, 0.8, 1e-6)
        for i in range(9):
            size = (1 << 10) << (2 * i)
            out.append(Measurement(size, predict("allreduce", size // 4, p, topology=topo, algo="ring").time, p,
                                   "allreduce"))
    return out


def test_fit_recovers_known_parameters():
    result = calibrate(_synthetic(), flat(Costs(), 8, 0.8, 1e-6), algo="ring", regimes=2)
    costs = result.topology.costs
    assert costs.overhead == pytest.approx(OVERHEAD, rel=1e-6)
    assert [r.bandwidth_factor for r in costs.regimes] == pytest.approx([F_SMALL, F_LARGE], rel=1e-6)
    assert costs.regimes[1].step_latency == pytest.approx(A_LARGE, rel=1e-6)
    assert result.topology.levels[0].latency == pytest.approx(LAT, rel=1e-6)
    assert 16 << 10 < costs.regimes[0].max_bytes < 64 << 10
    # the per-step latency of the smallest regime is what overhead and link latency absorb: held
    assert "regimes[0].step_latency" in result.held and "overhead" in result.fitted
    assert summary(errors(result.modeled, [m.time for m in _synthetic()]))[2] < 1e-6


def test_fit_refuses_fewer_sizes_than_terms():
    data = [Measurement(s, 1e-5 * (1 + i), 8, "allreduce") for i, s in enumerate((1024, 4096, 16384))]
    with pytest.raises(FitError, match="3 distinct sizes cannot determine 4 free terms"):
        calibrate(data, flat(Costs(), 8), algo="ring")
    with pytest.raises(FitError, match="2 regimes need at least 6 distinct sizes"):
        calibrate(data * 1, flat(Costs(), 8), algo="ring", regimes=2, terms=("bandwidth",))


def test_calibrate_cli_writes_a_topology_every_command_accepts(tmp_path, capsys):
    data = [m for m in _synthetic((4,))]
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("size_bytes,time_us\n" + "".join(f"{m.size},{m.time * 1e6!r}\n" for m in data))
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(topology_to_dict(flat(Costs(), 4, 0.8, 1e-6))))
    out_topo, png = tmp_path / "fitted.yaml", tmp_path / "fit.png"
    assert main(["calibrate", str(csv_path), "--topology", str(base), "--ranks", "4", "--collective", "allreduce",
                 "--algo", "ring", "--output", str(out_topo), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "geometric mean" in text and "held at defaults" in text and png.stat().st_size > 0
    assert main(["predict", "allreduce", "--size", "64M", "--ranks", "4", "--algo", "ring", "--topology",
                 str(out_topo), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["modeled_time_us"] == pytest.approx(data[-1].time * 1e6, rel=1e-6)


# ---- the shared published sets ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, preset, ranks, gm, worst", [
    ("gb200-4gpu-ring-allreduce.csv", "nvl72", 4, 0.03, 0.10),
    ("h20-8gpu-small-allreduce.csv", "dgx-h100", 8, 0.03, None),
])
def test_calibration_on_published_allreduce(name, preset, ranks, gm, worst):
    data, _ = read_measurements(f"{MEASUREMENTS}/{name}", ranks, "allreduce")
    result = calibrate(data, load_topology(preset, ranks), algo="ring")
    g, _, m = summary(errors(result.modeled, [d.time for d in data]))
    assert g <= gm and (worst is None or m <= worst)


def test_calibration_on_cloudmatrix_alltoall_dispatch_and_combine():
    """The whole set, EP 8-256, dispatch and combine with one parameter set (the issue's acceptance)."""
    data, _ = read_measurements(f"{MEASUREMENTS}/cloudmatrix384-moe-alltoall.csv", collective="alltoall")
    assert {d.ranks for d in data} >= {8, 256} and {d.label for d in data} == {"dispatch", "combine"}
    result = calibrate(data, load_topology("cloudmatrix384", 256), algo="mesh")
    assert summary(errors(result.modeled, [d.time for d in data]))[0] <= 0.10
