"""How well the delay model (:mod:`synth.delays`) predicts routed Vivado timing:
``python -m synth.validation``.

The reference is ``synth/data/vivado_routed_paths.json``: the distinct routed setup paths of
public Vivado reports on the xczu3eg-sbva484-1 (:mod:`synth.vivado_paths`). Each path is a
sequence of cell arcs and nets; :func:`path_estimate` prices the same sequence with the model
(every cell arc by its class, every net by its fanout or its dedicated connection) and
:func:`validate` compares the routed period of each path (the requirement minus the slack) with
the model's, in each scenario. :func:`routed_statistics` recomputes the table's ``routed``
figures from the same paths.

The check is in-sample: the ``routed`` figures are statistics of these very paths, so it shows
how much a path's delay varies about the per-class figures (placement, routing, LUT pins), not
how the model does on designs it has not seen. Nor does it check the netlist analysis of
:mod:`synth.timing` (which path is the longest): ``--netlists`` runs that analysis on the routed
Vivado netlists of the same designs, when a copy of the reports' repository is at hand.
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

import numpy as np

from .delays import SCENARIOS, delay, fanout_key

__all__ = ["NETLIST_VALIDATION_FILE", "PATHS_FILE", "element_key", "load_paths", "netlist_of",
           "netlist_validation", "path_estimate", "routed_period", "routed_statistics",
           "setup_key", "summary", "validate"]

PATHS_FILE = Path(__file__).parent / "data" / "vivado_routed_paths.json"

_FF = ("FDRE", "FDSE", "FDCE", "FDPE")
_CARRY = re.compile(r"_(S|DI|CI|CI_TOP)(?:\[(\d+)\])?_(CO|O)\[(\d+)\]$")
_LAST_CARRY_BIT = 7


def _carry_key(arc):
    match = _CARRY.search(arc)
    if not match:
        raise ValueError(f"unknown CARRY8 arc {arc!r}")
    source, _, sink, bit = match.groups()
    top = sink == "CO" and int(bit) == _LAST_CARRY_BIT
    if source.startswith("CI"):
        return "carry.ci_to_co" if top else ("carry.ci_to_o", int(bit))
    if source == "S":
        return "carry.s_to_co" if top else "carry.s_to_o"
    return "carry.di_to_co" if top else "carry.s_to_o"


_DSP_STAGES = {
    "DSP_PREADD_DATA": "dsp.preadd",
    "DSP_MULTIPLIER": "dsp.mult",
    "DSP_ALU": "dsp.alu",
}


def element_key(cell, arc):
    """The :data:`synth.delays.DELAYS` key of a Vivado cell arc (``cell``: the cell type,
    ``arc``: Vivado's delay-arc name, e.g. ``Prop_A6LUT_SLICEL_I1_O``)."""
    if cell in _FF and arc.endswith("_C_Q"):
        return "ff.clk_to_q"
    if re.fullmatch(r"LUT[1-6]", cell):
        return "lut.o5" if re.search(r"_[A-H]5LUT_", arc) else "lut.o6"
    if cell == "CARRY8":
        return _carry_key(arc)
    if cell in ("MUXF7", "MUXF8", "MUXF9"):
        return "muxf.s_to_o" if re.search(r"_S_O$", arc) else "muxf.i_to_o"
    if cell in _DSP_STAGES:
        return _DSP_STAGES[cell]
    if cell == "DSP_A_B_DATA":
        return "dsp.clk_to_ab" if "_CLK_" in arc else "dsp.in_ab"
    if cell == "DSP_M_DATA":
        return "dsp.clk_to_m" if "_CLK_" in arc else "dsp.m_data"
    if cell == "DSP_OUTPUT":
        if "_CLK_" in arc:
            return "dsp.clk_to_p"
        return "dsp.out_pcout" if re.search(r"_PCOUT(\[\d+\])?$", arc) else "dsp.out_p"
    if cell in ("RAMB18E2", "RAMB36E2"):
        return "bram.clk_to_dout"
    raise ValueError(f"no delay class for the Vivado arc {arc!r} of a {cell}")


def setup_key(cell, arc):
    """The :data:`synth.delays.DELAYS` key of a Vivado setup arc."""
    if cell in _FF:
        pin = arc.rsplit("_", 1)[-1]
        return {"D": "ff.setup_d", "CE": "ff.setup_ce"}.get(pin, "ff.setup_sr")
    if cell == "DSP_OUTPUT" and "ALU_OUT" in arc:
        return "dsp.setup_p"
    if cell == "DSP_M_DATA":
        return "dsp.setup_m"
    if cell.startswith("DSP"):
        return "dsp.setup_ab"
    if cell.startswith("RAMB"):
        return "bram.setup"
    raise ValueError(f"no setup class for the Vivado arc {arc!r} of a {cell}")


def _net_key(net, before, after):
    """The key of a net between the cell arcs ``before`` and ``after`` (None: a connection
    inside a DSP48E2, no delay)."""
    if before["cell"].startswith("DSP") and after["cell"].startswith("DSP"):
        return ("net.dsp_cascade" if re.search(r"_(PCOUT|ACOUT|BCOUT)(\[\d+\])?$", before["arc"])
                else None)
    if before["cell"] == "CARRY8" and after["cell"] == "CARRY8" and "_CI_" in after["arc"]:
        return "net.carry"
    if before["cell"].startswith("LUT") and net["net"] == 1:
        if after["cell"] == "CARRY8" and re.search(r"_(S|DI)\[\d+\]_", after["arc"]):
            return "net.lut_to_carry"
        if after["cell"] in ("MUXF7", "MUXF8", "MUXF9"):
            return "net.lut_to_muxf"
    return fanout_key(net["net"])


def _classified(path):
    """(key, routed delay) of each element of ``path`` and of its setup arc (the setup time:
    the report's figure with its sign turned)."""
    elements = path["elements"]
    out = []
    for n, element in enumerate(elements):
        if "cell" in element:
            out.append((element_key(element["cell"], element["arc"]), element["delay"]))
        else:
            after = elements[n + 1] if n + 1 < len(elements) else path["setup"]
            out.append((_net_key(element, elements[n - 1], after), element["delay"]))
    setup = path["setup"]
    out.append((setup_key(setup["cell"], setup["arc"]), -setup["delay"]))
    return out


def load_paths(path=PATHS_FILE):
    """The routed paths of ``path`` (default :data:`PATHS_FILE`)."""
    return json.loads(Path(path).read_text())


def routed_statistics(paths):
    """Per :data:`synth.delays.DELAYS` key, the (fast, nominal, slow) figures of its arcs on
    ``paths``: the 25th percentile, the mean and the 90th percentile (the mean where it is
    larger), rounded to the picosecond; also the number of arcs."""
    samples, carry = {}, []
    for path in paths:
        for key, value in _classified(path):
            if isinstance(key, tuple):
                carry.append((key[1], value))
            elif key is not None:
                samples.setdefault(key, []).append(value)
    # CI to O[j]: the arcs at j = 0 give the base, the others what each bit above adds to it.
    base = [value for bit, value in carry if bit == 0]
    if carry:
        if not base:
            raise ValueError("no CI to O[0] arc among the paths: no base for the carry chain")
        samples["carry.ci_to_o"] = base
        offset = statistics.fmean(base)
        samples["carry.ci_per_bit"] = [(value - offset) / bit for bit, value in carry if bit]
    stats = {}
    for key, values in samples.items():
        fast, slow = np.percentile(values, [25, 90])
        mean = statistics.fmean(values)
        stats[key] = {"fast": round(float(fast), 3), "nominal": round(mean, 3),
                      "slow": round(max(float(slow), mean), 3), "arcs": len(values)}
    return stats


def path_estimate(path, scenario):
    """The model's figures for the routed ``path`` in ``scenario``: ``data_path_ns`` (clock to
    out, cells and nets) and ``period_ns`` (with the setup time and the clock uncertainty)."""
    classified = _classified(path)
    data = sum(delay(key, scenario) for key, _ in classified[:-1] if key is not None)
    setup = delay(classified[-1][0], scenario)
    period = data + setup + delay("clock.uncertainty", scenario)
    return {"data_path_ns": data, "period_ns": period}


def routed_period(path):
    """The clock period the routed ``path`` needs: the requirement minus the slack (its data
    path, setup, clock uncertainty and skew)."""
    return path["requirement_ns"] - path["slack_ns"]


def validate(paths):
    """Per path: the routed period and data path delay, and the model's in each scenario."""
    rows = []
    for path in paths:
        row = {"source": path["source"], "routed_period_ns": round(routed_period(path), 3),
               "routed_data_path_ns": path["data_path_ns"]}
        for scenario in SCENARIOS:
            estimate = path_estimate(path, scenario)
            row[f"{scenario}_period_ns"] = round(estimate["period_ns"], 3)
            row[f"{scenario}_data_path_ns"] = round(estimate["data_path_ns"], 3)
        rows.append(row)
    return rows


def summary(rows):
    """The ratio routed / estimated period over ``rows`` (:func:`validate`) per scenario (its
    median, minimum and maximum), and how many routed periods lie between the fast and the slow
    estimate."""
    out = {"paths": len(rows)}
    for scenario in SCENARIOS:
        ratios = [row["routed_period_ns"] / row[f"{scenario}_period_ns"] for row in rows]
        out[scenario] = {"median": round(statistics.median(ratios), 3),
                         "min": round(min(ratios), 3), "max": round(max(ratios), 3)}
    out["within_fast_slow"] = sum(row["fast_period_ns"] <= row["routed_period_ns"]
                                  <= row["slow_period_ns"] for row in rows)
    return out


# The routed netlist (write_verilog after route_design) of each kind of report's name.
_NETLISTS = ((r"-timing-route\.v$", "-route.v"),
             (r"-timing-(post-synth-post-opt-post-place-post-route)\.txt$", r"-\1.v"),
             (r"\.v-timing\.txt$", ".v-netlist.v"))
NETLIST_VALIDATION_FILE = Path(__file__).parent / "data" / "netlist_validation.json"


def netlist_of(report):
    """The routed Vivado netlist written beside the report ``report`` (a relative path), or
    None."""
    for pattern, replacement in _NETLISTS:
        if re.search(pattern, report):
            return re.sub(pattern, replacement, report)
    return None


_HEADER = re.compile(r"(module\s+\S+\s*\()(.*?)(\);)", re.S)
_PORT_EXPRESSION = re.compile(r"\.(\w+)\(([^()]*)\)")
_DECLARATION = r"^(\s*)(input|output|inout)(\s*(?:\[(\d+):(\d+)\])?\s*){name}\s*;"


def _plain_ports(module):
    """``module`` (the text of one Vivado netlist module) with its port expressions
    (``.port({a[1],a[0]})`` in the header, which Yosys does not read) turned into plain ports
    assigned to the expressions."""
    header = _HEADER.search(module)
    if not header or "." not in header[2]:
        return module
    body = module[header.end():]

    def declaration(name):
        return re.search(_DECLARATION.format(name=re.escape(name)), body, re.M)

    def width(term):
        term = term.strip()
        if match := re.fullmatch(r"(.+?)\s*\[(\d+):(\d+)\]", term):
            return abs(int(match[2]) - int(match[3])) + 1
        if re.fullmatch(r".+?\s*\[\d+\]", term):
            return 1
        found = declaration(term)
        return abs(int(found[4]) - int(found[5])) + 1 if found and found[4] else 1

    def replace(match):
        nonlocal body
        port, expression = match[1], match[2].strip()
        terms = [t for t in expression.strip("{}").split(",") if t.strip()]
        names = {re.sub(r"\s*\[.*$", "", t.strip()) for t in terms}
        direction = "input"
        for name in names:
            if found := declaration(name):
                direction = found[2]
                # The net is no longer a port of its own.
                body = body[:found.start()] + found[1] + "wire" + found[3] + name + " ;" \
                    + body[found.end():]
        bits = sum(map(width, terms))
        declarations.append(f"  {direction} [{bits - 1}:0]{port};")
        # An escaped identifier ends at white space: keep one before the semicolon.
        assigns.append(f"  assign {expression} = {port} ;" if direction == "input"
                       else f"  assign {port} = {expression} ;")
        return port

    declarations, assigns = [], []
    ports = _PORT_EXPRESSION.sub(replace, header[2])
    end = body.rindex("endmodule")
    return (module[:header.start()] + header[1] + ports + header[3] + "\n"
            + "\n".join(declarations) + body[:end] + "\n".join(assigns) + "\n" + body[end:])


def _readable(text):
    """A Vivado netlist's text with every module's port expressions made plain ports."""
    parts = re.split(r"(?=^(?:\(\*[^\n]*\*\)\s*)*module\s)", text, flags=re.M)
    return "".join(_plain_ports(part) if part.lstrip().startswith(("module", "(*")) else part
                   for part in parts)


def _read_vivado_netlist(netlist, work):
    """The top module of a Vivado netlist, read and flattened by Yosys (with the Xilinx cell
    library as blackboxes)."""
    from .timing import load_netlist
    from .yosys import run_yosys

    work.mkdir(parents=True, exist_ok=True)
    (work / "netlist.v").write_text(_readable(Path(netlist).read_text()))
    run_yosys("read_verilog -lib +/xilinx/cells_sim.v; read_verilog -lib +/xilinx/cells_xtra.v; "
              "read_verilog netlist.v; hierarchy -top main; flatten; select main; "
              "write_json -selected -noscopeinfo netlist.json", work / "yosys.log")
    return load_netlist(work / "netlist.json")


def netlist_validation(root, paths, work):
    """The analysis of :mod:`synth.timing` on the routed Vivado netlists of ``paths``' reports
    (found under ``root``, a copy of the reports' repository; scratch files in ``work``),
    register to register (the reports do not time the ports): per report, the routed worst
    period and the estimated ones, or the reason it was skipped."""
    from .timing import analyse

    rows = []
    for n, path in enumerate(paths):
        report = path["source"].split(":", 1)[1]
        netlist = netlist_of(report)
        row = {"source": path["source"], "routed_period_ns": round(routed_period(path), 3)}
        if netlist is None or not (Path(root) / netlist).is_file():
            rows.append({**row, "skipped": f"no routed netlist beside {report}"})
            continue
        try:
            results = analyse(_read_vivado_netlist(Path(root) / netlist, Path(work) / str(n)),
                              ports=False)
        except (RuntimeError, ValueError) as error:
            rows.append({**row, "skipped": str(error).splitlines()[0][:200]})
            continue
        for scenario, result in results.items():
            row[f"{scenario}_period_ns"] = round(result.period_ns, 3)
        rows.append(row)
    return rows



def _print_ratios(result):
    """The routed / estimated period ratios of a :func:`summary`, one line per scenario."""
    for scenario in SCENARIOS:
        ratio = result[scenario]
        print(f"  {scenario:8} median {ratio['median']:.3f}, range {ratio['min']:.3f} .. "
              f"{ratio['max']:.3f}")
    print(f"  routed period between the fast and the slow estimate: "
          f"{result['within_fast_slow']} of {result['paths']}")

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.validation",
                                     description="The delay model against routed Vivado paths.")
    parser.add_argument("--paths", type=Path, default=PATHS_FILE,
                        help="routed paths (python -m synth.vivado_paths)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--netlists", type=Path, metavar="DIR",
                        help="also time the routed netlists beside the reports, in DIR (a copy "
                             "of the reports' repository), into "
                             f"{NETLIST_VALIDATION_FILE.name} (with --out)")
    parser.add_argument("--out", type=Path, default=NETLIST_VALIDATION_FILE,
                        help="where --netlists writes its rows")
    parser.add_argument("--work", type=Path, default=Path("build/timing_validation"),
                        help="scratch folder of --netlists")
    args = parser.parse_args(argv)
    if not args.paths.is_file():
        parser.error(f"no such file: {args.paths}")
    if args.netlists is not None and not args.netlists.is_dir():
        parser.error(f"no such folder: {args.netlists}")
    paths = load_paths(args.paths)
    if args.netlists is not None:
        rows = netlist_validation(args.netlists, paths, args.work)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
        timed = [row for row in rows if "skipped" not in row]
        for row in rows:
            print(row)
        print(f"{len(timed)} of {len(rows)} netlists timed -> {args.out}")
        if timed:
            _print_ratios(summary(timed))
        return 0
    rows = validate(paths)
    result = summary(rows)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'routed':>7} {'fast':>7} {'nominal':>7} {'slow':>7}  path (ns, period)")
    for row in sorted(rows, key=lambda r: r["routed_period_ns"]):
        print(f"{row['routed_period_ns']:7.3f} {row['fast_period_ns']:7.3f} "
              f"{row['nominal_period_ns']:7.3f} {row['slow_period_ns']:7.3f}  "
              f"{row['source'].rsplit('/', 1)[-1]}")
    print(f"\n{result['paths']} routed paths; routed / estimated period:")
    _print_ratios(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
