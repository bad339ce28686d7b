# amaranth: UnusedElaboratable=no
"""The Ultra96 build's Vivado scripts, run without Vivado: ``tclsh`` with recording stand-ins
for the Vivado commands (``tests/ultra96_vivado_stubs.tcl``). The tests assert on the recorded
commands: the PS properties and their order relative to the board preset, the clock check, the
address assignment, the ``.hwh`` lookup and the slack check before ``write_bitstream``. Every
``CONFIG.*`` name the scripts use must be in :data:`KNOWN_CONFIG`."""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from amaranth.build.run import BuildPlan

from boards.ultra96.block_design import BASE_ADDRESS, BD_SCRIPT, HPM0_DATA_WIDTH
from boards.ultra96.build import NAME, REPORT, BuildFailed, build
from boards.ultra96.registers import APERTURE

STUBS = Path(__file__).with_name("ultra96_vivado_stubs.tcl")
TCLSH = shutil.which("tclsh")
needs_tclsh = pytest.mark.skipif(
    TCLSH is None, reason="tclsh is not installed (Debian: apt-get install tcl), so the Vivado "
                          "scripts cannot be run with the recording stand-ins")

BOARD = "avnet.com:ultra96v2:part0:1.2"
PS = "/zynq_ultra_ps_e_0"

# CONFIG.* names known from genuine Vivado `write_bd_tcl` exports. The PS (zynq_ultra_ps_e)
# names, including the DIVISOR and OVERRIDE ones, appear in PYNQ's ZCU104 base design export
# (boards/ZCU104/base/base.tcl of the pynq 3.0.1 sources); NUM_SI/NUM_MI in its SmartConnects.
# The external-port names (PROTOCOL, ADDR_WIDTH, DATA_WIDTH, FREQ_HZ on an aximm_rtl port;
# FREQ_HZ, ASSOCIATED_BUSIF, ASSOCIATED_RESET on a clock port) are the ones write_bd_tcl emits
# for create_bd_intf_port/create_bd_port. Add a name here only with an export that has it.
KNOWN_CONFIG = {
    # zynq_ultra_ps_e
    "PSU__USE__M_AXI_GP0", "PSU__USE__M_AXI_GP1", "PSU__USE__M_AXI_GP2",
    "PSU__MAXIGP0__DATA_WIDTH", "PSU__USE__IRQ0", "PSU__USE__IRQ1", "PSU__FPGA_PL0_ENABLE",
    "PSU__OVERRIDE__BASIC_CLOCK", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
    "PSU__CRL_APB__PL0_REF_CTRL__DIVISOR0", "PSU__CRL_APB__PL0_REF_CTRL__DIVISOR1",
    "PSU__NUM_FABRIC_RESETS",
    # the same export enables S_AXI_HP0_FPD with these two (a 128-bit HP0, as here)
    "PSU__USE__S_AXI_GP2", "PSU__SAXIGP2__DATA_WIDTH",
    # smartconnect
    "NUM_SI", "NUM_MI",
    # block design ports and pins
    "PROTOCOL", "ADDR_WIDTH", "DATA_WIDTH", "FREQ_HZ", "ASSOCIATED_BUSIF", "ASSOCIATED_RESET",
    # an AXI4 slave port (create_bd_intf_port -mode Slave) as write_bd_tcl exports it, e.g.
    # Vivado's Versal CED exports: ID_WIDTH, HAS_* and the burst and outstanding limits
    "ID_WIDTH", "HAS_LOCK", "HAS_QOS", "HAS_REGION", "HAS_CACHE", "HAS_PROT",
    "MAX_BURST_LENGTH", "NUM_READ_OUTSTANDING", "NUM_WRITE_OUTSTANDING",
}


def _stub_core():
    from sim.tb_ultra96_registers import StubAccelerator
    return StubAccelerator()


def _build(out, **options):
    """A build plan (stand-in accelerator, 250 MHz, grade 1-i) on a machine without Vivado."""
    with mock.patch("boards.ultra96.build.shutil.which", return_value=None), \
            mock.patch.dict(os.environ):
        os.environ.pop("AMARANTH_ENV_VIVADO", None)
        build(out, clock_mhz=250, with_estimate=False, core=_stub_core(), log=lambda _: None,
              **options)
    return out


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("plan"))


@pytest.fixture(scope="module")
def lenient_plan(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("lenient"), allow_timing_failure=True)


@dataclass
class Run:
    returncode: int
    calls: list             # [command, argument...] in order
    output: str             # stdout and stderr
    folder: Path

    def index(self, *call):
        """The position of the first call that starts with ``call``."""
        for number, recorded in enumerate(self.calls):
            if recorded[:len(call)] == list(call):
                return number
        raise AssertionError(f"no call {list(call)} in {self.calls}")

    def has(self, *call):
        return any(recorded[:len(call)] == list(call) for recorded in self.calls)

    def properties(self, target):
        """``{name: value}`` as set_property left them on ``target``."""
        return {call[1]: call[2] for call in self.calls
                if call[0] == "set_property" and call[3] == target}

    def summary(self):
        return json.loads((self.folder / f"{NAME}_vivado.json").read_text())


def _tclsh(folder, script=f"{NAME}.tcl", **world):
    """Run ``script`` in ``folder`` with the stand-ins; ``world`` describes what they answer
    (see tests/ultra96_vivado_stubs.tcl)."""
    record = folder / "record.jsonl"
    options = [str(item) for pair in world.items() for item in pair]
    result = subprocess.run([TCLSH, str(STUBS), str(record), script, *options],
                            cwd=folder, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in record.read_text().splitlines()] \
        if record.exists() else []
    return result, calls


def run_scripts(plan, tmp_path, **world):
    folder = tmp_path / "run"
    shutil.copytree(plan, folder)
    result, calls = _tclsh(folder, **world)
    return Run(result.returncode, calls, result.stdout + result.stderr, folder)


# ---- the processing system ----------------------------------------------------------------------

@needs_tclsh
def test_the_clock_request_follows_the_board_preset(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD)
    assert run.returncode == 0, run.output
    preset = run.index("apply_bd_automation", "-rule", "xilinx.com:bd_rule:zynq_ultra_ps_e")
    override = run.index("set_property", "CONFIG.PSU__OVERRIDE__BASIC_CLOCK", "0", PS)
    frequency = run.index("set_property", "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", "250",
                          PS)
    assert preset < override < frequency
    # Everything the design needs of the PS is set after the preset, which would undo it.
    ps = run.properties(PS)
    assert ps == {
        "CONFIG.PSU__OVERRIDE__BASIC_CLOCK": "0",
        "CONFIG.PSU__USE__M_AXI_GP0": "1",
        "CONFIG.PSU__MAXIGP0__DATA_WIDTH": str(HPM0_DATA_WIDTH),
        "CONFIG.PSU__USE__M_AXI_GP1": "0", "CONFIG.PSU__USE__M_AXI_GP2": "0",
        "CONFIG.PSU__USE__S_AXI_GP2": "1", "CONFIG.PSU__SAXIGP2__DATA_WIDTH": "128",
        "CONFIG.PSU__USE__IRQ0": "1", "CONFIG.PSU__USE__IRQ1": "0",
        "CONFIG.PSU__FPGA_PL0_ENABLE": "1",
        "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": "250",
        "CONFIG.PSU__NUM_FABRIC_RESETS": "1",
    }
    assert all(run.index("set_property", name) > preset for name in ps)
    # The achieved clock is read after the request and given to the ports.
    assert run.index("get_property", "CONFIG.FREQ_HZ", f"{PS}/pl_clk0") > frequency
    assert run.properties("/M_AXI")["CONFIG.FREQ_HZ"] == "250000000"
    assert run.properties("/pl_clk0")["CONFIG.FREQ_HZ"] == "250000000"
    assert "the PS makes 250.000000 MHz (PL0 divider 6" in run.output


@needs_tclsh
def test_the_interrupt_and_the_hp0_port_are_connected(plan, tmp_path):
    """pl_ps_irq0 is enabled and driven by the irq port, IRQ1 stays off (nothing drives it);
    the batch engine's S_AXI reaches S_AXI_HP0_FPD through a SmartConnect, clocked by pl_clk0
    and reset with the rest."""
    run = run_scripts(plan, tmp_path, board=BOARD)
    assert run.returncode == 0, run.output
    assert run.has("create_bd_port", "-dir", "I", "-type", "intr", "irq")
    assert run.has("connect_bd_net", "/irq", f"{PS}/pl_ps_irq0")
    nets = [call for call in run.calls if call[0].startswith("connect_bd")]
    assert not any("pl_ps_irq1" in argument for call in nets for argument in call)
    ps = run.properties(PS)
    assert ps["CONFIG.PSU__USE__IRQ0"] == "1" and ps["CONFIG.PSU__USE__IRQ1"] == "0"
    assert run.has("connect_bd_intf_net", "/S_AXI", "/smartconnect_1/S00_AXI")
    assert run.has("connect_bd_intf_net", "/smartconnect_1/M00_AXI", f"{PS}/S_AXI_HP0_FPD")
    clock = next(call for call in nets if f"{PS}/pl_clk0" in call)
    assert f"{PS}/saxihp0_fpd_aclk" in clock and "/smartconnect_1/aclk" in clock
    reset = next(call for call in nets if "/proc_sys_reset_0/peripheral_aresetn" in call)
    assert "/smartconnect_1/aresetn" in reset
    port = run.properties("/S_AXI")
    assert port["CONFIG.PROTOCOL"] == "AXI4" and port["CONFIG.DATA_WIDTH"] == "128"
    assert port["CONFIG.ADDR_WIDTH"] == "40" and port["CONFIG.MAX_BURST_LENGTH"] == "16"
    assert port["CONFIG.FREQ_HZ"] == "250000000"
    assert run.properties("/pl_clk0")["CONFIG.ASSOCIATED_BUSIF"] == "M_AXI:S_AXI"
    assert "INFO: S_AXI reaches /S_AXI/SEG_zynq_ultra_ps_e_0_HP0_DDR_LOW" in run.output


@needs_tclsh
def test_a_batch_port_without_the_ddr_stops_the_build(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD, hp0_ddr=0)
    assert run.returncode != 0
    assert "ERROR: [fracbnn] S_AXI (the batch engine) does not reach the DDR" in run.output
    assert not run.has("synth_design")


@needs_tclsh
def test_without_board_files_the_ps_gets_the_same_settings(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board="")
    assert run.returncode == 0, run.output
    assert not run.has("apply_bd_automation")
    assert "WARNING: board files matching *:ultra96v2:* are not installed" in run.output
    assert run.properties(PS)["CONFIG.PSU__OVERRIDE__BASIC_CLOCK"] == "0"
    assert run.has("write_bitstream")


@needs_tclsh
def test_an_ignored_clock_request_stops_the_build(plan, tmp_path):
    """The preset's dividers keep pl_clk0 at 100 MHz: the build stops before synthesis."""
    run = run_scripts(plan, tmp_path, board=BOARD, ps_ignores_frequency=1)
    assert run.returncode != 0
    assert re.search(r"ERROR: \[fracbnn\] pl_clk0 runs at 100\.000 MHz, not at the requested "
                     r"250 MHz: more than one divider step \(7\.143 MHz\) away", run.output), \
        run.output
    assert not run.has("synth_design") and not run.has("write_bitstream")


@needs_tclsh
def test_the_nearest_reachable_clock_is_accepted_and_reported(plan, tmp_path):
    """From a 1600 MHz PLL, 250 MHz is out of reach: 1600 / 6 = 266.7 MHz is within one step."""
    run = run_scripts(plan, tmp_path, board=BOARD, pll_mhz=1600)
    assert run.returncode == 0, run.output
    assert run.properties("/M_AXI")["CONFIG.FREQ_HZ"] == "266666667"
    summary = run.summary()
    assert summary["clock_mhz_requested"] == 250
    assert summary["clock_mhz"] == pytest.approx(266.667, abs=1e-3)


# ---- the address map ----------------------------------------------------------------------------

@needs_tclsh
def test_the_interface_is_mapped_at_the_base_address(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD)
    assert run.returncode == 0, run.output
    segment = f"{PS}/Data/SEG_M_AXI_Reg"
    assign = run.index("assign_bd_address")
    lookup = run.index("get_bd_addr_segs", "-of_objects", f"{PS}/Data")
    offset = run.index("set_property", "offset", f"0x{BASE_ADDRESS:08X}", segment)
    size = run.index("set_property", "range", f"{APERTURE // 1024}K", segment)
    assert assign < lookup < offset and lookup < size < run.index("validate_bd_design")
    # The M_AXI port is the SmartConnect's only master and carries the AXI4-Lite registers.
    assert run.has("connect_bd_intf_net", f"{PS}/M_AXI_HPM0_FPD", "/smartconnect_0/S00_AXI")
    assert run.has("connect_bd_intf_net", "/smartconnect_0/M00_AXI", "/M_AXI")
    assert run.properties("/M_AXI")["CONFIG.PROTOCOL"] == "AXI4LITE"


# ---- the hardware handoff -----------------------------------------------------------------------

@needs_tclsh
@pytest.mark.parametrize("where", ["gen", "srcs", "get_files"])
def test_the_hwh_is_found_and_copied_beside_the_bitstream(plan, tmp_path, where):
    run = run_scripts(plan, tmp_path, board=BOARD, hwh=where)
    assert run.returncode == 0, run.output
    assert (run.folder / f"{NAME}.hwh").read_text() == "<stub hwh of fracbnn_ps/>\n"
    # Looked for right after generate_target, long before the bitstream.
    assert run.index("generate_target") < run.index("get_files", "-all", "-quiet") \
        < run.index("synth_design")


@needs_tclsh
def test_a_missing_hwh_stops_the_build_before_synthesis(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD, hwh="none")
    assert run.returncode != 0
    assert "ERROR: [fracbnn] no hardware handoff fracbnn_ps.hwh after generate_target" \
        in run.output
    assert "fracbnn_ultra96.gen/sources_1/bd/fracbnn_ps/hw_handoff/fracbnn_ps.hwh" in run.output
    assert not run.has("synth_design")


# ---- timing -------------------------------------------------------------------------------------

@needs_tclsh
def test_the_slack_is_checked_before_the_bitstream(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD, wns=0.125, whs=0.015)
    assert run.returncode == 0, run.output
    assert run.index("route_design") < run.index("get_timing_paths", "-setup") \
        < run.index("write_bitstream")
    assert run.index("get_timing_paths", "-hold") < run.index("write_bitstream")
    assert run.summary() == {"clock_mhz_requested": 250, "clock_mhz": 250, "wns_ns": 0.125,
                             "whs_ns": 0.015, "timing_met": True,
                             "timing_failure_allowed": False}


@needs_tclsh
@pytest.mark.parametrize("wns, whs", [(-0.25, 0.02), (0.1, -0.01)])
def test_failing_timing_writes_the_paths_and_no_bitstream(plan, tmp_path, wns, whs):
    run = run_scripts(plan, tmp_path, board=BOARD, wns=wns, whs=whs)
    assert run.returncode != 0
    assert f"ERROR: [fracbnn] timing is not met at 250.000 MHz (WNS {wns:g} ns, WHS {whs:g} ns)" \
        in run.output
    assert "--allow-timing-failure" in run.output
    assert not run.has("write_bitstream") and not (run.folder / f"{NAME}.bit").exists()
    report = run.calls[run.index("report_timing")]
    assert "-return_string" in report
    assert (run.folder / f"{NAME}_timing_failed.rpt").read_text().startswith("stub report_timing")
    summary = run.summary()
    assert (summary["wns_ns"], summary["whs_ns"], summary["timing_met"]) == (wns, whs, False)


@needs_tclsh
def test_timing_failure_can_be_allowed(lenient_plan, tmp_path):
    run = run_scripts(lenient_plan, tmp_path, board=BOARD, wns=-0.25)
    assert run.returncode == 0, run.output
    assert "CRITICAL WARNING: [fracbnn] timing is not met" in run.output
    assert run.index("report_timing") < run.index("write_bitstream")
    assert run.summary()["timing_failure_allowed"] is True


@needs_tclsh
def test_a_design_without_timed_paths_is_refused(plan, tmp_path):
    run = run_scripts(plan, tmp_path, board=BOARD, wns="", whs="")
    assert run.returncode != 0
    assert "ERROR: [fracbnn] no timed paths after routing" in run.output
    assert not run.has("write_bitstream")
    assert run.summary()["wns_ns"] is None


# ---- property names -----------------------------------------------------------------------------

def _config_names(*folders):
    """The CONFIG.* names in the text of both scripts (every branch)."""
    return {name for folder in folders for script in (f"{NAME}.tcl", BD_SCRIPT)
            for name in re.findall(r"CONFIG\.(\w+)", (folder / script).read_text())}


def test_every_config_name_is_known_from_vivado_exports(plan, lenient_plan):
    names = _config_names(plan, lenient_plan)
    assert "PSU__OVERRIDE__BASIC_CLOCK" in names
    assert names - KNOWN_CONFIG == set(), "CONFIG names not seen in a Vivado export"


@needs_tclsh
def test_the_runs_use_only_config_names_written_out(plan, tmp_path):
    """No name is put together at run time, where the text check above would not see it."""
    run = run_scripts(plan, tmp_path, board=BOARD)
    used = {call[1].removeprefix("CONFIG.") for call in run.calls
            if call[0] in ("set_property", "get_property") and call[1].startswith("CONFIG.")}
    assert "PSU__CRL_APB__PL0_REF_CTRL__DIVISOR0" in used
    assert used <= _config_names(plan)


def test_the_known_names_catch_an_invented_one():
    text = "set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__MADE_UP {2}] $ps"
    assert set(re.findall(r"CONFIG\.(\w+)", text)) - KNOWN_CONFIG == {"PSU__MADE_UP"}


@needs_tclsh
def test_a_command_without_a_stand_in_fails(tmp_path):
    (tmp_path / "script.tcl").write_text("create_bd_design x\nmake_up_a_command -now\nquit\n")
    result, calls = _tclsh(tmp_path, "script.tcl")
    assert result.returncode != 0
    assert "make_up_a_command is not a Vivado command the stubs know" in result.stderr
    assert calls == [["source", "script.tcl"], ["create_bd_design", "x"]]


# ---- the Python side of a Vivado run ------------------------------------------------------------

def _vivado_by_tclsh(world):
    """``BuildPlan.execute_local`` running the scripts with the stand-ins, the output in
    ``NAME.log`` as Vivado's ``-log`` would have it."""
    def execute_local(self, root="build", **kwargs):
        result, _ = _tclsh(Path(root), **world)
        (Path(root) / f"{NAME}.log").write_text(result.stdout + result.stderr)
        if result.returncode:
            raise subprocess.CalledProcessError(result.returncode, ["vivado"])
    return execute_local


def _build_with_vivado(out, **world):
    messages = []
    which = shutil.which

    def vivado_on_path(name, *args, **kwargs):
        return "/opt/Xilinx/bin/vivado" if name == "vivado" else which(name, *args, **kwargs)

    with mock.patch.object(BuildPlan, "execute_local", _vivado_by_tclsh(world)), \
            mock.patch("boards.ultra96.build.shutil.which", vivado_on_path), \
            mock.patch.dict(os.environ):
        os.environ.pop("AMARANTH_ENV_VIVADO", None)
        result = build(out, clock_mhz=250, core=_stub_core(), log=messages.append)
    return result, "\n".join(messages)


@needs_tclsh
def test_the_build_report_has_the_clock_and_the_slack(tmp_path):
    result, log = _build_with_vivado(tmp_path, board=BOARD, wns=0.5, whs=0.03)
    assert result.vivado and result.bitstream == tmp_path / f"{NAME}.bit"
    report = json.loads((tmp_path / REPORT).read_text())
    assert report["part"] == "xczu3eg-sbva484-1-i" and report["clock_mhz_requested"] == 250
    assert report["estimate"] is None
    assert report["vivado"] == {"clock_mhz_requested": 250, "clock_mhz": 250, "wns_ns": 0.5,
                                "whs_ns": 0.03, "timing_met": True,
                                "timing_failure_allowed": False}
    assert "pl_clk0 250 MHz, WNS 0.5 ns, WHS 0.03 ns" in log


@needs_tclsh
def test_a_stopped_vivado_run_says_why(tmp_path):
    with pytest.raises(BuildFailed, match=r"Vivado failed \(exit code 1\): timing is not met at "
                                          r"250\.000 MHz \(WNS -1 ns, WHS 0\.02 ns\)"):
        _build_with_vivado(tmp_path, board=BOARD, wns=-1)
    report = json.loads((tmp_path / REPORT).read_text())
    assert report["vivado"]["timing_met"] is False and report["vivado"]["wns_ns"] == -1
    with pytest.raises(BuildFailed, match=r"pl_clk0 runs at 100\.000 MHz"):
        _build_with_vivado(tmp_path, board=BOARD, ps_ignores_frequency=1)
    # The summary of the earlier run is gone: this one stopped before routing.
    assert json.loads((tmp_path / REPORT).read_text())["vivado"] is None


def test_without_vivado_the_report_has_the_request(plan):
    report = json.loads((plan / REPORT).read_text())
    assert report == {"design": NAME, "part": "xczu3eg-sbva484-1-i", "clock_mhz_requested": 250,
                      "estimate": None, "vivado": None}
