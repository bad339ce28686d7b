"""The RTL testbenches of the regression: which component, which cocotb module, which
parameters. Used by ``python -m sim`` and the pytest entry points."""

from dataclasses import dataclass

from rtl.xnor_popcount import XnorPopcountArray

from .runner import run

__all__ = ["SimCase", "REGRESSION", "xnor_popcount_case"]


@dataclass(frozen=True)
class SimCase:
    """A component factory, the cocotb test module and the parameters it is built with."""

    name: str
    build: object
    test_module: str
    params: dict

    def run(self, **kwargs):
        """Build and run this case with :func:`sim.runner.run` (keyword arguments pass on)."""
        component = self.build(**self.params)
        return run(component, self.test_module, self.testbench_params(component),
                   name=self.name, **kwargs)

    def testbench_params(self, component):
        return {**self.params, **{key: getattr(component, key) for key in _DERIVED}}


# Attributes of the built component the testbench needs besides the constructor parameters.
_DERIVED = ("acc_width", "groups", "latency")


def xnor_popcount_case(pe, simd, max_beats=36, groups=1, popcount_stages=None):
    """An :class:`rtl.xnor_popcount.XnorPopcountArray` configuration under
    ``sim/tb_xnor_popcount.py``."""
    params = {"pe": pe, "simd": simd, "max_beats": max_beats, "groups": groups}
    if popcount_stages is not None:
        params["popcount_stages"] = popcount_stages
    name = f"xnor_popcount_pe{pe}_simd{simd}" + (f"_g{groups}" if groups > 1 else "")
    return SimCase(name, XnorPopcountArray, "sim.tb_xnor_popcount", params)


REGRESSION = [
    xnor_popcount_case(pe=4, simd=16),
    xnor_popcount_case(pe=2, simd=64),
    xnor_popcount_case(pe=3, simd=17, popcount_stages=0),
    xnor_popcount_case(pe=2, simd=18, groups=9),
]
