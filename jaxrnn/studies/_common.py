"""What every study shares: training protocols per scale, reusing run directories, CSVs, references and reports."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from jaxrnn.evaluate import Evaluation, evaluate
from jaxrnn.store import StoreError, load_meta, load_run, same_run, save_run
from jaxrnn.tasks import Task
from jaxrnn.train import Ensemble, Hparams, TrainConfig, fit

#: The original study's published artefacts (read-only), beside the repository.
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "jarne_laje_2019"

SUCCESS_CRITERION = (
    "a member succeeds when its outputs are finite and at least {pct:.0f}% of {n_eval} held-out trials are correct "
    "(gates, NOT, flip-flop: the mean output of every response window lies on the target's side of the midpoint "
    "between the two levels; time reproduction: the output's peak lies within ±10 steps of the target's and reaches "
    "50–150% of its height, no-pulse trials stay within 0.3 of baseline; oscillation: correlation ≥ 0.8 with the "
    "target and 70–130% of its amplitude, no-pulse trials stay within 0.3 of 0). The original judged success by eye."
)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A training and evaluation protocol. `None` fields take the task's paper value (`jaxrnn.train.PAPER`).

    Attributes:
        units: N. epochs: epochs. n_train: training trials per member per epoch set. batch_size: trials per update.
        lr: Adam learning rate (Keras legacy decay 1e-4 per update on top). n_eval: held-out trials per member.
        success_at: fraction of correct held-out trials a member needs to succeed.
        threshold: early-stop loss threshold (None = the paper's per task).
    """

    units: int | None = 50
    epochs: int = 20
    n_train: int | None = None
    batch_size: int | None = None
    lr: float = 1e-4
    n_eval: int = 512
    success_at: float = 0.9
    threshold: float | None = None

    def config(self, task: Task, init: str = "orthogonal", units: int | None = None) -> TrainConfig:
        """The TrainConfig of `task` with this protocol (paper protocol "paper", per-member data)."""
        return TrainConfig(
            task=task,
            units=units if units is not None else self.units,
            init=init,
            epochs=self.epochs,
            n_train=self.n_train,
            batch_size=self.batch_size,
            threshold=self.threshold,
        )

    @property
    def hparams(self) -> Hparams:
        return Hparams(lr=self.lr, gain=1.0)

    def describe(self, config: TrainConfig) -> str:
        """One line: epochs, training set, batch, lr, threshold of `config` under this protocol."""
        return (
            f"{config.epochs} epochs × {config.n_train} trials per member (own training set, reshuffled each epoch), "
            f"batch {config.batch_size}, Adam lr {self.lr:g} with decay lr/(1 + 1e-4·t), MSE over every step, "
            f"early stop below loss {config.threshold:g}, N = {config.units}, {config.init} recurrent init"
        )

    def criterion(self) -> str:
        return SUCCESS_CRITERION.format(pct=100 * self.success_at, n_eval=self.n_eval)


class Trained(NamedTuple):
    """A trained (or reloaded) ensemble with its evaluation. Arrays have the member axis first; `params_*["W_rec"]`
    is the EFFECTIVE recurrent matrix (Dale's law and sparsity mask applied, `jaxrnn.network.effective_params`)."""

    config: TrainConfig
    run_dir: Path
    reused: bool
    params_init: dict
    params_final: dict
    loss: np.ndarray  # (E, epochs)
    stop_epoch: np.ndarray  # (E,) epochs run (the early-stop epoch, or all epochs)
    diverged: np.ndarray  # (E,)
    evaluation: Evaluation
    seconds: float  # training wall time (as stored in the run directory when reused)


#: Evaluations of finished run directories already computed in this process, keyed by (run dir, n_eval,
#: success_at): studies run one after another (e.g. the success table, then spectral migration on the same runs)
#: evaluate each ensemble once.
_EVALUATIONS: dict[tuple[str, int, float], Evaluation] = {}


def _evaluate_run(run_dir: Path, config: TrainConfig, params, protocol: Protocol) -> Evaluation:
    key = (str(Path(run_dir).resolve()), protocol.n_eval, protocol.success_at)
    if key not in _EVALUATIONS:
        _EVALUATIONS[key] = evaluate(
            config.task, config.net, params, n_trials=protocol.n_eval, success_at=protocol.success_at
        )
    return _EVALUATIONS[key]


def log(message: str) -> None:
    """Progress line on stderr (studies run for minutes; their numbers go to files, not here)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def find_run(config: TrainConfig, seed: int, hparams: Hparams, members, search) -> Path | None:
    """The first finished run directory under any folder of `search` (or equal to one) with exactly this run."""
    for folder in search:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
        for cand in candidates:
            try:
                meta = load_meta(cand)
            except StoreError:
                continue
            if meta.get("complete") and not same_run(meta, config, seed, hparams, members):
                return cand
    return None


def train_or_load(
    config: TrainConfig,
    run_dir: Path,
    *,
    members: int,
    protocol: Protocol,
    seed: int = 0,
    search=(),
) -> Trained:
    """Load the run of (config, seed, hparams, members 0..E-1) if one exists in `run_dir` or under `search`,
    else train it with `jaxrnn.train.fit` and save it to `run_dir`. Either way evaluate it on held-out trials.

    Args:
        config: the training config. run_dir: where a new run is written.
        members: E, the member ids are 0..E-1. protocol: lr, n_eval and success threshold.
        seed: root seed. search: more folders holding run directories to reuse.
    Returns:
        `Trained`.
    """
    ids = np.arange(members)
    hparams = protocol.hparams
    found = find_run(config, seed, hparams, ids, [run_dir, *search])
    t0 = time.time()
    if found is not None:
        run = load_run(found)
        params_init, params_final = run.params_init, run.params_final
        loss, stop, diverged = run.loss, run.stop_epoch, run.diverged
        run_dir, reused = found, True
        seconds = float((run.meta.get("extra") or {}).get("train_seconds") or 0.0)
        log(f"reusing {found}")
    else:
        log(f"training {run_dir.name}: {members} members, {config.epochs} epochs × {config.n_train} trials")
        ens = fit(config, seed, ids, hparams)
        seconds = time.time() - t0
        params_init, params_final = ens.params_init, ens.params_final
        loss, stop, diverged = ens.loss, ens.stop_epoch, ens.diverged
        reused = False
    ev = _evaluate_run(run_dir, config, params_final, protocol)
    if not reused:
        ens = Ensemble(ids, params_init, params_final, loss, stop, diverged)
        save_run(run_dir, config, ens, ev, seed=seed, hparams=hparams, extra={"train_seconds": seconds})
        log(f"trained in {seconds:.0f} s: {int(ev.success.sum())}/{members} succeed")
    epochs_run = np.where(np.asarray(stop) > 0, np.asarray(stop), config.epochs)
    return Trained(
        config,
        Path(run_dir),
        reused,
        _effective(params_init, config),
        _effective(params_final, config),
        np.asarray(loss),
        epochs_run,
        np.asarray(diverged),
        ev,
        seconds,
    )


def from_run(run_dir: Path, protocol: Protocol) -> Trained:
    """A `Trained` from an existing run directory (any config), evaluated with `protocol`'s n_eval."""
    run = load_run(run_dir)
    cfg = run.config
    ev = _evaluate_run(Path(run_dir), cfg, run.params_final, protocol)
    epochs_run = np.where(run.stop_epoch > 0, run.stop_epoch, cfg.epochs)
    return Trained(
        cfg,
        Path(run_dir),
        True,
        _effective(run.params_init, cfg),
        _effective(run.params_final, cfg),
        run.loss,
        epochs_run,
        run.diverged,
        ev,
        0.0,
    )


def _effective(params: dict, config: TrainConfig) -> dict:
    """Host parameters with W_rec replaced by the effective matrix (Dale's law, sparsity mask), what the analyses
    of the studies must see; unchanged for an unconstrained network (`jaxrnn.network.effective_params`)."""
    from jaxrnn.network import effective_params

    return {k: np.asarray(v) for k, v in effective_params(params, config.net).items()}


# ----------------------------------------------------------------------------------------------------------------
# Files.


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write rows (dicts) as a CSV with a header (the union of their keys, missing values empty); floats with 6
    significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(v) for k, v in row.items()})
    return path


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV written by `write_csv` (values as strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ignore_runs(out: Path) -> None:
    """Keep trained parameters out of git: `<out>/runs/.gitignore` ignoring everything."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / ".gitignore").write_text("# trained ensembles (parameters): reproducible, too large for git\n*\n")


def reference_file(*parts: str) -> Path | None:
    """A file of the original study's artefacts, or None when they are not beside this repository."""
    path = REFERENCE.joinpath(*parts)
    return path if path.is_file() else None


def load_reference_curve(name: str) -> np.ndarray | None:
    """`curves/<name>` as an array (rows sorted by x): x, mean distance, s.e.m., count; None if absent."""
    path = reference_file("curves", name)
    if path is None:
        return None
    data = np.loadtxt(path, comments="#", ndmin=2)
    return data[np.argsort(data[:, 0])]


def sem(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standard error of the mean along `axis` (NaN-aware; 0 for a single value)."""
    x = np.asarray(x, np.float64)
    n = np.sum(np.isfinite(x), axis=axis)
    sd = np.nanstd(x, axis=axis, ddof=1) if np.max(n) > 1 else np.zeros(np.nanmean(x, axis=axis).shape)
    return np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), 0.0)


# ----------------------------------------------------------------------------------------------------------------
# Reports.


def command_line(study: str, scale: str, members: int | None, out: Path, run: Path | None) -> str:
    """The command that ran this study: the real `jaxrnn study ...` argv when run from the CLI, else the
    `run_study(...)` call and its CLI equivalent."""
    argv0 = Path(sys.argv[0]).name if sys.argv else ""
    if argv0 == "jaxrnn" or (len(sys.argv) > 1 and sys.argv[1] == "study"):
        return "jaxrnn " + " ".join(sys.argv[1:])
    args = [f"--scale {scale}"] + ([f"--members {members}"] if members else []) + [f"--out {out}"]
    args += [f"--run {run}"] if run else []
    call = f"run_study({study!r}, scale={scale!r}, members={members}, out={str(out)!r}, run={run!r})"
    return f"{call} from Python (equivalent: jaxrnn study {study} {' '.join(args)})"


def environment() -> str:
    """Device, cores and versions, one Markdown list."""
    return "\n".join(
        [
            f"- device: {', '.join(str(d) for d in jax.devices())} ({jax.devices()[0].device_kind})",
            f"- CPU cores visible: {os.cpu_count()}; host {platform.machine()}, Python {platform.python_version()}, "
            f"jax {jax.__version__}, numpy {np.__version__}",
        ]
    )


def write_report(
    out: Path,
    *,
    title: str,
    command: str,
    scale: str,
    members: int,
    protocol: str,
    reduced: str,
    criterion: str,
    wall_seconds: float,
    body: list[str],
    trained: list[Trained] | None = None,
) -> Path:
    """Write `<out>/report.md`: what was run (command, scale, members, protocol, criterion, device, wall time),
    then the study's own sections (`body`, Markdown)."""
    lines = [
        f"# {title}",
        "",
        "_Generated by the study code (`jaxrnn/studies/`); do not edit by hand._",
        "",
        "## What was run",
        "",
        f"- command: `{command}`",
        f"- scale: **{scale}**. {reduced}",
        f"- members per condition: {members}",
        f"- protocol: {protocol}",
        f"- success criterion: {criterion}",
        environment(),
        f"- wall time: {wall_seconds:.0f} s ({wall_seconds / 60:.1f} min), finished "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        *(
            [
                f"- training time of its {len(trained)} ensembles (as recorded in their run directories): "
                f"{sum(t.seconds for t in trained):.0f} s; {sum(t.reused for t in trained)} of them were reused from "
                "existing run directories by this invocation, whose wall time is the line above",
                f"- trained on (as recorded in the run directories): {_training_devices(trained)}",
            ]
            if trained
            else []
        ),
        "",
        *body,
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _training_devices(trained: list[Trained]) -> str:
    """Which devices trained the ensembles, with counts (runs reused from another machine say so)."""
    counts: dict[str, int] = {}
    for t in trained:
        try:
            dev = load_meta(t.run_dir).get("device") or {}
        except StoreError:
            dev = {}
        name = f"{dev.get('kind', 'unknown')} ({dev.get('platform', '?')})" if dev else "not recorded"
        counts[name] = counts.get(name, 0) + 1
    return "; ".join(f"{name}: {n} ensemble{'s' if n > 1 else ''}" for name, n in counts.items())


def md_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
