"""cocotb testbench of :class:`benchmarks.simspeed.FreeRunningArray`: reset, then run the
clock for ``cycles`` cycles without any Python per cycle, and write the checksum to the file
named by ``$FRACBNN_SIMSPEED_CHECKSUM`` (so two simulators' results can be compared)."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer

from sim.runner import testbench_params

RESET_CYCLES = 2


@cocotb.test()
async def free_running(dut):
    """The design runs on its own; only the clock is driven."""
    params = testbench_params()
    period = params["clock_ns"]
    cocotb.start_soon(Clock(dut.clk, period, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    # One trigger for the whole run: the simulator is not interrupted every cycle.
    await Timer(params["cycles"] * period, unit="ns")
    checksum = int(dut.checksum.value)
    assert checksum != 0, "the checksum is still 0: no result came out of the array"
    with open(os.environ["FRACBNN_SIMSPEED_CHECKSUM"], "w") as file:
        json.dump({"checksum": checksum, "cycles": params["cycles"]}, file)
