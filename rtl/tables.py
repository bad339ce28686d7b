"""Memory contents of the accelerator, made from a model and a configuration.

The only module of the RTL that reads the model's parameters by their keys (``linear.weight``,
``layer1_0.bn1.bias``, ...; see the README's model file format): the units take arrays.
"""

import numpy as np

from fracbnn_golden.huffman import compress_model

from .huffman import lanes_for
from .merge import MERGE_PARAMS
from .schedule import plan_layers

__all__ = ["MERGE_KEYS", "THRESHOLD_KEY", "classifier", "compressed_weights",
           "gate_threshold_rows", "layer_columns", "layer_thresholds", "merge_columns",
           "merge_param_rows", "pg_conv_kernels", "stem_batch_norm", "stem_weight"]


def stem_weight(net):
    """conv1's 0/1 weights ``[16, 96, 3, 3]`` (the thermometer conv)."""
    return net.params["conv1.weight"]


def stem_batch_norm(net):
    """bn1's ``(scale, bias)`` WT codes, ``[16]`` each."""
    return net.params["bn1.weight"], net.params["bn1.bias"]


def classifier(net):
    """The linear layer's ``(weight [classes, channels], bias [classes])`` WT codes."""
    return net.params["linear.weight"], net.params["linear.bias"]


def pg_conv_kernels(net, config):
    """``{layer: 0/1 kernels [cout, cin, 3, 3]}`` of the PG convs, in execution order."""
    return {plan.name: net.params[f"{plan.name}.weight"] for plan in plan_layers(config)}


def compressed_weights(net, config):
    """The PG convs' kernels Huffman-compressed for :class:`rtl.weight_cache.WeightCache`: in
    execution order, each layer one block in the decoder's lanes (two per symbol per cycle,
    :func:`rtl.huffman.lanes_for`), code tables chosen by
    :func:`fracbnn_golden.huffman.compress_model` (``tables="auto"``)."""
    plans = plan_layers(config)
    return compress_model(pg_conv_kernels(net, config),
                          block_channels=max(plan.cout for plan in plans),
                          lanes=lanes_for(config.decoder_symbols_per_cycle))


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
# Model key of a PG conv's gate thresholds.
THRESHOLD_KEY = "{name}.threshold"


def merge_columns(net, layer):
    """``[cout, 7]`` merge parameters of PG conv ``layer`` in :data:`rtl.merge.MERGE_PARAMS`
    order."""
    return layer_columns(net, layer, [MERGE_KEYS[name] for name in MERGE_PARAMS])


def layer_thresholds(net, layer):
    """``[cout]`` gate thresholds (WT codes tau) of PG conv ``layer``."""
    return layer_columns(net, layer, [THRESHOLD_KEY])[..., 0]


def merge_param_rows(net, config):
    """[param rows, pe, 7] WT codes in :data:`rtl.merge.MERGE_PARAMS` order."""
    return _per_output_group(net, config, [MERGE_KEYS[name] for name in MERGE_PARAMS])


def gate_threshold_rows(net, config):
    """[param rows, pe] gate thresholds (WT codes tau)."""
    return _per_output_group(net, config, [THRESHOLD_KEY])[..., 0]
