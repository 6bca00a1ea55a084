"""Where roomtone keeps its data and catalog; the defaults are the laptop demo.

Every field can come from the environment (``ROOMTONE_ROOT``, ``ROOMTONE_CATALOG_URI``,
``ROOMTONE_WAREHOUSE``), so the same pipeline config runs on a laptop and a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from catalog.errors import RoomtoneError
from catalog.storage import Location

DEFAULT_ROOT = "./roomtone-home"


class CatalogConfig(BaseModel):
    """``root`` holds dataset files (local path or s3://); ``uri`` is the catalog database:
    a SQLite file by default, ``postgresql+psycopg2://...`` on a cluster, or ``http(s)://`` for
    an Iceberg REST catalog. ``warehouse`` holds Iceberg's own metadata files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = DEFAULT_ROOT
    uri: str | None = None
    warehouse: str | None = None
    namespace: str = "roomtone"

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        return Location.parse(v).uri

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite:///", "postgresql", "http://", "https://")):
            raise ValueError("catalog uri must start with sqlite:///, postgresql+psycopg2:// or http(s):// "
                             f"(an Iceberg REST catalog), got {v.split('://')[0]!r}")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> "CatalogConfig":
        root = Location.parse(self.root)
        if self.uri is None and root.is_s3:
            raise RoomtoneError(f"root {root.uri} is on S3 but no catalog database is set",
                                "set ROOMTONE_CATALOG_URI to a postgresql+psycopg2:// URL or a sqlite:/// file")
        return self

    @classmethod
    def from_env(cls, **overrides) -> "CatalogConfig":
        env = {"root": os.environ.get("ROOMTONE_ROOT"), "uri": os.environ.get("ROOMTONE_CATALOG_URI"),
               "warehouse": os.environ.get("ROOMTONE_WAREHOUSE")}
        values = {k: v for k, v in {**env, **overrides}.items() if v is not None}
        return cls(**values)

    @property
    def root_location(self) -> Location:
        return Location.parse(self.root)

    @property
    def database_uri(self) -> str:
        if self.uri:
            return self.uri
        try:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RoomtoneError(f"cannot create the data root {self.root}: {exc.strerror}",
                                "set --root / ROOMTONE_ROOT to a writable directory") from None
        return f"sqlite:///{Path(self.root) / 'catalog.db'}"

    @property
    def warehouse_uri(self) -> str:
        if self.warehouse:
            return self.warehouse
        loc = self.root_location.join("iceberg")
        return loc.uri if loc.is_s3 else f"file://{loc.uri}"

    def datasets_location(self) -> Location:
        return self.root_location.join("datasets")
