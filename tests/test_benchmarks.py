"""Every benchmark script runs end to end at its smoke size and writes its CSV and report (no timing asserted)."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
FAST = ["train_cli"]  # the rest are slow-marked, to keep CI short


def _smoke(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / f"{name}.csv")))
    assert rows and (tmp_path / f"{name}.md").read_text().startswith("#")
    return rows


@pytest.mark.parametrize("name", FAST)
def test_benchmark_smoke(name, tmp_path):
    rows = _smoke(name, tmp_path)
    times = [float(r.get("s_per_net_epoch_median") or r.get("s_per_net_epoch")) for r in rows]
    assert all(t > 0 for t in times)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["ensemble_scaling", "units_scaling", "length_scaling", "baselines", "trainer_setup", "accelerator", "grid_sweep"],
)
def test_benchmark_smoke_slow(name, tmp_path):
    _smoke(name, tmp_path)
