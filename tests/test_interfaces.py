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


@pytest.mark.parametrize("memory, ports", [
    (lambda: WindowMemory(8, [(6, 1), (3, 2)]),
     {"read": WindowMemory.ReadPort, "write": WindowMemory.WritePort}),
    (lambda: FeatureMapMemory(8, [(6, 1), (4, 2)]),
     {"read": FeatureMapMemory.ReadPort, "write": FeatureMapMemory.WritePort}),
])
def test_memory_ports_are_their_signature_classes(memory, ports):
    memory = memory()
    for name, port in ports.items():
        signature = memory.signature.members[name].signature
        assert type(signature) is port.Signature
        assert isinstance(getattr(memory, name), port)
        # Equal to a signature of the same parameters, as amaranth.lib.memory's port signatures.
        assert signature == port.Signature(size=6, groups=2, width=8)
        assert signature != port.Signature(size=6, groups=1, width=8)
        assert (signature.size, signature.groups, signature.width) == (6, 2, 8)
        assert repr(signature) == f"{port.Signature.__qualname__}(size=6, groups=2, width=8)"
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


def _divmod3(value):
    return {"quotient": value // 3, "remainder": value % 3}


def test_window_memory_reads_a_window_after_its_latency():
    size, dut = 6, WindowMemory(8, [(6, 1)])

    async def bench(ctx):
        ctx.set(dut.row_length, 2)
        for y in range(size):
            for x in range(size):
                ctx.set(dut.write.en, 1)
                ctx.set(dut.write.y, _divmod3(y))
                ctx.set(dut.write.x, _divmod3(x))
                ctx.set(dut.write.data, y * size + x)
                await ctx.tick()
        ctx.set(dut.write.en, 0)
        ctx.set(dut.read.en, 1)
        ctx.set(dut.read.y, _divmod3(2))
        ctx.set(dut.read.x, _divmod3(4))
        await ctx.tick()
        ctx.set(dut.read.y, _divmod3(0))             # the next read must not disturb it
        for _ in range(WindowMemory.latency - 1):
            await ctx.tick()
        assert [ctx.get(dut.read.data[tap]) for tap in range(9)] == [
            (2 + ky - 1) * size + 4 + kx - 1 for ky in range(3) for kx in range(3)]

    _simulate(dut, bench)


def test_window_memory_writes_and_reads_parts_of_its_words():
    """Words of 8 bits in two groups, written 2 bits and read 4 bits at a time: each read part
    is the two written parts it holds, of its own word group."""
    size, dut = 3, WindowMemory(8, [(3, 2)], read_width=4, write_width=2)
    assert dut.write.signature.groups == 8 and dut.read.signature.groups == 4

    def written(y, x, group):
        return (y * size + x + group) % 4

    async def bench(ctx):
        ctx.set(dut.row_length, 1)
        ctx.set(dut.write.en, 1)
        for group in range(8):
            for y in range(size):
                for x in range(size):
                    ctx.set(dut.write.y, _divmod3(y))
                    ctx.set(dut.write.x, _divmod3(x))
                    ctx.set(dut.write.group, group)
                    ctx.set(dut.write.data, written(y, x, group))
                    await ctx.tick()
        ctx.set(dut.write.en, 0)
        ctx.set(dut.read.en, 1)
        ctx.set(dut.read.y, _divmod3(1))
        ctx.set(dut.read.x, _divmod3(1))
        for group in range(4):
            ctx.set(dut.read.group, group)
            for _ in range(WindowMemory.latency):
                await ctx.tick()
            assert [ctx.get(dut.read.data[tap]) for tap in range(9)] == [
                written(ky, kx, 2 * group) | written(ky, kx, 2 * group + 1) << 2
                for ky in range(3) for kx in range(3)], group

    _simulate(dut, bench)


@pytest.mark.parametrize("widths, words", [
    ({"read_width": 5}, "read_width=5 must divide width=12 a power of two times"),
    ({"write_width": 4}, "write_width=4 must divide width=12 a power of two times"),
])
def test_window_memory_refuses_parts_that_do_not_split_its_words(widths, words):
    with pytest.raises(ValueError, match=words):
        WindowMemory(12, [(3, 1)], **widths)


def test_feature_map_memory_reads_a_block_after_its_latency():
    size, dut = 4, FeatureMapMemory(8, [(4, 1)])

    async def bench(ctx):
        ctx.set(dut.half_width, size // 2)
        for y in range(size):
            for x in range(size):
                ctx.set(dut.write.en, 1)
                ctx.set(dut.write.y, y)
                ctx.set(dut.write.x, x)
                ctx.set(dut.write.data, y * size + x)
                await ctx.tick()
        ctx.set(dut.write.en, 0)
        ctx.set(dut.read.block_y, 1)
        ctx.set(dut.read.block_x, 0)
        for _ in range(FeatureMapMemory.latency):
            await ctx.tick()
        ctx.set(dut.read.block_y, 0)
        assert [ctx.get(dut.read.data[k]) for k in range(4)] == [
            (2 + k // 2) * size + k % 2 for k in range(4)]

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


def _window_pixel(y, x):
    return {"y": _divmod3(y), "x": _divmod3(x)}


def _block_pixel(y, x):
    return {"y": y, "x": x}


@pytest.mark.parametrize("memory, pixel, read_at", [
    (lambda: WindowMemory(8, [(6, 1)]), _window_pixel, _window_pixel(1, 1)),
    (lambda: FeatureMapMemory(8, [(4, 1)]), _block_pixel, {"block_y": 0, "block_x": 0}),
])
def test_a_read_presented_with_a_write_returns_the_old_word_and_after_it_the_new(
        memory, pixel, read_at):
    """The banks' writes and reads are registered alike: what a read returns depends only on
    the order in which the two were presented."""
    dut = memory()
    length = "row_length" if isinstance(dut, WindowMemory) else "half_width"

    async def bench(ctx):
        ctx.set(getattr(dut, length), 2)
        ctx.set(dut.read.en, 1)
        for key, value in read_at.items():
            ctx.set(getattr(dut.read, key), value)
        observed = []
        for value in (7, 9):
            # Pixel (0, 0): the window at (1, 1) holds it as tap 0, the block at (0, 0) as word 0.
            ctx.set(dut.write.en, 1)
            for key, coordinate in pixel(0, 0).items():
                ctx.set(getattr(dut.write, key), coordinate)
            ctx.set(dut.write.data, value)
            await ctx.tick()
            ctx.set(dut.write.en, 0)
            for _ in range(dut.latency - 1):
                await ctx.tick()
            # The read presented with the write, and the one presented in the cycle after.
            observed.append(ctx.get(dut.read.data[0]))
            await ctx.tick()
            observed.append(ctx.get(dut.read.data[0]))
        assert observed == [0, 7, 7, 9], observed

    _simulate(dut, bench)
