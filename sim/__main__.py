"""Run the cocotb regression: ``python -m sim [--waves] [--only NAME ...] [--sim SIMULATOR]``.

Builds (or reuses from ``build/sim/``) every RTL testbench of :data:`sim.regression.REGRESSION`
with Verilator, or the simulator named by ``--sim`` / ``$SIM``, runs its cocotb tests, prints a
summary table and exits non-zero if anything failed.
"""

import argparse
import sys
import time

from .regression import REGRESSION
from .runner import SIM_LOG, BuildFailed, SimulatorUnavailable, simulator_name


def _table(rows):
    header = ("testbench", "test", "result", "seconds")
    widths = [max(len(header[n]), *(len(row[n]) for row in rows)) for n in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n")[0])
    parser.add_argument("--waves", action="store_true",
                        help="write a waveform and a GTKWave save file per testbench")
    parser.add_argument("--sim", help="verilator (default) or icarus; overrides $SIM")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these testbenches: " + ", ".join(c.name for c in REGRESSION))
    args = parser.parse_args(argv)

    try:
        simulator = simulator_name(args.sim)
    except ValueError as error:
        parser.error(f"--sim / $SIM: {error}")
    unknown = sorted(set(args.only or ()) - {case.name for case in REGRESSION})
    if unknown:
        parser.error(f"--only: no testbench named {', '.join(unknown)}; the testbenches are "
                     + ", ".join(case.name for case in REGRESSION))
    cases = [case for case in REGRESSION if not args.only or case.name in args.only]

    rows, artefacts, failed = [], [], False
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] {case.name} ({simulator}) ...", flush=True)
        started = time.monotonic()
        try:
            result = case.run(simulator=simulator, waves=args.waves or None, check=False,
                              progress=True)
        except SimulatorUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except BuildFailed as error:
            print(f"    FAIL: {error}", flush=True)
            rows.append((case.name, "(build failed)", "FAIL",
                         f"{time.monotonic() - started:.1f}"))
            failed = True
            continue
        elapsed = time.monotonic() - started
        status = "rebuilt" if result.rebuilt else "cached build"
        print(f"    {status}, {len(result.tests)} tests, {elapsed:.1f} s, "
              f"{'PASS' if result.passed else 'FAIL'}", flush=True)
        if not result.tests:
            rows.append((case.name, "(no results)", "FAIL", f"{elapsed:.1f}"))
        for test in result.tests:
            rows.append((case.name, test.name, "PASS" if test.passed else "FAIL",
                         f"{test.seconds:.2f}"))
            if not test.passed:
                print(f"    {test.name}: {test.message}", flush=True)
        if not result.passed:
            print(f"    log: {result.build_dir / SIM_LOG}", flush=True)
        failed |= not result.passed
        if result.waveform:
            artefacts.append((case.name, result.waveform, result.gtkw))
        if not result.passed:
            artefacts.append((case.name, result.build_dir / SIM_LOG, None))

    print()
    print(_table(rows))
    passed = sum(row[2] == "PASS" for row in rows)
    print(f"\n{passed} passed, {len(rows) - passed} failed")
    for name, first, second in artefacts:
        print(f"{name}: {first}" + (f"  (gtkwave {first} {second})" if second else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
