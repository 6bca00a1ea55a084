"""The dataset catalog: every dataset version with its files, statistics and lineage.

Backed by Apache Iceberg through pyiceberg's SQL catalog (SQLite file by default,
Postgres on a cluster) or an Iceberg REST catalog. One Iceberg table per dataset; each
publish registers a run's finished shards byte-for-byte as exactly one snapshot, whose
summary properties carry the run's config, code version, inputs and statistics.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyiceberg.catalog import Catalog as IcebergCatalog
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError, \
    TableAlreadyExistsError, ValidationException
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.table import Table, TableProperties
from sqlalchemy.exc import SQLAlchemyError

from catalog.card import per_split, render_card
from catalog.config import CatalogConfig
from catalog.diff import VersionDiff, diff_versions
from catalog.errors import NotFoundError, RoomtoneError, SchemaMismatchError
from catalog.names import DatasetRef, validate_name
from catalog.progress import progress_bar
from catalog.redact import redact
from catalog.retention import DropPlan, ExpirePlan, drop, expire, plan_expiry
from catalog.runs import DatasetRun, config_hash
from catalog.shards import SHARD_NAME, ShardStats, arrow_schema, check_same_schema, media_leaves
from catalog.storage import Location, S3RetryStrategy, map_files, s3_endpoint, s3_region
from catalog.version import code_version

if TYPE_CHECKING:
    import datasets

P = "roomtone."  # prefix of every snapshot property roomtone writes


@dataclass
class Snapshot:
    """One published dataset version, as stored in its Iceberg snapshot summary."""

    name: str
    snapshot_id: int
    version: int
    timestamp_ms: int
    operation: str
    properties: dict[str, str] = field(repr=False)

    def _json(self, key: str, default: Any) -> Any:
        return json.loads(self.properties[P + key]) if P + key in self.properties else default

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.snapshot_id}"

    @property
    def version_ref(self) -> str:
        """``name@vN``: the reference people read (and may pass back); `ref` pins the snapshot id."""
        return f"{self.name}@v{self.version}"

    @property
    def run_id(self) -> str | None:
        return self.properties.get(P + "run-id")

    @property
    def config(self) -> dict:
        return self._json("config", {})

    @property
    def config_hash(self) -> str | None:
        return self.properties.get(P + "config-hash")

    @property
    def code_version(self) -> str | None:
        return self.properties.get(P + "code-version")

    @property
    def inputs(self) -> list[str]:
        return self._json("inputs", [])

    @property
    def stats(self) -> dict:
        return self._json("stats", {})

    @property
    def features(self) -> datasets.Features:
        import datasets

        return datasets.Features.from_dict(self._json("features", {}))

    @property
    def info(self) -> dict:
        """Facts the job derived and recorded for consumers (for example a class map)."""
        return self._json("info", {})

    @property
    def location(self) -> str | None:
        return self.properties.get(P + "location")

    def to_dict(self) -> dict:
        return {"name": self.name, "snapshot_id": self.snapshot_id, "version": self.version,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.timestamp_ms / 1000)),
                "operation": self.operation, "run_id": self.run_id, "config_hash": self.config_hash,
                "code_version": self.code_version, "inputs": self.inputs,
                "stats": self.stats, "location": self.location, "config": self.config, "info": self.info,
                "ray_job_id": self.properties.get(P + "ray-job-id"),
                "mlflow_run_id": self.properties.get(P + "mlflow-run-id")}


@dataclass
class DataFileInfo:
    uri: str
    split: str
    rows: int
    bytes: int


WHOLE_FILES_AT_ONCE = 8  # a shard is read a row group (about 100 MB) at a time: 8 hold under 1 GB


class Catalog:
    """Python entry point: ``Catalog()`` uses the defaults (or the ROOMTONE_* environment)."""

    def __init__(self, config: CatalogConfig | None = None):
        self.config = config or CatalogConfig.from_env()

    @cached_property
    def iceberg(self) -> IcebergCatalog:
        props: dict[str, str] = {"warehouse": self.config.warehouse_uri, "s3.region": s3_region(),
                                 "s3.retry-strategy-impl": f"{S3RetryStrategy.__module__}.{S3RetryStrategy.__name__}"}
        if s3_endpoint():
            props["s3.endpoint"] = s3_endpoint()
        uri = self.config.database_uri
        try:
            if uri.startswith("http"):
                cat = load_catalog("roomtone", type="rest", uri=uri, **props)
            else:
                if uri.startswith("sqlite:///") and "?" not in uri:
                    uri += "?timeout=60"  # wait for a concurrent writer instead of failing at once
                cat = load_catalog("roomtone", type="sql", uri=uri, **props)
                if uri.startswith("sqlite"):
                    with cat.engine.connect() as conn:  # readers beside a writer need WAL
                        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            try:
                cat.create_namespace_if_not_exists(self.config.namespace)
            except NamespaceAlreadyExistsError:
                pass
        except (SQLAlchemyError, OSError) as exc:  # OSError: a REST catalog's connection errors too
            cause = getattr(exc, "orig", None) or exc
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise RoomtoneError(f"cannot open the catalog database {redact(self.config.database_uri)}: "
                                f"{redact(detail)}",
                                "check --catalog-uri / ROOMTONE_CATALOG_URI (the server is running and reachable, "
                                "or the SQLite file's folder exists and can be written; by default it lies "
                                "under --root)") from None
        return cat

    def _identifier(self, name: str) -> tuple[str, str]:
        return (self.config.namespace, validate_name(name))

    def _table(self, name: str) -> Table:
        try:
            return self.iceberg.load_table(self._identifier(name))
        except NoSuchTableError:
            known = ", ".join(self.names()) or "none yet"
            raise NotFoundError(f"dataset {name!r} is not in the catalog",
                                f"known datasets: {known}; see `roomtone catalog ls`") from None

    # -- reading --------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(ident[-1] for ident in self.iceberg.list_tables(self.config.namespace))

    def exists(self, name: str) -> bool:
        return validate_name(name) in self.names()

    def history(self, name: str) -> list[Snapshot]:
        return _history(name, self._table(name))

    def _resolve(self, ref: "str | DatasetRef") -> tuple[Table, Snapshot]:
        """The dataset's table (loaded once) and the snapshot ``ref`` names."""
        ref = DatasetRef.parse(ref)
        table = self._table(ref.name)
        history = _history(ref.name, table)
        if not history:
            raise NotFoundError(f"dataset {ref.name!r} has no published snapshot", "run a job that writes it")
        wanted = ref.snapshot or str(table.current_snapshot().snapshot_id)
        for snap in history:
            if wanted in (str(snap.snapshot_id), f"v{snap.version}"):
                return table, snap
        ids = ", ".join(f"v{s.version}={s.snapshot_id}" for s in history[-5:])
        raise NotFoundError(f"{ref} does not exist", f"recent snapshots of {ref.name}: {ids}")

    def show(self, ref: "str | DatasetRef") -> Snapshot:
        return self._resolve(ref)[1]

    def list(self) -> list[Snapshot]:
        """The current snapshot of every dataset that has one."""
        out = []
        for name in self.names():
            table = self._table(name)
            if table.current_snapshot() is not None:
                out.append(_current(name, table))
        return out

    def files(self, ref: "str | DatasetRef") -> list[DataFileInfo]:
        return _files(*self._resolve(ref))

    def verify(self, ref: "str | DatasetRef", *, show_progress: bool = False) -> list[tuple[DataFileInfo, str | None]]:
        """Read every file of a version back, checking each page's CRC (written with every shard) and the
        row count the catalog recorded: (file, None) when it is intact, else (file, what is wrong).
        Files are read WHOLE_FILES_AT_ONCE at a time: one at a time, a dataset of hundreds of
        500 MB shards on S3 took as long as one stream's bandwidth allows."""
        import pyarrow.parquet as pq

        files = self.files(ref)
        with progress_bar("files", show=show_progress) as progress:
            bar = progress.add_task(f"verifying {ref}", total=len(files), note="")

            def check(info: DataFileInfo) -> tuple[DataFileInfo, str | None]:
                loc = Location.parse(info.uri)
                try:
                    with loc.filesystem.open_input_file(loc.path) as f:
                        rows = sum(batch.num_rows for batch in
                                   pq.ParquetFile(f, page_checksum_verification=True).iter_batches())
                    problem = None if rows == info.rows else f"{rows} rows, the catalog recorded {info.rows}"
                except (OSError, ValueError) as exc:  # a failed CRC, a truncated or missing file
                    problem = f"{type(exc).__name__}: {exc}"
                progress.update(bar, advance=1)
                return info, problem

            return map_files(check, files, WHOLE_FILES_AT_ONCE)

    def lineage(self, ref: "str | DatasetRef") -> dict:
        """The snapshot and, recursively, the snapshots it was made from, back to the roots."""
        snap = self.show(ref)
        return {"ref": snap.ref, "version": snap.version, "rows": snap.stats.get("rows"),
                "inputs": [self.lineage(parent) for parent in snap.inputs]}

    def card(self, ref: "str | DatasetRef") -> str:
        table, snap = self._resolve(ref)
        files = _files(table, snap)
        base = Location.parse(snap.location) if snap.location else None
        data_files = None
        if base is None or any(Location.parse(f.uri).relative_to(base).startswith("..") for f in files):
            data_files = {}
            for f in files:
                data_files.setdefault(f.split, []).append(f.uri)
        split_rows: dict[str, int] = {}
        split_bytes: dict[str, int] = {}
        for f in files:
            split_rows[f.split] = split_rows.get(f.split, 0) + f.rows
            split_bytes[f.split] = split_bytes.get(f.split, 0) + f.bytes
        return render_card(snap.name, snap.features, split_rows, split_bytes, snapshot=str(snap.snapshot_id),
                           stats=snap.stats, lineage={"inputs": snap.inputs, "config_hash": snap.config_hash,
                                                      "run_id": snap.run_id}, data_files=data_files)

    def diff(self, old: "str | DatasetRef", new: "str | DatasetRef | None" = None) -> VersionDiff:
        """What changed from `old` to `new` (`catalog.diff`); with `old` alone, from the version
        before it (the one before that still exists, after an expire) to it."""
        table, snap = self._resolve(new if new is not None else old)
        if new is not None:
            before_table, before = self._resolve(old)
        else:
            history = _history(snap.name, table)
            at = [s.snapshot_id for s in history].index(snap.snapshot_id)
            if at == 0:
                raise RoomtoneError(f"{snap.version_ref} is the first version of {snap.name}: nothing came before it",
                                    f"name two versions to compare, e.g. {snap.name}@v1 {snap.name}@v2")
            before_table, before = table, history[at - 1]
        return diff_versions(before, snap, _files(before_table, before), _files(table, snap))

    # -- writing --------------------------------------------------------------------------

    def expire(self, name: str, *, keep_last: int | None = None, older_than_days: float | None = None,
               keep: "list[str]" = (), dry_run: bool = False) -> ExpirePlan:
        """Remove old versions of `name` and the files only they used (`catalog.retention` has the
        rules: the current version, the newest `keep_last`, those younger than `older_than_days`,
        the `keep` refs and every version another kept dataset was made from all stay)."""
        if keep_last is not None and keep_last < 1:
            raise RoomtoneError(f"keep_last={keep_last} must be at least 1", "the current version always stays")
        if older_than_days is not None and older_than_days < 0:
            raise RoomtoneError(f"older_than_days={older_than_days} must be >= 0", "give an age in days")
        return expire(self, plan_expiry(self, validate_name(name), keep_last, older_than_days, list(keep)),
                      dry_run=dry_run)


    def drop(self, name: str, *, force: bool = False, dry_run: bool = False) -> DropPlan:
        """Remove dataset `name` whole: every version, its shards and its Iceberg metadata
        (`catalog.retention`). Refused while another dataset's version was made from it, unless `force`."""
        return drop(self, name, force=force, dry_run=dry_run)

    def create_run(self, name: str, config: Any, features: datasets.Features, *, inputs: list[str] = (),
                   mode: str = "overwrite", info: dict | None = None, ray_job_id: str | None = None,
                   mlflow_run_id: str | None = None, files: str | None = None) -> DatasetRun:
        """Check everything a publish will need *before* the job does any work, and return
        the run whose folder the job writes shards into. ``files``: a digest of inputs the catalog does
        not hold (see `files_digest`), so that changed files make a new run instead of reusing the last."""
        validate_name(name)
        if mode not in ("overwrite", "append"):
            raise RoomtoneError(f"mode {mode!r} is invalid", "use 'overwrite' (a new version) or 'append'")
        cfg = redact(config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config))
        pinned = [self.show(ref).ref for ref in inputs]  # fails early on an unknown input
        arrow_schema(features)  # fails early on types a consumer cannot read
        if self.exists(name):
            self._check_features(name, features)
        key = config_hash(cfg, pinned, files)
        location = self.config.datasets_location().join(name, key[:16])
        location.makedirs()
        location.check_writable()
        return DatasetRun(name, location, features, cfg, key, pinned, mode=mode, info=redact(dict(info or {})),
                          ray_job_id=ray_job_id, mlflow_run_id=mlflow_run_id)

    def _check_features(self, name: str, features: datasets.Features) -> None:
        import datasets

        stored = self._table(name).properties.get(P + "features")
        existing = datasets.Features.from_dict(json.loads(stored)) if stored else None
        if existing is not None and existing != features:
            check_same_schema(existing.arrow_schema, features.arrow_schema, f"new data for {name!r}")
            raise SchemaMismatchError(f"new data for {name!r} has different features than its existing snapshots",
                                      "publish under a new dataset name, or keep the features unchanged")

    def publish(self, run: DatasetRun, expected_shards: dict[str, int] | None = None) -> Snapshot:
        """Register the run's finished shards as one snapshot; retried on commit conflicts.

        ``expected_shards`` (split -> shard count) guards against publishing a partial run;
        by default the counts come from the ``-of-MMMMM`` part of the shard names.
        """
        run.remove_partial_files()  # a killed attempt's, so that the published folder holds its shards only
        shards = run.shard_stats()
        if not shards:
            raise RoomtoneError(f"run {run.run_id} of {run.name!r} wrote no shards under {run.location.uri}",
                                "the job produced nothing to publish")
        self._check_complete(run, shards, expected_shards)
        expected = arrow_schema(run.features)
        total = ShardStats()
        for rel, (stats, schema) in sorted(shards.items()):
            check_same_schema(expected, schema, f"shard {rel}")
            total = total.add(stats)
        split_rows = per_split({rel: s.rows for rel, (s, _) in shards.items()})
        split_bytes = per_split({rel: s.bytes for rel, (s, _) in shards.items()})
        stats = {**total.to_dict(), "splits": split_rows, "shards": len(shards)}
        run.location.join("README.md").write_bytes(render_card(
            run.name, run.features, split_rows, split_bytes, stats=stats,
            lineage={"inputs": run.inputs, "config_hash": run.config_hash, "run_id": run.run_id}).encode())
        props = {P + "run-id": run.run_id, P + "config": json.dumps(run.config, sort_keys=True),
                 P + "config-hash": run.config_hash, P + "code-version": code_version(),
                 P + "inputs": json.dumps(run.inputs),
                 P + "features": json.dumps(run.features.to_dict(), sort_keys=True),
                 P + "location": run.location.uri, P + "info": json.dumps(run.info, sort_keys=True)}
        if run.ray_job_id:
            props[P + "ray-job-id"] = run.ray_job_id
        if run.mlflow_run_id:
            props[P + "mlflow-run-id"] = run.mlflow_run_id
        paths = [loc.uri for loc in (run.location.join(rel) for rel in sorted(shards))]
        return self._commit(run, paths, props, stats)

    @staticmethod
    def _check_complete(run: DatasetRun, shards: dict, expected: dict[str, int] | None) -> None:
        found: dict[str, set[int]] = {}
        counts: dict[str, set[int]] = {}
        for rel in shards:
            m = SHARD_NAME.match(rel)
            found.setdefault(m["split"], set()).add(int(m["index"]))
            counts.setdefault(m["split"], set()).add(int(m["count"]))
        for split in sorted(set(found) | set(expected or {})):
            want = (expected or {}).get(split) or max(counts.get(split, {0}))
            have = found.get(split, set())
            if len(counts.get(split, set())) > 1 or have != set(range(want)):
                raise RoomtoneError(f"run of {run.name!r} is incomplete: split {split!r} has {len(have)} of "
                                    f"{want} shards under {run.location.uri}",
                                    "re-run the job with the same config to finish the missing shards")

    def _commit(self, run: DatasetRun, paths: list[str], props: dict[str, str], stats: dict) -> Snapshot:
        """One snapshot holding `paths`; `stats` are the run's, and an appended version's add the
        version before it (read at each attempt, so a concurrent publish is counted)."""
        ident = self._identifier(run.name)
        for attempt in range(30):
            try:
                table = self._load_or_create(run)
                current = table.current_snapshot()
                existing = {t.file.file_path: t.file for t in table.scan().plan_files()} if current else {}
                held = set(paths) <= existing.keys()  # every file of the run is in the table already
                same_run = held and current.summary.additional_properties.get(P + "config-hash") == run.config_hash
                if held and (run.mode == "append" or (len(paths) == len(existing) and same_run)):
                    return _current(run.name, table)  # already published: once only
                version_stats = stats if run.mode == "overwrite" or not current else _appended(
                    json.loads(current.summary.additional_properties.get(P + "stats", "{}")), stats)
                with table.transaction() as tx:
                    if tx.table_metadata.name_mapping() is None:
                        tx.set_properties(**{TableProperties.DEFAULT_NAME_MAPPING:
                                             tx.table_metadata.schema().name_mapping.model_dump_json()})
                    if missing := {k: v for k, v in _metrics_modes(run).items() if k not in table.properties}:
                        tx.set_properties(**missing)  # tables published before this property existed
                    new = map_files(partial(parquet_file_to_data_file, table.io, tx.table_metadata),
                                    [p for p in paths if p not in existing])
                    with tx.update_snapshot(snapshot_properties={
                            **props, P + "stats": json.dumps(version_stats, sort_keys=True)}).overwrite() as producer:
                        if run.mode == "overwrite":
                            for path, data_file in existing.items():
                                if path not in paths:
                                    producer.delete_data_file(data_file)
                        for data_file in new:
                            producer.append_data_file(data_file)
                return _current(run.name, self.iceberg.load_table(ident))
            except (CommitFailedException, TableAlreadyExistsError, ValidationException) as exc:
                last = exc  # another writer committed first: reload and redo on top of it
            except Exception as exc:  # SQLite under concurrent writers: "database is locked"
                if "locked" not in str(exc).lower():
                    raise
                last = exc
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        raise RoomtoneError(f"could not publish {run.name!r} after 30 attempts: {last}",
                            "another writer keeps committing; retry the publish later")

    def _load_or_create(self, run: DatasetRun) -> Table:
        ident = self._identifier(run.name)
        try:
            return self.iceberg.load_table(ident)
        except NoSuchTableError:
            return self.iceberg.create_table(
                ident, schema=arrow_schema(run.features),
                properties={P + "features": json.dumps(run.features.to_dict(), sort_keys=True),
                            **_metrics_modes(run)})

    # -- loaders and SQL ------------------------------------------------------------------

    def to_hf(self, ref: "str | DatasetRef", split: str | None = None, streaming: bool = False):
        """The snapshot as a ``datasets.DatasetDict`` (or one split), read from its Parquet files."""
        import datasets

        table, snap = self._resolve(ref)
        files: dict[str, list[str]] = {}
        for f in _files(table, snap):
            files.setdefault(f.split, []).append(f.uri)
        if split is not None and split not in files:
            raise NotFoundError(f"{snap.ref} has no split {split!r}", f"splits: {', '.join(sorted(files))}")
        options = Location.parse(next(iter(files.values()))[0]).storage_options()
        ds = datasets.load_dataset("parquet", data_files=files, features=snap.features, streaming=streaming,
                                   storage_options=options or None)
        return ds[split] if split else ds

    def to_ray(self, ref: "str | DatasetRef", split: str | None = None, **read_args):
        """The snapshot as a lazy ``ray.data.Dataset`` (connects to or starts Ray)."""
        import ray.data

        from catalog.cluster import connect

        connect()
        _, locs = self._locations(ref, split)
        return ray.data.read_parquet([l.path for l in locs], filesystem=locs[0].filesystem, **read_args)

    def splits(self, ref: "str | DatasetRef") -> list[str]:
        return sorted({f.split for f in self.files(ref)})

    def arrow_dataset(self, ref: "str | DatasetRef", split: str | None = None):
        """A ``pyarrow.dataset.Dataset`` over the snapshot's files, or one split's (lazy, column-projecting)."""
        import pyarrow.dataset as pads

        snap, locs = self._locations(ref, split)
        return pads.dataset([l.path for l in locs], filesystem=locs[0].filesystem, format="parquet",
                            schema=arrow_schema(snap.features))

    def _locations(self, ref: "str | DatasetRef", split: str | None) -> tuple[Snapshot, list[Location]]:
        table, snap = self._resolve(ref)
        files = _files(table, snap)
        locs = [Location.parse(f.uri) for f in files if split is None or f.split == split]
        if not locs:
            raise NotFoundError(f"{ref} has no files{f' in split {split!r}' if split else ''}",
                                f"splits: {', '.join(sorted({f.split for f in files})) or 'none'}")
        return snap, locs

    def snapshots_table(self) -> pa.Table:
        """Every snapshot of every dataset as rows, for SQL over the catalog itself."""
        rows = []
        for name in self.names():
            table = self._table(name)
            current = table.current_snapshot()
            for s in _history(name, table):
                rows.append({"name": name, "snapshot_id": s.snapshot_id, "version": s.version,
                             "created": s.to_dict()["created"], "run_id": s.run_id, "config_hash": s.config_hash,
                             "rows": s.stats.get("rows"), "audio_hours": s.stats.get("audio_hours"),
                             "bytes": s.stats.get("bytes"), "inputs": ",".join(s.inputs),
                             "current": current is not None and s.snapshot_id == current.snapshot_id})
        return pa.Table.from_pylist(rows) if rows else pa.table({"name": pa.array([], pa.string())})

    def query(self, sql: str) -> pa.Table:
        from catalog.query import run_query

        return run_query(self, sql)


def _history(name: str, table: Table) -> list[Snapshot]:
    """Versions oldest first. vN is the snapshot's sequence number (each publish commits one
    snapshot, numbered 1, 2, ...), not its place in the list: expiring old versions leaves the
    others' numbers, and so every `name@vN` written down, as they were."""
    snaps = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    return [Snapshot(name, s.snapshot_id, s.sequence_number, s.timestamp_ms, s.summary.operation.value,
                     dict(s.summary.additional_properties)) for s in snaps]


def _appended(previous: dict, added: dict) -> dict:
    """Statistics of an appended version: those of the version before it plus the run's shards."""
    total = ShardStats.from_dict(previous).add(ShardStats.from_dict(added)).to_dict()
    splits = dict(previous.get("splits", {}))
    for split, rows in added.get("splits", {}).items():
        splits[split] = splits.get(split, 0) + rows
    return {**total, "splits": splits, "shards": previous.get("shards", 0) + added.get("shards", 0)}


def _metrics_modes(run: DatasetRun) -> dict[str, str]:
    """No Iceberg column metrics for media leaves: their shards carry no min/max statistics on
    purpose (`catalog.shards`), which pyiceberg would otherwise warn about for every column of
    every file it registers (hundreds of lines in the demo's output)."""
    return {f"{TableProperties.METRICS_MODE_COLUMN_CONF_PREFIX}.{leaf}": "none" for leaf in media_leaves(run.features)}


def _current(name: str, table: Table) -> Snapshot:
    current = table.current_snapshot().snapshot_id
    return next(s for s in _history(name, table) if s.snapshot_id == current)


def _files(table: Table, snap: Snapshot) -> list[DataFileInfo]:
    out = [DataFileInfo(t.file.file_path, _split_of_uri(t.file.file_path), t.file.record_count,
                        t.file.file_size_in_bytes) for t in table.scan(snapshot_id=snap.snapshot_id).plan_files()]
    return sorted(out, key=lambda f: f.uri)


def _split_of_uri(uri: str) -> str:
    parts = uri.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else "train"

