"""``roomtone augment``: replayable augmentation recipes applied to a catalog dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.common import console, flag, print_json, published, state
from pipelines.configs import load_config


def _steps(text: str | None) -> list[dict] | None:
    """'mix:0.5,rotate,gain' -> [{"name": "mix", "p": 0.5}, {"name": "rotate"}, {"name": "gain"}]."""
    if text is None:
        return None
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, colon, p = part.partition(":")
        try:
            if colon and not p:
                raise ValueError
            out.append({"name": name, **({"p": float(p)} if p else {})})
        except ValueError:
            raise typer.BadParameter(f"{part!r}: write NAME or NAME:PROBABILITY, e.g. mix:0.5") from None
    return out


def augment(
    source: str = typer.Argument(None, help="Dataset to augment (NAME or NAME@vN; default scenes)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML file of AugmentConfig fields (steps, ranges)."),
    steps: str = typer.Option(None, help="Steps in order as NAME[:P], e.g. 'mix:0.5,rotate:0.5,gain'. Names: "
                                         "mix, reverb, rotate, noise, gain, shift, speed; ranges go in --config."),
    rirs: str = typer.Option(None, help="RIR dataset for reverb (its channels and rate must fit the clips)."),
    copies: int = typer.Option(None, help="Augmented rows per input row (default 1)."),
    name: str = typer.Option(None, help="Dataset name (default augmented)."),
    seed: int = typer.Option(None, help="Every recipe derives from (seed, epoch, output id)."),
    epoch: int = typer.Option(None, help="Draw a new set of recipes from the same seed."),
    address: str = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster address; none starts a local one."),
    json_out: bool = flag("--json", help="Print the published snapshot as JSON."),
):
    """Augment a dataset with replayable recipes and publish the result with lineage.

    AudioGen-style mixing of scene pairs or of an event library's clips (float SNR, -5..5 dB,
    >= 50 % overlap, events, labels and captions merged), reverb with catalog RIRs (channel by
    channel), noise, gain, time shift, speed change, and the 16 FOA / 8 MIC channel-swap
    rotations with labels rotated. Each row stores its resolved recipe (JSON) and parent ids;
    the output has the input's schema plus `recipe`, `parent_ids`, `source_ids` (the recordings
    a chain of augment jobs started from) and `room_ids` (a mixed event
    library's rows also get `events` and `caption`, and `label` becomes a list). Ranges (e.g.
    snr_db: [-5, 5]) go in --config:

        steps: [{name: mix, p: 0.5, snr_db: [-5, 5]}, {name: rotate, p: 0.5}, {name: speed, factor: [0.9, 1.1]}]

    Example: roomtone augment scenes --steps mix:0.5,rotate:0.5,gain --copies 2 --name scenes_aug
    """
    from pipelines.stages.augment import AugmentConfig, run_augment

    cfg = load_config(AugmentConfig, config, source=source, steps=_steps(steps), rirs=rirs, copies=copies,
                      name=name, seed=seed, epoch=epoch)
    snap = run_augment(cfg, state.catalog(), address=address, show_progress=not json_out)
    if json_out:
        print_json(snap.to_dict())
    else:
        console.print(f"{published(snap)} [bold]{snap.version_ref}[/] ({snap.ref}): {snap.stats['rows']} augmented "
                      f"rows from {snap.inputs[0]}; each row's `recipe` replays it")
        for step, why in (snap.info.get("skipped") or {}).items():
            for split, reason in why.items():
                console.print(f"[yellow]{step} skipped in split {split}[/]: {reason}")
