"""Memory estimates (`training.budget`): every reported absurd size is refused through the CLI in one line naming the
option, before anything is compiled or written; normal sizes pass; the estimator against a hand calculation; the
compact member ids of config.json."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxrnn import runs
from jaxrnn.cli import build_parser, main
from jaxrnn.runs import store
from jaxrnn.studies import STUDIES, check_study, study_ensembles
from jaxrnn.tasks import make_task
from jaxrnn.training import budget
from jaxrnn.training.grid import Grid
from jaxrnn.training.train import Ensemble, Hparams, TrainConfig, fit, member_bytes

GiB = 2**30
#: The machine the tests pretend to run on: a small laptop, 4 GiB of memory free, 64 GiB of disk, no accelerator.
LAPTOP = budget.Available(4 * GiB, "test machine", "cpu", None, 1, 64 * GiB)


@pytest.fixture
def laptop(monkeypatch):
    """`budget.available` returns LAPTOP (disk only for a path, as the real one)."""
    monkeypatch.setattr(budget, "available", lambda path=None: LAPTOP._replace(disk=None if path is None else 64 * GiB))


@pytest.fixture
def compiles():
    """The XLA compilations during the test: jax.monitoring's backend-compile events (recorded also when the suite's
    persistent compilation cache, `conftest.py`, answers a compilation)."""
    seen = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listener)


def tiny(**kw):
    return TrainConfig(make_task("and", T=60, pulse_start=5, response_start=30), **{"units": 8, **kw})


def fake_run(folder, members=3):
    """A finished run directory of `members` networks of `tiny()` (zero parameters), written without training."""
    config = tiny(epochs=2)
    params = {k: np.zeros((members, *s), np.float32) for k, s in store.expected_param_shapes(config).items()}
    loss = np.ones((members, 2), np.float32)
    ens = Ensemble(np.arange(members), params, params, loss, np.zeros(members, int), np.zeros(members, bool))
    return store.save_run(folder, config, ens, None, seed=0, hparams=Hparams())


def run_main(argv, capsys, monkeypatch, cwd):
    """`main(argv)` in `cwd`: (status, stderr, CPU seconds)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    build_parser()  # the subcommands' imports, done once before the clock starts
    import jaxrnn.plots.run  # noqa: F401 - `jaxrnn plot` imports it before loading the run

    t0 = time.process_time()
    code = main(argv)
    return code, capsys.readouterr().err, time.process_time() - t0


# ----------------------------------------------------------------------------------------------------------------
# The reported failures, through the CLI.


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "and", "--units", "10000000", "--out", "r"], "--units"),  # hung in the host transfer
        (["train", "and", "--members", "100000000000", "--out", "r"], "--members"),  # numpy MemoryError
        (["train", "and", "--members", "1000000", "--units", "8", "--out", "r"], "--members"),  # 11.9 MB config.json
        (["sample", "and", "--trials", "100000000", "--out", "r/s.npz"], "--trials"),  # aborted inside XLA
        (["train", "and", "--members", "4", "--chunk-size", "100000000", "--out", "r"], "--chunk-size"),
        (["train", "and", "--members", "4", "--trials", "100000000", "--out", "r"], "--trials"),
        (["train", "and", "--members", "4", "--n-train", "1000000000", "--out", "r"], "--n-train"),
        (
            ["train", "and", "--members", "2", "--batch-size", "100000", "--n-train", "100000", "--out", "r"],
            "--batch-size",
        ),
        (["train", "and", "--members", "100000000", "--grid", "lr=1e-3,1e-4", "--out", "r"], "--members"),
        (["study", "success_table", "--members", "100000000", "--out", "r"], "--members"),
    ],
)
def test_absurd_sizes_refused_before_anything(argv, option, laptop, compiles, tmp_path, capsys, monkeypatch):
    code, err, cpu = run_main(argv, capsys, monkeypatch, tmp_path)
    assert code == 2
    assert err.startswith("jaxrnn: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert option in err
    assert list(tmp_path.iterdir()) == []  # no run directory, config.json, lock or file
    assert compiles == []
    assert cpu < 1.0


def test_absurd_plot_and_evaluate_refused(laptop, compiles, tmp_path, capsys, monkeypatch):
    """plot --trials 100000 ran for over 10 minutes (one figure row per trial); evaluate with absurd trials."""
    run_dir = fake_run(tmp_path / "run")
    store.load_run(run_dir)  # its one eager op (the key of `expected_param_shapes`) compiled before the count starts
    compiles.clear()
    before = sorted(p.name for p in run_dir.iterdir())
    for argv in (["plot", "run", "--trials", "100000"], ["evaluate", "run", "--trials", "100000000"]):
        code, err, cpu = run_main(argv, capsys, monkeypatch, tmp_path)
        assert code == 2 and err.count("\n") == 1 and "--trials" in err, err
        assert cpu < 1.0
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no figures, no evaluation written
    assert compiles == []


def test_plot_trials_that_do_not_fit_memory(monkeypatch, tmp_path):
    """Within the figure's rows, the memory estimate decides (a machine with 4 MiB free)."""
    run = store.load_run(fake_run(tmp_path / "run"))
    monkeypatch.setattr(budget, "available", lambda path=None: LAPTOP._replace(host=4 * 2**20, disk=None))
    assert budget.check_plot(run, 2).host > 0
    with pytest.raises(ValueError, match=r"plot: .* reduce --trials \(now 200\)"):
        budget.check_plot(run, 200)


def test_normal_commands_pass(laptop, tmp_path, capsys, monkeypatch):
    """A small train reaches the trainer (stubbed here: the check is what is tested), a small sample, study and
    evaluation pass their checks."""

    class Reached(Exception):
        pass

    def stub(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(runs, "train_run", stub)
    with pytest.raises(Reached):
        run_main(["train", "and", "--members", "16", "--out", "r"], capsys, monkeypatch, tmp_path)
    assert budget.check_sample(make_task("and"), 8, tmp_path / "s.npz").disk > 0
    assert runs.check_evaluate(fake_run(tmp_path / "run"), 512).device > 0
    for name in ("success_table", "memory_delay", "lr_delay", "flipflop3"):
        assert check_study(STUDIES[name], "smoke")
    assert check_study(STUDIES["lesion"], "smoke", run="some/run") == []  # analyses a run: nothing trained


def test_python_api_refuses_before_compiling(laptop, compiles, tmp_path):
    with pytest.raises(ValueError, match="reduce --units"):
        fit(tiny(units=10_000_000), 0, 4)
    with pytest.raises(ValueError, match="reduce --members"):
        runs.train_run(tmp_path / "r", tiny(), members=10**9)
    with pytest.raises(ValueError, match="member ids must lie in"):
        fit(tiny(), 0, [0, 2**32])
    assert not (tmp_path / "r").exists()
    assert compiles == []


def test_config_json_limit_and_study_scale_advice(laptop):
    """Per-member values (a grid's, or Hparams given per member) go to config.json one per line: refused above
    MAX_CONFIG_BYTES. A study whose ensemble does not fit even with one member per condition names --scale."""
    E = 600_000
    with pytest.raises(
        ValueError, match=r"config.json would hold 600000 per-member values \(1 for each of 600000 members"
    ):
        budget.check_train(tiny(), E, hparams=Hparams(lr=np.full(E, 1e-3)))
    grid = Grid.of(tiny().task, repeats=300_000, lr=(1e-3, 1e-4))
    with pytest.raises(ValueError, match=r"reduce --members \(members per grid cell\)"):
        budget.check_train(tiny(), grid=grid)
    small = LAPTOP._replace(host=2**20)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(budget, "available", lambda path=None: small)
        with pytest.raises(ValueError, match=r"study memory_size at scale paper: .* choose a smaller --scale"):
            check_study(STUDIES["memory_size"], "paper")


# ----------------------------------------------------------------------------------------------------------------
# The estimator.


def test_train_estimate_by_hand():
    """AND with T = 60 (n_in 2, n_out 1), N = 10 with a bias, B = 32, n_train 64, 3 epochs; E = 5 in chunks of 4,
    16 evaluation trials."""
    config = tiny(units=10, bias=True, batch_size=32, n_train=64, epochs=3)
    P = 10 * 2 + 10 * 10 + 1 * 10 + 1 + 10  # W_in, W_rec, W_out, b_out, b
    assert budget.param_count(config) == P == 141
    host = 5 * (10 * P * 4 + 3 * 4 + 1024)  # init + state + chunks + concatenation, loss, per-member objects
    per_member = (
        8 * P * 4  # state in and out (params, mu, nu), gradient, update
        + 2 * 32 * 60 * 10 * 4  # hidden states kept for the hand-written backward pass
        + 32 * 60 * (2 + 3 * 1) * 4  # the batch: inputs, targets, mask, response
        + 20 * 64  # training keys and their shuffle
    )
    init = 5 * 3 * P * 4
    evaluation = 5 * P * 4 + 5 * 16 * 60 * (3 * 10 + 2 + 4 * 1) * 4  # parameters; states (3 copies), trials, outputs
    assert (host, per_member, init, evaluation) == (33_380, 197_792, 8_460, 694_020)
    disk = 5 * ((2 * P + 2 * (3 * P + 3 + 3) + 3 + 3) * 4 + 400) + 64 * 2**10
    est = budget.train_estimate(config, 5, 4, 16)
    assert est == budget.Estimate(host, max(init, 4 * per_member, evaluation), disk, 64 * 2**10)
    # sharded over 2 accelerators, a device holds half the chunk
    assert budget.train_estimate(config, 5, 4, 16, shards=2).device == max(init, 2 * per_member, evaluation)
    # the rate RNN's states term is the trainer's own per-member estimate (`default_chunk` sizes chunks with it)
    assert budget.backward_factor(config) * 4 * 32 * 60 * 10 == member_bytes(config)
    # a GRU holds 20 copies of its states while training, 7 while evaluated (measured)
    gru = tiny(units=10, cell="gru", batch_size=32, n_train=64, epochs=3)
    P = 3 * 10 * (2 + 10 + 1) + 2 * 10 + 10 + 1  # Flax GRUCell (3 gates, 2 biases on the candidate), h0, W_out, b_out
    per_member = 8 * P * 4 + 20 * 32 * 60 * 10 * 4 + 32 * 60 * 5 * 4 + 20 * 64
    evaluation = 5 * P * 4 + 5 * 16 * 60 * (7 * 10 + 2 + 4) * 4
    assert budget.train_estimate(gru, 5, 4, 16).device == max(5 * 3 * P * 4, 4 * per_member, evaluation)


@pytest.mark.parametrize(
    "changes",
    [{}, {"bias": True}, {"train_h0": True}, {"dale": True}, {"sparsity": 0.5}, {"cell": "gru"}, {"cell": "lstm"}],
)
def test_param_count_matches_the_network(changes):
    config = tiny(units=12, **changes)
    shapes = store.expected_param_shapes(config)
    assert budget.param_count(config) == sum(int(np.prod(s)) for s in shapes.values())


def test_estimate_grows_with_units_members_and_length():
    base = budget.train_estimate(tiny(units=10), 8, 8)
    wider = budget.train_estimate(tiny(units=20), 8, 8)
    more = budget.train_estimate(tiny(units=10), 16, 8)
    longer = budget.train_estimate(
        TrainConfig(make_task("and", T=120, pulse_start=5, response_start=30), units=10), 8, 8
    )
    assert wider.host > base.host and wider.device > base.device
    assert more.host == 2 * base.host and more.disk > base.disk
    assert longer.device > base.device and longer.host == base.host
    s1, s2 = budget.sample_estimate(make_task("and"), 100), budget.sample_estimate(make_task("and"), 200)
    assert s2.device == 2 * s1.device == 2 * 100 * (200 * (2 + 3) * 4 + 16)


def test_shortfall_on_an_accelerator():
    """Host and device memory are separate there: each part against its own memory."""
    gpu = budget.Available(64 * GiB, "test machine", "gpu", 1 * GiB, 1, None)
    assert budget.shortfall(budget.Estimate(10 * GiB, GiB // 2), gpu) is None
    assert "of gpu memory" in budget.shortfall(budget.Estimate(10 * GiB, GiB), gpu).text
    assert "host memory" in budget.shortfall(budget.Estimate(50 * GiB, 0), gpu).text
    cpu = LAPTOP
    assert budget.shortfall(budget.Estimate(2 * GiB, GiB), cpu).resource == "memory"  # 3 GiB x 1.5 > 4 GiB
    assert budget.shortfall(budget.Estimate(0, 0, 50 * GiB), cpu).resource == "disk"


def test_every_study_is_known_to_the_estimator():
    """Every registered study and scale has its ensembles enumerated (a new study needs its `Study.ensembles`, which
    `study_ensembles` calls)."""
    for name, study in STUDIES.items():
        for scale in study.scales:
            ensembles = study_ensembles(study, scale)
            assert ensembles, (name, scale)
            assert all(E >= study.scales[scale].members for _, _, E in ensembles)


def test_what_the_machine_offers(tmp_path):
    host, source = budget.host_memory()
    assert host is None or (host > 0 and source)
    assert budget.disk_free(tmp_path / "not" / "yet") > 0
    platform, device, n = budget.device_memory()
    assert n >= 1 and (device is None) == (platform == "cpu")


def test_budget_imports_no_jax():
    """The module alone (without the package's __init__, which imports JAX) imports no JAX."""
    path = importlib.util.find_spec("jaxrnn.training.budget").origin
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('budget', {path!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------------------------------------
# Member ids in config.json.


def test_member_ids_compact_and_old_lists_still_read(tmp_path):
    assert store.member_ids_to_json(range(1_000_000)) == {"start": 0, "stop": 1_000_000}
    assert store.member_ids_to_json([3, 4, 5]) == {"start": 3, "stop": 6}
    assert store.member_ids_to_json([0, 2, 5]) == [0, 2, 5]
    assert store.member_ids_from_json({"start": 3, "stop": 6}).tolist() == [3, 4, 5]
    assert store.member_ids_from_json([0, 2, 5]).tolist() == [0, 2, 5]
    with pytest.raises(ValueError):
        store.member_ids_from_json({"start": 0})
    config = tiny()
    meta = store.run_meta(config, seed=0, hparams=Hparams(), members=np.arange(1_000_000), complete=False)
    assert len(json.dumps(meta, indent=2)) < 10_000
    assert store.same_run(meta, config, 0, Hparams(), np.arange(1_000_000)) == []
    old = {**meta, "members": list(range(16))}  # a config.json written before the range form
    assert store.same_run(old, config, 0, Hparams(), np.arange(16)) == []
    assert store.same_run(old, config, 0, Hparams(), np.arange(17)) == ["members"]
    assert store.same_run({**meta, "members": "damaged"}, config, 0, Hparams(), np.arange(16)) == ["members"]
    # a finished run written with a list of ids still loads
    run_dir = fake_run(tmp_path / "run")
    assert json.loads((run_dir / store.CONFIG).read_text())["members"] == {"start": 0, "stop": 3}
    text = json.loads((run_dir / store.CONFIG).read_text())
    text["members"] = [0, 1, 2]
    (run_dir / store.CONFIG).write_text(json.dumps(text))
    assert store.load_run(run_dir).members.tolist() == [0, 1, 2]


def test_the_compile_counter_counts(compiles):
    """The `compiles` fixture sees a compilation, a fresh one and one the persistent cache answers (so its empty list
    above means none happened)."""
    jax.jit(lambda x: x * 3 + 1)(np.float32(2.0))
    assert len(compiles) == 1
    jax.jit(lambda x: x * 3 + 1)(np.float32(2.0))  # a new function object, the same program: compiled or a cache hit
    assert len(compiles) == 2


def test_checkpoint_identity_with_compact_member_ids(tmp_path):
    """A checkpoint records its member ids as config.json does (a range compactly); resuming compares the ids whatever
    their form, so a checkpoint written with a list of ids still resumes."""
    from jaxrnn.training.train import init_ensemble

    config, ids = tiny(epochs=2, batch_size=4, n_train=8), np.arange(3)
    state = init_ensemble(config, 0, ids)
    loss = np.full((3, 2), np.nan, np.float32)
    path = store.save_checkpoint(tmp_path, config, 0, Hparams(), state, loss, members=ids)
    arrays = dict(np.load(path))
    assert json.loads(str(arrays["identity"]))["members"] == {"start": 0, "stop": 3}
    assert store.load_checkpoint(tmp_path, config, 0, Hparams(), ids) is not None
    with pytest.raises(store.StoreError, match="differs in: members"):
        store.load_checkpoint(tmp_path, config, 0, Hparams(), np.arange(4))
    identity = json.loads(str(arrays["identity"]))
    identity["members"] = [0, 1, 2]  # as written before the range form
    arrays["identity"] = np.asarray(json.dumps(identity, sort_keys=True))
    np.savez(path, **arrays)
    assert store.load_checkpoint(tmp_path, config, 0, Hparams(), ids) is not None
