"""Population studies of the 2019 paper, one module each, run by `jaxrnn study NAME`.

`STUDIES` maps a study name to its module path (imported lazily, so listing studies imports nothing heavy). Every
study module defines `run(scale, members, out, run) -> Path` that trains (or reuses) ensembles, writes CSVs, PNGs and a
`report.md` under `out`, and returns `out`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

STUDIES: dict[str, str] = {
    "success_table": "jaxrnn.studies.success_table",
    "spectral_migration": "jaxrnn.studies.spectral_migration",
    "memory_delay": "jaxrnn.studies.memory",
    "memory_size": "jaxrnn.studies.memory",
    "lesion": "jaxrnn.studies.lesion",
    "flipflop3": "jaxrnn.studies.flipflop3",
}

SCALES: tuple[str, ...] = ("smoke", "cpu", "paper")

_RESULTS = Path("results")


def run_study(
    name: str,
    scale: str = "smoke",
    members: int | None = None,
    out: str | Path | None = None,
    run: str | Path | None = None,
) -> Path:
    """Run one study and return the directory it wrote.

    Args:
        name: a key of `STUDIES`.
        scale: one of `SCALES`: "smoke" (seconds, for CI), "cpu" (minutes on a laptop), "paper" (original protocol).
        members: ensemble size E per condition; None takes the scale's default.
        out: output directory; default `results/<name>`.
        run: an existing run directory to analyse instead of training (studies that take one, e.g. lesion).

    Returns:
        The output directory holding `report.md`, CSVs and PNGs.

    Raises:
        ValueError: unknown study or scale.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; allowed: {', '.join(sorted(STUDIES))}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    if members is not None and members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    out_dir = Path(out) if out is not None else _RESULTS / name
    module = importlib.import_module(STUDIES[name])
    if hasattr(module, "run_named"):
        return module.run_named(name, scale, members, out_dir, run)
    return module.run(scale, members, out_dir, None if run is None else Path(run))
