"""Memory contents of the accelerator, made from a model and a configuration."""

import numpy as np

from fracbnn_golden.huffman import compress_model

from .merge import MERGE_PARAMS
from .schedule import plan_layers

__all__ = ["MERGE_KEYS", "compressed_weights", "gate_threshold_rows", "layer_columns",
           "merge_columns", "merge_param_rows", "pack_row", "weight_rows"]


def pack_row(bits):
    """0/1 values (any shape, flattened in C order) -> int with element i at bit i."""
    flat = np.asarray(bits, dtype=np.uint8).reshape(-1)
    return int.from_bytes(np.packbits(flat, bitorder="little").tobytes(), "little")


def weight_rows(net, config):
    """Weights of every beat: one row per (layer, output group, input group).

    Row bit ``(p * 9 + tap) * simd_channels + c`` is the weight of output channel
    ``og * pe + p``, input channel ``cb * simd_channels + c``, tap ``ky * 3 + kx``.
    Returns a uint8 array ``[rows, pe, 9, simd_channels]``.
    """
    rows = []
    for plan in plan_layers(config):
        weight = net.params[f"{plan.name}.weight"]                  # [cout, cin, 3, 3]
        taps = weight.reshape(plan.cout, plan.cin, 9).transpose(0, 2, 1)   # [cout, 9, cin]
        for og in range(plan.groups_out):
            for cb in range(plan.groups_in):
                rows.append(taps[og * config.pe:(og + 1) * config.pe, :,
                                 cb * config.simd_channels:(cb + 1) * config.simd_channels])
    return np.stack(rows)


def compressed_weights(net, config):
    """The PG convs' kernels Huffman-compressed for :class:`rtl.weight_cache.WeightCache`: in
    execution order, one block per ``pe`` output channels, code tables chosen by
    :func:`fracbnn_golden.huffman.compress_model` (``tables="auto"``)."""
    return compress_model({plan.name: net.params[f"{plan.name}.weight"]
                           for plan in plan_layers(config)}, block_channels=config.pe)


def layer_columns(net, layer, keys):
    """``[cout, len(keys)]`` per-channel parameters of PG conv ``layer`` (e.g.
    ``layer1_0.conv2``); ``keys`` are model keys with ``{block}``, ``{name}``, ``{k}`` (the conv
    index) and ``{k2}`` (``k + 2``, the BN after the residual add) to fill in."""
    block, k = layer.rsplit(".conv", 1)
    k = int(k)
    return np.stack([net.params[key.format(block=block, name=layer, k=k, k2=k + 2)]
                     for key in keys], axis=-1)


def _per_output_group(net, config, keys):
    rows = []
    for plan in plan_layers(config):
        table = layer_columns(net, plan.name, keys)
        for og in range(plan.groups_out):
            rows.append(table[og * config.pe:(og + 1) * config.pe])
    return np.stack(rows)


# Model keys of the merge parameters ({block}, conv {k}).
MERGE_KEYS = {
    "bn_weight": "{block}.bn{k}.weight", "bn_bias": "{block}.bn{k}.bias",
    "shift_x": "{block}.rprelu{k}.shift_x_bias", "prelu": "{block}.rprelu{k}.prelu_weight",
    "shift_y": "{block}.rprelu{k}.shift_y_bias",
    "bn_out_weight": "{block}.bn{k2}.weight", "bn_out_bias": "{block}.bn{k2}.bias",
}


def merge_columns(net, layer):
    """``[cout, 7]`` merge parameters of PG conv ``layer`` in :data:`rtl.merge.MERGE_PARAMS`
    order."""
    return layer_columns(net, layer, [MERGE_KEYS[name] for name in MERGE_PARAMS])


def merge_param_rows(net, config):
    """[param rows, pe, 7] WT codes in :data:`rtl.merge.MERGE_PARAMS` order."""
    return _per_output_group(net, config, [MERGE_KEYS[name] for name in MERGE_PARAMS])


def gate_threshold_rows(net, config):
    """[param rows, pe] gate thresholds (WT codes tau)."""
    return _per_output_group(net, config, ["{name}.threshold"])[..., 0]
