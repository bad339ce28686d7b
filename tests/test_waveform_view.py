# amaranth: UnusedElaboratable=no
"""GTKWave views of the simulations (sim/gtkw.py, sim/gtkwave.py) and the console progress
(sim/progress.py).

The views are checked as a person would look at them: GTKWave opens the waveform and the save
file under Xvfb, reports the traces it displays (names, radix, values at a marker) and the time
range of its window, and a screenshot shows trace edges across the wave area. Those tests skip
where gtkwave, Xvfb or ImageMagick is missing (CI installs them).
"""

import io
import shutil
import struct
import subprocess
import sys
import time

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from sim import gtkw, progress
from sim.gtkwave import missing_tools, open_view, vcd_first_time, wave_activity
from sim.regression import REGRESSION, head_case
from sim.runner import REPO_ROOT, SIM_LOG

MISSING = missing_tools()
needs_gtkwave = pytest.mark.skipif(
    bool(MISSING), reason=f"GTKWave view tests need {', '.join(MISSING)} "
                          "(apt-get install gtkwave xvfb imagemagick)")


# ---- the save file ------------------------------------------------------------------------------

class Mode(enum.Enum, shape=2):
    IDLE = 0
    BUSY = 1
    DONE = 2


class Toy(wiring.Component):
    """Ports of every kind the save file handles."""

    def __init__(self):
        super().__init__({
            "mode": Out(Mode),
            "count": Out(16),
            "flags": Out(8),
            "i": In(stream.Signature(data.StructLayout({
                "codes": data.ArrayLayout(signed(16), 3), "index": unsigned(4), "bits": 12}))),
            "o": Out(stream.Signature(signed(9))),
            "rows": In(stream.Signature(data.ArrayLayout(
                data.StructLayout({"rgb": data.ArrayLayout(unsigned(8), 3)}), 10))),
        })
        self.wave_names = {"count": {0: "none", 1: "one"}}

    def elaborate(self, platform):
        raise NotImplementedError


def _flat(view):
    for item in view:
        if isinstance(item, gtkw.Group):
            yield from _flat(item.items)
        else:
            yield item


def test_view_splits_payloads_into_named_traces_in_a_readable_radix():
    view = gtkw.wave_view(Toy())
    traces = {trace.alias: trace for trace in _flat(view)}
    assert [item.alias if isinstance(item, gtkw.Trace) else item.name for item in view] == [
        "clk", "rst", "mode", "count", "flags", "i", "o", "rows"]
    assert traces["mode"].names == ((0, "IDLE"), (1, "BUSY"), (2, "DONE"))
    assert traces["count"].names == ((0, "none"), (1, "one"))     # the component's wave_names
    assert traces["flags"].radix == "hex"                          # a bare width: bit vector
    for k in range(3):
        code = traces[f"i.codes[{k}]"]
        assert (code.radix, code.port, code.low, code.high) == (
            "signed", "i__payload", 16 * k, 16 * k + 15)
    assert traces["i.index"].radix == "dec" and traces["i.bits"].radix == "hex"
    assert traces["i.valid"].radix == "bin" and traces["o.ready"].radix == "bin"
    assert traces["o.payload"].radix == "signed" and traces["o.payload"].whole
    # 30 traces: a closed group of their own, each named with its element (GTKWave shows an
    # alias from its last dot on, so no dot after an index).
    rows = next(item for item in view if isinstance(item, gtkw.Group) and item.name == "rows")
    payload = rows.items[-1]
    assert isinstance(payload, gtkw.Group) and payload.closed and len(payload.items) == 30
    assert payload.items[5].alias == "rows[1] rgb[2]"


@pytest.mark.parametrize("case", REGRESSION, ids=lambda case: case.name)
def test_every_testbench_view_covers_each_payload_bit_once(case):
    component = case.build(**case.params)
    view = gtkw.wave_view(component)
    groups = [item for item in view if isinstance(item, gtkw.Group)]
    streams = [path for path, member in component.signature.members.flatten()
               if member.is_signature and isinstance(member.signature, stream.Signature)]
    assert len(groups) == len(streams)
    for group in groups:
        leaves = list(_flat(group.items))
        payload = [trace for trace in leaves if trace.port.endswith("__payload")]
        covered = sorted(bit for trace in payload for bit in range(trace.low, trace.high + 1))
        assert covered == list(range(payload[0].width)), group.name
        assert {trace.alias for trace in leaves} >= {f"{group.name}.valid",
                                                     f"{group.name}.ready"}


def test_accelerator_view(net):
    from rtl.accelerator import FracBNNAccelerator, Phase, StemPhase
    from sim.harness import AcceleratorHarness

    harness = AcceleratorHarness(FracBNNAccelerator(net))
    view = gtkw.wave_view(harness)
    names = [item.alias if isinstance(item, gtkw.Trace) else item.name for item in view]
    assert names[:10] == ["clk", "rst", "phase", "stem_phase", "layer", "beat", "busy",
                          "cycles", "images", "error"]
    traces = {trace.alias: trace for trace in _flat(view)}
    assert dict(traces["phase"].names) == {phase.value: phase.name for phase in Phase}
    assert dict(traces["stem_phase"].names) == {phase.value: phase.name for phase in StemPhase}
    layers = dict(traces["layer"].names)
    assert layers[0] == "stem" and layers[18] == "layer3_2.conv2"
    assert traces["writeback.layer"].names == traces["layer"].names
    assert traces["stem_writeback.layer"].names == traces["layer"].names
    assert traces["cycles"].radix == "dec" and traces["results.cycles"].radix == "dec"
    assert traces["results.done_cycle"].radix == "dec"
    assert [traces[f"results.logits.logits[{k}]"].radix for k in range(10)] == ["signed"] * 10
    assert [traces[f"writeback.fm[{k}]"].radix for k in range(16)] == ["signed"] * 16
    # writeback is an always-ready stream: its valid and its payload's fields, no ready.
    writeback = next(item for item in view
                     if isinstance(item, gtkw.Group) and item.name == "writeback")
    # Its payload (two pixels' 32 FM codes and their place) is a closed group of its own.
    valid, payload = writeback.items
    assert valid.alias == "writeback.valid" and payload.closed
    assert [trace.alias for trace in payload.items[:6]] == [
        "writeback.layer", "writeback.y", "writeback.x", "writeback.group", "writeback.pixels",
        "writeback.fm[0]"]
    assert traces["writeback.valid"].port == "writeback__valid"
    assert traces["writeback.layer"].port == "writeback__payload"
    assert "writeback.ready" not in traces


def _vcd(path, end):
    path.write_text("$timescale 1ps $end\n$scope module toy $end\n$var wire 1 ! clk $end\n"
                    "$upscope $end\n$enddefinitions $end\n#0\n0!\n#5000\n1!\n"
                    f"#{end}\n0!\n")


def test_save_file_is_zoomed_to_the_run_and_writes_translate_filters(tmp_path):
    waveform = tmp_path / "dump.vcd"
    _vcd(waveform, 12_345_678)
    assert gtkw.waveform_span(waveform) == (0, 12_345_678)
    save = tmp_path / "toy.gtkw"
    filters = gtkw.write_save_file(save, waveform, "toy", Toy(), starts=[0, 5000])
    text = save.read_text()
    zoom_line = next(line for line in text.splitlines() if line.startswith("*"))
    zoom, marker, first, second = zoom_line[1:].split()[:4]
    # GTKWave shows 2 ** -zoom units per 200 pixels: the run fits the assumed wave area.
    shown = 2 ** -float(zoom) / 200 * gtkw.WAVE_WIDTH
    assert 12_345_678 <= shown <= 12_345_678 * 1.01
    assert (marker, first, second) == ("-1", "0", "5000")         # a named marker per test
    assert "[timestart] 0" in text
    assert {path.name for path in filters} == {"toy.mode.filter", "toy.count.filter"}
    assert (tmp_path / "toy.mode.filter").read_text() == "0 IDLE\n1 BUSY\n2 DONE\n"
    assert f"^1 {tmp_path / 'toy.mode.filter'}" in text
    # Fields are bit ranges of the flat payload, most significant bit first.
    line = next(line for line in text.splitlines() if line.startswith("#{i.codes[1]}"))
    assert line.split()[1] == "(32)toy.i__payload[63:0]"
    assert line.split()[-1] == "(47)toy.i__payload[63:0]"


def test_fst_span_from_its_header(tmp_path):
    path = tmp_path / "dump.fst"
    path.write_bytes(bytes([0]) + struct.pack(">QQQ", 329, 10, 987_654) + bytes(300))
    assert gtkw.waveform_span(path) == (10, 987_654)
    assert gtkw.waveform_span(tmp_path / "missing.vcd") is None


# ---- progress ---------------------------------------------------------------------------------

class Stream(io.StringIO):
    def __init__(self, terminal):
        super().__init__()
        self.terminal = terminal

    def isatty(self):
        return self.terminal


def _progress(statuses, terminal, **kwargs):
    stream_ = Stream(terminal)
    values = iter(statuses)
    with progress.Progress("design", lambda: next(values), stream=stream_, enabled=False,
                           **kwargs) as reporter:
        for _ in statuses:
            reporter.poll()
    return stream_.getvalue()


def test_progress_plain_lines_when_the_stage_changes_only():
    text = _progress(["verilating", "verilating", "compiling 1/9 objects",
                      "compiling 2/9 objects", "linking"], terminal=False, plain_delay=0)
    lines = text.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "  design: verilating", "  design: compiling 1/9 objects", "  design: linking"]
    assert all(line.endswith("0:00") for line in lines)
    # A short step prints nothing.
    assert _progress(["verilating", "linking"], terminal=False) == ""


def test_progress_updates_one_line_on_a_terminal():
    stream_ = Stream(True)
    values = ["verilating", "compiling 3/9 objects"]
    with progress.Progress("design", lambda: values.pop(0) if len(values) > 1 else values[0],
                           stream=stream_, interval=0.05) as reporter:
        time.sleep(0.5)
    text = stream_.getvalue()
    assert "\n" not in text and text.count("\r\033[K") >= 3      # two updates and the clearing
    assert "design: compiling 3/9 objects, 0:00" in text and text.endswith("\r\033[K")
    assert reporter.terminal


def test_verilator_status_counts_the_objects(tmp_path):
    (tmp_path / "Vtop_classes.mk").write_text(
        "VM_PARALLEL_BUILDS = 1\nVM_CLASSES_FAST += \\\n  Vtop \\\n  Vtop___024root__0 \\\n\n"
        "VM_CLASSES_SLOW += \\\n  Vtop__Slow \\\n\nVM_SUPPORT_FAST += \\\n\n"
        "VM_GLOBAL_FAST += \\\n  verilated \\\n  verilated_vpi \\\n\n")
    (tmp_path / "Vtop.mk").write_text("VM_USER_CLASSES = \\\n  verilator \\\n\n")
    since = time.time()
    assert progress.verilator_status(tmp_path, since) == "compiling 0/6 objects"
    for name in ("Vtop.o", "verilated.o"):
        (tmp_path / name).write_text("")
    assert progress.verilator_status(tmp_path, since) == "compiling 2/6 objects"
    for name in ("Vtop___024root__0.o", "Vtop__Slow.o", "verilated_vpi.o", "verilator.o"):
        (tmp_path / name).write_text("")
    assert progress.verilator_status(tmp_path, since) == "linking"
    assert progress.verilator_status(tmp_path / "missing", since) == "verilating"


def test_cocotb_and_yosys_status_from_their_logs(tmp_path):
    log = tmp_path / "sim.log"
    assert progress.cocotb_status(log) == "starting the simulator"
    log.write_text("0.00ns INFO cocotb.regression running sim.tb_head.head_corners (2/7)\n")
    assert progress.cocotb_status(log) == "running test 2/7 (head_corners)"
    yosys = tmp_path / "yosys.log"
    yosys.write_text("4.1. Executing Verilog-2005 frontend: top.v\n"
                     "5.50.12. Executing ABC pass (technology mapping using ABC).\n")
    assert progress.yosys_status(yosys) == "Yosys step 5.50.12: ABC pass"


def test_a_passing_regression_prints_a_summary_only():
    # The cocotb banners of a passing run stay in the build folder's log.
    case = REGRESSION[0]
    result = subprocess.run([sys.executable, "-m", "sim", "--only", case.name],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    # Progress lines (a build of over 10 s prints a few) aside: the case, its result, the table.
    lines = [line for line in result.stdout.splitlines()
             if not line.startswith(f"  {case.name}: ")]
    assert len(lines) == 6 + len(case.test_names()), result.stdout
    assert "cocotb" not in result.stdout + result.stderr
    assert lines[-1].endswith(" passed, 0 failed")
    log = case.run().build_dir / SIM_LOG
    assert "TESTS=" in log.read_text()


def test_a_failing_regression_prints_the_message_and_the_log(monkeypatch, tmp_path, capsys):
    import dataclasses

    import sim.__main__ as sim_main
    from sim.regression import xnor_popcount_case

    (tmp_path / "tb_always_fails.py").write_text(
        "import cocotb\n\n@cocotb.test()\nasync def fails(dut):\n"
        "    assert False, 'deliberate'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    case = dataclasses.replace(xnor_popcount_case(pe=1, simd=4, max_beats=9),
                               test_module="tb_always_fails")
    monkeypatch.setattr(sim_main, "REGRESSION", [case])
    assert sim_main.main(["--only", case.name]) == 1
    out = capsys.readouterr().out
    log = case.run(check=False).build_dir / SIM_LOG
    assert "    fails: " in out and "deliberate" in out
    assert f"    log: {log}" in out and "1 failed" in out
    assert "cocotb.regression" not in out and "deliberate" in log.read_text()


# ---- GTKWave ----------------------------------------------------------------------------------

def _check_window(view):
    # Zoomed to the run: the window starts at the start and shows all of it, not much more.
    first, last = view.dump
    start, end = view.window
    assert start <= first and end >= last, (view.window, view.dump)
    assert end - start <= 1.6 * (last - first), (view.window, view.dump)


@needs_gtkwave
@pytest.mark.parametrize("simulator", [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(
        shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed")),
])
def test_unit_view_in_gtkwave(simulator):
    # Verilator writes VCD, Icarus FST.
    result = head_case().run(waves=True, simulator=simulator)
    png = result.build_dir / "view.png"
    view = open_view(result.waveform, result.gtkw, png, marker=result.tests[1].start_ns * 1000)
    _check_window(view)
    names = [trace.name for trace in view.traces]
    for group in ("head_i", "head_o", "small_head_i", "small_head_o"):
        assert names.count(group) == 2                        # its start and its end
    logits = view.find("logits[9]")[0]
    assert logits.has("signed") and logits.has("dec") and not logits.has("hex")
    assert view.find("valid")[0].has("bin")
    assert all(trace.value.lstrip("-").isdigit() for trace in view.find("fm[15]"))
    # The wave area shows trace edges across the window (a view of a few picoseconds of the
    # run shows flat lines: 0 columns).
    assert wave_activity(png) > 300


@needs_gtkwave
def test_accelerator_view_in_gtkwave(net):
    from fracbnn_golden.images import bundled_photos, load_image
    from rtl.accelerator import FracBNNAccelerator, Phase, StemPhase
    from sim.accelerator import run_accelerator

    pixels = load_image(bundled_photos()[0])[None]
    result = run_accelerator(pixels, waves=True).result
    assert result.waveform.suffix == ".vcd"
    # The marker where the result comes out: the view shows the logits there.
    marker = vcd_first_time(result.waveform, "results__valid")
    png = result.build_dir / "accelerator_view.png"
    view = open_view(result.waveform, result.gtkw, png, marker=marker)
    _check_window(view)
    values = {trace.name: trace.value for trace in view.traces}
    # The ten logits: signed decimals equal to the golden model's.
    results = {trace.name: trace for trace in view.group("results")}
    assert [int(results[f"logits[{k}]"].value) for k in range(10)] == [
        int(value) for value in net.logits(pixels)[0]]
    assert all(results[f"logits[{k}]"].has("signed") for k in range(10))
    estimate = FracBNNAccelerator(net).estimate_cycles().total
    assert results["cycles"].value == view.find("cycles")[0].value == str(estimate)
    assert view.find("phase")[0].value in {phase.name for phase in Phase}
    assert view.find("phase")[0].has("translated")
    layer = view.find("layer")[0]
    assert layer.has("translated") and ".conv" in layer.value
    assert view.find("stem_phase")[0].value in {phase.name for phase in StemPhase}
    assert values["images"] == "1" and values["error"] == "0"
    for name in ("beat", "busy", "valid", "fm[15]"):
        assert view.find(name), name
    assert wave_activity(png) > 300
