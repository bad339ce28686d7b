# amaranth: UnusedElaboratable=no
"""Formal checks of :class:`rtl.huffman.HuffmanLane` (docs/architecture.md §8.3).

The Huffman decoder is ``2 N`` lanes (:class:`rtl.huffman.HuffmanDecoder`), each decoding its
own bit stream; the proofs are about one lane, small enough for a solver: 4-bit words, codes of
at most 2 bits (symbol :data:`SHORT` = ``0``, :data:`LONG` = ``10``, and ``11`` is no codeword),
blocks of at most 7 bits and 3 symbols. Every input (commands, words, ``ready``, reset) is free:
the solver plays every environment, also one that breaks the stream rules, except that a
command holds at least one symbol (the lane's contract). :class:`DecoderHarness` holds the
assertions; :data:`TASKS` are the proofs ``python -m formal`` runs. How the decoder's lanes are
put back in order is checked by simulation (``tests/test_huffman_rtl.py``, the weight cache's
and the accelerator's tests).

**protocol** (k-induction, an unbounded proof), from any reachable state:

- ready/valid on ``symbols``: a beat offered and not taken stays offered, unchanged;
- after reset the lane is idle and clean: no beat, ``cmd.ready`` high, no word wanted;
- words: the lane never takes a word no accepted command still needs.

**decoding** (k-induction): a scoreboard keeps every accepted command with the words sent for
it and checks each beat:

- a beat without ``error`` carries the codeword at the exact next bit position of its block
  (so one symbol per codeword, in order), within the block and within the words received;
- a command gets exactly ``count`` beats, the last one with ``last``; a last beat without
  error ends exactly at the block's end;
- the first beat with ``error`` is right: the next bits are no codeword or do not fit the
  block, or it is the last symbol and its codeword does not end at the block's end; and it
  was decided on received bits; every later beat of the command carries ``error`` too;
- the beats of a command follow its command, and no beat comes without one.

**progress** (k-induction): while commands and words are always offered and beats always
taken, a beat transfers at least every :data:`MAX_IDLE_CYCLES` cycles: the lane does not hang,
also not after errors (whose remaining words it drops).

**cover**: traces exist of a clean block after an error block, and of a block's last beat.
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
from rtl.huffman import RING_WORDS, HuffmanLane

__all__ = ["DecoderHarness", "MAX_IDLE_CYCLES", "TASKS", "Task", "small_code"]

SHORT, LONG = 0x0F0, 0x10F      # codewords 0 and 10
WORD_WIDTH, MAX_LENGTH, MAX_BLOCK_BITS, MAX_COUNT = 4, 2, 7, 3
MAX_IDLE_CYCLES = 10
CHECKS = ("protocol", "decoding", "progress", "cover")


def small_code():
    """The code of the proofs: :data:`SHORT` -> ``0``, :data:`LONG` -> ``10``."""
    lengths = np.zeros(N_SYMBOLS, dtype=np.int64)
    lengths[SHORT], lengths[LONG] = 1, 2
    return CanonicalCode(lengths)


class DecoderHarness(Elaboratable):
    """The lane with free inputs (:meth:`ports`) and the assertions of ``check`` (one of
    ``protocol``, ``decoding``, ``progress``, ``cover``; see the module documentation)."""

    def __init__(self, check):
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}, not {check!r}")
        self.check = check
        self.dut = HuffmanLane([small_code()], word_width=WORD_WIDTH, max_length=MAX_LENGTH,
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
        # The lane's module, elaborated here so that its registers can be named in invariants
        # (white-box: the proofs by induction need them), and its ROM's read data.
        m.submodules.dut = lane = dut.elaborate(platform)
        lane._flush()            # close its last If/Elif chain, so that all its statements show
        self.internal = {signal.name: signal for statements in lane._statements.values()
                         for statement in statements for signal in statement._lhs_signals()}
        self.rom_data = lane._named_submodules["window_rom"][0].read_ports[0].data
        command = dut.cmd.payload.shape()(self.cmd_payload)
        m.d.comb += [
            dut.cmd.valid.eq(self.cmd_valid),
            dut.cmd.payload.eq(self.cmd_payload),
            dut.words.valid.eq(self.words_valid),
            dut.words.payload.eq(self.words_payload),
            dut.symbols.ready.eq(self.symbols_ready),
            # The lane's contract: a command holds at least one symbol.
            Assume(~self.cmd_valid | (command.count != 0)),
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
            m.d.comb += Assert(~out.valid & dut.cmd.ready & ~dut.words.ready,
                               "after reset the lane must be idle and clean")
        # Words owed to accepted commands; a word is only ever taken when one is owed.
        owed = Signal(range(4 * self.dut.max_words + 1))
        command_words = (self.cmd_payload.skip + self.cmd_payload.bits + WORD_WIDTH - 1) \
            // WORD_WIDTH
        m.d.sync += owed.eq(owed + Mux(cmd_in, command_words, 0) - word_in)
        with m.If(word_in):
            m.d.comb += Assert(owed != 0, "a word taken that no command needs")
        r = self.internal
        m.d.comb += Assert(owed == r["accept_left"] + Mux(r["just_taken"], r["pend_words"], 0),
                           "words due")
        self._queue_invariants(m)

    def _queue_invariants(self, m):
        """How the lane's word queue relates to its commands (what makes the word check
        inductive): the queue holds the current command's words first, then the waiting
        one's; words still due are the dropped ones (after a command ended), the current
        command's and the waiting command's not yet arrived."""
        r = self.internal
        fill, unread, present = r["fill"], r["unread"], Signal(range(5), name="present")
        m.d.comb += present.eq(Mux(fill < unread, fill, unread))
        pend = self.dut.cmd.payload.shape()(r["pend"])
        pend_words = (pend.skip + pend.bits + WORD_WIDTH - 1) // WORD_WIDTH
        waiting_in_ring = fill - present
        # The limit of the length one below the bits to the word's end (capped at
        # MAX_LENGTH + 1), 0 for one bit.
        to_word_end = Mux(r["pos"] < WORD_WIDTH - MAX_LENGTH, MAX_LENGTH + 1,
                          WORD_WIDTH - r["pos"])
        limits = self.dut.limits[0]
        reach_limit = Array([0] + [limits[length] for length in range(1, MAX_LENGTH + 1)])[
            to_word_end - 1]
        m.d.comb += [
            Assert(fill <= RING_WORDS, "queue size"),
            Assert(r["unread"] <= self.dut.max_words, "words of the current command"),
            Assert(r["active"] | (unread == 0), "no words for no command"),
            Assert(~r["active"] | r["failed"]
                   | (r["pos"] + r["bits_left"] <= unread * WORD_WIDTH),
                   "the current command's words hold the rest of its block"),
            Assert(~r["windowed"] | (r["final"] == (r["count_left"] == 1)), "window: final"),
            Assert(~r["windowed"] | r["failed"] | (present >= Mux(unread < 2, unread, 2)),
                   "window: its words are in the queue"),
            Assert(~r["windowed"] | r["failed"]
                   | (r["room"] == Mux(r["bits_left"] > MAX_LENGTH, MAX_LENGTH + 1,
                                       r["bits_left"])), "window: room"),
            Assert(~r["windowed"] | (r["reach_limit"] == reach_limit),
                   "window: the limit at the word's end"),
            Assert(~r["pend_valid"] | (pend.count != 0), "a waiting command has symbols"),
            Assert(~r["active"] | (r["count_left"] != 0), "an active command has symbols left"),
            Assert(r["pend_valid"] | (waiting_in_ring == 0), "words of an unknown command"),
            Assert(~r["pend_valid"] | (r["pend_words"] == pend_words), "the waiting command"),
            Assert(~r["pend_valid"] | (waiting_in_ring <= r["pend_words"]), "its words"),
            Assert((r["discard_left"] == 0) | (fill == 0), "words dropped before others"),
            Assert(r["accepting"] == (r["accept_left"] != 0), "accepting"),
            Assert(r["full"] == (fill == RING_WORDS), "full"),
            Assert(r["unread_low"] == Mux(unread > RING_WORDS, RING_WORDS, unread),
                   "unread, capped"),
            Assert(r["decode"] == (r["windowed"] & ~r["skid_valid"]), "the decode stage's enable"),
            Assert(r["discarding"] == (r["discard_left"] != 0), "discarding"),
            Assert(~r["active"] | (r["discard_left"] == 0) | r["fresh"] | (unread == 0),
                   "a command reads its words after the words dropped before it"),
            Assert(~r["fresh"] | (~r["windowed"] & ~r["failed"]),
                   "a fresh command has no window and no error"),
            Assert(((r["rp"] + fill) % RING_WORDS) == r["wp"], "queue pointers"),
            Assert(r["accept_left"] + Mux(r["just_taken"], r["pend_words"], 0)
                   == r["discard_left"] + (unread - present)
                   + Mux(r["pend_valid"], r["pend_words"] - waiting_in_ring, 0),
                   "words due, by command"),
            Assert(~r["just_taken"] | r["pend_valid"], "a command just taken waits"),
            Assert(~r["windowed"] | r["active"], "a window of no command"),
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
        dut, out = self.dut, self.dut.symbols
        cmd_in, word_in, beat = self._transfers()
        command = dut.cmd.payload.shape()(self.cmd_payload)
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
        erred = Signal()                # an error beat of the command transferred
        beats_done = Signal()
        m.d.comb += Assume(~self.cmd_valid | ~busy)
        with m.If(cmd_in):
            m.d.sync += [
                busy.eq(1), skip.eq(command.skip), bits.eq(command.bits),
                count.eq(command.count),
                need.eq((command.skip + command.bits + WORD_WIDTH - 1) // WORD_WIDTH),
                got.eq(0), stream.eq(0), emitted.eq(0), emitted_bits.eq(0), erred.eq(0),
                beats_done.eq(0),
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

        end = skip + bits
        received = got * WORD_WIDTH

        def bit(position):
            return stream.bit_select(position, 1)

        def length_of(symbol):
            return Mux(symbol == SHORT, 1, 2)

        def is_codeword_at(symbol, position):
            """``symbol`` is a codeword, within the block and the received words, and the
            bits at ``position`` are it."""
            return ((symbol == SHORT) | (symbol == LONG)) \
                & (position + length_of(symbol) <= end) \
                & (position + length_of(symbol) <= received) \
                & Mux(symbol == SHORT, bit(position) == 0,
                      (bit(position) == 1) & (bit(position + 1) == 0))

        def first_error_right(position, last):
            """A first error at ``position`` (the ``last`` symbol or not) is right, and
            decided on received bits."""
            no_fit = (position >= end) | ((bit(position) == 1)
                                          & ((position + 1 >= end) | (bit(position + 1) == 1)))
            length = Mux(bit(position) == 0, 1, 2)
            leftover = last & ~no_fit & (position + length != end)
            decided = (position >= end) | ((position < received)
                                           & ((position + 1 >= end) | (bit(position) == 0)
                                              | (position + 1 < received)))
            return (no_fit | leftover) & decided

        # The beat on offer (checked every cycle it is offered, so also while it waits).
        position = skip + emitted_bits
        symbol = out.payload.symbol
        last_due = emitted + 1 == count
        with m.If(out.valid):
            m.d.comb += [
                Assert(busy & ~beats_done, "a beat without a command"),
                Assert(out.payload.last == last_due, "not exactly count beats, the last marked"),
            ]
            with m.If(~out.payload.error):
                m.d.comb += [
                    Assert(~erred, "a beat without error after an error"),
                    Assert(is_codeword_at(symbol, position),
                           "a symbol that is not the codeword at its position"),
                    Assert(~out.payload.last | (position + length_of(symbol) == end),
                           "a clean end that is not the block's end"),
                ]
            with m.Elif(~erred):
                m.d.comb += Assert(first_error_right(position, last_due),
                                   "an error on a valid block, or on bits not received")
        with m.If(beat):
            m.d.sync += [emitted.eq(emitted + 1), erred.eq(erred | out.payload.error)]
            with m.If(~out.payload.error):
                m.d.sync += emitted_bits.eq(emitted_bits + length_of(symbol))
            with m.If(out.payload.last):
                m.d.sync += beats_done.eq(1)
        self._queue_invariants(m)
        self._decoding_invariants(m, busy, skip, bits, count, need, got, stream, emitted,
                                  emitted_bits, erred, beats_done, is_codeword_at,
                                  first_error_right, length_of)
        if self.check == "cover":
            m.d.comb += [
                Cover(beat & out.payload.last & ~out.payload.error & (count == MAX_COUNT)),
                Cover(beat & out.payload.last & ~out.payload.error & (skip == 3)),
                Cover(beat & out.payload.error),
            ]

    def _decoding_invariants(self, m, busy, skip, bits, count, need, got, stream, emitted,
                             emitted_bits, erred, beats_done, is_codeword_at, first_error_right,
                             length_of):
        """The lane's registers in terms of the scoreboard (what makes the decoding checks
        inductive): its command, how far it decoded (the beats in its ROM and skid registers
        included), which words its queue holds, what its window holds."""
        r = self.internal
        pend = self.dut.cmd.payload.shape()(r["pend"])
        skid_symbol, skid_last, skid_error = r["skid"][:9], r["skid"][9], r["skid"][10]
        rom_symbol = self.rom_data
        # The beats decoded and not yet taken: the skid register's (older), then the ROM's.
        in_flight = r["skid_valid"] + r["rom_valid"]
        skid_bits = Mux(r["skid_valid"] & ~skid_error, length_of(skid_symbol), 0)
        rom_bits = Mux(r["rom_valid"] & ~r["rom_error"], length_of(rom_symbol), 0)
        position = skip + emitted_bits
        end = skip + bits
        idle = [~r["pend_valid"], ~r["just_taken"], ~r["active"], r["fill"] == 0,
                r["accept_left"] == 0,
                r["discard_left"] == 0, ~r["rom_valid"], ~r["skid_valid"], ~r["windowed"]]
        with m.If(~busy):
            m.d.comb += Assert(_all(idle), "idle between commands")
        with m.If(busy & r["pend_valid"]):
            m.d.comb += Assert(_all([
                ~r["active"], got == 0, r["fill"] == 0, emitted == 0, emitted_bits == 0,
                ~erred, ~beats_done, ~r["rom_valid"], ~r["skid_valid"], ~r["windowed"],
                pend.skip == skip, pend.bits == bits, pend.count == count,
                r["accept_left"] + Mux(r["just_taken"], r["pend_words"], 0) == need,
                r["discard_left"] == 0]),
                "the command waits in the register")
        # The beats in flight are right: a clean one is the codeword at its position, the
        # first error one is right, errors stay; only the last is marked last.
        with m.If(busy & ~r["pend_valid"]):
            skid_position = position
            rom_position = position + skid_bits
            rom_index = emitted + r["skid_valid"]
            m.d.comb += [
                Assert(~beats_done | (in_flight == 0), "beats after the last"),
                Assert(emitted + in_flight <= count, "more beats than the count"),
            ]
            with m.If(r["skid_valid"]):
                m.d.comb += Assert(skid_last == (emitted + 1 == count), "skid: last")
                with m.If(~skid_error):
                    m.d.comb += Assert(~erred & is_codeword_at(skid_symbol, skid_position)
                                       & (~skid_last | (skid_position + skid_bits == end)),
                                       "skid: its codeword")
                with m.Elif(~erred):
                    m.d.comb += Assert(first_error_right(skid_position, emitted + 1 == count),
                                       "skid: its error")
            with m.If(r["rom_valid"]):
                erred_before = erred | (r["skid_valid"] & skid_error)
                m.d.comb += Assert(r["rom_last"] == (rom_index + 1 == count), "rom: last")
                with m.If(~r["rom_error"]):
                    m.d.comb += Assert(~erred_before & is_codeword_at(rom_symbol, rom_position)
                                       & (~r["rom_last"] | (rom_position + rom_bits == end)),
                                       "rom: its codeword")
                with m.Elif(~erred_before):
                    m.d.comb += Assert(first_error_right(rom_position, rom_index + 1 == count),
                                       "rom: its error")
        ring = Array(r[f"ring{i}"] for i in range(RING_WORDS))
        popped = (need - r["unread"]).as_unsigned()
        with m.If(busy & r["active"]):
            decoded_bits = emitted_bits + skid_bits + rom_bits
            failed_seen = erred | (r["skid_valid"] & skid_error) \
                | (r["rom_valid"] & r["rom_error"])
            m.d.comb += [
                Assert(~r["pend_valid"], "one command at a time"),
                Assert(r["count_left"] + emitted + in_flight == count, "symbols decoded"),
                Assert(r["failed"] == failed_seen, "failed iff an error beat"),
                Assert(~beats_done, "active after its last beat"),
                Assert(r["accept_left"] == need - got, "words due"),
                Assert(r["discard_left"] == 0, "nothing to drop while decoding"),
                Assert(r["unread"] <= need, "its words"),
                Assert(got >= popped, "popped words arrived"),
                Assert(r["fill"] == got - popped, "the queue holds what arrived"),
                Assert(r["fresh"] == ((emitted + in_flight == 0) & ~r["windowed"]),
                       "a fresh command"),
            ]
            with m.If(~r["failed"]):
                m.d.comb += [
                    Assert(r["pos"] + popped * WORD_WIDTH == skip + decoded_bits,
                           "the position"),
                    Assert(r["bits_left"] + decoded_bits == bits, "the bits left"),
                ]
            for i in range(RING_WORDS):
                with m.If(i < r["fill"]):
                    m.d.comb += Assert(ring[(r["rp"] + i) % RING_WORDS]
                                       == stream.word_select(popped + i, WORD_WIDTH),
                                       "the queue holds the block's next words")
            with m.If(r["windowed"] & ~r["failed"]):
                window_position = skip + decoded_bits
                m.d.comb += [
                    Assert((r["bits_left"] < 1) | (r["window"][1]
                                                   == stream.bit_select(window_position, 1)),
                           "window: first bit"),
                    Assert((r["bits_left"] < 2) | (r["window"][0]
                                                   == stream.bit_select(window_position + 1, 1)),
                           "window: second bit"),
                    Assert(window_position + Mux(r["bits_left"] < 2, r["bits_left"], 2)
                           <= got * WORD_WIDTH, "window: from received words"),
                ]
        with m.If(busy & ~r["active"] & ~r["pend_valid"]):
            m.d.comb += Assert(_all([
                r["fill"] == 0, r["unread"] == 0, r["accept_left"] == need - got,
                r["discard_left"] == need - got, ~r["windowed"], emitted + in_flight == count,
                (in_flight != 0) ^ beats_done]), "the command decoded")


def _all(conditions):
    result = Const(1)
    for condition in conditions:
        result = result & condition
    return result


class Task:
    """One sby run: a harness check, the sby mode and depth."""

    def __init__(self, check, mode, depth):
        self.check, self.mode, self.depth = check, mode, depth

    @property
    def name(self):
        return f"huffman_lane_{self.check}"

    def harness(self):
        return DecoderHarness(self.check)


TASKS = [
    Task("protocol", "prove", 4),
    Task("decoding", "prove", 6),
    Task("progress", "prove", 14),
    Task("cover", "cover", 12),
]
