"""cocotb test of the host driver against the whole accelerator behind its AXI4-Lite interface
(:class:`boards.ultra96.axi_accelerator.AXILiteAccelerator` around
:class:`rtl.accelerator.FracBNNAccelerator`).

The driver code that runs on the board (:class:`boards.ultra96.driver.Driver`) runs here in a
``cocotb.task.bridge`` thread; its register accesses go through cocotbext-axi's AXI-Lite master
(:class:`boards.ultra96.sim_bus.CocotbAxiLiteBus`) with random pauses on every channel. The images
come from the ``.npz`` named by ``$FRACBNN_SIM_DATA`` (``pixels``); the logits and cycle counts
the driver got are written to ``$FRACBNN_SIM_OUT`` and must equal the golden model's logits.
Run by ``tests/test_ultra96_sim.py``.
"""

import os

import cocotb
import numpy as np
from cocotb.task import bridge

from boards.ultra96.driver import Driver
from boards.ultra96.sim_bus import CocotbAxiLiteBus
from fracbnn_golden import FracBNN
from sim.runner import testbench_params
from sim.tb_ultra96_registers import Bench

DATA_ENV = "FRACBNN_SIM_DATA"
OUT_ENV = "FRACBNN_SIM_OUT"


@cocotb.test()
async def driver_classifies_images(dut):
    """Every image of the data file through Driver.classify: logits equal to the golden
    model's; cycles as the accelerator counted them."""
    params = testbench_params()
    with np.load(os.environ[DATA_ENV]) as data:
        images = data["pixels"]
    bench = await Bench(dut, pause=0.2, seed=11).start()
    bus = CocotbAxiLiteBus(bench.master)

    def host():
        # The timeout is in simulated seconds (the backend's clock).
        driver = Driver(bus, timeout=params["timeout_s"])
        return [driver.classify(image) for image in images]

    results = await bridge(host)()
    logits = np.array([row for row, _ in results], np.int16)
    cycles = np.array([count for _, count in results], np.int64)
    if os.environ.get(OUT_ENV):
        np.savez(os.environ[OUT_ENV], logits=logits, cycles=cycles)
    dut._log.info("cycles %s; %d register reads, %d writes", cycles.tolist(), bus.reads,
                  bus.writes)
    expected = FracBNN.default().logits(images)
    np.testing.assert_array_equal(logits, expected)
