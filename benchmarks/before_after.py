"""Does the package train as fast as before the Flax-cell refactor?

Times `jaxrnn.fit` of two source trees on the same workload: "before" = commit 3c1374c (the code before the
refactor; its GRU is jaxrnn's own gated-cell code) and "after" = this checkout's working tree (its GRU is
`flax.linen.GRUCell`, since 015dc1e). Workload: the AND task, T = 200, N = 50, E = 16, one epoch = 1,280 trials in
batches of 128, threshold 0 (nobody stops early), `--epochs` epochs per `fit` call; cells: the rate RNN ("rnn", the
default) and the GRU ("gru"). Targets (the issue): the rate RNN's time unchanged; the Flax GRU within 1.5x of the
old GRU's time per network-epoch.

Every measurement runs in a fresh process whose `PYTHONPATH` is the tree measured (the worker prints
`jaxrnn.__file__` and refuses to time a jaxrnn from elsewhere); it sets the tree's own CPU defaults
(`jaxrnn._platform.configure`), makes one compiling call, then `--repeats` timed calls, each a fresh ensemble (seeds
0, 1, 2, ... in both trees). The four variants run in `--rounds` interleaved rounds (default 3), the order reversed
in every other round, so load and drift hit all of them alike. The report gives per variant the median and min
seconds per network-epoch over all timed calls, and the after/before ratios per cell.

The "before" tree: `--before PATH`, or by default a git worktree of 3c1374c at TMPDIR/jaxrnn_before, created with
`git worktree add --detach` when missing (and left there for later runs).

    python benchmarks/before_after.py [--smoke] [--rounds 3] [--repeats 3] [--epochs 3] [--before PATH]
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
NAME = "before_after"
BEFORE_COMMIT = "3c1374c"
CELLS = ("rnn", "gru")
TREES = ("before", "after")
#: The issue's bound on after / before (median seconds per network-epoch); the rate RNN's is "unchanged".
TARGETS = {"rnn": "unchanged", "gru": "<= 1.5"}


#: Seconds a worker may take before it is recorded as hung (a worker takes 10-90 s here). The "before" tree's GRU
#: init can deadlock on a 2-core CPU: its batched QRs wait on XLA's thread pool (fixed after it:
#: `jaxrnn.training.train._map_members`).
WORKER_TIMEOUT = 300


def _worker(spec: dict) -> dict:
    """Time `fit` of the jaxrnn found on PYTHONPATH, which must lie in `spec["tree"]`.

    Self-contained on purpose: benchmarks/_common.py puts this checkout's root on sys.path, so importing it here
    would time this checkout's jaxrnn whatever the tree. The timing is _common.time_fit's: one call (compile + run),
    then `repeats` calls, each a fresh ensemble of another seed, wall clock up to the loss on the host.
    """
    tree = Path(spec["tree"]).resolve()
    from jaxrnn import _platform  # jaxrnn/__init__ imports jax but starts no backend

    _platform.configure()
    import jax
    import numpy as np

    import jaxrnn
    from jaxrnn import TrainConfig, fit  # the public API, the same in both trees
    from jaxrnn.tasks import make_task

    source = Path(jaxrnn.__file__).resolve()
    print(f"jaxrnn from {source}", flush=True)
    if tree not in source.parents:
        raise SystemExit(f"before_after worker: jaxrnn imported from {source}, not from the tree {tree}")
    units, T, trials, batch, E, epochs = (spec[k] for k in ("units", "T", "trials", "batch", "members", "epochs"))
    if T == 200:  # benchmarks/_common.and_config's workload
        task = make_task("and")
    else:  # smoke sizes: the events scaled into the short trial
        start = T // 8
        task = make_task("and", T=T, pulse_start=start, response_start=start + 20 + (T - start - 20) // 3)
    assert task.T == T, (task.T, T)
    config = TrainConfig(
        task, units=units, epochs=epochs, batch_size=batch, n_train=trials, threshold=0.0, cell=spec["cell"]
    )
    seeds = iter(range(10_000))

    def call():
        return fit(config, next(seeds), range(E)).loss

    t0 = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - t0
    times, loss = [], None
    for _ in range(max(1, spec["repeats"])):
        t0 = time.perf_counter()
        loss = jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return {
        "jaxrnn_file": str(source),
        "s_per_net_epoch": [t / (E * epochs) for t in times],
        "compile_s": max(0.0, first - float(np.median(times))),
        "final_loss_median": float(np.median(np.asarray(loss)[:, -1])),
        "devices": jax.local_device_count(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "loadavg1": os.getloadavg()[0],
    }


def _git(tree: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _before_tree(path: str | None, root: Path) -> Path:
    """The "before" source tree: `path` as given, or the default worktree of BEFORE_COMMIT (created if missing)."""
    if path is not None:
        tree = Path(path).resolve()
        if not (tree / "jaxrnn" / "__init__.py").is_file():
            raise SystemExit(f"before_after: --before {path}: no jaxrnn/__init__.py there")
        return tree
    tree = Path(tempfile.gettempdir()) / "jaxrnn_before"
    want = _git(root, "rev-parse", f"{BEFORE_COMMIT}^{{commit}}")
    if not want:
        raise SystemExit(f"before_after: commit {BEFORE_COMMIT} not found in {root}")
    if not tree.exists():
        proc = subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(tree), want], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"before_after: git worktree add {tree} {BEFORE_COMMIT} failed: {proc.stderr.strip()}")
        print(f"created the worktree {tree} at {BEFORE_COMMIT}", flush=True)
    if _git(tree, "rev-parse", "HEAD") != want or _git(tree, "status", "--porcelain", "--", "jaxrnn"):
        raise SystemExit(
            f"before_after: {tree} is not a clean checkout of {BEFORE_COMMIT}; remove it (git worktree remove) "
            "or pass --before PATH"
        )
    return tree.resolve()


def _describe(tree: Path) -> str:
    """Commit of a source tree, and whether its jaxrnn/ differs from it."""
    head = _git(tree, "rev-parse", "--short", "HEAD")
    if not head:
        return "not a git tree"
    changed = _git(tree, "status", "--porcelain", "--", "jaxrnn").splitlines()
    return head + (f" + {len(changed)} uncommitted change(s) in jaxrnn/" if changed else "")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--_worker" in args:
        print(json.dumps(_worker(json.loads(args[args.index("--_worker") + 1]))))
        return 0
    user_xla_flags = os.environ.get("XLA_FLAGS")  # before _common's configure() sets them in this process
    sys.path.insert(0, str(HERE.parent))
    import _common as C
    import numpy as np

    p = C.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds of the four variants (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per fit call (default 3, smoke 2)")
    p.add_argument("--members", type=int, default=None, help="E (default 16, smoke 2)")
    p.add_argument("--units", type=int, default=50, help="N (smoke: 8)")
    p.add_argument("--before", help=f"source tree of the 'before' code (default: a worktree of {BEFORE_COMMIT})")
    p.add_argument("--after", default=str(C.ROOT), help="source tree of the 'after' code (default: this checkout)")
    a = p.parse_args(args)
    trees = {"before": _before_tree(a.before, C.ROOT), "after": Path(a.after).resolve()}
    if not (trees["after"] / "jaxrnn" / "__init__.py").is_file():
        raise SystemExit(f"before_after: --after {a.after}: no jaxrnn/__init__.py there")
    env = C.environment()
    units, T, trials, batch = (8, 40, 64, 32) if a.smoke else (a.units, 200, C.EPOCH_TRIALS, C.BATCH)
    E = a.members or (2 if a.smoke else 16)
    epochs = a.epochs or (2 if a.smoke else 3)
    rounds = a.rounds or (1 if a.smoke else 3)
    repeats = a.repeats or (1 if a.smoke else 3)
    variants = [(cell, tree) for cell in CELLS for tree in TREES]
    # each worker sets its tree's own CPU defaults, unless the caller chose XLA_FLAGS
    worker_env = {"XLA_FLAGS": user_xla_flags}
    results: dict[tuple, list[dict]] = {v: [] for v in variants}
    hung = {v: 0 for v in variants}
    for r in range(rounds):
        for cell, tree in variants if r % 2 == 0 else variants[::-1]:
            spec = dict(
                tree=str(trees[tree]), cell=cell, units=units, T=T, trials=trials, batch=batch, members=E,
                epochs=epochs, repeats=repeats,
            )  # fmt: skip
            try:
                env = {**worker_env, "PYTHONPATH": spec["tree"]}
                res = C.run_worker(HERE, ["--_worker", json.dumps(spec)], env=env, timeout=WORKER_TIMEOUT)
            except subprocess.TimeoutExpired:  # a worker that hangs is recorded as such, the others go on
                hung[(cell, tree)] += 1
                print(f"round {r + 1}/{rounds}, {cell} {tree}: no result within {WORKER_TIMEOUT} s (hung)", flush=True)
                continue
            if "error" in res:
                raise SystemExit(f"before_after: the {tree} {cell} worker failed: {' '.join(res['error'])}")
            results[(cell, tree)].append(res)
            print(f"round {r + 1}/{rounds}, {cell} {tree}:", {k: v for k, v in res.items() if k != "XLA_FLAGS"})
    rows = []
    for cell, tree in variants:
        runs = results[(cell, tree)]
        ts = [t for res in runs for t in res["s_per_net_epoch"]]
        if not ts:
            rows.append(dict(cell=cell, tree=tree, source=_describe(trees[tree]), hung=hung[(cell, tree)]))
            continue
        rows.append(
            dict(
                cell=cell,
                tree=tree,
                source=_describe(trees[tree]),
                N=units,
                T=T,
                E=E,
                epochs=epochs,
                trials=trials,
                batch=batch,
                s_per_net_epoch_median=float(np.median(ts)),
                s_per_net_epoch_min=float(min(ts)),
                n_timings=len(ts),
                compile_s_median=float(np.median([res["compile_s"] for res in runs])),
                final_loss_median=float(np.median([res["final_loss_median"] for res in runs])),
                loadavg1_max=max(res["loadavg1"] for res in runs),
            )
        )
    verdicts = []
    for cell in CELLS:
        before, after = (next(r for r in rows if r["cell"] == cell and r["tree"] == t) for t in TREES)
        if "hung" in before or "hung" in after:
            verdicts.append(f"- {cell}: no ratio (a variant hung in every round: no result within {WORKER_TIMEOUT} s)")
            continue
        after.update(
            after_over_before_median=after["s_per_net_epoch_median"] / before["s_per_net_epoch_median"],
            after_over_before_min=after["s_per_net_epoch_min"] / before["s_per_net_epoch_min"],
            target=TARGETS[cell],
        )
        verdicts.append(
            f"- {cell}: after / before = {after['after_over_before_median']:.3f} (medians), "
            f"{after['after_over_before_min']:.3f} (minima); target: {TARGETS[cell]}"
        )
    flags = sorted({res["XLA_FLAGS"] for runs in results.values() for res in runs})
    devices = sorted({res["devices"] for runs in results.values() for res in runs})
    command = shlex.join(["python", "benchmarks/before_after.py", *args])
    body = f"""
Command: `{command}`

Trees: before = `{trees["before"]}` ({_describe(trees["before"])}), after = `{trees["after"]}`
({_describe(trees["after"])}). Each variant (cell x tree) in its own process with `PYTHONPATH` = its tree (the
worker checks that `jaxrnn.__file__` lies in it), {rounds} interleaved round(s) (order reversed in every other
round) x {repeats} timed `fit` calls after a compiling call: `n_timings` timings per variant.

Workload: AND task, N = {units}, T = {T}, E = {E} members, {epochs} epoch(s) of {trials} trials in batches of
{batch} per call, threshold 0 (nobody stops early), each call a fresh ensemble (seeds 0, 1, ... in both trees);
seconds per network-epoch = wall clock of a call / (E x epochs), task sampling, masks, chunking and host transfers
included. `compile_s_median`: first call minus the median of the timed ones. `final_loss_median`: the members'
median loss in the last epoch of a worker's last call (same seeds: equal rate-RNN values mean the same training).
Workers' CPU devices: {devices}; XLA_FLAGS: {"; ".join(f"`{f}`" for f in flags) or "(none)"}.

After / before:

{chr(10).join(verdicts)}
"""
    C.write(NAME, a.out, rows, env, "Before and after the Flax-cell refactor: seconds per network-epoch", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
