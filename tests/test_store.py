"""Run directories: round trips, atomic writes, damaged/foreign files, checkpoints and resume, diverged members,
the one-writer lock."""

import json
import os
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from jaxrnn import runs
from jaxrnn.runs import store
from jaxrnn.runs.store import StoreError
from jaxrnn.tasks import TASKS, make_task
from jaxrnn.training.evaluate import RULE, TOLERANCES, Evaluation, evaluate
from jaxrnn.training.train import Hparams, TrainConfig, fit, init_ensemble, member

TINY = dict(units=8, epochs=3, batch_size=4, n_train=16)
HP = Hparams(lr=1e-3, gain=1.0)
SEED = 5
MEMBERS = np.arange(3)


def tiny(**kw):
    return TrainConfig(make_task("and", T=40, pulse_start=5, response_start=30), **{**TINY, **kw})


def allclose(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **{"rtol": 1e-5, "atol": 1e-6, **kw}), a, b)


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained():
    cfg = tiny()
    ens = fit(cfg, SEED, MEMBERS, HP, epochs_per_call=1)  # one compiled epoch function for the whole module
    ev = evaluate(cfg.task, cfg.net, ens.params_final, n_trials=32)
    return cfg, ens, ev


EVAL = runs.eval_settings(32)


@pytest.fixture
def run_dir(tmp_path, trained):
    cfg, ens, ev = trained
    extra = {"note": "test", "evaluation": EVAL}
    return store.save_run(tmp_path / "run", cfg, ens, ev, seed=SEED, hparams=HP, extra=extra, command=["x", "y"])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_config_round_trip_every_task(name):
    cfg = TrainConfig(make_task(name), units=7, init="normal", protocol="online", threshold=0.0, clip_norm=1.5)
    d = json.loads(json.dumps(store.config_to_dict(cfg), allow_nan=False))
    assert d["task"]["name"] == name and set(d["task"]["params"]) == set(TASKS[name].parameters())
    assert store.config_from_dict(d) == cfg


def test_config_from_foreign_dict():
    d = store.config_to_dict(tiny())
    with pytest.raises(StoreError, match="unknown task"):
        store.config_from_dict({**d, "task": {"name": "nope", "params": {}}})
    with pytest.raises(StoreError, match="unknown TrainConfig fields"):
        store.config_from_dict({**d, "wings": 2})
    with pytest.raises(StoreError, match="invalid"):
        store.config_from_dict({**d, "units": -1})
    with pytest.raises(StoreError):
        store.config_from_dict([1, 2])


def test_save_and_load_run(run_dir, trained):
    cfg, ens, ev = trained
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"config.json", "params.npz", "history.npz", "members.csv", "evaluation.npz"}  # no checkpoint
    run = store.load_run(run_dir)
    assert run.config == cfg and run.seed == SEED and run.hparams == HP and run.path == run_dir
    np.testing.assert_array_equal(run.members, MEMBERS)
    allclose(run.ensemble, ens, rtol=0, atol=0)  # every field: ids, params, loss, stop epochs, divergence
    allclose(run.evaluation, ev, rtol=0, atol=0)
    assert run.evaluation_settings == EVAL and run.origin == "loaded"
    meta = run.meta
    assert meta["complete"] and meta["extra"] == {"note": "test", "evaluation": EVAL}
    assert {"jaxrnn", "jax", "jaxlib"} <= set(meta["versions"]) and meta["device"]["count"] >= 1
    assert meta["argv"] == ["x", "y"]
    with np.load(run_dir / "params.npz", allow_pickle=False) as z:
        assert z["init/W_rec"].shape == (3, 8, 8) and z["final/W_out"].shape == (3, 1, 8)
    rows = store.load_members_table(run_dir)
    assert [r["member"] for r in rows] == [0, 1, 2]
    for i, r in enumerate(rows):
        assert r["seed"] == SEED and r["diverged"] is False
        assert r["distance"] == pytest.approx(float(ev.distance[i]))
        assert r["accuracy"] == pytest.approx(float(ev.accuracy[i]))
        assert r["success"] == bool(ev.success[i])
        assert r["final_loss"] == pytest.approx(float(ens.loss[i, -1]))


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    store.atomic_write(path, lambda f: f.write(b"old"))

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        store.atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    (tmp_path / ".x.npz.abc.tmp").write_bytes(b"partial")  # what a SIGKILL mid-write leaves
    assert [p.name for p in store.clean_temporaries(tmp_path)] == [".x.npz.abc.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def _corrupt(run_dir, how):
    p = run_dir / "params.npz"
    if how == "truncated":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif how == "not_zip":
        p.write_bytes(b"hello, I am not a zip file")
    elif how == "wrong_keys":
        np.savez(p, W=np.zeros(3))
    elif how == "wrong_shape":
        with np.load(p) as z:
            arrays = dict(z)
        arrays["final/W_rec"] = arrays["final/W_rec"][:, :4]
        np.savez(p, **arrays)
    elif how == "pickled":
        with np.load(p) as z:
            arrays = dict(z)
        arrays["final/W_rec"] = np.array([{"evil": 1}] * 3, dtype=object)
        np.savez(p, **arrays)
    elif how == "config_garbage":
        (run_dir / "config.json").write_text("{not json")
    elif how == "config_foreign":
        (run_dir / "config.json").write_text(json.dumps({"format": "something-else"}))
    elif how == "history_missing":
        (run_dir / "history.npz").unlink()


@pytest.mark.parametrize(
    "how, pattern",
    [
        ("truncated", "params.npz: damaged"),
        ("not_zip", "params.npz: damaged"),
        ("wrong_keys", "params.npz: unexpected layout"),
        ("wrong_shape", r"final/W_rec has shape \(3, 4, 8\)"),
        ("pickled", "params.npz: damaged"),
        ("config_garbage", "config.json: damaged"),
        ("config_foreign", "not a jaxrnn run config"),
        ("history_missing", "history.npz: missing"),
    ],
)
def test_damaged_files_give_clear_errors(run_dir, how, pattern):
    _corrupt(run_dir, how)
    with pytest.raises(StoreError, match=pattern) as info:
        store.load_run(run_dir)
    assert "\n" not in str(info.value) and "allow_pickle" not in str(info.value)  # no numpy hint to load pickles


def test_evaluate_rewrites_a_damaged_evaluation(run_dir, capsys):
    """A damaged evaluation.npz blocks loading the run, but `jaxrnn evaluate` (which does not read it) rewrites it."""
    from jaxrnn.cli import main

    (run_dir / store.EVALUATION).write_bytes(b"not a zip file")
    with pytest.raises(StoreError, match="evaluation.npz: damaged"):
        store.load_run(run_dir)
    assert store.load_run(run_dir, evaluation=False).evaluation is None
    assert main(["evaluate", str(run_dir), "--trials", "16"]) == 0
    assert store.load_run(run_dir).evaluation.accuracy.shape == (len(MEMBERS),)


def test_configure_is_public():
    import jaxrnn

    assert jaxrnn.configure is jaxrnn._platform.configure and "configure" in jaxrnn.__all__
    assert jaxrnn.configure(environ={"XLA_FLAGS": "--mine"}) is None  # the user's own flags are left alone


def test_members_table_damaged(run_dir):
    (run_dir / "members.csv").write_text("a,b\n1,2\n")
    with pytest.raises(StoreError, match="unexpected columns"):
        store.load_members_table(run_dir)


def test_checkpoint_round_trip_and_resume(tmp_path, trained):
    cfg, full, _ = trained
    assert store.load_checkpoint(tmp_path, cfg, SEED, HP, MEMBERS) is None
    saved = []

    def callback(state, loss):
        if int(np.min(state.epoch)) == 1:
            store.save_checkpoint(tmp_path, cfg, SEED, HP, state, loss, members=MEMBERS)
            saved.append(jax.tree.map(np.copy, state))

    fit(cfg, SEED, MEMBERS, HP, epochs_per_call=1, callback=callback)
    state, loss = store.load_checkpoint(tmp_path, cfg, SEED, HP, MEMBERS)
    allclose(state, saved[0], rtol=0, atol=0)  # optimizer state, epoch, stop flags included
    assert jax.tree.structure(state) == jax.tree.structure(init_ensemble(cfg, SEED, MEMBERS, HP))
    assert np.all(np.isfinite(loss[:, 0])) and np.all(np.isnan(loss[:, 1:]))
    resumed = fit(cfg, SEED, MEMBERS, HP, state=state, loss=loss, epochs_per_call=1)
    allclose(resumed.params_final, full.params_final)
    allclose(resumed.loss, full.loss)

    with pytest.raises(StoreError, match="different run"):
        store.load_checkpoint(tmp_path, tiny(units=9), SEED, HP, MEMBERS)
    with pytest.raises(StoreError, match="different run"):
        store.load_checkpoint(tmp_path, cfg, SEED + 1, HP, MEMBERS)
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(StoreError, match="damaged"):
        store.load_checkpoint(tmp_path, cfg, SEED, HP, MEMBERS)


def test_diverged_member_is_isolated(tmp_path, trained):
    cfg, untouched, _ = trained
    state = init_ensemble(cfg, SEED, MEMBERS, HP)
    W = state.params["W_rec"].copy()
    W[1, 0, 0] = np.nan  # member 1 becomes non-finite at its first update
    state = state._replace(params={**state.params, "W_rec": W})
    loss = np.full((len(MEMBERS), cfg.epochs), np.nan, np.float32)
    ens = fit(cfg, SEED, MEMBERS, HP, state=state, loss=loss, epochs_per_call=1)
    np.testing.assert_array_equal(ens.diverged, [False, True, False])
    for i in (0, 2):
        allclose(member(ens.params_final, i), member(untouched.params_final, i))
        allclose(ens.loss[i], untouched.loss[i])
    ones = np.ones(3)
    # pretend every member succeeded
    ev = Evaluation(ones, ones, ones, np.ones((3, 4)), ones, ones > 0, ones > 0, ones, np.ones((3, len(TOLERANCES))))
    store.save_run(tmp_path, cfg, ens, ev, seed=SEED, hparams=HP, extra={"evaluation": EVAL})
    rows = store.load_members_table(tmp_path)
    assert [r["diverged"] for r in rows] == [False, True, False]
    assert [r["success"] for r in rows] == [True, False, True]  # a diverged member has failed
    assert "1,5," in (tmp_path / "members.csv").read_text()  # member 1, seed 5 row exists
    assert store.load_run(tmp_path).ensemble.diverged.tolist() == [False, True, False]


def test_npz_written_by_store_has_no_pickles(run_dir):
    for name in ("params.npz", "history.npz", "evaluation.npz"):
        with zipfile.ZipFile(run_dir / name) as z:
            for member in z.namelist():
                header = z.read(member)[:128]
                assert b"'descr': '|O'" not in header and b"'descr': 'O'" not in header


def test_effective_weights_are_the_one_explicit_way(tmp_path, trained):
    """A Dale + sparsity run stores the free W_rec; `Run.effective` gives |W|·D ⊙ M, what analyses must see."""
    from jaxrnn.cells.network import effective_params

    cfg = tiny(dale=True, sparsity=0.5)
    ens = fit(cfg, SEED, MEMBERS, HP)
    run = store.load_run(store.save_run(tmp_path, cfg, ens, None, seed=SEED, hparams=HP))
    assert run.evaluation is None
    W = run.effective("final")["W_rec"]
    assert not np.allclose(W, run.ensemble.params_final["W_rec"])  # the stored matrix is the free one
    np.testing.assert_allclose(W, np.asarray(effective_params(ens.params_final, cfg.net)["W_rec"]))
    n_exc = cfg.net.n_exc
    assert np.all(W[:, :, :n_exc] >= 0) and np.all(W[:, :, n_exc:] <= 0)
    assert np.all(W[run.ensemble.params_final["rec_mask"] == 0] == 0)


_HOLD = """
import sys, time
from jaxrnn.runs import store
with store.locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_one_writer_lock_names_the_holder_and_dies_with_it(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(store.RunLocked, match=f"in use by process {holder.pid} ") as info:
            with store.locked(folder):
                pass
        assert "\n" not in str(info.value)
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    assert (folder / store.LOCK).exists()  # the stale lock file stays behind ...
    with store.locked(folder):  # ... and does not block; the lock is reentrant within a process
        with store.locked(folder):
            assert (folder / store.LOCK).read_text().split()[0] == str(os.getpid())


def test_a_run_written_before_a_field_existed_is_the_same_run():
    """config.json of an older jaxrnn lacks fields added since (a TrainConfig field, a task parameter): they had
    their defaults then, so the run is the same run; a stored value that differs is still a difference."""
    cfg = TrainConfig(make_task("and", T=60, pulse_start=5, response_start=30), units=4)
    meta = store.run_meta(cfg, seed=0, hparams=Hparams(), members=[0, 1], complete=True)
    assert store.same_run(meta, cfg, 0, Hparams(), [0, 1]) == []
    old = json.loads(json.dumps(meta))
    del old["config"]["nonneg_input"], old["config"]["task"]["params"]["onset_jitter"]
    assert store.same_run(old, cfg, 0, Hparams(), [0, 1]) == []
    old["config"]["task"]["params"]["pulse_start"] = 6
    old["config"]["dale_axis"] = "post"
    assert sorted(store.same_run(old, cfg, 0, Hparams(), [0, 1])) == ["dale_axis", "task.pulse_start"]


def test_an_evaluation_scored_by_an_older_rule_is_scored_again(run_dir):
    """evaluation.npz and config.json of a run scored before the rule changed (no `rule` in its settings): the stored
    evaluation is not used, and a study's `open_run` with the same trials evaluates it under today's rule."""
    arrays = dict(np.load(run_dir / store.EVALUATION))
    old = {k: v for k, v in arrays.items() if k not in ("settings/rule", "zero_distance", "accuracy_by_tolerance")}
    np.savez(run_dir / store.EVALUATION, **old)
    meta = store.load_meta(run_dir)
    meta["extra"]["evaluation"] = {k: v for k, v in meta["extra"]["evaluation"].items() if k != "rule"}
    store.write_config(run_dir, meta)
    assert store.load_run(run_dir).evaluation is None
    run = runs.open_run(run_dir, n_eval=32)
    assert run.evaluation is not None and run.evaluation_settings["rule"] == RULE
    assert run.evaluation.accuracy_by_tolerance.shape == (len(MEMBERS), len(TOLERANCES))
