# amaranth: UnusedElaboratable=no
"""The Huffman-decoding weight cache: rows equal the uncompressed weights, exact decode times,
parameter checks; and the cycle model's weight waits."""

import dataclasses

import numpy as np
import pytest

from fracbnn_golden import FracBNN
from rtl.schedule import AcceleratorConfig, ConfigError, estimate_cycles, plan_layers
from rtl.tables import compressed_weights
from rtl.weight_cache import WeightCache
from sim.runner import run

CONFIG = AcceleratorConfig()


def pack_row(bits):
    """0/1 values (any shape, flattened in C order) -> int with element i at bit i."""
    flat = np.asarray(bits, dtype=np.uint8).reshape(-1)
    return int.from_bytes(np.packbits(flat, bitorder="little").tobytes(), "little")


def weight_rows(net, config):
    """The rows the weight cache must hold, from the uncompressed weights: one per (layer,
    output group, input group). Row bit ``(p * 9 + tap) * simd_channels + c`` is the weight of
    output channel ``og * pe + p``, input channel ``cb * simd_channels + c``, tap
    ``ky * 3 + kx``. Returns a uint8 array ``[rows, pe, 9, simd_channels]``."""
    rows = []
    for plan in plan_layers(config):
        weight = net.params[f"{plan.name}.weight"]                  # [cout, cin, 3, 3]
        taps = weight.reshape(plan.cout, plan.cin, 9).transpose(0, 2, 1)   # [cout, 9, cin]
        for og in range(plan.groups_out):
            for cb in range(plan.groups_in):
                rows.append(taps[og * config.pe:(og + 1) * config.pe, :,
                                 cb * config.simd_channels:(cb + 1) * config.simd_channels])
    return np.stack(rows)


@pytest.fixture(scope="module")
def net():
    return FracBNN.default()


def make_cache(net, config=CONFIG):
    return WeightCache(compressed_weights(net, config), plan_layers(config), pe=config.pe,
                       simd_channels=config.simd_channels,
                       symbols_per_cycle=config.decoder_symbols_per_cycle)


def test_compressed_weights_decode_to_the_model(net):
    compressed = compressed_weights(net, CONFIG)
    decoded = compressed.decode()
    for plan in plan_layers(CONFIG):
        assert np.array_equal(decoded[plan.name], net.params[f"{plan.name}.weight"])
    # Fewer bits than the raw kernels: the point of the cache.
    raw = sum(net.params[f"{p.name}.weight"].size for p in plan_layers(CONFIG))
    assert compressed.payload_bits < raw


def test_cache_rtl(net):
    cache = make_cache(net)
    plans = plan_layers(CONFIG)
    rows = weight_rows(net, CONFIG)
    per_layer, first = [], 0
    for plan in plans:
        count = plan.groups_in * plan.groups_out
        per_layer.append([f"{pack_row(row):x}" for row in rows[first:first + count]])
        first += count
    params = {"rows": per_layer, "buffers": cache.buffers,
              "decode_cycles": [cache.decode_cycles(index) for index in range(len(plans))]}
    result = run(cache, "sim.tb_weight_cache", params, name="weight_cache")
    assert sorted(test.name for test in result.tests) == [
        "every_layer_back_to_back", "every_layer_random_release", "reset_while_decoding"]


def test_decode_cycles_grow_with_kernels_and_shrink_with_symbols_per_cycle(net):
    caches = {n: make_cache(net, dataclasses.replace(CONFIG, decoder_symbols_per_cycle=n))
              for n in (1, 4)}
    plans = plan_layers(CONFIG)
    for index, plan in enumerate(plans):
        kernels = plan.cin * plan.cout
        slow, fast = caches[1].decode_cycles(index), caches[4].decode_cycles(index)
        assert slow >= kernels            # one symbol per cycle at most
        assert fast >= kernels / 4
        assert fast < slow


@pytest.mark.parametrize("kwargs, message", [
    ({"buffers": 1}, "buffers must be an integer of at least 2, not 1"),
    ({"symbols_per_cycle": 3}, "symbols_per_cycle"),
    ({"symbols_per_cycle": 0}, "symbols_per_cycle"),
    ({"pe": 8}, "does not match plan"),
])
def test_cache_rejects_bad_parameters(net, kwargs, message):
    arguments = {"pe": 16, "simd_channels": 16, "symbols_per_cycle": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        WeightCache(compressed_weights(net, CONFIG), plan_layers(CONFIG), **arguments)


def test_cache_rejects_a_model_of_other_layers(net):
    with pytest.raises(ValueError, match="layers"):
        WeightCache(compressed_weights(net, CONFIG), plan_layers(CONFIG)[:-1], pe=16,
                    simd_channels=16)
    with pytest.raises(TypeError, match="CompressedModel"):
        WeightCache(b"blob", plan_layers(CONFIG), pe=16, simd_channels=16)


def test_config_checks_decoder_symbols_per_cycle():
    with pytest.raises(ConfigError, match="decoder_symbols_per_cycle=3 must divide"):
        AcceleratorConfig(decoder_symbols_per_cycle=3)
    with pytest.raises(ConfigError, match="positive integer"):
        AcceleratorConfig(decoder_symbols_per_cycle=0)


LATENCIES = {"stem_drain": 10, "layer": 15}


def test_estimate_waits_only_for_slow_decoding():
    plans = plan_layers(CONFIG)
    fast = estimate_cycles(plans, CONFIG.stem_groups, LATENCIES, 2, 3, [1] * len(plans), 2)
    assert not any(fast.weight_waits.values())
    assert fast.total == sum(fast.phases.values())
    # Decoding layer 5 starts once layer 3 has issued its last beat; it takes 1000 cycles more
    # than layer 4's beats, and layer 5 starts the cycle after its weights are visible.
    slow = [1] * len(plans)
    slow[5] = plans[4].beats + 1000
    estimate = estimate_cycles(plans, CONFIG.stem_groups, LATENCIES, 2, 3, slow, 2)
    waits = {name: wait for name, wait in estimate.weight_waits.items() if wait}
    assert list(waits) == [plans[5].name]
    assert waits[plans[5].name] == 1000 + 1
    assert estimate.total == fast.total + waits[plans[5].name]
    # Every image waits the same: the interval is the layers' beats and that wait.
    assert estimate.steady_waits == estimate.weight_waits
    assert estimate.interval == sum(plan.beats for plan in plans) + waits[plans[5].name]


def test_estimate_with_a_third_buffer_decodes_a_layer_earlier():
    plans = plan_layers(CONFIG)
    # With three buffers decoding layer 5 starts once layer 2 has issued its last beat: a
    # decoding that would make it wait with two (longer than layer 4's beats) now fits in
    # layers 3 and 4's.
    slow = [1] * len(plans)
    slow[5] = plans[4].beats + plans[3].beats // 2
    assert not any(estimate_cycles(plans, CONFIG.stem_groups, LATENCIES, 2, 3, slow,
                                   3).weight_waits.values())
    slow[5] = plans[3].beats + plans[4].beats + 1000
    estimate = estimate_cycles(plans, CONFIG.stem_groups, LATENCIES, 2, 3, slow, 3)
    assert {name: wait for name, wait in estimate.weight_waits.items() if wait} == {
        plans[5].name: 1000 + 1}


def test_estimate_rejects_too_slow_first_layers():
    plans = plan_layers(CONFIG)
    slow = [1] * len(plans)
    slow[0] = 10_000
    with pytest.raises(ValueError, match="first layers"):
        estimate_cycles(plans, CONFIG.stem_groups, LATENCIES, 2, 3, slow, 3)
