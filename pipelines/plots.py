"""Pictures people would rather look at than read: one RIR with its decay and its room."""

from __future__ import annotations

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
