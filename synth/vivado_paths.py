"""Timing paths read from Vivado ``report_timing`` text, the data the delay model of
:mod:`synth.delays` is checked against (:mod:`synth.validation`).

``python -m synth.vivado_paths --out FILE --source PREFIX REPORT...`` reads the setup paths of
routed reports (every net ``routed``) and writes them, without the designs' signal names, as
JSON: per path the launch and capture clock edges, the data path's elements in order (a cell arc
with its type, Vivado's delay-arc name and delay, or a net with its fanout and delay), the setup
arc, the clock uncertainty and skew, and the slack. ``synth/data/vivado_routed_paths.json`` is
this file for the public routed reports of ``gussmith23/lakeroad-evaluation``
(``synth/data/README.md``).
"""

import argparse
import json
import re
import sys
from pathlib import Path

__all__ = ["parse_report", "routed_paths"]

_NUM = r"(-?\d+\.\d+)"
_NET = re.compile(r"^\s*(?:\S+\s+)?net \(fo=(\d+), (\w+)\)\s+" + _NUM + r"\s+" + _NUM)
_CELL = re.compile(r"^\s*(?:\S+\s+)?(\S+) \(((?:Prop|Setup)_[^)]*)\)\s*(?:" + _NUM + r"\s+"
                   + _NUM + r".*)?$")
_VALUES = re.compile(r"^\s+" + _NUM + r"\s+" + _NUM + r"(?:\s|$)")
_HEADER = {
    "requirement_ns": re.compile(r"^\s*Requirement:\s+" + _NUM + "ns", re.M),
    "data_path_ns": re.compile(r"^\s*Data Path Delay:\s+" + _NUM + "ns", re.M),
    "skew_ns": re.compile(r"^\s*Clock Path Skew:\s+" + _NUM + "ns", re.M),
    "uncertainty_ns": re.compile(r"^\s*Clock Uncertainty:\s+" + _NUM + "ns", re.M),
}


def _entries(lines):
    """The cell arcs and nets of a section of a path, in order."""
    entries, pending = [], None
    for line in lines:
        if match := _NET.match(line):
            entries.append({"net": int(match[1]), "state": match[2],
                            "delay": float(match[3])})
        elif match := _CELL.match(line):
            if match[3] is None:
                pending = (match[1], match[2])
            else:
                entries.append({"cell": match[1], "arc": match[2], "delay": float(match[3])})
        elif pending and (match := _VALUES.match(line)):
            entries.append({"cell": pending[0], "arc": pending[1], "delay": float(match[1])})
            pending = None
    return entries


def _path(block):
    """One setup path of a report as a dict, or None when it is not a routed clocked path."""
    head = block.split("\n", 1)[0]
    slack = re.match(r"Slack \((?:MET|VIOLATED)\)\s*:\s+" + _NUM + r"ns\s+\(required time - "
                     r"arrival time\)", head)
    if not slack:
        return None
    lines = block.split("\n")
    try:
        start = next(n for n, line in enumerate(lines) if line.strip().startswith("Location"))
    except StopIteration:
        return None
    rules = [n for n in range(start + 1, len(lines)) if lines[n].strip().startswith("-----")]
    if len(rules) < 3:
        return None
    data = _entries(lines[rules[1] + 1:rules[2]])
    capture = [e for e in _entries(lines[rules[2] + 1:]) if "cell" in e]
    nets = [e for e in data if "net" in e]
    if not data or not capture or any(e["state"] != "routed" for e in nets):
        return None
    path = {"slack_ns": float(slack[1])}
    for key, pattern in _HEADER.items():
        match = pattern.search(block)
        path[key] = float(match[1]) if match else None
    if path["requirement_ns"] is None or path["data_path_ns"] is None:
        return None
    path["elements"] = [{k: v for k, v in e.items() if k != "state"} for e in data]
    path["setup"] = capture[-1]
    return path


def parse_report(text):
    """The routed setup paths of the Vivado ``report_timing`` (or ``report_timing_summary``)
    ``text``, as dicts (see the module documentation)."""
    blocks = re.split(r"\n(?=Slack)", text)
    return [path for path in map(_path, blocks) if path is not None]


def routed_paths(reports, source=""):
    """The distinct routed setup paths of the report files ``reports``, each with ``source``:
    ``source`` followed by the report's path."""
    paths, seen = [], set()
    for report in reports:
        for path in parse_report(Path(report).read_text(errors="replace")):
            key = json.dumps({k: v for k, v in path.items() if k != "source"}, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            paths.append({"source": f"{source}{report}", **path})
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.vivado_paths",
                                     description="Routed setup paths of Vivado timing reports "
                                                 "as JSON.")
    parser.add_argument("reports", nargs="+", type=Path, help="report_timing text files")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--source", default="",
                        help="prefix of each path's source (e.g. owner/repo@commit:)")
    args = parser.parse_args(argv)
    for report in args.reports:
        if not report.is_file():
            parser.error(f"no such report: {report}")
    paths = routed_paths(args.reports, args.source)
    args.out.write_text(json.dumps(paths, indent=1) + "\n")
    print(f"{len(paths)} routed paths from {len(args.reports)} reports -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
