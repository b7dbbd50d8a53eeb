"""How much faster is jaxrnn than training one network after another with Keras or PyTorch?

The same workload (one epoch = 1,280 trials in batches of 128, T = 200, 2 inputs, 1 output, full BPTT, fp32,
Adam, MSE) trained by: a Keras 3 `SimpleRNN` + `Dense` loop (JAX backend, jit_compile), a PyTorch `nn.RNN` +
`Linear` loop, one network after another, and jaxrnn (`fit`, E = 16 members at once, hand-written backward pass;
and the same with plain autodiff). Each runs in its own process with its own threads/XLA flags. Keras and
PyTorch are the optional extra `pip install jaxrnn[baselines]`; a missing one is skipped with a message.
Also: the paper-protocol success_table time per network (20 epochs of 15,000 trials, batch 64), extrapolated
from the measured epochs.

    python benchmarks/baselines.py [--smoke] [--units 50 400] [--networks 2]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
NAME = "baselines"


# ------------------------------------------------------------------------------------------------------------------
# Workers: each times one framework in a fresh process and prints one JSON line.


def _data(trials: int, T: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, (trials, T, 2)).astype(np.float32)
    bits = rng.integers(0, 2, (trials, 1, 2)).astype(np.float32)
    x[:, 3 * T // 20 : T // 4, :] += bits  # the AND task's pulses, [30, 50) at T = 200
    y = np.zeros((trials, T, 1), np.float32)
    y[:, 7 * T // 20 :, 0] = bits[:, :, 0] * bits[:, :, 1]
    return x, y


def _worker_keras(units, T, trials, batch, networks):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as e:
        return {"skipped": f"keras not installed ({e}); pip install 'jaxrnn[baselines]'"}
    x, y = _data(trials, T)
    times = []
    for i in range(networks):
        keras.utils.set_random_seed(i)
        model = keras.Sequential(
            [keras.Input((T, 2)), keras.layers.SimpleRNN(units, return_sequences=True, use_bias=False),
             keras.layers.Dense(1)]
        )  # fmt: skip
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=True)
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)  # compile + one epoch
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
        times.append(time.perf_counter() - t0)
    return {"times": times, "version": f"keras {keras.__version__} ({keras.backend.backend()} backend)"}


def _worker_torch(units, T, trials, batch, networks):
    try:
        import torch
    except ImportError as e:
        return {"skipped": f"torch not installed ({e}); pip install 'jaxrnn[baselines]'"}
    sys.path.insert(0, str(HERE.parent))
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    x, y = (torch.from_numpy(a) for a in _data(trials, T))
    times = []
    for i in range(networks):
        torch.manual_seed(i)
        rnn = torch.nn.RNN(2, units, nonlinearity="tanh", bias=False, batch_first=True)
        lin = torch.nn.Linear(units, 1)
        opt = torch.optim.Adam([*rnn.parameters(), *lin.parameters()], lr=1e-4)

        def epoch(rnn=rnn, lin=lin, opt=opt):
            for idx in torch.randperm(trials)[: trials // batch * batch].reshape(-1, batch):
                opt.zero_grad()
                loss = torch.mean((lin(rnn(x[idx])[0]) - y[idx]) ** 2)
                loss.backward()
                opt.step()

        epoch()  # warm-up
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return {"times": times, "version": f"torch {torch.__version__}, {torch.get_num_threads()} threads"}


def _worker_jaxrnn(units, T, trials, batch, networks, autodiff=False):
    sys.path.insert(0, str(HERE.parent))
    import _common as C

    E = networks
    res = C.time_fit(C.and_config(units, T, trials, batch), E, 3 if trials > 200 else 1, fast_backward=not autodiff)
    # jaxrnn's own paper epoch (15,000 trials) only where it takes seconds: at N = 400 and E = 16, its compile call and
    # timed call took over 10 minutes (2026-11-23 run, stopped); the extrapolated column covers it.
    paper_cfg = C.and_config(units, T, *_paper_sizes(trials))
    paper = C.time_fit(paper_cfg, E, 1, fast_backward=not autodiff) if units <= 100 else None
    return {
        "times": [t / E for t in res["times"]],
        "compile_s": res["compile"],
        **({"paper_epoch_per_net": paper["per_network_median"]} if paper else {}),
        "version": f"jax {C.jax.__version__}, {C.jax.local_device_count()} devices, E = {E}, "
        + ("autodiff through lax.scan" if autodiff else "custom VJP"),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }


def _paper_sizes(trials):
    return (15_000, 64) if trials > 200 else (128, 16)


# ------------------------------------------------------------------------------------------------------------------


def run(smoke=False, units_list=(50,), networks=None, out=None) -> list[dict]:
    sys.path.insert(0, str(HERE.parent))
    import _common as C
    import numpy as np

    env = C.environment()
    T, trials, batch = (40, 64, 32) if smoke else (200, C.EPOCH_TRIALS, C.BATCH)
    p_trials, p_batch = _paper_sizes(trials)
    networks = networks or (1 if smoke else 2)
    E = 2 if smoke else 16
    rows, notes = [], []
    for units in (8,) if smoke else units_list:
        variants = [
            ("Keras SimpleRNN loop", "keras", networks, {"JAXRNN_NO_CONFIGURE": "1", "XLA_FLAGS": None}),
            ("PyTorch nn.RNN loop", "torch", networks, {}),
            ("jaxrnn, autodiff (plain JAX)", "jaxrnn_autodiff", E, {}),
            ("jaxrnn (custom VJP)", "jaxrnn", E, {}),
        ]
        results = {}
        for label, kind, n, extra_env in variants:
            args = ["--_worker", kind, "--_sizes", json.dumps([units, T, trials, batch, n])]
            res = C.run_worker(HERE, args, env=extra_env)
            results[label] = res
            if "skipped" in res or "error" in res:
                notes.append(f"- {label}, N = {units}: {res.get('skipped') or res.get('error')}")
                print(notes[-1], flush=True)
                continue
            med = float(np.median(res["times"]))
            row = dict(
                framework=label,
                N=units,
                T=T,
                trials=trials,
                batch=batch,
                s_per_net_epoch_median=med,
                s_per_net_epoch_min=float(min(res["times"])),
                version=res["version"],
                # paper protocol, one network: 20 epochs of 15,000 trials (early stopping ignored: an upper bound)
                paper_s_per_net_extrapolated=med * p_trials / trials * C.PAPER_EPOCHS,
                paper_s_per_net_measured_epoch=res["paper_epoch_per_net"] * C.PAPER_EPOCHS
                if "paper_epoch_per_net" in res
                else None,
                loadavg1=os.getloadavg()[0],
            )
            rows.append(row)
            print(row, flush=True)
        ref = next((r for r in rows if r["N"] == units and r["framework"] == "jaxrnn (custom VJP)"), None)
        for r in rows:
            if r["N"] == units and ref is not None:
                r["x_slower_than_jaxrnn"] = r["s_per_net_epoch_median"] / ref["s_per_net_epoch_median"]
    body = f"""
Workload per network: one epoch of {trials} trials in batches of {batch}, T = {T}, 2 inputs, 1 output, no RNN bias,
full BPTT, fp32, Adam, MSE. Keras and PyTorch train {networks} network(s) one after another, each timed on its
second epoch (the first compiles / warms up); jaxrnn trains E = {E} members at once through `fit` and the time is
divided by E (median of 3 repeats after a compile call). Every framework runs in its own process: Keras on the JAX
backend with XLA's default threading, PyTorch with one thread per core, jaxrnn with its CPU defaults
(`jaxrnn._platform.configure`: one single-threaded device per core, members sharded).

`paper_s_per_net_extrapolated`: the 2019 success_table protocol for one network (20 epochs of {p_trials} trials)
= epoch time x {p_trials}/{trials} x 20, an upper bound (no early stopping; batch {batch} instead of the paper's
{p_batch}, which favours the loops). `paper_s_per_net_measured_epoch`: jaxrnn's own paper epoch
({p_trials} trials, batch {p_batch}, E = {E}) measured once, x 20.

{chr(10).join(notes) if notes else ""}
"""

    def plot(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        labels = [f"{r['framework']}\nN={r['N']}" for r in rows]
        ax.barh(labels, [r["s_per_net_epoch_median"] for r in rows])
        ax.set_xscale("log")
        ax.set_xlabel("s per network per epoch (log)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    C.write(NAME, out or C.RESULTS, rows, env, "Baselines: Keras and PyTorch loops vs jaxrnn", body, plot)
    return rows


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--_worker" in args:  # internal: one framework in this process
        kind = args[args.index("--_worker") + 1]
        units, T, trials, batch, n = json.loads(args[args.index("--_sizes") + 1])
        if kind == "keras":
            res = _worker_keras(units, T, trials, batch, n)
        elif kind == "torch":
            res = _worker_torch(units, T, trials, batch, n)
        else:
            res = _worker_jaxrnn(units, T, trials, batch, n, autodiff=kind == "jaxrnn_autodiff")
        print(json.dumps(res))
        return 0
    sys.path.insert(0, str(HERE.parent))
    import _common as C

    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--units", type=int, nargs="+", default=[50], help="N values (default 50; the issue: 50 400)")
    p.add_argument("--networks", type=int, default=None, help="networks per Keras/PyTorch loop (default 2)")
    a = p.parse_args(args)
    run(a.smoke, a.units, a.networks, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
