"""The Ultra96 board path: what a batch through DDR costs the accelerator and the host.

* ``board_cycles_per_image``: ``batch_cycles / N`` for a batch of N = 16 images through the AXI4
  master in the Verilator simulation of the board design
  (:func:`boards.ultra96.simulate.simulate_board`: AxiRam with random pauses, the driver waiting
  on the interrupt), next to the core's interval from its cycle model.
* ``host_us_per_image``: the host's Python time per image of ``Driver.classify_batch`` on a
  batch of 256 (copying the images in, the register accesses, viewing the records) against the
  memory-backed stand-in (:mod:`boards.ultra96.standin`), which has no bus latency: the host's
  own cost, best of several runs on this machine.
"""

import time

import numpy as np

__all__ = ["HOST_BATCH", "SIM_BATCH", "host_us_per_image", "measure", "section"]

SIM_BATCH = 16
HOST_BATCH = 256
REPEATS = 20


def _images(count, seed):
    return np.random.default_rng(seed).integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)


def host_us_per_image(batch=HOST_BATCH, repeats=REPEATS, seed=0):
    """Best of ``repeats`` timed ``classify_batch`` calls on ``batch`` random images against the
    stand-in, in microseconds per image (the first call, which allocates, is not timed)."""
    from boards.ultra96.driver import Driver
    from boards.ultra96.standin import StandInAccelerator, standin_logits

    bus = StandInAccelerator()
    driver = Driver(bus, memory=bus.memory)
    pixels = _images(batch, seed)
    logits, _ = driver.classify_batch(pixels)
    if not (logits == standin_logits(pixels)).all():
        raise AssertionError("classify_batch returned other logits than the stand-in wrote")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        driver.classify_batch(pixels)
        times.append(time.perf_counter() - start)
    return min(times) / batch * 1e6


def measure(simulate=True, progress=print):
    """The board figures; without ``simulate`` only the host's (no Verilator run)."""
    results = {"host_batch": HOST_BATCH}
    progress(f"board: classify_batch on {HOST_BATCH} images against the stand-in ...")
    results["host_us_per_image"] = round(host_us_per_image(), 3)
    if simulate:
        from boards.ultra96.simulate import simulate_board

        progress(f"board: a batch of {SIM_BATCH} images through the AXI4 master (Verilator) ...")
        board = simulate_board(_images(SIM_BATCH, 1), SIM_BATCH, check=True)
        per_image = float(board.batch_cycles[0]) / SIM_BATCH
        results.update({
            "board_batch": SIM_BATCH,
            "board_batch_cycles": int(board.batch_cycles[0]),
            "board_cycles_per_image": round(per_image, 1),
            "core_interval": board.interval,
            "board_over_core": round(per_image / board.interval, 4),
        })
    return results


def section(results, clock_hz):
    """The BENCHMARKS.md section (lines) of ``results`` from :func:`measure`."""
    out = ["## Board path (Ultra96: batches through DDR)", ""]
    if "board_cycles_per_image" in results:
        per_image = results["board_cycles_per_image"]
        out += [f"A batch of {results['board_batch']} random images through the AXI4 master on "
                f"`S_AXI_HP0_FPD` in the Verilator simulation of the board design (the driver "
                f"through cocotbext-axi, AxiRam as the DDR with random pauses on every channel, "
                f"waiting on the interrupt): {results['board_batch_cycles']:,} cycles from "
                f"`START_BATCH` to the interrupt, **{per_image:,.1f} cycles per image**, "
                f"{results['board_over_core']:.4f} times the core's interval of "
                f"{results['core_interval']:,} cycles (its cycle model), i.e. "
                f"{clock_hz / per_image:,.0f} images/s at {clock_hz / 1e6:g} MHz: the next "
                f"image is fetched while one is computed.", ""]
    else:
        out += ["The batch simulation was not run (`--skip-sim`).", ""]
    out += [f"Host side: `Driver.classify_batch` on {results['host_batch']} images against the "
            f"memory-backed stand-in (`boards/ultra96/standin.py`, no bus latency), best of "
            f"{REPEATS}: **{results['host_us_per_image']:.2f} us per image** of Python "
            f"(copying the images in, the register accesses, viewing the records; wall clock "
            f"on this machine). The image-by-image register window costs about 460 us per "
            f"image here.", ""]
    return out
