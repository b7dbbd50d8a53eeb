"""How do training time and memory grow with the number of units N (expected ∝ N²)?

N in {25, 50, 100, 200, 400}, T = 200, E = 8, one epoch of 1,280 trials in batches of 128, through `fit`.

    python benchmarks/units_scaling.py [--smoke] [--members E]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (sets the CPU defaults before JAX starts)

NAME = "units_scaling"


def main(argv=None) -> int:
    C.size_sweep(NAME, "units", (25, 50, 100, 200, 400), (8, 16), argv, __doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
