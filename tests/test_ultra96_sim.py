# amaranth: UnusedElaboratable=no
"""The Ultra96 AXI4-Lite interface in Verilator (cocotb + cocotbext-axi).

* The register tests run on a small stand-in accelerator (``sim/tb_ultra96_registers.py``;
  built in about 30 s).
* The end-to-end test classifies a real photo with the host driver through the AXI-Lite port of
  the whole accelerator (``sim/tb_ultra96_driver.py``), with the accelerator's simulation
  settings (behavioural popcounts, top-level VPI access). Its first build takes two to three
  minutes on two cores; it is cached in ``build/sim/`` under a key of the RTL sources (like
  :func:`sim.accelerator.source_key`), so later runs take about a minute.
"""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cocotbext.axi", reason="cocotbext-axi is not installed (pip install "
                                            "cocotbext-axi, or the project's test extra)")

from boards.ultra96.axi_accelerator import AXILiteAccelerator  # noqa: E402
from sim.runner import run  # noqa: E402

BOARD_DIR = Path(__file__).resolve().parent.parent / "boards"
# Simulated seconds the driver waits for a result (an image takes about 80 us at 250 MHz).
E2E_TIMEOUT_S = 2e-3

REGISTER_TESTS = {
    "identification_and_idle_status",
    "scratch_and_window_byte_writes",
    "illegal_accesses_get_slverr",
    "pipelined_reads_and_writes",
    "refused_commands_while_busy",
    "classify_under_random_timing",
    "soft_reset_abandons_an_image_and_clears_error",
    "driver_classifies_through_the_bridge",
}


def test_register_interface_on_a_stand_in_accelerator():
    from sim.tb_ultra96_registers import StubAccelerator

    result = run(AXILiteAccelerator(StubAccelerator()), "sim.tb_ultra96_registers", {},
                 name="ultra96_axi_stub")
    assert {test.name for test in result.tests} == REGISTER_TESTS
    assert result.passed


DMA_TESTS = {
    "batch_under_random_timing",
    "error_responses_end_the_batch",
    "bad_batches_are_refused",
    "soft_reset_in_the_middle_of_a_batch",
}


def test_batch_engine_on_a_stand_in_accelerator():
    from sim.tb_ultra96_registers import StubAccelerator

    result = run(AXILiteAccelerator(StubAccelerator()), "sim.tb_ultra96_dma", {},
                 name="ultra96_dma_stub")
    assert {test.name for test in result.tests} == DMA_TESTS
    assert result.passed


def _e2e_source_key(net, config):
    """What the wrapped accelerator's Verilog depends on: the accelerator's source key, the two
    wrapper modules and the register map's table (not the driver or the documentation, so
    editing those does not cost a rebuild)."""
    from boards.ultra96 import registers
    from sim.accelerator import source_key

    digest = hashlib.sha256(source_key(net, config).encode())
    for path in (BOARD_DIR / "axi_lite.py", BOARD_DIR / "ultra96" / "axi_accelerator.py"):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(repr((registers.REGISTERS, registers.ADDR_WIDTH, registers.ID_VALUE,
                        registers.VERSION_VALUE, registers.PIXELS,
                        registers.CLASSES)).encode())
    return digest.hexdigest()


def test_driver_classifies_a_photo_through_axi_lite():
    from fracbnn_golden import FracBNN
    from fracbnn_golden.images import bundled_photos, load_image
    from rtl.accelerator import FracBNNAccelerator
    from rtl.popcount import BehaviouralPopcount
    from rtl.schedule import AcceleratorConfig

    net, config = FracBNN.default(), AcceleratorConfig()
    core = FracBNNAccelerator(net, config)
    photo = bundled_photos()[0]
    pixels = load_image(photo)[None]
    with tempfile.TemporaryDirectory(prefix="fracbnn-u96-") as folder:
        data, out = Path(folder) / "pixels.npz", Path(folder) / "out.npz"
        np.savez(data, pixels=pixels)
        run(AXILiteAccelerator(core), "sim.tb_ultra96_driver", {"timeout_s": E2E_TIMEOUT_S},
            name="ultra96_axi_fracbnn", source_key=_e2e_source_key(net, config),
            platform=BehaviouralPopcount(), top_level_only=True,
            extra_env={"FRACBNN_SIM_DATA": str(data), "FRACBNN_SIM_OUT": str(out)})
        with np.load(out) as produced:
            logits, cycles = produced["logits"], produced["cycles"]
    np.testing.assert_array_equal(logits, net.logits(pixels))
    # The window streams one pixel per cycle (the register tests check that there are no
    # bubbles), so the count is close to the analytical model's; a streamer at half rate would
    # add 1024 cycles (5 %).
    estimate = core.estimate_cycles().total
    assert abs(int(cycles[0]) - estimate) <= 0.01 * estimate, (photo.name, cycles, estimate)
