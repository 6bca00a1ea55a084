"""Removing data: expiring old versions of a dataset (a nightly pipeline adds a version a
night, and each keeps its shards), and dropping a whole dataset.

A version goes when it is neither the current one, nor among the newest ``keep_last``, nor
younger than ``older_than_days``, nor pinned by ``keep``, nor an input of a version the
catalog keeps: any other dataset's, or a kept version of its own (so every kept version's
lineage still resolves). Its files go when no remaining version references them.

Order, so that a killed expire shows no version without its files and loses nothing: one
metadata commit removes the snapshots and records their run folders as pending; the
unreferenced files in those folders are deleted; a second commit clears the record. A
re-run finishes what a killed one left pending.

A drop first leaves a marker in the dataset's folder naming its Iceberg metadata, then drops
the table (from then on nothing of it is visible), then deletes the metadata and the folder.
A re-run of a killed drop finds the marker and finishes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table.update.snapshot import ExpireSnapshots

from catalog.errors import NotFoundError, RoomtoneError
from catalog.names import DatasetRef, validate_name
from catalog.storage import Location, map_files

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from catalog.catalog import Catalog, Snapshot

PENDING = "roomtone.expiring"  # table property: run folders whose unreferenced files are still to delete
DROPPING = "DROPPING.json"  # marker in a dataset's folder: a drop began; it names the table's metadata folder


@dataclass
class ExpirePlan:
    """What an expire removes (or, dry, would remove) and why the rest stays."""

    name: str
    table: Table = field(repr=False, compare=False)  # loaded once; commits update it in place
    expired: list[Snapshot]
    kept: dict[str, str]  # version ref -> why it stays
    files: list[str] = field(default_factory=list)  # data and card files deleted (or to delete)
    bytes: int = 0
    done: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "expired": [s.version_ref for s in self.expired], "kept": self.kept,
                "files": len(self.files), "bytes": self.bytes, "done": self.done}


def plan_expiry(catalog: Catalog, name: str, keep_last: int | None, older_than_days: float | None,
                keep: list[str]) -> ExpirePlan:
    """The versions of `name` that the rules let go, and the reason each other version stays."""
    if keep_last is None and older_than_days is None:
        raise RoomtoneError("expire needs a rule for what to keep",
                            "give --keep-last N (the newest N versions stay) and/or --older-than DAYS")
    from catalog.catalog import _history

    table, current = catalog._resolve(name)
    history = _history(name, table)
    pinned = {}
    for ref in keep:
        snap = catalog.show(ref)
        if snap.name != name:
            raise RoomtoneError(f"--keep {ref} is a version of another dataset", f"give versions of {name}")
        pinned[snap.snapshot_id] = ref
    used_by = {}  # snapshot id of this dataset -> a kept version made from it (elsewhere, or below, here)
    for parent, user in _made_from(catalog, name):
        used_by.setdefault(parent, user)
    cutoff = None if older_than_days is None else (time.time() - older_than_days * 86400) * 1000
    young = None if older_than_days is None else f"younger than {older_than_days:g} day{'s' * (older_than_days != 1)}"
    newest = {s.snapshot_id for s in history[-keep_last:]} if keep_last else set()
    why = {}
    for snap in reversed(history):  # newest first: a kept version made from an older one of its own keeps it too
        why[snap.snapshot_id] = (
            "current" if snap.snapshot_id == current.snapshot_id
            else f"among the newest {keep_last}" if snap.snapshot_id in newest
            else young if cutoff is not None and snap.timestamp_ms > cutoff
            else f"kept by --keep {pinned[snap.snapshot_id]}" if snap.snapshot_id in pinned
            else f"input of {used_by[snap.snapshot_id]}" if snap.snapshot_id in used_by
            else None)
        if why[snap.snapshot_id] is not None:
            for parent in map(DatasetRef.parse, snap.inputs):
                if parent.name == name:
                    used_by.setdefault(int(parent.snapshot), snap.version_ref)
    return ExpirePlan(name, table, [s for s in history if why[s.snapshot_id] is None],
                      {s.version_ref: why[s.snapshot_id] for s in history if why[s.snapshot_id] is not None})


def _made_from(catalog: Catalog, name: str) -> list[tuple[int, str]]:
    """(snapshot id of `name`, version of another dataset made from it) for every such input."""
    return [(int(parent.snapshot), snap.version_ref) for other in catalog.names() if other != name
            for snap in catalog.history(other)
            for parent in map(DatasetRef.parse, snap.inputs) if parent.name == name]  # pinned as name@<id>


def expire(catalog: Catalog, plan: ExpirePlan, *, dry_run: bool = False) -> ExpirePlan:
    """Carry out `plan`, after finishing any expire a kill left pending; with dry_run, only list
    the files it would delete."""
    from catalog.catalog import _history

    table = plan.table
    gone = {s.snapshot_id for s in plan.expired}
    folders = sorted({s.location for s in plan.expired if s.location})
    if dry_run:
        found = _unreferenced(table, [s for s in _history(plan.name, table) if s.snapshot_id not in gone], folders)
        doomed = [f for _, files in found.values() for f in files]
        plan.files, plan.bytes = [loc.uri for loc, _ in doomed], sum(n for _, n in doomed)
        return plan
    if gone:
        try:
            with table.transaction() as tx:
                pending = sorted(set(json.loads(table.properties.get(PENDING, "[]"))) | set(folders))
                tx.set_properties(**{PENDING: json.dumps(pending)})
                ExpireSnapshots(tx).by_ids(sorted(gone)).commit()
        except CommitFailedException:
            raise RoomtoneError(f"{plan.name!r} changed while expiring (another publish or expire committed)",
                                "run the expire again: it plans from the new state") from None
    deleted = finish_pending(table, plan.name)
    plan.files, plan.bytes, plan.done = [f for f, _ in deleted], sum(n for _, n in deleted), True
    return plan


def finish_pending(table: Table, name: str) -> list[tuple[str, int]]:
    """Delete the unreferenced files of the run folders an expire recorded, then clear the record:
    (uri, bytes) of each file deleted. A folder no remaining version reads goes whole (on S3, a
    listing and one batch delete per 1,000 keys, not a request per file)."""
    from catalog.catalog import _history

    folders = json.loads(table.properties.get(PENDING, "[]"))
    if not folders:
        return []
    found = _unreferenced(table, _history(name, table), folders)
    whole = [Location.parse(folder) for folder, (all_of_it, files) in found.items() if all_of_it and files]
    single = [loc for all_of_it, files in found.values() if not all_of_it for loc, _ in files]
    map_files(lambda loc: loc.filesystem.delete_dir(loc.path), whole)
    map_files(lambda loc: loc.filesystem.delete_file(loc.path), single)
    with table.transaction() as tx:
        tx.remove_properties(PENDING)
    return [(loc.uri, n) for _, files in found.values() for loc, n in files]


def _unreferenced(table: Table, remaining: list[Snapshot],
                  folders: list[str]) -> dict[str, tuple[bool, list[tuple[Location, int]]]]:
    """Folder -> (whether all of it goes, its files that no remaining version references, with sizes).
    A folder that still holds a referenced shard (append mode adds versions to one run folder)
    also keeps its card."""
    from catalog.catalog import _files

    referenced = {f.uri for snap in remaining for f in _files(table, snap)}
    out = {}
    for folder in folders:
        found = list(Location.parse(folder).list_sizes())
        shared = any(f.uri in referenced for f, _ in found)
        out[folder] = (not shared, [(f, n) for f, n in found
                                    if f.uri not in referenced and not (shared and not f.name.endswith(".parquet"))])
    return out


@dataclass
class DropPlan:
    """What dropping a dataset removes (or, dry, would remove)."""

    name: str
    versions: list[str]  # version refs; none when only a stopped drop's files are left
    folder: Location  # <root>/datasets/<name>: every run folder of the dataset
    files: int
    bytes: int
    done: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "versions": self.versions, "folder": self.folder.uri, "files": self.files,
                "bytes": self.bytes, "done": self.done}


def drop(catalog: Catalog, name: str, *, force: bool = False, dry_run: bool = False) -> DropPlan:
    """Remove dataset `name`: every version, its shards and its Iceberg metadata. Refused while
    another dataset's version was made from it (unless `force`), and for a folder with no table
    and no drop marker, which may be a job's first, unpublished run (unless `force`)."""
    from catalog.catalog import _history

    name = validate_name(name)
    folder = catalog.config.datasets_location().join(name)
    found = list(folder.list_sizes())
    marker = folder.join(DROPPING)
    table = catalog._table(name) if catalog.exists(name) else None
    plan = DropPlan(name, [s.version_ref for s in _history(name, table)] if table else [], folder, len(found),
                    sum(n for _, n in found))
    stopped = any(loc.uri == marker.uri for loc, _ in found)  # a drop began here and was stopped
    if not table and not found:
        raise NotFoundError(f"dataset {name!r} is not in the catalog", "list the datasets with: roomtone catalog ls")
    if not table and not force and not stopped:
        raise RoomtoneError(f"dataset {name!r} is not in the catalog, but {folder.uri} holds {len(found)} file(s): "
                            f"a job's first run not yet published, or a drop stopped while deleting",
                            "pass --force to delete them, once no job is writing that dataset")
    users = sorted({user for _, user in _made_from(catalog, name)})
    if users and not force:
        more = f" and {len(users) - 5} more" if len(users) > 5 else ""
        raise RoomtoneError(f"{', '.join(users[:5])}{more} {'was' if len(users) == 1 else 'were'} made from {name}",
                            f"drop {'it' if len(users) == 1 else 'them'} first, or pass --force (then "
                            f"{'its' if len(users) == 1 else 'their'} lineage names a dataset that is gone)")
    if dry_run:
        return plan
    metadata = None  # the table's metadata folder: from the table, or from a stopped drop's marker
    if table:
        metadata = table.location()
        marker.write_bytes(json.dumps({"metadata": metadata}).encode())
        catalog.iceberg.drop_table(catalog._identifier(name))  # from here on nothing of it is visible
    elif stopped:
        metadata = json.loads(marker.read_bytes())["metadata"]
    if metadata and not catalog.config.database_uri.startswith("http"):  # a REST server owns its metadata
        metadata = Location.parse(metadata)
        if metadata.exists():
            metadata.filesystem.delete_dir(metadata.path)
    if folder.exists():
        folder.filesystem.delete_dir(folder.path)
    plan.done = True
    return plan
