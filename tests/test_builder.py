# amaranth: UnusedElaboratable=no
"""The accelerator's unit builder: its timing, computed from the parameters alone, is that of
the units it builds; the buffers hold every feature map; configurations for single units."""

import pytest

from rtl.builder import UNITS, UnitBuilder, pipeline_latencies, unit_config
from rtl.schedule import (
    CONFIG_KEYS,
    AcceleratorConfig,
    ConfigError,
    plan_layers,
    stem_ready_cycles,
)
from rtl.thermometer import ThermometerEncoder
from rtl.weight_cache import MAX_WEIGHT_BUFFERS

CONFIGS = [AcceleratorConfig(), AcceleratorConfig(pe=4, simd_channels=8,
                                                  decoder_symbols_per_cycle=2),
           AcceleratorConfig(pe=1, simd_channels=1, decoder_symbols_per_cycle=1),
           AcceleratorConfig(pe=8, simd_channels=16, decoder_symbols_per_cycle=8)]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_timing_is_that_of_the_built_units(net, config):
    builder = UnitBuilder(net, config)
    array = builder.xnor_popcount_array()
    assert builder.latencies() == pipeline_latencies(array.latency)
    cache = builder.weight_cache()
    assert builder.decode_cycles() == [cache.decode_cycles(index)
                                       for index in range(len(builder.plans))]
    # As many row buffers as the decoder fills during the first image's LOAD and stem, one
    # more would not be.
    buffers = builder.weight_buffers()
    assert cache.buffers == buffers
    ahead = stem_ready_cycles(config.stem_groups, builder.latencies(), ThermometerEncoder.latency)
    assert sum(builder.decode_cycles()[:buffers]) <= ahead
    assert buffers == MAX_WEIGHT_BUFFERS or sum(builder.decode_cycles()[:buffers + 1]) > ahead
    assert builder.huffman_decoder().symbols_per_cycle == config.decoder_symbols_per_cycle
    estimate = builder.estimate_cycles()
    assert estimate.phases["head"] == builder.latencies()["layer"] + builder.head().latency - 1


def test_buffer_maps_hold_every_feature_map(net):
    for width in (1, 4, 16):
        config = AcceleratorConfig(pe=width, simd_channels=width, decoder_symbols_per_cycle=1)
        maps = UnitBuilder(net, config).buffer_maps(width)
        plans = plan_layers(config)
        assert len(maps) == len(plans) + 1
        for (size, groups), plan in zip(maps[1:], plans):
            assert size == plan.out_size and groups * width == plan.cout


def test_every_unit_is_built_and_depends_on_configuration_keys(net):
    builder = UnitBuilder(net, AcceleratorConfig())
    for name, spec in UNITS.items():
        assert set(spec.depends_on) <= set(CONFIG_KEYS), name
        assert builder.build(name) is not None
    with pytest.raises(ValueError, match="unknown unit"):
        builder.build("adder")


def test_unit_config_fills_the_keys_a_unit_does_not_depend_on():
    assert unit_config("precision_gate", pe=4) == AcceleratorConfig(
        pe=4, simd_channels=16, decoder_symbols_per_cycle=1, pixels_per_beat=1)
    assert unit_config("huffman_decoder", pe=2, decoder_symbols_per_cycle=8) == \
        AcceleratorConfig(pe=2, simd_channels=16, decoder_symbols_per_cycle=8, pixels_per_beat=1)
    assert unit_config("merge_unit", pixels_per_beat=2).pixels_per_beat == 2
    with pytest.raises(ValueError, match="unknown configuration key"):
        unit_config("head", lanes=4)
    with pytest.raises(ValueError, match="unknown unit"):
        unit_config("adder", pe=4)
    with pytest.raises(ConfigError):
        unit_config("head", pe=3)
