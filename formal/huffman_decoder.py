# amaranth: UnusedElaboratable=no
"""Formal checks of :class:`rtl.huffman.HuffmanDecoder` (docs/architecture.md §8.3).

The decoder under proof is small enough for a solver: 4-bit words, codes of at most 2 bits
(symbol :data:`SHORT` = ``0``, :data:`LONG` = ``10``, and ``11`` is no codeword), blocks of at
most 7 bits and 3 symbols, 1 or 2 symbols per cycle. Every input (commands, words, ``ready``,
reset) is free: the solver plays every environment, also one that breaks the stream rules.
:class:`DecoderHarness` holds the assertions; :data:`TASKS` are the proofs ``python -m formal``
runs.

**protocol** (k-induction, an unbounded proof), from any reachable state:

- ready/valid on ``symbols``: a beat offered and not taken stays offered, unchanged;
- after reset the decoder is idle and clean: no beat, ``error`` low, ``cmd.ready`` high, no
  word wanted;
- beat format: ``count <= N``, and ``count == N`` on every beat but a command's last;
- words: the decoder never takes a word no accepted command still needs.

**decoding** (bounded model check from reset, every behaviour of the first ``depth`` cycles):
a scoreboard keeps every accepted command with the words sent for it and checks each beat:

- every symbol is the codeword at the exact next bit position of its block (so one symbol per
  codeword, in order), lies within the block and within the words received, and a command
  gets at most ``count`` symbols;
- a last beat without error ends exactly at the block's end with exactly ``count`` symbols;
- a last beat with error is right: the next bits are no codeword or do not fit the block, or
  all ``count`` symbols came and bits are left over;
- the beats of a command follow its command, and no beat comes without one.

**progress** (bounded): while commands and words are always offered and beats always taken, a
beat transfers at least every :data:`MAX_IDLE_CYCLES` cycles: the decoder does not hang, also
not after errors (whose remaining words it drops).

**cover**: traces exist of a clean block after an error block, and of beats of ``N`` symbols.
"""

import numpy as np
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Const,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)

from fracbnn_golden.huffman import CanonicalCode
from fracbnn_golden.kernels import N_SYMBOLS
from rtl.huffman import HuffmanDecoder

__all__ = ["DecoderHarness", "MAX_IDLE_CYCLES", "TASKS", "Task", "small_code"]

SHORT, LONG = 0x0F0, 0x10F      # codewords 0 and 10
WORD_WIDTH, MAX_LENGTH, MAX_BLOCK_BITS, MAX_COUNT = 4, 2, 7, 3
MAX_IDLE_CYCLES = 8
CHECKS = ("protocol", "decoding", "progress", "cover")


def small_code():
    """The code of the proofs: :data:`SHORT` -> ``0``, :data:`LONG` -> ``10``."""
    lengths = np.zeros(N_SYMBOLS, dtype=np.int64)
    lengths[SHORT], lengths[LONG] = 1, 2
    return CanonicalCode(lengths)


class DecoderHarness(Elaboratable):
    """The decoder with free inputs (:meth:`ports`) and the assertions of ``check`` (one of
    ``protocol``, ``decoding``, ``progress``, ``cover``; see the module documentation)."""

    def __init__(self, symbols_per_cycle, check):
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}, not {check!r}")
        self.check = check
        self.n = symbols_per_cycle
        self.dut = HuffmanDecoder([small_code()], symbols_per_cycle=symbols_per_cycle,
                                  word_width=WORD_WIDTH, max_length=MAX_LENGTH,
                                  max_block_bits=MAX_BLOCK_BITS, max_count=MAX_COUNT)
        self.cmd_valid = Signal()
        self.cmd_payload = Signal(self.dut.cmd.payload.shape())
        self.words_valid = Signal()
        self.words_payload = Signal(WORD_WIDTH)
        self.symbols_ready = Signal()

    def ports(self):
        """The free inputs (besides ``clk`` and ``rst``)."""
        return [self.cmd_valid, Value.cast(self.cmd_payload), self.words_valid,
                self.words_payload, self.symbols_ready]

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        # The decoder's module, elaborated here so that its registers can be named in
        # invariants (white-box: the proofs by induction need a few of them).
        m.submodules.dut = decoder = dut.elaborate(platform)
        decoder._flush()            # close its last If/Elif chain, so that all its statements show
        self.internal = {signal.name: signal for statements in decoder._statements.values()
                         for statement in statements for signal in statement._lhs_signals()}
        m.d.comb += [
            dut.cmd.valid.eq(self.cmd_valid),
            dut.cmd.payload.eq(self.cmd_payload),
            dut.words.valid.eq(self.words_valid),
            dut.words.payload.eq(self.words_payload),
            dut.symbols.ready.eq(self.symbols_ready),
        ]
        if self.check == "protocol":
            self._protocol(m)
        elif self.check == "progress":
            self._progress(m)
        else:
            self._decoding(m)
        return m

    def _transfers(self):
        dut = self.dut
        return (dut.cmd.valid & dut.cmd.ready, dut.words.valid & dut.words.ready,
                dut.symbols.valid & dut.symbols.ready)

    def _protocol(self, m):
        dut, out = self.dut, self.dut.symbols
        cmd_in, word_in, _ = self._transfers()
        # Registers of the last cycle; the domain's reset clears them (so "stalled" means:
        # offered and not taken in the last cycle, and no reset since).
        stalled = Signal()
        held = Signal.like(Value.cast(out.payload))
        after_reset = Signal(init=1, reset_less=True)
        m.d.sync += [
            stalled.eq(out.valid & ~out.ready),
            held.eq(out.payload),
            after_reset.eq(ResetSignal()),
        ]
        with m.If(stalled):
            m.d.comb += Assert(out.valid & (Value.cast(out.payload) == held),
                               "a beat not taken must stay offered, unchanged")
        with m.If(after_reset):
            m.d.comb += Assert(~out.valid & ~dut.error & dut.cmd.ready & ~dut.words.ready,
                               "after reset the decoder must be idle and clean")
        with m.If(out.valid):
            m.d.comb += Assert(out.payload.count <= self.n, "at most N symbols a beat")
            with m.If(~out.payload.last):
                m.d.comb += Assert(out.payload.count == self.n,
                                   "every beat but a command's last carries N symbols")
        # Words owed to accepted commands; a word is only ever taken when one is owed.
        owed = Signal(range(4 * self.dut.max_words + 1))
        command_words = (self.cmd_payload.skip + self.cmd_payload.bits + WORD_WIDTH - 1) \
            // WORD_WIDTH
        m.d.sync += owed.eq(owed + Mux(cmd_in, command_words, 0) - word_in)
        with m.If(word_in):
            m.d.comb += Assert(owed != 0, "a word taken that no command needs")
        m.d.comb += Assert(owed == self.internal["accept_left"], "words due")
        self._queue_invariants(m)

    def _queue_invariants(self, m):
        """How the decoder's word queue relates to its commands (what makes the word check
        inductive): the queue holds the current command's words first, then the waiting
        one's; words still due are the dropped ones (after an error), the current command's
        and the waiting command's not yet arrived."""
        r = self.internal
        fill, unread, present = r["fill"], r["unread"], Signal(range(5), name="present")
        m.d.comb += present.eq(Mux(fill < unread, fill, unread))
        pend = self.dut.cmd.payload.shape()(r["pend"])
        pend_words = (pend.skip + pend.bits + WORD_WIDTH - 1) // WORD_WIDTH
        waiting_in_ring = fill - present
        m.d.comb += [
            Assert(fill <= 4, "queue size"),
            Assert(r["unread"] <= self.dut.max_words, "words of the current command"),
            Assert(r["active"] | (unread == 0), "no words for no command"),
            Assert(~r["active"] | (r["pos"] + r["bits_left"] <= unread * WORD_WIDTH),
                   "the current command's words hold the rest of its block"),
            Assert(r["pend_valid"] | (waiting_in_ring == 0), "words of an unknown command"),
            Assert(~r["pend_valid"] | (r["pend_words"] == pend_words), "the waiting command"),
            Assert(~r["pend_valid"] | (waiting_in_ring <= r["pend_words"]), "its words"),
            Assert((r["discard_left"] == 0) | (fill == 0), "words dropped before others"),
            Assert(((r["rp"] + fill) % 4) == r["wp"], "queue pointers"),
            Assert(r["accept_left"] == r["discard_left"] + (unread - present)
                   + Mux(r["pend_valid"], r["pend_words"] - waiting_in_ring, 0),
                   "words due, by command"),
        ]

    def _progress(self, m):
        out = self.dut.symbols
        m.d.comb += [
            Assume(self.cmd_valid & self.words_valid & self.symbols_ready),
            Assume(~ResetSignal()),
        ]
        idle = Signal(range(MAX_IDLE_CYCLES + 1))
        with m.If(out.valid & out.ready):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != MAX_IDLE_CYCLES):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += Assert(idle < MAX_IDLE_CYCLES, "no beat for too long: hung?")
        self._queue_invariants(m)

    def _decoding(self, m):
        dut, out, n = self.dut, self.dut.symbols, self.n
        cmd_in, word_in, beat = self._transfers()
        command = self.cmd_payload
        max_words = dut.max_words

        # The scoreboard of the command in flight; the environment offers a command only when
        # the last one is done (all its beats out, all its words taken).
        busy = Signal()
        skip = Signal(range(WORD_WIDTH))
        bits = Signal(range(MAX_BLOCK_BITS + 1))
        count = Signal(range(MAX_COUNT + 1))
        need = Signal(range(max_words + 1))
        got = Signal(range(max_words + 1))
        stream = Signal(max_words * WORD_WIDTH)
        emitted = Signal(range(MAX_COUNT + 1))
        emitted_bits = Signal(range(MAX_BLOCK_BITS + 1))
        beats_done = Signal()
        m.d.comb += Assume(~self.cmd_valid | ~busy)
        with m.If(cmd_in):
            m.d.sync += [
                busy.eq(1), skip.eq(command.skip), bits.eq(command.bits),
                count.eq(command.count),
                need.eq((command.skip + command.bits + WORD_WIDTH - 1) // WORD_WIDTH),
                got.eq(0), stream.eq(0), emitted.eq(0), emitted_bits.eq(0), beats_done.eq(0),
            ]
        with m.If(busy & beats_done & (got == need)):
            m.d.sync += busy.eq(0)

        # Words: each must be owed to the command in flight.
        with m.If(word_in):
            m.d.comb += Assert(busy & (got < need), "a word taken that no command needs")
            m.d.sync += got.eq(got + 1)
            with m.Switch(got):
                for index in range(max_words):
                    with m.Case(index):
                        m.d.sync += stream[index * WORD_WIDTH:(index + 1) * WORD_WIDTH].eq(
                            self.words_payload)

        # The beat on offer (checked every cycle it is offered, so also while it waits): each
        # symbol is the codeword at the next bit of the block.
        end = skip + bits
        received = got * WORD_WIDTH

        def bit(position):
            return stream.bit_select(position, 1)

        position = skip + emitted_bits
        beat_bits = Const(0, range(n * MAX_LENGTH + 1))
        with m.If(out.valid):
            m.d.comb += Assert(busy & ~beats_done, "a beat without a command")
            for k in range(n):
                symbol = out.payload.symbol[k]
                is_short, is_long = symbol == SHORT, symbol == LONG
                length = Mux(is_short, 1, 2)
                with m.If(k < out.payload.count):
                    m.d.comb += [
                        Assert(is_short | is_long, "a symbol of no codeword"),
                        Assert(position + length <= end, "a codeword past the block's end"),
                        Assert(position + length <= received, "decoded from unreceived bits"),
                        Assert(emitted + k < count, "more symbols than the count"),
                        Assert(Mux(is_short, bit(position) == 0,
                                   (bit(position) == 1) & (bit(position + 1) == 0)),
                               "a symbol that is not the codeword at its position"),
                    ]
                step = Mux(k < out.payload.count, length, 0)
                position = position + step
                beat_bits = beat_bits + step
            taken = emitted + out.payload.count
            with m.If(out.payload.last):
                complete = taken == count
                with m.If(~out.payload.error):
                    m.d.comb += Assert(complete & (position == end),
                                       "a clean end that is not the block's end")
                with m.Else():
                    no_fit = (position >= end) | ((bit(position) == 1)
                                                  & ((position + 1 >= end)
                                                     | (bit(position + 1) == 1)))
                    m.d.comb += [
                        Assert((~complete & no_fit) | (complete & (position != end)),
                               "an error on a valid block"),
                        # A bad codeword: the bits it was decided on (those within the
                        # block) arrived.
                        Assert(complete | (position >= end) | (position < received),
                               "an error decided on unreceived bits"),
                        Assert(complete | (position + 1 >= end) | (bit(position) == 0)
                               | (position + 1 < received),
                               "an error decided on unreceived bits"),
                    ]
        with m.If(beat):
            m.d.sync += [emitted.eq(taken), emitted_bits.eq(position - skip)]
            with m.If(out.payload.last):
                m.d.sync += beats_done.eq(1)
        self._queue_invariants(m)
        self._decoding_invariants(m, busy, skip, bits, count, need, got, stream, emitted,
                                  emitted_bits, beats_done, beat_bits)
        if self.check == "cover":
            m.d.comb += [
                Cover(beat & (out.payload.count == n) & ~out.payload.last),
                Cover(beat & out.payload.error & (out.payload.count != 0)),
                Cover(beat & out.payload.last & ~out.payload.error & (count == MAX_COUNT)),
            ]

    def _decoding_invariants(self, m, busy, skip, bits, count, need, got, stream, emitted,
                             emitted_bits, beats_done, beat_bits):
        """The decoder's registers in terms of the scoreboard (what makes the decoding checks
        inductive): its command, how far it decoded (the beat on offer included), which words
        its queue holds."""
        r, out = self.internal, self.dut.symbols
        pend = self.dut.cmd.payload.shape()(r["pend"])
        decoded_bits = bits - r["bits_left"]
        decoded = count - r["count_left"]
        popped = (need - r["unread"]).as_unsigned()
        idle = [~r["pend_valid"], ~r["active"], r["fill"] == 0, r["accept_left"] == 0,
                r["discard_left"] == 0, ~r["out_valid"]]
        with m.If(~busy):
            m.d.comb += Assert(_all(idle), "idle between commands")
        with m.If(busy & r["pend_valid"]):
            m.d.comb += Assert(_all([
                ~r["active"], got == 0, r["fill"] == 0, emitted == 0, emitted_bits == 0,
                ~beats_done, ~r["out_valid"], pend.skip == skip, pend.bits == bits,
                pend.count == count, r["accept_left"] == need, r["discard_left"] == 0]),
                "the command waits in the register")
        ring = Array(r[f"ring{i}"] for i in range(4))
        with m.If(busy & r["active"]):
            m.d.comb += Assert(_all([
                ~r["pend_valid"], r["bits_left"] <= bits, r["count_left"] <= count,
                r["unread"] <= need, got >= popped, r["fill"] == got - popped,
                r["pos"] + popped * WORD_WIDTH == skip + decoded_bits,
                r["accept_left"] == need - got, r["discard_left"] == 0, ~beats_done,
                Mux(r["out_valid"], emitted + out.payload.count, emitted) == decoded,
                Mux(r["out_valid"], emitted_bits + beat_bits, emitted_bits) == decoded_bits,
                ~r["out_valid"] | ~out.payload.last,
                ]), "the command being decoded")
            for i in range(4):
                with m.If(i < r["fill"]):
                    m.d.comb += Assert(ring[(r["rp"] + i)[:2]]
                                       == stream.word_select(popped + i, WORD_WIDTH),
                                       "the queue holds the block's next words")
        with m.If(busy & ~r["active"] & ~r["pend_valid"]):
            m.d.comb += Assert(_all([
                r["fill"] == 0, r["unread"] == 0, r["accept_left"] == need - got,
                r["discard_left"] == need - got, r["out_valid"] ^ beats_done,
                ~r["out_valid"] | out.payload.last]), "the command decoded")


def _all(conditions):
    result = Const(1)
    for condition in conditions:
        result = result & condition
    return result


class Task:
    """One sby run: a harness check with ``symbols_per_cycle``, the sby mode and depth."""

    def __init__(self, check, symbols_per_cycle, mode, depth):
        self.check, self.symbols_per_cycle, self.mode, self.depth = (check, symbols_per_cycle,
                                                                     mode, depth)

    @property
    def name(self):
        return f"huffman_{self.check}_n{self.symbols_per_cycle}"

    def harness(self):
        return DecoderHarness(self.symbols_per_cycle, self.check)


TASKS = [
    Task("protocol", 1, "prove", 4),
    Task("protocol", 2, "prove", 4),
    Task("decoding", 1, "prove", 4),
    Task("decoding", 2, "prove", 4),
    Task("progress", 1, "prove", 12),
    Task("progress", 2, "prove", 12),
    Task("cover", 2, "cover", 8),
]
