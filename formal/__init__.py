"""Formal proofs of RTL units: Amaranth assertions, ``yowasp-sby`` (docs/architecture.md §8.3).

``python -m formal`` (or ``nox -s formal``) runs every proof of :mod:`formal.huffman_decoder`.
"""
