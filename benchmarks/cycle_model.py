"""The sweep's cycles per image: the analytical cycle model at any configuration.

:class:`CycleModel` asks :class:`rtl.builder.UnitBuilder` for the cycle model of a configuration
(:func:`rtl.schedule.estimate_cycles` with its pipeline latencies and weight-decoding times,
computed from the units' parameters; nothing is built), which is what
:meth:`rtl.accelerator.FracBNNAccelerator.estimate_cycles` of that configuration computes.
"""

import sys

from rtl.builder import UnitBuilder
from rtl.schedule import CONFIG_KEYS, AcceleratorConfig

__all__ = ["CycleModel", "config_of", "sweep_cycles", "validation_rows"]


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def config_of(point):
    """The :class:`AcceleratorConfig` of a sweep point (a dict with its three keys)."""
    return AcceleratorConfig(**{key: point[key] for key in CONFIG_KEYS})


class CycleModel:
    """The analytical cycle model of the accelerator at any configuration, for ``net`` (default:
    the bundled model)."""

    def __init__(self, net=None):
        if net is None:
            from fracbnn_golden import FracBNN
            net = FracBNN.default()
        self.net = net
        self._compressed = {}

    def builder(self, config):
        """The :class:`rtl.builder.UnitBuilder` of ``config`` (the compressed kernels, which
        depend on the decoder's lanes alone, are shared between configurations)."""
        key = config.decoder_symbols_per_cycle
        builder = UnitBuilder(self.net, config, compressed=self._compressed.get(key))
        self._compressed[key] = builder.compressed
        return builder

    def estimate(self, config):
        """The :class:`rtl.schedule.CycleEstimate` of one image at ``config`` (an
        :class:`AcceleratorConfig`, including the decoder's symbols per cycle). Raises
        ValueError where the model does not cover the configuration. The decoder's symbols
        per cycle enter through the weight cache's decoding times
        (:meth:`rtl.builder.UnitBuilder.decode_cycles`), which the model turns into the
        engine's waits for weights."""
        return self.builder(config).estimate_cycles()


def sweep_cycles(grid, model, progress=_progress):
    """A point per configuration of ``grid``: its parameters, BMAC lanes, cycles per image (the
    interval between back-to-back images) and each image's latency, cycles spent waiting for
    weights and images/s at ``grid.clock_mhz``. A configuration
    without a cycle count (a unit refuses it, or the model does not cover it) has
    ``cycles_per_image`` None and the reason in ``note``."""
    points = []
    configs = grid.configs()
    progress(f"cycle model: {len(configs)} configurations ...")
    for config in configs:
        point = {key: getattr(config, key) for key in CONFIG_KEYS}
        point["bmac_lanes"] = config.lanes
        try:
            estimate = model.estimate(config)
        except ValueError as error:
            points.append({**point, "cycles_per_image": None, "latency_cycles": None,
                           "weight_wait_cycles": None, "images_per_s": None,
                           "note": str(error)})
            continue
        points.append({**point, "cycles_per_image": estimate.interval,
                       "latency_cycles": estimate.total,
                       "weight_wait_cycles": sum(estimate.weight_waits.values()),
                       "images_per_s": round(grid.clock_mhz * 1e6 / estimate.interval, 1)})
    return points


def validation_rows(model, simulated):
    """The table "analytical vs simulated": ``simulated`` lists measured simulations, each a
    dict with ``config`` (the three configuration keys) and ``cycles_per_image`` (the interval
    between back-to-back images); each row adds the model's interval at that configuration and
    the relative difference."""
    rows = []
    for measured in simulated:
        config = AcceleratorConfig(**measured["config"])
        analytical = model.estimate(config).interval
        cycles = measured["cycles_per_image"]
        rows.append({**{key: getattr(config, key) for key in CONFIG_KEYS},
                     "simulated": cycles, "analytical": analytical,
                     "difference": round((analytical - cycles) / cycles, 5)})
    return rows
