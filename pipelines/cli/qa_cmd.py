"""``roomtone qa``: question-answer tuples from exact scene metadata, and their exports."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_json, print_table, published, state
from pipelines.configs import load_config

app = typer.Typer(help="Question-answer tuples (LTU / SpatialSoundQA style) from dataset metadata.",
                  no_args_is_help=True)


@app.command("make")
def make(
    source: str = typer.Argument(None, help="Scenes, mixtures or event-library dataset (default scenes)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file with QaConfig fields (lm: {...} too)."),
    name: str = typer.Option(None, help="Output dataset (default <source>_qa)."),
    family: list[str] = typer.Option(None, "--family", "-f", metavar="FAMILY",
                                     help="Only these families (repeatable)."),
    ontology: Path = typer.Option(None, help="AudioSet ontology.json: descriptions and hard negatives."),
    seed: int = typer.Option(None, help="Every choice derives from (seed, audio id)."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the snapshot and summary as JSON."),
):
    """Answer questions from each clip's exact metadata; publish them linked by audio id.

    Families (--family, repeatable; default all the dataset can answer): classification,
    description, temporal, counting, direction, distance, motion, room, loudest, caption, open.
    --config also takes test_fraction (the held-out share, split by recording and room) and
    max_subjects (events asked about per family and clip). Families the dataset cannot answer
    are skipped, with the reason, in the summary.

    A language model (OpenAI-compatible, `lm:` in --config: base_url, model, api_key_env) adds
    open-ended tuples; answers contradicting the facts are rejected and counted.

    Example: roomtone qa make scenes --ontology ../shared/data/ontology/audioset_ontology.json
    """
    from pipelines.stages.qa import QaConfig, run_qa, run_summary

    cfg = load_config(QaConfig, config, source=source, name=name, families=family or None, ontology=ontology,
                      seed=seed)
    snap = run_qa(cfg, state.catalog(), address=address, show_progress=not json_out)
    summary = run_summary(snap)
    if json_out:
        return print_json({"snapshot": snap.to_dict(), "summary": summary})
    console.print(f"{published(snap)} [bold]{snap.version_ref}[/] ({snap.ref}): {summary['tuples']} tuples "
                  f"{summary['splits']}, from {snap.inputs[0]}")
    print_table("tuples per family", ["family", "tuples"], sorted(summary["tuples_per_family"].items()))
    for family, reason in {**summary["skipped_families"], **summary["empty_families"]}.items():
        console.print(f"skipped {family}: {reason}", highlight=False)
    for family, reasons in summary.get("skipped_rows", {}).items():  # absent from snapshots made before it
        for reason, rows in reasons.items():
            console.print(f"skipped {rows} clips in {family}: {reason}", highlight=False)
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if summary["split_dropped"]:
        console.print(f"dropped {summary['split_dropped']} test clips that share a room or recording with train")
        if "test" not in summary["splits"]:
            why = next(iter(summary.get("split_dropped_examples", {}).items()), None)
            console.print("no test split is left: every held-out clip shares a room or a recording with a train "
                          "clip" + (f" ({why[0]}: {why[1]})" if why else "") + ". Give the sources held-out "
                          "rooms and recordings: an RIR set and an event library with test splits of their own "
                          "(--test-fraction), which scenes and augment keep apart", highlight=False)
    lm = summary.get("language_model")
    if lm:
        console.print(f"language model {lm['model']}: kept {lm['kept']} answers, rejected {lm['rejected']} "
                      f"{lm['rejected_by_kind']}, failed requests {lm['failed_requests']}"
                      + (f" (first: {lm['first_failure']})" if lm.get("first_failure") else ""), highlight=False)


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="QA dataset made by `roomtone qa make`."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Folder for ltu_<split>.json, spatialsoundqa_<split>.json and convention.json."),
    audio_path: str = typer.Option("{audio_id}", help="LTU audio_id format from {audio_id}, {split} and {fold}: "
                                   "the split the clip has in the source dataset and its DCASE fold, which is "
                                   "where `export dcase` wrote its WAV (a QA test tuple may ask about a clip of "
                                   "the source's train split), e.g. 'foa_dev/{split}/fold{fold}_{audio_id}.wav'."),
    json_out: bool = flag("--json", help="Print the result as JSON."),
):
    """Write the LTU JSON (instruction, input, audio_id, dataset, task, output) and a
    SpatialSoundQA-style JSON per split, and convention.json (coordinate frame and units).

    Example: roomtone qa export scenes_qa --out qa_json --audio-path 'foa_dev/{split}/fold{fold}_{audio_id}.wav'
    """
    from pipelines.stages.qa import export_qa

    summary = export_qa(state.catalog(), ref, out, audio_path=audio_path)
    if json_out:
        return print_json(summary)
    console.print(f"wrote {summary['records']} to {summary['out']}", highlight=False)
