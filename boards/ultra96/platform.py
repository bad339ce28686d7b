"""The Avnet Ultra96-V2 (and the first Ultra96) as an Amaranth platform.

Zynq UltraScale+ MPSoC xczu3eg in the sbva484 package. Grades: ``1-i`` (industrial) on the
Ultra96-V2, ``1-e`` on the first Ultra96 (FINN's part map; FracBNN's released block design used
``-1-e``).

The programmable logic has no oscillator: its clock and reset come from the processing system
(``pl_clk0``, ``pl_resetn0`` of ``zynq_ultra_ps_e``), so this platform has no default clock;
:mod:`boards.ultra96.top` takes them from the block design of :mod:`boards.ultra96.block_design`.

Pins and I/O standards, from Avnet's Ultra96-V2 constraint files: ``ultra96v2_oob.xdc`` and
``ultra96v2_factest.xdc`` (github.com/Avnet/hdl, ``Projects/``), ``sensors96b.xdc``
(github.com/Avnet/Ultra96-PYNQ, ``Ultra96/sensors96b/vivado/constraints/``) and the board XDC
written by Avnet's "Constraints Generator V0.8.0" (2019, schematic net names such as
``"F8.HD_GPIO_1"``). Bank 26 (the low-speed header's HD_GPIO pins, the radio LEDs, the Bluetooth
flow control, the camera clocks) runs at 1.8 V, bank 65 (the fan PWM) at 1.2 V. The sources
disagree on HD_GPIO_1/2: the out-of-box XDC puts header pin 5 on F7, while the Constraints
Generator and the PYNQ sensors XDC put HD_GPIO_1 (header pin 5, UART0 TxD) on F8 and HD_GPIO_2
(pin 7, RxD) on F7; this file follows the latter two. Check the board schematic before wiring
anything to the header. The LEDs of the PS (MIO17..20), the push button (MIO23) and the PS
UARTs are not PL pins.
"""

from amaranth.build import Attrs, Connector, Pins, Resource, Subsignal
from amaranth.vendor import XilinxPlatform

from rtl.primitives import LutPrimitives

from .board import GRADES

__all__ = ["CAPACITY", "GRADES", "Ultra96Platform"]

# xczu3eg resources (UltraScale+ product tables): what the estimate is compared against.
CAPACITY = {"lut": 70_560, "ff": 141_120, "bram36": 216, "dsp": 360}

LVCMOS18 = Attrs(IOSTANDARD="LVCMOS18")
LVCMOS12 = Attrs(IOSTANDARD="LVCMOS12")

# HD_GPIO_n (schematic net names) -> package pin, n = 0..15.
HD_GPIO = "D7 F8 F7 G7 F6 G5 A6 A7 G6 E6 E5 D6 D5 C7 B6 C5"


class Ultra96Platform(LutPrimitives, XilinxPlatform):
    """The Ultra96 for the Vivado toolchain, ``grade`` ``"1-i"`` (Ultra96-V2, the default) or
    ``"1-e"`` (first Ultra96).

    Resources: ``led`` 0/1 (D9 yellow "WiFi" and D10 blue "Bluetooth", active high), ``fan_pwm``
    (high: full speed), ``hd_gpio`` (all 16 HD_GPIO lines of the low-speed header, bit ``n`` =
    HD_GPIO_n), ``uart`` 0 (header pins 3/5/7/9: CTS, TxD, RxD, RTS; the FPGA is the DTE) and 1
    (pins 11/13: TxD, RxD), ``bt_hci`` (the Bluetooth module's flow control, normally wired to
    the PS UART0 through EMIO) and ``csi_mclk`` 0/1 (high-speed header pins 15/17). The
    connector ``ls_exp`` 0 maps the low-speed header's pin numbers whose FPGA pins two sources
    agree on.

    The compressor trees of :mod:`rtl.popcount` ask the platform for LUT and carry primitives;
    this platform supplies them (:class:`rtl.primitives.LutPrimitives`), so Vivado gets the trees
    as designed, like the Yosys estimate.
    """

    device = "xczu3eg"
    package = "sbva484"
    default_clk = None          # the PL has no oscillator: clocks come from the PS
    default_rst = None

    resources = [
        Resource("led", 0, Pins("A9", dir="o"), LVCMOS18),       # D9, RADIO_LED0
        Resource("led", 1, Pins("B9", dir="o"), LVCMOS18),       # D10, RADIO_LED1
        Resource("fan_pwm", 0, Pins("F4", dir="o"), LVCMOS12),
        Resource("hd_gpio", 0, Pins(HD_GPIO, dir="io"), LVCMOS18),
        Resource("uart", 0,
                 Subsignal("cts", Pins("3", dir="i", conn=("ls_exp", 0))),
                 Subsignal("tx", Pins("5", dir="o", conn=("ls_exp", 0))),
                 Subsignal("rx", Pins("7", dir="i", conn=("ls_exp", 0))),
                 Subsignal("rts", Pins("9", dir="o", conn=("ls_exp", 0))),
                 LVCMOS18),
        Resource("uart", 1,
                 Subsignal("tx", Pins("11", dir="o", conn=("ls_exp", 0))),
                 Subsignal("rx", Pins("13", dir="i", conn=("ls_exp", 0))),
                 LVCMOS18),
        Resource("bt_hci", 0,
                 Subsignal("rts", Pins("B7", dir="i")),     # from the module: emio_uart0_ctsn
                 Subsignal("cts", Pins("B5", dir="o")),     # to the module: emio_uart0_rtsn
                 LVCMOS18),
        Resource("csi_mclk", 0, Pins("E8", dir="o"), LVCMOS18),
        Resource("csi_mclk", 1, Pins("D8", dir="o"), LVCMOS18),
    ]
    connectors = [
        # 96Boards low-speed expansion header: UART0 (3, 5, 7, 9), UART1 (11, 13), GPIO-G..L
        # (29..34).
        Connector("ls_exp", 0, {
            "3": "D7", "5": "F8", "7": "F7", "9": "G7", "11": "F6", "13": "G5",
            "29": "A6", "30": "C7", "31": "A7", "32": "B6", "33": "G6", "34": "C5",
        }),
    ]

    def __init__(self, grade="1-i", *, toolchain="Vivado"):
        if grade not in GRADES:
            raise ValueError(f"unknown grade {grade!r}: choose "
                             + ", ".join(f"{g} ({board})" for g, board in GRADES.items()))
        self._grade = grade
        super().__init__(toolchain=toolchain)

    @property
    def speed(self):
        return self._grade

    @property
    def part(self):
        """The Vivado part name, e.g. ``xczu3eg-sbva484-1-i``."""
        return self._part
