"""Facts about the board and the build that the command line needs without importing Amaranth
(the ``run`` command runs on the board, which needs only NumPy and Pillow)."""

__all__ = ["DEFAULT_CLOCK_MHZ", "GRADES", "NAME"]

# The top-level name: fracbnn_ultra96.v, .xdc, .tcl, .bit, .hwh.
NAME = "fracbnn_ultra96"
# pl_clk0 in MHz; 200 MHz is the safe choice.
DEFAULT_CLOCK_MHZ = 250.0
# Speed/temperature grade -> the board that carries it (FINN's part map).
GRADES = {"1-i": "Ultra96-V2", "1-e": "Ultra96 (first version)"}
