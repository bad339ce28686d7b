"""cocotb stream (valid/ready) verification components for Amaranth ``lib.stream`` ports.

An Amaranth stream port ``NAME`` becomes the Verilog ports ``NAME__valid``, ``NAME__ready`` and
``NAME__payload`` (the payload flattened to one vector). :class:`StreamSource` drives one,
:class:`StreamSink` receives from one; both can insert random stalls. :class:`Scoreboard`
compares what a sink receives with expected values in order.

Timing: both sides change their outputs just after a rising clock edge and decide whether a
transfer happened in the read-only phase before the next edge, when the combinational
``valid``/``ready`` logic has settled.

For units with one input and one output stream, :class:`StreamBench` bundles clock, reset, a
source, a sink and a scoreboard, and sends and compares payloads as Python values laid out like
the Amaranth payload (:func:`pack`, :func:`unpack`: dicts for structs, lists for arrays).
:func:`start_clock_and_reset` and :func:`pulse_reset` are the start-up and reset of every
testbench.

The stream contract: every stream unit gets the tests ``<unit>_throughput_and_latency`` and
``<unit>_reset_mid_stream`` (:data:`CONTRACT_CHECKS`), made by :func:`stream_contract_tests`
from a :class:`StreamContract`. For fixed-latency pipelines :func:`pipeline_contract` makes the
contract from two random-item functions: :func:`check_pipeline_timing` (one transfer per
cycle at the documented latency) and :func:`check_reset_mid_stream` (resets in the middle of a
stream, then correct results). :func:`register_test` is the generator under it;
:func:`register_tests` makes one cocotb test per (check, unit). :func:`random_mixture` draws
stimulus from weighted kinds of values.
"""

import itertools
import random
from collections import deque
from dataclasses import dataclass

import cocotb
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

__all__ = ["CLOCK_PERIOD_NS", "CONTRACT_CHECKS", "Scoreboard", "StreamBench", "StreamContract",
           "StreamSink", "StreamSource", "check_pipeline_timing", "check_reset_mid_stream",
           "contract_test_names", "pack", "payload_shape", "pipeline_contract", "pulse_reset",
           "queue_item", "quiet_streams", "random_mixture", "register_test", "register_tests",
           "start_clock_and_reset", "stream_contract_tests", "unpack"]

# The testbenches' clock period (simulated cycles are simulated time over it).
CLOCK_PERIOD_NS = 10


# ---- clock and reset ---------------------------------------------------------------------------

async def pulse_reset(clock, reset, cycles=2):
    """Hold ``reset`` high for ``cycles`` rising edges of ``clock``, then release it."""
    reset.value = 1
    await ClockCycles(clock, cycles)
    reset.value = 0


async def start_clock_and_reset(clock, reset, period_ns=CLOCK_PERIOD_NS, cycles=3):
    """Start a clock of ``period_ns`` on ``clock`` with ``reset`` high from time 0, and release
    the reset after ``cycles`` rising edges."""
    reset.value = 1
    cocotb.start_soon(Clock(clock, period_ns, unit="ns").start())
    await pulse_reset(clock, reset, cycles)


# ---- stream ends -------------------------------------------------------------------------------

class _StreamEnd:
    """What both ends of the stream ``prefix`` of ``dut`` share: its three ports, the clock, a
    random generator, one coroutine started by :meth:`start` and stopped (with this end's
    handshake output low) by :meth:`stop`, and the cycle of every transfer in
    ``transfer_cycles`` (cycles counted from :meth:`start`)."""

    def __init__(self, dut, prefix, clock, rng, output):
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._output = self._valid if output == "valid" else self._ready
        self._output.value = 0
        self._clock = clock
        self._rng = rng or random.Random()
        self._task = None
        self.cycle = 0
        self.transfer_cycles = []

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._output.value = 0

    async def _run(self):
        raise NotImplementedError


class StreamSource(_StreamEnd):
    """Drives the stream ``prefix`` of ``dut`` with payloads (integers) queued by :meth:`send`.

    ``idle`` is the probability of holding ``valid`` low for a cycle while data is queued. The
    cycle of every transfer is kept in ``transfer_cycles`` (cycles counted from :meth:`start`,
    like :class:`StreamSink`'s).
    """

    def __init__(self, dut, prefix, clock, *, idle=0.0, rng=None):
        super().__init__(dut, prefix, clock, rng, "valid")
        self.idle = idle
        self._queue = deque()
        self._transferred = False
        self.sent = 0

    def clear(self):
        """Drop the payloads not yet sent (e.g. at a reset)."""
        self._queue.clear()

    def send(self, payload):
        self._queue.append(payload)

    @property
    def pending(self):
        """How many queued payloads have not transferred yet."""
        return len(self._queue)

    async def _run(self):
        presenting = False
        while True:
            await RisingEdge(self._clock)
            self.cycle += 1
            if presenting and self._transferred:
                self._queue.popleft()
                self.sent += 1
            presenting = bool(self._queue) and self._rng.random() >= self.idle
            self._valid.value = int(presenting)
            if presenting:
                self._payload.value = self._queue[0]
            await ReadOnly()
            self._transferred = presenting and bool(self._ready.value)
            if self._transferred:
                self.transfer_cycles.append(self.cycle)


class StreamSink(_StreamEnd):
    """Receives from the stream ``prefix`` of ``dut``; calls ``callback(payload)`` with each
    transferred payload (an integer). ``stall`` is the probability of holding ``ready`` low for a
    cycle. The cycle of every transfer is kept in ``transfer_cycles``, counted from
    :meth:`start`."""

    def __init__(self, dut, prefix, clock, callback, *, stall=0.0, rng=None):
        super().__init__(dut, prefix, clock, rng, "ready")
        self._callback = callback
        self.stall = stall

    async def _run(self):
        while True:
            await RisingEdge(self._clock)
            self.cycle += 1
            ready = self._rng.random() >= self.stall
            self._ready.value = int(ready)
            await ReadOnly()
            if ready and self._valid.value:
                self.transfer_cycles.append(self.cycle)
                self._callback(int(self._payload.value))


class Scoreboard:
    """Checks received items against expected ones, in order.

    ``decode`` turns a received payload into the form of the expected items. Mismatches and
    items nobody expected are recorded; :meth:`check` raises on any of them and on expected
    items that never arrived.
    """

    def __init__(self, decode, log):
        self._decode = decode
        self._log = log
        self.expected = deque()
        self.errors = []
        self.matched = 0

    def expect(self, item):
        self.expected.append(item)

    def clear(self):
        self.expected.clear()

    def receive(self, payload):
        got = self._decode(payload)
        if not self.expected:
            self.errors.append(f"unexpected output {got}")
            self._log.error("unexpected output %s", got)
            return
        want = self.expected.popleft()
        if got != want:
            self.errors.append(f"output {self.matched + len(self.errors)}: got {got}, "
                               f"expected {want}")
            self._log.error("mismatch: got %s, expected %s", got, want)
        else:
            self.matched += 1

    def check(self):
        problems = list(self.errors)
        if self.expected:
            problems.append(f"{len(self.expected)} expected output(s) missing, first "
                            f"{self.expected[0]}")
        assert not problems, "; ".join(problems[:5])


# ---- payload packing and a bench for one-input, one-output stream units ------------------------

def payload_shape(component, port):
    """The payload shape (an Amaranth layout or shape) of the stream port ``port`` of
    ``component``; the component only needs constructing, not elaborating."""
    return component.signature.members[port].signature.members["payload"].shape


def _fields(shape):
    """(key, offset, shape) of the fields of a layout, or None for a plain shape."""
    if isinstance(shape, data.Layout):
        return [(key, field.offset, field.shape) for key, field in shape]
    return None


def pack(shape, value):
    """A payload value as the integer of its flattened bits.

    ``shape`` is an Amaranth layout or shape. A struct layout takes a dict of its fields, an array
    layout a sequence, a plain shape an integer, which must fit (signed shapes take negative
    values); an int is also taken for a layout (its raw bits).
    """
    fields = _fields(shape)
    if fields is None or isinstance(value, int):
        plain = Shape.cast(shape) if fields is None else Shape(data.Layout.cast(shape).size)
        value = int(value)
        if plain.signed:
            low, high = -(1 << (plain.width - 1)), (1 << (plain.width - 1)) - 1
        else:
            low, high = 0, (1 << plain.width) - 1
        if not low <= value <= high:
            raise ValueError(f"{value} does not fit {plain}")
        return value & ((1 << plain.width) - 1)
    if isinstance(shape, data.ArrayLayout) and len(value) != shape.length:
        raise ValueError(f"{len(value)} elements for {shape}")
    bits = 0
    for key, offset, field_shape in fields:
        bits |= pack(field_shape, value[key]) << offset
    return bits


def unpack(shape, bits):
    """The inverse of :func:`pack`: dicts for structs, lists for arrays, ints (signed where the
    shape is) for plain shapes."""
    fields = _fields(shape)
    if fields is None:
        plain = Shape.cast(shape)
        value = bits & ((1 << plain.width) - 1)
        if plain.signed and value >> (plain.width - 1):
            value -= 1 << plain.width
        return value
    items = [(key, unpack(field_shape, bits >> offset)) for key, offset, field_shape in fields]
    if isinstance(shape, data.ArrayLayout):
        return [value for _, value in items]
    return dict(items)


def _forwarded(end, name):
    """A property that reads and writes attribute ``name`` of attribute ``end``."""
    return property(lambda self: getattr(getattr(self, end), name),
                    lambda self, value: setattr(getattr(self, end), name, value),
                    doc=f"``{end}.{name}``")


class StreamBench:
    """A unit with one input stream and one output stream under cocotb: clock, reset, a
    :class:`StreamSource` on ``input``, a :class:`StreamSink` on ``output`` and a
    :class:`Scoreboard` of decoded payloads.

    ``component`` is the Amaranth component the design was made from (an equal one built
    again in the testbench): it gives the payload layouts, so payloads are sent and compared as
    :func:`pack`/:func:`unpack` values. ``input`` and ``output`` name its stream ports; their
    Verilog names start with ``prefix`` (for a unit inside a wrapper that exports the ports of
    several units, e.g. ``prefix="quantizer_"`` for ``quantizer_i__valid``). ``idle`` and
    ``stall`` are the source's valid-gap and the sink's ready-stall probabilities; they can be
    changed at any time. Random choices use one generator seeded from ``seed`` (default:
    cocotb's random seed).
    """

    def __init__(self, dut, component, *, idle=0.0, stall=0.0, seed=None, input="i",
                 output="o", prefix="", clock="clk", reset="rst",
                 period_ns=CLOCK_PERIOD_NS):
        self.dut = dut
        self.clock = getattr(dut, clock)
        self._reset = getattr(dut, reset)
        self._output = prefix + output
        self._period_ns = period_ns
        self.in_shape = payload_shape(component, input)
        self.out_shape = payload_shape(component, output)
        self.rng = random.Random(cocotb.RANDOM_SEED if seed is None else seed)
        self.scoreboard = Scoreboard(lambda bits: unpack(self.out_shape, bits), dut._log)
        self.source = StreamSource(dut, prefix + input, self.clock, idle=idle, rng=self.rng)
        self.sink = StreamSink(dut, prefix + output, self.clock, self.scoreboard.receive,
                               stall=stall, rng=self.rng)

    idle = _forwarded("source", "idle")
    stall = _forwarded("sink", "stall")

    async def start(self):
        """Start the clock, reset, then start the source and the sink."""
        await start_clock_and_reset(self.clock, self._reset, self._period_ns)
        self.source.start()
        self.sink.start()

    async def reset(self, cycles=3):
        await pulse_reset(self.clock, self._reset, cycles)

    def send(self, value):
        """Queue one input payload (a :func:`pack` value of the input layout)."""
        self.source.send(pack(self.in_shape, value))

    def expect(self, value):
        """Queue one expected output payload (an :func:`unpack` value of the output layout)."""
        self.scoreboard.expect(value)

    async def wait_idle(self, timeout_cycles=None):
        """Wait until the source has sent everything and every expected output arrived (or the
        timeout, or a scoreboard error)."""
        limit = timeout_cycles or 1000 + 20 * (self.source.pending
                                               + len(self.scoreboard.expected))
        for _ in range(limit):
            await RisingEdge(self.clock)
            if self.scoreboard.errors:
                break
            if not self.scoreboard.expected and not self.source.pending:
                break

    async def drain(self, settle_cycles=20, timeout_cycles=None):
        """Wait for every expected output, watch ``settle_cycles`` more for outputs nobody
        expected, then check the scoreboard (mismatches, extra and missing outputs)."""
        await self.wait_idle(timeout_cycles)
        for _ in range(settle_cycles):
            await RisingEdge(self.clock)
        self.scoreboard.check()
        self.dut._log.info("%d outputs matched", self.scoreboard.matched)

    async def reset_mid_stream(self, cycles=2):
        """Reset the unit while data is in flight: stop both ends, drop what was queued or
        expected, pulse reset, check that the output is idle, restart both ends."""
        self.source.stop()
        self.sink.stop()
        self.source.clear()
        self.scoreboard.clear()
        await RisingEdge(self.clock)
        await self.reset(cycles)
        await ReadOnly()
        assert not getattr(self.dut, f"{self._output}__valid").value, (
            f"{self._output}.valid is high right after reset")
        await RisingEdge(self.clock)
        self.source.start()
        self.sink.start()


def quiet_streams(dut, component):
    """Drive every stream port of ``component`` (the design's top level) idle: ``valid`` and the
    payload of its input streams and ``ready`` of its output streams low, so the ports a test
    does not use hold defined values (Icarus leaves undriven inputs at ``z``). The ``valid`` of
    an always-valid and the ``ready`` of an always-ready stream are constants, no ports."""
    for path, member in component.signature.members.flatten():
        if not (member.is_signature and isinstance(member.signature, stream.Signature)):
            continue
        # An array of streams is one member; its ports are numbered.
        names = ["__".join(map(str, path + index))
                 for index in itertools.product(*map(range, member.dimensions))]
        for name in names:
            if member.flow == wiring.In:
                if not member.signature.always_valid:
                    getattr(dut, f"{name}__valid").value = 0
                getattr(dut, f"{name}__payload").value = 0
            elif not member.signature.always_ready:
                getattr(dut, f"{name}__ready").value = 0


def random_mixture(rng, *options):
    """One value of a random mixture: ``options`` are ``(bound, make)`` pairs with increasing
    bounds; one ``rng.random()`` draw picks the first option whose bound exceeds it (give the
    last the bound 1) and ``make()`` makes the value."""
    draw = rng.random()
    return next(make for bound, make in options if draw < bound)()


def queue_item(bench, item):
    """Queue one ``(inputs, outputs)`` item: every input payload is sent, every output expected."""
    inputs, outputs = item
    for value in inputs:
        bench.send(value)
    for value in outputs:
        bench.expect(value)


# ---- the stream contract -----------------------------------------------------------------------

async def check_pipeline_timing(bench, items, latency):
    """For a fixed-latency pipeline: ``items`` (``(inputs, outputs)`` items of one input and one
    output each, see :func:`queue_item`) sent without stalls must transfer one per cycle in and
    out, each result ``latency`` cycles after its input."""
    idle, stall = bench.idle, bench.stall
    bench.idle = bench.stall = 0.0
    await bench.drain()
    first_in, first_out = len(bench.source.transfer_cycles), len(bench.sink.transfer_cycles)
    for inputs, outputs in items:
        assert len(inputs) == len(outputs) == 1, "a pipeline item is one input and one output"
        queue_item(bench, (inputs, outputs))
    await bench.drain(settle_cycles=latency + 5)
    ins = bench.source.transfer_cycles[first_in:]
    outs = bench.sink.transfer_cycles[first_out:]
    assert len(ins) == len(outs) == len(items), (len(ins), len(outs), len(items))
    assert ins == list(range(ins[0], ins[0] + len(items))), "input did not take one per cycle"
    assert outs == list(range(outs[0], outs[0] + len(items))), "output did not give one per cycle"
    assert outs[0] - ins[0] == latency, f"latency {outs[0] - ins[0]}, documented {latency}"
    bench.idle, bench.stall = idle, stall


async def check_reset_mid_stream(bench, make_items, *, rounds=3, fill_cycles=None):
    """Reset ``bench``'s unit in the middle of streams, then check that fresh data comes out right.

    ``make_items()`` returns a list of ``(inputs, outputs)`` items (see :func:`queue_item`). Each
    round queues a batch, lets it run a random number of cycles and resets in the middle of it;
    every other round first stalls the output for ``fill_cycles`` cycles (when given) and checks
    that the unit holds a result on its output (``valid`` high under back-pressure) when the
    reset comes. After the rounds a last batch must come out complete and right; outputs of
    the interrupted batches must never appear.
    """
    output_valid = getattr(bench.dut, f"{bench._output}__valid")
    for number in range(rounds):
        for item in make_items():
            queue_item(bench, item)
        await ClockCycles(bench.clock, bench.rng.randint(2, 12))
        if fill_cycles is not None and number % 2 == 1:
            stall, bench.stall = bench.stall, 1.0
            await ClockCycles(bench.clock, fill_cycles)
            await ReadOnly()
            assert output_valid.value, "no output waiting under back-pressure before the reset"
            await RisingEdge(bench.clock)
            bench.stall = stall
        await bench.reset_mid_stream()
    for item in make_items():
        queue_item(bench, item)
    await bench.drain()


# The checks every stream unit gets; its tests are named ``<unit>_<check>``.
CONTRACT_CHECKS = ("throughput_and_latency", "reset_mid_stream")


@dataclass(frozen=True)
class StreamContract:
    """How one unit meets the stream contract: ``throughput(bench)`` checks the transfer rate
    and latency on a started bench without gaps or stalls; ``reset(bench)`` resets the unit in
    the middle of streams on a started bench with input gaps ``idle`` and output stalls
    ``stall`` (probabilities) and checks what follows. Both are coroutine functions; their
    docstrings become the tests'."""

    throughput: object
    reset: object
    idle: float = 0.2
    stall: float = 0.3


def pipeline_contract(timing_item, reset_item=None, *, timing_items=24, reset_items=30):
    """The contract of a fixed-latency pipeline (a bench with a ``latency`` attribute).

    ``timing_item(bench, index)`` and ``reset_item(bench, index)`` (default: ``timing_item``)
    return one random ``(inputs, outputs)`` item of one input and one output. The throughput
    check sends ``timing_items`` of them with :func:`check_pipeline_timing`; the reset check
    makes batches of ``reset_items`` for :func:`check_reset_mid_stream`, holding a result under
    back-pressure every other round (``latency + 6`` stalled cycles before the reset).
    """
    reset_item = reset_item or timing_item

    async def throughput(bench):
        """Without stalls one transfer per cycle in and out, results ``latency`` cycles
        later."""
        items = [timing_item(bench, index) for index in range(timing_items)]
        await check_pipeline_timing(bench, items, bench.latency)

    async def reset(bench):
        """Resets while data is in flight (also with a result held under back-pressure); the
        stream after them comes out complete and right, nothing of the interrupted one
        appears."""
        await check_reset_mid_stream(
            bench, lambda: [reset_item(bench, index) for index in range(reset_items)],
            fill_cycles=bench.latency + 6)

    return StreamContract(throughput, reset)


def _test_name(unit, check):
    return f"{unit}_{check}" if unit else check


def contract_test_names(unit):
    """The names of the stream-contract tests of ``unit``."""
    return [_test_name(unit, check) for check in CONTRACT_CHECKS]


def register_test(namespace, name, check, *args, doc=None):
    """Add the cocotb test ``name`` to ``namespace`` (a test module's ``globals()``): it awaits
    ``check(dut, *args)``; its docstring is ``doc`` or the check's."""
    async def test(dut):
        await check(dut, *args)

    test.__name__ = test.__qualname__ = name
    test.__module__ = namespace["__name__"]
    test.__doc__ = doc or check.__doc__
    namespace[name] = cocotb.test()(test)
    return namespace[name]


def register_tests(namespace, checks, units, name="{unit}_{check}"):
    """One cocotb test per check and unit in ``namespace``: ``check(dut, unit)`` named
    ``name`` formatted with the unit and the check function's name. Tests run check by check,
    each on every unit in turn."""
    for check in checks:
        for unit in units:
            register_test(namespace, name.format(unit=unit, check=check.__name__), check, unit)


def stream_contract_tests(namespace, new_bench, contracts):
    """The stream-contract tests (:data:`CONTRACT_CHECKS`) of the units of a test module.

    ``contracts`` maps each unit name to its :class:`StreamContract`; ``new_bench(dut, unit,
    idle=..., stall=...)`` makes the unit's bench (a :class:`StreamBench`, not started). The
    tests are ``<unit>_throughput_and_latency`` and ``<unit>_reset_mid_stream`` (just the check
    for the unit ``""``), added to ``namespace`` (the module's ``globals()``).
    """
    async def throughput_and_latency(dut, unit):
        bench = new_bench(dut, unit)
        await bench.start()
        await contracts[unit].throughput(bench)

    async def reset_mid_stream(dut, unit):
        contract = contracts[unit]
        bench = new_bench(dut, unit, idle=contract.idle, stall=contract.stall)
        await bench.start()
        await contract.reset(bench)

    for check, part in ((throughput_and_latency, "throughput"), (reset_mid_stream, "reset")):
        for unit, contract in contracts.items():
            register_test(namespace, _test_name(unit, check.__name__), check, unit,
                          doc=getattr(contract, part).__doc__)
