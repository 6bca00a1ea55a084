import threading

import pytest

from catalog import Location, NotFoundError, StorageError
from catalog.storage import map_files


def test_map_files_runs_reads_at_once_keeps_order_and_raises_the_first_error():
    """Footer reads are storage round trips: publishing thousands of shards read them one by one.
    Four calls that each wait for the other three at a barrier finish only if they run at once."""
    meet = threading.Barrier(4, timeout=30)

    def read(i: int) -> int:
        meet.wait()
        return i * i

    assert map_files(read, [3, 1, 2, 0]) == [9, 1, 4, 0]

    def fail(i: int) -> int:
        if i == 2:
            raise StorageError("shard 2 is gone", "re-run the job")
        return i

    with pytest.raises(StorageError, match="shard 2"):
        map_files(fail, list(range(40)))


def test_parse_local_and_s3(tmp_path):
    assert Location.parse(str(tmp_path)).uri == str(tmp_path)
    assert Location.parse("s3://bucket/a/b/").uri == "s3://bucket/a/b"
    assert Location.parse("s3://bucket/a").join("x", "y.parquet").path == "bucket/a/x/y.parquet"
    assert Location.parse("file://" + str(tmp_path)).uri == str(tmp_path)


@pytest.mark.parametrize("bad", ["", "gs://bucket/x", "s3://b"])
def test_parse_rejects_unsupported(bad):
    with pytest.raises(StorageError):
        Location.parse(bad)


def test_join_refuses_escapes(tmp_path):
    with pytest.raises(StorageError, match="escapes"):
        Location.parse(str(tmp_path)).join("../etc")


def test_local_roundtrip_and_listing_skips_temp_files(tmp_path):
    loc = Location.parse(str(tmp_path)).join("d", "f.bin")
    loc.write_bytes(b"abc")
    (tmp_path / "d" / ".f.bin.tmp-1").write_bytes(b"partial")
    assert loc.read_bytes() == b"abc" and loc.size() == 3
    assert [f.name for f in Location.parse(str(tmp_path)).list_files()] == ["f.bin"]


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        Location.parse(str(tmp_path / "nope")).read_bytes()


def test_s3_roundtrip(bucket):
    loc = Location.parse(f"s3://{bucket}/x/y.bin")
    loc.write_bytes(b"hello")
    assert loc.read_bytes() == b"hello" and loc.exists()
    assert [f.uri for f in Location.parse(f"s3://{bucket}").list_files()] == [loc.uri]
    Location.parse(f"s3://{bucket}/out").check_writable()


def test_s3_filesystem_pickles_with_its_retry_strategy(bucket):
    """Ray pickles the filesystem into read tasks; pyarrow's own pickling would drop the retries."""
    import pickle

    from catalog.storage import S3FileSystem, s3_max_attempts

    loc = Location.parse(f"s3://{bucket}/p/q.bin")
    loc.write_bytes(b"pickled")
    fs = pickle.loads(pickle.dumps(loc.filesystem))
    assert isinstance(fs, S3FileSystem) and fs._args[2] == s3_max_attempts()
    with fs.open_input_stream(loc.path) as f:
        assert f.read() == b"pickled"


def test_s3_missing_bucket_names_the_bucket(s3_server):
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        Location.parse("s3://no-such-bucket/x").check_writable()


def test_s3_without_credentials_fails_before_work(bucket, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(StorageError, match="no AWS credentials"):
        Location.parse(f"s3://{bucket}/x").check_writable()


def test_s3_unreachable_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StorageError, match="S3"):
        Location.parse("s3://some-bucket/x").write_bytes(b"x")


def test_home_of_an_unknown_user_is_a_clear_error():
    """pathlib raises a bare RuntimeError for `~nosuchuser`; the fuzz test met it through a stage's folder."""
    with pytest.raises(StorageError, match="home of an unknown user"):
        Location.parse("~roomtone-no-such-user/x")


def test_credentials_are_redacted_and_a_tokenizer_is_not():
    """A BEATs run's `tokenizer` (the checkpoint it learns labels from) and an LM's `max_tokens` are
    lineage and settings, not secrets; every credential-looking key still goes."""
    from catalog.redact import redact

    kept = {"tokenizer": "runs/tok1", "max_tokens": 64, "tokens_per_clip": 8, "teacher": "runs/it1"}
    assert redact(kept) == kept
    secret = {"auth_token": "a", "HF_TOKEN": "b", "token": "c", "api_key": "d", "db_password": "e",
              "nested": {"accessToken": "f"}}
    assert redact(secret) == {**{k: "<redacted>" for k in secret if k != "nested"},
                              "nested": {"accessToken": "<redacted>"}}
    assert redact("postgresql://u:pw@host/db") == "postgresql://u:<redacted>@host/db"
