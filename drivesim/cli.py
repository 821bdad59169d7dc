"""The `drivesim` command line.

Every sub-command turns a user mistake (bad argument, bad file, bad config)
into one line on stderr and exit status 2; see `drivesim.errors`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from drivesim.config import TrackConfig, from_dict, load_json, to_dict
from drivesim.errors import DrivesimError

app = typer.Typer(
    help="drivesim: labeled camera/steering data for end-to-end driving networks, and closed-loop tests of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
tracks_app = typer.Typer(help="Generate and preview procedural tracks.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(tracks_app, name="tracks")


@tracks_app.command("generate")
def tracks_generate(
    out: Path = typer.Option(..., "--out", help="Folder to write track files (track-SEED.json) into."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first track; the others use seed+1, seed+2, ..."),
    count: int = typer.Option(1, "--count", min=1, help="Number of tracks."),
    length: float | None = typer.Option(None, help="Approximate length [m] (default 1200)."),
    width: float | None = typer.Option(None, help="Road width [m] (default 8)."),
    lanes: int | None = typer.Option(None, help="1 or 2 lanes (default 1)."),
    curviness: float | None = typer.Option(None, help="0 (near-circle) to 1 (many bends) (default 0.5)."),
    min_radius: float | None = typer.Option(None, "--min-radius", help="Tightest bend radius [m] (default 20)."),
    config: Path | None = typer.Option(None, "--config", help="TrackConfig JSON file; options given here override it."),
) -> None:
    """Generate tracks from seeds and save them as JSON."""
    from tqdm import tqdm

    from drivesim.track import generate_track, save_track

    base = to_dict(load_json(TrackConfig, config)) if config else {}
    overrides = {"length": length, "width": width, "lanes": lanes, "curviness": curviness, "min_radius": min_radius}
    track_config = from_dict(TrackConfig, base | {k: v for k, v in overrides.items() if v is not None})
    for s in tqdm(range(seed, seed + count), desc="tracks", unit="track", disable=count < 2):
        track = generate_track(s, track_config)
        path = save_track(track, out / f"track-{s:05d}.json")
        if count < 2:
            typer.echo(f"{path}: {track.length:.0f} m, {track.width:g} m wide, {track.lanes} lane(s)")
    if count >= 2:
        typer.echo(f"wrote {count} tracks to {out}")


@tracks_app.command("preview")
def tracks_preview(
    files: list[Path] = typer.Argument(..., help="Track files or folders of track files."),
    out: Path = typer.Option(..., "--out", help="PNG to write."),
    columns: int | None = typer.Option(None, help="Tiles per row (default: up to 4)."),
) -> None:
    """Draw tracks from above, with the start line (red) and driving direction (arrow)."""
    from drivesim.render.topdown import preview_tracks
    from drivesim.track import load_tracks

    tracks = [track for source in files for track in load_tracks(source)]
    preview_tracks(tracks, out, columns=columns)
    typer.echo(f"wrote {out} ({len(tracks)} track(s))")


def main() -> None:
    """Console-script entry point: run the app, report user errors in one line."""
    try:
        app()
    except DrivesimError as error:
        typer.echo(f"drivesim: error: {error}", err=True)
        sys.exit(2)
    except OSError as error:  # unreadable/unwritable paths given by the user
        typer.echo(f"drivesim: error: {error.filename or ''}: {error.strerror or error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("drivesim: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
