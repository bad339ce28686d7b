"""Length-limited canonical Huffman coding of 3x3 binary kernels, and the compressed model format.

Symbols are the 9-bit kernel numbers of :mod:`fracbnn_golden.kernels` (``bnum``, bit
``ky * 3 + kx``, bit 1 = +1).

**Code lengths.** :meth:`CanonicalCode.from_frequencies` computes code lengths that minimise
``sum(freq * length)`` among all prefix codes whose lengths do not exceed ``max_length``, with
the package-merge algorithm (Larmore and Hirschberg, 1990). When the limit is not binding this
is an ordinary optimal Huffman code. Symbols of frequency 0 get length 0 (no codeword); a
single used symbol gets a 1-bit code. Among equal frequencies the smaller symbol gets the
shorter (or equal) code.

**Canonical codewords.** Codewords are numbered in the order (length, symbol): all codes of
one length are consecutive integers, shorter codes come first, and codes of equal length are
ordered by symbol value. With ``counts[l]`` codes of length ``l``::

    first_code[1] = 0,  first_code[l + 1] = (first_code[l] + counts[l]) << 1
    first_index[l] = counts[1] + ... + counts[l - 1]

A code is therefore fully described by ``counts`` and the *indirection table* (the symbols in
canonical order, i.e. code rank -> 9-bit kernel). A decoder that has read the ``l`` bits
``v`` (MSB first) has found a codeword iff ``v - first_code[l] < counts[l]``, and the symbol is
``indirection[first_index[l] + v - first_code[l]]``.

**Bit stream.** Each codeword is written most significant bit first. Stream bit ``k`` is bit
``k % 8`` (LSB = bit 0) of byte ``k // 8``: the project's LSB-first bit-vector order
(:mod:`fracbnn_golden.bitops`), so a 64-bit little-endian memory word ``w`` holds stream bits
``64 w`` .. ``64 w + 63``. The last byte is padded with zero bits.

**Blocks.** The kernels of a layer (C order over the leading axes, i.e. output channel, then
input channel) are cut into blocks of ``block_kernels`` kernels; by default 16 output channels
times Cin. Every block starts at a recorded bit offset, so a hardware weight cache can start
decoding any block (or several in parallel) without decoding what precedes it.

**Lanes.** A block may be split into ``lanes`` interleaved sub-streams: kernel ``j`` of the
block goes to lane ``j % lanes``, and each lane is coded on its own, one after the other, each
from its own recorded bit offset (no padding between them). A decoder with one simple decoder
per lane then decodes ``lanes`` symbols at a time, each lane's codeword boundaries depending
only on its own codewords; it restores the order by taking the lanes' symbols round-robin.
``lanes = 1`` (the default) is the plain block.

**Tables.** A layer is coded either with its own table or with a table shared by several
layers. A table costs about 2 kbit, which a small layer's better code does not repay;
``tables="auto"`` (the default of :func:`compress_model`) merges layers greedily: starting
from one table per layer it repeatedly merges the two groups whose merge costs least (table
bits + payload bits), down to a single table, and keeps the cheapest partition seen.

Serialised format (version 1, or 2 when a layer has more than one lane; integers
little-endian, unsigned)
--------------------------------------------------------------
==========  ===============  =====================================================================
size/bytes  field            meaning
==========  ===============  =====================================================================
4           magic            ``b"FBHK"``
1           version          1, or 2 (layer records with lanes)
2           n_tables         number of code tables
2           n_layers         number of layers
4           payload_bits     length of the payload bit stream
4           payload_crc32    ``zlib.crc32`` of the payload bytes
..          table x n_tables one record per table (below)
..          layer x n_layers one record per layer (below)
4           metadata_crc32   ``zlib.crc32`` of every byte before this field
ceil(p/8)   payload          the bit stream, p = payload_bits, zero padding bits
==========  ===============  =====================================================================

Table record; ``M`` is the longest code length, ``w = M.bit_length()``. Bit fields are packed
LSB first (field ``i`` of width ``w`` is bits ``i*w`` .. ``i*w + w - 1`` of the little-endian
integer formed by the bytes); the encoder writes whichever form is shorter.

==============  ======  =========================================================================
size/bytes      field   meaning
==============  ======  =========================================================================
1               form    0 = code lengths, 1 = counts + indirection table
1               M       longest code length, 1..32 (0: empty table, nothing follows)
ceil(512w/8)    form 0  code length of each symbol 0..511, ``w`` bits each (0 = unused)
2 M             form 1  u16 counts of codes of length 1..M ...
ceil(9N/8)              ... then the indirection table: N = sum(counts) symbols, 9 bits each,
                        in canonical order (length, then symbol value)
==============  ======  =========================================================================

Layer record:

==========  =============  ======================================================================
size/bytes  field          meaning
==========  =============  ======================================================================
1           name_len       length of the name in bytes
name_len    name           UTF-8 layer name
1           ndim           number of dimensions, >= 2
4 ndim      shape          u32 each; ends in 3, 3; kernels = product of the leading dimensions
2           table          index of the layer's code table
4           block_kernels  kernels per block (the last block may hold fewer)
2           lanes          version 2 only: lanes per block, at least 1 (version 1: 1)
4           n_blocks       = ceil(kernels / block_kernels)
4 n_blocks  offsets        u32 payload bit offset of each stream's first codeword: block after
  * lanes                  block, lane after lane within a block
==========  =============  ======================================================================

Streams (a block's lanes; with one lane, the blocks) follow each other in layer order; a stream
ends where the next one starts (the last at ``payload_bits``). Every lane of every block must
hold at least one kernel. Reading checks, in this order: magic, version, truncation and the
sanity of every field while parsing, the metadata CRC, payload size and CRC, the kernel counts and
offsets; decoding checks that every block's bits are valid codewords that end exactly at the
block end. Each failure raises :class:`CompressedFormatError` naming the problem.
"""

import math
import operator
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .bitops import pack_bits
from .kernels import (
    KERNEL_BITS,
    N_SYMBOLS,
    fracbnn_conv_kernels,
    histogram,
    kernel_symbols,
    symbols_to_kernels,
)
from .model import FracBNN

__all__ = ["MAX_CODE_LENGTH", "DEFAULT_MAX_LENGTH", "DEFAULT_BLOCK_CHANNELS",
           "CompressedFormatError", "CanonicalCode", "CompressedLayer", "CompressedModel",
           "compress_model", "compress_fracbnn", "compress_kernels", "decompress_kernels"]

MAX_CODE_LENGTH = 32          # codes, windows and first_code values fit in int64
# The codes compress_model makes unless told otherwise: at most 12 bits (the weight cache's
# decoder is built for them), blocks of 16 output channels.
DEFAULT_MAX_LENGTH = 12
DEFAULT_BLOCK_CHANNELS = 16
FORMAT_MAGIC = b"FBHK"
FORMAT_VERSION = 2               # written when a layer has lanes; version 1 otherwise
_LANES_VERSION = 2
_HEADER = struct.Struct("<4sBHHII")
_FORM_LENGTHS, _FORM_LIST = 0, 1
_MAX_TOTAL_FREQUENCY = 1 << 56  # package weights reach max_length * total: keep them in int64
_MAX_DIMENSIONS = 64            # NumPy's limit on an array's dimensions
_U32_MAX = (1 << 32) - 1


def _integer(name, value, low, high=None):
    """``value`` as an int in ``low..high``: TypeError/ValueError naming the argument."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r} (bool)")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r} "
                        f"({type(value).__name__})") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value}")
    return value


class CompressedFormatError(ValueError):
    """A compressed kernel blob or model is malformed; the message names what is wrong."""


def _limited_lengths(weights, max_length):
    """Optimal code lengths <= ``max_length`` for ascending ``weights`` (n >= 2), by package-merge.

    Coin-collector view: every symbol has one coin of each denomination 2^-1 .. 2^-max_length,
    with numismatic value = its weight; the cheapest set of coins of total denomination n - 1
    gives each symbol a length equal to its number of chosen coins. Level lists are built from
    the smallest denomination up (leaves merged with pairs of the level below); the chosen
    coins of every level are a prefix of its sorted list, and the leaves in that prefix are the
    lightest ones, so keeping which items of each list are packages is enough to count them.
    """
    n = len(weights)
    levels = min(max_length, n - 1)     # no optimal code is deeper than n - 1
    package_flags = [np.zeros(n, dtype=bool)]   # deepest level: leaves only
    current = weights
    for _ in range(levels - 1):
        pairs = len(current) // 2
        packages = current[0:2 * pairs:2] + current[1:2 * pairs:2]     # ascending, like leaves
        # Merge the two sorted lists; a package goes after the leaves of equal weight.
        where = np.searchsorted(weights, packages, side="right") + np.arange(pairs)
        is_package = np.zeros(n + pairs, dtype=bool)
        is_package[where] = True
        current = np.empty(n + pairs, dtype=np.int64)
        current[where], current[~is_package] = packages, weights
        package_flags.append(is_package)
    lengths = np.zeros(n, dtype=np.int64)
    take = 2 * n - 2                    # items chosen from the top level (denomination 1/2)
    for is_package in reversed(package_flags):
        packages = int(np.count_nonzero(is_package[:take]))
        lengths[:take - packages] += 1
        take = 2 * packages             # each chosen package is two items of the level below
    return lengths


def _optimal_lengths(freqs, max_length):
    """Code lengths of :meth:`CanonicalCode.from_frequencies` (arguments already checked)."""
    used = np.flatnonzero(freqs)
    lengths = np.zeros(len(freqs), dtype=np.int64)
    if len(used) == 1:
        lengths[used] = 1
    elif len(used) > 1:
        # Ascending frequency; equal frequencies: larger symbol first, so that it is the one
        # that gets the longer code.
        order = used[np.lexsort((-used, freqs[used]))]
        lengths[order] = _limited_lengths(freqs[order].astype(np.int64), max_length)
    return lengths


def _code_bits(values, lengths):
    """Concatenate codewords ``values`` of ``lengths`` bits, MSB first: uint8 bit array."""
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    position = np.arange(len(owner)) - starts[owner]      # 0 = the codeword's MSB
    return ((values[owner] >> (lengths[owner] - 1 - position)) & 1).astype(np.uint8)


def _bit_windows(bits, width):
    """The ``width`` bits starting at every position of ``bits``, as int64, MSB = first bit."""
    padded = np.concatenate([bits.astype(np.int64), np.zeros(width, dtype=np.int64)])
    windows = np.zeros(len(bits), dtype=np.int64)
    for j in range(width):
        windows = (windows << 1) | padded[j:j + len(bits)]
    return windows


def _walk(length_at, symbol_at, starts, counts):
    """Decode ``counts[b]`` symbols from bit ``starts[b]`` of every block, all blocks in step.

    ``length_at[p]``/``symbol_at[p]`` describe the codeword starting at bit ``p`` (length 0:
    none). A block that meets an invalid code stays there (it adds length 0), so the walk
    never runs away. Returns the symbols (block after block), each block's end position and
    whether it met an invalid code.
    """
    order = np.argsort(-counts, kind="stable")    # longest first: active blocks are a prefix
    position, count = starts[order].copy(), counts[order]
    base = (np.cumsum(counts) - counts)[order]
    symbols = np.zeros(int(counts.sum()), dtype=np.int64)
    stuck = np.zeros(len(counts), dtype=bool)
    max_count = int(count.max(initial=0))
    active_blocks = np.searchsorted(-count, -np.arange(max_count), side="left")
    for step, active in enumerate(active_blocks):
        p = position[:active]
        length = length_at[p]
        stuck[:active] |= length == 0
        symbols[base[:active] + step] = symbol_at[p]
        position[:active] = p + length
    ends, blocked = np.empty_like(position), np.empty_like(stuck)
    ends[order], blocked[order] = position, stuck
    return symbols, ends, blocked


class CanonicalCode:
    """A canonical prefix code over an alphabet of ``len(lengths)`` symbols.

    Attributes (read-only int64 arrays; the per-length ones are indexed by the length itself,
    0 .. ``max_length``, with entry 0 unused):

    - ``lengths[s]``: code length of symbol ``s``, 0 = no codeword
    - ``counts[l]``: number of codewords of length ``l``
    - ``first_code[l]``: the smallest codeword of length ``l``
    - ``first_index[l]``: rank of that codeword (position in ``indirection``)
    - ``indirection[r]``: the symbol of code rank ``r`` (symbols in canonical order)
    - ``codewords[s]``: the codeword of symbol ``s`` (``lengths[s]`` bits, 0 if unused)
    """

    def __init__(self, lengths):
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError("code lengths must be a non-empty 1-D integer array")
        if lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH:
            raise ValueError(f"code lengths must lie in 0..{MAX_CODE_LENGTH}, found "
                             f"{lengths.min()}..{lengths.max()}")
        lengths = lengths.astype(np.int64)
        used = lengths > 0
        kraft = int((np.int64(1) << (MAX_CODE_LENGTH - lengths[used])).sum())
        if kraft > 1 << MAX_CODE_LENGTH:
            raise ValueError(f"over-subscribed code lengths: Kraft sum "
                             f"{Fraction(kraft, 1 << MAX_CODE_LENGTH)} > 1")
        longest = int(lengths.max())
        counts = np.bincount(lengths, minlength=longest + 1)
        counts[0] = 0
        first_code = np.zeros(longest + 1, dtype=np.int64)
        for length in range(2, longest + 1):
            first_code[length] = (first_code[length - 1] + counts[length - 1]) << 1
        first_index = np.cumsum(counts) - counts
        canonical = np.lexsort((np.arange(len(lengths)), lengths))   # by length, then symbol
        indirection = canonical[used[canonical]]
        code_length = lengths[indirection]
        rank = np.arange(len(indirection))
        codewords = np.zeros(len(lengths), dtype=np.int64)
        codewords[indirection] = first_code[code_length] + rank - first_index[code_length]
        for name, value in (("lengths", lengths), ("counts", counts), ("first_code", first_code),
                            ("first_index", first_index), ("indirection", indirection),
                            ("codewords", codewords)):
            value = value.astype(np.int64)
            value.flags.writeable = False
            setattr(self, name, value)

    @classmethod
    def from_frequencies(cls, freqs, max_length=DEFAULT_MAX_LENGTH):
        """The optimal canonical code with lengths <= ``max_length`` (1..32) for ``freqs``."""
        freqs = np.asarray(freqs)
        if freqs.ndim != 1 or freqs.size == 0 or not np.issubdtype(freqs.dtype, np.integer):
            raise TypeError("frequencies must be a non-empty 1-D integer array")
        if freqs.min() < 0:
            raise ValueError("frequencies must not be negative")
        if int(freqs.astype(object).sum()) >= _MAX_TOTAL_FREQUENCY:
            raise ValueError("frequencies must sum to less than 2**56")
        max_length = _integer("max_length", max_length, 1, MAX_CODE_LENGTH)
        used = np.count_nonzero(freqs)
        if used > 1 << max_length:
            raise ValueError(f"{used} used symbols do not fit in codes of at most "
                             f"{max_length} bits")
        return cls(_optimal_lengths(freqs, max_length))

    @property
    def alphabet_size(self):
        return len(self.lengths)

    @property
    def max_length(self):
        """The longest code length (0 for a code without symbols)."""
        return len(self.counts) - 1

    def kraft_sum(self):
        """``sum(2 ** -length)`` over the used symbols, exactly."""
        return sum((Fraction(int(c), 1 << n) for n, c in enumerate(self.counts) if n), Fraction(0))

    def cost(self, freqs):
        """Total bits of coding symbols with these frequencies: ``sum(freqs * lengths)``."""
        return int(np.asarray(freqs, dtype=np.int64) @ self.lengths)

    def encode(self, symbols):
        """Symbols -> uint8 bit array (codewords concatenated, each MSB first)."""
        symbols = np.asarray(symbols)
        if symbols.size and not np.issubdtype(symbols.dtype, np.integer):
            raise TypeError(f"symbols must be integers, not {symbols.dtype}")
        symbols = symbols.astype(np.int64).ravel()
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.alphabet_size):
            raise ValueError(f"symbols must lie in 0..{self.alphabet_size - 1}")
        lengths = self.lengths[symbols]
        if symbols.size and lengths.min() == 0:
            raise ValueError(f"symbol {symbols[np.argmin(lengths)]} has no codeword "
                             "(its frequency was 0)")
        return _code_bits(self.codewords[symbols], lengths)

    def decode(self, bits, count):
        """Decode exactly ``count`` symbols that must use up all of ``bits`` (a 0/1 array).

        A ``count`` that cannot fill ``bits`` with codewords of this code's lengths is refused
        before decoding, so that the time is bounded by the stream's length."""
        count = _integer("count", count, 0)
        bits = np.asarray(bits)
        if bits.size and not (np.issubdtype(bits.dtype, np.integer) or bits.dtype == np.bool_):
            raise TypeError(f"bits must be an array of 0/1 integers, not {bits.dtype}")
        if bits.size and (bits.min() < 0 or bits.max() > 1):
            raise ValueError(f"bits must be 0 or 1, found {bits.min()}..{bits.max()}")
        bits = bits.astype(np.uint8).ravel()
        used = self.lengths[self.lengths > 0]
        shortest, longest = (int(used.min()), int(used.max())) if used.size else (0, 0)
        if not count * shortest <= len(bits) <= count * longest and (count or len(bits)):
            raise CompressedFormatError(
                f"count = {count}: {count} symbols of {shortest}..{longest} bits cannot fill "
                f"a stream of {len(bits)} bits")
        width = max(self.max_length, 1)
        length_at, symbol_at = self._match(_bit_windows(bits, width), width)
        padding = np.zeros(width, dtype=np.int64)
        symbols, end, stuck = _walk(np.concatenate([length_at, padding]),
                                    np.concatenate([symbol_at, padding]),
                                    np.zeros(1, dtype=np.int64), np.array([count]))
        if stuck[0]:
            raise CompressedFormatError(f"invalid code at bit {end[0]}: no codeword starts "
                                        "with these bits")
        if end[0] != len(bits):
            raise CompressedFormatError(f"{count} symbols end at bit {end[0]}, but the stream "
                                        f"has {len(bits)} bits")
        return symbols

    def _match(self, windows, width):
        """For bit windows (``width`` bits, MSB first): the length and symbol of the codeword
        each one starts with (length 0: none) -- the "compare with first_code" decoder."""
        length_at = np.zeros(len(windows), dtype=np.int64)
        symbol_at = np.zeros(len(windows), dtype=np.int64)
        for length in range(1, self.max_length + 1):
            if not self.counts[length]:
                continue
            rank = (windows >> (width - length)) - self.first_code[length]
            hit = (length_at == 0) & (rank >= 0) & (rank < self.counts[length])
            length_at[hit] = length
            symbol_at[hit] = self.indirection[self.first_index[length] + rank[hit]]
        return length_at, symbol_at

    def __eq__(self, other):
        return isinstance(other, CanonicalCode) and np.array_equal(self.lengths, other.lengths)

    __hash__ = None

    def __repr__(self):
        return (f"CanonicalCode({int(np.count_nonzero(self.lengths))} of {self.alphabet_size} "
                f"symbols, max_length={self.max_length})")


# --- serialisation helpers -------------------------------------------------------------------

def _pack_fields(values, width):
    """Unsigned ints -> bytes, ``width`` bits each, LSB-first bit fields (see the docstring)."""
    values = np.asarray(values, dtype=np.int64)
    bits = (values[:, None] >> np.arange(width)) & 1
    return np.packbits(bits.ravel().astype(np.uint8), bitorder="little").tobytes()


def _unpack_fields(data, count, width):
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    fields = bits[:count * width].reshape(count, width).astype(np.int64)
    return fields @ (np.int64(1) << np.arange(width, dtype=np.int64))


def _table_form(lengths):
    """(form, size in bytes) of the shorter serialised form of a table with these lengths."""
    longest = int(lengths.max())
    if longest == 0:
        return _FORM_LENGTHS, 2
    by_lengths = 2 + -(-N_SYMBOLS * longest.bit_length() // 8)
    by_list = 2 + 2 * longest + -(-int(np.count_nonzero(lengths)) * KERNEL_BITS // 8)
    return (_FORM_LIST, by_list) if by_list < by_lengths else (_FORM_LENGTHS, by_lengths)


def _table_record(code):
    """A table serialised in its shorter form (module docstring)."""
    form, _ = _table_form(code.lengths)
    longest = code.max_length
    if longest == 0:
        return bytes([_FORM_LENGTHS, 0])
    if form == _FORM_LENGTHS:
        return bytes([form, longest]) + _pack_fields(code.lengths, longest.bit_length())
    return (bytes([form, longest]) + struct.pack(f"<{longest}H", *code.counts[1:])
            + _pack_fields(code.indirection, KERNEL_BITS))


class _Reader:
    """Sequential reads from a blob that name the field when the blob is too short."""

    def __init__(self, blob):
        self.blob, self.pos = blob, 0

    def take(self, size, what):
        if self.pos + size > len(self.blob):
            raise CompressedFormatError(f"truncated blob: {what} needs {size} bytes at offset "
                                        f"{self.pos}, the blob has {len(self.blob)}")
        data = self.blob[self.pos:self.pos + size]
        self.pos += size
        return data

    def unpack(self, fmt, what):
        """A tuple of little-endian fields."""
        layout = struct.Struct("<" + fmt)
        return layout.unpack(self.take(layout.size, what))


def _read_table(reader, index):
    what = f"table {index}"
    form, longest = reader.unpack("BB", f"{what} header")
    if form not in (_FORM_LENGTHS, _FORM_LIST):
        raise CompressedFormatError(f"{what}: unknown form {form} (0 = lengths, 1 = list)")
    if longest > MAX_CODE_LENGTH:
        raise CompressedFormatError(f"{what}: code length {longest} exceeds the maximum "
                                    f"{MAX_CODE_LENGTH}")
    lengths = np.zeros(N_SYMBOLS, dtype=np.int64)
    symbols = None                      # the indirection table, stored by the list form only
    if longest and form == _FORM_LENGTHS:
        width = longest.bit_length()
        lengths = _unpack_fields(reader.take(-(-N_SYMBOLS * width // 8), f"{what} lengths"),
                                 N_SYMBOLS, width)
        if lengths.max() != longest:
            raise CompressedFormatError(f"{what}: longest code is {lengths.max()} bits, the "
                                        f"header says {longest}")
    elif longest:
        counts = np.array(reader.unpack(f"{longest}H", f"{what} counts"))
        total = int(counts.sum())
        if total > N_SYMBOLS:
            raise CompressedFormatError(f"{what}: over-long table, {total} codes for "
                                        f"{N_SYMBOLS} symbols")
        if counts[-1] == 0:
            raise CompressedFormatError(f"{what}: no code of the stated longest length "
                                        f"{longest}")
        symbols = _unpack_fields(reader.take(-(-total * KERNEL_BITS // 8), f"{what} symbols"),
                                 total, KERNEL_BITS)
        if len(np.unique(symbols)) != total:
            raise CompressedFormatError(f"{what}: a symbol appears twice in the indirection "
                                        "table")
        lengths[symbols] = np.repeat(np.arange(1, longest + 1), counts)
    try:
        code = CanonicalCode(lengths)
    except ValueError as error:
        raise CompressedFormatError(f"{what}: {error}") from None
    if symbols is not None and not np.array_equal(code.indirection, symbols):
        raise CompressedFormatError(f"{what}: indirection table is not in canonical order "
                                    "(length, then symbol value)")
    return code


def _read_layer(reader, index, n_tables, version):
    what = f"layer {index}"
    (name_length,) = reader.unpack("B", f"{what} name length")
    raw_name = reader.take(name_length, f"{what} name")
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise CompressedFormatError(f"{what}: name is not valid UTF-8") from None
    what = f"layer {index} ({name!r})"
    (ndim,) = reader.unpack("B", f"{what} ndim")
    if ndim < 2:
        raise CompressedFormatError(f"{what}: {ndim} dimensions, need at least 2")
    shape = reader.unpack(f"{ndim}I", f"{what} shape")
    lanes = 1
    if version >= _LANES_VERSION:
        table, block_kernels, lanes, n_blocks = reader.unpack("HIHI", f"{what} table and blocks")
        if lanes < 1:
            raise CompressedFormatError(f"{what}: lanes must be at least 1, not {lanes}")
    else:
        table, block_kernels, n_blocks = reader.unpack("HII", f"{what} table and blocks")
    if table >= n_tables:
        raise CompressedFormatError(f"{what}: table {table} does not exist ({n_tables} tables)")
    offsets = np.frombuffer(reader.take(4 * n_blocks * lanes, f"{what} block offsets"),
                            dtype="<u4")
    return CompressedLayer(name, shape, table, block_kernels, tuple(offsets.tolist()), lanes)


# --- the compressed model ----------------------------------------------------------------------

@dataclass(frozen=True)
class CompressedLayer:
    """One compressed kernel array: its shape, its code table and where its blocks start."""
    name: str
    shape: tuple            # the kernel array's shape, ending in (3, 3)
    table: int              # index into CompressedModel.tables
    block_kernels: int      # kernels per block; the last block may hold fewer
    block_offsets: tuple    # payload bit offset of each stream's first codeword (block, lane)
    lanes: int = 1          # interleaved sub-streams per block (module docstring)

    @property
    def n_kernels(self):
        return math.prod(self.shape[:-2])

    @property
    def n_blocks(self):
        return len(self.block_offsets) // self.lanes

    def block_counts(self):
        """Kernels in each block: int64 ``[n_blocks]``."""
        counts = np.full(self.n_blocks, self.block_kernels, dtype=np.int64)
        if self.n_blocks:
            counts[-1] = self.n_kernels - self.block_kernels * (self.n_blocks - 1)
        return counts

    def stream_counts(self):
        """Kernels in each stream (block after block, lane after lane): int64
        ``[n_blocks * lanes]``; lane ``l`` of a block of ``k`` kernels holds
        ``ceil((k - l) / lanes)`` of them."""
        counts = self.block_counts()[:, None] - np.arange(self.lanes)[None, :]
        return (-(-counts // self.lanes)).reshape(-1)

    def kernel_order(self):
        """The layer's kernel index of every symbol in stream order: int64 ``[n_kernels]``."""
        first = np.arange(self.n_blocks, dtype=np.int64) * self.block_kernels
        return np.concatenate([np.arange(start + lane, min(start + self.block_kernels,
                                                             self.n_kernels), self.lanes)
                               for start in first.tolist() for lane in range(self.lanes)]
                              + [np.zeros(0, dtype=np.int64)])


@dataclass(frozen=True)
class CompressedModel:
    """Compressed kernels of several layers: code tables, layer metadata and one payload.

    ``payload`` holds ``payload_bits`` stream bits (order: module docstring). Stream ``s`` of
    a layer (lane ``s % lanes`` of block ``s // lanes``) occupies bits ``block_offsets[s]`` up
    to the next stream's offset (the next layer's first stream, or ``payload_bits`` after the
    last). Construction checks the
    structure and raises :class:`CompressedFormatError`.

    What a hardware weight cache loads: per table ``t``, ``tables[t].counts``, ``first_code``
    and ``first_index`` (the decoder's per-length registers) and ``indirection`` (its rank ->
    kernel memory); per layer, ``layers[i].table`` and ``block_offsets``; :meth:`blocks` lists
    every block's bit range and kernel count; :meth:`payload_words` gives the memory image.
    """
    tables: tuple           # CanonicalCode over the 512 kernel symbols
    layers: tuple           # CompressedLayer, in payload order
    payload: bytes
    payload_bits: int

    def __post_init__(self):
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "layers", tuple(self.layers))
        for index, table in enumerate(self.tables):
            if not isinstance(table, CanonicalCode) or table.alphabet_size != N_SYMBOLS:
                raise CompressedFormatError(f"table {index}: not a code over {N_SYMBOLS} "
                                            "kernel symbols")
        need = -(-self.payload_bits // 8)
        if len(self.payload) != need:
            raise CompressedFormatError(f"payload has {len(self.payload)} bytes, "
                                        f"payload_bits = {self.payload_bits} needs {need}")
        if self.payload_bits % 8 and self.payload[-1] >> (self.payload_bits % 8):
            raise CompressedFormatError("non-zero padding bits after the payload")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise CompressedFormatError("duplicate layer names")
        for layer in self.layers:
            self._check_layer(layer)
        starts, ends, counts, _ = self.blocks()
        if len(starts) == 0:
            if self.payload_bits:
                raise CompressedFormatError("payload bits but no blocks")
            return
        if starts[0] != 0 or (np.diff(starts) <= 0).any() or starts[-1] >= self.payload_bits:
            raise CompressedFormatError(f"block offsets out of range: they must start at 0 and "
                                        f"increase strictly below payload_bits = "
                                        f"{self.payload_bits}")
        short = np.flatnonzero(ends - starts < counts)
        if len(short):
            raise CompressedFormatError(f"block {short[0]} (counted over all layers) spans "
                                        f"{ends[short[0]] - starts[short[0]]} bits, too few for "
                                        f"its {counts[short[0]]} kernels (wrong kernel count?)")

    def _check_layer(self, layer):
        what = f"layer {layer.name!r}"
        if len(layer.shape) < 2 or tuple(layer.shape[-2:]) != (3, 3):
            raise CompressedFormatError(f"{what}: shape {list(layer.shape)} does not end in 3, 3")
        if len(layer.shape) > _MAX_DIMENSIONS:
            raise CompressedFormatError(f"{what}: {len(layer.shape)} dimensions, at most "
                                        f"{_MAX_DIMENSIONS} (NumPy's limit)")
        if not isinstance(layer.lanes, int) or layer.lanes < 1:
            raise CompressedFormatError(f"{what}: lanes must be a positive integer, not "
                                        f"{layer.lanes!r}")
        if len(layer.block_offsets) % layer.lanes:
            raise CompressedFormatError(f"{what}: {len(layer.block_offsets)} stream offsets "
                                        f"are not a whole number of blocks of {layer.lanes} "
                                        "lanes")
        if not 0 <= layer.table < len(self.tables):
            raise CompressedFormatError(f"{what}: table {layer.table} does not exist")
        if layer.block_kernels < 1:
            raise CompressedFormatError(f"{what}: block_kernels must be at least 1")
        expected = -(-layer.n_kernels // layer.block_kernels)
        if layer.n_blocks != expected:
            raise CompressedFormatError(
                f"{what}: wrong kernel count: shape {list(layer.shape)} holds {layer.n_kernels} "
                f"kernels = {expected} blocks of {layer.block_kernels}, but {layer.n_blocks} "
                "block offsets are given")
        if layer.n_blocks and layer.stream_counts().min() < 1:
            raise CompressedFormatError(f"{what}: {layer.lanes} lanes, more than the kernels of "
                                        "its last block")

    def blocks(self):
        """Every stream of every layer (a block's lane; with one lane, the block), in payload
        order, as int64 arrays: ``(start_bit, end_bit, kernel_count, layer_index)``."""
        starts = np.array([o for layer in self.layers for o in layer.block_offsets],
                          dtype=np.int64)
        ends = np.append(starts[1:], self.payload_bits).astype(np.int64)
        counts = np.concatenate([layer.stream_counts() for layer in self.layers]
                                + [np.zeros(0, dtype=np.int64)])
        owner = np.repeat(np.arange(len(self.layers)),
                          np.array([len(layer.block_offsets) for layer in self.layers],
                                   dtype=np.int64))
        return starts, ends, counts, owner

    def payload_bit_array(self):
        """The payload as a uint8 0/1 array of ``payload_bits`` stream bits."""
        bits = np.unpackbits(np.frombuffer(self.payload, dtype=np.uint8), bitorder="little")
        return bits[:self.payload_bits]

    def payload_words(self, word_bits=64):
        """The payload as unsigned memory words (8/16/32/64 bits): stream bit ``k`` is bit
        ``k % word_bits`` of word ``k // word_bits``; the last word is zero-padded."""
        return pack_bits(self.payload_bit_array(), word_bits=word_bits)

    def decode(self):
        """All layers' kernels: ``{name: uint8 [shape]}``; raises CompressedFormatError."""
        bits = self.payload_bit_array()
        starts, ends, counts, owner = self.blocks()
        width = max([table.max_length for table in self.tables] + [1])
        windows = _bit_windows(bits, width)
        # Positions past the payload (reachable only from corrupt data) match no codeword.
        length_at = np.zeros(len(bits) + width, dtype=np.int64)
        symbol_at = np.zeros(len(bits) + width, dtype=np.int64)
        for index, layer in enumerate(self.layers):
            mine = np.flatnonzero(owner == index)
            if len(mine):
                lo, hi = starts[mine[0]], ends[mine[-1]]
                length_at[lo:hi], symbol_at[lo:hi] = self.tables[layer.table]._match(
                    windows[lo:hi], width)
        symbols, reached, stuck = _walk(length_at, symbol_at, starts, counts)
        for block in np.flatnonzero(stuck | (reached != ends)):
            layer = self.layers[owner[block]]
            number = block - np.flatnonzero(owner == owner[block])[0]
            where = f"layer {layer.name!r} block {number // layer.lanes}"
            if layer.lanes > 1:
                where += f" lane {number % layer.lanes}"
            if stuck[block]:
                raise CompressedFormatError(f"{where}: invalid code at payload bit "
                                            f"{reached[block]} (no codeword of table "
                                            f"{layer.table} starts with these bits)")
            raise CompressedFormatError(
                f"{where}: its {counts[block]} kernels end at bit {reached[block]}, but the "
                f"block spans bits {starts[block]}..{ends[block]} (corrupt payload or wrong "
                "kernel count)")
        result, first = {}, 0
        for layer in self.layers:
            part = np.empty(layer.n_kernels, dtype=np.int64)
            part[layer.kernel_order()] = symbols[first:first + layer.n_kernels]
            result[layer.name] = symbols_to_kernels(part).reshape(layer.shape)
            first += layer.n_kernels
        return result

    def _sections(self):
        """The serialised blob as (kind, bytes) pieces; kinds: header, table, layer, offsets,
        payload."""
        if len(self.tables) > 0xFFFF or len(self.layers) > 0xFFFF:
            raise ValueError("at most 65535 tables and 65535 layers fit the format")
        if self.payload_bits >= 1 << 32:
            raise ValueError("the payload exceeds 2**32 bits")
        version = _LANES_VERSION if any(layer.lanes > 1 for layer in self.layers) else 1
        sections = [("header", _HEADER.pack(FORMAT_MAGIC, version, len(self.tables),
                                            len(self.layers), self.payload_bits,
                                            zlib.crc32(self.payload)))]
        sections += [("table", _table_record(table)) for table in self.tables]
        for layer in self.layers:
            name = layer.name.encode("utf-8")
            if len(name) > 255 or len(layer.shape) > 255:
                raise ValueError(f"layer {layer.name!r}: name or shape too long for the format")
            if max(layer.shape + (layer.block_kernels,)) >= 1 << 32:
                raise ValueError(f"layer {layer.name!r}: a dimension exceeds 2**32 - 1")
            if layer.lanes > 0xFFFF:
                raise ValueError(f"layer {layer.name!r}: at most 65535 lanes fit the format")
            lanes = (layer.lanes,) if version >= _LANES_VERSION else ()
            sections.append(("layer", bytes([len(name)]) + name
                             + struct.pack(f"<B{len(layer.shape)}IHI{'H' * len(lanes)}I",
                                           len(layer.shape), *layer.shape, layer.table,
                                           layer.block_kernels, *lanes, layer.n_blocks)))
            sections.append(("offsets", np.asarray(layer.block_offsets, dtype="<u4").tobytes()))
        metadata = b"".join(data for _, data in sections)
        sections.append(("header", struct.pack("<I", zlib.crc32(metadata))))
        sections.append(("payload", self.payload))
        return sections

    def to_bytes(self):
        """Serialise (format: module docstring)."""
        return b"".join(data for _, data in self._sections())

    def size_bits(self):
        """Serialised size by section, in bits: ``payload`` (exact stream bits), ``tables``,
        ``offsets`` (the block offset table), ``metadata`` (header, layer records, CRCs),
        ``padding`` (after the payload) and ``total`` (8 * len(to_bytes()))."""
        sizes = {"payload": self.payload_bits, "tables": 0, "offsets": 0, "metadata": 0,
                 "padding": 8 * len(self.payload) - self.payload_bits}
        for kind, data in self._sections():
            if kind != "payload":
                sizes[{"table": "tables", "offsets": "offsets"}.get(kind, "metadata")] += \
                    8 * len(data)
        sizes["total"] = sum(sizes.values())
        return sizes

    @classmethod
    def from_bytes(cls, blob):
        """Parse and check a serialised model (the payload is decoded by :meth:`decode`)."""
        try:
            blob = memoryview(blob).tobytes()      # not bytes(blob): bytes(10**12) allocates
        except TypeError:
            raise TypeError(f"blob must be bytes-like, not {type(blob).__name__}") from None
        reader = _Reader(blob)
        magic = reader.take(4, "magic")
        if magic != FORMAT_MAGIC:
            raise CompressedFormatError(f"bad magic {magic!r}, expected {FORMAT_MAGIC!r}: not a "
                                        "compressed kernel blob")
        (version,) = reader.unpack("B", "version")
        if version not in (1, FORMAT_VERSION):
            raise CompressedFormatError(f"unsupported format version {version} (this reader "
                                        f"supports 1 and {FORMAT_VERSION})")
        n_tables, n_layers, payload_bits, payload_crc = reader.unpack("HHII", "header")
        tables = [_read_table(reader, index) for index in range(n_tables)]
        layers = [_read_layer(reader, index, n_tables, version) for index in range(n_layers)]
        metadata_end = reader.pos
        if reader.unpack("I", "metadata CRC32")[0] != zlib.crc32(blob[:metadata_end]):
            raise CompressedFormatError("metadata CRC32 mismatch: the header, tables or layer "
                                        "records are corrupt")
        payload = blob[reader.pos:]
        need = -(-payload_bits // 8)
        if len(payload) < need:
            raise CompressedFormatError(f"truncated payload: {len(payload)} of {need} bytes")
        if len(payload) > need:
            raise CompressedFormatError(f"{len(payload) - need} bytes of trailing data after "
                                        "the payload")
        if zlib.crc32(payload) != payload_crc:
            raise CompressedFormatError("payload CRC32 mismatch: the payload is corrupt")
        return cls(tuple(tables), tuple(layers), payload, payload_bits)


# --- compression -------------------------------------------------------------------------------

def _group_cost(freqs, max_length):
    """Table bits + payload bits of coding ``freqs`` with one table of their own."""
    lengths = _optimal_lengths(freqs, max_length)
    return 8 * _table_form(lengths)[1] + int(freqs @ lengths)


def _auto_groups(hists, max_length):
    """Table id per layer by greedy agglomerative merging (module docstring)."""
    groups = {i: ([i], hist) for i, hist in enumerate(hists)}
    cost = {i: _group_cost(hist, max_length) for i, (_, hist) in groups.items()}
    merged_cost = {}
    best_total, best = sum(cost.values()), [members for members, _ in groups.values()]
    next_id = len(hists)
    while len(groups) > 1:
        ids = list(groups)
        for position, a in enumerate(ids):
            for b in ids[position + 1:]:
                if (a, b) not in merged_cost:
                    merged_cost[a, b] = _group_cost(groups[a][1] + groups[b][1], max_length)
        a, b = min(((a, b) for position, a in enumerate(ids) for b in ids[position + 1:]),
                   key=lambda pair: merged_cost[pair] - cost[pair[0]] - cost[pair[1]])
        groups[next_id] = (groups[a][0] + groups[b][0], groups[a][1] + groups[b][1])
        cost[next_id] = merged_cost[a, b]
        for old in (a, b):
            del groups[old], cost[old]
        next_id += 1
        total = sum(cost.values())
        if total < best_total:
            best_total, best = total, [members for members, _ in groups.values()]
    table_of = np.zeros(len(hists), dtype=np.int64)
    for table, members in enumerate(sorted(best, key=min)):
        table_of[members] = table
    return table_of.tolist()


def _table_assignment(hists, tables, max_length):
    if isinstance(tables, str):
        if tables == "per-layer":
            return list(range(len(hists)))
        if tables == "shared":
            return [0] * len(hists)
        if tables == "auto":
            return _auto_groups(hists, max_length)
        raise ValueError(f"tables must be 'auto', 'per-layer', 'shared' or a table id per "
                         f"layer, not {tables!r}")
    ids = [_integer("tables[]", t, 0) for t in tables]
    if len(ids) != len(hists):
        raise ValueError(f"tables: need {len(hists)} non-negative table ids, got {tables!r}")
    renumber = {t: n for n, t in enumerate(dict.fromkeys(ids))}   # order of first use
    return [renumber[t] for t in ids]


def compress_model(layers, max_length=DEFAULT_MAX_LENGTH, block_channels=DEFAULT_BLOCK_CHANNELS,
                   tables="auto", lanes=1):
    """Compress ``{name: uint8 kernels [..., 3, 3]}`` into a :class:`CompressedModel`.

    ``tables``: ``"auto"`` (greedy grouping, module docstring), ``"per-layer"``, ``"shared"``
    (one table for all layers) or a sequence with a table id per layer. A block holds
    ``block_channels`` output channels: ``block_channels * prod(shape[1:-2])`` kernels, split
    into ``lanes`` interleaved streams (module docstring); every block needs at least
    ``lanes`` kernels.
    """
    if not isinstance(layers, Mapping):
        raise TypeError("layers must be a mapping name -> kernels")
    block_channels = _integer("block_channels", block_channels, 1)
    lanes = _integer("lanes", lanes, 1, 0xFFFF)
    max_length = _integer("max_length", max_length, 1, MAX_CODE_LENGTH)
    names = list(layers)
    symbols = [kernel_symbols(layers[name]).ravel() for name in names]
    hists = [histogram(s) for s in symbols]
    table_of = _table_assignment(hists, tables, max_length)
    codes = []
    for table in range(max(table_of, default=-1) + 1):
        pooled = sum((h for h, t in zip(hists, table_of) if t == table), np.zeros(N_SYMBOLS,
                                                                                 np.int64))
        codes.append(CanonicalCode.from_frequencies(pooled, max_length))
    records, streams, base = [], [], 0
    for name, sym, table in zip(names, symbols, table_of):
        shape = layers[name].shape
        block_kernels = max(1, block_channels * math.prod(shape[1:-2])) if len(shape) > 2 else 1
        if block_kernels > _U32_MAX:
            raise ValueError(f"block_channels = {block_channels}: a block of layer {name!r} "
                             f"would hold {block_kernels} kernels, more than the format's "
                             f"2**32 - 1")
        n_streams = -(-len(sym) // block_kernels) * lanes
        layout = CompressedLayer(name, tuple(shape), table, block_kernels, (0,) * n_streams,
                                 lanes)
        stream_counts = layout.stream_counts()
        if n_streams and stream_counts.min() < 1:
            raise ValueError(f"lanes = {lanes}: a block of layer {name!r} holds fewer kernels "
                             "than lanes")
        code = codes[table]
        sym = sym[layout.kernel_order()]
        lengths = code.lengths[sym]
        starts = base + np.cumsum(lengths) - lengths
        firsts = np.cumsum(stream_counts) - stream_counts
        streams.append(_code_bits(code.codewords[sym], lengths))
        records.append(CompressedLayer(name, tuple(shape), table, block_kernels,
                                       tuple(starts[firsts].tolist()), lanes))
        base += int(lengths.sum())
    bits = np.concatenate(streams + [np.zeros(0, dtype=np.uint8)])
    payload = np.packbits(bits, bitorder="little").tobytes()
    return CompressedModel(tuple(codes), tuple(records), payload, int(len(bits)))


def compress_fracbnn(net=None, max_length=DEFAULT_MAX_LENGTH,
                     block_channels=DEFAULT_BLOCK_CHANNELS, tables="auto", lanes=1):
    """The 19 binary convs of a FracBNN (default: the bundled model) as a CompressedModel:
    ``conv1`` and the 18 PG convs, in network order (:func:`kernels.fracbnn_conv_kernels`)."""
    net = net if net is not None else FracBNN.default()
    return compress_model(fracbnn_conv_kernels(net), max_length, block_channels, tables, lanes)


def compress_kernels(kernels, max_length=DEFAULT_MAX_LENGTH,
                     block_channels=DEFAULT_BLOCK_CHANNELS):
    """uint8 0/1 kernels ``[..., 3, 3]`` -> a serialised blob (one layer named ``kernels``)."""
    return compress_model({"kernels": kernels}, max_length, block_channels).to_bytes()


def decompress_kernels(blob):
    """The kernels of a one-layer blob from :func:`compress_kernels`: uint8 ``[..., 3, 3]``."""
    model = CompressedModel.from_bytes(blob)
    if len(model.layers) != 1:
        raise ValueError(f"the blob holds {len(model.layers)} layers; use "
                         "CompressedModel.from_bytes(blob).decode()")
    return model.decode()[model.layers[0].name]
