"""The roomtone command as a user runs it: a subprocess, one-line errors, --help that teaches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOMTONE = str(Path(sys.executable).parent / "roomtone")


def roomtone(*args, root, check=True):
    env = {**os.environ, "ROOMTONE_ROOT": str(root), "ROOMTONE_RAY_DASHBOARD": "0"}
    proc = subprocess.run([ROOMTONE, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("args", [[], ["catalog"], ["catalog", "diff"], ["ingest", "synthetic"], ["simulate", "scenes"],
                                  ["catalog", "query"], ["export", "dcase"], ["plan"], ["plot", "scene"], ["catalog", "drop"]])
def test_help_teaches(tmp_path, args):
    out = roomtone(*args, "--help", root=tmp_path).stdout
    assert "Usage" in out and len(out) > 200


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_docstring(tmp_path):
    """A docstring's own line breaks would cut help lines short on a wide terminal (and
    ragged on a narrow one); examples keep theirs."""
    from pipelines.cli.common import reflow

    doc = """One
        two.

        Steps:

            a: 1
            b: 2

        - x
        - y"""
    assert reflow(doc) == "One two.\n\nSteps:\n\n    a: 1\n    b: 2\n\n- x\n- y"
    proc = subprocess.run([ROOMTONE, "augment", "--help"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ROOMTONE_ROOT": str(tmp_path), "COLUMNS": "200"})
    assert any("events, labels and captions merged" in line for line in proc.stdout.splitlines())


def test_generate_then_browse(tmp_path):
    snap = json.loads(roomtone("ingest", "synthetic", "--per-class", "1", "--name", "demo_events",
                               "--json", root=tmp_path).stdout)
    assert snap["stats"]["rows"] == 6
    listed = json.loads(roomtone("catalog", "ls", "--json", root=tmp_path).stdout)
    assert [d["name"] for d in listed] == ["demo_events"]
    shown = json.loads(roomtone("catalog", "show", "demo_events@v1", "--json", root=tmp_path).stdout)
    assert shown["snapshot_id"] == snap["snapshot_id"] and shown["config"]["per_class"] == 1
    assert len(json.loads(roomtone("catalog", "history", "demo_events", "--json", root=tmp_path).stdout)) == 1
    assert json.loads(roomtone("catalog", "lineage", "demo_events", "--json", root=tmp_path).stdout)["inputs"] == []
    files = json.loads(roomtone("catalog", "files", "demo_events", "--json", root=tmp_path).stdout)
    assert sum(f["rows"] for f in files) == 6
    rows = json.loads(roomtone("catalog", "query", "SELECT count(*) AS n FROM demo_events", "--json",
                               root=tmp_path).stdout)
    assert rows == [{"n": 6}]
    assert "ok" in roomtone("catalog", "verify", "demo_events", root=tmp_path).stdout
    damage_audio_page(files[0]["uri"])
    checked = roomtone("catalog", "verify", "demo_events", "--json", root=tmp_path, check=False)
    assert checked.returncode == 1
    assert [f["problem"] is not None for f in json.loads(checked.stdout)] == [True] + [False] * (len(files) - 1)
    card = roomtone("catalog", "card", "demo_events", root=tmp_path).stdout
    assert card.startswith("---") and "dataset_info" in card
    table = roomtone("catalog", "ls", root=tmp_path).stdout
    assert "demo_events" in table and "v1" in table
    (tmp_path / "a_file").write_text("")  # an output path the OS refuses: one message, not a traceback
    refused = roomtone("report", "demo_events", "--out", str(tmp_path / "a_file"), root=tmp_path, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "fix:" in refused.stderr
    assert "a_file" in refused.stderr


def damage_audio_page(uri: str) -> None:
    """Flip one byte in the middle of the first row group's stored FLAC bytes: a page only its CRC can
    show to be damaged (the column is stored uncompressed, so it still decodes)."""
    import pyarrow.parquet as pq

    path = uri.removeprefix("file://")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "audio.bytes")
    data = bytearray(Path(path).read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    assert pq.read_table(path).num_rows  # still reads without the check


@pytest.mark.parametrize("args, message", [
    (["catalog", "show", "../etc"], "dataset name '../etc' is invalid"),
    (["catalog", "show", "missing"], "dataset 'missing' is not in the catalog"),
    (["ingest", "synthetic", "--per-class", "0"], "per_class"),
    (["catalog", "query", "DROP TABLE x"], "query failed"),
    # --model is validated together with the --set fields that depend on it (teacher needs a tokenizer model)
    (["pretrain", "beats", "--model", "beats-tokenizer-tiny", "-d", "missing", "--set", "teacher=runs/it1"],
     "dataset 'missing' is not in the catalog"),
    # a --set of a field that also has an option is kept when the option is left out
    (["pretrain", "ssast", "-d", "missing", "--set", "steps=0"], "steps"),
    (["eval", "probe", "runs/x", "-d", "missing", "--set", "steps=0"], "steps"),
    (["eval", "probe", "models:/roomtone-ssast-tiny/2", "-d", "events"], "is an MLflow model URI"),
    (["pretrain", "ssast", "-d", "events", "--steps", "5", "--set", "steps=9"],
     "steps is 5 by its option or argument and 9 by --set"),
    (["ingest", "synthetic", "--per-class", "1", "--address", "127.0.0.1:1"], "nothing answers there"),
    (["--root", "/proc/roomtone", "catalog", "ls"], "cannot"),
])
def test_errors_are_one_clear_message(tmp_path, args, message):
    proc = roomtone(*args, root=tmp_path, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr and "fix:" in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = roomtone("--debug", "catalog", "show", "../etc", root=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_bad_config_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("num_rooms: [unclosed\n")
    proc = roomtone("simulate", "rirs", "--config", str(bad), root=tmp_path, check=False)
    assert proc.returncode == 1 and "not valid YAML" in proc.stderr
    bad.write_text("num_roomz: 3\n")
    proc = roomtone("simulate", "rirs", "--config", str(bad), root=tmp_path, check=False)
    assert proc.returncode == 1 and "num_roomz" in proc.stderr and "did you mean 'num_rooms'?" in proc.stderr


def test_plot_scene_draws_a_chosen_scene_and_names_what_is_wrong(demo_run, tmp_path):
    out = tmp_path / "scene.png"
    home = demo_run.home
    roomtone("plot", "scene", "scenes", "--id", "scene-0000001", "--out", str(out), root=home)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    roomtone("plot", "scene", "mixes", "--out", str(out), root=home)  # augmented scenes: their recipe in the title
    proc = roomtone("plot", "scene", "rirs", "--out", str(out), root=home, check=False)
    assert proc.returncode == 1 and "rirs has no 'labels' column" in proc.stderr and "roomtone simulate scenes" in \
        proc.stderr


def test_simulate_rirs_then_plot(tmp_path):
    config = tmp_path / "rirs.yaml"
    config.write_text("num_rooms: 2\nsources_per_room: 1\nroom_x: [3, 4]\nroom_y: [3, 4]\nroom_z: [2.5, 3]\n"
                      "rt60: [0.2, 0.3]\nsample_rate: 16000\ntest_fraction: 0\n")
    snap = json.loads(roomtone("simulate", "rirs", "--config", str(config), "--json", root=tmp_path).stdout)
    assert snap["stats"]["rows"] == 2
    out = tmp_path / "rir.png"
    roomtone("plot", "rir", "rirs", "--out", str(out), root=tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    proc = roomtone("plot", "rir", "rirs", "--id", "nope", "--out", str(out), root=tmp_path, check=False)
    assert proc.returncode == 1 and "row 'nope' is not in rirs" in proc.stderr
    for bad in (tmp_path, tmp_path / "rir.xyz"):  # a folder was written as <folder>.png and reported as written
        proc = roomtone("plot", "rir", "rirs", "--out", str(bad), root=tmp_path, check=False)
        assert proc.returncode == 1 and "is not a .png file name" in proc.stderr and "Traceback" not in proc.stderr
