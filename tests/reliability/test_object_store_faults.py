"""S3 that throttles, fails and drops connections: a real job retries through it and loses nothing.

Every S3 request of the test session goes through the fault-injecting proxy in front of moto
(tests/conftest.py), the Ray workers' included, since they were started pointing at it; each
test here switches the proxy's fault schedule and clears it after. The session allows
AWS_MAX_ATTEMPTS=5 per request (roomtone's default is 10), so a permanent failure ends fast.
"""

import hashlib
import http.client
import os
from urllib.parse import urlsplit

import pytest

from catalog import Catalog, CatalogConfig, Location, RoomtoneError
from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events
from tests.reliability.s3_proxy import KINDS, Fault

SMALL = dict(per_class=4, kinds=["harmonic_tone", "siren", "footsteps"], duration=(0.4, 0.8),
             max_shard_bytes=100_000)


@pytest.fixture
def proxy(s3_proxy):
    s3_proxy.set_faults()
    yield s3_proxy
    s3_proxy.set_faults()


def _s3_catalog(bucket: str, prefix: str, tmp_path) -> Catalog:
    return Catalog(CatalogConfig(root=f"s3://{bucket}/{prefix}", uri=f"sqlite:///{tmp_path}/{prefix}.db"))


def _content(catalog: Catalog, ref: str) -> dict[str, str]:
    """Each row's id and a hash of its audio bytes; a duplicated id fails here."""
    rows = catalog.arrow_dataset(ref).to_table(columns=["id", "audio"]).to_pylist()
    content = {r["id"]: hashlib.sha256(r["audio"]["bytes"]).hexdigest() for r in rows}
    assert len(content) == len(rows), "duplicate ids"
    return content


def test_proxy_forwards_bodies_byte_for_byte(proxy, bucket, tmp_path):
    """pyarrow's and boto3's multipart uploads and a raw chunked PUT read back identical."""
    data = os.urandom(12_000_000)  # above both SDKs' multipart thresholds
    arrow = Location.parse(f"s3://{bucket}/arrow/big")
    (tmp_path / "big").write_bytes(data)
    arrow.upload_from(str(tmp_path / "big"))
    assert arrow.read_bytes() == data
    client = arrow.s3_client()
    (tmp_path / "big").write_bytes(data)
    client.upload_file(str(tmp_path / "big"), bucket, "boto/big")
    assert client.get_object(Bucket=bucket, Key="boto/big")["Body"].read() == data
    url = urlsplit(proxy.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("PUT", f"/{bucket}/raw/chunked", body=iter([data[:1000], data[1000:5000], data[5000:70_000]]),
                 encode_chunked=True)
    assert conn.getresponse().status == 200
    conn.close()
    assert client.get_object(Bucket=bucket, Key="raw/chunked")["Body"].read() == data[:70_000]
    counts = proxy.counts()
    assert counts["requests"]["POST"] >= 4 and sum(counts["faults"].values()) == 0  # multipart: create + complete


def test_transient_faults_are_retried_and_lose_nothing(proxy, bucket, tmp_path, ray_cluster):
    """Tally (observed over 4 runs, ~95-100 requests each): 13-16 SlowDown, 3-7 InternalError,
    5-7 dropped connections, 2-3 responses cut mid-body, hitting shard uploads, footer reads,
    listings and the Iceberg publish; 1 of 1 run survived, 0 rows lost, 0 duplicates, and all
    12 rows' audio bytes identical to a fault-free run's."""
    cfg = SyntheticEventsConfig(**SMALL)
    clean = _s3_catalog(bucket, "clean", tmp_path)
    expected = _content(clean, run_synthetic_events(cfg, clean, show_progress=False).ref)

    proxy.set_faults(Fault("truncate", every=4, times=None, method="GET"),  # any download, cut mid-body
                     Fault("slowdown", every=3, times=None, path=r"/faulty/.*/data/"),  # shard uploads, footers
                     Fault("internal", every=2, times=None, path=rf"^/{bucket}$"),  # listings, bucket checks
                     Fault("reset", every=3, times=None, path=r"/faulty/iceberg/"),  # the catalog publish
                     Fault("slowdown", every=7, times=None), Fault("internal", every=11, times=None))
    faulty = _s3_catalog(bucket, "faulty", tmp_path)
    snap = run_synthetic_events(cfg, faulty, show_progress=False)
    counts = proxy.counts()
    proxy.set_faults()

    got = _content(faulty, snap.ref)
    assert snap.stats["rows"] == len(got) == len(expected) == 12 and snap.stats["shards"] > 1
    assert got == expected
    assert len(faulty.history(cfg.name)) == 1
    assert all(counts["faults"][kind] > 0 for kind in KINDS), counts["faults"]
    hit = {(kind, path) for kind, _, path in counts["injected"]}
    assert any(k == "slowdown" and "/data/" in p for k, p in hit)
    assert ("internal", f"/{bucket}") in hit
    assert any(k == "reset" and "/iceberg/" in p for k, p in hit)
    print("tally:", counts["faults"], "of", counts["total"], "requests")  # noqa: T201 - the -s record


def test_permanent_failure_ends_the_run_and_publishes_nothing(proxy, bucket, tmp_path, ray_cluster):
    """Every shard upload throttled for good. Tally (observed, 4 runs): 10 SlowDown, 5 on each of
    the 2 shards that started (the first to use up its attempts fails the run; the driver cancels
    the others and waits for them to stop), then a RoomtoneError naming SLOW_DOWN and
    AWS_MAX_ATTEMPTS; 0 snapshots, and 0 shard files even once S3 works again."""
    cfg = SyntheticEventsConfig(**SMALL)
    catalog = _s3_catalog(bucket, "down", tmp_path)
    proxy.set_faults(Fault("slowdown", times=None, method="PUT", path=rf"^/{bucket}/down/.*/data/"))
    with pytest.raises(RoomtoneError) as failure:
        run_synthetic_events(cfg, catalog, show_progress=False)
    counts = proxy.counts()
    proxy.set_faults()
    proxy.wait_quiet()  # the run waited for its cancelled shards: none may land now that S3 works again

    message = str(failure.value)
    assert "S3 kept failing to write" in message and "SLOW_DOWN" in message and "AWS_MAX_ATTEMPTS" in message
    shards = len({p for _, _, p in counts["injected"]})
    assert 0 < counts["faults"]["slowdown"] <= shards * 5  # every upload gave up after its attempts
    assert not catalog.exists(cfg.name)
    assert not list(Location.parse(f"s3://{bucket}/down/datasets").list_files(".parquet"))
    print("tally:", counts["faults"], "of", counts["total"], "requests;", shards, "shards tried")  # noqa: T201
