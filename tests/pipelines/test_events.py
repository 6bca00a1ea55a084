"""The sound-event library ingest and the synthetic library, on a real local Ray cluster."""

import json
import shutil

import datasets
import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError
from scipy.signal import resample_poly

from catalog import Catalog, CatalogConfig, RoomtoneError, decode_audio
from pipelines.stages.events import EventsConfig, features, plan_library, read_quarantine, run_ingest_events
from pipelines.stages.synthetic_events import SyntheticEventsConfig, make_rows, run_synthetic_events
from pipelines.sharded import ShardTask
from tests.conftest import SHARED
from tests.helpers import SONIC_PI, copy_sonic_pi, sonic_pi_rows, write_labels_csv
from tests.test_cli import roomtone

ONTOLOGY = SHARED / "data" / "ontology" / "audioset_ontology.json"
REAL = ["ambi_choir.flac", "ambi_piano.flac", "bass_hit_c.flac", "bass_voxy_hit_c.flac", "bd_klub.flac",
        "drum_cymbal_closed.flac", "drum_snare_soft.flac", "drum_tom_mid_soft.flac", "elec_triangle.flac",
        "tabla_re.flac"]
BAD = {"corrupt.flac": "unreadable", "empty.wav": "empty file", "silent.wav": "silent",
       "nan.wav": "NaN"}


def make_library(folder):
    """Ten real CC0 events with their labels.csv rows, plus the four kinds of broken file."""
    rows = [r for r in sonic_pi_rows() if r["file"] in REAL]
    copy_sonic_pi(folder, rows)
    (folder / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "silent.wav", np.zeros(4800), 48_000)
    sf.write(folder / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000, np.float32), 48_000, subtype="FLOAT")
    rows += [{"file": name, "family": "bad", "label": "Bass drum", "samplerate": "48000", "channels": "1",
              "duration_s": "0.1", "license": "CC0-1.0"} for name in BAD]
    write_labels_csv(folder, rows)
    return {r["file"]: r for r in rows}


def test_ingest_conditions_events_and_quarantines_broken_files(tmp_path, ray_cluster):
    listed = make_library(tmp_path / "lib")
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    cfg = EventsConfig(name="sonic", folder=tmp_path / "lib", labels_csv=tmp_path / "lib" / "labels.csv",
                       ontology=ONTOLOGY, sample_rate=16_000, max_shard_bytes=400_000)
    snap = run_ingest_events(cfg, catalog, show_progress=False)
    assert snap.stats["rows"] == len(REAL) and snap.stats["shards"] > 1
    quarantine = {q["source_file"]: q["reason"] for q in read_quarantine(catalog, "sonic")}
    assert set(quarantine) == set(BAD)
    assert all(word in quarantine[name] for name, word in BAD.items())
    assert catalog.lineage("sonic_quarantine")["inputs"][0]["ref"] == snap.ref

    ontology = {c["name"]: c["id"] for c in json.loads(ONTOLOGY.read_text())}
    for row in catalog.arrow_dataset(snap.ref).to_table().to_pylist():
        audio, rate = decode_audio(row["audio"]["bytes"], "float64")
        assert audio.shape[1] == 1 and rate == 16_000 and row["duration"] == pytest.approx(len(audio) / rate)
        x = audio[:, 0]
        assert min(abs(x[0]), abs(x[-1])) >= 0.97 * np.abs(x).max() * 10 ** (cfg.trim_db / 20)
        source, _ = sf.read(tmp_path / "lib" / row["source_file"], always_2d=True)
        y = np.abs(resample_poly(source.mean(axis=1), 160, 441))  # 44.1 kHz -> 16 kHz
        loud = np.flatnonzero(y >= y.max() * 10 ** (cfg.trim_db / 20))
        assert len(x) == loud[-1] - loud[0] + 1  # exactly the span between the first and last loud samples
        assert 20 * np.log10(np.sqrt(np.mean(x ** 2))) == pytest.approx(cfg.loudness_db, abs=0.5)
        listing = listed[row["source_file"]]
        assert row["id"] == row["source_file"] and row["label"] == listing["label"]
        assert row["ontology_id"] == ontology.get(listing["label"])  # Tom-tom drum, Triangle: no AudioSet class
        assert row["original_sample_rate"] == 44_100 and row["original_channels"] == int(listing["channels"])
        assert row["license"] == "CC0-1.0" and row["synthetic"] is False
    assert snap.stats["class_counts"]["Bass guitar"] == 2
    assert "below_loudness_target" not in snap.info  # every event reaches -30 dBFS


def test_events_whose_peaks_keep_them_under_the_target_are_counted_and_said(tmp_path, ray_cluster, capsys):
    """At -12 dBFS some of the CC0 events would clip: the peak ceiling leaves them quieter. The
    probe's estimate (before resampling) is checked against the levels the ingest wrote."""
    from pipelines.cli.ingest_cmd import _summary

    make_library(tmp_path / "lib")
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    cfg = EventsConfig(name="loud", folder=tmp_path / "lib", labels_csv=tmp_path / "lib" / "labels.csv",
                       sample_rate=16_000, loudness_db=-12.0)
    snap = run_ingest_events(cfg, catalog, show_progress=False)
    levels = {}
    for row in catalog.arrow_dataset(snap.ref).to_table(columns=["id", "audio"]).to_pylist():
        audio, _ = decode_audio(row["audio"]["bytes"], "float64")
        levels[row["id"]] = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
    quiet = snap.info["below_loudness_target"]
    surely = sum(db <= -13.5 for db in levels.values())
    maybe = sum(db <= -12.5 for db in levels.values())
    assert 0 < surely <= quiet["events"] <= maybe < len(levels) and quiet["of"] == len(levels)
    assert quiet["quietest"] == min(levels, key=levels.get)
    assert quiet["quietest_db"] == pytest.approx(min(levels.values()), abs=0.5)
    assert quiet["levelling_db"] <= min(levels.values())
    _summary(snap, None)
    said = capsys.readouterr().out
    assert f"{quiet['events']} of {len(levels)} events stay 1 dB or more under --loudness-db -12" in said
    assert f"--loudness-db {quiet['levelling_db']} or lower" in said


def test_folder_labels_and_errors_before_publishing(tmp_path, ray_cluster):
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    for label, files in {"dog": ["bd_klub.flac"], "glass": ["ambi_glass_rub.flac", "elec_triangle.flac"]}.items():
        (tmp_path / "lib" / label).mkdir(parents=True)
        for name in files:
            shutil.copy(SONIC_PI / name, tmp_path / "lib" / label / name)
    shutil.copy(SONIC_PI / "tabla_re.flac", tmp_path / "lib")  # no class folder
    snap = run_ingest_events(EventsConfig(name="by_folder", folder=tmp_path / "lib", test_fraction=0.5,
                                          seed=3), catalog, show_progress=False)
    rows = catalog.arrow_dataset(snap.ref).to_table(columns=["id", "label", "ontology_id"]).to_pylist()
    assert {r["id"]: r["label"] for r in rows} == {"dog/bd_klub.flac": "dog", "glass/ambi_glass_rub.flac": "glass",
                                                   "glass/elec_triangle.flac": "glass"}
    assert all(r["ontology_id"] is None for r in rows) and sum(snap.stats["splits"].values()) == 3
    assert "labels_of_nested_folders" not in snap.info
    assert [q["source_file"] for q in read_quarantine(catalog, "by_folder")] == ["tabla_re.flac"]
    cfg = EventsConfig(name="by_folder", folder=tmp_path / "lib", test_fraction=0.5, seed=3)
    assert run_ingest_events(cfg, catalog, show_progress=False).snapshot_id == snap.snapshot_id  # unchanged: reused
    # the same config on changed files is a new version, not the old one reused (it was)
    shutil.copy(SONIC_PI / "bd_fat.flac", tmp_path / "lib" / "glass" / "elec_triangle.flac")
    changed = run_ingest_events(cfg, catalog, show_progress=False)
    assert changed.version_ref == "by_folder@v2"

    def audio(s):
        table = catalog.arrow_dataset(s.ref).to_table(columns=["id", "audio"]).to_pylist()
        return {r["id"]: r["audio"]["bytes"] for r in table}
    before, after = audio(snap), audio(changed)
    assert after["glass/elec_triangle.flac"] != before["glass/elec_triangle.flac"]
    assert after["dog/bd_klub.flac"] == before["dog/bd_klub.flac"]
    (tmp_path / "lib" / "tabla_re.flac").unlink()
    (tmp_path / "lib" / "glass" / "soft").mkdir()  # a nested folder names its files' class: said, not silent
    shutil.copy(SONIC_PI / "drum_snare_soft.flac", tmp_path / "lib" / "glass" / "soft")
    nested = run_ingest_events(EventsConfig(name="by_folder", folder=tmp_path / "lib"), catalog, show_progress=False)
    assert read_quarantine(catalog, "by_folder") == []
    assert nested.info["labels_of_nested_folders"] == {"soft": "glass/soft/drum_snare_soft.flac"}

    (tmp_path / "empty").mkdir()
    with pytest.raises(RoomtoneError, match=f"folder {tmp_path / 'empty'} has no audio files"):
        run_ingest_events(EventsConfig(name="none", folder=tmp_path / "empty"), catalog)
    (tmp_path / "broken" / "dog").mkdir(parents=True)
    (tmp_path / "broken" / "dog" / "a.wav").write_bytes(b"RIFF not really")
    with pytest.raises(RoomtoneError, match=f"folder {tmp_path / 'broken'} has no readable"):
        run_ingest_events(EventsConfig(name="broken", folder=tmp_path / "broken"), catalog)
    (tmp_path / "lib" / "labels.csv").write_text("file,class\ndog/bd_klub.flac,dog\n")
    with pytest.raises(RoomtoneError, match="has no column 'label'"):
        run_ingest_events(EventsConfig(name="nolabel", folder=tmp_path / "lib",
                                       labels_csv=tmp_path / "lib" / "labels.csv"), catalog)
    assert catalog.names() == ["by_folder", "by_folder_quarantine"]


def test_synthetic_library_is_deterministic_with_the_event_schema(tmp_path, ray_cluster):
    catalog = Catalog(CatalogConfig(root=str(tmp_path)))
    cfg = SyntheticEventsConfig(per_class=3, duration=(0.1, 0.5), ontology=ONTOLOGY)
    snap = run_synthetic_events(cfg, catalog, show_progress=False)
    assert snap.stats["class_counts"] == {kind: 3 for kind in cfg.kinds}
    assert snap.features == features(EventsConfig(folder=tmp_path))
    rows = {r["id"]: r for r in catalog.arrow_dataset(snap.ref).to_table().to_pylist()}
    assert rows["footsteps-000001"]["ontology_id"] == "/m/07pbtc8" and rows["siren-000000"]["ontology_id"]
    assert rows["harmonic_tone-000002"]["ontology_id"] is None
    assert all(r["synthetic"] and r["license"] == "CC0-1.0 (generated)" for r in rows.values())
    again = make_rows(cfg, {kind: None for kind in cfg.kinds}, ShardTask("train", 0, 1, (("siren-000002", "siren"),)))
    assert next(again)["audio"]["bytes"] == rows["siren-000002"]["audio"]["bytes"]


def test_cli_ingest_synthetic(tmp_path):
    snap = json.loads(roomtone("ingest", "synthetic", "--per-class", "2", "--json", root=tmp_path).stdout)
    assert snap["name"] == "synthetic_events" and snap["stats"]["rows"] == 12
    again = roomtone("ingest", "synthetic", "--per-class", "2", root=tmp_path).stdout
    assert "unchanged config and inputs: kept synthetic_events@v1" in again, again  # it said "published"


def hf_dataset():
    """Three sonic-pi events and one corrupted entry as a Hugging Face dataset (no id column)."""
    names = ["bd_klub.flac", "elec_triangle.flac", "tabla_re.flac"]
    cells = [{"bytes": (SONIC_PI / n).read_bytes(), "path": n} for n in names]
    cells.append({"bytes": np.random.default_rng(1).bytes(3000), "path": "broken.flac"})
    return datasets.Dataset.from_dict({"audio": cells, "label": ["kick", "triangle", "tabla", "kick"],
                                       "license": ["CC0-1.0"] * 4}).cast_column("audio", datasets.Audio())


def test_ingest_hf_dataset_quarantines_the_corrupted_row(tmp_path, ray_cluster, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")  # load_dataset's cache
    ds = hf_dataset()
    ds.save_to_disk(tmp_path / "saved")
    ds.to_parquet(tmp_path / "parquet" / "data" / "train-00000-of-00001.parquet")
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    cfg = EventsConfig(name="hf", hf_dataset=tmp_path / "saved", sample_rate=16_000)
    snap = run_ingest_events(cfg, catalog, show_progress=False)
    rows = {r["id"]: r for r in catalog.arrow_dataset(snap.ref).to_table().to_pylist()}
    assert {i: r["label"] for i, r in rows.items()} == {"train/0": "kick", "train/1": "triangle", "train/2": "tabla"}
    assert rows["train/1"]["source_file"] == "elec_triangle.flac" and rows["train/1"]["license"] == "CC0-1.0"
    assert decode_audio(rows["train/0"]["audio"]["bytes"])[1] == 16_000
    assert rows["train/0"]["original_sample_rate"] == 44_100 and snap.inputs == []
    [skipped] = read_quarantine(catalog, "hf")
    assert skipped["source_file"] == "train/3" and "unreadable" in skipped["reason"]
    # a Parquet folder that load_dataset reads plans the same items as the saved copy
    parquet = EventsConfig(hf_dataset=tmp_path / "parquet")
    assert plan_library(parquet, catalog).sources == plan_library(cfg, catalog).sources


def test_ingest_from_a_catalog_dataset_records_its_snapshot(tmp_path, ray_cluster):
    for label, name in [("kick", "bd_klub.flac"), ("kick", "bd_haus.flac"), ("tabla", "tabla_re.flac")]:
        (tmp_path / "lib" / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(SONIC_PI / name, tmp_path / "lib" / label / name)
    catalog = Catalog(CatalogConfig(root=str(tmp_path / "home")))
    first = run_ingest_events(EventsConfig(name="lib", folder=tmp_path / "lib", sample_rate=16_000,
                                           ontology=ONTOLOGY), catalog, show_progress=False)
    assert first.info["labels_without_ontology_id"] == ["kick"]  # said, not silently null
    cfg = EventsConfig(name="lib_8k", catalog_dataset="lib@v1", sample_rate=8_000)  # no ontology given
    snap = run_ingest_events(cfg, catalog, show_progress=False)
    assert snap.stats["rows"] == first.stats["rows"] == 3 and snap.inputs == [first.ref]
    assert catalog.lineage("lib_8k")["inputs"][0]["ref"] == first.ref
    rows = catalog.arrow_dataset(snap.ref).to_table().to_pylist()
    assert {r["id"]: (r["label"], r["source_file"]) for r in rows} == {
        "kick/bd_klub.flac": ("kick", "kick/bd_klub.flac"), "kick/bd_haus.flac": ("kick", "kick/bd_haus.flac"),
        "tabla/tabla_re.flac": ("tabla", "tabla/tabla_re.flac")}
    # the source's ontology ids come along (they were all lost), and no ontology means no unmatched-label note
    assert {r["label"]: r["ontology_id"] for r in rows} == {"kick": None, "tabla": "/m/01p970"}
    assert "labels_without_ontology_id" not in snap.info
    for row in rows:
        audio, rate = decode_audio(row["audio"]["bytes"], "float64")
        # the recording's own rate and channels, as source_file names it (it was lib@v1's 16 kHz mono)
        recording = sf.info(str(SONIC_PI / row["source_file"].split("/")[1]))
        assert rate == 8_000 and recording.samplerate == 44_100
        assert (row["original_sample_rate"], row["original_channels"]) == (recording.samplerate, recording.channels)
        assert 20 * np.log10(np.sqrt(np.mean(audio ** 2))) == pytest.approx(cfg.loudness_db, abs=0.5)
    assert read_quarantine(catalog, "lib_8k") == []
    with pytest.raises(RoomtoneError, match="has no column 'class'"):
        run_ingest_events(EventsConfig(name="x", catalog_dataset="lib", label_column="class"), catalog)


@pytest.mark.parametrize("sources", [{}, {"folder": "a", "hf_dataset": "b"},
                                     {"hf_dataset": "b", "catalog_dataset": "c"}])
def test_exactly_one_source(sources):
    with pytest.raises(ValidationError, match="exactly one source of folder, hf_dataset or catalog_dataset"):
        EventsConfig(**sources)


def test_cli_ingest_events_names_the_sources(tmp_path):
    assert "--catalog-dataset" in roomtone("ingest", "events", "--help", root=tmp_path).stdout
    proc = roomtone("ingest", "events", "--hf-dataset", str(tmp_path), "--catalog-dataset", "x", root=tmp_path,
                    check=False)
    assert proc.returncode != 0 and "folder, hf_dataset or catalog_dataset (got hf_dataset and catalog_dataset)" \
        in proc.stdout + proc.stderr


def test_the_test_split_is_stratified_so_every_class_is_on_both_sides():
    """A draw per item alone put all of a small class on one side (the demo's probe scored 0.000 with
    a class only in test); now each label with two or more items has some on each side."""
    from pipelines.stages.events import split_by_item

    items = [("a", i) for i in range(2)] + [("b", i) for i in range(8)] + [("c", 0)]
    for seed in range(20):
        split = split_by_item(items, seed, 0.25, key=str, label=lambda it: it[0])
        test = [label for label, _ in split["test"]]
        assert sorted(test) == ["a", "b", "b"]  # round(2 x 0.25) raised to 1; round(8 x 0.25); c has one item
        assert split_by_item(items[::-1], seed, 0.25, key=str, label=lambda it: it[0])["test"] == split["test"][::-1]
    assert split_by_item(items, 0, 0.0, key=str) == {"train": items}
