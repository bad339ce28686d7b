"""Export a trained :class:`~fracbnn_train.modules.FracBNNNet` to the model file format
(README "Model file format"; the conversions are documented in docs/training.md §3).

``model_params(net)`` gives the arrays, ``write_model(net, path)`` writes the ``.npz`` and reads
it back with the golden model's own loader (:meth:`fracbnn_golden.FracBNN.from_npz`) before it
replaces ``path``: a file that the golden model would refuse is never written.

Every conversion uses the same functions as the modules' forward pass in evaluation mode
(:func:`~fracbnn_train.modules.wt_codes`, :func:`~fracbnn_train.modules.threshold_codes`,
:meth:`~fracbnn_train.modules.FoldedBatchNorm.folded`), so the exported codes are the values
the PyTorch model computes with:

* binary weights: bit 1 where the latent weight is >= 0 (``uint8 [Cout, Cin, 3, 3]``);
* batch norm: folded with the running statistics, ``scale = gamma / sqrt(var + eps)``,
  ``bias = beta - scale * mean``, each rounded half up to a WT code and saturated;
* RPReLU: ``shift_x_bias``, ``prelu_weight``, ``shift_y_bias`` rounded the same way;
* gate thresholds: ``floor(256 * tau)``, saturated (exact for the integer comparison);
* the linear layer: WT codes (the golden model re-rounds them to 7 fraction bits itself).
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from fracbnn_golden.files import check_output_file
from fracbnn_golden.model import CLASS_NAMES_KEY, PG_CONVS, FracBNN

from .modules import FracBNNNet, threshold_codes, wt_codes

__all__ = ["model_params", "write_model", "golden_model"]


def _codes(tensor):
    return wt_codes(tensor.detach().float().cpu()).numpy().astype(np.int16)


def _bits(weight):
    return (weight.detach().cpu() >= 0).numpy().astype(np.uint8)


def model_params(net, class_names=None):
    """The model file's arrays (``{key: array}``) of ``net``, a :class:`FracBNNNet`;
    ``class_names`` (a sequence of at most 10 names, optional) becomes ``class_names``."""
    if not isinstance(net, FracBNNNet):
        raise TypeError(f"net must be a FracBNNNet, not {type(net).__name__}")
    with torch.no_grad():
        params = {"conv1.weight": _bits(net.conv1.weight)}
        scale, bias = net.bn1.folded()
        params["bn1.weight"], params["bn1.bias"] = _codes(scale), _codes(bias)
        for spec in PG_CONVS:
            block, k = getattr(net, spec.block), spec.index
            prefix = spec.block
            conv = getattr(block, f"conv{k}")
            params[f"{spec.name}.weight"] = _bits(conv.weight)
            params[f"{spec.name}.threshold"] = (
                threshold_codes(conv.threshold.detach().float().cpu()).numpy().astype(np.int16))
            for bn_index in (k, k + 2):
                scale, bias = getattr(block, f"bn{bn_index}").folded()
                params[f"{prefix}.bn{bn_index}.weight"] = _codes(scale)
                params[f"{prefix}.bn{bn_index}.bias"] = _codes(bias)
            rprelu = getattr(block, f"rprelu{k}")
            for name in ("shift_x_bias", "prelu_weight", "shift_y_bias"):
                params[f"{prefix}.rprelu{k}.{name}"] = _codes(getattr(rprelu, name))
        params["linear.weight"] = _codes(net.linear.weight)
        params["linear.bias"] = _codes(net.linear.bias)
    if class_names is not None:
        params[CLASS_NAMES_KEY] = np.array([str(name) for name in class_names], dtype=np.str_)
    return params


def golden_model(net, class_names=None):
    """The golden model of ``net``'s exported parameters (validated, nothing written)."""
    return FracBNN(model_params(net, class_names), source="exported model")


def write_model(net, path, class_names=None):
    """Write ``net``'s model file to ``path`` (``.npz``) and check it with the golden model's
    loader; returns the loaded :class:`fracbnn_golden.FracBNN`.

    The file is written next to ``path`` under a temporary name, loaded with
    :meth:`FracBNN.from_npz` and only then renamed to ``path``; if the check fails nothing is
    left behind and :class:`fracbnn_golden.ModelFormatError` is raised.
    """
    path = check_output_file(path, "--out", suffix=".npz")
    params = model_params(net, class_names)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        np.savez_compressed(temporary, **params)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)       # mkstemp's file is private; a model is not
        loaded = FracBNN.from_npz(temporary)
        for key, value in params.items():
            if not np.array_equal(loaded.params[key], value):
                raise ValueError(f"{path}: {key!r} reads back differently from what was written")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return loaded
