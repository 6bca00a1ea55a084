"""The AudioSet ontology as the QA generator needs it: descriptions and hard negatives.

The ontology is a DAG (some classes have several parents). A hard negative for a class is a
sibling (another child of one of its parents) that is usable as an answer (not ``abstract``
or ``blacklist``) and neither an ancestor nor a descendant of any class in the clip, so a
"no" is never wrong because of the hierarchy.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from catalog.errors import RoomtoneError


def alternatives(name: str) -> list[str]:
    """An ontology name's alternatives: 'Fire engine, fire truck (siren)' -> 'Fire engine', 'fire truck'."""
    return [n for n in re.sub(r"\s*\([^)]*\)", "", name).split(", ") if n and n != "etc."]


class Ontology:
    def __init__(self, entries: list[dict]):
        self.entries = {e["id"]: e for e in entries}
        # every lower-cased alternative name -> its id
        self.names = {n.lower(): e["id"] for e in entries for n in alternatives(e["name"])}
        self.parents: dict[str, list[str]] = {}
        for e in entries:
            for child in e.get("child_ids", []):
                self.parents.setdefault(child, []).append(e["id"])

    @classmethod
    def load(cls, path: str | Path) -> "Ontology":
        return _load(str(path))

    def name(self, oid: str) -> str:
        return self.entries[oid]["name"]

    def description(self, oid: str | None) -> str | None:
        entry = self.entries.get(oid) if oid else None
        return entry["description"].strip() if entry and entry.get("description") else None

    def usable(self, oid: str) -> bool:
        entry = self.entries.get(oid)
        return bool(entry) and not set(entry.get("restrictions", [])) & {"abstract", "blacklist"}

    def _closure(self, oid: str, step) -> set[str]:
        seen, todo = set(), [oid]
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def ancestors(self, oid: str) -> set[str]:
        return self._closure(oid, lambda o: self.parents.get(o, []))

    def descendants(self, oid: str) -> set[str]:
        return self._closure(oid, lambda o: self.entries.get(o, {}).get("child_ids", []))

    def resolve(self, classes, ids: dict[str, str | None]) -> set[str]:
        """The ontology ids of these class names: the id recorded for each in `ids`, else the class
        whose name (or one of its alternatives) it is; names the ontology lacks are left out."""
        return {ids.get(c) or self.names.get(c.lower()) for c in classes} & self.entries.keys()

    def related(self, ids: set[str]) -> set[str]:
        """The ids, their ancestors and their descendants: what a "no" must never name."""
        out = set(ids)
        for oid in ids:
            out |= self.ancestors(oid) | self.descendants(oid)
        return out

    def hard_negatives(self, present: set[str]) -> list[str]:
        """Sorted ids of usable siblings of the present ids, unrelated to every present id."""
        related = self.related(present)
        siblings = {s for oid in present for p in self.parents.get(oid, []) for s in self.entries[p]["child_ids"]}
        return sorted(s for s in siblings - related if self.usable(s))


@lru_cache(maxsize=4)
def _load(path: str) -> Ontology:
    try:
        entries = json.loads(Path(path).read_text())
        if not isinstance(entries, list) or not all("id" in e and "name" in e for e in entries):
            raise ValueError("expected a list of {id, name, child_ids, ...} objects")
    except (OSError, ValueError, TypeError) as exc:
        raise RoomtoneError(f"ontology {path} is not a readable AudioSet ontology JSON: {exc}",
                            "set ontology to the path of AudioSet's ontology.json") from None
    return Ontology(entries)
