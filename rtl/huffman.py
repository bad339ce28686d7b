"""The canonical Huffman decoder of the weight cache (docs/architecture.md §5.5).

The stream is cut into interleaved lanes (:mod:`fracbnn_golden.huffman`, "Lanes"): kernel ``j``
of a block is coded in lane ``j % lanes``, each lane a bit stream of its own. A
:class:`HuffmanLane` decodes one lane, one symbol every two cycles: its loop (bit position ->
codeword length -> next bit position) has two register stages, short enough for 250 MHz.
:class:`HuffmanDecoder` runs ``2 N`` lanes side by side and puts their symbols back in order,
``N`` per cycle. :func:`decode_cycles` is its exact timing model. The lane's formal proofs
(k-induction with ``yowasp-sby``: stream rules, reset, symbols = codewords, errors, no hang) are
in ``formal/huffman_decoder.py``.
"""

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.huffman import DEFAULT_MAX_LENGTH, MAX_CODE_LENGTH, CanonicalCode
from fracbnn_golden.kernels import KERNEL_BITS, N_SYMBOLS

from .params import check_positive_int

__all__ = ["HuffmanDecoder", "HuffmanLane", "decode_cycles", "block_words", "lanes_for"]

# Words of a lane's word queue: the two it decodes from and two read ahead.
RING_WORDS = 4
# Words a lane holds before it makes a block's first window (fewer when the block has fewer).
FIRST_WINDOW_WORDS = 3
# Cycles from a lane's first window to its symbol on ``symbols``: window, decode (and ROM read).
LANE_LATENCY = 2


def block_words(skip, bits, word_width):
    """Words a block of ``bits`` bits starting at bit ``skip`` of its first word spans: the
    number a lane consumes for the command, ``ceil((skip + bits) / word_width)``."""
    return -(-(skip + bits) // word_width)


def lanes_for(symbols_per_cycle):
    """Lanes of a :class:`HuffmanDecoder` of ``symbols_per_cycle`` symbols per cycle: two per
    symbol, as each lane decodes a symbol every two cycles."""
    check_positive_int("lanes_for", "symbols_per_cycle", symbols_per_cycle)
    return 2 * symbols_per_cycle


def decode_cycles(count, first_words):
    """Exact cycle, counted from a :class:`HuffmanDecoder` command's transfer on ``cmd`` (cycle
    0), in which its last beat transfers on ``symbols``.

    ``count`` is the command's symbols per lane (at least 1) and ``first_words[l]`` the cycle in
    which lane ``l`` has taken the first ``min(3, words)`` of its words (the command's words are
    taken from cycle 1 on; 0 for a lane that needs none). Conditions: the decoder is idle when
    the command transfers, ``symbols.ready`` is always high and no lane ever waits for a word
    after its first window (see :class:`HuffmanDecoder`). Neither the code lengths nor errors
    change the timing.

    A lane makes its first window in the cycle after it holds the command and those words (the
    command is active from cycle 2), and its first symbol shows :data:`LANE_LATENCY` cycles
    later; then one every two cycles, each taken as soon as its whole group (lanes ``0 .. N-1``
    or ``N .. 2N-1``) shows one, the groups taking turns. So group 0's first beat waits for its
    slowest lane, group 1's for its own (and comes a cycle after group 0's at the earliest), and
    from then on there is one beat per cycle: ``2 * count`` beats, the last one group 1's.
    """
    check_positive_int("decode_cycles", "count", count)
    if len(first_words) < 2 or len(first_words) % 2:
        raise ValueError(f"decode_cycles: need an even number of lanes, at least 2, not "
                         f"{len(first_words)}")
    shows = []
    for lane, cycle in enumerate(first_words):
        if not isinstance(cycle, int) or cycle < 0:
            raise ValueError(f"decode_cycles: lane {lane}: bad word cycle {cycle!r}")
        shows.append(max(2, cycle + 1) + LANE_LATENCY)
    half = len(first_words) // 2
    group0 = max(shows[:half])
    group1 = max(max(shows[half:]), group0 + 1)
    return group1 + 2 * (count - 1)


def _log2(value):
    return (value - 1).bit_length()


def _check_codes(owner, codes, max_length):
    if isinstance(codes, CanonicalCode) or not isinstance(codes, Sequence) or not codes:
        raise TypeError(f"{owner} parameter codes must be a non-empty sequence of "
                        f"CanonicalCode, not {codes!r}")
    check_positive_int(owner, "max_length", max_length)
    if max_length > MAX_CODE_LENGTH:
        raise ValueError(f"{owner} parameter max_length must be at most {MAX_CODE_LENGTH}, not "
                         f"{max_length}")
    for index, code in enumerate(codes):
        if not isinstance(code, CanonicalCode):
            raise TypeError(f"{owner} parameter codes[{index}] must be a CanonicalCode, not "
                            f"{code!r}")
        if code.alphabet_size != N_SYMBOLS:
            raise ValueError(f"{owner} parameter codes[{index}] must be a code over the "
                             f"{N_SYMBOLS} kernel symbols, not {code.alphabet_size}")
        if code.max_length > max_length:
            raise ValueError(f"{owner} parameter codes[{index}] has codes of "
                             f"{code.max_length} bits, longer than max_length={max_length}")


def _check_word_width(owner, word_width, max_length):
    check_positive_int(owner, "word_width", word_width, minimum=2)
    if word_width & (word_width - 1):
        raise ValueError(f"{owner} parameter word_width must be a power of two, not "
                         f"{word_width}")
    if max_length > word_width:
        raise ValueError(f"{owner}: max_length={max_length} must not exceed "
                         f"word_width={word_width} (a window lies in two words)")


class HuffmanLane(wiring.Component):
    """One lane of the Huffman decoder: a block's code stream in, one 9-bit symbol per beat out,
    a symbol every two cycles.

    The code tables are fixed at elaboration: per table the per-length limits (constants) and
    the window ROM (the symbol of the codeword every ``max_length``-bit window starts with,
    ``2 ** max_length`` entries per table, in block RAM).

    Parameters
    ----------
    codes : sequence of fracbnn_golden.huffman.CanonicalCode
        The code tables, over the 512 kernel symbols, code lengths at most ``max_length``.
    word_width : int
        Bits per word of the code stream, a power of two of at least ``max_length``.
    max_length : int
        The longest code the tables may hold.
    max_block_bits : int or None
        The longest block, in bits (default ``max_count * max_length``).
    max_count : int
        The most symbols of a block.

    Members
    -------
    cmd : In(stream.Signature(StructLayout({"table", "skip", "bits", "count"})))
        Decode one block with code table ``table``; the block starts at bit ``skip`` of the
        first word delivered for the command, is ``bits`` bits long and holds ``count`` symbols,
        at least 1 (a command with ``count = 0`` is not allowed).
    words : In(stream.Signature(word_width))
        Words of the code stream: stream bit ``k`` of a block's words is bit
        ``k % word_width`` of word ``k // word_width`` (the golden model's
        :meth:`~fracbnn_golden.huffman.CompressedModel.payload_words` order), codewords most
        significant bit first.
    symbols : Out(stream.Signature(StructLayout({"symbol", "last", "error"})))
        One symbol per beat, in stream order; ``last`` on a command's last beat; ``error`` on
        the beat of the first bad codeword of a command and on every later beat of it.

    Protocol
    --------
    For every command the lane takes exactly ``block_words(skip, bits, word_width)`` words, the
    command's own words, in command order, also when the block is bad (it drops what it did not
    read). Blocks never share a word: a word holding the end of one block and the start of the
    next is sent once for each. The lane takes a command's words only after it has taken the
    command, so a word source may present them early.

    A command gives exactly ``count`` beats, the last with ``last = 1``, whatever the bits.
    Errors are the golden decoder's checks: no codeword matches the bits (invalid code), a
    codeword reaches past the block's ``bits``, or bits are left over after ``count`` symbols
    (flagged on the last beat). From the first error on, the lane stops reading the block and
    its beats carry ``error = 1`` and unspecified symbols, so that an error costs no time and
    never hangs the lane.

    ``cmd.ready`` is high while the one-command register is empty; ``words.ready`` depends only
    on registers (a known command still needs words and the four-word queue has room);
    ``symbols.valid`` and the payload come from registers (the ROM's or the skid register's) and
    hold still while ``ready`` is low.

    Latency
    -------
    The lane takes a command from the cycle after its transfer, makes its first window once it
    holds the command's first ``min(3, words)`` words, and shows the symbol
    :data:`LANE_LATENCY` = 2 cycles after the window (window, then decode and ROM read). Then one
    symbol every two cycles as long as its words are there and ``symbols.ready`` is high; the
    next command's first window follows its last decode directly. :func:`decode_cycles` gives
    the decoder's exact timing.

    Notes
    -----
    The loop is cut in two register stages. *Window*: the ``max_length`` bits at bit ``pos`` of
    the first two queued words (first stream bit as the most significant), with the block's
    remaining bits (capped at ``max_length + 1``) and whether this is the last symbol.
    *Decode*: the window is compared with the left-aligned limit of every length,
    ``(first_code + count) << (max_length - length)``: in a canonical code the codes of each
    length occupy the next interval, so the code length is the first length whose limit the
    bits are below, and no limit at all is an invalid code; ``pos`` moves on by the length and
    the first word leaves the queue when ``pos`` passes it. In the same cycle the window
    addresses the window ROM, whose registered output is the symbol.
    """

    def __init__(self, codes, *, word_width=64, max_length=DEFAULT_MAX_LENGTH,
                 max_block_bits=None, max_count=4096):
        _check_codes("HuffmanLane", codes, max_length)
        _check_word_width("HuffmanLane", word_width, max_length)
        check_positive_int("HuffmanLane", "max_count", max_count)
        if max_block_bits is None:
            max_block_bits = max_count * max_length
        check_positive_int("HuffmanLane", "max_block_bits", max_block_bits)

        self.codes = tuple(codes)
        self.word_width = word_width
        self.max_length = max_length
        self.max_block_bits = max_block_bits
        self.max_count = max_count
        self.max_words = block_words(word_width - 1, max_block_bits, word_width)
        self.limits = [self._limits(code) for code in self.codes]
        self.window_symbols = [symbol for code, limits in zip(self.codes, self.limits)
                               for symbol in self._window_symbols(code, limits)]

        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "table": range(len(self.codes)),
                "skip": range(word_width),
                "bits": range(max_block_bits + 1),
                "count": range(max_count + 1),
            }))),
            "words": In(stream.Signature(word_width)),
            "symbols": Out(stream.Signature(data.StructLayout({
                "symbol": KERNEL_BITS,
                "last": 1,
                "error": 1,
            }))),
        })

    def _limits(self, code):
        """Left-aligned limit of each length 1..max_length (index 0 unused): the bits (MSB
        first, ``max_length`` of them) start a codeword of at most length ``l`` iff they are
        below ``limits[l]``."""
        limits, limit = [0], 0
        for length in range(1, self.max_length + 1):
            if length <= code.max_length:
                end = int(code.first_code[length] + code.counts[length])
                limit = end << (self.max_length - length)
            limits.append(limit)
        return limits

    def _window_symbols(self, code, limits):
        """The symbol of the codeword each ``max_length``-bit window (first stream bit most
        significant) starts with, for every window: the window ROM of one table (0 where the
        window starts with no codeword)."""
        windows = np.arange(1 << self.max_length, dtype=np.int64)
        # The first length whose limit the window is below (max_length + 1: none).
        length = np.searchsorted(np.array(limits[1:], dtype=np.int64), windows, side="right") + 1
        symbols = np.zeros(len(windows), dtype=np.int64)
        for size in range(1, min(code.max_length, self.max_length) + 1):
            chosen = length == size
            ranks = (int(code.first_index[size]) - int(code.first_code[size])
                     + (windows[chosen] >> (self.max_length - size)))
            symbols[chosen] = np.asarray(code.indirection, dtype=np.int64)[ranks]
        return symbols.tolist()

    def elaborate(self, platform):
        m = Module()
        width, length_bits = self.word_width, self.max_length
        out = self.symbols

        # ---- registers ---------------------------------------------------------------------
        # The command register (one command waiting) ...
        pend_valid = Signal()
        pend = Signal.like(self.cmd.payload, name="pend")
        pend_words = Signal(range(self.max_words + 1))
        # ... and the command being decoded.
        active = Signal()
        table = Signal.like(self.cmd.payload.table, name="table")
        pos = Signal(range(width))                        # bit of ring[rp] the window starts at
        bits_left = Signal(range(self.max_block_bits + 1))
        count_left = Signal(range(self.max_count + 1))
        unread = Signal(range(self.max_words + 1))        # its words not yet dropped from the ring
        unread_low = Signal(range(RING_WORDS + 1))        # min(unread, 4), for small sums
        failed = Signal()                                 # it met a bad codeword
        fresh = Signal()                                  # no window of it yet
        # The window stage: the next codeword's bits, the block's bits left (capped) and
        # whether it is the block's last symbol.
        windowed = Signal()
        window = Signal(length_bits)                      # first stream bit most significant
        room = Signal(range(length_bits + 2))
        # The codeword reaches the next word iff the window is at least this: the limit of the
        # length one below ``width - pos`` (0 when one bit is left in the word; beyond every
        # code when the window does not reach the word's end).
        limit_shape = range((1 << length_bits) + 1)
        reach_limit = Signal(limit_shape)
        final = Signal()
        # The word queue.
        ring = [Signal(width, name=f"ring{i}") for i in range(RING_WORDS)]
        rp = Signal(range(RING_WORDS))
        wp = Signal(range(RING_WORDS))
        fill = Signal(range(RING_WORDS + 1))
        # Words due for known commands: an ended command's still to come (to be dropped), the
        # current command's not yet arrived and the waiting command's.
        accept_left = Signal(range(3 * self.max_words + 1))
        discard_left = Signal(range(self.max_words + 1))      # of them, to be dropped
        # ``accept_left != 0`` and ``discard_left != 0``, kept as registers: ``words.ready``
        # and everything a word's arrival changes then start from one LUT.
        accepting = Signal()
        discarding = Signal()
        full = Signal()                                   # fill == RING_WORDS
        # A command with words taken in the last cycle: its words (``pend_words``) are added to
        # ``accept_left`` in this cycle, off the path from ``cmd``'s payload.
        just_taken = Signal()
        # The window ROM's read register (the symbol) and a skid register behind it.
        rom_valid = Signal()
        rom_last = Signal()
        rom_error = Signal()
        skid_valid = Signal()
        skid = Signal(KERNEL_BITS + 2)

        # ---- streams in ----------------------------------------------------------------------
        cmd_in = Signal()
        cmd_words = Signal.like(pend_words)
        m.d.comb += [
            self.cmd.ready.eq(~pend_valid),
            cmd_in.eq(self.cmd.valid & self.cmd.ready),
            cmd_words.eq((self.cmd.payload.skip + self.cmd.payload.bits + width - 1)
                         >> _log2(width)),
        ]
        word_in = Signal()
        m.d.comb += [
            self.words.ready.eq((accepting | just_taken) & (discarding | ~full)),
            word_in.eq(self.words.valid & self.words.ready),
        ]
        advance = Signal()
        m.d.comb += advance.eq(~skid_valid)

        def table_const(values, shape, index):
            """The entry of table ``index`` from per-table constants."""
            if len(values) == 1:
                return Const(values[0], shape)
            return Array(Const(value, shape) for value in values)[index]

        # ---- window stage ------------------------------------------------------------------
        # The window lies in the first two words (or all of the block's words if fewer
        # remain). A block's first window also waits for a third word: a block may start near a
        # word's end, and then the third is read within a few symbols, before the lane's next
        # turn at a word source that serves the lanes in turn. After an error the lane reads
        # nothing more.
        # (The words present, ``min(fill, unread)``, reach ``min(unread, wanted)`` iff ``fill``
        # does: a comparison of small values, with ``unread`` capped in a register.)
        beyond = unread > fill                  # some of the command's words still to come
        present = Mux(beyond, fill, unread_low)
        wanted = Mux(fresh, FIRST_WINDOW_WORDS, 2)
        need = Mux(unread_low < wanted, unread_low, wanted)
        take_window = Signal()
        m.d.comb += take_window.eq(active & ~windowed & (failed | (fill >= need)) & advance)
        # The window's bits in two steps, by byte (``step`` bits) then by bit: two small
        # selections of only the bits a window can reach, about half the LUTs of one shift
        # over the two words.
        step = min(8, width)
        step_bits = _log2(step)
        reach = length_bits + step - 1          # bits from a step boundary a window may use
        first = Array(ring)[rp]
        second = Array(ring)[(rp + 1)[:len(rp)]][:reach - step]
        pair = Cat(first, second)
        coarse = Array(pair[step * index:step * index + reach]
                       for index in range(width // step))[pos[step_bits:]]
        stream_bits = Array(coarse[bit:bit + length_bits] for bit in range(step))[pos[:step_bits]]
        to_word_end = Mux(pos < width - length_bits, length_bits + 1, width - pos)
        with m.If(take_window):
            m.d.sync += [
                windowed.eq(1),
                fresh.eq(0),
                window.eq(Cat(*reversed(list(stream_bits)))),
                room.eq(Mux(bits_left > length_bits, length_bits + 1, bits_left)),
                final.eq(count_left == 1),
                reach_limit.eq(Array(
                    [Const(0, limit_shape)]
                    + [table_const([lim[length] for lim in self.limits], limit_shape, table)
                       for length in range(1, length_bits + 1)])[to_word_end - 1]),
            ]

        # ---- decode stage ------------------------------------------------------------------
        # ``decode`` is ``windowed & advance``, kept as a register (its next value from the
        # next values of both): the stage's many enables hang off one register, not off two
        # nets of high fanout.
        decode = Signal()
        windowed_next = take_window | (windowed & ~decode)
        skid_valid_next = out.valid & ~out.ready
        m.d.sync += decode.eq(windowed_next & ~skid_valid_next)
        below = [window < table_const([lim[length] for lim in self.limits], limit_shape, table)
                 for length in range(1, length_bits + 1)]
        # The first length whose limit the bits are below (0: none, an invalid code).
        length = Signal(range(length_bits + 1))
        for size in reversed(range(1, length_bits + 1)):
            with m.If(below[size - 1]):
                m.d.comb += length.eq(size)
        bad = Signal()
        m.d.comb += bad.eq(~below[-1] | (length > room) | (final & (length != room)))
        advanced = Signal(range(2 * width))
        m.d.comb += advanced.eq(pos + length)
        # The codeword reaches the next word iff it is at least ``width - pos`` bits long: one
        # comparison with a limit chosen in the window stage, off the length's encoding, the
        # adder and a selection among the comparisons.
        reaches_next = window >= reach_limit
        pop = Signal()                          # the window has left the first word
        ending = decode & final
        m.d.comb += pop.eq(decode & ~final & ~failed & below[-1] & reaches_next)
        with m.If(decode):
            m.d.sync += [
                windowed.eq(0),
                count_left.eq(count_left - 1),
                failed.eq(failed | bad),
            ]
            with m.If(~failed):
                m.d.sync += [
                    pos.eq(advanced[:len(pos)]),
                    bits_left.eq(bits_left - length),
                ]

        # ---- the window ROM and the output registers ----------------------------------------
        # The symbol of the window's codeword, read with the window itself as the address in
        # the decode stage: one block RAM (4,096 x 9 bits per table at 12-bit codes) instead of
        # a rank computation (a 13:1 selection and an adder, about 45 LUTs) and a stage.
        m.submodules.window_rom = rom = memory.Memory(shape=KERNEL_BITS,
                                                      depth=len(self.window_symbols),
                                                      init=self.window_symbols,
                                                      attrs={"ram_style": "block"})
        port = rom.read_port()
        m.d.comb += [port.en.eq(decode), port.addr.eq(Cat(window, table))]
        with m.If(advance):
            m.d.sync += [rom_valid.eq(decode), rom_last.eq(final), rom_error.eq(failed | bad)]
        # The skid register keeps a beat not taken while the stages behind it move on, so that
        # ``advance`` is a register and ``symbols.ready`` reaches only the skid register.
        rom_beat = Cat(port.data, rom_last, rom_error)
        with m.If(skid_valid):
            m.d.comb += Cat(out.payload.symbol, out.payload.last, out.payload.error).eq(skid)
            with m.If(out.ready):
                m.d.sync += skid_valid.eq(0)
        with m.Else():
            m.d.comb += Cat(out.payload.symbol, out.payload.last, out.payload.error).eq(rom_beat)
            with m.If(rom_valid & ~out.ready):
                m.d.sync += [skid_valid.eq(1), skid.eq(rom_beat)]
        m.d.comb += out.valid.eq(skid_valid | rom_valid)

        # ---- the word queue -----------------------------------------------------------------
        # At the end of a command its words in the queue are dropped, and its words still to
        # come are discarded as they arrive; one arriving right now enters the queue and is
        # dropped with them (so that the queue's write does not wait for the decode stage).
        # The counters' next values are chosen among sums of registers by the late signals
        # (``pop`` from the decode stage, a word's arrival), not added after them.
        owns_incoming = ~discarding & beyond
        arriving = word_in & owns_incoming
        to_ring = word_in & ~discarding
        waiting = Mux(beyond, 0, fill - unread_low)     # the waiting command's words in the queue
        ending_fill = Mux(to_ring & ~arriving, waiting + 1, waiting)
        fill_next = Mux(to_ring, Mux(pop, fill, fill + 1), Mux(pop, fill - 1, fill))
        ending_rp = Mux(arriving, rp + present + 1, rp + present)
        accept_base = accept_left + Mux(just_taken, pend_words, 0)
        # At a command's end, words of an earlier command are still to be dropped only if the
        # command had no words (it read its own words after them), so the count becomes the
        # words it still awaits if it awaits any. The candidates come from registers in
        # parallel; ``ending``, ``beyond`` and a word's arrival choose.
        discarded = word_in & (discarding | (ending & owns_incoming))
        to_await = ending & beyond
        discard_next = Mux(to_await, Mux(discarded, unread - fill - 1, unread - fill),
                           Mux(discarded, discard_left - 1, discard_left))
        discarding_next = Mux(to_await, Mux(discarded, unread != fill + 1, 1),
                              Mux(discarded, discard_left != 1, discarding))
        m.d.sync += [
            rp.eq(Mux(ending, ending_rp, Mux(pop, rp + 1, rp))),
            wp.eq(Mux(to_ring, wp + 1, wp)),
            fill.eq(Mux(ending, ending_fill, fill_next)),
            full.eq(Mux(ending, ending_fill == RING_WORDS,
                        Mux(to_ring, ~pop & (fill == RING_WORDS - 1), ~pop & full))),
            accept_left.eq(Mux(word_in, accept_base - 1, accept_base)),
            accepting.eq(Mux(word_in, accept_base != 1, accept_base != 0)),
            discard_left.eq(discard_next),
            discarding.eq(discarding_next),
        ]
        # The queue's free slot ``wp`` takes the offered word whether or not it transfers (only
        # a transfer moves ``wp``): the write enable does not wait for ``ready``.
        with m.If(self.words.valid & ~discarding & ~full):
            m.d.sync += Array(ring)[wp].eq(self.words.payload)

        # ---- command flow -----------------------------------------------------------------
        with m.If(cmd_in):
            m.d.sync += [pend.eq(self.cmd.payload), pend_words.eq(cmd_words), pend_valid.eq(1)]
        m.d.sync += just_taken.eq(cmd_in & (cmd_words != 0))
        def low(value):
            return Mux(value > RING_WORDS, RING_WORDS, value)

        with m.If(pop):
            m.d.sync += [unread.eq(unread - 1), unread_low.eq(low(unread - 1))]
        start = pend_valid & (~active | ending)
        with m.If(start):
            m.d.sync += [
                active.eq(1),
                pend_valid.eq(0),
                table.eq(pend.table),
                pos.eq(pend.skip),
                bits_left.eq(pend.bits),
                count_left.eq(pend.count),
                unread.eq(pend_words),
                unread_low.eq(low(pend_words)),
                failed.eq(0),
                fresh.eq(1),
            ]
        with m.Elif(ending):
            m.d.sync += [active.eq(0), unread.eq(0), unread_low.eq(0)]
        return m


class HuffmanDecoder(wiring.Component):
    """Canonical Huffman decoder of laned blocks: ``N`` symbols per cycle from ``2 N`` lanes.

    A block is coded in ``L = 2 N`` interleaved lanes (:func:`lanes_for`; symbol ``j`` of the
    block in lane ``j % L``, :mod:`fracbnn_golden.huffman`), each a bit stream of its own with
    its own word stream. Each lane has a :class:`HuffmanLane`, which decodes a symbol every two
    cycles; lanes ``0 .. N-1`` (group 0) and ``N .. 2N-1`` (group 1) take turns on ``symbols``,
    so a beat holds the block's next ``N`` symbols in order.

    Parameters
    ----------
    codes : sequence of fracbnn_golden.huffman.CanonicalCode
        The code tables, over the 512 kernel symbols, code lengths at most ``max_length``.
    symbols_per_cycle : int
        ``N``: symbols per beat.
    word_width : int
        Bits per word of the code stream, a power of two of at least ``N * max_length`` (what
        keeps a word source that serves the lanes in turn ahead of them, see Latency).
    max_length : int
        The longest code the tables may hold.
    max_block_bits : int or None
        The longest lane of a block, in bits (default ``max_count * max_length``).
    max_count : int
        The most symbols of a lane.

    Members
    -------
    cmd : In(stream.Signature(StructLayout({"table", "count", "lanes"})))
        Decode one block of ``L * count`` symbols (``count`` per lane, at least 1) with code
        table ``table``; ``lanes[l]`` (``skip``, ``bits``) says where lane ``l`` starts in its
        first word and how many bits it has (as :class:`HuffmanLane`'s ``cmd``).
    words : In(stream.Signature(word_width)).array(L)
        ``words[l]``: lane ``l``'s words, as :class:`HuffmanLane`'s ``words``.
    symbols : Out(stream.Signature(StructLayout({"symbol", "last", "error"})))
        ``symbol`` (9 bits x ``N``): the block's next ``N`` symbols in order; ``last`` on the
        command's last beat; ``error`` on its last beat if any lane met a bad codeword (the
        symbols of such a block are unspecified from the bad codeword on).
    error : Out(1)
        Set in the cycle after a beat with ``error = 1`` transfers; it stays set until the cycle
        after the next transfer on ``cmd`` (a command taken in the same cycle as the error beat
        does not clear it) or reset.

    Protocol
    --------
    A command gives exactly ``2 * count`` beats of ``N`` symbols. Each lane takes exactly its
    own words (:class:`HuffmanLane`). ``cmd.ready`` is high while every lane's command
    register is empty; the lanes take their commands together. ``symbols.valid`` is high when
    every lane of the group whose turn it is shows a symbol; the lanes' ``ready`` follow from it
    and ``symbols.ready``.

    Latency
    -------
    A lane's first symbol shows :data:`LANE_LATENCY` cycles after the cycle after it holds the
    command and its first ``min(3, words)`` words; then one every two cycles. Group 0's first
    beat waits for its slowest lane, group 1's for its own, and from then on one beat per cycle
    as long as no lane waits for a word. A word source that serves lane after lane in turn, one
    word a cycle, gives each lane a word every ``L`` cycles, in which it reads at most
    ``L / 2 * max_length <= word_width`` bits, so with four words of queue no lane ever waits
    after its start. :func:`decode_cycles` is the exact model.
    """

    def __init__(self, codes, *, symbols_per_cycle=1, word_width=64,
                 max_length=DEFAULT_MAX_LENGTH, max_block_bits=None, max_count=4096):
        _check_codes("HuffmanDecoder", codes, max_length)
        check_positive_int("HuffmanDecoder", "symbols_per_cycle", symbols_per_cycle)
        _check_word_width("HuffmanDecoder", word_width, max_length)
        if symbols_per_cycle * max_length > word_width:
            raise ValueError(f"HuffmanDecoder: symbols_per_cycle * max_length = "
                             f"{symbols_per_cycle} * {max_length} must not exceed "
                             f"word_width={word_width} (a lane's words would come too slowly)")
        check_positive_int("HuffmanDecoder", "max_count", max_count)
        if max_block_bits is None:
            max_block_bits = max_count * max_length
        check_positive_int("HuffmanDecoder", "max_block_bits", max_block_bits)
        self.codes = tuple(codes)
        self.symbols_per_cycle = symbols_per_cycle
        self.lanes = lanes_for(symbols_per_cycle)
        self.word_width = word_width
        self.max_length = max_length
        self.max_block_bits = max_block_bits
        self.max_count = max_count
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "table": range(len(self.codes)),
                "count": range(max_count + 1),
                "lanes": data.ArrayLayout(data.StructLayout({
                    "skip": range(word_width),
                    "bits": range(max_block_bits + 1),
                }), self.lanes),
            }))),
            "words": In(stream.Signature(word_width)).array(self.lanes),
            "symbols": Out(stream.Signature(data.StructLayout({
                "symbol": data.ArrayLayout(KERNEL_BITS, symbols_per_cycle),
                "last": 1,
                "error": 1,
            }))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, out = self.symbols_per_cycle, self.symbols
        lanes = []
        for index in range(self.lanes):
            lane = HuffmanLane(self.codes, word_width=self.word_width,
                               max_length=self.max_length, max_block_bits=self.max_block_bits,
                               max_count=self.max_count)
            m.submodules[f"lane{index}"] = lane
            wiring.connect(m, wiring.flipped(self.words[index]), lane.words)
            lanes.append(lane)

        # Commands: all lanes take theirs in the same cycle.
        cmd_in = self.cmd.valid & self.cmd.ready
        m.d.comb += self.cmd.ready.eq(_all(lane.cmd.ready for lane in lanes))
        for index, lane in enumerate(lanes):
            m.d.comb += [
                lane.cmd.valid.eq(cmd_in),
                lane.cmd.payload.table.eq(self.cmd.payload.table),
                lane.cmd.payload.count.eq(self.cmd.payload.count),
                lane.cmd.payload.skip.eq(self.cmd.payload.lanes[index].skip),
                lane.cmd.payload.bits.eq(self.cmd.payload.lanes[index].bits),
            ]

        # Symbols: the groups take turns; a beat needs every lane of its group.
        turn = Signal()
        groups = [lanes[:n], lanes[n:]]
        shows = [_all(lane.symbols.valid for lane in group) for group in groups]
        failed = Signal()           # a lane of this command met a bad codeword in an earlier beat
        beat_error = failed | _any(Mux(turn, groups[1][k].symbols.payload.error,
                                       groups[0][k].symbols.payload.error) for k in range(n))
        m.d.comb += [
            out.valid.eq(Mux(turn, shows[1], shows[0])),
            out.payload.last.eq(turn & groups[1][-1].symbols.payload.last),
            out.payload.error.eq(beat_error & out.payload.last),
        ]
        for k in range(n):
            m.d.comb += out.payload.symbol[k].eq(Mux(turn, groups[1][k].symbols.payload.symbol,
                                                     groups[0][k].symbols.payload.symbol))
        beat = out.valid & out.ready
        for group_index, group in enumerate(groups):
            for lane in group:
                m.d.comb += lane.symbols.ready.eq(beat & (turn == group_index))
        with m.If(beat):
            m.d.sync += [turn.eq(~turn), failed.eq(beat_error & ~out.payload.last)]
        error = Signal()
        m.d.comb += self.error.eq(error)
        with m.If(beat & out.payload.error):
            m.d.sync += error.eq(1)
        with m.Elif(cmd_in):
            m.d.sync += error.eq(0)
        return m


def _all(conditions):
    result = Const(1)
    for condition in conditions:
        result = result & condition
    return result


def _any(conditions):
    result = Const(0)
    for condition in conditions:
        result = result | condition
    return result
