"""The original studies' published artefacts, shipped inside jaxrnn as package data (provenance and MIT licence in
`README.md` and `LICENSE` beside this file).

Read through `importlib.resources`, so they are found wherever jaxrnn is installed (a checkout, a wheel, a zip) and
from any working directory:

    from jaxrnn import reference
    reference.curve("time_delay_N50.txt")               # (rows, 4): delay, mean distance, s.e.m., count
    reference.lesion_table("both_cumulative")          # the 2019 lesion study, AND, N = 50
    model = reference.network("and_noise_orthogonal_04")  # a `jaxrnn.interop.keras.KerasModel`

`files()` lists every shipped file; `NETWORKS` names the trained networks and their tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # Python >= 3.11; only for annotations
    from importlib.resources.abc import Traversable

#: The trained Keras networks: name -> (folder, task). `initial.hdf5` and `trained.hdf5` in each.
NETWORKS: dict[str, tuple[str, str]] = {
    "and_noise_orthogonal_04": ("jarne_laje_2019", "and"),
    "and_noise_orthogonal_14": ("jarne_laje_2019", "and"),
    "and_nonoise_normal_07": ("jarne_laje_2019", "and"),
    "or_noise_orthogonal_01": ("jarne_laje_2019", "or"),
    "not_noise_orthogonal_17": ("jarne_laje_2019", "not"),
    "flipflop_noise_orthogonal_06": ("jarne_laje_2019", "flipflop"),
    "pulse_orthogonal_03": ("jarne_laje_2019", "time_reproduction"),
    "flipflop3_N400_orthogonal": ("jarne_2023_flipflop3", "flipflop3"),
}
CURVES = ("time_delay_N50.txt", "size_at_delay150.txt")
LESION_MODES = ("both_cumulative", "positive_cumulative", "negative_cumulative", "positive_bands", "negative_bands")
STAGES = ("initial", "trained")


def root() -> Traversable:
    """The folder of the reference data inside the installed package."""
    return resources.files(__name__)


def files() -> list[str]:
    """Every shipped data file, as a path relative to `root()` (e.g. 'jarne_laje_2019/curves/time_delay_N50.txt')."""
    names = [f"jarne_laje_2019/curves/{c}" for c in CURVES]
    names += [f"jarne_laje_2019/lesion/and_N50_{m}.txt" for m in LESION_MODES]
    names += [f"{folder}/networks/{name}/{s}.hdf5" for name, (folder, _) in NETWORKS.items() for s in STAGES]
    return names


def _entry(relative: str) -> Traversable:
    entry = root().joinpath(*relative.split("/"))
    if not entry.is_file():
        raise FileNotFoundError(f"jaxrnn reference data: {relative} is missing from the installed package")
    return entry


@contextlib.contextmanager
def as_file(relative: str) -> Iterator[Path]:
    """A real filesystem path of a shipped file, for libraries that need one (h5py); extracted while in use when
    the package is installed as a zip."""
    with resources.as_file(_entry(relative)) as path:
        yield path


def _table(relative: str) -> np.ndarray:
    with _entry(relative).open("r") as f:
        return np.loadtxt(f, comments="#", ndmin=2)


def curve(name: str) -> np.ndarray:
    """A curve of the 2019 memory studies (`CURVES`), rows sorted by x: x, mean distance, s.e.m., count."""
    if name not in CURVES:
        raise ValueError(f"reference: unknown curve {name!r}; allowed: {', '.join(CURVES)}")
    data = _table(f"jarne_laje_2019/curves/{name}")
    return data[np.argsort(data[:, 0], kind="stable")]


def lesion_table(mode: str) -> np.ndarray:
    """The 2019 lesion table of AND networks (N = 50) for one `LESION_MODES` mode, rows as in the file: threshold,
    % removed (filled in `both_cumulative` only), then mean distance and error for conditions 00, 11, 10, 01."""
    if mode not in LESION_MODES:
        raise ValueError(f"reference: unknown lesion mode {mode!r}; allowed: {', '.join(LESION_MODES)}")
    return _table(f"jarne_laje_2019/lesion/and_N50_{mode}.txt")


def network_file(name: str, stage: str = "trained") -> str:
    """The relative path of a reference network's file (`initial` or `trained`)."""
    if name not in NETWORKS:
        raise ValueError(f"reference: unknown network {name!r}; allowed: {', '.join(NETWORKS)}")
    if stage not in STAGES:
        raise ValueError(f"reference: unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    return f"{NETWORKS[name][0]}/networks/{name}/{stage}.hdf5"


def network(name: str, stage: str = "trained"):
    """A reference network read with `jaxrnn.interop.keras.read_keras` (a `KerasModel`: math-orientation params)."""
    from jaxrnn.interop.keras import read_keras

    with as_file(network_file(name, stage)) as path:
        return read_keras(path)


__all__ = [
    "CURVES",
    "LESION_MODES",
    "NETWORKS",
    "STAGES",
    "as_file",
    "curve",
    "files",
    "lesion_table",
    "network",
    "network_file",
    "root",
]
