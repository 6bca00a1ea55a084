"""``roomtone ingest``: sound-event libraries into the catalog."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_json, published, state
from pipelines.configs import load_config

app = typer.Typer(help="Ingest sound-event libraries (a labelled folder, a local Hugging Face dataset, "
                       "a catalog dataset, or a generated one).",
                  no_args_is_help=True)


def _summary(snap, quarantine: list[dict] | None) -> None:
    stats = snap.stats
    console.print(f"{published(snap)} [bold]{snap.version_ref}[/] ({snap.ref}): {stats['rows']} events, "
                  f"{stats['audio_hours']:.4f} h, {len(stats['class_counts'])} classes", highlight=False)
    unmatched = snap.info.get("labels_without_ontology_id")
    if unmatched:
        console.print(f"{len(unmatched)} labels matched no class of the ontology (their ontology_id is null): "
                      f"{', '.join(unmatched)}", highlight=False)
    nested = snap.info.get("labels_of_nested_folders")
    if nested:
        console.print(f"{len(nested)} labels are the names of nested folders, each file's parent folder "
                      f"(e.g. {next(iter(nested.values()))} -> {next(iter(nested))}); use --labels-csv for "
                      "other labels", highlight=False)
    quiet = snap.info.get("below_loudness_target")
    if quiet:
        console.print(f"{quiet['events']} of {quiet['of']} events stay 1 dB or more under --loudness-db "
                      f"{quiet['target_db']:g}, down to about {quiet['quietest_db']:g} dBFS ({quiet['quietest']}): "
                      "their peaks cap the gain at -0.1 dBFS; --loudness-db "
                      f"{quiet['levelling_db']} or lower gives every event the same level", highlight=False)
    if quarantine:
        reasons = Counter(q["reason"] for q in quarantine)
        console.print(f"quarantined {len(quarantine)} items (see {snap.name}_quarantine): "
                      + "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common()), highlight=False)
    elif quarantine is not None:
        console.print("quarantined 0 items")


@app.command("events")
def events(
    folder: Path = typer.Argument(None, help="Source: a folder of .wav/.flac/.ogg files, searched recursively "
                                             "(or give --hf-dataset or --catalog-dataset instead)."),
    hf_dataset: Path = typer.Option(None, "--hf-dataset", metavar="PATH",
                                    help="Source: a local Hugging Face dataset folder (Parquet shards with a card, "
                                         "or written by Dataset.save_to_disk); no hub access."),
    catalog_dataset: str = typer.Option(None, "--catalog-dataset", metavar="NAME[@vN]",
                                        help="Source: a catalog dataset with audio and label columns (events or "
                                             "scenes); recorded as the input in lineage."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with EventsConfig fields."),
    labels_csv: Path = typer.Option(None, help="FOLDER only: CSV with a file and a label column; default: parent "
                                               "folder names are the labels."),
    file_column: str = typer.Option(None, help="CSV column with paths relative to FOLDER (default file)."),
    label_column: str = typer.Option(None, help="Column with the class name in the CSV, the HF dataset or the "
                                                "catalog dataset (default label)."),
    audio_column: str = typer.Option(None, help="Audio {bytes, path} column of --hf-dataset or --catalog-dataset "
                                                "(default audio)."),
    hf_split: str = typer.Option(None, help="Split of --hf-dataset to read (default train)."),
    ontology: Path = typer.Option(None, help="AudioSet ontology JSON; labels matching a class name get its id."),
    name: str = typer.Option(None, help="Dataset name (default events); skipped items go to NAME_quarantine."),
    sample_rate: int = typer.Option(None, help="Target sample rate in Hz (default 24000)."),
    trim_db: float = typer.Option(None, help="Trim edges quieter than this many dB below the peak (default -50)."),
    loudness_db: float = typer.Option(None, help="RMS of each trimmed event in dBFS (default -30); an event "
                                                  "whose peak would pass -0.1 dBFS stays quieter, and the summary "
                                                  "says how many did."),
    test_fraction: float = typer.Option(None, help="Fraction of each label's items held out as a test split "
                                                   "(default 0)."),
    seed: int = typer.Option(None, help="Seed of the train/test draw per item."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the snapshot and the quarantine as JSON."),
):
    """Decode, mix to mono, resample, trim and loudness-normalise labelled audio on Ray.

    The source is exactly one of FOLDER, --hf-dataset or --catalog-dataset; every source gets the
    same conditioning and row schema. Unreadable, empty, silent, NaN-containing, missing or
    unlabelled items are skipped and listed, with the reason, in the NAME_quarantine dataset;
    the run goes on.

    Examples:

      roomtone ingest events ./sonic-pi --labels-csv ./sonic-pi/labels.csv --name sonic_pi

      roomtone ingest events --hf-dataset ./my_hf_dataset --hf-split train --label-column label

      roomtone ingest events --catalog-dataset sonic_pi@v1 --sample-rate 16000 --name sonic_pi_16k
    """
    from pipelines.stages.events import EventsConfig, read_quarantine, run_ingest_events

    cfg = load_config(EventsConfig, config, folder=folder, hf_dataset=hf_dataset, catalog_dataset=catalog_dataset,
                      labels_csv=labels_csv, file_column=file_column, label_column=label_column,
                      audio_column=audio_column, hf_split=hf_split, ontology=ontology, name=name,
                      sample_rate=sample_rate, trim_db=trim_db, loudness_db=loudness_db,
                      test_fraction=test_fraction, seed=seed)
    catalog = state.catalog()
    snap = run_ingest_events(cfg, catalog, address=address, show_progress=not json_out)
    quarantine = read_quarantine(catalog, cfg.name)
    if json_out:
        print_json({**snap.to_dict(), "quarantine": quarantine})
    else:
        _summary(snap, quarantine)


@app.command("synthetic")
def synthetic(
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with SyntheticEventsConfig fields."),
    per_class: int = typer.Option(None, help="Events per kind (default 8)."),
    name: str = typer.Option(None, help="Dataset name (default synthetic_events)."),
    sample_rate: int = typer.Option(None, help="Sample rate in Hz (default 24000)."),
    ontology: Path = typer.Option(None, help="AudioSet ontology JSON; kinds matching a class name get its id."),
    seed: int = typer.Option(None, help="Every event derives its randomness from (seed, event id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the published snapshot as JSON."),
):
    """Generate a labelled event library with the same schema as `ingest events` (no download).

    Kinds: harmonic_tone, chirp_tone, noise_burst, clicking, siren, footsteps.

    Example: roomtone ingest synthetic --per-class 20 --name demo_events
    """
    from pipelines.stages.synthetic_events import SyntheticEventsConfig, run_synthetic_events

    cfg = load_config(SyntheticEventsConfig, config, per_class=per_class, name=name, sample_rate=sample_rate,
                      ontology=ontology, seed=seed)
    snap = run_synthetic_events(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(snap.to_dict())
    else:
        _summary(snap, None)
