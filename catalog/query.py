"""SQL over the catalog with DuckDB: every dataset is a view named after it.

``SELECT label, count(*) FROM events GROUP BY label`` reads the current snapshot;
a pinned version is the quoted identifier ``"events@v1"``; ``roomtone_snapshots``
lists every snapshot of every dataset. Files are scanned through pyarrow (local or S3, no
DuckDB extension to download), and external access is switched off before the user's SQL
runs, so a query can read the registered datasets but not files or the network. Only one
SELECT-like statement runs (SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW): nothing
is created, written, attached or loaded, not even in DuckDB's own scratch database.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from catalog.errors import NotFoundError, RoomtoneError
from catalog.names import DatasetRef

if TYPE_CHECKING:
    from catalog.catalog import Catalog

_PINNED = re.compile(r'"([a-z][a-z0-9_]{0,62}@(?:\d+|v\d+|latest))"')


def _read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise RoomtoneError(f"query failed: {str(exc).splitlines()[0]}", "fix the SQL syntax") from None
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        raise RoomtoneError(f"query failed: catalog SQL is read-only and runs one SELECT, got "
                            f"{' + '.join(kinds) or 'no statement'}",
                            "query with one SELECT (WITH, DESCRIBE, SUMMARIZE also work); datasets are written "
                            "only by pipeline stages (roomtone run, ingest, simulate, ...)")


def run_query(catalog: "Catalog", sql: str) -> pa.Table:
    # no extension is installed or loaded behind the SQL's back (sqlite_scan would fetch one from the network)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    _read_only(con, sql)
    views = {}  # name -> its Arrow dataset, for the views the SQL names
    for name in catalog.names():
        if re.search(rf"\b{name}\b", sql):
            try:
                views[name] = catalog.arrow_dataset(name)
            except NotFoundError:
                pass  # a dataset with no published snapshot yet: nothing to query
    for pinned in _PINNED.findall(sql):  # an unknown pinned version is an error, not an empty view
        views[pinned] = catalog.arrow_dataset(DatasetRef.parse(pinned))
    if "roomtone_snapshots" in sql:
        views["roomtone_snapshots"] = catalog.snapshots_table()
    for name, view in views.items():
        con.register(name, view)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if isinstance(exc, duckdb.BinderException) and "column" in message.lower() and views:
            fix = "; ".join(f"{name} has {', '.join(view.schema.names)}" for name, view in views.items())
        else:
            fix = (f"datasets you can query: {', '.join(catalog.names()) or 'none'}, roomtone_snapshots; "
                   'pin a version as "name@v1"')
        raise RoomtoneError(f"query failed: {message}", fix) from None
    finally:
        con.close()
