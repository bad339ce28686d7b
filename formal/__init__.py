"""Formal proofs of RTL units with Amaranth assertions and ``yowasp-sby`` (DESIGN.md §6).

``python -m formal`` (or ``nox -s formal``) runs every proof of :mod:`formal.huffman_decoder`.
"""
