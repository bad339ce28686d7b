"""Timing estimate of a design mapped by ``synth_xilinx -family xcup``: a static longest-path
analysis of the mapped netlist with the delay model of :mod:`synth.delays`.

Yosys has no timing data for UltraScale+ (its ``sta`` and ``timeest`` passes know no Xilinx
delays), and Vivado is not available here, so this module times the netlist Yosys writes
(``write_json``) itself. Every bit is a node; a path starts at a register's output (a flip-flop,
a DSP48E2 or block RAM register, a LUT RAM or shift register, or a primary input, taken as
registered) and ends at a register's input (or a primary output, taken as registered). Each cell
adds the delay of its arc from the input pin to the output pin and each connection the delay of
its net (by fanout, or a dedicated route). The arrival times are propagated in topological order
over the combinational arcs, in three scenarios (:data:`synth.delays.SCENARIOS`); the longest
path's period, with the endpoint's setup time and the clock uncertainty, gives the Fmax.

Modelled as Vivado would implement the netlist: a DSP48E2's internal registers (AREG/BREG,
CREG, MREG, PREG, per its parameters) split the paths through it; a block RAM's output is
registered (with DOA_REG/DOB_REG, the faster output register); Yosys' CARRY4 chains count as the
CARRY8s Vivado turns them into. Not modelled: Vivado's own optimisations (register replication,
retiming, LUT re-packing, the absorption of inverters into LUTs), clock skew beyond the
uncertainty, hold time. docs/architecture.md §8.5 gives the model and its error bars.

:func:`timing_summary` is what ``python -m synth`` puts in ``report.json`` (:data:`TIMING_KEYS`).
"""

import gzip
import json
import math
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from boards.ultra96.board import DEFAULT_CLOCK_MHZ

from .delays import SCENARIOS, delay, fanout_key

__all__ = ["TARGET_MHZ", "TIMING_KEYS", "Netlist", "ScenarioResult", "TimingGraph", "analyse",
           "load_netlist", "timing_summary"]

# The clock the design is to meet: the Ultra96 build's pl_clk0.
TARGET_MHZ = DEFAULT_CLOCK_MHZ

# The keys timing_summary adds to a report entry.
TIMING_KEYS = ("fmax_mhz_fast", "fmax_mhz_nominal", "fmax_mhz_slow", "logic_levels",
               "critical_path", "failing_endpoints")

_FF = {"FDRE": "R", "FDSE": "S", "FDCE": "CLR", "FDPE": "PRE"}
_LUTS = {f"LUT{n}" for n in range(1, 7)} | {"LUT6_2", "INV"}
_CARRY_BITS = {"CARRY4": 4, "CARRY8": 8}
_MUXF = {"MUXF7", "MUXF8", "MUXF9"}
_BRAM = {"RAMB18E2", "RAMB36E2"}
_SRL = {"SRL16E", "SRLC16E", "SRLC32E"}
_LUTRAM = {"RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S", "RAM32X1D",
           "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32M", "RAM64M", "RAM32M16", "RAM64M8"}
_CLOCK_PINS = {"C", "CLK", "CLKARDCLK", "CLKBWRCLK", "WCLK"}
# Cells that carry no data: the clock buffer, and the constant drivers.
_IGNORED = {"BUFG", "BUFGCE", "VCC", "GND"}
_IO = {"IBUF", "OBUF"}
_DSP_CASCADE_OUT = {"PCOUT", "ACOUT", "BCOUT", "CARRYCASCOUT", "MULTSIGNOUT"}


# -- The netlist ---------------------------------------------------------------------------------

@dataclass
class Netlist:
    """The top module of a Yosys JSON netlist (``write_json``): its ``ports``, ``cells`` and
    ``netnames`` as Yosys writes them, and its ``name``."""

    name: str
    ports: dict
    cells: dict
    netnames: dict


def load_netlist(path):
    """The top module of the Yosys JSON netlist ``path`` (plain or gzipped) as a
    :class:`Netlist`."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as file:
        modules = json.load(file)["modules"]
    tops = [name for name, module in modules.items()
            if int(str(module.get("attributes", {}).get("top", "0")), 2)]
    if len(tops) != 1 and len(modules) != 1:
        raise ValueError(f"{path}: cannot tell the top module among {', '.join(modules)}")
    name = tops[0] if len(tops) == 1 else next(iter(modules))
    module = modules[name]
    return Netlist(name, module.get("ports", {}), module.get("cells", {}),
                   module.get("netnames", {}))


def _param(cell, name, default=0):
    """A cell parameter as an int (Yosys writes them as binary strings) or a string."""
    value = cell.get("parameters", {}).get(name)
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text and set(text) <= {"0", "1"}:
        return int(text, 2)
    return text


# -- Cell models ---------------------------------------------------------------------------------

@dataclass
class _Model:
    """The timing of one cell: ``launches`` (output pin or internal node, delay key, label),
    ``captures`` (input pin or internal node, setup key, label) and ``arcs`` (from, to, delay
    key, factor). A pin is ``(port, index)``; an internal node is a string."""

    launches: list = field(default_factory=list)
    captures: list = field(default_factory=list)
    arcs: list = field(default_factory=list)


def _pins(cell, port):
    return [(port, n) for n in range(len(cell["connections"].get(port, [])))]


def _inputs(cell):
    return [(port, n) for port, direction in cell["port_directions"].items()
            if direction == "input" and port not in _CLOCK_PINS
            for n in range(len(cell["connections"].get(port, [])))]


def _outputs(cell):
    return [(port, n) for port, direction in cell["port_directions"].items()
            if direction == "output" for n in range(len(cell["connections"].get(port, [])))]


def _lut_depends_on(cell, output, pin):
    """Whether LUT output ``output`` depends on input ``pin`` by the cell's ``INIT`` (bit
    ``index`` is the output for input ``k`` = bit ``k`` of ``index``; the ``O5`` of a ``LUT6_2``
    is the lower half, a function of I0..I4). Without an ``INIT`` (an INV), it does.

    Vivado derives a LUT's timing arcs from its equation: a pin the equation ignores has no arc.
    The compressor trees' ``LUT6_2`` cells share their inputs between two functions, and the
    final adder's ``O5`` (a column's majority) ignores the input from the column below that
    its ``O6`` reads; timing that arc would chain the columns' LUTs into a false path."""
    if output[0] == "O5" and pin[0] == "I5":
        return False
    table = _param(cell, "INIT", None)
    if not isinstance(table, int) or not re.fullmatch(r"I\d", pin[0]):
        return True
    index = int(pin[0][1:])
    if output[0] == "O5":
        entries = 32
    else:
        entries = 64 if cell["type"] == "LUT6_2" else 1 << int(cell["type"][3])
    return any(((table >> n) ^ (table >> (n ^ (1 << index)))) & 1
               for n in range(entries) if n ^ (1 << index) < entries)


def _lut_model(cell):
    model = _Model()
    inputs = _inputs(cell)
    for out in _outputs(cell):
        key = "lut.o5" if out[0] == "O5" else "lut.o6"
        sources = [pin for pin in inputs if _lut_depends_on(cell, out, pin)]
        model.arcs += [(pin, out, key, 1.0) for pin in sources]
    return model


def _carry_chains(cell, bits):
    """The carry chains of a carry cell: (carry-in ports, lowest bit, top bit, share of a
    CARRY8's CI to CO[7])."""
    if bits == 4:
        # CARRY4: half of CI to CO[7] (the other half of a CARRY8's share is the net between).
        return [(("CI", "CYINIT"), 0, 3, 0.5)]
    if str(_param(cell, "CARRY_TYPE", "SINGLE_CY8")).upper() == "DUAL_CY4":
        # Two chains of four: bits 0..3 from CI, bits 4..7 from CI_TOP.
        return [(("CI",), 0, 3, 0.5), (("CI_TOP",), 4, 7, 0.5)]
    return [(("CI",), 0, 7, 1.0)]


def _carry_model(cell, bits):
    model = _Model()
    for ports, low, top, share in _carry_chains(cell, bits):
        for port in ports:
            for pin in _pins(cell, port):
                model.arcs.append((pin, ("CO", top), "carry.ci_to_co", share))
                # CI to bit j's sum (or inner carry) grows with j.
                model.arcs += [(pin, ("O", j), ("carry.ci_to_o", j - low), 1.0)
                               for j in range(low, top + 1)]
                model.arcs += [(pin, ("CO", j), ("carry.ci_to_o", j - low), 1.0)
                               for j in range(low, top)]
        for i in range(low, top + 1):
            # S[i] reaches O[i] (the sum) and every carry above; DI[i] the carries from bit i.
            model.arcs.append((("S", i), ("CO", top), "carry.s_to_co", 1.0))
            model.arcs += [(("S", i), ("O", j), "carry.s_to_o", 1.0)
                           for j in range(i, top + 1)]
            model.arcs += [(("S", i), ("CO", j), "carry.s_to_o", 1.0) for j in range(i, top)]
            model.arcs.append((("DI", i), ("CO", top), "carry.di_to_co", 1.0))
            model.arcs += [(("DI", i), ("O", j), "carry.s_to_o", 1.0)
                           for j in range(i + 1, top + 1)]
            model.arcs += [(("DI", i), ("CO", j), "carry.s_to_o", 1.0) for j in range(i, top)]
    return model


def _muxf_model(cell):
    model = _Model()
    for out in _outputs(cell):
        for pin in _inputs(cell):
            model.arcs.append((pin, out, "muxf.s_to_o" if pin[0] == "S" else "muxf.i_to_o",
                               1.0))
    return model


def _ff_model(cell):
    model = _Model(launches=[(("Q", 0), "ff.clk_to_q", "Q")])
    setup = {"D": "ff.setup_d", "CE": "ff.setup_ce"}
    for pin in _inputs(cell):
        model.captures.append((pin, setup.get(pin[0], "ff.setup_sr"), pin[0]))
    return model


def _bram_model(cell):
    model = _Model()
    for out in _outputs(cell):
        port_b = "B" in out[0].replace("DOUTPADOUTP", "").replace("DOUTADOUT", "")
        registered = _param(cell, "DOB_REG" if port_b else "DOA_REG")
        model.launches.append((out, "bram.clk_to_dout_reg" if registered else "bram.clk_to_dout",
                               out[0]))
    model.captures += [(pin, "bram.setup", pin[0]) for pin in _inputs(cell)]
    return model


def _lutram_model(cell):
    model = _Model()
    outputs = _outputs(cell)
    model.launches += [(out, "lutram.clk_to_out", out[0]) for out in outputs]
    for pin in _inputs(cell):
        model.captures.append((pin, "lutram.setup", pin[0]))
        if re.match(r"(A\d*|ADDR[A-H]?|DPRA\d*)$", pin[0]):
            model.arcs += [(pin, out, "lutram.read", 1.0) for out in outputs]
    return model


def _dsp_model(cell):
    """A DSP48E2 as the stages Vivado times: the A/B (and C, D) input registers or their
    bypass, the multiplier and MREG, the ALU, and PREG or the outputs."""
    model = _Model()
    use_mult = str(_param(cell, "USE_MULT", "MULTIPLY")).upper() != "NONE"
    registers = {port: _param(cell, f"{port}REG", 1) for port in ("A", "B", "C", "D", "M", "P")}
    registers["ACIN"], registers["BCIN"] = registers["A"], registers["B"]
    into = {"A": "AB", "ACIN": "AB", "B": "AB", "BCIN": "AB", "D": "AB", "C": "ALU_IN",
            "PCIN": "ALU_IN", "CARRYCASCIN": "ALU_IN", "MULTSIGNIN": "ALU_IN"}
    for pin in _inputs(cell):
        port = pin[0]
        if port in ("PCIN", "CARRYCASCIN", "MULTSIGNIN"):
            model.arcs.append((pin, "ALU_IN", None, 0.0))
        elif port in into:
            stage = into[port] if use_mult or into[port] == "ALU_IN" else "ALU_IN"
            if registers.get(port, 0):
                model.captures.append((pin, "dsp.setup_ab", f"{port} ({port}REG)"))
                model.launches.append((stage, "dsp.clk_to_ab", f"{port}REG"))
            else:
                model.arcs.append((pin, stage, "dsp.in_ab", 1.0))
        elif port.startswith(("CE", "RST")):
            model.captures.append((pin, "dsp.setup_ctrl", port))
        else:
            # OPMODE, ALUMODE, INMODE, CARRYIN, CARRYINSEL: registered by default.
            reg = _param(cell, f"{port}REG", 1)
            if reg:
                model.captures.append((pin, "dsp.setup_ctrl", f"{port} ({port}REG)"))
                model.launches.append(("ALU_IN", "dsp.clk_to_ab", f"{port}REG"))
            else:
                model.arcs.append((pin, "ALU_IN", "dsp.in_ab", 1.0))
    if use_mult:
        model.arcs.append(("AB", "MULT", "dsp.preadd", 1.0))
        model.arcs.append(("MULT", "M", "dsp.mult", 1.0))
        if registers["M"]:
            model.captures.append(("M", "dsp.setup_m", "MREG"))
            model.launches.append(("ALU_IN", "dsp.clk_to_m", "MREG"))
        else:
            model.arcs.append(("M", "ALU_IN", "dsp.m_data", 1.0))
    model.arcs.append(("ALU_IN", "ALU_OUT", "dsp.alu", 1.0))
    outputs = []
    for out in _outputs(cell):
        if out[0] in ("ACOUT", "BCOUT"):
            # The A/B cascade leaves from the input registers (or their bypass).
            model.arcs.append(("AB", out, None, 0.0))
        else:
            outputs.append(out)
    if registers["P"]:
        model.captures.append(("ALU_OUT", "dsp.setup_p", "PREG"))
        model.launches += [(out, "dsp.clk_to_p", "PREG") for out in outputs]
    else:
        for out in outputs:
            key = "dsp.out_pcout" if out[0] in _DSP_CASCADE_OUT else "dsp.out_p"
            model.arcs.append(("ALU_OUT", out, key, 1.0))
    return model


def _model(name, cell):
    kind = cell["type"]
    if kind in _LUTS:
        return _lut_model(cell)
    if kind in _CARRY_BITS:
        return _carry_model(cell, _CARRY_BITS[kind])
    if kind in _MUXF:
        return _muxf_model(cell)
    if kind in _FF:
        return _ff_model(cell)
    if kind in _BRAM:
        return _bram_model(cell)
    if kind in _SRL or kind in _LUTRAM:
        return _lutram_model(cell)
    if kind == "DSP48E2":
        return _dsp_model(cell)
    raise ValueError(f"no timing model for cell {name!r} of type {kind!r}")


# -- The timing graph ----------------------------------------------------------------------------

_CONSTANT = {"0", "1", "x", "z"}


class TimingGraph:
    """The timing graph of a :class:`Netlist`: nodes (bits and the DSPs' internal stages),
    combinational arcs, start points and endpoints, in topological order. Built once and
    evaluated per scenario (:meth:`evaluate`)."""

    def __init__(self, netlist, ports=True):
        self.netlist = netlist
        # Whether primary inputs and outputs are start and end points.
        self.ports = ports
        self.cells = {name: cell for name, cell in netlist.cells.items()
                      if cell["type"] not in _IGNORED}
        self._names = self._bit_names()
        self._find_drivers_and_sinks()
        # Node -> list of (source node, arc data); start and end points.
        self.fanin = defaultdict(list)
        self.launches = {}
        self.captures = []
        self._build()
        self.order = self._topological_order()

    # Names -----------------------------------------------------------------------------------

    def _bit_names(self):
        names = {}
        for name, net in self.netlist.netnames.items():
            hidden = net.get("hide_name", 0)
            bits = net["bits"]
            offset = net.get("offset", 0)
            for n, bit in enumerate(bits):
                if isinstance(bit, str):
                    continue
                label = name if len(bits) == 1 else f"{name}[{n + offset}]"
                rank = (hidden, name.count("$"), len(name))
                if bit not in names or rank < names[bit][0]:
                    names[bit] = (rank, label)
        self._visible = {bit for bit, (rank, _) in names.items() if not rank[0]}
        # The nets on the inside of the I/O buffers are the ports' signals.
        for cell in self.cells.values():
            if cell["type"] in _IO:
                inner, outer = ((cell["connections"]["O"][0], cell["connections"]["I"][0])
                                if cell["type"] == "IBUF" else
                                (cell["connections"]["I"][0], cell["connections"]["O"][0]))
                if (not isinstance(inner, str) and inner not in self._visible
                        and outer in self._visible):
                    names[inner] = names[outer]
                    self._visible.add(inner)
        return {bit: label for bit, (_, label) in names.items()}

    def bit_name(self, bit):
        """The Amaranth (or Yosys) name of the net bit ``bit``."""
        return self._names.get(bit, f"net {bit}")

    def visible_name(self, bit):
        """The name of ``bit`` if the design names it (not one Yosys made up), else None."""
        return self._names.get(bit) if bit in self._visible else None

    def cell_label(self, name, visible=False):
        """A readable name of cell ``name``: the signal its outputs drive (the first the design
        names, without the bit index), else the first named signal it reads ("TYPE from
        NAME"); else None if ``visible``, or the cell's own name."""
        cell = self.cells[name]
        for wanted in ("output", "input"):
            for port, direction in cell["port_directions"].items():
                if direction != wanted or port in _CLOCK_PINS:
                    continue
                for bit in cell["connections"].get(port, []):
                    if not isinstance(bit, str) and bit in self._visible:
                        signal = re.sub(r"\[\d+\]$", "", self._names[bit])
                        return signal if wanted == "output" else f"{cell['type']} from {signal}"
        return None if visible else name

    # Structure -------------------------------------------------------------------------------

    def _find_drivers_and_sinks(self):
        self.driver = {}
        self.sinks = defaultdict(list)
        self.inputs, self.outputs = {}, {}
        for port, info in self.netlist.ports.items():
            for n, bit in enumerate(info["bits"]):
                if isinstance(bit, str):
                    continue
                label = port if len(info["bits"]) == 1 else f"{port}[{n}]"
                if info["direction"] == "input":
                    self.inputs[bit] = label
                    self.driver[bit] = ("<port>", port, n)
                else:
                    self.outputs[bit] = label
                    self.sinks[bit].append(("<port>", port, n))
        for name, cell in self.cells.items():
            for port, direction in cell["port_directions"].items():
                for n, bit in enumerate(cell["connections"].get(port, [])):
                    if isinstance(bit, str):
                        continue
                    if direction == "output":
                        self.driver[bit] = (name, port, n)
                    elif port not in _CLOCK_PINS:
                        self.sinks[bit].append((name, port, n))

    def _net_arc(self, bit, sink):
        """(key, factor) of the connection from the driver of ``bit`` to ``sink``."""
        driver = self.driver.get(bit)
        fanout = len(self.sinks[bit])
        source = self.cells[driver[0]]["type"] if driver and driver[0] in self.cells else None
        target = self.cells[sink[0]]["type"] if sink[0] in self.cells else None
        if (source in _CARRY_BITS and target in _CARRY_BITS and sink[1] in ("CI", "CI_TOP")
                and driver[1] == "CO" and driver[2] == _CARRY_BITS[source] - 1
                and _carry_chains(self.cells[driver[0]], _CARRY_BITS[source])[-1][3]
                == (0.5 if source == "CARRY4" else 1.0)):
            # The dedicated route from a chain's top carry out to the next cell's carry in.
            return "net.carry", 0.5 if source == "CARRY4" else 1.0
        if source in _LUTS and source != "INV" and fanout == 1:
            if target in _CARRY_BITS and sink[1] in ("S", "DI"):
                return "net.lut_to_carry", 1.0
            if target in _MUXF and sink[1] in ("I0", "I1"):
                return "net.lut_to_muxf", 1.0
        if source in _MUXF and target in _MUXF and fanout == 1:
            return "net.lut_to_muxf", 1.0
        if (source == "DSP48E2" and target == "DSP48E2" and driver[1] in _DSP_CASCADE_OUT):
            return "net.dsp_cascade", 1.0
        return fanout_key(fanout), 1.0

    def _pin_node(self, cell_name, pin):
        """The source of an input pin: (bit, net key, factor, sink), or None for a constant or
        undriven pin."""
        bits = self.cells[cell_name]["connections"].get(pin[0], [])
        bit = bits[pin[1]]
        if isinstance(bit, str) and bit in _CONSTANT or bit not in self.driver:
            return None
        sink = (cell_name, pin[0], pin[1])
        key, factor = self._net_arc(bit, sink)
        return bit, key, factor, sink

    def _build(self):
        for bit, label in self.inputs.items():
            if self.sinks[bit] and self.ports:
                self.launches[bit] = ("ff.clk_to_q", ("input", label))
        for bit, label in self.outputs.items():
            if bit in self.driver and self.ports:
                key, factor = self._net_arc(bit, ("<port>", label, 0))
                self.captures.append((bit, (key, factor), "ff.setup_d", ("output", label)))
        for name, cell in self.cells.items():
            kind = cell["type"]
            if kind in _IO:
                self._build_io(name, cell)
                continue
            model = _model(name, cell)

            def node(ref, name=name, cell=cell):
                if isinstance(ref, str):
                    return ("dsp", name, ref)
                bits = cell["connections"].get(ref[0], [])
                bit = bits[ref[1]] if ref[1] < len(bits) else "x"
                return None if isinstance(bit, str) else bit

            for ref, key, label in model.launches:
                target = node(ref)
                if target is not None:
                    self.launches[target] = (key, ("cell", name, label))
            for ref, key, label in model.captures:
                if isinstance(ref, str):
                    self.captures.append((("dsp", name, ref), None, key, ("cell", name, label)))
                    continue
                source = self._pin_node(name, ref)
                if source is not None:
                    bit, net_key, factor, _ = source
                    self.captures.append((bit, (net_key, factor), key, ("cell", name, label)))
            for ref_from, ref_to, key, factor in model.arcs:
                target = node(ref_to)
                if target is None:
                    continue
                if isinstance(ref_from, str):
                    self.fanin[target].append((("dsp", name, ref_from), None, key, factor,
                                               name))
                    continue
                source = self._pin_node(name, ref_from)
                if source is not None:
                    bit, net_key, net_factor, _ = source
                    self.fanin[target].append((bit, (net_key, net_factor), key, factor, name))
        # A DSP stage fed by registered and unregistered inputs is both launched and driven
        # combinationally: evaluate() takes the later of the two.

    def _build_io(self, name, cell):
        """IBUF and OBUF: a primary input or output, taken as registered."""
        if not self.ports:
            return
        if cell["type"] == "IBUF":
            bit = cell["connections"]["O"][0]
            source = cell["connections"]["I"][0]
            if not isinstance(bit, str) and self.sinks[bit]:
                self.launches[bit] = ("ff.clk_to_q", ("input", self.inputs.get(source, name)))
        else:
            source = self._pin_node(name, ("I", 0))
            out = cell["connections"]["O"][0]
            if source is not None:
                bit, net_key, factor, _ = source
                self.captures.append((bit, (net_key, factor), "ff.setup_d",
                                      ("output", self.outputs.get(out, name))))

    def _topological_order(self):
        nodes = set(self.fanin) | set(self.launches)
        for arcs in self.fanin.values():
            nodes.update(arc[0] for arc in arcs)
        indegree = {node: 0 for node in nodes}
        fanout = defaultdict(list)
        for target, arcs in self.fanin.items():
            for arc in arcs:
                fanout[arc[0]].append(target)
                indegree[target] += 1
        ready = deque(node for node, count in indegree.items() if count == 0)
        order = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for target in fanout[node]:
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
        if len(order) != len(nodes):
            stuck = sorted({arc[4] for node, count in indegree.items() if count
                            for arc in self.fanin.get(node, [])})
            raise ValueError(f"combinational loop: {len(stuck)} cells on it or behind it, e.g. "
                             f"{', '.join(stuck[:5])}")
        return order

    # Evaluation ------------------------------------------------------------------------------

    def evaluate(self, scenario, target_mhz=TARGET_MHZ):
        """The :class:`ScenarioResult` of ``scenario``."""
        arrival, previous = {}, {}
        for node, (key, label) in self.launches.items():
            arrival[node] = delay(key, scenario)
            previous[node] = ("launch", key, label)
        memo = {}

        def net(arc):
            if arc is None:
                return 0.0
            if arc not in memo:
                memo[arc] = delay(arc[0], scenario) * arc[1]
            return memo[arc]

        for node in self.order:
            best = arrival.get(node)
            for source, net_arc, key, factor, cell in self.fanin.get(node, ()):
                start = arrival.get(source)
                if start is None:
                    continue
                wire = net(net_arc)
                step = delay(key, scenario) * factor if key else 0.0
                time = start + wire + step
                if best is None or time > best:
                    best = time
                    previous[node] = ("arc", source, wire, step, key, cell)
            if best is not None:
                arrival[node] = best
        uncertainty = delay("clock.uncertainty", scenario)
        period = 1000.0 / target_mhz
        worst, failing, endpoints = None, 0, 0
        for node, net_arc, key, label in self.captures:
            start = arrival.get(node)
            if start is None:
                continue
            endpoints += 1
            wire = net(net_arc)
            required = start + wire + delay(key, scenario) + uncertainty
            failing += required > period
            if worst is None or required > worst[0]:
                worst = (required, node, wire, key, label)
        return ScenarioResult(self, scenario, worst, failing, endpoints, arrival, previous,
                              uncertainty)


@dataclass
class ScenarioResult:
    """The outcome of one scenario: the worst path (its period and steps), the number of
    endpoints (and of failing ones at the target clock)."""

    graph: TimingGraph
    scenario: str
    worst: tuple | None
    failing: int
    endpoints: int
    arrival: dict
    previous: dict
    uncertainty: float

    @property
    def period_ns(self):
        """The worst path's period (ns): 0 for a design without register-to-register paths."""
        return self.worst[0] if self.worst else 0.0

    @property
    def fmax_mhz(self):
        return 1000.0 / self.period_ns if self.worst else None

    def _trace(self):
        """The worst path from its start: (node, record, cell name) per step, the start's
        record a launch, the cell name None for a primary input."""
        required, node, wire, key, label = self.worst
        trace = []
        current = node
        while True:
            record = self.previous[current]
            if record[0] == "launch":
                launch_label = record[2]
                trace.append((current, record,
                              launch_label[1] if launch_label[0] == "cell" else None))
                break
            trace.append((current, record, record[5]))
            current = record[1]
        trace.reverse()
        return trace

    def path(self):
        """The worst path as steps from its start point to its endpoint: dicts with the cell
        type (``cell``), the signal driven (``signal``: None inside logic the design does not
        name), the net delay before the cell (``net_ns``), the cell's delay (``cell_ns``; at
        the endpoint its setup time and the clock uncertainty) and the arrival time
        (``arrival_ns``)."""
        if not self.worst:
            return []
        graph = self.graph
        required, node, wire, key, label = self.worst
        steps = []
        for current, record, cell in self._trace():
            arrival = round(self.arrival[current], 3)
            if record[0] == "launch":
                steps.append({"cell": self._launch_cell(record[2]),
                              "signal": self._node_name(current, record[2]),
                              "net_ns": 0.0, "cell_ns": arrival, "arrival_ns": arrival})
            else:
                steps.append({"cell": graph.cells[cell]["type"],
                              "signal": self._node_name(current, None, True),
                              "net_ns": round(record[2], 3), "cell_ns": round(record[3], 3),
                              "arrival_ns": arrival})
        steps.append({"cell": self._end_cell(label), "signal": self._end_name(label),
                      "net_ns": round(wire, 3),
                      "cell_ns": round(delay(key, self.scenario) + self.uncertainty, 3),
                      "arrival_ns": round(required, 3)})
        return steps

    def _launch_cell(self, label):
        return "input" if label[0] == "input" else self.graph.cells[label[1]]["type"]

    def _end_cell(self, label):
        return "output" if label[0] == "output" else self.graph.cells[label[1]]["type"]

    def _node_name(self, node, launch_label=None, inner=False):
        """The name of a node on the path; None for an inner node the design does not name."""
        graph = self.graph
        if isinstance(node, tuple):  # a DSP's internal stage
            label = graph.cell_label(node[1], visible=True)
            return f"{label} ({node[2]})" if label else f"({node[2]})"
        if launch_label and launch_label[0] == "input":
            return launch_label[1]
        return graph.visible_name(node) if inner else graph.bit_name(node)

    def _end_name(self, label):
        if label[0] == "output":
            return label[1]
        graph = self.graph
        cell, pin = label[1], label[2]
        kind = graph.cells[cell]["type"]
        if kind in _FF:
            q = graph.cells[cell]["connections"]["Q"][0]
            name = graph.bit_name(q)
            return name if pin == "D" else f"{name} ({pin})"
        return f"{graph.cell_label(cell)} ({pin})"

    def levels(self):
        """The logic levels of the worst path: LUTs, CARRY8s (a run of Yosys' CARRY4s counts
        half), wide muxes, and the DSP48E2s it starts in, passes through or ends in."""
        counts = {"lut": 0, "carry": 0, "muxf": 0, "dsp": 0}
        if not self.worst:
            return counts
        cells = self.graph.cells
        trace = self._trace()
        carry4_run = 0
        for _, _, cell in trace[1:]:
            kind = cells[cell]["type"]
            if kind == "CARRY4":
                carry4_run += 1
                continue
            counts["carry"] += math.ceil(carry4_run / 2)
            carry4_run = 0
            if kind in _LUTS:
                counts["lut"] += 1
            elif kind == "CARRY8":
                counts["carry"] += 1
            elif kind in _MUXF:
                counts["muxf"] += 1
        counts["carry"] += math.ceil(carry4_run / 2)
        label = self.worst[4]
        dsps = {cell for _, _, cell in trace if cell and cells[cell]["type"] == "DSP48E2"}
        if label[0] == "cell" and cells[label[1]]["type"] == "DSP48E2":
            dsps.add(label[1])
        counts["dsp"] = len(dsps)
        return counts


def analyse(netlist, target_mhz=TARGET_MHZ, ports=True):
    """The :class:`ScenarioResult` of each scenario for ``netlist`` (a :class:`Netlist`);
    ``ports``: whether the primary inputs and outputs start and end paths."""
    graph = TimingGraph(netlist, ports)
    return {scenario: graph.evaluate(scenario, target_mhz) for scenario in SCENARIOS}


def _mhz(result):
    """The Fmax (MHz) of the period as reported (to the picosecond)."""
    return round(1000.0 / round(result.period_ns, 3), 1) if result.worst else None


def timing_summary(netlist, target_mhz=TARGET_MHZ):
    """The timing keys of a report entry (:data:`TIMING_KEYS`) for ``netlist``: the Fmax in
    each scenario, the logic levels, start and end, period and steps of the nominal worst
    path, and the endpoints failing ``target_mhz`` in each scenario."""
    results = analyse(netlist, target_mhz)
    nominal = results["nominal"]
    steps = nominal.path()
    return {
        "fmax_mhz_fast": _mhz(results["fast"]),
        "fmax_mhz_nominal": _mhz(nominal),
        "fmax_mhz_slow": _mhz(results["slow"]),
        "logic_levels": nominal.levels(),
        "critical_path": {
            "start": steps[0]["signal"] if steps else None,
            "end": steps[-1]["signal"] if steps else None,
            "period_ns": {scenario: round(result.period_ns, 3)
                          for scenario, result in results.items()},
            "steps": steps,
        },
        "failing_endpoints": {"target_mhz": target_mhz, "endpoints": nominal.endpoints,
                              **{scenario: result.failing
                                 for scenario, result in results.items()}},
    }
