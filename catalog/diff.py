"""What changed between two dataset versions: provenance, config, derived facts, statistics,
class counts and files.

Pure: it compares two `Snapshot`s and their file lists, which `Catalog.diff` reads. Nested
config keys are flattened to dotted names (``augment.gain_db``), so a changed leaf shows as
one row instead of a whole sub-config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalog.catalog import DataFileInfo, Snapshot

__all__ = ["Change", "VersionDiff", "diff_versions", "SECTIONS"]

SECTIONS = ("provenance", "config", "info", "stats", "classes")


@dataclass(frozen=True)
class Change:
    """One field that differs; a value missing on one side is None (a class or split count, 0)."""

    section: str
    key: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | int | None:
        """new - old when both are numbers (counts, hours, bytes), else None."""
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.old, self.new)):
            return self.new - self.old
        return None


@dataclass
class VersionDiff:
    old: Snapshot
    new: Snapshot
    changes: list[Change]  # in SECTIONS order, keys sorted within a section
    files_added: list[str]
    files_removed: list[str]
    files_shared: int  # the same file in both (an appended version, or a version that re-registers them)

    def section(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.section == name]

    def to_dict(self) -> dict:
        return {"old": self.old.version_ref, "new": self.new.version_ref,
                "old_snapshot": self.old.snapshot_id, "new_snapshot": self.new.snapshot_id,
                "changes": {s: {c.key: {"old": c.old, "new": c.new, "delta": c.delta} for c in self.section(s)}
                            for s in SECTIONS},
                "files": {"added": self.files_added, "removed": self.files_removed, "shared": self.files_shared}}


def diff_versions(old: Snapshot, new: Snapshot, old_files: list[DataFileInfo],
                  new_files: list[DataFileInfo]) -> VersionDiff:
    a, b = _views(old), _views(new)
    changes = [change for s in SECTIONS for change in _changes(s, a[s], b[s])]
    before, after = {f.uri for f in old_files}, {f.uri for f in new_files}
    return VersionDiff(old, new, changes, sorted(after - before), sorted(before - after), len(before & after))


def _views(snap: Snapshot) -> dict[str, dict]:
    stats = dict(snap.stats)
    classes = stats.pop("class_counts", None) or {}
    stats.pop("histograms", None)  # binned for plots: the scalar statistics say what moved
    return {"provenance": {"code_version": snap.code_version, "config_hash": snap.config_hash, "inputs": snap.inputs},
            "config": _flat(snap.config), "info": _flat(snap.info), "stats": _flat(stats), "classes": classes}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changes(section: str, a: dict, b: dict) -> list[Change]:
    out = []
    for k in sorted(a.keys() | b.keys()):
        absent = 0 if section == "classes" or k.startswith("splits.") else None  # counts: none is 0
        if a.get(k, absent) != b.get(k, absent):
            out.append(Change(section, k, a.get(k, absent), b.get(k, absent)))
    return out
