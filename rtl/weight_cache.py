"""The Huffman-decoding weight cache: compressed kernels in, decoded weight rows out."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fracbnn_golden.huffman import DEFAULT_MAX_LENGTH, CompressedModel
from fracbnn_golden.kernels import KERNEL_BITS

from .huffman import FIRST_WINDOW_WORDS, HuffmanDecoder, block_words, decode_cycles, lanes_for
from .interfaces import PortSignature
from .lookup import constant_table

__all__ = ["MAX_WEIGHT_BUFFERS", "WeightCache", "decoder_for", "first_word_cycles",
           "layer_decode_cycles"]

# The most buffers of decoded rows the accelerator gives its cache: the engine reads one layer
# while the cache decodes the ones after it, so that a layer of slow decoding (stage 3's, whose
# 4,096 kernels take longer than the layer's beats with two pixels per beat) starts without a
# wait once the cache has run far enough ahead (the accelerator's count:
# :meth:`rtl.builder.UnitBuilder.weight_buffers`).
MAX_WEIGHT_BUFFERS = 8


def _word_bits(symbols_per_cycle):
    """Payload word width: 64 bits, or wider when the decoder reads more than a word's worth
    of codewords per cycle (it decodes from a window of ``N * max_length`` bits in two words)."""
    bits = 64
    while bits < symbols_per_cycle * DEFAULT_MAX_LENGTH:
        bits *= 2
    return bits


def _layer_lanes(compressed):
    """Per layer, ``(skip, bits, first_word, count)`` of each of its lanes (stream bit offsets
    taken at 64-bit words are made by :func:`_lane_words`)."""
    starts, ends, counts, owner = compressed.blocks()
    per_layer = [[] for _ in compressed.layers]
    for start, end, count, layer in zip(starts.tolist(), ends.tolist(), counts.tolist(),
                                        owner.tolist()):
        per_layer[layer].append((start, end - start, count))
    return per_layer


def _lane_words(lane, word_bits):
    """``(skip, bits, first_word, words)`` of a lane ``(start, bits, count)``."""
    start, bits, _ = lane
    return start % word_bits, bits, start // word_bits, block_words(start % word_bits, bits,
                                                                     word_bits)


def decoder_for(compressed, symbols_per_cycle):
    """The Huffman decoder of a :class:`WeightCache` of ``compressed`` with
    ``symbols_per_cycle``: its code tables (codes of at most
    :data:`fracbnn_golden.huffman.DEFAULT_MAX_LENGTH` bits), payload words and lane sizes."""
    lanes = [lane for layer in _layer_lanes(compressed) for lane in layer]
    return HuffmanDecoder(compressed.tables, symbols_per_cycle=symbols_per_cycle,
                          word_width=_word_bits(symbols_per_cycle),
                          max_length=DEFAULT_MAX_LENGTH,
                          max_block_bits=max(bits for _, bits, _ in lanes),
                          max_count=max(count for _, _, count in lanes))


def first_word_cycles(lanes, word_bits):
    """The cycle, counted from the decoder's command (cycle 0), in which each lane of a layer
    has taken its first ``min(3, words)`` words from :class:`WeightCache`'s word fetch, which
    serves lane ``l`` in cycles ``1 + l + k * L`` and delivers the word the cycle after."""
    count = len(lanes)
    cycles = []
    for index, lane in enumerate(lanes):
        words = _lane_words(lane, word_bits)[3]
        wanted = min(FIRST_WINDOW_WORDS, words)
        cycles.append(2 + index + (wanted - 1) * count if wanted else 0)
    return cycles


def layer_decode_cycles(compressed, plans, symbols_per_cycle):
    """:meth:`WeightCache.decode_cycles` of every layer of ``plans``, without building a cache:
    the decoder's exact timing (:func:`rtl.huffman.decode_cycles`) of each layer's lanes."""
    word_bits = _word_bits(symbols_per_cycle)
    cycles = []
    for lanes in _layer_lanes(compressed)[:len(plans)]:
        # The command transfers in the job's first cycle, the cycle after ``begin``.
        cycles.append(decode_cycles(lanes[0][2], first_word_cycles(lanes, word_bits))
                      + WeightCache.fill_latency)
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
    into ``buffers`` buffers (a block RAM), so that the engine reads one layer while the
    following ones are decoded.

    Parameters
    ----------
    compressed : fracbnn_golden.huffman.CompressedModel
        The kernels of the engine's layers in execution order, each layer one block in
        ``2 * symbols_per_cycle`` lanes (:func:`rtl.huffman.lanes_for`) of equal kernel
        counts, as made by :func:`rtl.tables.compressed_weights`.
    plans : list of rtl.schedule.LayerPlan
        The layers.
    pe, simd_channels : int
        Output and input channels of a row.
    symbols_per_cycle : int
        Kernels the decoder emits per cycle; a divisor of ``simd_channels``.
    buffers : int
        Buffers of rows (at least 2; the accelerator's:
        :meth:`rtl.builder.UnitBuilder.weight_buffers`).

    Members
    -------
    read : Out(WeightCache.ReadPort.Signature(rows=..., row_bits=...))
        The engine's read port: ``read.buffer`` and ``read.row`` in, the row on ``read.data``.
    filled : Out(buffers)
        Bit ``b``: buffer ``b`` holds its next layer's rows.
    release : In(buffers)
        A pulse on bit ``b`` frees buffer ``b``.
    error : Out(1)
        The decoder found an invalid code (only a corrupt memory image can cause it); sticky
        until reset.

    Protocol
    --------
    Rows: the ``k``-th layer decoded (counting across images) is read from buffer
    ``k % buffers`` as ``groups_out * groups_in`` rows; row
    ``og * groups_in + cb`` holds the kernels of output channels ``og * pe + p`` and input
    channels ``cb * simd + c``: on ``read.data``, bit ``(p * 9 + tap) * simd + c`` is the weight
    of tap ``tap`` (the engine's layout).

    The cache decodes the layers in order 0, 1, ..., the last, 0, 1, ... (one image after
    another), each into the next buffer in turn once that buffer is free: one decoder command
    per layer, and each lane's payload words fetched in turn (lane ``l`` in the cycles
    ``1 + l + k * L`` after the command, when it has room), so that no lane waits for a word.
    ``filled`` bit ``b`` says buffer ``b`` holds its next layer's rows; the engine reads them
    (``read``, one row per cycle) and then pulses ``release`` bit ``b``, which frees the buffer
    for the layer ``buffers`` later.

    Latency
    -------
    :attr:`latency` = 1: a row is on ``read.data`` the cycle after its read (the read port is
    always enabled). Decoding a layer takes :meth:`decode_cycles` cycles from its start (the
    cycle its command goes to the decoder) to ``filled``, of which :attr:`fill_latency` = 2
    pass after the decoder's last beat.
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
            buffers : int
                Buffers.

            Members
            -------
            buffer : In(range(buffers))
                The buffer read.
            row : In(range(rows))
                The row read.
            data : Out(row_bits)
                The row, :attr:`WeightCache.latency` cycles after its read.
            """

            def __init__(self, *, rows, row_bits, buffers):
                super().__init__({
                    "buffer": In(range(buffers)),
                    "row": In(range(rows)),
                    "data": Out(row_bits),
                }, rows=rows, row_bits=row_bits, buffers=buffers)

    # What the signature's ``create`` makes (the class exists only once its body ends).
    ReadPort.Signature.interface = ReadPort

    def __init__(self, compressed, plans, *, pe, simd_channels, symbols_per_cycle=4,
                 buffers=MAX_WEIGHT_BUFFERS):
        if not isinstance(compressed, CompressedModel):
            raise TypeError(f"compressed must be a CompressedModel, not {compressed!r}")
        if len(compressed.layers) != len(plans):
            raise ValueError(f"compressed holds {len(compressed.layers)} layers, the plan "
                             f"{len(plans)}")
        if not isinstance(symbols_per_cycle, int) or symbols_per_cycle < 1 \
                or simd_channels % symbols_per_cycle:
            raise ValueError(f"symbols_per_cycle must be a positive divisor of simd_channels="
                             f"{simd_channels}, not {symbols_per_cycle!r}")
        if not isinstance(buffers, int) or isinstance(buffers, bool) or buffers < 2:
            raise ValueError(f"buffers must be an integer of at least 2, not {buffers!r}")
        lanes = lanes_for(symbols_per_cycle)
        for layer, plan in zip(compressed.layers, plans):
            if layer.name != plan.name or tuple(layer.shape) != (plan.cout, plan.cin, 3, 3) \
                    or plan.groups_out * pe != plan.cout:
                raise ValueError(f"compressed layer {layer.name!r} {list(layer.shape)} does not "
                                 f"match plan {plan.name!r}: [{plan.cout}, {plan.cin}, 3, 3] in "
                                 f"{plan.groups_out} groups of {pe} channels")
            if layer.n_blocks != 1 or layer.lanes != lanes or layer.n_kernels % lanes:
                raise ValueError(f"compressed layer {layer.name!r} must be one block of {lanes} "
                                 f"lanes of equal size for {symbols_per_cycle} symbols per "
                                 f"cycle, not {layer.n_blocks} blocks of {layer.lanes} lanes")
        self.compressed, self.plans = compressed, plans
        self.pe, self.simd, self.symbols_per_cycle = pe, simd_channels, symbols_per_cycle
        self.lanes, self.buffers = lanes, buffers
        self.rows = max(plan.groups_in * plan.groups_out for plan in plans)
        self.row_bits = pe * KERNEL_BITS * simd_channels
        self.word_bits = _word_bits(symbols_per_cycle)
        self._decode_cycles = layer_decode_cycles(compressed, plans, symbols_per_cycle)
        super().__init__({
            "read": Out(self.ReadPort.Signature(rows=self.rows, row_bits=self.row_bits,
                                                buffers=buffers)),
            "filled": Out(buffers),
            "release": In(buffers),
            "error": Out(1),
        })

    def decode_cycles(self, layer):
        """Cycles from the start of decoding ``layer`` until ``filled`` shows it."""
        return self._decode_cycles[layer]

    def elaborate(self, platform):
        m = Module()
        plans, pe, simd, n = self.plans, self.pe, self.simd, self.symbols_per_cycle
        word_bits, lanes = self.word_bits, self.lanes
        m.submodules.decoder = decoder = decoder_for(self.compressed, n)
        with m.If(decoder.error):
            m.d.sync += self.error.eq(1)

        # ---- the job: decode ``layer`` into ``buffer`` -----------------------------------------
        layer = Signal(range(len(plans)))
        buffer = Signal(range(self.buffers))
        busy = Signal()
        filled = Signal(self.buffers)
        m.d.comb += self.filled.eq(filled)
        m.d.sync += filled.eq(filled & ~self.release)

        # The layer's constants, looked up from ``layer`` into registers (initialised to layer
        # 0's): ``layer`` changes when a job ends and the next job starts two cycles later at
        # the earliest, so no lookup lies on a path into the decoder, the fetch or the writer.
        def registered(name, values):
            values = [int(v) for v in values]
            register = Signal(range(max(values) + 1), name=name, init=values[0])
            m.d.sync += register.eq(constant_table(values)[layer])
            return register

        per_layer = [[_lane_words(lane, word_bits) for lane in layer_lanes]
                     for layer_lanes in _layer_lanes(self.compressed)]
        groups_out = registered("groups_out", [p.groups_out for p in plans])
        groups_in = registered("groups_in", [p.groups_in for p in plans])
        cin = registered("cin", [p.cin for p in plans])
        count = registered("lane_count", [p.cin * p.cout // lanes for p in plans])
        table = registered("table", [layer.table for layer in self.compressed.layers])
        skip = [registered(f"skip{i}", [lw[i][0] for lw in per_layer]) for i in range(lanes)]
        bits = [registered(f"bits{i}", [lw[i][1] for lw in per_layer]) for i in range(lanes)]
        first_word = [registered(f"first_word{i}", [lw[i][2] for lw in per_layer])
                      for i in range(lanes)]
        words = [registered(f"words{i}", [lw[i][3] for lw in per_layer]) for i in range(lanes)]

        # A job starts as soon as its buffer is free, also in the cycle it is being released.
        with m.If(~busy & (~filled.bit_select(buffer, 1) | self.release.bit_select(buffer, 1))):
            m.d.sync += busy.eq(1)

        # ---- the command: one per layer, in the job's first cycle -------------------------------
        sent = Signal()
        cmd = decoder.cmd
        m.d.comb += [
            cmd.valid.eq(busy & ~sent),
            cmd.payload.table.eq(table),
            cmd.payload.count.eq(count),
        ]
        for index in range(lanes):
            m.d.comb += [cmd.payload.lanes[index].skip.eq(skip[index]),
                         cmd.payload.lanes[index].bits.eq(bits[index])]
        cmd_in = cmd.valid & cmd.ready

        # ---- payload words: each lane in turn, one word per cycle -------------------------------
        # Per lane its next word's address and whether it has more (a register, so that no
        # comparison with the lane's last word lies on the fetch's path).
        m.submodules.payload = payload = memory.Memory(
            shape=word_bits, depth=max(1, -(-self.compressed.payload_bits // word_bits)),
            init=_payload_words(self.compressed, word_bits))
        word_port = payload.read_port()
        address = [Signal(range(payload.depth + 1), name=f"address{i}") for i in range(lanes)]
        left = [Signal.like(words[i], name=f"left{i}") for i in range(lanes)]
        more = [Signal(name=f"more{i}") for i in range(lanes)]
        turn = Signal(range(lanes))               # the lane served this cycle
        # ``turn`` one-hot as well: a lane's request is then one LUT from registers, not a
        # selection among the lanes' ``more`` and ``ready`` and a decode of ``turn`` after it.
        serving = Signal(lanes, init=1)
        word_valid = Signal()                     # a word for lane ``word_lane`` is on the port
        word_lane = Signal.like(turn)
        requests = Signal(lanes)
        m.d.comb += [
            requests.eq(Cat(serving[i] & more[i] & decoder.words[i].ready
                            for i in range(lanes))),
            word_port.addr.eq(Array(address)[turn]),
        ]
        m.d.sync += [turn.eq(Mux(turn == lanes - 1, 0, turn + 1)),
                     serving.eq(serving.rotate_left(1)),
                     word_valid.eq(requests.any()), word_lane.eq(turn)]
        for index in range(lanes):
            with m.If(requests[index]):
                m.d.sync += [address[index].eq(address[index] + 1),
                             left[index].eq(left[index] - 1),
                             more[index].eq(left[index] != 1)]
            m.d.comb += [decoder.words[index].valid.eq(word_valid & (word_lane == index)),
                         decoder.words[index].payload.eq(word_port.data)]
        with m.If(cmd_in):
            m.d.sync += [sent.eq(1), turn.eq(0), serving.eq(1)]
            for index in range(lanes):
                m.d.sync += [address[index].eq(first_word[index]), left[index].eq(words[index]),
                             more[index].eq(words[index] != 0)]

        # ---- decoded kernels -> rows of the buffer ----------------------------------------------
        kernels_per_row = pe * simd
        # Block RAM: the rows are 2,304 bits wide at the default (32 block RAMs side by side,
        # which hold 512 rows); Yosys would otherwise make them LUT RAM, a LUT per 7 bits of
        # row at 64 rows.
        m.submodules.rows = rows = memory.Memory(
            shape=kernels_per_row * KERNEL_BITS, depth=self.buffers * self.rows, init=[],
            attrs={"ram_style": "block"})
        write = rows.write_port(granularity=KERNEL_BITS)
        o = Signal(range(pe))                          # output channel within the group
        c = Signal(range(max(p.cin for p in plans)))   # input channel
        og = Signal(range(max(p.groups_out for p in plans) + 1))   # output group being written
        beat = decoder.symbols
        slot = o * simd + c % simd                     # first kernel of the beat in its row
        # The write is registered in front of the block RAM (its write enables' setup is
        # long): it reaches the row in the cycle after the beat, still before ``filled``
        # (``fill_latency``) lets the engine read it.
        write_addr = Signal.like(write.addr)
        write_symbols = Signal(n * KERNEL_BITS)
        write_en = Signal.like(write.en)
        m.d.comb += [
            beat.ready.eq(1),
            write.addr.eq(write_addr),
            write.data.eq(Cat(write_symbols.word_select(k % n, KERNEL_BITS)
                              for k in range(kernels_per_row))),
            write.en.eq(write_en),
        ]
        m.d.sync += [
            write_addr.eq(buffer * self.rows + og * groups_in + c // simd),
            write_symbols.eq(Cat(beat.payload.symbol)),
            write_en.eq(Mux(beat.valid, Cat(k // n == slot // n
                                            for k in range(kernels_per_row)), 0)),
        ]
        with m.If(beat.valid):
            m.d.sync += c.eq(c + n)
            with m.If(c + n == cin):
                m.d.sync += [c.eq(0), o.eq(o + 1)]
                with m.If(o == pe - 1):
                    m.d.sync += [o.eq(0), og.eq(og + 1)]

        # The layer is in once every symbol is written and every word was taken (the lanes
        # drain their words also when a block is bad).
        words_done = ~_any(more) & ~word_valid
        with m.If(busy & sent & (og == groups_out) & words_done):
            m.d.sync += [og.eq(0), busy.eq(0), sent.eq(0),
                         filled.eq((filled & ~self.release) | (1 << buffer)),
                         layer.eq(Mux(layer == len(plans) - 1, 0, layer + 1)),
                         buffer.eq(Mux(buffer == self.buffers - 1, 0, buffer + 1))]

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


def _any(conditions):
    result = Const(0)
    for condition in conditions:
        result = result | condition
    return result
