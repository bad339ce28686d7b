# amaranth: UnusedElaboratable=no
"""The Ultra96 interfaces in Verilator (cocotb + cocotbext-axi).

* The register tests and the batch engine's tests run on a small stand-in accelerator
  (``sim/tb_ultra96_registers.py``, ``sim/tb_ultra96_dma.py``; built in about 30 s each).
* The end-to-end tests run the host driver against the whole accelerator
  (:func:`boards.ultra96.simulate.simulate_board`, ``sim/tb_ultra96_driver.py``): a real photo
  through the AXI-Lite image window, and a batch of 16 images through the AXI4 master and the
  interrupt. They share one build with the accelerator's simulation settings (behavioural
  popcounts, top-level VPI access), which takes two to three minutes on two cores the first
  time; it is cached in ``build/sim/`` under a key of the sources, so later runs take about a
  minute.
"""

import numpy as np
import pytest

pytest.importorskip("cocotbext.axi", reason="cocotbext-axi is not installed (pip install "
                                            "cocotbext-axi, or the project's test extra)")

from boards.ultra96.axi_accelerator import AXILiteAccelerator  # noqa: E402
from boards.ultra96.simulate import simulate_board  # noqa: E402
from sim.runner import run  # noqa: E402

# The batch of the done criterion of the board's throughput.
BOARD_BATCH = 16

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

DMA_TESTS = {
    "batch_under_random_timing",
    "error_responses_end_the_batch",
    "bad_batches_are_refused",
    "soft_reset_in_the_middle_of_a_batch",
}


@pytest.mark.parametrize("testbench, name, tests", [
    ("sim.tb_ultra96_registers", "ultra96_axi_stub", REGISTER_TESTS),
    ("sim.tb_ultra96_dma", "ultra96_dma_stub", DMA_TESTS),
], ids=["register_interface", "batch_engine"])
def test_board_interface_on_a_stand_in_accelerator(testbench, name, tests):
    from sim.tb_ultra96_registers import StubAccelerator

    result = run(AXILiteAccelerator(StubAccelerator()), testbench, {}, name=name)
    assert {test.name for test in result.tests} == tests
    assert result.passed


def _board_images(count):
    """The bundled photos, then random images, ``count`` in all."""
    from fracbnn_golden.images import bundled_photos, load_image

    photos = [load_image(path) for path in bundled_photos()][:count]
    extra = np.random.default_rng(18).integers(0, 256, (count - len(photos), 3, 32, 32),
                                               dtype=np.uint8)
    return np.concatenate([np.stack(photos), extra]) if photos else extra


def test_driver_classifies_a_photo_through_axi_lite():
    from fracbnn_golden import FracBNN

    pixels = _board_images(1)
    board = simulate_board(pixels, check=True)
    np.testing.assert_array_equal(board.logits, FracBNN.default().logits(pixels))
    # The window streams one pixel per cycle (the register tests check that there are no
    # bubbles), so the count is close to the analytical model's latency; a streamer at half
    # rate would add 1024 cycles (5 %).
    assert abs(int(board.cycles[0]) - board.latency) <= 0.01 * board.latency, board.cycles


def test_a_batch_through_ddr_runs_at_the_cores_interval():
    """16 images in one batch through the AXI4 master (AxiRam with random pauses), waiting on
    the interrupt: bit-exact, the first image at the core's latency, and the whole batch within
    2 % of 16 times the core's interval (the next image is fetched, and taken in by the core,
    while one is computed)."""
    from fracbnn_golden import FracBNN

    pixels = _board_images(BOARD_BATCH)
    board = simulate_board(pixels, BOARD_BATCH, check=True)
    np.testing.assert_array_equal(board.logits, FracBNN.default().logits(pixels))
    assert board.cycles.dtype == np.int64 and board.batch_cycles.shape == (1,)
    # The first image's own count is the core's latency (its pixels arrive one per cycle from
    # the buffer); every later one waited in the core behind the one before.
    assert abs(int(board.cycles[0]) - board.latency) <= 0.001 * board.latency, board.cycles
    assert (board.cycles[1:] > board.latency).all(), board.cycles
    per_image = int(board.batch_cycles[0]) / BOARD_BATCH
    assert abs(per_image - board.interval) <= 0.02 * board.interval, (per_image, board.interval)
    # Without the overlap each image would add its fetch (192 beats, more with the pauses).
    assert per_image < board.interval + 192, (per_image, board.interval)
