"""The member axis sharded over several devices gives the same ensemble as one device; the CPU set-up defaults."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxrnn import _platform

_WORKER = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from jaxrnn.tasks import make_task
    from jaxrnn.training import train as tr
    cfg = tr.TrainConfig(make_task("and", T=30, pulse_start=2, response_start=25), units=8, epochs=2, batch_size=4,
                         n_train=8)
    ens = tr.fit(cfg, 0, range(4))
    sharding = tr._member_sharding(tr.default_chunk(cfg, 4))
    np.savez(sys.argv[1], loss=ens.loss, **ens.params_final)
    print(json.dumps({"devices": jax.local_device_count(), "chunk": tr.default_chunk(cfg, 4),
                      "sharded_over": 0 if sharding is None else len(sharding.device_set)}))
    """
)


def _train_in_subprocess(tmp_path, n_devices: int):
    out = tmp_path / f"ens{n_devices}.npz"
    env = {**os.environ, "XLA_FLAGS": _platform.cpu_flags(n_devices), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(out))


def test_sharded_members_equal_one_device(tmp_path):
    info1, one = _train_in_subprocess(tmp_path, 1)
    info2, two = _train_in_subprocess(tmp_path, 2)
    assert info1 == {"devices": 1, "chunk": 4, "sharded_over": 0}
    assert info2 == {"devices": 2, "chunk": 4, "sharded_over": 2}  # the chunk really is split over both devices
    assert set(one) == set(two)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(one["W_rec"][0], one["W_rec"][1])  # members differ: the comparison is not vacuous


def test_configure_sets_cpu_defaults_only_when_nobody_chose():
    env = {}
    flags = _platform.configure(environ=env)
    assert env["XLA_FLAGS"] == flags
    assert f"--xla_force_host_platform_device_count={_platform.cores()}" in flags
    assert "--xla_cpu_multi_thread_eigen=false" in flags
    assert ("ynn" in flags) == _platform.ynn_flag_known()  # YNN fusions off by default where jaxlib knows the flag
    assert "ynn" not in _platform.configure(environ={"JAX_PLATFORMS": "cpu"}, ynn_off=False)
    user = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true"}
    assert _platform.configure(environ=user) is None and user["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=true"
    for gpu in ({"JAX_PLATFORMS": "cuda"}, {"JAX_PLATFORMS": "gpu,cpu"}, {"JAXRNN_NO_CONFIGURE": "1"}):
        assert _platform.configure(environ=gpu) is None and "XLA_FLAGS" not in gpu
    # in this (test) process JAX has started already: too late to change anything
    import jax

    jax.devices()
    assert _platform.configure() is None


def test_default_chunk_is_a_multiple_of_the_devices_and_cache_sized():

    import jax

    from jaxrnn.tasks import make_task
    from jaxrnn.training import train as tr

    cfg = tr.TrainConfig(make_task("and"), units=50)
    n_dev = jax.local_device_count()
    for members in (1, 5, 16, 40, 100, 1000):
        chunk = tr.default_chunk(cfg, members)
        assert chunk % n_dev == 0 and chunk >= min(members, n_dev)
        if jax.local_devices()[0].platform == "cpu":
            assert chunk <= 32 * n_dev
            calls = -(-members // chunk)
            assert calls * chunk - members < chunk  # balanced: never a whole call of padding
    assert tr.default_chunk(cfg, 1000) >= 16 * n_dev or jax.local_devices()[0].platform != "cpu"


_DIST_WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    pid, n, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if n > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=n, process_id=pid, initialization_timeout=300)
    import numpy as np
    from jaxrnn.tasks import make_task
    from jaxrnn.training import train as tr
    cfg = tr.TrainConfig(make_task("and", T=30, pulse_start=2, response_start=25), units=8, epochs=2, batch_size=4,
                         n_train=8)
    seen = []  # the members this process trains (the callback sees only its own)
    ens = tr.fit(cfg, 0, np.arange(5), callback=lambda state, loss: seen.append(len(loss)))
    np.savez(out + f".{jax.process_index()}.npz", loss=ens.loss, members=ens.members, **ens.params_final)
    print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(), "trained": seen[-1]}))
    """
)


@pytest.mark.slow
def test_two_processes_joined_by_jax_distributed_equal_one(tmp_path):
    """Members split over two processes (loopback coordinator) give the ensemble one process trains."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": _platform.cpu_flags(1), "JAX_PLATFORMS": "cpu"}

    def start(pid, n, out):
        cmd = [sys.executable, "-c", _DIST_WORKER, str(pid), str(n), str(port), str(out)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [start(i, 2, tmp_path / "two") for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    infos = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert sorted(i["process"] for i in infos) == [0, 1] and {i["processes"] for i in infos} == {2}
    assert sorted(i["trained"] for i in infos) == [2, 3]  # 5 members split 3 + 2, each trained once
    single = start(0, 1, tmp_path / "one")
    _, err = single.communicate(timeout=600)
    assert single.returncode == 0, err[-2000:]
    one = dict(np.load(tmp_path / "one.0.npz"))
    assert list(one["members"]) == [0, 1, 2, 3, 4]
    for pid in (0, 1):  # every process returns the whole ensemble, equal to one process's
        two = dict(np.load(tmp_path / f"two.{pid}.npz"))
        assert set(one) == set(two)
        for name in one:
            np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
