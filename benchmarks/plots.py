"""The sweep's pictures (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .pareto import pareto_front  # noqa: E402

__all__ = ["cycle_breakdown_plot", "pareto_plot"]

DPI = 120


def pareto_plot(points, clock_mhz, path, *, paper, device_luts, default=None):
    """Images/s at ``clock_mhz`` against (modelled) LUTs of every point that has both, one
    colour per decoder symbols per cycle and one marker per pixels per beat, the Pareto front
    joined by a line; ``paper`` (a dict
    with ``lut`` and ``images_per_s``) and the device's LUT capacity marked. Returns ``path``."""
    shown = [point for point in points
             if point.get("lut") is not None and point.get("images_per_s") is not None]
    figure, axes = plt.subplots(figsize=(10, 5.5))
    decoders = sorted({point["decoder_symbols_per_cycle"] for point in shown})
    colours = plt.get_cmap("viridis")
    markers = dict(zip(sorted({point["pixels_per_beat"] for point in shown}), "o^sD"))
    for rank, symbols in enumerate(decoders):
        colour = colours(rank / max(1, len(decoders) - 1))
        for pixels, marker in markers.items():
            group = [point for point in shown if point["decoder_symbols_per_cycle"] == symbols
                     and point["pixels_per_beat"] == pixels]
            axes.scatter([point["lut"] for point in group],
                         [point["images_per_s"] for point in group], s=22, alpha=0.75,
                         marker=marker, color=colour)
        # The legend names the colours and the markers apart (empty scatters as its keys).
        axes.scatter([], [], s=22, marker="o", color=colour, label=f"decoder N = {symbols}")
    for pixels, marker in markers.items():
        axes.scatter([], [], s=22, marker=marker, color="grey",
                     label=f"{pixels} pixel{'s' if pixels > 1 else ''} per beat")
    front = [shown[index] for index in pareto_front(shown)]
    axes.step([point["lut"] for point in front], [point["images_per_s"] for point in front],
              where="post", color="crimson", linewidth=1.2)
    axes.scatter([point["lut"] for point in front], [point["images_per_s"] for point in front],
                 s=60, facecolors="none", edgecolors="crimson", linewidths=1.4,
                 label="Pareto front")
    # One label per position: configurations with the same figures share it.
    labels = {}
    for point in front:
        labels.setdefault((point["lut"], point["images_per_s"]), []).append(
            f"{point['pe']}x{point['simd_channels']}/{point['decoder_symbols_per_cycle']}"
            f"/{point['pixels_per_beat']}")
    for (lut, images), names in labels.items():
        axes.annotate(", ".join(names), (lut, images), textcoords="offset points",
                      xytext=(5, -9), fontsize=6.5, color="crimson")
    if default is not None:
        for point in shown:
            if all(point[key] == value for key, value in default.items()):
                axes.scatter([point["lut"]], [point["images_per_s"]], marker="s", s=70,
                             facecolors="none", edgecolors="black",
                             label="default configuration (synthesised whole)")
    axes.scatter([paper["lut"]], [paper["images_per_s"]], marker="*", s=180, color="darkorange",
                 edgecolors="black", linewidths=0.5, zorder=5,
                 label=f"FracBNN paper ({paper['images_per_s']:,} images/s, "
                       f"{paper['lut']:,} LUT, Vivado)")
    axes.set_yscale("log")
    axes.axvline(device_luts, color="grey", linestyle="--", linewidth=1)
    # x in data units, y in axes fractions: the label stays inside whatever the y range is.
    axes.text(device_luts, 0.72, f"xczu3eg capacity: {device_luts:,} LUT ", rotation=90,
              va="center", ha="right", fontsize=8, color="grey",
              transform=axes.get_xaxis_transform())
    axes.set_xlabel("LUTs (Yosys estimate; sweep points: model from unit synthesis)")
    axes.set_ylabel(f"images/s at {clock_mhz:g} MHz (analytical cycle model)")
    axes.set_title("FracBNN accelerator design space\n"
                   "(front labels: pe x simd_channels / decoder N / pixels per beat)")
    axes.grid(True, which="both", alpha=0.3)
    # Beside the axes: the points fill the plot from corner to corner.
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def cycle_breakdown_plot(phases, weight_waits, interval, path, *, title=""):
    """A bar per phase of an image (load, stem, the PG layers, head): its cycles, with the
    cycles a layer waited for its weights stacked on top; the title gives the image's latency
    (their sum) and the ``interval`` between images on a stream. Returns ``path``."""
    names = list(phases)
    busy = [phases[name] for name in names]
    waits = [weight_waits.get(name, 0) for name in names]
    figure, axes = plt.subplots(figsize=(10, 4.5))
    positions = range(len(names))
    axes.bar(positions, busy, color="steelblue", label="phase cycles")
    if any(waits):
        axes.bar(positions, waits, bottom=busy, color="darkorange",
                 label="waiting for weights (Huffman decoder)")
    axes.set_xticks(list(positions), names, rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("cycles")
    total = sum(busy) + sum(waits)
    axes.set_title(f"Cycles per phase: latency {total:,}, one image every {interval:,} on a "
                   f"stream (load, stem and head overlap the layers)"
                   + (f"\n{title}" if title else ""))
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
