"""The bad-input sweep: every kind of bad input a user can hand over is refused with one clear
message (what is wrong, how to fix it, no traceback) or quarantined with its reason.

Tally: 42 bad inputs tried -> 42 refused or quarantined (11 broken audio files quarantined by a
real `roomtone ingest events`, 21 configs/specs/names refused by the CLI, 10 input mismatches
refused by the stages before any job starts).
"""

from __future__ import annotations

import io
import sys

import datasets
import numpy as np
import pytest
import soundfile as sf

from catalog import Catalog, CatalogConfig, RoomtoneError, audio_cell, encode_flac, write_shard
from pipelines.configs import load_config
from pipelines.stages.augment import AugmentConfig, run_augment
from pipelines.stages.events import read_quarantine
from pipelines.stages.qa import QaConfig, run_qa
from pipelines.stages.scenes import ScenesConfig, run_scenes
from tests.helpers import (SONIC_PI, clip_features, clip_rows, copy_sonic_pi, pcm16_clip, publish_dataset,
                           sonic_pi_rows, write_labels_csv)
from tests.test_cli import roomtone

GOOD = ["bd_klub.flac", "elec_triangle.flac"]


def broken_audio() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, a word of the reason it must be quarantined with)."""
    flac = (SONIC_PI / "bd_klub.flac").read_bytes()

    def wav(x, rate, subtype="PCM_16"):
        buf = io.BytesIO()
        sf.write(buf, x, rate, format="WAV", subtype=subtype)
        return buf.getvalue()
    tone = 0.1 * np.sin(np.arange(4800) / 5)
    return {"truncated.flac": (flac[:len(flac) // 2], "unreadable"),
            "bad_header.flac": (flac[:4] + bytes(60) + flac[64:], "unreadable"),
            # decodes cleanly, but not to the audio the encoder signed: damage libsndfile cannot see
            "wrong_md5.flac": (flac[:26] + bytes(b ^ 0xFF for b in flac[26:42]) + flac[42:], "MD5"),
            "zero_bytes.flac": (b"", "empty file"),
            "zero_frames.wav": (wav(np.zeros((0, 1)), 24_000), "empty"),
            "nan.wav": (wav(np.where(np.arange(4800) % 7, tone, np.nan).astype(np.float32), 24_000, "FLOAT"), "NaN"),
            "inf.wav": (wav(np.where(np.arange(4800) % 7, tone, np.inf).astype(np.float32), 24_000, "FLOAT"),
                        "infinite"),
            "one_sample.wav": (wav(tone[:1], 24_000), "too short"),
            "dc.wav": (wav(np.full(4800, 0.3), 24_000), "constant (DC) signal"),
            "rate_1hz.wav": (wav(tone, 1), "sample rate"),
            "rate_2mhz.wav": (wav(tone, 2_000_000), "sample rate")}


def test_broken_audio_is_quarantined_with_its_reason(tmp_path):
    folder = tmp_path / "lib"
    rows = [r for r in sonic_pi_rows() if r["file"] in GOOD]
    copy_sonic_pi(folder, rows)
    bad = broken_audio()
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    write_labels_csv(folder, rows + [{**rows[0], "file": name} for name in bad])
    roomtone("ingest", "events", str(folder), "--labels-csv", str(folder / "labels.csv"), "--name", "lib",
             "--sample-rate", "16000", root=tmp_path / "home")
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    reasons = {q["source_file"]: q["reason"] for q in read_quarantine(catalog, "lib")}
    assert catalog.show("lib").stats["rows"] == len(GOOD)
    assert {name: word in reasons.get(name, "") for name, (_, word) in bad.items()} == {n: True for n in bad}, reasons


def cli(root, *args) -> str:
    """`roomtone ARGS` in this process (the CLI's own error handling); returns stderr of a refusal."""
    from pipelines.cli import main

    argv, sys.argv = sys.argv, ["roomtone", "--root", str(root), *args]
    try:
        main()
    except SystemExit as exc:
        return exc.code
    finally:
        sys.argv = argv
    return 0


# (what is bad, the CLI arguments with {dir} for files written below, a word the message must hold)
REFUSED = [
    ("huge count", ["ingest", "synthetic", "--per-class", str(10**30), "--name", "x"], "per_class"),
    ("negative count", ["ingest", "synthetic", "--per-class", "-3", "--name", "x"], "per_class"),
    ("NaN range", ["simulate", "rirs", "--config", "{dir}/nan.yaml"], "rt60"),
    ("infinite number", ["simulate", "rirs", "--config", "{dir}/inf.yaml"], "num_rooms"),
    ("huge seed", ["simulate", "rirs", "--config", "{dir}/seed.yaml"], "seed"),
    ("huge shard size", ["simulate", "rirs", "--config", "{dir}/shard.yaml"], "max_shard_bytes"),
    ("invalid YAML config", ["simulate", "rirs", "--config", "{dir}/broken.yaml"], "not valid YAML"),
    ("config that is no mapping", ["simulate", "rirs", "--config", "{dir}/list.yaml"], "mapping"),
    ("unknown config key", ["simulate", "rirs", "--config", "{dir}/typo.yaml"], "num_roomz"),
    # the message's "[min, max]" was eaten as console markup
    ("negative room size", ["simulate", "rirs", "--config", "{dir}/negative.yaml"], "range [min, max] with"),
    ("rooms too small for the source distance", ["simulate", "rirs", "--config", "{dir}/crowded.yaml"],
     "min_source_distance=0.5 m cannot be kept"),
    ("invalid YAML spec", ["run", "{dir}/broken.yaml", "--dry-run"], "not valid YAML"),
    ("unknown stage kind", ["run", "{dir}/kind.yaml", "--dry-run"], "unknown kind"),
    ("unparsable --set value", ["run", "{dir}/spec.yaml", "--dry-run", "--set", "rooms.num_rooms=["],
     "not valid YAML"),
    ("NaN through --set", ["run", "{dir}/spec.yaml", "--dry-run", "--set", "rooms.rt60=[.nan, 1]"], "rt60"),
    ("unknown class kind", ["ingest", "synthetic", "--config", "{dir}/kinds.yaml", "--name", "x"], "kinds"),
    ("path-like dataset name", ["ingest", "synthetic", "--name", "../x"], "dataset name '../x' is invalid"),
    ("dataset name with a slash", ["ingest", "synthetic", "--name", "a/b"], "is invalid"),
    ("path-like stage key", ["run", "{dir}/key.yaml", "--dry-run"], "stage key '../rooms' is invalid"),
    ("path-like input reference", ["run", "{dir}/ref.yaml", "--dry-run"], "is invalid"),
    ("path-like catalog reference", ["catalog", "show", "../../etc/passwd"], "is invalid"),
]
FILES = {"nan.yaml": "rt60: [.nan, 1.0]\n", "inf.yaml": "num_rooms: .inf\n", "seed.yaml": f"seed: {2**70}\n",
         "shard.yaml": f"max_shard_bytes: {10**30}\n", "broken.yaml": "num_rooms: [unclosed\n",
         "list.yaml": "- num_rooms\n", "typo.yaml": "num_roomz: 3\n",
         "negative.yaml": "room_x: [-5, 6]\n", "crowded.yaml": "room_x: [2.1, 2.1]\nroom_y: [2.1, 2.1]\nroom_z: [2.1, 2.5]\n",
         "kinds.yaml": "kinds: [unicorn]\n",
         "kind.yaml": "name: bad\nstages:\n  rooms: {kind: roomz}\n",
         "spec.yaml": "name: bad\nstages:\n  rooms: {kind: rirs, num_rooms: 1}\n",
         "key.yaml": "name: bad\nstages:\n  ../rooms: {kind: rirs}\n",
         "ref.yaml": "name: bad\nstages:\n  mix: {kind: augment, source: ../scenes}\n"}


@pytest.mark.parametrize("what, args, word", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_config_is_refused_by_the_cli_naming_the_field(tmp_path, capsys, what, args, word):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    code = cli(tmp_path / "home", *[a.format(dir=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 1, err
    assert word in err and "fix:" in err and "Traceback" not in err and "(root)" not in err, err
    assert not (tmp_path / "home" / "data").exists()  # nothing was written


def rir_dataset(catalog, name: str, rates: list[int], channels: list[int], rooms: bool = True):
    """RIR rows of the given rates and channel counts, with their rooms' columns unless not ``rooms``."""
    room = {"room_id": datasets.Value("string"), "rt60": datasets.Value("float32"),
            "room_dims": datasets.Sequence(datasets.Value("float32"))} if rooms else {}
    features = datasets.Features({"id": datasets.Value("string"),
                                  "rir": datasets.Sequence(datasets.Sequence(datasets.Value("float32"))),
                                  "sample_rate": datasets.Value("int32"), "num_channels": datasets.Value("int32"),
                                  "array": datasets.Value("string"), **room})
    run = catalog.create_run(name, {"rows": len(rates)}, features)
    write_shard(run.shard("train", 0, 1), features,
                [{"id": f"r{i}", "rir": [[0.0] * 8] * c, "sample_rate": r, "num_channels": c, "array": "foa",
                  **({"room_id": "room-0", "rt60": 0.3, "room_dims": [5.0, 4.0, 3.0]} if rooms else {})}
                 for i, (r, c) in enumerate(zip(rates, channels))])
    return catalog.publish(run)


def mixed_formats(catalog, name: str = "mixed_formats", slow: bool = True):
    """An event library (a label per clip, no events) of two mono clips, one stereo clip and (with
    `slow`) one mono clip at 16 kHz, its audio column declared at 24 kHz."""
    odd = {"id": "slow", "audio": audio_cell(encode_flac(pcm16_clip(9, channels=1) / 32768.0, 16_000), "slow.flac"),
           "duration": 0.3, "label": "dog"}
    run = catalog.create_run(name, {"rows": 4}, clip_features())
    write_shard(run.shard("train", 0, 1), clip_features(), [*clip_rows(0, 2, channels=1), *clip_rows(2, 1, channels=2),
                                                            *([odd] if slow else [])])
    return catalog.publish(run)


MISMATCHES = [
    ("RIRs at another sample rate", lambda c: run_augment(AugmentConfig(
        source="clips", rirs=rir_dataset(c, "rirs_16k", [16_000], [4]).name, steps=[{"name": "reverb"}]), c),
     "sampled at"),
    ("RIRs with mixed channel counts", lambda c: run_augment(AugmentConfig(
        source="clips", rirs=rir_dataset(c, "rirs_mixed", [24_000, 24_000], [2, 4]).name,
        steps=[{"name": "reverb"}]), c), "channel"),
    ("RIRs of another channel count, the clips' count from their headers", lambda c: run_augment(AugmentConfig(
        source="clips", rirs=rir_dataset(c, "rirs_stereo", [24_000], [2]).name, steps=[{"name": "reverb"}]), c),
     "(their headers, e.g. clip-0"),
    ("an event library whose stereo clip the RIRs do not fit, after mono clips", lambda c: run_augment(AugmentConfig(
        source=mixed_formats(c, "mono_then_stereo", slow=False).name,
        rirs=rir_dataset(c, "rirs_foa", [24_000], [4]).name, steps=[{"name": "reverb"}]), c),
     "holds [2]-channel clips (their headers, e.g. clip-2"),
    ("RIRs without their rooms", lambda c: run_augment(AugmentConfig(
        source="clips", rirs=rir_dataset(c, "rirs_roomless", [24_000], [4], rooms=False).name,
        steps=[{"name": "reverb"}]), c), "lacks columns ['room_dims', 'room_id', 'rt60']"),
    ("an event library with a clip at another rate, only gained", lambda c: run_augment(AugmentConfig(
        source=mixed_formats(c).name, steps=[{"name": "gain"}]), c),
     "is sampled at 16000 Hz"),
    ("an event library of several channel counts to mix", lambda c: run_augment(AugmentConfig(
        source=mixed_formats(c, slow=False).name, steps=[{"name": "mix"}]), c),
     "hold 1 ch: 2 clip(s), e.g. clip-0, 2 ch: 1 clip(s), e.g. clip-2"),
    ("a class map missing a class", lambda c: run_scenes(ScenesConfig(events="clips", rirs="clips",
                                                                      classes=["dog"]), c), "misses classes"),
    ("unknown QA family", lambda c: load_config(QaConfig, source="clips", families=["telepathy"]),
     "unknown families"),
    ("QA tuples about RIRs", lambda c: run_qa(QaConfig(source=rir_dataset(c, "rirs_only", [24_000], [4]).name), c),
     "holds no audio clips"),  # 55 room questions about clips nobody can hear were published
]


@pytest.mark.parametrize("what, make, word", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_mismatched_inputs_are_refused_before_any_job(tmp_path, what, make, word):
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    publish_dataset(catalog, "clips", {"rows": 4})  # 24 kHz, 4-channel clips labelled dog / bell
    with pytest.raises(RoomtoneError) as err:
        make(catalog)
    assert word in err.value.problem and err.value.fix


def test_a_config_error_names_where_its_values_came_from(tmp_path):
    """--polyphony 3 with a file of tracks: 2 was reported as "invalid ScenesConfig in sc.yaml"."""
    (tmp_path / "sc.yaml").write_text("tracks: 2\n")
    with pytest.raises(RoomtoneError, match=r"invalid ScenesConfig \(from .*sc.yaml and the command's options\): "
                                            r"polyphony=3 is above the number of tracks=2"):
        load_config(ScenesConfig, tmp_path / "sc.yaml", polyphony=3)
