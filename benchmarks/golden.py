"""Golden-model speed: images per second of ``FracBNN.logits`` on a batch of 256, one core."""

import os
import time

import numpy as np

from fracbnn_golden import FracBNN

BATCH = 256
REPEATS = 3


def pin_to_one_core():
    """Run on a single CPU so the figure does not depend on the machine's core count."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def measure(batch=BATCH, repeats=REPEATS, seed=0):
    """Best of ``repeats`` timed runs on random images: a dict of the measured figures."""
    pin_to_one_core()
    net = FracBNN.default()
    pixels = np.random.default_rng(seed).integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8)
    net.logits(pixels[:16])                       # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.logits(pixels)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"golden_batch": batch, "golden_seconds": best, "golden_images_per_s": batch / best}
