"""The Huffman-decoding weight cache: compressed kernels in, decoded weight rows out."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.huffman import DEFAULT_MAX_LENGTH, CompressedModel
from fracbnn_golden.kernels import KERNEL_BITS

from .huffman import HuffmanDecoder, decode_cycles
from .interfaces import PortSignature
from .lookup import constant_table

__all__ = ["WeightCache", "decoder_for", "layer_decode_cycles"]


def _word_bits(symbols_per_cycle):
    """Payload word width: 64 bits, or wider when the decoder reads more than a word's worth
    of codewords per cycle (it decodes from a window of ``N * max_length`` bits in two words)."""
    bits = 64
    while bits < symbols_per_cycle * DEFAULT_MAX_LENGTH:
        bits *= 2
    return bits


def _blocks(compressed):
    """``(start, end, count)`` of every block of ``compressed``: its stream bits and symbols."""
    starts, ends, counts, _ = compressed.blocks()
    return list(zip(starts.tolist(), ends.tolist(), counts.tolist()))


def decoder_for(compressed, symbols_per_cycle):
    """The Huffman decoder of a :class:`WeightCache` of ``compressed`` with
    ``symbols_per_cycle``: its code tables (codes of at most
    :data:`fracbnn_golden.huffman.DEFAULT_MAX_LENGTH` bits), payload words and block sizes."""
    blocks = _blocks(compressed)
    return HuffmanDecoder(compressed.tables, symbols_per_cycle=symbols_per_cycle,
                          word_width=_word_bits(symbols_per_cycle),
                          max_length=DEFAULT_MAX_LENGTH,
                          max_block_bits=max(end - start for start, end, _ in blocks),
                          max_count=max(count for _, _, count in blocks))


def layer_decode_cycles(compressed, plans, symbols_per_cycle):
    """:meth:`WeightCache.decode_cycles` of every layer of ``plans``, without building a cache:
    the decoder's exact timing (:func:`rtl.huffman.decode_cycles`) of each layer's blocks."""
    word_bits = _word_bits(symbols_per_cycle)
    blocks, first, cycles = _blocks(compressed), 0, []
    for plan in plans:
        layer = blocks[first:first + plan.groups_out]
        first += plan.groups_out
        # The job's first cycle offers the first command and reads the first word.
        cycles.append(decode_cycles([(start % word_bits, end - start, count)
                                     for start, end, count in layer],
                                    symbols_per_cycle, word_bits) + WeightCache.fill_latency)
    return cycles


def _payload_words(compressed, word_bits):
    """The payload as ``word_bits``-bit memory words (stream bit ``k`` is bit ``k % word_bits``
    of word ``k // word_bits``, the golden model's order)."""
    size = word_bits // 8
    payload = compressed.payload
    return [int.from_bytes(payload[start:start + size], "little")
            for start in range(0, len(payload), size)]


class WeightCache(wiring.Component):
    """Weight rows of the conv engine, decoded from Huffman-compressed kernels on chip.

    The payload sits in a word memory (64-bit words, wider for ``symbols_per_cycle > 5``), the
    code tables in a :class:`rtl.huffman.HuffmanDecoder` (:func:`decoder_for`); decoded rows go
    into two buffers, so that the engine reads one layer while the next is decoded.

    Parameters
    ----------
    compressed : fracbnn_golden.huffman.CompressedModel
        The kernels of the engine's layers in execution order, each layer cut into blocks of
        ``pe`` output channels (``block_kernels = pe * cin``), as made by
        :func:`rtl.tables.compressed_weights`.
    plans : list of rtl.schedule.LayerPlan
        The layers.
    pe, simd_channels : int
        Output and input channels of a row.
    symbols_per_cycle : int
        Kernels the decoder emits per cycle; a divisor of ``simd_channels``.

    Members
    -------
    read : Out(WeightCache.ReadPort.Signature(rows=..., row_bits=...))
        The engine's read port: ``read.buffer`` and ``read.row`` in, the row on ``read.data``.
    filled : Out(2)
        Bit ``b``: buffer ``b`` holds its next layer's rows.
    release : In(2)
        A pulse on bit ``b`` frees buffer ``b``.
    error : Out(1)
        The decoder found an invalid code (only a corrupt memory image can cause it); sticky
        until reset.

    Protocol
    --------
    Rows: layer ``l`` is read from buffer ``l % 2`` as ``groups_out * groups_in`` rows; row
    ``og * groups_in + cb`` holds the kernels of output channels ``og * pe + p`` and input
    channels ``cb * simd + c``: on ``read.data``, bit ``(p * 9 + tap) * simd + c`` is the weight
    of tap ``tap`` (the engine's layout).

    The cache decodes the layers in order 0, 1, ..., the last, 0, 1, ... (one image after
    another), layer ``l`` into buffer ``l % 2`` once that buffer is free. ``filled`` bit ``b``
    says buffer ``b`` holds its next layer's rows; the engine reads them (``read``, one row per
    cycle) and then pulses ``release`` bit ``b``, which frees the buffer for the layer after
    next.

    Latency
    -------
    :attr:`latency` = 1: a row is on ``read.data`` the cycle after its read (the read port is
    always enabled). Decoding a layer takes :meth:`decode_cycles` cycles from its start to
    ``filled``, of which :attr:`fill_latency` = 2 pass after the decoder's last beat.
    """

    latency = 1
    # Cycles from the decoder's last beat of a layer to ``filled``: the writer counts the
    # block, then the job ends.
    fill_latency = 2

    class ReadPort(wiring.PureInterface):
        """The read port of a :class:`WeightCache`, as its :class:`Signature` makes it."""

        class Signature(PortSignature):
            """Signature of a :class:`WeightCache` read port (the cache's side).

            Parameters
            ----------
            rows : int
                Rows per buffer.
            row_bits : int
                Bits per row.

            Members
            -------
            buffer : In(1)
                The buffer read.
            row : In(range(rows))
                The row read.
            data : Out(row_bits)
                The row, :attr:`WeightCache.latency` cycles after its read.
            """

            def __init__(self, *, rows, row_bits):
                super().__init__({
                    "buffer": In(1),
                    "row": In(range(rows)),
                    "data": Out(row_bits),
                }, rows=rows, row_bits=row_bits)

    # What the signature's ``create`` makes (the class exists only once its body ends).
    ReadPort.Signature.interface = ReadPort

    def __init__(self, compressed, plans, *, pe, simd_channels, symbols_per_cycle=4):
        if not isinstance(compressed, CompressedModel):
            raise TypeError(f"compressed must be a CompressedModel, not {compressed!r}")
        if len(compressed.layers) != len(plans):
            raise ValueError(f"compressed holds {len(compressed.layers)} layers, the plan "
                             f"{len(plans)}")
        if not isinstance(symbols_per_cycle, int) or symbols_per_cycle < 1 \
                or simd_channels % symbols_per_cycle:
            raise ValueError(f"symbols_per_cycle must be a positive divisor of simd_channels="
                             f"{simd_channels}, not {symbols_per_cycle!r}")
        for layer, plan in zip(compressed.layers, plans):
            if layer.name != plan.name or tuple(layer.shape) != (plan.cout, plan.cin, 3, 3) \
                    or layer.block_kernels != pe * plan.cin:
                raise ValueError(f"compressed layer {layer.name!r} {list(layer.shape)} (blocks of "
                                 f"{layer.block_kernels}) does not match plan {plan.name!r}: "
                                 f"[{plan.cout}, {plan.cin}, 3, 3] in blocks of {pe} channels")
        self.compressed, self.plans = compressed, plans
        self.pe, self.simd, self.symbols_per_cycle = pe, simd_channels, symbols_per_cycle
        self.rows = max(plan.groups_in * plan.groups_out for plan in plans)
        self.row_bits = pe * KERNEL_BITS * simd_channels
        self._blocks = _blocks(compressed)
        self.word_bits = _word_bits(symbols_per_cycle)
        self._decode_cycles = layer_decode_cycles(compressed, plans, symbols_per_cycle)
        super().__init__({
            "read": Out(self.ReadPort.Signature(rows=self.rows, row_bits=self.row_bits)),
            "filled": Out(2),
            "release": In(2),
            "error": Out(1),
        })

    def decode_cycles(self, layer):
        """Cycles from the start of decoding ``layer`` until ``filled`` shows it."""
        return self._decode_cycles[layer]

    def elaborate(self, platform):
        m = Module()
        plans, pe, simd, n = self.plans, self.pe, self.simd, self.symbols_per_cycle
        word_bits = self.word_bits
        m.submodules.decoder = decoder = decoder_for(self.compressed, n)
        with m.If(decoder.error):
            m.d.sync += self.error.eq(1)

        # ---- the job: decode ``layer`` into buffer ``layer % 2`` --------------------------------
        layer = Signal(range(len(plans)))
        busy = Signal()
        filled = Signal(2)
        m.d.comb += self.filled.eq(filled)
        m.d.sync += filled.eq(filled & ~self.release)
        buffer = layer[0]
        # The blocks are in execution order, a layer's after the previous layer's: commands and
        # words walk them with indices into all blocks, which stop at the layer's end. No lookup
        # of ``layer`` lies on the paths into the decoder's command and the payload's address.
        layer_end = constant_table([sum(p.groups_out for p in plans[:i + 1])
                                    for i in range(len(plans))])
        blocks_end = Signal(range(len(self._blocks) + 1))      # of ``layer``, registered
        m.d.sync += blocks_end.eq(layer_end[layer])
        groups_out = constant_table([p.groups_out for p in plans])
        groups_in = constant_table([p.groups_in for p in plans])
        cin = constant_table([p.cin for p in plans])
        skip = constant_table([s % word_bits for s, _, _ in self._blocks])
        bits = constant_table([e - s for s, e, _ in self._blocks])
        first_word = constant_table([s // word_bits for s, _, _ in self._blocks])
        last_word = constant_table([(e - 1) // word_bits for _, e, _ in self._blocks])
        count = constant_table([c for _, _, c in self._blocks])
        table = constant_table([layer.table for layer in self.compressed.layers])

        # A job starts as soon as its buffer is free, also in the cycle it is being released.
        with m.If(~busy & (~filled.bit_select(buffer, 1) | self.release.bit_select(buffer, 1))):
            m.d.sync += busy.eq(1)

        # ---- commands: one per block of the layer -----------------------------------------------
        cmd_index = Signal.like(blocks_end)
        m.d.comb += [
            decoder.cmd.valid.eq(busy & (cmd_index != blocks_end)),
            decoder.cmd.payload.table.eq(table[layer]),
            decoder.cmd.payload.skip.eq(skip[cmd_index]),
            decoder.cmd.payload.bits.eq(bits[cmd_index]),
            decoder.cmd.payload.count.eq(count[cmd_index]),
        ]
        with m.If(decoder.cmd.valid & decoder.cmd.ready):
            m.d.sync += cmd_index.eq(cmd_index + 1)

        # ---- payload words: each block's words, read ahead as far as the decoder takes them -----
        m.submodules.payload = payload = memory.Memory(
            shape=word_bits, depth=max(1, -(-self.compressed.payload_bits // word_bits)),
            init=_payload_words(self.compressed, word_bits))
        word_port = payload.read_port()
        word_index = Signal.like(blocks_end)
        address = Signal(range(payload.depth + 1))
        started = Signal()            # ``address`` points into block ``word_index``
        has_word = busy & (word_index != blocks_end)
        word_valid = Signal()
        advance = ~word_valid | decoder.words.ready
        m.d.comb += [
            decoder.words.valid.eq(word_valid),
            decoder.words.payload.eq(word_port.data),
            word_port.en.eq(advance),
        ]
        current = Signal.like(address)
        m.d.comb += current.eq(address)
        with m.If(~started):
            m.d.comb += current.eq(first_word[word_index])
        m.d.comb += word_port.addr.eq(current)
        with m.If(advance):
            m.d.sync += word_valid.eq(has_word)
            with m.If(has_word):
                m.d.sync += [address.eq(current + 1), started.eq(1)]
                with m.If(current == last_word[word_index]):
                    m.d.sync += [word_index.eq(word_index + 1), started.eq(0)]

        # ---- decoded kernels -> rows of the buffer ----------------------------------------------
        kernels_per_row = pe * simd
        m.submodules.rows = rows = memory.Memory(
            shape=kernels_per_row * KERNEL_BITS, depth=2 * self.rows, init=[])
        write = rows.write_port(granularity=KERNEL_BITS)
        o = Signal(range(pe))                          # output channel within the block
        c = Signal(range(max(p.cin for p in plans)))   # input channel
        og = Signal(range(max(p.groups_out for p in plans) + 1))   # block being written
        beat = decoder.symbols
        slot = o * simd + c % simd                     # first kernel of the beat in its row
        m.d.comb += [
            beat.ready.eq(1),
            write.addr.eq(buffer * self.rows + og * groups_in[layer] + c // simd),
            write.data.eq(Cat(beat.payload.symbol[k % n] for k in range(kernels_per_row))),
        ]
        with m.If(beat.valid):
            for k in range(kernels_per_row):
                m.d.comb += write.en[k].eq((k // n == slot // n) & (k % n < beat.payload.count))
            m.d.sync += c.eq(c + beat.payload.count)
            with m.If(c + beat.payload.count == cin[layer]):
                m.d.sync += [c.eq(0), o.eq(o + 1)]
            with m.If(beat.payload.last):
                m.d.sync += [o.eq(0), c.eq(0), og.eq(og + 1)]

        # The layer is in once every block's symbols are written and every word was taken (the
        # decoder drains a block's words even when it stops early on an error).
        words_done = (word_index == blocks_end) & ~word_valid
        with m.If(busy & (og == groups_out[layer]) & words_done):
            m.d.sync += [og.eq(0), busy.eq(0),
                         filled.eq((filled & ~self.release) | (1 << buffer)),
                         layer.eq(layer + 1)]
            with m.If(layer == len(plans) - 1):
                m.d.sync += [layer.eq(0), cmd_index.eq(0), word_index.eq(0)]

        # ---- the engine's reads -----------------------------------------------------------------
        read = rows.read_port()
        m.d.comb += read.addr.eq(self.read.buffer * self.rows + self.read.row)
        for p in range(pe):
            for tap in range(KERNEL_BITS):
                for ch in range(simd):
                    kernel = p * simd + ch
                    m.d.comb += self.read.data[(p * KERNEL_BITS + tap) * simd + ch].eq(
                        read.data[kernel * KERNEL_BITS + tap])
        return m
