"""The sweep's LUTs: a model built on the synthesis of the configuration-dependent units.

Every configuration of the accelerator builds, but the whole design takes Yosys longer than its
weight cache alone (too long at every configuration, below), so it is synthesised at the
default configuration only: ``LUT(config) = LUT(accelerator, default) + sum over the
configuration-dependent units u of instances(u, config) * LUT(u, config) - instances(u, default)
* LUT(u, default)``, each
unit synthesised on its own at both configurations (:data:`SWEPT_UNITS`: the units of
:data:`rtl.builder.UNITS` that depend on the configuration, as :class:`rtl.builder.UnitBuilder`
builds them). It is a model: the sequencer's own logic is taken as constant, and Yosys
optimises across unit boundaries in the whole design but not in the units alone.

The whole weight cache takes Yosys up to about ten minutes, too long to run at every (pe,
simd_channels, N), so it enters as its synthesis with a 1-symbol decoder at each (pe,
simd_channels), with that decoder swapped for the N-symbol one (each synthesised alone, about a
minute); the rest of the cache (row writes, payload words) is taken at N = 1.
:func:`weight_cache_check` compares these terms with the whole cache at the default
configuration.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rtl.builder import UNITS
from rtl.schedule import CONFIG_KEYS, PLANES, AcceleratorConfig
from synth.designs import unit_design

__all__ = ["SWEPT_UNITS", "SYNTH_DIR", "WEIGHT_CACHE_TERMS", "SweptUnit", "add_modelled_luts",
           "lut_model", "synthesise_units", "unit_designs", "weight_cache_check",
           "whole_weight_cache_design"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNTH_DIR = REPO_ROOT / "build" / "synth" / "sweep"
DEFAULT_CONFIG = AcceleratorConfig()
_SHORT = {"pe": "pe", "simd_channels": "simd", "decoder_symbols_per_cycle": "n",
          "pixels_per_beat": "px"}


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _tag(params):
    return "_".join(f"{_SHORT[key]}{value}" for key, value in params.items())


@dataclass(frozen=True)
class SweptUnit:
    """A term of the LUT model: its name, how many copies count (``instances``, times the
    pixels per beat if ``per_pixel``; -1 subtracts one), the configuration keys it depends on,
    the unit of :data:`rtl.builder.UNITS` it synthesises (``unit``, default ``name``; terms of
    the same unit share its designs) and configuration values it is always built with
    (``fixed``, (key, value) pairs)."""

    name: str
    instances: int
    depends_on: tuple
    unit: str = ""
    fixed: tuple = ()
    per_pixel: bool = False

    def count(self, config):
        """The copies at ``config``."""
        return self.instances * (config.pixels_per_beat if self.per_pixel else 1)

    def design(self, config):
        """The :class:`synth.yosys.Design` of this term at ``config`` (nothing is built yet)."""
        unit = self.unit or self.name
        values = {key: getattr(config, key) for key in self.depends_on} | dict(self.fixed)
        params = {key: values[key] for key in CONFIG_KEYS if key in values}
        # XNOR input bits per cycle, for the report's LUT per input bit (arrays only).
        input_bits = config.lanes // PLANES if unit == "xnor_popcount_array" else None
        return unit_design(f"sweep_{unit}_{_tag(params)}", unit, input_bits, **params)


def _at_one_symbol(name, unit, instances):
    """The term of ``unit`` with a 1-symbol decoder (whatever the configuration's)."""
    key = "decoder_symbols_per_cycle"
    return SweptUnit(name, instances, tuple(k for k in UNITS[unit].depends_on if k != key),
                     unit, ((key, 1),))


# The LUT model's terms that stand for the weight cache: the cache with a 1-symbol decoder,
# plus the N-symbol decoder, minus the 1-symbol one.
WEIGHT_CACHE_UNITS = (
    _at_one_symbol("weight_cache_at_n1", "weight_cache", UNITS["weight_cache"].instances),
    SweptUnit("huffman_decoder", 1, UNITS["huffman_decoder"].depends_on),
    _at_one_symbol("huffman_decoder_at_n1", "huffman_decoder", -1),
)
WEIGHT_CACHE_TERMS = tuple(unit.name for unit in WEIGHT_CACHE_UNITS)

# Every unit the accelerator holds whose parameters depend on the configuration: the MSB and
# LSB arrays, the gate, merge, shortcut, quantizer and head lanes (pe), the double-buffered
# activation (written pe and read simd_channels wide) and feature-map (pe wide) memories, and
# the weight cache's terms. The stem (thermometer encoder, conv, input BN) and the pixel memory
# do not depend on the configuration.
SWEPT_UNITS = (*(SweptUnit(name, spec.instances, spec.depends_on, per_pixel=spec.per_pixel)
                 for name, spec in UNITS.items()
                 if spec.depends_on and name not in ("weight_cache", "huffman_decoder")),
               *WEIGHT_CACHE_UNITS)


def whole_weight_cache_design(config=DEFAULT_CONFIG):
    """The weight cache synthesised whole at ``config``, to check its terms of the model."""
    params = {key: getattr(config, key) for key in CONFIG_KEYS}
    return unit_design(f"sweep_weight_cache_{_tag(params)}", "weight_cache", **params)


def weight_cache_check(unit_luts, config=DEFAULT_CONFIG, units=SWEPT_UNITS):
    """The weight cache's LUTs at ``config`` synthesised whole against the model's terms for
    it (``unit_luts``: design name -> LUTs, including :func:`whole_weight_cache_design`)."""
    modelled = sum(unit.count(config) * unit_luts[unit.design(config).name]
                   for unit in units if unit.name in WEIGHT_CACHE_TERMS)
    whole = unit_luts[whole_weight_cache_design(config).name]
    return {"synthesised_whole": whole, "modelled": modelled, "difference": modelled - whole}


def unit_designs(configs, units=SWEPT_UNITS):
    """The distinct unit designs the LUT model needs for ``configs`` and the default
    configuration, in a stable order (a unit that depends on pe alone is one design per pe;
    units with the same design share it)."""
    designs = {}
    for config in [DEFAULT_CONFIG, *configs]:
        for unit in units:
            design = unit.design(config)
            designs.setdefault(design.name, design)
    return list(designs.values())


def synthesise_units(designs, out_dir=SYNTH_DIR, synthesise=None, progress=_progress):
    """Synthesise ``designs`` (cached by :func:`synth.yosys.synthesize` in ``out_dir``):
    {design name: report entry}."""
    if synthesise is None:
        from synth.yosys import synthesize as synthesise
    entries = {}
    for index, design in enumerate(designs, 1):
        started = time.monotonic()
        progress(f"[{index}/{len(designs)}] synthesising {design.name} ...")
        entries[design.name] = synthesise(design, out_dir)
        progress(f"  {entries[design.name]['lut']} LUT, {time.monotonic() - started:.0f} s")
    return entries


def lut_model(accelerator_lut, default_unit_luts, config_unit_luts, default_instances,
              config_instances=None):
    """The modelled LUTs of the accelerator at some configuration: the measured
    ``accelerator_lut`` at the default configuration, with each unit ``u``'s
    ``default_instances[u]`` copies of ``default_unit_luts[u]`` LUTs replaced by
    ``config_instances[u]`` (default: as many) copies of ``config_unit_luts[u]`` (all measured
    on the units alone)."""
    config_instances = default_instances if config_instances is None else config_instances
    names = set(default_instances)
    if (set(default_unit_luts) != names or set(config_unit_luts) != names
            or set(config_instances) != names):
        raise ValueError(f"LUTs for units {sorted(default_unit_luts)} / "
                         f"{sorted(config_unit_luts)}, instances for {sorted(names)} / "
                         f"{sorted(config_instances)}")
    return accelerator_lut + sum(config_instances[name] * config_unit_luts[name]
                                 - default_instances[name] * default_unit_luts[name]
                                 for name in names)


def add_modelled_luts(points, accelerator_lut, unit_luts, units=SWEPT_UNITS):
    """Set each point's ``lut`` from the LUT model: ``accelerator_lut`` is the whole
    accelerator's at the default configuration, ``unit_luts`` maps the design names of
    :func:`unit_designs` to their measured LUTs. Returns ``points``."""
    instances = {unit.name: unit.count(DEFAULT_CONFIG) for unit in units}
    default = {unit.name: unit_luts[unit.design(DEFAULT_CONFIG).name] for unit in units}
    for point in points:
        config = AcceleratorConfig(**{key: point[key] for key in CONFIG_KEYS})
        swept = {unit.name: unit_luts[unit.design(config).name] for unit in units}
        point["lut"] = lut_model(accelerator_lut, default, swept, instances,
                                 {unit.name: unit.count(config) for unit in units})
    return points
