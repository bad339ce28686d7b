"""GTKWave save files that show a simulation's ports readably.

:func:`write_save_file` writes a save file (``.gtkw``) for a waveform of a component's top-level
ports, as :func:`sim.runner.run` records it with ``waves=True``:

* ``clk`` and ``rst``, then the ports in the order of the component's signature: a plain port
  (a status output such as ``busy`` or ``cycles``) as a trace, or a group when it has fields;
  a stream interface as a group of ``valid``, ``ready`` and the payload (an always-ready
  stream, such as the accelerator's ``writeback``, has no ``ready``);
* every multi-element payload split into named traces, one per field and array element
  (``results.logits[3]``), as bit ranges of the flat Verilog port, so they do not depend on how
  a simulator names Amaranth's field wires; a payload of more than :data:`OPEN_TRACES` traces
  is a closed group of its own;
* each in a readable radix: signed shapes in signed decimal, numbers (``unsigned(n)``,
  ``range(n)``, counters) in decimal, plain bit vectors (a field declared by its width alone)
  in hexadecimal, single bits as lines;
* enumerations (:mod:`amaranth.lib.enum`, e.g. the accelerator's ``phase``) and the value names
  a component lists in its ``wave_names`` attribute (``{"layer": {0: "stem", ...}}``, keyed by
  the port or field path) by name, through GTKWave translate filter files written beside the
  save file (``<save file stem>.<trace>.filter``);
* zoomed so that the whole run fills the window (:func:`waveform_span` reads the end time from
  the VCD or FST file), with a named marker at the start of each cocotb test (``starts``).
"""

import itertools
import math
import re
import struct
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import data, stream

__all__ = ["OPEN_TRACES", "Trace", "Group", "wave_view", "waveform_span", "write_save_file"]

# A payload with more traces than this is shown as a closed group (open it in GTKWave).
OPEN_TRACES = 24
# Ports declared with a bare width that are numbers, not bit vectors.
DECIMAL_NAMES = frozenset({"cycles", "done_cycle", "images", "count", "beat", "symbol"})
# The window the save file asks for, and the wave area the zoom assumes (the window less the
# signal tree and the name column; a smaller screen shows a little less of the run).
WINDOW = (1600, 900)
SIGNALS_WIDTH = 260
WAVE_WIDTH = 1000
# GTKWave shows 2 ** -zoom time units per 200 pixels (its "frame").
_PIXELS_PER_FRAME = 200

_FLAGS = {"hex": 0x2, "dec": 0x4, "bin": 0x8, "signed": 0x404}
_RJUSTIFY, _TRANSLATED = 0x20, 0x2000
_GROUP_OPEN, _GROUP_CLOSED = 0x800200, 0xC00200
_GROUP_END_OPEN, _GROUP_END_CLOSED = 0x1000200, 0x1401200


@dataclass(frozen=True)
class Trace:
    """One trace: bits ``low`` to ``high`` of the Verilog port ``port`` (``width`` bits), shown
    as ``alias`` in ``radix`` ("bin", "hex", "dec" or "signed"); ``names`` maps values to the
    text GTKWave shows instead (a translate filter)."""

    alias: str
    port: str
    width: int
    high: int
    low: int
    radix: str
    names: tuple = ()          # ((value, name), ...)

    @property
    def whole(self):
        return self.low == 0 and self.high == self.width - 1


@dataclass
class Group:
    name: str
    items: list = field(default_factory=list)
    closed: bool = False


def _radix(name, shape):
    """(radix, value names) of a leaf field of shape ``shape`` named ``name``."""
    if isinstance(shape, type) and issubclass(shape, Enum):
        return "dec", tuple((int(member.value), member.name) for member in shape)
    cast = Shape.cast(shape)
    if cast.width == 1:
        return "bin", ()
    if cast.signed:
        return "signed", ()
    if isinstance(shape, int) and name not in DECIMAL_NAMES:
        return "hex", ()          # declared by its width alone: a bit vector
    return "dec", ()


def _leaves(alias, port, width, shape, offset, wave_names):
    """Traces of the field ``shape`` at bit ``offset`` of ``port``, one per leaf field and
    array element, named ``alias`` plus the field's path (``.name``, ``[index]``)."""
    if isinstance(shape, data.Layout):
        traces = []
        for name, field_ in shape:
            # GTKWave shows an alias from its last dot on: a field of an array element is
            # named after a space ("rows[5] rgb[2]", not "rows[5].rgb[2]" shown as "rgb[2]").
            if isinstance(name, int):
                suffix = f"[{name}]"
            else:
                suffix = f" {name}" if alias.endswith("]") else f".{name}"
            traces += _leaves(alias + suffix, port, width, field_.shape,
                              offset + field_.offset, wave_names)
        return traces
    radix, names = _radix(re.findall(r"[A-Za-z_]\w*", alias)[-1], shape)
    if alias in wave_names:
        radix, names = "dec", tuple(sorted((int(value), str(name))
                                           for value, name in wave_names[alias].items()))
    return [Trace(alias, port, width, offset + Shape.cast(shape).width - 1, offset, radix,
                  names)]


def _items(alias, port, shape, wave_names):
    """The traces of one port or payload: a list, or one closed group when there are many."""
    width = Shape.cast(shape).width
    if not width:
        return []
    traces = _leaves(alias, port, width, shape, 0, wave_names)
    if len(traces) > OPEN_TRACES:
        return [Group(f"payload ({len(traces)} traces)", traces, closed=True)]
    return traces


def _member_items(members, prefix, wave_names):
    """The view of the signature members ``members`` of the interface at ``prefix``."""
    items = []
    for name, member in members.items():
        for index in itertools.product(*(range(size) for size in member.dimensions)):
            path = (*prefix, name, *index)
            alias = ".".join(map(str, path))
            verilog = "__".join(map(str, path))
            if member.is_port:
                traces = _items(alias, verilog, member.shape, wave_names)
                if isinstance(member.shape, data.Layout) and len(traces) > 1:
                    items.append(Group(alias, traces))
                else:
                    items += traces
            elif isinstance(member.signature, stream.Signature):
                signature = member.signature
                payload = signature.members["payload"].shape
                # An always-valid or always-ready stream ties that member to a constant, which
                # is no port (rtl.interfaces.verilog_ports).
                handshake = [name for name, constant in (("valid", signature.always_valid),
                                                         ("ready", signature.always_ready))
                             if not constant]
                group = Group(alias, [Trace(f"{alias}.{name}", f"{verilog}__{name}", 1, 0, 0,
                                            "bin") for name in handshake])
                group.items += _items(alias if isinstance(payload, data.Layout)
                                      else f"{alias}.payload", f"{verilog}__payload", payload,
                                      wave_names)
                items.append(group)
            else:                   # another interface (an AXI bus): a group of its ports
                items.append(Group(alias, _member_items(member.signature.members, path,
                                                        wave_names)))
    return items


def wave_view(component):
    """The traces and groups the save file of ``component`` shows (see the module)."""
    wave_names = getattr(component, "wave_names", None) or {}
    return [Trace("clk", "clk", 1, 0, 0, "bin"), Trace("rst", "rst", 1, 0, 0, "bin"),
            *_member_items(component.signature.members, (), wave_names)]


def _fst_span(path):
    """(start, end) time of an FST file: the header block opens it."""
    with open(path, "rb") as handle:
        header = handle.read(25)
    if len(header) < 25 or header[0] != 0:
        return None
    _, start, end = struct.unpack(">QQQ", header[1:25])
    return start, end


def _vcd_span(path):
    """(start, end) time of a VCD file: its first and last ``#time`` lines."""
    start = end = None
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b"#"):
                start = int(line[1:])
                break
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - (1 << 16)))
        for line in handle.read().splitlines():
            if line.startswith(b"#") and line[1:].strip().isdigit():
                end = int(line[1:])
    if start is None or end is None:
        return None
    return start, end


def waveform_span(path):
    """(first, last) time of the waveform ``path`` in its own time unit (a VCD's or FST's),
    or None when it cannot be read."""
    path = Path(path)
    try:
        return _fst_span(path) if path.suffix == ".fst" else _vcd_span(path)
    except (OSError, ValueError, struct.error):
        return None


def zoom_for(span, wave_width=WAVE_WIDTH):
    """GTKWave's zoom factor that shows ``span`` time units across ``wave_width`` pixels."""
    if span <= 0:
        return 0.0
    return -math.log2(span * _PIXELS_PER_FRAME / wave_width)


def _filter_name(alias):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", alias).strip("_")


def _trace_lines(toplevel, trace, filters):
    def facility(port, width):
        return f"{toplevel}.{port}" + (f"[{width - 1}:0]" if width > 1 else "")

    flags = _FLAGS[trace.radix] | _RJUSTIFY
    lines = []
    if trace.names:
        flags |= _TRANSLATED
    lines.append(f"@{flags:x}")
    if trace.names:
        number = filters[trace.alias][0]
        lines.append(f"^{number} {filters[trace.alias][1]}")
    name = facility(trace.port, trace.width)
    if trace.whole:
        lines.append(name if trace.alias == trace.port and trace.width == 1
                     else f"+{{{trace.alias}}} {name}")
    elif trace.high == trace.low:         # one bit of a vector: a line, not a bus
        lines.append(f"+{{{trace.alias}}} ({trace.width - 1 - trace.low}){name}")
    else:
        bits = " ".join(f"({trace.width - 1 - bit}){name}"
                        for bit in range(trace.high, trace.low - 1, -1))
        lines.append(f"#{{{trace.alias}}} {bits}")
    return lines


def _walk(items):
    for item in items:
        if isinstance(item, Group):
            yield from _walk(item.items)
        else:
            yield item


def write_save_file(path, waveform, toplevel, component, *, starts=()):
    """Write the GTKWave save file ``path`` for ``waveform`` (the top level ``toplevel`` of
    ``component``) and its translate filter files; ``starts`` are the start times of the
    tests (named markers A, B, ...). Returns the filter files written."""
    path = Path(path)
    view = wave_view(component)
    filters, written = {}, []
    tables = {}
    for trace in _walk(view):
        if not trace.names:
            continue
        # One file per distinct table: GTKWave numbers them in the order they appear.
        if trace.names not in tables:
            filter_path = path.with_name(f"{path.stem}.{_filter_name(trace.alias)}.filter")
            filter_path.write_text("".join(f"{value} {name}\n" for value, name in trace.names))
            tables[trace.names] = (len(tables) + 1, filter_path)
            written.append(filter_path)
        filters[trace.alias] = tables[trace.names]

    span = waveform_span(waveform)
    lines = [
        "[*] GTKWave save file written by sim.gtkw",
        f'[dumpfile] "{Path(waveform).resolve()}"',
        f'[savefile] "{path.resolve()}"',
        f"[timestart] {span[0] if span else 0}",
        f"[size] {WINDOW[0]} {WINDOW[1]}",
        "[pos] -1 -1",
    ]
    if span:
        markers = [str(int(time)) for time in list(starts)[:26]]
        markers += ["-1"] * (26 - len(markers))
        lines.append(f"*{zoom_for(span[1] - span[0]):.6f} -1 " + " ".join(markers))
    lines += [f"[treeopen] {toplevel}.", f"[signals_width] {SIGNALS_WIDTH}",
              "[sst_expanded] 1"]

    def emit(items):
        for item in items:
            if isinstance(item, Group):
                lines.extend([f"@{_GROUP_CLOSED if item.closed else _GROUP_OPEN:x}",
                              f"-{item.name}"])
                emit(item.items)
                lines.extend([f"@{_GROUP_END_CLOSED if item.closed else _GROUP_END_OPEN:x}",
                              f"-{item.name}"])
            else:
                lines.extend(_trace_lines(toplevel, item, filters))

    emit(view)
    path.write_text("\n".join(lines) + "\n")
    return written
