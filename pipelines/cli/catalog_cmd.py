"""``roomtone catalog``: find datasets, their versions, files, lineage; query them with SQL."""

from __future__ import annotations

import typer
from rich.tree import Tree

from pipelines.cli.common import console, flag, print_json, print_table, state

app = typer.Typer(help="Browse and query the dataset catalog.\n\n"
                       "A dataset reference is NAME (current version), NAME@vN (version N) "
                       "or NAME@SNAPSHOT_ID.", no_args_is_help=True)

JSON = flag("--json", help="Machine-readable output.")


def _hours(stats: dict, digits: int) -> str:
    """Hours of audio; '-' for a dataset without an audio column (RIRs, QA tuples), not 0.0000."""
    return f"{stats['audio_hours']:.{digits}f}" if stats.get("audio_hours") else "-"


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


@app.command("ls")
def ls(json_out: bool = JSON):
    """List every dataset with its current version."""
    snaps = state.catalog().list()
    if json_out:
        return print_json([s.to_dict() for s in snaps])
    if not snaps:
        console.print("The catalog is empty. Try: roomtone demo")
        return
    print_table("datasets", ["name", "version", "snapshot", "created", "rows", "hours", "size", "inputs"],
                [[s.name, f"v{s.version}", s.snapshot_id, s.to_dict()["created"], s.stats.get("rows"),
                  _hours(s.stats, 3), _size(s.stats.get("bytes")), ", ".join(s.inputs)]
                 for s in snaps])


@app.command("show")
def show(ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID"), json_out: bool = JSON):
    """Show one version: statistics, config, lineage and where its files are."""
    snap = state.catalog().show(ref)
    d = snap.to_dict()
    if json_out:
        return print_json(d)
    console.print(f"[bold]{snap.version_ref}[/]  snapshot {snap.snapshot_id}  created {d['created']}")
    for key in ("run_id", "config_hash", "code_version", "location", "ray_job_id", "mlflow_run_id"):
        if d.get(key):
            console.print(f"  {key:13} {d[key]}", highlight=False)
    console.print(f"  {'inputs':13} {', '.join(snap.inputs) or '(none: a root dataset)'}", highlight=False)
    for key, value in snap.info.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        console.print(f"  {key:13} {text}", highlight=False)
    stats = snap.stats
    print_table("statistics", ["rows", "hours", "size", "shards", "splits"],
                [[stats.get("rows"), _hours(stats, 4), _size(stats.get("bytes")),
                  stats.get("shards"), ", ".join(f"{k}={v}" for k, v in stats.get("splits", {}).items())]])
    if stats.get("class_counts"):
        print_table("classes", ["class", "count"], [[k, v] for k, v in stats["class_counts"].items()])
    from catalog.shards import bins_in_order

    for column, counts in stats.get("histograms", {}).items():
        top = max(counts.values(), default=1)
        print_table(f"histogram of {column}", ["bin", "count", ""],
                    [[b, n, "█" * max(1, round(30 * n / top))] for b, n in bins_in_order(counts)])
    print_table("config", ["field", "value"], [[k, v] for k, v in sorted(snap.config.items())])


@app.command("history")
def history(name: str = typer.Argument(..., help="Dataset name"), json_out: bool = JSON):
    """Every published version of a dataset, oldest first."""
    snaps = state.catalog().history(name)
    if json_out:
        return print_json([s.to_dict() for s in snaps])
    print_table(f"history of {name}", ["version", "snapshot", "created", "operation", "rows", "config hash", "run"],
                [[f"v{s.version}", s.snapshot_id, s.to_dict()["created"], s.operation, s.stats.get("rows"),
                  (s.config_hash or "")[:12], s.run_id] for s in snaps])


@app.command("lineage")
def lineage(ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID"), json_out: bool = JSON):
    """The inputs a version was made from, back to the root datasets."""
    graph = state.catalog().lineage(ref)
    if json_out:
        return print_json(graph)

    def add(node: dict, tree: Tree) -> None:
        for parent in node["inputs"]:
            add(parent, tree.add(f"{parent['ref']} (v{parent['version']}, {parent['rows']} rows)"))

    tree = Tree(f"[bold]{graph['ref']}[/] (v{graph['version']}, {graph['rows']} rows)")
    add(graph, tree)
    console.print(tree)


def _cell(key: str, value, signed: bool = False) -> str:
    """A diff value as people read it: sizes in units, hashes cut as `history` prints them."""
    if value is None:
        return "-"
    if key == "bytes":
        return ("+" if value >= 0 else "-") + _size(abs(value)) if signed else _size(value)
    if key == "config_hash":
        return value[:12]
    if isinstance(value, float):
        return f"{value:{'+' if signed else ''}.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:+d}" if signed else str(value)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


CLASS_ROWS = 20  # class-count changes `diff` prints, largest first


@app.command("diff")
def diff(old: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID; alone, it is compared with the "
                                             "version before it"),
         new: str = typer.Argument(None, help="The version to compare OLD with."), json_out: bool = JSON):
    """What changed between two versions: code, inputs, config, statistics, class counts and files.

    Nested config fields show as dotted names (augment.gain_db); a number's change is new - old.

    Examples:

      roomtone catalog diff scenes   (against the version before it)

      roomtone catalog diff scenes@v3 scenes@v7
    """
    d = state.catalog().diff(old, new)
    if json_out:
        return print_json(d.to_dict())
    console.print(f"[bold]{d.old.version_ref} -> {d.new.version_ref}[/]  snapshots {d.old.snapshot_id} -> "
                  f"{d.new.snapshot_id}, created {d.old.to_dict()['created']} -> {d.new.to_dict()['created']}",
                  highlight=False)
    classes = sorted(d.section("classes"), key=lambda c: -abs(c.delta))  # AudioSet-sized: the largest moves
    shown = [c for c in d.changes if c.section != "classes"] + classes[:CLASS_ROWS]
    if shown:
        print_table("changes", ["section", "field", "old", "new", "change"],
                    [[c.section, c.key, _cell(c.key, c.old), _cell(c.key, c.new),
                      "" if c.delta is None else _cell(c.key, c.delta, signed=True)] for c in shown])
    else:
        console.print("no change in code, inputs, config, statistics or class counts")
    if len(classes) > CLASS_ROWS:
        console.print(f"{len(classes) - CLASS_ROWS} more class counts changed, none by more (all of them: --json)",
                      highlight=False)
    console.print(f"files: {len(d.files_added)} added, {len(d.files_removed)} removed, {d.files_shared} shared",
                  highlight=False)


@app.command("files")
def files(ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID"), json_out: bool = JSON):
    """The Parquet files of a version."""
    found = state.catalog().files(ref)
    if json_out:
        return print_json([f.__dict__ for f in found])
    print_table(f"files of {ref}", ["split", "rows", "size", "uri"],
                [[f.split, f.rows, _size(f.bytes), f.uri] for f in found])


@app.command("verify")
def verify(ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID"), json_out: bool = JSON):
    """Read every file of a version back and check its page checksums and row counts.

    Exits 1 when a file is damaged, truncated or missing; the table says which and how.
    """
    checked = state.catalog().verify(ref, show_progress=not json_out)
    if json_out:
        print_json([{**info.__dict__, "problem": problem} for info, problem in checked])
    else:
        print_table(f"files of {ref}", ["split", "rows", "size", "uri", "check"],
                    [[info.split, info.rows, _size(info.bytes), info.uri, problem or "ok"]
                     for info, problem in checked])
    bad = sum(problem is not None for _, problem in checked)
    if bad:
        if not json_out:
            console.print(f"[red]{bad} of {len(checked)} files of {ref} failed their check[/]")
        raise typer.Exit(1)


@app.command("expire")
def expire(name: str = typer.Argument(..., help="Dataset name"),
           keep_last: int = typer.Option(None, "--keep-last", min=1, help="Keep the newest N versions."),
           older_than: float = typer.Option(None, "--older-than", min=0, metavar="DAYS",
                                            help="Expire only versions older than DAYS."),
           keep: list[str] = typer.Option([], "--keep", metavar="REF",
                                          help="A version to keep whatever the rules say (repeat for more), e.g. "
                                               "one an MLflow run trained on: NAME@vN or NAME@SNAPSHOT_ID."),
           dry_run: bool = flag("--dry-run", help="Show what would go; change nothing."),
           yes: bool = flag("--yes", "-y", help="Do not ask before deleting (a terminal asks; a script does not)."),
           json_out: bool = JSON):
    """Remove old versions of a dataset and the files only they used.

    The current version always stays, and so does every version a kept version was made from
    (another dataset's, or a later one of its own), so lineage keeps resolving. Version numbers
    do not change: NAME@v7 stays v7.
    Both rules together expire what is beyond the newest N and older than DAYS.

    Examples:

      roomtone catalog expire scenes --keep-last 7 --dry-run

      roomtone catalog expire scenes --keep-last 7 --older-than 30 --keep scenes@v12 --yes
    """
    cat = state.catalog()
    plan = cat.expire(name, keep_last=keep_last, older_than_days=older_than, keep=keep, dry_run=True)
    if not json_out:
        print_table(f"versions of {name}", ["version", "created", "rows", "size", ""],
                    [[s.version_ref, s.to_dict()["created"], s.stats.get("rows"), _size(s.stats.get("bytes")),
                      "[red]expire[/]" if s in plan.expired else f"keep: {plan.kept[s.version_ref]}"]
                     for s in cat.history(name)])
        console.print(f"{len(plan.expired)} version(s) to expire, {len(plan.files)} file(s) to delete "
                      f"({_size(plan.bytes)})", highlight=False)
    if not dry_run and (plan.expired or plan.files) and not yes and console.is_terminal \
            and not typer.confirm(f"Expire {len(plan.expired)} version(s) of {name} and delete their files?"):
        raise typer.Exit(1)
    if not dry_run:
        plan = cat.expire(name, keep_last=keep_last, older_than_days=older_than, keep=keep)
        if not json_out:
            console.print(f"expired {len(plan.expired)} version(s); deleted {len(plan.files)} file(s), "
                          f"{_size(plan.bytes)}", highlight=False)
    if json_out:
        print_json(plan.to_dict())


@app.command("drop")
def drop(name: str = typer.Argument(..., help="Dataset name"),
         force: bool = flag("--force", help="Drop even though other datasets were made from it, or delete a folder "
                                            "the catalog does not know (once no job writes that dataset)."),
         dry_run: bool = flag("--dry-run", help="Show what would go; change nothing."),
         yes: bool = flag("--yes", "-y", help="Do not ask before deleting (a terminal asks; a script does not)."),
         json_out: bool = JSON):
    """Remove a dataset whole: every version, its files and its catalog entry.

    Refused while another dataset's version was made from it: drop that one first, or pass
    --force. MLflow runs trained on it keep their logs, not the data (the catalog does not read
    MLflow). A drop that was stopped is finished by running it again.

    Examples:

      roomtone catalog drop grid_scenes --dry-run

      roomtone catalog drop grid_scenes --yes
    """
    cat = state.catalog()
    plan = cat.drop(name, force=force, dry_run=True)
    if not json_out:
        console.print(f"{name}: {', '.join(plan.versions) or 'no versions (a stopped drop left files)'}; "
                      f"{plan.files} file(s), {_size(plan.bytes)} under {plan.folder.uri}", highlight=False)
    if not dry_run and not yes and console.is_terminal and not typer.confirm(f"Drop {name} and delete its files?"):
        raise typer.Exit(1)
    if not dry_run:
        plan = cat.drop(name, force=force)
        if not json_out:
            console.print(f"dropped {name}: {len(plan.versions)} version(s), {plan.files} file(s), "
                          f"{_size(plan.bytes)}", highlight=False)
    if json_out:
        print_json(plan.to_dict())


@app.command("query")
def query(sql: str = typer.Argument(..., help='SQL; datasets are views by name, e.g. "SELECT label, '
                                              'count(*) FROM events GROUP BY label"'),
          limit: int = typer.Option(50, help="Rows to print (--json prints all)."), json_out: bool = JSON):
    """Run read-only SQL (DuckDB) over the datasets.

    Each dataset is a view of its current version; pin one as "name@v1" (quoted).
    roomtone_snapshots lists every version of every dataset.
    """
    table = state.catalog().query(sql)
    binary = {f.name for f in table.schema if "binary" in str(f.type)}
    rows = table.drop_columns(list(binary)).to_pylist() if binary else table.to_pylist()
    if json_out:
        return print_json(rows)
    cols = [c for c in table.column_names if c not in binary]
    hidden = f" (binary columns hidden: {', '.join(sorted(binary))})" if binary else ""
    print_table(f"{table.num_rows} row{'s' * (table.num_rows != 1)}{hidden}",
                cols, [[r[c] for c in cols] for r in rows[:limit]])


@app.command("card")
def card(ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@SNAPSHOT_ID")):
    """Print the Hugging Face dataset card (README.md) of a version."""
    print(state.catalog().card(ref))
