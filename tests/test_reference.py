"""The original studies' reference data ship inside the package (`jaxrnn.reference`): every file is found through
importlib.resources, from a copy of the package outside this checkout and inside a built wheel."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxrnn import reference
from jaxrnn.tasks import make_task

REPO = Path(__file__).resolve().parents[1]


def test_every_reference_file_is_package_data():
    names = reference.files()
    assert len(names) == 2 + 5 + 2 * len(reference.NETWORKS)
    for name in [*names, "README.md", "LICENSE"]:
        assert reference.root().joinpath(*name.split("/")).is_file(), name
    assert "MIT" in reference.root().joinpath("LICENSE").read_text()
    for name in reference.CURVES:
        curve = reference.curve(name)
        assert curve.shape[1] == 4 and np.all(np.diff(curve[:, 0]) > 0) and np.all(curve[:, 3] > 0)
    for mode in reference.LESION_MODES:
        table = reference.lesion_table(mode)
        assert table.shape[1] == 10 and np.all(np.isfinite(table[:, 2:]))
    for name, (_, task_name) in reference.NETWORKS.items():
        task = make_task(task_name)
        for stage in reference.STAGES:
            model = reference.network(name, stage)
            assert (model.n_in, model.n_out) == (task.n_in, task.n_out), (name, stage)
    with pytest.raises(ValueError, match="unknown network"):
        reference.network("nope")


_OUTSIDE = """
import sys
from pathlib import Path
import jaxrnn
from jaxrnn import reference
assert Path(jaxrnn.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), jaxrnn.__file__
missing = [f for f in reference.files() if not reference.root().joinpath(*f.split("/")).is_file()]
assert not missing, missing
print(reference.curve("size_at_delay150.txt").shape, reference.network("flipflop3_N400_orthogonal").units)
"""


def test_found_from_a_copy_of_the_package_outside_the_checkout(tmp_path):
    """A copy of `jaxrnn/` alone (no checkout beside it), imported from another working directory."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "jaxrnn", site / "jaxrnn", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", _OUTSIDE, str(site)],
        cwd=work,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["(22,", "4)", "400"]


def test_wheel_ships_the_reference_data(tmp_path):
    """`pip install .` installs what the wheel holds: every reference file, the README and the licence."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "jaxrnn", src / "jaxrnn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("jaxrnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [*reference.files(), "README.md", "LICENSE"]:
        assert f"jaxrnn/reference/{name}" in names, name
