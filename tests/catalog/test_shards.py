import datasets
import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from catalog import Location, decode_audio, encode_flac, read_shard_stats, shard_relpath, write_shard
from catalog.shards import ShardWriter, arrow_schema, plan_num_shards
from tests.helpers import RATE, clip_features, clip_rows, pcm16_clip


def _write_dataset(root: Location, rows=6):
    feats = clip_features()
    for k in range(2):
        write_shard(root.join(shard_relpath("train", k, 2)), feats, clip_rows(k * rows // 2, rows // 2),
                    row_group_bytes=50_000)
    from catalog.card import render_card

    root.join("README.md").write_bytes(render_card("t", feats, {"train": rows}, {"train": 0}).encode())
    return feats


def _check_exact_audio(rows):
    for row in rows:
        i = int(row["id"].split("-")[1])
        samples, rate = decode_audio(row["audio"]["bytes"], dtype="int16")
        assert rate == RATE
        np.testing.assert_array_equal(samples, pcm16_clip(i))


def test_flac_roundtrip_is_exact_at_16_and_24_bits():
    pcm = pcm16_clip(0)
    assert np.array_equal(decode_audio(encode_flac(pcm / 32768.0, RATE, 16), dtype="int16")[0], pcm)
    pcm24 = np.random.default_rng(1).integers(-2 ** 23, 2 ** 23, (1000, 3))
    decoded = decode_audio(encode_flac(pcm24 / 2 ** 23, RATE, 24), dtype="int32")[0] >> 8
    assert np.array_equal(decoded, pcm24)


@pytest.mark.parametrize("direct", [True, False], ids=["libflac", "libsndfile"])
@pytest.mark.parametrize("bits", [16, 24])
@pytest.mark.parametrize("planar", [False, True], ids=["interleaved", "planar"])
def test_both_flac_encoders_give_the_same_samples_and_only_libsndfile_signs_them(monkeypatch, direct, bits, planar):
    """libFLAC called directly (no MD5, 2304-sample frames) and through libsndfile: the same quantised
    samples (round half to even, clipped), STREAMINFO completed, readable by libsndfile and dr_flac;
    whether the samples are stored interleaved or channel by channel (a transposed (channels, time) scene)."""
    import io

    import soundfile as sf

    from catalog import audio, libflac

    if direct and not libflac.available():
        pytest.skip("libFLAC is not installed here (apt-get install flac)")
    x = np.random.default_rng(bits).uniform(-1.2, 1.2, (5000, 3)).astype(np.float32)
    x[:4, 0] = [0.5 / 2 ** (bits - 1), 1.5 / 2 ** (bits - 1), 1.0, -1.0]  # ties round to even; full scale clips
    if planar:
        x = np.ascontiguousarray(x.T).T
    full = 2 ** (bits - 1)
    want = np.clip(np.rint(x.astype(np.float64) * full), -full, full - 1).astype(np.int64)
    monkeypatch.setattr(audio.libflac, "available", lambda: direct)
    data = encode_flac(x, RATE, bits)
    assert np.array_equal(decode_audio(data, dtype="int32")[0] >> (32 - bits), want)
    assert np.array_equal(sf.read(io.BytesIO(data), dtype="int32")[0] >> (32 - bits), want)
    assert want[:4, 0].tolist() == [0, 2, full - 1, -full]
    info = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate, channels, bits, total samples
    assert (info >> 44, ((info >> 41) & 7) + 1, ((info >> 36) & 31) + 1, info & (2 ** 36 - 1)) == (RATE, 3, bits, 5000)
    assert (data[26:42] == bytes(16)) == direct  # the MD5: "not computed" from libFLAC directly
    blocks, frames = (int.from_bytes(data[at:at + 2], "big") for at in (8, 10)), (data[12:15], data[15:18])
    assert list(blocks) == [audio.FLAC_BLOCKSIZE if direct else 1152] * 2  # libsndfile keeps level 0's
    assert all(int.from_bytes(f, "big") > 0 for f in frames)  # STREAMINFO completed: min and max frame sizes


def test_encode_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        encode_flac(np.array([0.0, np.nan]), RATE)


def test_shard_schema_metadata_and_layout(tmp_path):
    root = Location.parse(str(tmp_path))
    feats = _write_dataset(root)
    path = tmp_path / "data/train/train-00000-of-00002.parquet"
    schema = pq.read_schema(path)
    assert str(schema.field("audio").type) == "struct<bytes: binary, path: string>"
    assert b"huggingface" in schema.metadata
    assert datasets.Features.from_arrow_schema(schema) == feats
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups > 1  # row groups follow row_group_bytes
    cols = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression
            for i in range(meta.num_columns)}
    assert cols["audio.bytes"] == "UNCOMPRESSED" and cols["label"] != "UNCOMPRESSED"
    stats, _ = read_shard_stats(root.join("data/train/train-00000-of-00002.parquet"))
    assert stats.rows == 3 and stats.class_counts == {"dog": 2, "bell": 1}
    assert stats.audio_seconds == pytest.approx(3 * 4800 / RATE)


def test_list_columns_are_compressed_with_statistics_and_media_is_stored_plain(tmp_path):
    """Every leaf, inside lists too (`labels.list.element.frame`), gets zstd and min/max statistics;
    only the encoded audio is stored uncompressed and without them."""
    feats = datasets.Features({**clip_features(), "tags": datasets.Sequence(datasets.Value("string")),
                               "labels": [{"frame": datasets.Value("int32"), "azimuth": datasets.Value("float32")}]})
    rows = [dict(row, tags=["a", "b"], labels=[{"frame": i, "azimuth": 10.0 * i}]) for i, row in
            enumerate(clip_rows(0, 3))]
    path = tmp_path / "shard.parquet"
    write_shard(Location.parse(str(path)), feats, rows)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert {"tags.list.element", "labels.list.element.frame", "labels.list.element.azimuth"} < chunks.keys()
    for name, chunk in chunks.items():
        media = name in ("audio.bytes", "audio.path")
        assert (chunk.compression, chunk.is_stats_set) == (("UNCOMPRESSED", False) if media else ("ZSTD", True)), name
    assert chunks["labels.list.element.frame"].statistics.max == 2


def test_local_shards_load_with_datasets_duckdb_and_ray(tmp_path, ray_cluster):
    root = Location.parse(str(tmp_path))
    _write_dataset(root)
    ds = datasets.load_dataset(str(tmp_path), split="train")
    assert isinstance(ds.features["audio"], datasets.Audio) and ds.features["audio"].sampling_rate == RATE
    _check_exact_audio(ds.cast_column("audio", datasets.Audio(decode=False)))
    streamed = datasets.load_dataset(str(tmp_path), split="train", streaming=True)
    assert isinstance(streamed.features["audio"], datasets.Audio)
    _check_exact_audio(streamed.cast_column("audio", datasets.Audio(decode=False)))
    n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/data/train/*.parquet')").fetchall()[0][0]
    assert n == 6
    import ray.data

    rows = ray.data.read_parquet(str(tmp_path / "data")).take_all()
    assert len(rows) == 6
    _check_exact_audio(rows)


def test_s3_shards_load_with_datasets_and_ray(bucket, ray_cluster):
    root = Location.parse(f"s3://{bucket}/ds")
    _write_dataset(root)
    ds = datasets.load_dataset("parquet", data_files={"train": root.join("data/train").uri + "/*.parquet"},
                               split="train", storage_options=root.storage_options())
    assert isinstance(ds.features["audio"], datasets.Audio)
    _check_exact_audio(ds.cast_column("audio", datasets.Audio(decode=False)))
    import ray.data

    rows = ray.data.read_parquet(root.join("data").path, filesystem=root.filesystem).take_all()
    _check_exact_audio(rows)


def test_retried_shard_overwrites_its_own_file(tmp_path):
    root = Location.parse(str(tmp_path))
    target = root.join(shard_relpath("train", 0, 1))
    feats = clip_features()
    write_shard(target, feats, clip_rows(0, 2))
    with pytest.raises(RuntimeError):
        with ShardWriter(target, feats) as w:
            w.write(list(clip_rows(5, 1)))
            raise RuntimeError("worker died")
    write_shard(target, feats, clip_rows(0, 2))
    assert [p.name for p in (tmp_path / "data/train").iterdir()] == ["train-00000-of-00001.parquet"]
    assert pq.read_table(target.uri).num_rows == 2


def test_large_types_are_refused():
    feats = datasets.Features({"x": datasets.Value("large_string")})
    with pytest.raises(ValueError, match="large"):
        arrow_schema(feats)


def test_plan_num_shards_rounds_to_worker_multiple():
    assert plan_num_shards(1, 100) == 1
    assert plan_num_shards(1_001, 100) == 11
    assert plan_num_shards(1_001, 100, multiple_of=4) == 12


def test_histograms_are_kept_in_the_footer_and_summed(tmp_path):
    from catalog.shards import ShardStats

    root = Location.parse(str(tmp_path))
    feats = clip_features()
    edges = [0.0, 0.15, 0.3]
    for k in range(2):
        write_shard(root.join(shard_relpath("train", k, 2)), feats, clip_rows(k, 1), histograms={"duration": edges})
    total = ShardStats()
    for k in range(2):
        total = total.add(read_shard_stats(root.join(shard_relpath("train", k, 2)))[0])
    assert total.to_dict()["histograms"] == {"duration": {"[0.15, 0.3)": 2}}


def test_a_histogram_counts_values_outside_its_edges_and_its_bins_read_in_order():
    """RT60s above the last edge were dropped: a 160-row RIR set showed 136 in its histogram."""
    from catalog.shards import bins_in_order, histogram

    counts = histogram([-0.5, 0.1, 0.2, 2.2, 2.41, 2.85, float("nan")], [0.0, 0.2, 2.2])
    assert counts == {"(-inf, 0)": 1, "[0, 0.2)": 1, "[0.2, 2.2)": 2, "(2.2, inf)": 2}
    stored = {"[250, 500)": 1, "(4000, inf)": 3, "[1000, 2000)": 2, "(-inf, 0)": 5, "[50, 100)": 4}  # text order
    assert [b for b, _ in bins_in_order(stored)] == ["(-inf, 0)", "[50, 100)", "[250, 500)", "[1000, 2000)",
                                                     "(4000, inf)"]
