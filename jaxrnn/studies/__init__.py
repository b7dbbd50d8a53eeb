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
    "ei_spectrum": "jaxrnn.studies.ei_spectrum",
}

#: Network options a study may accept (`jaxrnn study NAME --dale --sparsity S --cell C`), passed as keyword
#: arguments to its `run` (studies that take them: success_table, spectral_migration).
OPTIONS: tuple[str, ...] = ("dale", "e_fraction", "sparsity", "cell")
_TAKES_OPTIONS = ("success_table", "spectral_migration")

SCALES: tuple[str, ...] = ("smoke", "cpu", "paper")

_RESULTS = Path("results")


def run_study(
    name: str,
    scale: str = "smoke",
    members: int | None = None,
    out: str | Path | None = None,
    run: str | Path | None = None,
    **options,
) -> Path:
    """Run one study and return the directory it wrote.

    Args:
        name: a key of `STUDIES`.
        scale: one of `SCALES`: "smoke" (seconds, for CI), "cpu" (minutes on a laptop), "paper" (original protocol).
        members: ensemble size E per condition; None takes the scale's default.
        out: output directory; default `results/<name>`.
        run: an existing run directory to analyse instead of training (studies that take one, e.g. lesion).
        **options: network options (`OPTIONS`: dale, e_fraction, sparsity, cell) for the studies that take them
            (success_table, spectral_migration); their values are validated by `jaxrnn.network.NetConfig`.

    Returns:
        The output directory holding `report.md`, CSVs and PNGs.

    Raises:
        ValueError: unknown study or scale, or options the study does not take.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; allowed: {', '.join(sorted(STUDIES))}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    if members is not None and members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown study options {unknown}; allowed: {', '.join(OPTIONS)}")
    options = {k: v for k, v in options.items() if v is not None}
    if "e_fraction" in options and not options.get("dale"):
        raise ValueError("study option e_fraction needs dale (--dale): without Dale's law there are no E units")
    if options and name not in _TAKES_OPTIONS:
        raise ValueError(
            f"study {name!r} takes no network options ({', '.join(options)}); those that do: "
            + ", ".join(_TAKES_OPTIONS)
        )
    out_dir = Path(out) if out is not None else _RESULTS / name
    module = importlib.import_module(STUDIES[name])
    if hasattr(module, "run_named"):
        return module.run_named(name, scale, members, out_dir, run)
    return module.run(scale, members, out_dir, None if run is None else Path(run), **options)
