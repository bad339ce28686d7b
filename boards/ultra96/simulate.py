# amaranth: UnusedElaboratable=no
"""The whole board path in RTL simulation: the accelerator behind its AXI4-Lite registers and
its AXI4 batch master, driven by the host driver (:class:`boards.ultra96.driver.Driver`) through
cocotbext-axi, with an ``AxiRam`` as the DDR (``sim/tb_ultra96_driver.py``).

:func:`simulate_board` is what ``python -m boards.ultra96 simulate`` and
``tests/test_ultra96_sim.py`` run: both use the one Verilator build of the design (the
accelerator's simulation settings: behavioural popcounts, VPI access to the top level only),
cached in ``build/sim/`` under a key of the sources (:func:`source_key`), so the first run
builds for two to three minutes on two cores and later runs start at once.
"""

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BoardRun", "TEST_MODULE", "TOPLEVEL", "simulate_board", "source_key"]

BOARD_DIR = Path(__file__).resolve().parent.parent
TOPLEVEL = "ultra96_axi_fracbnn"
TEST_MODULE = "sim.tb_ultra96_driver"
# Simulated seconds the driver waits per image (an image takes about 80 us at 250 MHz).
TIMEOUT_PER_IMAGE_S = 2e-3


def source_key(net, config):
    """What the wrapped accelerator's Verilog depends on: the accelerator's source key, the
    board wrapper's modules and the register map's table (not the driver or the documentation,
    so editing those does not cost a rebuild)."""
    from sim.accelerator import source_key as core_key

    from . import registers

    digest = hashlib.sha256(core_key(net, config).encode())
    for path in (BOARD_DIR / "axi_lite.py", BOARD_DIR / "axi4.py",
                 BOARD_DIR / "ultra96" / "axi_accelerator.py", BOARD_DIR / "ultra96" / "dma.py"):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(repr((registers.REGISTERS, registers.ADDR_WIDTH, registers.ID_VALUE,
                        registers.VERSION_VALUE, registers.PIXELS, registers.CLASSES,
                        registers.RECORD_FIELDS, registers.DMA_ADDR_WIDTH,
                        registers.DMA_DATA_WIDTH, registers.COUNT_BITS,
                        registers.MAX_BURST_BEATS)).encode())
    return digest.hexdigest()


@dataclass
class BoardRun:
    """The outcome of :func:`simulate_board`: ``logits`` (int16 ``[N, 10]``) and ``cycles``
    (int64 ``[N]``) as the driver got them, ``batch_cycles`` (int64, one per batch: the
    ``BATCH_CYCLES`` register, START_BATCH to the interrupt; empty for single images), the
    core's ``latency`` (an image that finds it idle) and ``interval`` (between back-to-back
    images) from its cycle model, and the :class:`sim.runner.SimResult`. ``logits`` is None
    when the simulation produced nothing."""
    logits: object
    cycles: object
    batch_cycles: object
    latency: int
    interval: int
    result: object


def simulate_board(pixels, batch=None, *, net=None, progress=False, check=False):
    """Classify ``pixels`` (uint8 ``[N, 3, 32, 32]``) on the simulated board: in batches of
    ``batch`` images through ``Driver.classify_batch`` (the AXI4 master, the interrupt), or with
    ``batch`` None one by one through ``Driver.classify`` (the AXI4-Lite image window).
    ``check``: raise :class:`sim.runner.SimulationFailed` when the testbench fails (it compares
    the logits with the golden model). Returns a :class:`BoardRun`."""
    from fracbnn_golden import FracBNN
    from rtl.accelerator import FracBNNAccelerator
    from rtl.popcount import BehaviouralPopcount
    from rtl.schedule import AcceleratorConfig
    from sim.runner import run

    from .axi_accelerator import AXILiteAccelerator

    net = FracBNN.default() if net is None else net
    config = AcceleratorConfig()
    core = FracBNNAccelerator(net, config)
    with tempfile.TemporaryDirectory(prefix="fracbnn-u96-") as folder:
        data, out = Path(folder) / "pixels.npz", Path(folder) / "out.npz"
        model = Path(folder) / "model.npz"
        np.savez(data, pixels=pixels)
        np.savez(model, **net.params)
        result = run(AXILiteAccelerator(core), TEST_MODULE,
                     {"timeout_per_image_s": TIMEOUT_PER_IMAGE_S}, name=TOPLEVEL,
                     source_key=source_key(net, config), platform=BehaviouralPopcount(),
                     top_level_only=True, check=check, progress=progress,
                     extra_env={"FRACBNN_SIM_DATA": str(data), "FRACBNN_SIM_OUT": str(out),
                                "FRACBNN_SIM_MODEL": str(model),
                                "FRACBNN_SIM_BATCH": str(batch or 0)})
        logits = cycles = batch_cycles = None
        if out.exists():
            with np.load(out) as produced:
                logits, cycles = produced["logits"], produced["cycles"]
                batch_cycles = produced["batch_cycles"]
    estimate = core.estimate_cycles()
    return BoardRun(logits, cycles, batch_cycles, estimate.total, estimate.interval, result)
