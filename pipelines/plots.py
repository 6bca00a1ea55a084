"""Pictures people would rather look at than read: one RIR with its decay and its room; one
SELD scene with its spectrogram and the labels a model is trained on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_rir(row: dict, out: str | Path) -> Path:
    """RIR per channel (full and first 50 ms), Schroeder energy decay, and the room from
    above and from the side, for one row of an RIR dataset."""
    from simulation import energy_decay_curve, octave_band
    from simulation.acoustics import MID_BANDS

    rir = np.asarray(row["rir"], dtype=np.float64)
    fs = row["sample_rate"]
    t = np.arange(rir.shape[-1]) / fs
    fig, axes = plt.subplot_mosaic([["rir", "rir", "early"], ["edc", "top", "side"]], figsize=(15, 8),
                                   constrained_layout=True)
    fig.suptitle(f"{row['id']}: {row['array']} array, room {' x '.join(f'{d:.1f}' for d in row['room_dims'])} m, "
                 f"RT60 target {row['rt60_target']:.2f} s, measured T30 (500 Hz-1 kHz) {row['rt60']:.2f} s, "
                 f"DRR {row['drr_db']:.1f} dB")
    ax = axes["rir"]
    names = [f"{n} (ch {ch})" for ch, n in enumerate("WYZX")] if row["array"] == "foa" else \
        [f"ch {ch}" for ch in range(len(rir))]  # FOA channels are ACN-ordered components, not capsules
    for name, x in zip(names, rir):
        ax.plot(t, x, lw=0.6, label=name)
    ax.set(title="impulse response", xlabel="time (s)", ylabel="pressure (1/(4 pi d) units)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes["early"]
    early = t < 0.05
    for ch, x in enumerate(rir):
        ax.plot(t[early] * 1000, x[early], lw=0.8)
    direct_ms = row["distance"] / row["speed_of_sound"] * 1000
    ax.axvline(direct_ms, color="k", ls=":", lw=1, label=f"direct path {direct_ms:.2f} ms")
    ax.set(title="first 50 ms", xlabel="time (ms)")
    ax.legend(fontsize=7)
    ax = axes["edc"]
    measured = row["rt60"] if row["rt60"] and np.isfinite(row["rt60"]) else None
    with np.errstate(invalid="ignore", divide="ignore"):  # corrected for the cut, as the T30 was
        broadband = energy_decay_curve(rir[0], fs, measured)
        bands = [energy_decay_curve(octave_band(rir[0], fs, fc), fs, measured) for fc in MID_BANDS]
    ax.plot(t, broadband, lw=0.8, color="0.6", label="broadband (its DC trend decays slower)")
    for fc, curve in zip(MID_BANDS, bands):
        ax.plot(t, curve, lw=0.8, label=f"{fc:g} Hz octave")
    if measured:
        t5 = t[np.argmax(np.mean(bands, axis=0) <= -5.0)]  # the T30 fit starts at -5 dB
        ax.plot(t, -5.0 - 60.0 / row["rt60"] * (t - t5), "k--", lw=1,
                label=f"T30, mean of the {len(rir)} channels: {row['rt60']:.2f} s to -60 dB")
    ax.legend(fontsize=7)
    ax.set(title="energy decay curve, channel 0 (Schroeder, corrected for the cut)", xlabel="time (s)",
           ylabel="dB", ylim=(-80, 3))
    _plot_room(axes["top"], axes["side"], row)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _plot_room(ax, side, row: dict) -> None:
    lx, ly, lz = row["room_dims"]
    caps = np.asarray(row["capsules"])
    src = np.asarray(row["source_position"])
    center = np.asarray(row["array_center"])
    ax.add_patch(plt.Rectangle((0, 0), lx, ly, fill=False, lw=1.5))
    ax.plot(*center[:2], "o", color="tab:blue", ms=9, mfc="none", label="array (top view)")
    ax.plot(caps[:, 0], caps[:, 1], ".", color="tab:blue", ms=3)
    ax.plot(*src[:2], "*", color="tab:red", ms=12, label="source")
    ax.plot([center[0], src[0]], [center[1], src[1]], ":", color="gray")
    ax.annotate(f"az {row['azimuth']:.0f} deg, el {row['elevation']:.0f} deg, {row['distance']:.2f} m",
                src[:2], textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set(title="room from above (x-y, m)", xlim=(-0.5, lx + 0.5), ylim=(-0.5, ly + 0.5), aspect="equal")
    ax.legend(fontsize=7, loc="lower left")
    side.add_patch(plt.Rectangle((0, 0), lx, lz, fill=False, lw=1.5))
    side.plot(center[0], center[2], "o", color="tab:blue", ms=9, mfc="none")
    side.plot(caps[:, 0], caps[:, 2], ".", color="tab:blue", ms=3)
    side.plot(src[0], src[2], "*", color="tab:red", ms=12)
    side.plot([center[0], src[0]], [center[2], src[2]], ":", color="gray")
    side.set(title="room from the side (x-z, m)", xlim=(-0.5, lx + 0.5), ylim=(-0.5, lz + 0.5), aspect="equal")


def plot_scene(row: dict, classes: list[str], out: str | Path, hop_s: float = 0.1) -> Path:
    """A scene's first channel as a spectrogram, with the frame labels under it on the same time
    axis: which class sounds on which track, and its azimuth, elevation and distance (moving
    sources draw slopes), for one row of a scenes (or augmented scenes) dataset."""
    fig = scene_figure(row, classes, hop_s)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def scene_figure(row: dict, classes: list[str], hop_s: float):
    """`plot_scene`'s figure, left open (tests read its artists)."""
    from scipy.signal import stft

    from catalog import decode_audio

    audio, fs = decode_audio(row["audio"]["bytes"])
    freqs, times, spec = stft(audio[:, 0], fs, nperseg=1024, noverlap=1024 - 256)
    power = 10 * np.log10(np.abs(spec) ** 2 + 1e-12)
    fig, axes = plt.subplots(5, 1, figsize=(14, 12), sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [3, 2, 1.5, 1.5, 1.2]})
    channel = "W (omni)" if row["format"] == "foa" else "mic 1"
    facts = [row["format"].upper()]
    if row.get("room_dims"):
        facts.append(f"room {' x '.join(f'{d:.1f}' for d in row['room_dims'])} m")
    if row.get("rt60") is not None:
        facts.append(f"RT60 {row['rt60']:.2f} s")
    if row.get("noise_snr_db") is not None:
        facts.append(f"ambience SNR {row['noise_snr_db']:.0f} dB")
    if row.get("recipe"):  # an augmented row: the steps it went through
        facts.append("recipe " + " + ".join(step["name"] for step in json.loads(row["recipe"])["steps"]))
    caption = textwrap.fill(row.get("caption") or "", 170)
    fig.suptitle(f"{row['id']}: {', '.join(facts)}\n{caption}", fontsize=10)
    ax = axes[0]
    top = power.max()
    mesh = ax.pcolormesh(times, freqs, power, vmin=top - 80, vmax=top, shading="auto", cmap="magma")
    ax.set(yscale="symlog", ylim=(50, fs / 2), ylabel="Hz", title=f"spectrogram of channel {channel}")
    fig.colorbar(mesh, ax=ax, label="dB", pad=0.01)
    colors = {c: plt.cm.tab10(i % 10) for i, c in enumerate(classes)}
    labels = row["labels"] or []
    t = np.array([lab["frame"] * hop_s for lab in labels])
    cls = [classes[lab["class_index"]] for lab in labels]
    ax = axes[1]
    frames: dict[tuple[str, int], list[float]] = {}  # (class, track) -> label frame starts
    for lab, name, start in zip(labels, cls, t):
        frames.setdefault((name, lab["track"]), []).append(start)
    for (name, track), starts in frames.items():
        ax.broken_barh([(f, hop_s) for f in starts], (classes.index(name) + 0.25 * track - 0.1, 0.2),
                       color=colors[name])
    top_track = max((lab["track"] for lab in labels), default=0)
    ax.set(yticks=range(len(classes)), yticklabels=classes, ylim=(-0.6, len(classes) - 0.6 + 0.25 * top_track),
           title=f"active classes per {hop_s * 1000:.0f} ms label frame (a second track of a class sits higher); "
                 f"the panels below use the same colours")
    for tick, name in zip(ax.get_yticklabels(), classes):
        tick.set_color(colors[name])
    for ax, key, unit, lim in ((axes[2], "azimuth", "deg", (-180, 180)), (axes[3], "elevation", "deg", (-90, 90)),
                               (axes[4], "distance", "m", None)):
        values = np.array([lab[key] for lab in labels])
        for name in classes:
            pick = np.array([c == name for c in cls], dtype=bool)
            if pick.any():
                ax.scatter(t[pick] + hop_s / 2, values[pick], s=6, color=colors[name])
        ax.set(ylabel=unit, title=key, **({"ylim": lim} if lim else {}))
        ax.grid(alpha=0.3)
    axes[4].set(xlabel="time (s)", xlim=(0, row["duration"]))
    return fig
