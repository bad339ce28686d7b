"""The canonical Huffman decoder of the weight cache (docs/architecture.md §5.5).

:class:`HuffmanDecoder` turns blocks of the compressed kernel stream of
:mod:`fracbnn_golden.huffman` back into 9-bit kernel symbols, ``symbols_per_cycle`` of them per
cycle. :func:`decode_cycles` is its exact timing model. Its formal proofs (k-induction with
``yowasp-sby``: stream rules, reset, symbols = codewords, errors, no hang) are in
``formal/huffman_decoder.py``.
"""

from collections.abc import Sequence

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.huffman import DEFAULT_MAX_LENGTH, MAX_CODE_LENGTH, CanonicalCode
from fracbnn_golden.kernels import KERNEL_BITS, N_SYMBOLS

from .params import check_positive_int

__all__ = ["HuffmanDecoder", "decode_cycles", "block_words"]

# Words of the decoder's word queue: the two it decodes from and two read ahead (enough that
# neither a block's later words nor the next block's first two ever arrive late, see
# HuffmanDecoder).
RING_WORDS = 4


def block_words(skip, bits, word_width):
    """Words a block of ``bits`` bits starting at bit ``skip`` of its first word spans: the
    number the decoder consumes for the command, ``ceil((skip + bits) / word_width)``."""
    return -(-(skip + bits) // word_width)


def decode_cycles(commands, symbols_per_cycle, word_width=64):
    """Exact cycles :class:`HuffmanDecoder` takes for a sequence of valid blocks.

    ``commands`` is a sequence of ``(skip, bits, count)``, the ``cmd`` payloads. Conditions: the
    first command transfers in cycle 0 to an idle decoder, every later command is offered as
    soon as the decoder can take it, every word is offered as soon as the decoder can take it,
    ``symbols.ready`` is always high, and the blocks are valid (no error). Then the last beat
    of the last command transfers on ``symbols`` in cycle ``decode_cycles(...)``.

    This is a model of the decoder's control at the level of commands, words and beats: a block
    of ``count`` symbols takes ``max(1, ceil(count / N))`` beats in consecutive cycles, and it
    starts once the decoder holds its command and its first ``min(2, words)`` words. The
    decoder's timing does not depend on the code lengths: its word queue is deep enough that a
    block never waits for a word after its first beat, and the next block's first words always
    fit in before the current block's last beat (see :class:`HuffmanDecoder`).
    """
    check_positive_int("decode_cycles", "symbols_per_cycle", symbols_per_cycle)
    check_positive_int("decode_cycles", "word_width", word_width)
    last_word = -1          # cycle the previous word transferred
    last_beat = None        # cycle of the previous command's last beat
    promoted = None         # cycle the previous command moved from the command register
    for index, (skip, bits, count) in enumerate(commands):
        if min(skip, bits, count) < 0 or skip >= word_width:
            raise ValueError(f"command {index}: bad (skip, bits, count) = {(skip, bits, count)}")
        # cmd.ready is high while the command register is empty: it empties the cycle after
        # the previous command moved on; the command's words are taken from the cycle after.
        transfer = 0 if promoted is None else promoted + 1
        words = block_words(skip, bits, word_width)
        firsts = []
        for _ in range(words):
            last_word = max(last_word + 1, transfer + 1)
            firsts.append(last_word)
        # The command moves to the decoding stage once the register holds it and the previous
        # command is in its last beat (or done).
        promoted = transfer + 1 if last_beat is None else max(transfer + 1, last_beat)
        first_beat = promoted + 1
        if words:
            first_beat = max(first_beat, firsts[min(2, words) - 1] + 1)
        beats = max(1, -(-count // symbols_per_cycle))
        last_beat = first_beat + beats - 1
    if last_beat is None:
        return 0
    return last_beat + 1       # the output register: the beat transfers the cycle after


def _log2(value):
    return (value - 1).bit_length()


class HuffmanDecoder(wiring.Component):
    """Canonical Huffman decoder: code-stream blocks in, 9-bit kernel symbols out.

    The code tables are fixed at elaboration: per table the per-length limits and rank offsets
    (constants) and the indirection table (rank -> kernel, a ROM holding all tables one after
    the other).

    Parameters
    ----------
    codes : sequence of fracbnn_golden.huffman.CanonicalCode
        The code tables, over the 512 kernel symbols, code lengths at most ``max_length``.
    symbols_per_cycle : int
        ``N``: symbols decoded per cycle at most.
    word_width : int
        Bits per word of the code stream, a power of two of at least ``N * max_length``.
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
        first word delivered for the command, is ``bits`` bits long and holds ``count`` symbols
        (``count`` may be 0).
    words : In(stream.Signature(word_width))
        Words of the code stream: stream bit ``k`` of a block's words is bit
        ``k % word_width`` of word ``k // word_width`` (the golden model's
        :meth:`~fracbnn_golden.huffman.CompressedModel.payload_words` order), codewords most
        significant bit first.
    symbols : Out(stream.Signature(StructLayout({"symbol", "count", "last", "error"})))
        ``symbol`` (9 bits x ``N``), ``count`` (0..N), ``last``, ``error``:
        ``symbol[0 .. count-1]`` are the next symbols in stream order (entries from ``count``
        on are unspecified).
    error : Out(1)
        Set together with a beat with ``error = 1``; it stays set until the next transfer on
        ``cmd`` (a command taken in the same cycle as the error beat is made does not clear it)
        or reset.

    Protocol
    --------
    For every command the decoder takes exactly
    ``block_words(skip, bits, word_width) = ceil((skip + bits) / word_width)`` words, the
    command's own words, in command order, also when the block ends in an error (it drops the
    rest). Blocks never share a word: a word holding the end of one block and the start of the
    next is sent once for each. The decoder takes a command's words only after it has taken the
    command, so a word source may present them early.

    Every beat on ``symbols`` of a command but its last carries exactly ``N`` symbols; the last
    has ``last = 1`` and 0 to ``N`` symbols. A command always ends with exactly one ``last``
    beat.

    Errors are the golden decoder's checks: no codeword matches the bits (invalid code), a
    codeword reaches past the block's ``bits`` before ``count`` symbols are decoded, or the
    ``count`` symbols end before the block's last bit (bits left over). The error beat is the
    command's last: it carries ``last = 1, error = 1`` and the symbols decoded in that cycle
    before the bad codeword (for left-over bits: the block's last symbols). The decoder then
    drops the command's remaining words and goes on with the next command: it never hangs as
    long as the word source sends the words each command needs.

    ``cmd.ready`` is high while the one-command register is empty; ``words.ready`` depends only
    on registers (a known command still needs words and the four-word queue has room);
    ``symbols.valid`` and the payload come from registers and hold still while ``ready`` is low.

    Latency
    -------
    The decoder takes a command's words from the cycle after the command's transfer, one a
    cycle, and decodes once it holds the first two (or the only one); a beat shows on
    ``symbols`` the cycle after it is decoded. So an idle decoder's first beat shows 3 cycles
    after the command's transfer for a block within one word, 4 cycles for a longer block, when
    the words are there as soon as the decoder takes them. Throughput: one
    beat per cycle, so ``N`` symbols per cycle within a block, and no gap between blocks when
    the next command and its first two words arrive in time (the decoder reads them ahead while
    it decodes the current block). Blocks with few beats cost more than ``count / N`` cycles
    because each command spends one cycle in the command register and the word stream carries
    at most one word per cycle. :func:`decode_cycles` gives the exact cycle count of a block
    sequence.

    Notes
    -----
    Words go into a queue of four; the decoder reads a ``N * max_length``-bit window at bit
    ``pos`` of the first two and decodes up to ``N`` codewords from it in one cycle with ``N``
    chained decoders. Each compares the window's first ``max_length`` bits against the
    left-aligned limit of every length (``(first_code + count) << (max_length - length)``): in a
    canonical code the codes of each length occupy the next interval, so the code length is
    one more than the number of limits the bits are not below, and no limit below at all is an
    invalid code. The next decoder sees the window shifted by that length. Chaining keeps the
    cost linear in ``N`` (``N * max_length`` constant comparators) at the price of a long
    combinational path (``N`` compare-and-shift steps); decoding speculatively at every bit
    offset would shorten the path but needs ``N * max_length`` decoders. Only the lengths are on
    the loop: the ranks (``first_index + bits - first_code``, plus the table's base) address
    ``N`` read ports of the indirection ROM, whose registered outputs are the symbols.
    When the window has passed the first word, it is dropped from the queue; blocks never read
    more than ``N * max_length <= word_width`` bits per cycle, so one word per cycle suffices.
    """

    def __init__(self, codes, *, symbols_per_cycle=1, word_width=64,
                 max_length=DEFAULT_MAX_LENGTH, max_block_bits=None, max_count=4096):
        if isinstance(codes, CanonicalCode) or not isinstance(codes, Sequence) or not codes:
            raise TypeError("HuffmanDecoder parameter codes must be a non-empty sequence of "
                            f"CanonicalCode, not {codes!r}")
        check_positive_int("HuffmanDecoder", "max_length", max_length)
        if max_length > MAX_CODE_LENGTH:
            raise ValueError(f"HuffmanDecoder parameter max_length must be at most "
                             f"{MAX_CODE_LENGTH}, not {max_length}")
        for index, code in enumerate(codes):
            if not isinstance(code, CanonicalCode):
                raise TypeError(f"HuffmanDecoder parameter codes[{index}] must be a "
                                f"CanonicalCode, not {code!r}")
            if code.alphabet_size != N_SYMBOLS:
                raise ValueError(f"HuffmanDecoder parameter codes[{index}] must be a code over "
                                 f"the {N_SYMBOLS} kernel symbols, not {code.alphabet_size}")
            if code.max_length > max_length:
                raise ValueError(f"HuffmanDecoder parameter codes[{index}] has codes of "
                                 f"{code.max_length} bits, longer than max_length={max_length}")
        check_positive_int("HuffmanDecoder", "symbols_per_cycle", symbols_per_cycle)
        check_positive_int("HuffmanDecoder", "word_width", word_width, minimum=2)
        if word_width & (word_width - 1):
            raise ValueError(f"HuffmanDecoder parameter word_width must be a power of two, not "
                             f"{word_width}")
        if symbols_per_cycle * max_length > word_width:
            raise ValueError(f"HuffmanDecoder: symbols_per_cycle * max_length = "
                             f"{symbols_per_cycle} * {max_length} must not exceed "
                             f"word_width={word_width} (the window lies in two words)")
        check_positive_int("HuffmanDecoder", "max_count", max_count)
        if max_block_bits is None:
            max_block_bits = max_count * max_length
        check_positive_int("HuffmanDecoder", "max_block_bits", max_block_bits)

        self.codes = tuple(codes)
        self.symbols_per_cycle = symbols_per_cycle
        self.word_width = word_width
        self.max_length = max_length
        self.max_block_bits = max_block_bits
        self.max_count = max_count
        self.max_words = block_words(word_width - 1, max_block_bits, word_width)
        # The indirection tables one after the other; a power-of-two depth, so that the ranks
        # computed for bits that are no codeword still address the ROM.
        self.table_base = []
        indirection = []
        for code in self.codes:
            self.table_base.append(len(indirection))
            indirection.extend(int(s) for s in code.indirection)
        self.address_bits = max(1, _log2(len(indirection)))
        self.indirection = indirection + [0] * ((1 << self.address_bits) - len(indirection))
        self.limits = [self._limits(code) for code in self.codes]
        self.rank_offsets = [self._rank_offsets(code, base)
                             for code, base in zip(self.codes, self.table_base)]

        n = symbols_per_cycle
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({
                "table": range(len(self.codes)),
                "skip": range(word_width),
                "bits": range(max_block_bits + 1),
                "count": range(max_count + 1),
            }))),
            "words": In(stream.Signature(word_width)),
            "symbols": Out(stream.Signature(data.StructLayout({
                "symbol": data.ArrayLayout(KERNEL_BITS, n),
                "count": range(n + 1),
                "last": 1,
                "error": 1,
            }))),
            "error": Out(1),
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

    def _rank_offsets(self, code, base):
        """ROM address of a codeword of length ``l`` = its ``l`` bits + ``offsets[l]`` (modulo
        the ROM size)."""
        offsets = [0]
        for length in range(1, self.max_length + 1):
            offset = 0
            if length <= code.max_length:
                offset = base + int(code.first_index[length]) - int(code.first_code[length])
            offsets.append(offset % (1 << self.address_bits))
        return offsets

    def elaborate(self, platform):
        m = Module()
        n, width, length_bits = self.symbols_per_cycle, self.word_width, self.max_length
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
        # The word queue.
        ring = [Signal(width, name=f"ring{i}") for i in range(RING_WORDS)]
        rp = Signal(range(RING_WORDS))
        wp = Signal(range(RING_WORDS))
        fill = Signal(range(RING_WORDS + 1))
        # Words due for known commands: after an error, the failed command's rest (up to
        # max_words - 2: it decoded from two) and two whole commands'.
        accept_left = Signal(range(3 * self.max_words + 1))
        discard_left = Signal(range(self.max_words + 1))      # of them, to be dropped
        # The output register (the symbols are the ROM's read registers).
        out_valid = Signal()
        error = Signal()

        # ---- streams in ----------------------------------------------------------------------
        cmd_in = Signal()
        cmd_words = Signal.like(pend_words)
        m.d.comb += [
            self.cmd.ready.eq(~pend_valid),
            cmd_in.eq(self.cmd.valid & self.cmd.ready),
            cmd_words.eq((self.cmd.payload.skip + self.cmd.payload.bits + width - 1)
                         >> _log2(width)),
        ]
        discarding = discard_left != 0
        word_in = Signal()
        m.d.comb += [
            self.words.ready.eq((accept_left != 0) & (discarding | (fill != RING_WORDS))),
            word_in.eq(self.words.valid & self.words.ready),
        ]

        # ---- the beat: up to N codewords from the window ----------------------------------------
        advance = Signal()
        m.d.comb += advance.eq(~out_valid | out.ready)
        first = Array(ring)[rp]
        second = Array(ring)[(rp + 1)[:len(rp)]]
        window = Signal(n * length_bits)
        m.d.comb += window.eq(Cat(first, second).bit_select(pos, n * length_bits))

        def table_const(values, shape):
            """The entry of the command's table from per-table constants."""
            if len(values) == 1:
                return Const(values[0], shape)
            return Array(Const(value, shape) for value in values)[table]

        limits = [table_const([lim[length] for lim in self.limits], range((1 << length_bits) + 1))
                  for length in range(length_bits + 1)]
        address_shape = self.address_bits
        rest = window
        lengths, matches, addresses = [], [], []
        for k in range(n):
            # The codeword's bits, first stream bit as the most significant.
            bits = Cat(*reversed(list(rest[:length_bits])))
            below = [bits < limits[length] for length in range(1, length_bits + 1)]
            match = Signal(name=f"match{k}")
            length = Signal(range(length_bits + 1), name=f"length{k}")
            m.d.comb += [
                match.eq(below[-1]),
                length.eq(Mux(below[-1], 1 + sum(~b for b in below[:-1]), 0)),
            ]
            lengths_0_to_max = range(length_bits + 1)
            prefix = Array(bits >> (length_bits - size) for size in lengths_0_to_max)[length]
            offsets = Array(table_const([per_table[size] for per_table in self.rank_offsets],
                                        address_shape) for size in lengths_0_to_max)[length]
            address = Signal(address_shape, name=f"address{k}")
            m.d.comb += address.eq(prefix + offsets)
            lengths.append(length)
            matches.append(match)
            addresses.append(address)
            if k < n - 1:
                rest = rest.bit_select(length, (n - 1 - k) * length_bits)

        # Symbol k is taken iff every codeword up to it matches and ends within the block.
        taken, consumed_terms = [], []
        good = Const(1)
        total = Const(0)
        for k in range(n):
            total = total + lengths[k]
            good = good & matches[k] & (total <= bits_left)
            take = Signal(name=f"take{k}")
            m.d.comb += take.eq(good & (count_left > k))
            taken.append(take)
            consumed_terms.append(Mux(take, lengths[k], 0))
        took = Signal(range(n + 1))
        consumed = Signal(range(n * length_bits + 1))
        wanted = Signal(range(n + 1))          # min(N, count_left)
        m.d.comb += [
            took.eq(sum(taken)),
            consumed.eq(sum(consumed_terms)),
            wanted.eq(Mux(count_left < n, count_left, n)),
        ]
        bad = took != wanted                    # a wanted codeword failed
        final = count_left <= n                 # no symbols left after this beat
        beat_last = Signal()
        beat_error = Signal()
        m.d.comb += [
            beat_last.eq(bad | final),
            beat_error.eq(bad | (final & (consumed != bits_left))),
        ]

        # The window holds every bit of the block it may read: the two words, or all of the
        # block's words if fewer remain.
        present = Mux(fill < unread, fill, unread)
        need = Mux(unread < 2, unread, 2)
        fire = Signal()
        m.d.comb += fire.eq(active & (present >= need) & advance)
        ending = fire & beat_last

        # ---- the ROM and the output register ----------------------------------------------------
        # In block RAM (Yosys would otherwise build the ROM from LUTs, ~120 per read port).
        m.submodules.indirection = rom = memory.Memory(shape=KERNEL_BITS,
                                                       depth=len(self.indirection),
                                                       init=self.indirection,
                                                       attrs={"ram_style": "block"})
        for k in range(n):
            port = rom.read_port()
            m.d.comb += [port.en.eq(advance), port.addr.eq(addresses[k]),
                         out.payload.symbol[k].eq(port.data)]
        out_count = Signal.like(out.payload.count)
        out_last = Signal()
        out_error = Signal()
        with m.If(advance):
            m.d.sync += [out_valid.eq(fire), out_count.eq(took), out_last.eq(beat_last),
                         out_error.eq(beat_error)]
        m.d.comb += [
            out.valid.eq(out_valid),
            out.payload.count.eq(out_count),
            out.payload.last.eq(out_last),
            out.payload.error.eq(out_error),
            self.error.eq(error),
        ]
        with m.If(fire & beat_error):
            m.d.sync += error.eq(1)
        with m.Elif(cmd_in):
            m.d.sync += error.eq(0)

        # ---- the word queue -----------------------------------------------------------------
        pop = Signal()                          # the window has left the first word
        advanced = Signal(range(2 * width))
        m.d.comb += [
            advanced.eq(pos + consumed),
            pop.eq(fire & ~beat_last & (advanced >= width)),
        ]
        # At the end of a command its words in the queue are dropped, and its words still to
        # come (after an error) are discarded as they arrive; so is one arriving right now.
        dropped = Mux(ending, present, pop)
        owns_incoming = ~discarding & (unread > fill)
        to_ring = word_in & ~discarding & ~(ending & owns_incoming)
        still_to_come = unread - present - (word_in & owns_incoming)
        m.d.sync += [
            rp.eq(rp + dropped),
            wp.eq(wp + to_ring),
            fill.eq(fill - dropped + to_ring),
            accept_left.eq(accept_left + Mux(cmd_in, cmd_words, 0) - word_in),
            discard_left.eq(discard_left - (word_in & discarding)
                            + Mux(ending, still_to_come, 0)),
        ]
        with m.If(to_ring):
            m.d.sync += Array(ring)[wp].eq(self.words.payload)

        # ---- command flow -----------------------------------------------------------------
        with m.If(cmd_in):
            m.d.sync += [pend.eq(self.cmd.payload), pend_words.eq(cmd_words), pend_valid.eq(1)]
        with m.If(fire & ~beat_last):
            m.d.sync += [
                pos.eq(advanced[:len(pos)]),
                bits_left.eq(bits_left - consumed),
                count_left.eq(count_left - took),
                unread.eq(unread - pop),
            ]
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
            ]
        with m.Elif(ending):
            m.d.sync += [active.eq(0), unread.eq(0)]
        return m
