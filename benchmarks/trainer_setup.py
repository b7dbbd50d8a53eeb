"""Which CPU set-up and backward pass train fastest through `fit`?

The same workload (AND task, N = 50, T = 200, one epoch of 1,280 trials in batches of 128, E = 16) under:
JAX's defaults (one multi-threaded CPU device) and one single-threaded device per core with the members sharded, with
XLA's YNN fusions on and off (jaxrnn's default, `_platform.configure`, is off where jaxlib knows the flag); each with
the hand-written backward pass (custom VJP) and with plain autodiff through `lax.scan`. Every variant runs in its own
process (XLA reads its flags once), `--rounds` times interleaved, so machine load hits all of them alike; medians are
reported.

    python benchmarks/trainer_setup.py [--smoke] [--units 50] [--rounds 2]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
NAME = "trainer_setup"


def _worker(units, T, trials, batch, E, fast, repeats):
    sys.path.insert(0, str(HERE.parent))
    import _common as C

    res = C.time_fit(C.and_config(units, T, trials, batch), E, repeats, fast_backward=fast)
    return {
        "times": [t / E for t in res["times"]],
        "compile_s": res["compile"],
        "devices": C.jax.local_device_count(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--_worker" in args:
        sizes = json.loads(args[args.index("--_worker") + 1])
        print(json.dumps(_worker(*sizes)))
        return 0
    sys.path.insert(0, str(HERE.parent))
    import _common as C
    import numpy as np

    from jaxrnn import _platform

    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=50)
    p.add_argument("--members", type=int, default=None, help="E (default 16, smoke 2)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds of all variants (default 2)")
    a = p.parse_args(args)
    env = C.environment()
    units, T, trials, batch = (8, 40, 64, 32) if a.smoke else (a.units, 200, C.EPOCH_TRIALS, C.BATCH)
    E = a.members or (2 if a.smoke else 16)
    rounds = a.rounds or (1 if a.smoke else 2)
    repeats = a.repeats or (1 if a.smoke else 3)
    setups = {
        "JAX default (1 device, threaded)": {"JAXRNN_NO_CONFIGURE": "1", "XLA_FLAGS": None},
        "device per core, YNN fusions on": {"XLA_FLAGS": _platform.cpu_flags(ynn_off=False)},
        "device per core, YNN fusions off": {"XLA_FLAGS": _platform.cpu_flags(ynn_off=True)},
    }
    if a.smoke:
        setups.pop("device per core, YNN fusions on")
    times: dict[tuple, list] = {}
    info: dict[tuple, dict] = {}
    for _ in range(rounds):
        for setup, extra in setups.items():
            for fast in (True, False):
                sizes = json.dumps([units, T, trials, batch, E, fast, repeats])
                res = C.run_worker(HERE, ["--_worker", sizes], env=extra)
                key = (setup, "custom VJP" if fast else "autodiff")
                if "error" in res:
                    print(key, res["error"], flush=True)
                    continue
                times.setdefault(key, []).extend(res["times"])
                info[key] = res
                print(key, res, flush=True)
    base = times.get(("JAX default (1 device, threaded)", "autodiff"))
    rows = []
    for (setup, grad), ts in times.items():
        med = float(np.median(ts))
        rows.append(
            dict(
                setup=setup,
                backward=grad,
                N=units,
                E=E,
                s_per_net_epoch_median=med,
                s_per_net_epoch_min=float(min(ts)),
                n_timings=len(ts),
                compile_s=info[(setup, grad)]["compile_s"],
                speedup_vs_plain_jax=float(np.median(base)) / med if base else None,
                XLA_FLAGS=info[(setup, grad)]["XLA_FLAGS"],
            )
        )
    body = f"""
Workload: AND task, N = {units}, T = {T}, one epoch of {trials} trials in batches of {batch}, E = {E} members,
through `jaxrnn.training.train.fit`. Each variant in its own process; {rounds} interleaved round(s) x {repeats} timed
repeats after a compile call; seconds per network per epoch. `speedup_vs_plain_jax`: relative to JAX's defaults
with autodiff. tcmalloc preloaded: {_platform.tcmalloc_loaded()} (optional: LD_PRELOAD={_platform.tcmalloc_path()}).
"""

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh([f"{r['setup']}\n{r['backward']}" for r in rows], [r["s_per_net_epoch_median"] for r in rows])
        ax.set_xlabel("s per network per epoch")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    C.write(NAME, a.out, rows, env, "Trainer set-up: CPU devices/threads and backward pass", body, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
