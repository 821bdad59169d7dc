"""The `drivesim` command line.

Every sub-command turns a user mistake (bad argument, bad file, bad config)
into one line on stderr and exit status 2; see `drivesim.errors`.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

try:  # typer 0.20 and later carry their own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:
    from click import exceptions as click_exceptions

from drivesim import outputs
from drivesim.atomic import check_not_being_written, missing_folders, remove_empty_folders
from drivesim.config import (
    MAX_LAPS,
    MIN_LAPS,
    TRACK_WIDTHS,
    CameraConfig,
    TrackConfig,
    check_camera_names,
    from_dict,
    load_json,
    read_json,
)
from drivesim.errors import DrivesimError
from drivesim.learn.config import MAX_TORCH_SEED, WEIGHTS_FILE, TrainConfig
from drivesim.processes import TERMINATION_SIGNALS, usable_cores
from drivesim.wording import counted

_NO_ARGS_IS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())
"""Click 8.2's error for a group given no command, which shows the help; click 8.1 shows it and exits 0 instead."""
_ABORTED = (typer.Abort, getattr(click_exceptions, "Abort", typer.Abort))
"""What typer (and an older one's click) raises for end of input (EOFError)."""

app = typer.Typer(
    help="drivesim: labeled camera/steering data for end-to-end driving networks, and closed-loop tests of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(given: bool) -> None:
    if given:
        from drivesim import __version__

        typer.echo(f"drivesim {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print drivesim's version and exit."),
) -> None:
    pass  # the app's own options; its help text is the Typer's


def _number(low: float | None = None, high: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """A parser for a float option: a finite number in [low, high] ((low, high] when `above`).

    typer's min/max let NaN through (or, on newer typer, call it "not <= 1"), and inf would reach
    the configs as a loop bound; this names the option and the range instead.
    """
    if low is None and high is None:
        wanted = "a finite number"
    else:
        start = "-inf" if low is None else f"{low:g}"
        end = "inf)" if high is None else f"{high:g}]"
        wanted = f"a number in {'(' if above or low is None else '['}{start}, {end}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"expected a number, got {text!r}") from None
        inside = math.isfinite(value) and (low is None or value > low or (value == low and not above)) and (high is None or value <= high)
        if not inside:
            raise typer.BadParameter(f"expected {wanted}, got {text}")
        return value

    return parse


tracks_app = typer.Typer(help="Generate and preview procedural tracks.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(tracks_app, name="tracks")


@tracks_app.command("generate")
def tracks_generate(
    out: Path = typer.Option(..., "--out", help="Folder to write track files (track-00007.json for seed 7) into."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the first track; the others use seed+1, seed+2, ..."),
    count: int = typer.Option(1, "--count", min=1, help="Number of tracks."),
    length: float | None = typer.Option(None, parser=_number(), help="Length [m], 200 to 5000: each track comes out within about 15 % of it, so a set varies [default 1200]."),
    width: float | None = typer.Option(None, parser=_number(), help=f"Road width [m], {TRACK_WIDTHS[0]:g} to {TRACK_WIDTHS[1]:g} [default 8]."),
    lanes: int | None = typer.Option(None, help="1 or 2 lanes [default 1]."),
    curviness: float | None = typer.Option(None, parser=_number(), help="0 (near-circle) to 1 (many bends) [default 0.5]."),
    min_radius: float | None = typer.Option(None, "--min-radius", parser=_number(), help="Tightest bend radius [m], at least the road width [default 20]."),
    config: Path | None = typer.Option(None, "--config", help="TrackConfig JSON file; options given here override it."),
    force: bool = typer.Option(False, "--force", help="Replace track files in --out that hold other tracks."),
) -> None:
    """Generate tracks from seeds and save them as JSON."""
    from tqdm import tqdm

    from drivesim.track import generate_track, save_track
    from drivesim.track.io import track_to_json

    _check_folder_option(out, "--out")
    outputs.check_output_folder(out, "--out", outputs.TRACKS)
    given = _given({"length": length, "width": width, "lanes": lanes, "curviness": curviness, "min_radius": min_radius})
    track_config = load_json(TrackConfig, config, overrides=given) if config else from_dict(TrackConfig, given)
    with tqdm(range(seed, seed + count), desc="tracks", unit="track", disable=count < 2 or not sys.stderr.isatty()) as seeds:  # closed before an error is shown
        tracks = {out / f"track-{s:05d}.json": generate_track(s, track_config) for s in seeds}
    # A recording made on a track folder stores its files' digest: replacing one in place would stop it resuming.
    other = [path for path, track in tracks.items() if path.exists() and not _holds_track(path, track_to_json(track))]
    if other and not force:
        which = f"{other[0]} already holds another track" if len(other) == 1 else f"{len(other)} files already hold other tracks, {other[0]} first"
        raise DrivesimError(f"{which}; use another --out or --seed, or --force to replace them")
    made = missing_folders(out)
    try:
        for path, track in tracks.items():
            save_track(track, path)
            if count < 2:
                typer.echo(f"{path}: {track.length:.0f} m, {track.width:g} m wide, {counted(track.lanes, 'lane')}")
    except BaseException:  # a full disk before the first track: no empty folder left behind
        remove_empty_folders(made)
        raise
    if count >= 2:
        typer.echo(f"wrote {count} tracks to {out}")


@tracks_app.command("preview")
def tracks_preview(
    files: list[Path] = typer.Argument(..., metavar="TRACKS", help="Track files or folders of track files."),
    out: Path = typer.Option(..., "--out", help="PNG to write."),
    columns: int | None = typer.Option(None, min=1, help="Tiles per row (default: up to 4)."),
) -> None:
    """Draw tracks from above, with the start line (red) and driving direction (arrow)."""
    from drivesim.render.topdown import preview_tracks
    from drivesim.track import load_tracks

    _check_png(out, "--out")
    tracks = [track for source in files for track in load_tracks(source)]
    preview_tracks(tracks, out, columns=columns)
    typer.echo(f"wrote {out} ({counted(len(tracks), 'track')})")


@app.command("generate")
def generate_command(
    out: Path = typer.Option(..., "--out", help="Recording folder to write (shards + manifest.json)."),
    frames: int | None = typer.Option(None, "--frames", min=1, help="Frames in the recording [default 10000]."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes [default: the cores this process may use, CPU quota included]."),
    tracks: str | None = typer.Option(None, "--tracks", help="random (a fresh procedural track per shard) or a track folder/file, e.g. tracks/train [default random]."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Run seed: the same seed and options give the same bytes [default 0]."),
    cameras: str | None = typer.Option(None, "--cameras", help="center, or center,left,right (PilotNet's recovery cameras) [default center]."),
    randomize: str | None = typer.Option(None, "--randomize", help="Domain randomization: none, light or full [default full]."),
    noise: float | None = typer.Option(None, "--noise", parser=_number(0, 1), help="DART steering noise std on the executed controls, 0 to 1; labels stay clean; 0 = no steering noise [default 0.1]."),
    shard_frames: int | None = typer.Option(None, "--shard-frames", min=1, help="Frames per shard [default 1000]."),
    episode_frames: int | None = typer.Option(None, "--episode-frames", min=1, help="Longest episode in frames [default 400]."),
    width: int | None = typer.Option(None, "--width", help="Camera image width [px], 16 to 4096 [default 160]."),
    height: int | None = typer.Option(None, "--height", help="Camera image height [px], 16 to 4096 [default 120]."),
    config: Path | None = typer.Option(None, "--config", help="GenerateConfig JSON file naming the settings it changes (sections merge into the defaults); options given here override it."),
    force: bool = typer.Option(False, "--force", help="Replace a recording in --out that was made with a different config."),
) -> None:
    """Generate a labeled dataset headlessly: expert driving, camera frames, HDF5 shards.

    Re-running the same command after an interruption keeps the finished
    shards and makes only the missing ones.
    """
    from drivesim.config import GenerateConfig
    from drivesim.generate import DIGEST_KEYS, generate

    if randomize is not None and randomize not in ("none", "light", "full"):
        raise DrivesimError(f"--randomize must be none, light or full, got {randomize!r}")
    # The options, in the config's own shape, go over the file's values (a section key by key: --randomize
    # sets the level and leaves the effects a file switched off), and only then is anything checked.
    options = {"frames": frames, "seed": seed, "tracks": tracks, "shard_frames": shard_frames, "episode_frames": episode_frames,
               "rig": {"camera": {"width": width, "height": height}, "cameras": _camera_list(cameras) if cameras is not None else None},
               "randomization": {"level": randomize}, "noise": {"steering_std": noise}}
    given = _given(options)
    _check_folder_option(out, "--out")
    outputs.check_output_folder(out, "--out", outputs.RECORDING)
    # A recording's stored config (manifest.json "config") works as --config: its digests are not fields.
    run = load_json(GenerateConfig, config, ignore=DIGEST_KEYS, overrides=given) if config else from_dict(GenerateConfig, given)
    with _say_on_interrupt(lambda: RESUMABLE):
        result = generate(run, out, workers=workers, force=force, progress=sys.stderr.isatty())
    reused = f" ({result.reused_shards} kept from an earlier run)" if result.reused_shards else ""
    rate = f"; {result.frames_per_second:.0f} frames/s" if result.made_frames else ""
    shards = f"{counted(result.shards, 'shard')}, {result.size / 1e6:,.1f} MB"
    typer.echo(f"wrote {counted(result.frames, 'frame')} in {shards} to {result.folder}{reused}{rate}")
    if result.kept_versions:
        from drivesim import __version__

        older = ", ".join(f"{count} by drivesim {version}" for version, count in sorted(result.kept_versions.items()))
        typer.echo(f"drivesim: note: kept shards written by another version ({older}; this is {__version__}): their bytes can differ "
                   "from a fresh run's; --force makes them all again", err=True)


@app.command("inspect")
def inspect_command(
    recording: Path = typer.Argument(..., metavar="RECORDING", help="Recording folder."),
    out: Path | None = typer.Option(None, "--out", help="Folder for contact-sheet.png and histograms.png (default: the recording folder)."),
    samples: int = typer.Option(24, "--samples", min=1, help="Frames on the contact sheet."),
    camera: str = typer.Option("center", "--camera", help="Camera shown on the contact sheet (its labels are the car's: side cameras without the training side correction)."),
    verify: bool = typer.Option(False, "--verify", help="Also check every shard's SHA-256 against the manifest, every label against the schema, and decode every image (HDF5's checksums). Without it, only what is read is checked (the frames sampled), so a damaged frame elsewhere goes unnoticed."),
) -> None:
    """Summarize a recording: counts, label histograms, events, and a contact sheet of frames with their labels."""
    from drivesim.record import (
        contact_sheet,
        format_summary,
        open_recording,
        plot_histograms,
        summarize_recording,
        verify_recording,
    )

    # The arguments are checked before any work, so a mistake does not come after a printed summary.
    cameras = open_recording(recording).manifest.cameras
    if camera not in cameras:
        raise DrivesimError(f"--camera {camera!r} is not in {recording}; it has {', '.join(sorted(cameras))}")
    folder = out or recording
    try:
        _check_folder_option(folder, "--out")
    except DrivesimError:
        if out is None:  # a recording on a read-only share: the pictures must go elsewhere
            raise DrivesimError(f"{recording} is not writable, and the pictures go into the recording unless --out names another folder") from None
        raise
    if verify:
        verify_recording(recording)
    summary = summarize_recording(recording)
    typer.echo(format_summary(summary))
    folder.mkdir(parents=True, exist_ok=True)
    contact_sheet(recording, folder / "contact-sheet.png", n=samples, camera=camera)
    plot_histograms(summary, folder / "histograms.png")
    typer.echo(f"wrote {folder / 'contact-sheet.png'} and {folder / 'histograms.png'}" + ("; all checksums match" if verify else ""))


@app.command("train")
def train_command(
    data: list[Path] | None = typer.Option(None, "--data", metavar="RECORDING", help="Recording folder to train on; repeat --data for several (e.g. --data a --data b)."),
    out: Path = typer.Option(..., "--out", help="Output folder, e.g. models/NAME: model.safetensors, train-log.json, loss.png."),
    model: str | None = typer.Option(None, "--model", help="pilotnet (Bojarski et al. 2016, ~250k parameters) or small (fast) [default pilotnet]."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Passes over the training frames [default 10]."),
    batch: int | None = typer.Option(None, "--batch", min=1, help="Frames per optimisation step [default 64]."),
    val: list[Path] | None = typer.Option(None, "--val", metavar="RECORDING", help="Validation recording (repeat --val for several), best from other tracks; default: the last 10% of the training frames, whose tracks training has seen, so that loss is optimistic."),
    seed: int | None = typer.Option(None, "--seed", min=0, max=MAX_TORCH_SEED, help="Seeds weights, shuffling and augmentation [default 0]."),
    lr: float | None = typer.Option(None, "--lr", parser=_number(0, above=True), help="Peak learning rate [default 0.001]."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader worker processes (0: read in the training process) [default: 2 on the CPU; beside a GPU one per core, up to 8]."),
    cameras: str | None = typer.Option(None, "--cameras", help="Cameras to train on: center, or center,left,right (side frames get a steering correction) [default center]."),
    correction: float | None = typer.Option(None, "--side-correction", parser=_number(0, 0.5), help="Steering correction for left/right camera frames, 0 to 0.5 (normalized; 0.06, the default, is the expert's own answer to the rig's 0.8 m offset at 14 m/s)."),
    throttle: bool | None = typer.Option(None, "--throttle/--no-throttle", help="Also learn the expert's throttle [default: no]."),
    flip: bool | None = typer.Option(None, "--flip/--no-flip", help="Mirror half the frames (negating steering); off by default: on two-lane roads it teaches driving on the centre line."),
    no_augment: bool = typer.Option(False, "--no-augment", help="Train on the frames as recorded."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimisation steps (smoke tests)."),
    device: str | None = typer.Option(None, "--device", help="Where the network trains: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N [default auto]."),
    config: Path | None = typer.Option(None, "--config", help="TrainConfig JSON file naming the settings it changes (augment strengths, preprocessing crop and size, weight_decay, ... as well as the options'); the \"config\" section of a model's train-log.json is one (its max_steps and workers too). Options given here replace the file's values, lists included."),
    force: bool = typer.Option(False, "--force", help="Replace a model already in --out."),
) -> None:
    """Train a driving network on recordings (behavioural cloning)."""
    from drivesim.record import read_manifest

    if not data and config is None:
        raise DrivesimError("train needs --data RECORDING (repeat it for several), or a --config file that names data")
    _check_folder_option(out, "--out")
    outputs.check_output_folder(out, "--out", outputs.MODEL)
    check_not_being_written(out, "--out")
    if (out / WEIGHTS_FILE).exists() and not force:
        unfinished = "" if (out / "train-log.json").exists() else " from an interrupted run (it has no train-log.json)"
        raise DrivesimError(f"{out} already holds a model{unfinished}; use --force to replace it, or another --out")

    augment = {"flip": False, "brightness": 0, "contrast": 0, "shadow": 0} if no_augment else {"flip": flip}
    given = _given({
        "data": [str(d) for d in data] if data else None, "out": str(out), "val": [str(v) for v in val] if val else None,
        "model": {"architecture": model, "throttle_head": throttle}, "augment": {**augment, "side_camera_correction": correction},
        "cameras": _camera_list(cameras) if cameras is not None else None, "epochs": epochs, "batch": batch, "lr": lr,
        "workers": workers, "seed": seed, "max_steps": max_steps, "device": device,
    })  # fmt: skip
    run = load_json(TrainConfig, config, overrides=given) if config else from_dict(TrainConfig, given)
    for folder in (*run.data, *run.val):
        read_manifest(folder)  # a mistyped path is answered before torch loads; train checks the shards
    from drivesim.learn.train import train  # torch: only once the settings are known good

    with _say_on_interrupt(lambda: _what_training_left(out)):
        train(run, progress=sys.stderr.isatty(), log=typer.echo)


@app.command("eval")
def eval_command(
    model: str = typer.Option(..., "--model", help="Checkpoint folder or file (e.g. models/pilotnet-baseline), or 'expert'."),
    tracks: str | None = typer.Option(None, "--tracks", help="Track folder or file to drive [default tracks/holdout]."),
    laps: float | None = typer.Option(None, "--laps", parser=_number(MIN_LAPS, MAX_LAPS), help=f"Laps per track, {MIN_LAPS:g} to {MAX_LAPS} [default 2]."),
    randomize: str | None = typer.Option(None, "--randomize", help="Look of the world: none, light or full [default light]."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seeds each track's appearance [default 0]."),
    looks: int | None = typer.Option(None, "--looks", min=1, help="Drive each track in this many appearances (seeds seed..seed+looks-1); one look decides much of a track's score [default 1]."),
    record: Path | None = typer.Option(None, "--record", help="Also record every frame (expert labels, interventions) as a recording folder."),
    report: Path | None = typer.Option(None, "--report", help="Folder for metrics.json, metrics.md and pictures; a report already there is replaced (its pictures too, nothing else)."),
    interventions: bool | None = typer.Option(None, "--interventions/--no-interventions", help="Expert takeover; without it each track ends at the first crash (distance to first failure) [default: takeover]."),
    config_file: Path | None = typer.Option(None, "--config", help="EvalConfig JSON file naming the settings it changes, e.g. {\"interventions\": {\"max_lateral_offset\": 1.0}} (docs/metrics.md); options given here override it."),
    reference: bool = typer.Option(True, "--reference/--no-reference", help="Also evaluate the expert the same way, as the reference row."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes sharing the runs, each driving its share in lock-step [default: the cores this process may use, CPU quota included]; the same value on the same machine gives the same result."),
) -> None:
    """Closed-loop evaluation: the network drives, the expert watches and takes over when needed."""
    from drivesim.drivers import ExpertDriver
    from drivesim.evaluate import EvalConfig, check_new_recording_folder, evaluate
    from drivesim.report import markdown_table, write_report
    from drivesim.track import load_tracks

    if randomize is not None and randomize not in ("none", "light", "full"):
        raise DrivesimError(f"--randomize must be none, light or full, got {randomize!r}")
    _check_folder_option(report, "--report")
    _check_folder_option(record, "--record")
    # Without takeover a track ends at its first crash: the two settings go together.
    takeover = {} if interventions is None else {"interventions": {"enabled": interventions}, "end_on_crash": not interventions}
    given = _given({"tracks": tracks, "laps": laps, "seed": seed, "looks": looks, "randomization": {"level": randomize}, **takeover})
    config = load_json(EvalConfig, config_file, overrides=given) if config_file else from_dict(EvalConfig, given)
    load_tracks(config.tracks)  # a mistyped --tracks or a full --record folder is answered before the network loads
    if record is not None:
        check_not_being_written(record, "--record")
        check_new_recording_folder(record)
    if model == "expert":
        driver, name = ExpertDriver(config.expert), "expert"
    else:
        from drivesim.drivers.policy import PolicyDriver, rig_seen_by

        driver, name = PolicyDriver(model), model
        # The network is fed the camera it was trained through; a config file's rig.camera fields (a robustness
        # test: another lens, another mounting) change that camera, not the default one.
        trained = rig_seen_by(driver, config.rig).camera
        changes = _camera_in(config_file)
        camera = trained if changes is None else from_dict(CameraConfig, changes, f"{config_file}: rig.camera", base=trained)
        if camera != config.rig.camera:
            config = replace(config, rig=replace(config.rig, camera=camera))
            typer.echo(f"rendering with the camera {model} was trained through: {camera.describe()}", err=True)
        if camera != trained:
            typer.echo(f"warning: {model} was trained through another camera; {config_file} changes {trained.differences(camera)}", err=True)
    progress = sys.stderr.isatty()
    workers = workers or usable_cores()
    with _say_on_interrupt(lambda: _what_evaluation_left(record)):
        results = [evaluate(driver, config, record=record, name=name, progress=progress, workers=workers)]
        if reference and model != "expert":
            results.append(evaluate(ExpertDriver(config.expert), config, name="expert (reference)", progress=progress, workers=workers))
    rows = []
    for result in results:
        rows.append((result.driver, result.overall))
        rows += [(f"{result.driver}: {lanes}-lane tracks", metrics) for lanes, metrics in result.by_lanes.items()]
    typer.echo(markdown_table(rows))
    if report is not None:
        with _say_on_interrupt(lambda: _what_evaluation_left(record)):
            written = write_report(results, report)
        typer.echo(f"wrote {written}")


@app.command("dagger")
def dagger_command(
    out: Path = typer.Option(..., "--out", help="Experiment folder: data/, models/, eval/, dagger.md, dagger.png, dagger.json (the table's numbers) and dagger-config.json (the settings; give it as --config to resume or repeat)."),
    iterations: int | None = typer.Option(None, "--iterations", min=1, help="Iterations, counting iteration 0 (expert data only) [default 4]."),
    frames_per_iteration: int | None = typer.Option(None, "--frames-per-iteration", min=100, help="Frames collected per iteration [default 4000]."),
    tracks: str | None = typer.Option(None, "--tracks", help="Tracks driven for data: a folder, or random (a fresh track per shard) [default tracks/train]."),
    shard_frames: int | None = typer.Option(None, "--shard-frames", min=1, help="Frames per shard of collected data; with random tracks, one track per shard and a new look per 400-frame episode [default 1000]."),
    eval_tracks: str | None = typer.Option(None, "--eval-tracks", help="Held-out tracks every model is evaluated on [default tracks/holdout]."),
    eval_laps: float | None = typer.Option(None, "--eval-laps", parser=_number(MIN_LAPS, MAX_LAPS), help=f"Laps per held-out track per evaluation, {MIN_LAPS:g} to {MAX_LAPS} [default 1]."),
    model: str | None = typer.Option(None, "--model", help="pilotnet or small [default pilotnet]."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs of each training run [default 6]."),
    baselines: bool | None = typer.Option(None, "--baselines/--no-baselines", help="Also train behavioural-cloning baselines on the same total frames [default: yes]."),
    start_noise: float | None = typer.Option(None, "--start-noise", parser=_number(0, 1), help="DART steering noise of iteration 0's expert frames, 0 to 1 (0: the classic clean start; 0.1: where the noisy cloning baseline starts) [default 0]."),
    seed: int | None = typer.Option(None, "--seed", min=0, max=MAX_TORCH_SEED, help="Seeds data, training and evaluation [default 0]."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes for data generation and evaluation [default: the cores this process may use, CPU quota included]."),
    device: str | None = typer.Option(None, "--device", help="Where the networks train: auto (a CUDA GPU when torch sees one), cpu, cuda or cuda:N; driving always runs on the CPU [default auto]."),
    config: Path | None = typer.Option(None, "--config", help="DaggerConfig JSON file naming the settings it changes (batch, dart_noise, randomize, ... as well as the options'); an experiment's dagger-config.json repeats it. Options given here override it."),
) -> None:
    """DAgger with expert takeover: the network drives, its failures and the expert's recoveries become training data.

    Re-running the same command resumes: finished data, models and evaluations are kept.
    """
    from drivesim.dagger import SETTINGS_DIGESTS, DaggerConfig, dagger_table, run_dagger

    _check_folder_option(out, "--out")
    outputs.check_output_folder(out, "--out", outputs.DAGGER)
    given = _given({"out": str(out), "iterations": iterations, "frames_per_iteration": frames_per_iteration, "tracks": tracks,
                    "shard_frames": shard_frames, "eval_tracks": eval_tracks, "eval_laps": eval_laps, "model": model, "epochs": epochs,
                    "baselines": baselines, "start_noise": start_noise, "seed": seed, "workers": workers, "device": device})
    # An experiment's dagger-config.json repeats it; the track digests stored beside its settings are not settings.
    run = load_json(DaggerConfig, config, ignore=SETTINGS_DIGESTS, overrides=given) if config else from_dict(DaggerConfig, given)
    with _say_on_interrupt(lambda: RESUMABLE):
        summary = run_dagger(run, log=typer.echo)
    typer.echo(dagger_table(summary["rows"]))
    typer.echo(f"wrote {out / 'dagger.md'} and {out / 'dagger.png'}")


@app.command("play")
def play_command(
    track: Path | None = typer.Option(None, "--track", help="Track file to drive (default: a random track from --seed)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of the random track, the looks and the new tracks drawn with T [default 0]."),
    model: Path | None = typer.Option(None, "--model", help="Network checkpoint that drives (N toggles it; steering takes the wheel: an intervention)."),
    record: Path | None = typer.Option(None, "--record", help="Record into this new folder from the start (R pauses); without it R records into recordings/play-<time>."),
    randomize: str = typer.Option("light", "--randomize", help="Starting look: none, light or full (L cycles)."),
    size: str = typer.Option("800x600", "--size", help="Window size WxH; the camera is rendered at this size."),
    driver: str | None = typer.Option(None, "--driver", help="Who drives first: human, autopilot or network [default: network with --model, else human]."),
    max_fps: int = typer.Option(60, "--max-fps", min=0, help="Frame-rate cap; 0 = as fast as possible."),
    frames: int | None = typer.Option(None, "--frames", min=1, help="Quit after this many window frames (demos, benchmarks)."),
    screenshot: Path | None = typer.Option(None, "--screenshot", help="Save the window as this PNG when it closes."),
) -> None:
    """Interactive window: drive with keys or a gamepad, watch the autopilot or a network, take the wheel, record.

    Keys: arrows/WASD drive, P autopilot, N network, R record, Backspace reset,
    T new track, L randomization, C camera, Space pause, H help, Esc quit.
    """
    from drivesim.app import App, Mode, PlayConfig

    if track is not None and seed is not None:
        raise DrivesimError("give --track or --seed, not both")
    from drivesim.track import is_track_file
    from drivesim.track.io import bundled_if_missing  # tracks/holdout/... is found from any folder, as --tracks is

    if track is not None and bundled_if_missing(track).is_dir():
        example = next((track / path.name for path in sorted(bundled_if_missing(track).glob("*.json")) if is_track_file(path)), None)
        raise DrivesimError(f"--track takes one track file, and {track} is a folder" + (f": e.g. --track {example}" if example else ""))
    if randomize not in ("none", "light", "full"):
        raise DrivesimError(f"--randomize must be none, light or full, got {randomize!r}")
    modes = {"human": Mode.HUMAN, "autopilot": Mode.AUTOPILOT, "network": Mode.NETWORK}
    if driver is not None and driver not in modes:
        raise DrivesimError(f"--driver must be human, autopilot or network, got {driver!r}")
    if driver == "network" and model is None:
        raise DrivesimError("--driver network needs --model")
    if screenshot is not None:
        _check_png(screenshot, "--screenshot")  # before the session, not after it
    if record is not None:
        outputs.check_output_folder(record, "--record", outputs.RECORDING)
    config = PlayConfig(
        size=_window_size(size),
        track=str(track) if track is not None else None,
        seed=seed if seed is not None else 0,
        model=str(model) if model is not None else None,
        record=str(record) if record is not None else None,
        randomization=randomize,
        driver=modes[driver] if driver is not None else None,
        max_fps=max_fps,
    )
    window = App(config, log=typer.echo)
    stats = window.run(max_frames=frames, screenshot=screenshot)
    session = window.session
    summary = f"{stats.frames} frames, {stats.fps:.1f} frames/s (uncapped {stats.uncapped_fps:.0f}), {stats.steps} simulation steps"
    if session.recorder is not None and session.recorder.shards:
        summary += f"; recorded {counted(session.recorder.frames, 'frame')} in {counted(len(session.recorder.shards), 'shard')} to {session.recorder.folder}"
    elif record is not None:
        summary += f"; recorded no frames (no simulation step ran), so nothing was written to {record}"
    if screenshot is not None:
        summary += f"; saved {screenshot}"
    typer.echo(summary)


def _window_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise DrivesimError(f"--size must look like 800x600, got {text!r}")
    width, height = int(parts[0]), int(parts[1])
    if not (320 <= width <= 3840 and 240 <= height <= 2160):
        raise DrivesimError(f"--size must be between 320x240 and 3840x2160, got {text!r}")
    return width, height


def _given(options: dict) -> dict:
    """The options a user gave: those not None, in nested sections left out where empty."""
    given = {}
    for key, value in options.items():
        value = _given(value) if isinstance(value, dict) else value
        if value is not None and value != {}:
            given[key] = list(value) if isinstance(value, tuple) else value
    return given


def _camera_in(config_file: Path | None) -> dict | None:
    """The rig.camera section of a (valid, already loaded) config file, or None where it sets none."""
    rig = read_json(config_file).get("rig") if config_file is not None else None
    return rig.get("camera") if isinstance(rig, dict) else None


def _holds_track(path: Path, data: dict) -> bool:
    """`path` is a track file with the same content as `data` (so rewriting it changes nothing)."""
    import json

    try:
        return json.loads(path.read_text()) == json.loads(json.dumps(data))
    except (OSError, ValueError):
        return False


def _camera_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    check_camera_names(names, "--cameras")
    return names


RESUMABLE = "interrupted; finished parts are kept, and the same command resumes from them"


@contextlib.contextmanager
def _say_on_interrupt(left_behind: Callable[[], str]) -> Iterator[None]:
    """Say what Ctrl-C left behind: typer turns KeyboardInterrupt into exit status 130 without a word,
    so `main` never sees it."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(f"\ndrivesim: {_signal_name()}{left_behind()}", err=True)
        _interrupt_said.append(True)
        raise


def _what_evaluation_left(record: Path | None) -> str:
    from drivesim.record.manifest import MANIFEST_NAME

    if record is not None and (record / MANIFEST_NAME).exists():  # stopped in the expert's reference run
        return f"interrupted; the recording in {record} is complete, and no report was written"
    return "interrupted; no recording or report was written"


def _what_training_left(out: Path) -> str:
    if not (out / WEIGHTS_FILE).exists():
        return "interrupted; no model was written"
    if (out / "train-log.json").exists():  # --force over a finished model, stopped before the new run's first save
        return f"interrupted before the first epoch's end; {out} keeps its earlier model"
    return (f"interrupted; {out / WEIGHTS_FILE} holds the best epoch so far, but with no train-log.json it is not a "
            "finished run (--force trains again)")


def _check_png(path: Path, option: str) -> None:
    """`path` names a PNG file this run can write: checked before the drawing, not after it."""
    if path.suffix.lower() != ".png":
        raise DrivesimError(f"{option} must name a .png file, got {str(path)!r}")
    if path.is_dir():
        raise DrivesimError(f"{option}: {path} is a folder, where a .png file must be")
    _check_folder_option(path.parent, option)


def _check_folder_option(folder: Path | None, option: str) -> None:
    """`folder` is a folder this run can write, or a path where one can be made: not a file, nor below one.
    Checked before any work, so that the mistake is not found after it."""
    if folder is None:
        return
    for path in (folder, *folder.absolute().parents):
        if path.is_symlink() and not path.exists():  # mkdir would fail there, after all the work: "File exists"
            try:
                path.stat()
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise DrivesimError(f"{option}: {path} is a link in a loop of links") from None
            raise DrivesimError(f"{option}: {path} is a link to {os.readlink(path)}, which does not exist")
        if path.exists():
            existing = path
            break
    if not existing.is_dir():
        raise DrivesimError(f"{option}: {existing} is a file, where a folder must be")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DrivesimError(f"{option}: the folder {str(existing)!r} is not writable")


def _user_message(error: Exception) -> str:
    """The error's own message; for one raised in a DataLoader worker, torch's wrapper (worker number and
    traceback) is peeled off, leaving the last line's message."""
    text = str(error)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


_stopped_by: list[int] = []
"""The termination signal (SIGTERM, SIGHUP) that stopped this run, if one did."""
_interrupt_said: list[bool] = []
"""Whether `_say_on_interrupt` has said what an interrupt left behind."""


def _stop_as_on_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM or SIGHUP (kill, timeout, a batch scheduler, a closed ssh session) stops a run as Ctrl-C does:
    the same clean-up and the same words, then exit status 128 + the signal. Those that follow are ignored
    while it cleans up: `timeout` and schedulers signal the process and then its whole group, and a
    closed terminal sends SIGHUP and then SIGTERM. (SIGKILL still ends it at once.)"""
    _stopped_by.append(signum)
    for other in TERMINATION_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def resend_interrupt_lost_in_a_finalizer(unraisable: Any) -> None:
    """`sys.unraisablehook`: Ctrl-C that lands in a finalizer (a `__del__`, a weakref callback, run by the
    garbage collector at any moment) raises KeyboardInterrupt there, where Python only prints it, and the
    run went on as if Ctrl-C had not been pressed. It is raised again a moment later, from another thread
    (raised from here, it would land in this hook, and be lost again), to land in the run itself."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # interrupt_main does nothing while Python does not handle SIGINT (ignored by `drivesim ... &` from a
        # script), and a SIGTERM would then be lost for good: its handler ignores the ones that follow. The
        # interrupt comes from a signal handler, so this runs in the main thread, which alone may set a handler.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(0.001, _thread.interrupt_main).start()
    else:
        sys.__unraisablehook__(unraisable)


def _signal_name() -> str:
    return f"{signal.Signals(_stopped_by[0]).name}: " if _stopped_by else ""


def _interrupted_status() -> int:
    return 128 + _stopped_by[0] if _stopped_by else 130


def _refuse_empty_arguments(arguments: list[str]) -> None:
    """No drivesim option or argument means anything when empty, and `--out "$OUT"` with OUT unset would
    otherwise be Path(""), the current folder: a model or report written among the user's files."""
    for i, argument in enumerate(arguments):
        option, equals, value = argument.partition("=")
        if argument.startswith("--") and equals and not value:
            raise DrivesimError(f"{option} is empty (an unset shell variable?)")
        if argument == "":
            raise DrivesimError(f"an empty argument after {arguments[i - 1] if i > 0 else 'drivesim'!r} (an unset shell variable?)")


def _usage_message(error: click_exceptions.UsageError, arguments: list[str]) -> str:
    """Click's message for a usage error, in the lower case of drivesim's own, and where the options are listed."""
    message = error.format_message().rstrip(".")
    # "Invalid value for '--frames': Input should be ...", "No such option: ...": each part starts in lower case.
    message = re.sub(r"(^|': )([A-Z])(?=[a-z])", lambda part: part[1] + part[2].lower(), message, count=2)
    return f"{message}; see {error.ctx.command_path if error.ctx is not None else _command_path(arguments)} -h"


def _command_path(arguments: list[str]) -> str:
    """"drivesim tracks generate" for arguments that begin with those commands: for a usage error that click
    raises before it knows the command (an option missing its value)."""
    command, path = typer.main.get_command(app), ["drivesim"]
    for word in arguments:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        path.append(word)
    return " ".join(path)


def main() -> None:
    """Console-script entry point: run the app, report user errors in one line."""
    for signum in TERMINATION_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:  # nohup's ignored SIGHUP stays ignored
            signal.signal(signum, _stop_as_on_ctrl_c)
    sys.unraisablehook = resend_interrupt_lost_in_a_finalizer
    try:
        _refuse_empty_arguments(sys.argv[1:])
        # Not standalone: typer returns the exit status and raises usage errors instead of printing them
        # as four lines (usage, hint, blank, error), so they can be one line like every other mistake.
        status = app(standalone_mode=False, prog_name="drivesim")  # also under python -m drivesim.cli
    except _NO_ARGS_IS_HELP as error:  # `drivesim` or `drivesim tracks` alone: the help
        error.show()
        sys.exit(error.exit_code)
    except click_exceptions.UsageError as error:  # an unknown option, a missing one, a malformed value
        typer.echo(f"drivesim: error: {_usage_message(error, sys.argv[1:])}", err=True)
        sys.exit(2)
    except _ABORTED:  # end of input (EOFError) in a command, which click calls aborted
        typer.echo("drivesim: aborted", err=True)
        sys.exit(1)
    except DrivesimError as error:
        typer.echo(f"drivesim: error: {_user_message(error)}", err=True)
        sys.exit(2)
    except OSError as error:  # unreadable/unwritable paths given by the user
        where = f"{error.filename}: " if error.filename else ""
        typer.echo(f"drivesim: error: {where}{error.strerror or _user_message(error)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo(f"drivesim: {_signal_name()}interrupted", err=True)
        sys.exit(_interrupted_status())
    if status == 130:  # typer's status for KeyboardInterrupt, which it gives without a word
        if not _interrupt_said:  # Ctrl-C before a command's work began (its imports), or in play or inspect
            typer.echo(f"drivesim: {_signal_name()}interrupted", err=True)
        sys.exit(_interrupted_status())
    sys.exit(status if isinstance(status, int) else 0)  # a command returns None; --help and --version 0


if __name__ == "__main__":
    main()
