"""Population studies, run by `jaxrnn study NAME` (or `run_study(STUDIES[NAME], ...)`).

`STUDIES` is the registry: every study is one module defining `STUDY = jaxrnn.studies.base.Study(...)` (its scales,
the function that runs it and the one that lists its ensembles) and one line here. `check_study` is `jaxrnn study`'s
memory check of a study's ensembles (`study_ensembles`).
"""

from __future__ import annotations

from jaxrnn.studies import ei_spectrum, flipflop3, lesion, lr_delay, memory, spectral_migration, success_table
from jaxrnn.studies.base import (
    NETWORK_OPTIONS,
    SCALES,
    Context,
    Protocol,
    Scale,
    Study,
    check_study,
    run_study,
    study_ensembles,
)

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        success_table.STUDY,
        spectral_migration.STUDY,
        memory.DELAY,
        memory.SIZE,
        lesion.STUDY,
        flipflop3.STUDY,
        ei_spectrum.STUDY,
        lr_delay.STUDY,
    )
}

__all__ = [
    "NETWORK_OPTIONS",
    "SCALES",
    "STUDIES",
    "Context",
    "Protocol",
    "Scale",
    "Study",
    "check_study",
    "run_study",
    "study_ensembles",
]
