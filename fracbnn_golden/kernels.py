"""3x3 binary kernels as 9-bit symbols: extraction, histograms, entropy and lossy clustering.

A *kernel* is the 3x3 slice ``w[o, i]`` of one (output channel, input channel) pair of a binary
convolution. Its *symbol* is

    bnum = sum(bit[ky, kx] << (ky * 3 + kx))        (bit = 1 for +1, 0 for -1)

i.e. the row-major flatten of the slice with element 0 (top left) in the least significant bit
and element 8 (bottom right) in the most significant bit. There are 512 symbols; 0 is the
all -1 kernel, 511 the all +1 kernel and ``511 ^ b`` the complement of ``b``.
"""

from importlib import resources
from pathlib import Path

import numpy as np

from .conv import TAPS
from .model import PG_CONVS

__all__ = ["KERNEL_BITS", "N_SYMBOLS", "check_kernels", "kernel_symbols", "symbols_to_kernels",
           "histogram", "entropy_bits", "cluster_map", "cluster_kernels",
           "fracbnn_conv_kernels", "bnn_pynq_cnv_kernels"]

KERNEL_BITS = TAPS                 # one bit per tap
N_SYMBOLS = 1 << KERNEL_BITS
_BIT_WEIGHTS = 1 << np.arange(KERNEL_BITS)
# _SYMBOL_BITS[s] = the 9 bits of symbol s, bit i at index i.
_SYMBOL_BITS = ((np.arange(N_SYMBOLS)[:, None] >> np.arange(KERNEL_BITS)) & 1).astype(np.uint8)


def check_kernels(kernels):
    """Validate an array of binary kernels: uint8 of 0/1 with shape ``[..., 3, 3]``."""
    if not isinstance(kernels, np.ndarray):
        raise TypeError(f"kernels must be a numpy array, not {type(kernels).__name__}")
    if kernels.dtype != np.uint8:
        raise TypeError(f"kernels must be uint8 (0/1), not {kernels.dtype}")
    if kernels.ndim < 2 or kernels.shape[-2:] != (3, 3):
        raise ValueError(f"kernels must have shape [..., 3, 3], not {list(kernels.shape)}")
    if kernels.size and kernels.max() > 1:
        raise ValueError(f"kernels must hold only 0 and 1, found {kernels.max()}")
    return kernels


def kernel_symbols(kernels):
    """uint8 kernels ``[..., 3, 3]`` -> int64 symbols ``[...]`` (see the module docstring)."""
    check_kernels(kernels)
    flat = kernels.reshape(kernels.shape[:-2] + (KERNEL_BITS,)).astype(np.int64)
    return flat @ _BIT_WEIGHTS


def symbols_to_kernels(symbols):
    """Symbols ``[...]`` (0..511) -> uint8 kernels ``[..., 3, 3]`` (inverse of kernel_symbols)."""
    symbols = np.asarray(symbols)
    return _SYMBOL_BITS[symbols].reshape(symbols.shape + (3, 3))


def histogram(symbols):
    """Count of each of the 512 symbols: int64 ``[512]``."""
    return np.bincount(np.asarray(symbols).ravel(), minlength=N_SYMBOLS).astype(np.int64)


def entropy_bits(freqs):
    """Shannon entropy in bits per symbol of the empirical distribution ``freqs`` (0 if empty)."""
    freqs = np.asarray(freqs, dtype=np.float64)
    total = freqs.sum()
    if total == 0:
        return 0.0
    p = freqs[freqs > 0] / total
    return float(-(p * np.log2(p)).sum())


def cluster_map(freqs, keep):
    """Symbol -> replacement symbol (int64 ``[512]``) keeping the ``keep`` most frequent patterns.

    The kept patterns are the ``keep`` used symbols of highest frequency (ties: the smaller
    symbol first). Every other symbol maps to the kept pattern nearest in Hamming distance;
    among equally near ones to the more frequent one, then to the smaller symbol. Kept symbols
    map to themselves. With ``keep`` >= the number of used symbols the map is the identity.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    freqs = np.asarray(freqs)
    used = np.flatnonzero(freqs)
    if len(used) <= keep:
        return np.arange(N_SYMBOLS)
    # Rank by frequency descending, then symbol ascending (lexsort's last key is the primary).
    ranked = used[np.lexsort((used, -freqs[used]))]
    kept = ranked[:keep]
    distance = np.bitwise_count(np.arange(N_SYMBOLS)[:, None] ^ kept[None, :])
    # argmin returns the first minimum, i.e. the best-ranked of the equally near patterns.
    return kept[np.argmin(distance, axis=1)]


def cluster_kernels(kernels, keep):
    """Lossy clustering: replace each kernel not among the ``keep`` most frequent patterns of
    ``kernels`` by the nearest kept pattern (rule: :func:`cluster_map`). Same shape and dtype."""
    symbols = kernel_symbols(kernels)
    return symbols_to_kernels(cluster_map(histogram(symbols), keep)[symbols])


def fracbnn_conv_kernels(net):
    """The 19 binary 3x3 convolutions of a FracBNN, in network order: name -> uint8 kernels.

    Names are the parameter keys without ``.weight``: ``conv1`` (the thermometer input conv,
    [16, 96, 3, 3]) and the 18 precision-gated convs ``layer{L}_{b}.conv{k}``.
    """
    names = ["conv1"] + [conv.name for conv in PG_CONVS]
    return {name: net.params[f"{name}.weight"] for name in names}


def bnn_pynq_cnv_kernels():
    """The bundled BNN-PYNQ CNV-W1A1 conv kernels ``conv0``..``conv5`` (see data/README.md)."""
    path = resources.files(__package__) / "data" / "bnn_pynq_cnv_w1a1_kernels.npz"
    with resources.as_file(path) as p, np.load(Path(p), allow_pickle=False) as data:
        return {f"conv{i}": data[f"conv{i}_w"] for i in range(6)}
