"""Read (and write) Keras `SimpleRNN` + `Dense` models with h5py only: no TensorFlow, no Keras.

Formats read:
  * Keras 2.x full-model HDF5 (`model.save("x.h5")`, the files of `reference/`): attribute `model_config` (JSON),
    optional `training_config` (JSON, the optimizer), group `model_weights/<layer>/` whose attribute
    `weight_names` lists the datasets, e.g. `simple_rnn_18/kernel:0`.
  * Keras 3 legacy HDF5 (`model.save("x.h5")`): the same attributes; weights nest one level deeper, e.g.
    `model_weights/simple_rnn/sequential/simple_rnn/simple_rnn_cell/kernel`, still listed by `weight_names`.
  * Keras 3 `.keras` zip archives: `config.json` (the model config; `compile_config` may name the optimizer) and
    `model.weights.h5`, whose variables are numbered, `layers/simple_rnn/cell/vars/{0,1,2}` = kernel,
    recurrent_kernel, bias and `layers/dense/vars/{0,1}` = kernel, bias. The group names are the snake-case class
    names (`simple_rnn`, `dense`, `simple_rnn_1`, ... in layer order), not the layers' own names.

Supported model: exactly one `SimpleRNN` (tanh, `return_sequences=True`, not stateful, not backwards, with or without
bias) followed by one linear `Dense`, any N, n_in, n_out. Anything else raises `KerasError` naming what is
unsupported.

Keras orientation is transposed: `kernel` (n_in, N), `recurrent_kernel` (N, N) with `[i, j]` the weight from unit i
to unit j, Dense `kernel` (N, n_out). jaxrnn's math orientation (`W[i, j]` from j to i): W_in = kernel.T,
W_rec = recurrent_kernel.T, W_out = dense kernel.T, so `h_t = tanh(W_rec h_{t-1} + W_in x_t + b)`,
`z_t = W_out h_t + b_out` is Keras' `h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

`import_keras` turns files into a jaxrnn run directory; `export_keras` writes a Keras-2-style full-model HDF5.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np


class KerasError(ValueError):
    """A file that is not a readable Keras SimpleRNN + Dense model (the message names the file and the problem)."""


class KerasModel(NamedTuple):
    """A Keras SimpleRNN + Dense model read from a file.

    Attributes:
        params: jaxrnn parameters of one network, math orientation, float32: W_in (N, n_in), W_rec (N, N),
            W_out (n_out, N), b_out (n_out,), and b (N,) when the SimpleRNN has a bias.
        units, n_in, n_out: N and the input and output dimensions.
        bias: whether the SimpleRNN has a bias.
        optimizer: the optimizer found in the file, `{"class_name": ..., <its config>}` with the learning rate
            always under `learning_rate` (Keras 2.0 calls it `lr`); {} when the file has none (an untrained model).
        init: jaxrnn's name for the recurrent initializer ("orthogonal" or "normal"), or None when it has no
            jaxrnn equivalent.
        gain: the initializer's gain in jaxrnn's convention (orthogonal: its `gain`; normal: stddev · sqrt(N)).
        recurrent_initializer: the Keras initializer config as stored (`{"class_name", "config"}`).
        keras_version: as stored in the file.
    """

    params: dict[str, np.ndarray]
    units: int
    n_in: int
    n_out: int
    bias: bool
    optimizer: dict
    init: str | None
    gain: float
    recurrent_initializer: dict
    keras_version: str


def _decode(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _json(x, source: str, what: str) -> dict:
    try:
        return json.loads(_decode(x))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KerasError(f"{source}: damaged {what} ({e})") from None


def _layers(model_config: dict, source: str) -> list[dict]:
    """The model's layers, InputLayer left out. Keras 2.0 lists them under `config`, later versions under
    `config.layers`."""
    cfg = model_config.get("config", {})
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg
    if not isinstance(layers, list):
        kind = model_config.get("class_name")
        raise KerasError(
            f"{source}: unsupported model class {kind!r}: no layer list (jaxrnn reads Sequential or "
            "Functional models of [SimpleRNN, Dense])"
        )
    return [layer for layer in layers if layer.get("class_name") != "InputLayer"]


def _check_layers(layers: list[dict], source: str) -> tuple[dict, dict]:
    """The (SimpleRNN, Dense) configs, or a KerasError naming what is unsupported."""
    names = [str(layer.get("class_name")) for layer in layers]
    wanted = "exactly one SimpleRNN followed by one Dense"
    for name in names:
        if name not in ("SimpleRNN", "Dense"):
            raise KerasError(f"{source}: unsupported layer {name} in {names}; jaxrnn reads {wanted}")
    if names.count("SimpleRNN") > 1:
        raise KerasError(f"{source}: unsupported stacked recurrent layers {names}; jaxrnn reads {wanted}")
    if names != ["SimpleRNN", "Dense"]:
        raise KerasError(f"{source}: unsupported layer sequence {names}; jaxrnn reads {wanted}")
    rnn, dense = layers[0]["config"], layers[1]["config"]
    act = _activation(rnn.get("activation"))
    if act != "tanh":
        raise KerasError(f"{source}: unsupported SimpleRNN activation {act!r}; jaxrnn reads 'tanh' only")
    for option, bad in (("stateful", True), ("go_backwards", True), ("return_sequences", False)):
        if rnn.get(option, not bad) == bad:
            raise KerasError(f"{source}: unsupported SimpleRNN option {option}={bad}")
    act = _activation(dense.get("activation", "linear"))
    if act != "linear":
        raise KerasError(f"{source}: unsupported Dense activation {act!r}; jaxrnn reads a linear readout only")
    return rnn, dense


def _activation(a) -> str:
    """An activation's name (Keras 3 may store a serialized object instead of a string)."""
    if isinstance(a, dict):
        a = a.get("config", {}).get("name", a.get("class_name"))
    return str(a)


def _optimizer(opt) -> dict:
    """`{"class_name", **config}` of a serialized optimizer; the learning rate under `learning_rate`."""
    if not isinstance(opt, dict):
        return {"class_name": opt} if isinstance(opt, str) else {}
    # float32 values stored as doubles (9.999999747378752e-05) back to their shortest float32 spelling (1e-4)
    config = {k: _short(v) for k, v in (opt.get("config") or {}).items()}
    if "lr" in config and "learning_rate" not in config:
        config["learning_rate"] = config["lr"]
    return {"class_name": opt.get("class_name"), **config}


def _short(v):
    """A float as the shortest decimal that rounds to the same float32; other values unchanged."""
    if isinstance(v, float) and not isinstance(v, bool) and math.isfinite(v):
        return float(str(np.float32(v)))
    return v


def _init(rnn_cfg: dict, units: int) -> tuple[str | None, float, dict]:
    """(jaxrnn init name or None, gain, Keras config) of the SimpleRNN's recurrent initializer."""
    ini = rnn_cfg.get("recurrent_initializer") or {}
    if isinstance(ini, str):
        ini = {"class_name": ini, "config": {}}
    name = re.sub(r"[_\s]", "", str(ini.get("class_name", ""))).lower()
    cfg = ini.get("config") or {}
    if name in ("orthogonal", "orthogonalinitializer"):
        return "orthogonal", float(cfg.get("gain", 1.0)), ini
    if name in ("randomnormal", "normal"):
        return "normal", float(cfg.get("stddev", 0.05)) * math.sqrt(units), ini
    return None, 1.0, ini


def _model(rnn_w: dict, dense_w: dict, rnn_cfg: dict, optimizer: dict, version: str, source: str) -> KerasModel:
    for where, w, key in (
        ("SimpleRNN", rnn_w, "kernel"),
        ("SimpleRNN", rnn_w, "recurrent_kernel"),
        ("Dense", dense_w, "kernel"),
    ):
        if key not in w:
            raise KerasError(f"{source}: the {where} layer has no {key} in the file's weights")
    kernel = np.asarray(rnn_w["kernel"], np.float32)
    rec = np.asarray(rnn_w["recurrent_kernel"], np.float32)
    dk = np.asarray(dense_w["kernel"], np.float32)
    if kernel.ndim != 2 or dk.ndim != 2:
        raise KerasError(f"{source}: kernels must be matrices, got {kernel.shape} and {dk.shape}")
    n_in, N = kernel.shape
    n_out = dk.shape[1]
    if rec.shape != (N, N) or dk.shape[0] != N:
        raise KerasError(
            f"{source}: inconsistent weight shapes: kernel {kernel.shape}, recurrent_kernel {rec.shape}, "
            f"dense kernel {dk.shape}"
        )
    b_out = np.asarray(dense_w.get("bias", np.zeros(n_out)), np.float32)
    params = {"W_in": kernel.T.copy(), "W_rec": rec.T.copy(), "W_out": dk.T.copy(), "b_out": b_out}
    has_bias = bool(rnn_cfg.get("use_bias", True))
    if has_bias:
        if "bias" not in rnn_w:
            raise KerasError(f"{source}: the SimpleRNN layer has use_bias=True but no bias in the file's weights")
        params["b"] = np.asarray(rnn_w["bias"], np.float32)
    for k, shape in (("b_out", (n_out,)), ("b", (N,))):
        if k in params and params[k].shape != shape:
            raise KerasError(f"{source}: bias {k} has shape {params[k].shape}, expected {shape}")
    init, gain, ini = _init(rnn_cfg, N)
    return KerasModel(params, N, n_in, n_out, has_bias, optimizer, init, gain, ini, version)


_KINDS = {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}


def _layer_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """kernel / recurrent_kernel / bias of one layer group of an HDF5 `model_weights` (Keras 2 and Keras 3)."""
    names = [_decode(n) for n in group.attrs.get("weight_names", [])]
    if not names:  # no list: every dataset below the group
        group.visit(lambda n: names.append(n) if isinstance(group[n], h5py.Dataset) else None)
    out = {}
    for name in names:
        dataset = group.get(name)
        if dataset is None:  # some writers list the path from the layer group's parent
            dataset = group.get(name.split("/", 1)[-1])
        kind = _KINDS.get(name.split("/")[-1].split(":")[0])
        if kind is not None and isinstance(dataset, h5py.Dataset):
            out[kind] = dataset[()]
    return out


def _read_h5(h5: h5py.File, source: str) -> KerasModel:
    if "model_weights" not in h5:
        hint = " (a weights-only file from save_weights lacks the architecture)" if "layer_names" in h5.attrs else ""
        raise KerasError(f"{source}: no model_weights group: not a Keras full-model file{hint}")
    if "model_config" not in h5.attrs:
        raise KerasError(f"{source}: no model_config attribute: not a Keras full-model file")
    layers = _layers(_json(h5.attrs["model_config"], source, "model_config"), source)
    rnn_cfg, dense_cfg = _check_layers(layers, source)
    weights = h5["model_weights"]
    found = []
    for cfg in (rnn_cfg, dense_cfg):
        name = cfg.get("name", "")
        if name not in weights:
            raise KerasError(f"{source}: model_weights has no group for layer {name!r}")
        found.append(_layer_weights(weights[name]))
    tc = h5.attrs.get("training_config")
    optimizer = _optimizer(_json(tc, source, "training_config").get("optimizer_config")) if tc is not None else {}
    version = _decode(h5.attrs.get("keras_version", weights.attrs.get("keras_version", "unknown")))
    return _model(found[0], found[1], rnn_cfg, optimizer, version, source)


def _snake(name: str) -> str:
    """Keras 3's `naming.to_snake_case` of a class name (SimpleRNN -> simple_rnn)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _vars(h5: h5py.File, path: str, kinds: tuple[str, ...], source: str) -> dict[str, np.ndarray]:
    group = h5.get(path)
    if not isinstance(group, h5py.Group):
        raise KerasError(f"{source}: model.weights.h5 has no group {path!r}")
    n = len([k for k in group if k.isdigit()])
    if n > len(kinds):
        raise KerasError(f"{source}: {path} holds {n} variables, expected at most {len(kinds)} {kinds}")
    return {kinds[i]: group[str(i)][()] for i in range(n)}


def _read_keras_zip(path: Path) -> KerasModel:
    source = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            config = _json(z.read("config.json"), source, "config.json")
            meta = _json(z.read("metadata.json"), source, "metadata.json") if "metadata.json" in z.namelist() else {}
            weights = z.read("model.weights.h5")
    except KeyError as e:
        raise KerasError(f"{source}: not a Keras .keras archive (missing {e})") from None
    except zipfile.BadZipFile as e:
        raise KerasError(f"{source}: damaged zip archive ({e})") from None
    rnn_cfg, _ = _check_layers(_layers(config, source), source)
    # One SimpleRNN and one Dense (checked), so their weight groups are the first of their class names.
    rnn_path, dense_path = f"layers/{_snake('SimpleRNN')}/cell/vars", f"layers/{_snake('Dense')}/vars"
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            rnn_w = _vars(h5, rnn_path, ("kernel", "recurrent_kernel", "bias"), source)
            dense_w = _vars(h5, dense_path, ("kernel", "bias"), source)
    except OSError as e:
        raise KerasError(f"{source}: damaged model.weights.h5 ({e})") from None
    compile_config = config.get("compile_config") or {}
    optimizer = _optimizer(compile_config.get("optimizer")) if isinstance(compile_config, dict) else {}
    return _model(rnn_w, dense_w, rnn_cfg, optimizer, str(meta.get("keras_version", "3")), source)


def read_keras(path: str | Path) -> KerasModel:
    """Read a Keras SimpleRNN + Dense model from a Keras 2/3 HDF5 file or a Keras 3 `.keras` archive.

    Args:
        path: the file.
    Returns:
        The model, its parameters in jaxrnn's math orientation (see `KerasModel`).
    Raises:
        KerasError: the file is missing, not HDF5 nor a .keras archive, not a Keras full model, or holds an
            unsupported model (the message names what is unsupported).
    """
    path = Path(path)
    if not path.is_file():
        raise KerasError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return _read_keras_zip(path)
    if not h5py.is_hdf5(path):
        raise KerasError(f"{path}: not an HDF5 file nor a .keras archive")
    try:
        with h5py.File(path, "r") as h5:
            return _read_h5(h5, str(path))
    except OSError as e:
        raise KerasError(f"{path}: damaged HDF5 file ({e})") from None


# ----------------------------------------------------------------------------------------------------------------
# Keras files -> a jaxrnn run directory.


def _train_config(task, model: KerasModel):
    """A TrainConfig for `task` with the network of `model` and the optimizer settings found in its file."""
    from jaxrnn.training.train import TrainConfig

    opt = model.optimizer if str(model.optimizer.get("class_name", "")).lower() == "adam" else {}
    settings = {
        k: float(opt[key])
        for k, key in (("decay", "decay"), ("b1", "beta_1"), ("b2", "beta_2"), ("eps", "epsilon"))
        if isinstance(opt.get(key), (int, float))
    }
    return TrainConfig(task=task, units=model.units, bias=model.bias, init=model.init or "orthogonal", **settings)


def import_keras(
    files: str | Path | Sequence[str | Path],
    task: str,
    out: str | Path,
    initial: str | Path | Sequence[str | Path] | None = None,
    params: dict | None = None,
    n_trials: int = 512,
    command: Sequence[str] | None = None,
    overwrite: bool = False,
):
    """Write a jaxrnn run directory holding Keras networks, one member per file, evaluated on `task`
    (`jaxrnn.runs.save_networks`: the same lock, checks, evaluation and files as a trained run).

    The TrainConfig takes the task from `make_task(task, **params)`, N and the RNN bias from the files, the init
    from the recurrent initializer's class (Orthogonal -> "orthogonal", RandomNormal -> "normal", any other ->
    "orthogonal") and Adam's decay, betas and epsilon from the file's optimizer; Hparams take its learning rate and
    the initializer's gain. The ensemble's `params_init` come from the `initial` files (same order) or, without
    them, equal the final params. The loss history is unknown: NaN (E, epochs) (a run directory holds one loss per
    configured epoch), stop epoch 0, not diverged. config.json's `extra` records the source files, the optimizer
    found, the Keras initializer as stored and the evaluation settings.

    Args:
        files: trained model file(s); all must have the same N, n_in, n_out and bias.
        task: a task name of `jaxrnn.tasks.TASKS`; its n_in and n_out must match the files'.
        out: the run directory to write.
        initial: initial-weight file(s), one per trained file, or None.
        params: task parameters overriding the paper preset (e.g. {"noise": 0.0}).
        n_trials: held-out trials of the evaluation written to members.csv.
        command: the command line to record in config.json.
        overwrite: replace what `out` holds (the old run stays until the new one is complete).
    Returns:
        The `jaxrnn.runs.store.Run` written.
    Raises:
        KerasError: unreadable or unsupported files, files of different shapes, or a task of other n_in / n_out.
    """
    from jaxrnn.runs import save_networks
    from jaxrnn.tasks import make_task
    from jaxrnn.training.train import Ensemble, Hparams

    files = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not files:
        raise KerasError("import-keras: no model file given")
    initial = None if initial is None else [Path(initial)] if isinstance(initial, (str, Path)) else list(initial)
    if initial is not None and len(initial) != len(files):
        raise KerasError(f"import-keras: {len(initial)} initial files for {len(files)} trained files")
    try:
        the_task = make_task(task, **(params or {}))
    except ValueError as e:
        raise KerasError(f"import-keras: {e}") from None
    finals = [read_keras(f) for f in files]
    inits = [read_keras(f) for f in initial] if initial is not None else finals
    first = finals[0]
    for path, m in zip([*files, *(initial or [])], [*finals, *(inits if initial is not None else [])], strict=True):
        if (m.units, m.n_in, m.n_out, m.bias) != (first.units, first.n_in, first.n_out, first.bias):
            raise KerasError(
                f"{path}: N={m.units}, n_in={m.n_in}, n_out={m.n_out}, bias={m.bias} differ from {files[0]}'s "
                f"N={first.units}, n_in={first.n_in}, n_out={first.n_out}, bias={first.bias}"
            )
    if (first.n_in, first.n_out) != (the_task.n_in, the_task.n_out):
        raise KerasError(
            f"{files[0]}: n_in={first.n_in}, n_out={first.n_out} do not fit task {task!r} "
            f"(n_in={the_task.n_in}, n_out={the_task.n_out})"
        )
    config = _train_config(the_task, first)
    lr = first.optimizer.get("learning_rate")
    hparams = Hparams(lr=float(lr) if isinstance(lr, (int, float)) else Hparams().lr, gain=first.gain)
    stack = lambda models: {k: np.stack([m.params[k] for m in models]) for k in first.params}  # noqa: E731
    E = len(files)
    ensemble = Ensemble(
        members=np.arange(E),
        params_init=stack(inits),
        params_final=stack(finals),
        loss=np.full((E, config.epochs), np.nan, np.float32),
        stop_epoch=np.zeros(E, np.int32),
        diverged=np.zeros(E, bool),
    )
    extra = {
        "protocol": "none: imported networks, not trained by jaxrnn (the config's training fields were not used)",
        "imported_from": [str(f.resolve()) for f in files],
        "initial_from": None if initial is None else [str(Path(f).resolve()) for f in initial],
        "optimizer": first.optimizer,
        "keras_version": first.keras_version,
        "recurrent_initializer": first.recurrent_initializer,
    }
    return save_networks(
        out, config, ensemble, hparams=hparams, n_eval=n_trials, command=command, extra=extra, overwrite=overwrite
    )


# ----------------------------------------------------------------------------------------------------------------
# A jaxrnn network -> a Keras-2-style full-model HDF5.


def export_keras(params: dict, path: str | Path, optimizer: dict | None = None) -> Path:
    """Write one network as a Keras 2.x full-model HDF5 (`Sequential([SimpleRNN(tanh), Dense])`).

    The layout is the one of the reference files (Keras 2.0.6): `model_config`, `training_config` when `optimizer`
    is given, `model_weights/simple_rnn_1/simple_rnn_1/{kernel,recurrent_kernel[,bias]}:0` and
    `model_weights/dense_1/dense_1/{kernel,bias}:0`, in Keras orientation (the transposes of jaxrnn's).

    Args:
        params: one network's parameters (math orientation): W_in (N, n_in), W_rec (N, N), W_out (n_out, N),
            b_out (n_out,), optional b (N,). For a Dale or sparse network pass `jaxrnn.cells.network.effective_params`
            of its parameters without `rec_mask` (Keras has no such constraint); gated cells and a trained h0 have
            no SimpleRNN equivalent and are refused.
        path: the file to write.
        optimizer: an optimizer config `{"class_name": "Adam", "lr": ..., ...}` to store in `training_config`.
    Returns:
        The path.
    """
    extra = sorted(set(params) - {"W_in", "W_rec", "W_out", "b_out", "b"})
    if extra:
        raise KerasError(
            f"export_keras: a Keras SimpleRNN has no parameters {extra} (rate RNN without h0 or mask only)"
        )
    p = {k: np.asarray(v, np.float32) for k, v in params.items()}
    N, n_in = p["W_in"].shape
    n_out = p["W_out"].shape[0]
    bias = "b" in p
    rnn_name, dense_name = "simple_rnn_1", "dense_1"
    rnn_cfg = {
        "name": rnn_name,
        "trainable": True,
        "batch_input_shape": [None, None, n_in],
        "dtype": "float32",
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "units": N,
        "activation": "tanh",
        "use_bias": bias,
        "recurrent_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}},
    }
    dense_cfg = {"name": dense_name, "trainable": True, "units": n_out, "activation": "linear", "use_bias": True}
    model_config = {
        "class_name": "Sequential",
        "config": [{"class_name": "SimpleRNN", "config": rnn_cfg}, {"class_name": "Dense", "config": dense_cfg}],
    }
    rnn_w = {"kernel": p["W_in"].T, "recurrent_kernel": p["W_rec"].T, **({"bias": p["b"]} if bias else {})}
    dense_w = {"kernel": p["W_out"].T, "bias": p["b_out"]}
    path = Path(path)
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = b"2.0.6"
        h5.attrs["backend"] = b"tensorflow"
        h5.attrs["model_config"] = json.dumps(model_config).encode()
        if optimizer:
            h5.attrs["training_config"] = json.dumps(
                {
                    "optimizer_config": {
                        "class_name": optimizer.get("class_name", "Adam"),
                        "config": {k: v for k, v in optimizer.items() if k != "class_name"},
                    },
                    "loss": "mse",
                }
            ).encode()
        weights = h5.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([rnn_name.encode(), dense_name.encode()])
        for name, arrays in ((rnn_name, rnn_w), (dense_name, dense_w)):
            group = weights.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/{k}:0".encode() for k in arrays])
            for k, v in arrays.items():
                group.create_dataset(f"{name}/{k}:0", data=np.ascontiguousarray(v))
    return path
