# amaranth: UnusedElaboratable=no
"""The components' interfaces: the memories' and the weight cache's port signatures, their
documented latencies (simulated), the datapath units' payloads with several pixels per
transfer, and the top-level conversion of always-ready streams."""

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rtl.fixedpoint import FM_SHAPE
from rtl.fm_memory import FeatureMapMemory
from rtl.gate import PrecisionGate
from rtl.head import Head
from rtl.interfaces import to_verilog, verilog_ports
from rtl.merge import MergeUnit
from rtl.weight_cache import WeightCache
from rtl.window import WindowMemory
from sim import gtkw


@pytest.mark.parametrize("pixels", [1, 2])
@pytest.mark.parametrize("memory, ports", [
    (lambda pixels: WindowMemory(8, [(6, 1), (3, 2)], pixels=pixels),
     {"read": WindowMemory.ReadPort, "write": WindowMemory.WritePort}),
    (lambda pixels: FeatureMapMemory(8, [(6, 1), (4, 2)], pixels=pixels),
     {"read": FeatureMapMemory.ReadPort, "write": FeatureMapMemory.WritePort}),
])
def test_memory_ports_are_their_signature_classes(memory, ports, pixels):
    memory = memory(pixels)
    for name, port in ports.items():
        signature = memory.signature.members[name].signature
        assert type(signature) is port.Signature
        assert isinstance(getattr(memory, name), port)
        # Equal to a signature of the same parameters, as amaranth.lib.memory's port signatures;
        # a feature-map memory reads one block whatever its pixels per write.
        by_pixels = {} if port is FeatureMapMemory.ReadPort else {"pixels": pixels}
        assert signature == port.Signature(size=6, groups=2, width=8, **by_pixels)
        assert signature != port.Signature(size=6, groups=1, width=8, **by_pixels)
        if by_pixels:
            assert signature != port.Signature(size=6, groups=2, width=8, pixels=3 - pixels)
            assert port.Signature(size=6, groups=2, width=8) == port.Signature(
                size=6, groups=2, width=8, pixels=1)
        assert (signature.size, signature.groups, signature.width) == (6, 2, 8)
        assert repr(signature) == f"{port.Signature.__qualname__}(size=6, groups=2, width=8" + \
            "".join(f", {key}={value}" for key, value in by_pixels.items()) + ")"
    # The memory's side: everything goes in but the read data.
    read = memory.signature.members["read"].signature.members
    assert read["en"].flow == In and read["en"].init == 1 and read["data"].flow == Out
    assert all(member.flow == In for member in memory.signature.members["write"].signature
               .members.values())


def test_weight_cache_read_port_signature():
    signature = WeightCache.ReadPort.Signature(rows=8, row_bits=144, buffers=3)
    assert [(name, member.flow) for name, member in signature.members.items()] == [
        ("buffer", In), ("row", In), ("data", Out)]
    assert signature.members["buffer"].shape == range(3)
    assert signature == WeightCache.ReadPort.Signature(rows=8, row_bits=144, buffers=3)
    assert signature != WeightCache.ReadPort.Signature(rows=8, row_bits=144, buffers=2)
    assert isinstance(signature.create(), WeightCache.ReadPort)
    assert WeightCache.latency == 1


@pytest.mark.parametrize("pixels", [1, 2, 4])
def test_pixels_widen_a_units_lanes_not_its_parameter_row(pixels):
    """``pixels`` pixels of the same channels per transfer: every per-lane field has
    ``pixels * lanes`` elements, the parameter row stays one."""
    lanes, rows = 2, 3
    wide = pixels * lanes

    def payloads(unit):
        return [unit.signature.members[port].signature.members["payload"].shape
                for port in ("i", "o")]

    sums = data.ArrayLayout(signed(9), wide)
    assert payloads(PrecisionGate(lanes, np.zeros((rows, lanes), int), 9, pixels=pixels)) == [
        data.StructLayout({"msb": sums, "row": range(rows)}),
        data.StructLayout({"msb": sums, "gate": wide})]
    assert payloads(MergeUnit(lanes, np.zeros((rows, lanes, 7), int), 9, pixels=pixels)) == [
        data.StructLayout({"msb": sums, "lsb": sums, "gate": wide,
                           "residual": data.ArrayLayout(FM_SHAPE, wide), "row": range(rows)}),
        data.StructLayout({"fm": data.ArrayLayout(FM_SHAPE, wide)})]
    head = Head(np.zeros((3, 4), int), np.zeros(3, int), lanes=lanes, positions=4 * pixels,
                pixels=pixels)
    assert payloads(head) == [data.StructLayout({"fm": data.ArrayLayout(FM_SHAPE, wide)}),
                              data.StructLayout({"logits": data.ArrayLayout(FM_SHAPE, 3)})]


def _simulate(dut, bench):
    simulator = Simulator(dut)
    simulator.add_clock(1e-6)
    simulator.add_testbench(bench)
    simulator.run()


def _divmod(value, divisor):
    return {"quotient": value // divisor, "remainder": value % divisor}


def _nested(value):
    """A read port's data (an array view's value) as nested lists of ints."""
    if isinstance(value, data.Const) and isinstance(value.shape(), data.ArrayLayout):
        return [_nested(value[index]) for index in range(value.shape().length)]
    return int(value)


def _masked(observed, expected):
    """``observed`` with None where ``expected`` has None (taps outside the map)."""
    if isinstance(expected, list):
        return [_masked(got, want) for got, want in zip(observed, expected, strict=True)]
    return None if expected is None else observed


class _Map:
    """A Python reference of one map of ``width``-bit words per (group, y, x), written and read
    by parts of ``write_width`` and ``read_width`` bits (a port's group counts parts)."""

    def __init__(self, size, groups, width, write_width, read_width):
        self.size, self.width = size, width
        self.write_width, self.read_width = write_width, read_width
        self.write_groups = groups * width // write_width
        self.read_groups = groups * width // read_width
        self.words = np.zeros((groups, size, size), dtype=np.int64)

    def write(self, group, y, x, value):
        word, part = divmod(group, self.width // self.write_width)
        shift, mask = part * self.write_width, (1 << self.write_width) - 1
        self.words[word, y, x] = self.words[word, y, x] & ~(mask << shift) | value << shift

    def read(self, group, y, x):
        """The part read at ``(y, x)``, None outside the map."""
        if not (0 <= y < self.size and 0 <= x < self.size):
            return None
        word, part = divmod(group, self.width // self.read_width)
        return int(self.words[word, y, x] >> part * self.read_width
                   & (1 << self.read_width) - 1)

    def writes(self, rng, pixels, shifted):
        """Writes of ``pixels`` pixels along a row, applied to the map: first every (port group,
        pixel) with all enables (pixels outside the map disabled), then every pixel again in a
        random group with random enables (none, one or all), from x = ``pixels - 1`` if
        ``shifted`` (so that with two pixels the second wraps into the next bank word). Each is
        (group, y, x, enable bits, words)."""
        passes = [(group, 0, lambda: [1] * pixels) for group in range(self.write_groups)]
        passes.append((None, pixels - 1 if shifted else 0, lambda: rng.integers(2, size=pixels)))
        writes = []
        for group, start, enables in passes:
            for y in range(self.size):
                for x in range(start, self.size, pixels):
                    at = int(rng.integers(self.write_groups)) if group is None else group
                    en = [bool(bit) and x + pixel < self.size
                          for pixel, bit in enumerate(enables())]
                    values = [int(value) for value in
                              rng.integers(1 << self.write_width, size=pixels)]
                    for pixel in range(pixels):
                        if en[pixel]:
                            self.write(at, y, x + pixel, values[pixel])
                    writes.append((at, y, x, sum(bit << pixel for pixel, bit in enumerate(en)),
                                   values))
        return writes


async def _write_all(ctx, port, writes):
    """Presents ``writes`` (dicts of the write port's inputs), one a cycle."""
    for write in writes:
        for key, value in write.items():
            ctx.set(getattr(port, key), value)
        await ctx.tick()
    ctx.set(port.en, 0)


async def _read_all(ctx, dut, rng, reads):
    """Presents ``reads`` (pairs of a dict of the read port's inputs and the data expected,
    None where it is unspecified) one per enabled cycle, with ``read.en`` low at random (and
    other inputs then), and checks each read's data :attr:`latency` enabled cycles later and
    while the pipeline stands."""
    presented = 0
    while presented < len(reads) + dut.latency - 1:
        enable = presented >= len(reads) or rng.random() < 0.75
        inputs = reads[presented if enable else int(rng.integers(len(reads)))][0] \
            if presented < len(reads) else {}
        ctx.set(dut.read.en, enable)
        for key, value in inputs.items():
            ctx.set(getattr(dut.read, key), value)
        await ctx.tick()
        presented += enable
        if presented >= dut.latency:
            inputs, expected = reads[presented - dut.latency]
            observed = _masked(_nested(ctx.get(dut.read.data)), expected)
            assert observed == expected, (inputs, observed, expected)


WINDOW_WIDTHS = [{}, {"read_width": 4, "write_width": 2}, {"read_width": 2, "write_width": 8}]


@pytest.mark.parametrize("widths", WINDOW_WIDTHS, ids=["words", "read4_write2", "read2"])
@pytest.mark.parametrize("shifted", [False, True], ids=["aligned", "shifted"])
@pytest.mark.parametrize("pixels", [1, 2])
def test_window_memory_reads_every_window_of_maps_written_pixels_at_a_time(
        pixels, shifted, widths):
    """Two maps in turn (their row lengths differ), written through the write port ``pixels``
    at a time (in groups of parts, some pixels not enabled), then the windows at every centre
    of every group read (in parts) through the read port: each window's 9 taps are the map's
    words around it, those inside the map compared."""
    rng = np.random.default_rng(pixels * 10 + shifted + 100 * len(widths))
    maps = [(7, 2), (4, 3)]
    dut = WindowMemory(8, maps, pixels=pixels, **widths)
    columns = pixels + 2

    async def bench(ctx):
        for size, groups in maps:
            reference = _Map(size, groups, 8, widths.get("write_width", 8),
                             widths.get("read_width", 8))
            ctx.set(dut.row_length, -(-size // 3))
            await _write_all(ctx, dut.write, [
                {"en": en, "y": _divmod(y, 3), "x": _divmod(x, columns), "group": group,
                 "data": values}
                for group, y, x, en, values in reference.writes(rng, pixels, shifted)])
            await _read_all(ctx, dut, rng, [
                ({"y": _divmod(y, 3), "x": _divmod(x, columns), "group": group},
                 [[reference.read(group, y + ky - 1, x + pixel + kx - 1)
                   for ky in range(3) for kx in range(3)] for pixel in range(pixels)])
                for group in range(reference.read_groups)
                for y in range(size) for x in range(size)])

    _simulate(dut, bench)


@pytest.mark.parametrize("widths, words", [
    ({"read_width": 5}, "read_width=5 must divide width=12 a power of two times"),
    ({"write_width": 4}, "write_width=4 must divide width=12 a power of two times"),
])
def test_window_memory_refuses_parts_that_do_not_split_its_words(widths, words):
    with pytest.raises(ValueError, match=words):
        WindowMemory(12, [(3, 1)], **widths)


@pytest.mark.parametrize("pixels", [1, 2])
def test_feature_map_memory_reads_every_block_of_maps_written_pixels_at_a_time(pixels):
    """Two maps in turn, written ``pixels`` at a time from even x (some pixels not enabled),
    then every 2x2 block of every group read: its four words are the map's."""
    rng = np.random.default_rng(pixels)
    maps = [(6, 2), (4, 3)]
    dut = FeatureMapMemory(8, maps, pixels=pixels)

    async def bench(ctx):
        for size, groups in maps:
            reference = _Map(size, groups, 8, 8, 8)
            ctx.set(dut.half_width, size // 2)
            await _write_all(ctx, dut.write, [
                {"en": en, "y": y, "x": x, "group": group, "data": values}
                for group, y, x, en, values in reference.writes(rng, pixels, shifted=False)])
            await _read_all(ctx, dut, rng, [
                ({"block_y": block_y, "block_x": block_x, "group": group},
                 [reference.read(group, 2 * block_y + k // 2, 2 * block_x + k % 2)
                  for k in range(4)])
                for group in range(groups)
                for block_y in range(size // 2) for block_x in range(size // 2)])

    _simulate(dut, bench)


class Observed(wiring.Component):
    """An always-ready output stream and an always-valid input stream."""

    def __init__(self):
        super().__init__({
            "events": Out(stream.Signature(data.StructLayout({
                "code": signed(8), "tag": unsigned(3)}), always_ready=True)),
            "level": In(stream.Signature(unsigned(4), always_valid=True)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.events.valid.eq(self.level.payload[0]),
                     self.events.payload.code.eq(self.level.payload),
                     self.level.ready.eq(1)]
        return m


def test_constant_stream_members_are_no_ports_and_no_traces():
    component = Observed()
    ports = verilog_ports(component)
    assert set(ports) == {"events__valid", "events__payload", "level__payload", "level__ready"}
    text = to_verilog(component, name="observed")
    for port in ports:
        assert f" {port};" in text
    # The waveform view shows exactly the ports there are.
    traces = [item for group in gtkw.wave_view(component)
              for item in (group.items if isinstance(group, gtkw.Group) else [group])]
    assert {trace.port for trace in traces} == {"clk", "rst", *ports}
    assert [trace.alias for trace in traces] == [
        "clk", "rst", "events.valid", "events.code", "events.tag", "level.ready",
        "level.payload"]


@pytest.mark.parametrize("pixels", [1, 2])
@pytest.mark.parametrize("memory, write_at, read_at, written", [
    # Pixels (0, 0 ..): the first window at (1, 1) holds them as taps 0 .., the block at (0, 0)
    # as words 0 ...
    (lambda pixels: WindowMemory(8, [(6, 1)], pixels=pixels),
     lambda pixels: {"y": _divmod(0, 3), "x": _divmod(0, pixels + 2)},
     lambda pixels: {"y": _divmod(1, 3), "x": _divmod(1, pixels + 2)},
     lambda data, pixel: data[0][pixel]),
    (lambda pixels: FeatureMapMemory(8, [(4, 1)], pixels=pixels),
     lambda pixels: {"y": 0, "x": 0},
     lambda pixels: {"block_y": 0, "block_x": 0},
     lambda data, pixel: data[pixel]),
])
def test_a_read_presented_with_a_write_returns_the_old_word_and_after_it_the_new(
        memory, write_at, read_at, written, pixels):
    """The banks' writes and reads are registered alike: what a read returns depends only on
    the order in which the two were presented, for each pixel of a write."""
    dut = memory(pixels)
    length = "row_length" if isinstance(dut, WindowMemory) else "half_width"

    async def bench(ctx):
        ctx.set(getattr(dut, length), 2)
        ctx.set(dut.read.en, 1)
        for key, value in read_at(pixels).items():
            ctx.set(getattr(dut.read, key), value)
        for key, value in write_at(pixels).items():
            ctx.set(getattr(dut.write, key), value)
        observed = []
        for value in (7, 9):
            ctx.set(dut.write.en, (1 << pixels) - 1)
            ctx.set(dut.write.data, [value + pixel for pixel in range(pixels)])
            await ctx.tick()
            ctx.set(dut.write.en, 0)
            for _ in range(dut.latency - 1):
                await ctx.tick()
            # The read presented with the write, and the one presented in the cycle after.
            for _ in range(2):
                observed.append([_nested(written(ctx.get(dut.read.data), pixel))
                                 for pixel in range(pixels)])
                await ctx.tick()
        assert observed == [[0] * pixels] + [[value + pixel for pixel in range(pixels)]
                                             for value in (7, 7, 9)], observed

    _simulate(dut, bench)
