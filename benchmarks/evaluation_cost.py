"""Cost of the held-out evaluation: `jaxrnn.evaluate` of E members on K trials (compiled once, then timed).

Used to check that the success rule (the band rules and the accuracy at every tolerance of the sensitivity view)
adds little to the forward pass: run it with the code before and after a change, interleaved, on a quiet machine,
e.g. `PYTHONPATH=OLD_CHECKOUT python benchmarks/evaluation_cost.py` and `python benchmarks/evaluation_cost.py`.

    python benchmarks/evaluation_cost.py [--task and] [--members 1000] [--trials 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="and")
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--trials", type=int, default=512)
    p.add_argument("--units", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import jaxrnn
    from jaxrnn.tasks import make_task
    from jaxrnn.training.evaluate import evaluate
    from jaxrnn.training.train import TrainConfig, init_ensemble

    cfg = TrainConfig(make_task(args.task), units=args.units)
    params = init_ensemble(cfg, 0, np.arange(args.members)).params
    t0 = time.perf_counter()
    ev = evaluate(cfg.task, cfg.net, params, n_trials=args.trials)
    jax.block_until_ready(ev.distance)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ev = evaluate(cfg.task, cfg.net, params, n_trials=args.trials)
        times.append(time.perf_counter() - t0)
    out = dict(
        jaxrnn=jaxrnn.__file__,
        task=args.task,
        members=args.members,
        trials=args.trials,
        units=args.units,
        first_call_s=round(first, 3),
        seconds=[round(t, 3) for t in times],
        median_s=round(float(np.median(times)), 3),
    )
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
