"""Modeled times recorded before the registry refactor (issue 12) stay what they were: every algorithm of
every collective on every preset at 8, 64, 1,024 and 8,192 ranks, 4 MiB (tests/scripts/record_predictions.py
records them; its ``--check`` compares every case, this test the ones that took under half a second of CPU)."""
import json
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "scripts"))
import record_predictions  # noqa: E402

RECORDED = json.loads((HERE / "data" / "recorded_predictions.json").read_text())
FAST = sorted(key for key, entry in RECORDED.items() if entry["time"] != "over budget" and entry["cpu"] < 0.5)


def test_every_preset_and_algorithm_is_recorded():
    presets = {key.split("/")[0] for key in RECORDED}
    algos = {key.split("/")[3] for key in RECORDED}
    assert {"atlas950-superpod", "cloudmatrix384", "ubmesh-pod", "nvl72", "flat"} <= presets
    assert {"ring", "rhd", "nhr", "nb", "hier", "mesh", "pairwise"} <= algos
    assert sum(isinstance(entry["time"], float) for entry in RECORDED.values()) > 500


@pytest.mark.parametrize("preset", sorted({key.split("/")[0] for key in FAST}))
def test_recorded_times_unchanged(preset):
    differ = []
    for key in (k for k in FAST if k.startswith(preset + "/")):
        _, n, collective, algo = key.split("/")
        value = record_predictions.predict(preset, int(n), collective, algo)
        if not record_predictions.same(RECORDED[key]["time"], value):
            differ.append(f"{key}: recorded {RECORDED[key]['time']}, now {value}")
    assert not differ, "\n".join(differ)
