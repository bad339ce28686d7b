"""Fixed-latency datapaths between two streams: the pipeline control shared by the units."""

from amaranth.hdl import Signal

__all__ = ["lockstep_pipeline", "delay_line"]


def _register(m, advance, value, name):
    """A register per value (recursing into lists and dicts) loaded while ``advance`` is high."""
    if isinstance(value, dict):
        return {key: _register(m, advance, item, f"{name}_{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_register(m, advance, item, f"{name}{index}") for index, item in enumerate(value)]
    register = Signal(value.shape(), name=name)
    with m.If(advance):
        m.d.sync += register.eq(value)
    return register


def lockstep_pipeline(m, i, o, stages, name="stage"):
    """Connect stream ``i`` to stream ``o`` through ``len(stages)`` register stages.

    Each function in ``stages`` gets the previous stage's registered values (for the first, the
    ``i`` payload) and returns what the next register stage holds: a value, or a dict or list of
    them. The last stage returns a dict of ``o`` payload fields. A transfer on ``i`` in cycle
    ``t`` shows on ``o`` from cycle ``t + len(stages)`` if ``o`` does not stall.

    All stages move together: the pipeline advances whenever its last register is empty or being
    read (``advance = ~o.valid | o.ready``), so one transfer per cycle streams through, and the
    whole pipeline holds still while ``o`` stalls. ``i.ready`` depends combinationally on
    ``o.ready``; ``o.valid`` does not. Reset empties the pipeline. Returns ``advance``.
    """
    advance = Signal(name=f"{name}_advance")
    valid = i.valid
    value = i.payload
    for index, stage in enumerate(stages):
        value = _register(m, advance, stage(value), f"{name}{index}")
        valid_register = Signal(name=f"{name}{index}_valid")
        with m.If(advance):
            m.d.sync += valid_register.eq(valid)
        valid = valid_register
    m.d.comb += [
        advance.eq(~o.valid | o.ready),
        i.ready.eq(advance),
        o.valid.eq(valid),
    ]
    for field, item in value.items():
        _assign(m, o.payload[field], item)
    return advance


def _assign(m, target, value):
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _assign(m, target[index], item)
    else:
        m.d.comb += target.eq(value)


def delay_line(m, value, depth, name):
    """Registers that delay ``value`` by 1 .. ``depth`` cycles: element ``k - 1`` lags ``k``.

    For fixed-latency pipelines that never stall: a value issued with a beat meets the beat's
    results ``k`` cycles later at element ``k - 1``.
    """
    stages, previous = [], value
    for index in range(depth):
        register = Signal(value.shape(), name=f"{name}_d{index + 1}")
        m.d.sync += register.eq(previous)
        stages.append(register)
        previous = register
    return stages
