"""Read Keras `SimpleRNN` + `Dense` models from HDF5 (Keras 2.x full-model files, Keras 3 `.h5`) and `.keras` zip
archives, with h5py only: no TensorFlow.

Keras orientation is transposed: `kernel` (n_in, N), `recurrent_kernel` (N, N) with `[i, j]` from unit i to j,
Dense `kernel` (N, n_out). jaxrnn's math orientation: W_in = kernel.T, W_rec = recurrent_kernel.T,
W_out = dense kernel.T.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np


class KerasError(ValueError):
    """A file that is not a readable Keras SimpleRNN + Dense model."""


class KerasModel(NamedTuple):
    params: dict[str, np.ndarray]  # math orientation, float32
    units: int
    n_in: int
    n_out: int
    bias: bool
    optimizer: dict  # optimizer config found in training_config ({} if none)
    keras_version: str


def _decode(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _layers(model_config: dict) -> list[dict]:
    cfg = model_config.get("config", {})
    layers = cfg["layers"] if isinstance(cfg, dict) else cfg  # Keras >= 2.2 nests layers under config
    return [layer for layer in layers if layer.get("class_name") != "InputLayer"]


def _check_layers(layers: list[dict]) -> tuple[dict, dict]:
    names = [layer.get("class_name") for layer in layers]
    if len(layers) != 2 or names[0] != "SimpleRNN" or names[1] != "Dense":
        raise KerasError(f"unsupported model: layers {names}; jaxrnn reads exactly [SimpleRNN, Dense]")
    rnn, dense = layers[0]["config"], layers[1]["config"]
    if rnn.get("activation") != "tanh":
        raise KerasError(f"unsupported SimpleRNN activation {rnn.get('activation')!r}; only 'tanh' is supported")
    if rnn.get("stateful"):
        raise KerasError("unsupported SimpleRNN option stateful=True")
    if rnn.get("go_backwards"):
        raise KerasError("unsupported SimpleRNN option go_backwards=True")
    if dense.get("activation", "linear") != "linear":
        raise KerasError(f"unsupported Dense activation {dense.get('activation')!r}; only 'linear' is supported")
    return rnn, dense


def _collect(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every dataset under `group`, by its path."""
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _pick(arrays: dict[str, np.ndarray], layer_names: list[str]) -> tuple[dict, dict]:
    """Split weights into (rnn, dense) dicts keyed kernel / recurrent_kernel / bias."""

    def which(path):
        base = path.split("/")[-1].split(":")[0]
        return {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}.get(base)

    rnn, dense = {}, {}
    for path, arr in sorted(arrays.items()):
        kind = which(path)
        if kind is None:
            continue
        top = path.split("/")[0]
        if top == layer_names[0] or "simple_rnn" in path:
            rnn[kind] = arr
        elif top == layer_names[1] or "dense" in path:
            dense[kind] = arr
    return rnn, dense


def _from_weights(rnn_w: dict, dense_w: dict, rnn_cfg: dict, optimizer: dict, version: str) -> KerasModel:
    if "kernel" not in rnn_w or "recurrent_kernel" not in rnn_w or "kernel" not in dense_w:
        raise KerasError("the file's weights lack a SimpleRNN kernel/recurrent_kernel or a Dense kernel")
    kernel, rec = np.asarray(rnn_w["kernel"], np.float32), np.asarray(rnn_w["recurrent_kernel"], np.float32)
    dk = np.asarray(dense_w["kernel"], np.float32)
    n_in, N = kernel.shape
    n_out = dk.shape[1]
    if rec.shape != (N, N) or dk.shape[0] != N:
        raise KerasError(f"inconsistent weight shapes: kernel {kernel.shape}, recurrent {rec.shape}, dense {dk.shape}")
    params = {
        "W_in": kernel.T.copy(),
        "W_rec": rec.T.copy(),
        "W_out": dk.T.copy(),
        "b_out": np.asarray(dense_w.get("bias", np.zeros(n_out)), np.float32),
    }
    has_bias = bool(rnn_cfg.get("use_bias", True))
    if has_bias:
        params["b"] = np.asarray(rnn_w.get("bias", np.zeros(N)), np.float32)
    return KerasModel(params, N, n_in, n_out, has_bias, optimizer, version)


def _optimizer(training_config) -> dict:
    if training_config is None:
        return {}
    tc = json.loads(_decode(training_config))
    opt = tc.get("optimizer_config", {})
    return {"class_name": opt.get("class_name"), **opt.get("config", {})}


def _read_h5(h5: h5py.File, source: str) -> KerasModel:
    if "model_config" not in h5.attrs:
        raise KerasError(f"{source}: no model_config attribute: not a Keras full-model file")
    if "model_weights" not in h5:
        raise KerasError(f"{source}: no model_weights group: not a Keras full-model file")
    layers = _layers(json.loads(_decode(h5.attrs["model_config"])))
    rnn_cfg, dense_cfg = _check_layers(layers)
    names = [layer["config"].get("name", "") for layer in layers]
    rnn_w, dense_w = _pick(_collect(h5["model_weights"]), names)
    version = _decode(h5.attrs.get("keras_version", "unknown"))
    return _from_weights(rnn_w, dense_w, rnn_cfg, _optimizer(h5.attrs.get("training_config")), version)


def _read_keras_zip(path: Path) -> KerasModel:
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json")) if "metadata.json" in z.namelist() else {}
        weights = z.read("model.weights.h5")
    layers = _layers(config)
    rnn_cfg, dense_cfg = _check_layers(layers)
    with h5py.File(io.BytesIO(weights), "r") as h5:
        arrays = _collect(h5)
    # Keras 3 stores weights as layers/<layer>/[cell/]vars/<i>, in the order kernel, recurrent_kernel, bias.
    rnn_w, dense_w = _vars_by_order(arrays)
    optimizer = {}
    if config.get("compile_config"):
        opt = config["compile_config"].get("optimizer", {})
        optimizer = {"class_name": opt.get("class_name"), **opt.get("config", {})} if isinstance(opt, dict) else {}
    return _from_weights(rnn_w, dense_w, rnn_cfg, optimizer, meta.get("keras_version", "3"))


def _vars_by_order(arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    rnn, dense = {}, {}
    for path, arr in arrays.items():
        parts = path.split("/")
        if "vars" not in parts or not parts[-1].isdigit():
            continue
        i = int(parts[-1])
        if "simple_rnn" in path:
            rnn[("kernel", "recurrent_kernel", "bias")[i]] = arr
        elif "dense" in path:
            dense[("kernel", "bias")[i]] = arr
    return rnn, dense


def read_keras(path: str | Path) -> KerasModel:
    """Read a Keras SimpleRNN + Dense model (HDF5 or .keras). Raises KerasError naming what is unsupported."""
    path = Path(path)
    if not path.is_file():
        raise KerasError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        try:
            return _read_keras_zip(path)
        except KeyError as e:
            raise KerasError(f"{path}: not a Keras .keras archive ({e})") from None
    if not h5py.is_hdf5(path):
        raise KerasError(f"{path}: not an HDF5 file nor a .keras archive")
    with h5py.File(path, "r") as h5:
        return _read_h5(h5, str(path))
