"""The Huffman decoder's throughput on the real kernel streams, measured in simulation.

Runs the throughput tests of ``sim/tb_huffman.py`` (Verilator; the decoders with 1 and 4
symbols per cycle of :func:`sim.huffman_cases.huffman_decoders`): every block of the bundled
FracBNN model and the first blocks of every BNN-PYNQ CNV layer, in the decoders' lanes, back
to back with no gaps or stalls. Each gives the cycles from the first command to the last symbol
beat; the testbench has checked the first blocks alone against
:func:`rtl.huffman.decode_cycles`.
"""

import json

from sim.huffman_cases import PER_CYCLE, decoder_unit, huffman_case

__all__ = ["STREAMS", "measure", "symbols_per_cycle"]

# Stream name in the testbench -> the model it comes from (as in the compression report).
STREAMS = {"fracbnn": "fracbnn_cifar10", "cnv": "bnn_pynq_cnv_w1a1"}


def measure(progress=print):
    """A list of measurements, one per (stream, decoder): ``model``, ``stream``,
    ``decoder_symbols_per_cycle`` (N), ``blocks``, ``symbols``, ``cycles`` and
    ``symbols_per_cycle`` (measured). Raises :class:`sim.runner.SimulationFailed` when a
    test fails (a decoded symbol or the cycle count differs)."""
    tests = [f"{stream}_throughput_{decoder_unit(n)}" for stream in STREAMS for n in PER_CYCLE]
    progress(f"Huffman decoder throughput (Verilator): {', '.join(tests)} ...")
    result = huffman_case().run(simulator="verilator", testcase=tests)
    rows = []
    for stream, model in STREAMS.items():
        for n in PER_CYCLE:
            path = result.build_dir / f"throughput_{stream}_{decoder_unit(n)}.json"
            figures = json.loads(path.read_text())
            rows.append({"model": model, "stream": stream, **figures,
                         "symbols_per_cycle": round(figures["symbols_per_cycle"], 4)})
    return rows


def symbols_per_cycle(rows, decoder_symbols_per_cycle, model="fracbnn_cifar10"):
    """The measured rate of the decoder with ``decoder_symbols_per_cycle`` on ``model``'s
    stream, or None when it was not measured (that decoder is not in the test design)."""
    for row in rows:
        if row["model"] == model and row["decoder_symbols_per_cycle"] == decoder_symbols_per_cycle:
            return row["symbols_per_cycle"]
    return None
