"""How does the training time per network change with the ensemble size E?

Times `jaxrnn.training.train.fit` end to end (AND task, N = 50, T = 200, one epoch = 1,280 trials in batches of 128) for
E in {1, 4, 16, 64, 256}; reports seconds per network per epoch (median and min of repeats), compile time apart,
GFLOP/s achieved and the fraction of the best matmul rate measured in the same run, and the largest E that fits
one compiled call in memory. `--paper-epoch` adds the 2019 paper's epoch (15,000 trials, batch 64) at
E in {1, 16, 64}: time per network and per whole ensemble.

    python benchmarks/ensemble_scaling.py [--smoke] [--paper-epoch]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (sets the CPU defaults before JAX starts)

NAME = "ensemble_scaling"


def run(smoke: bool = False, repeats: int | None = None, paper_epoch: bool = False, out=C.RESULTS) -> list[dict]:
    tr = C.train_module()
    env = C.environment()
    units, T = (8, 40) if smoke else (50, 200)
    ensembles = (2,) if smoke else (1, 4, 16, 64, 256)
    trials, batch = (64, 32) if smoke else (C.EPOCH_TRIALS, C.BATCH)
    repeats = repeats or (1 if smoke else 3)
    ceiling = C.matmul_ceiling(repeats=2 if smoke else 5)
    rows = []
    for E in ensembles:
        cfg = C.and_config(units, T, trials, batch)
        res = C.time_fit(cfg, E, repeats if E < 64 else 1)
        flops = C.training_flops(units, cfg.task.n_in, cfg.task.n_out, T, cfg.steps_per_epoch * batch)
        rate = flops * E / res["median"]
        rows.append(
            dict(
                table="issue epoch",
                E=E,
                N=units,
                T=T,
                trials=trials,
                batch=batch,
                chunk=tr.default_chunk(cfg, E),
                s_per_net_epoch_median=res["per_network_median"],
                s_per_net_epoch_min=res["per_network_min"],
                s_ensemble_epoch_median=res["median"],
                compile_s=res["compile"],
                gflops=rate / 1e9,
                frac_matmul_ceiling=rate / ceiling,
                loadavg1=os.getloadavg()[0],
            )
        )
        print(rows[-1], flush=True)
    cfg = C.and_config(units, T, trials, batch)
    per_call = C.peak_bytes(cfg, 4 * C.jax.local_device_count())
    per_member = per_call / (4 * C.jax.local_device_count()) if per_call > 0 else float("nan")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    max_e_per_call = int(0.8 * ram // per_member) if per_call > 0 else None
    if paper_epoch:
        p_trials, p_batch = (128, 16) if smoke else (C.PAPER_TRIALS, C.PAPER_BATCH)
        for E in (2,) if smoke else (1, 16, 64):
            cfg = C.and_config(units, T, p_trials, p_batch)
            res = C.time_fit(cfg, E, 1)
            rows.append(
                dict(
                    table="paper epoch",
                    E=E,
                    N=units,
                    T=T,
                    trials=p_trials,
                    batch=p_batch,
                    chunk=tr.default_chunk(cfg, E),
                    s_per_net_epoch_median=res["per_network_median"],
                    s_per_net_epoch_min=res["per_network_min"],
                    s_ensemble_epoch_median=res["median"],
                    compile_s=res["compile"],
                    loadavg1=os.getloadavg()[0],
                )
            )
            print(rows[-1], flush=True)
    body = f"""
Workload: AND task, N = {units}, T = {T}, full BPTT, fp32, Adam, timed through `jaxrnn.fit` (task generation,
masks, early stopping (threshold 0: never triggers), chunking, host transfers included). `s_per_net_epoch` = time
of one epoch of the whole ensemble / E; median (min) of {repeats} repeats after a compile call (E >= 64: 1 repeat).
`compile_s` = first call - median. GFLOP/s counts matmul FLOPs of forward + backward (3 x 2·T·N·(N+n_in+n_out)
per trial). Matmul ceiling measured in this run over all {C.jax.local_device_count()} devices: {ceiling / 1e9:.1f}
GFLOP/s.

Memory of one compiled call (XLA memory analysis): {per_member / 2**20:.2f} MiB per member; the largest E that fits
one call in 80% of RAM ({ram / 2**30:.1f} GiB) is about {max_e_per_call}. Larger ensembles run in chunks
(`default_chunk`: at most 32 members per core on CPU), so E is not limited by memory.
Targets (issue 8, quiet 2-core CPU, N = 50, E >= 8): <= 0.08 s per network per epoch.
"""

    def plot(path):
        import matplotlib.pyplot as plt

        issue = [r for r in rows if r["table"] == "issue epoch"]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.loglog([r["E"] for r in issue], [r["s_per_net_epoch_median"] for r in issue], "o-", label="jaxrnn fit")
        ax.axhline(0.08, ls="--", c="gray", label="target 0.08 s")
        ax.set_xlabel("ensemble size E")
        ax.set_ylabel("s per network per epoch")
        ax.set_title(f"N={units}, T={T}, {trials} trials/epoch")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    C.write(NAME, out, rows, env, "Ensemble scaling: time per network vs ensemble size", body, plot)
    return rows


def main(argv=None) -> int:
    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--paper-epoch", action="store_true", help="also time the paper's epoch at E = 1, 16, 64")
    a = p.parse_args(argv)
    run(a.smoke, a.repeats, a.paper_epoch, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
