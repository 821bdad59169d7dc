"""Check that the expert drives two clean laps of every bundled track.

    python scripts/check_expert.py [--tracks tracks] [--laps 2] [--out docs/expert-laps.md]

Prints (and writes) a Markdown table per track: laps, off-road frames,
largest lane offset, mean speed. Exits 1 if any track saw an off-road frame
or a crash.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from drivesim.config import EpisodeConfig
from drivesim.drivers import ExpertDriver
from drivesim.errors import DrivesimError
from drivesim.loop import run_episode
from drivesim.sim import World
from drivesim.track import load_tracks

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=Path, default=REPO / "tracks", help="a track file or folder, or a folder of split folders (default: the repository's tracks/)")
    parser.add_argument("--laps", type=float, default=2.0, help="laps driven on each track (default: 2)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    if not args.laps > 0:
        parser.error("--laps must be above 0")
    try:
        return check(args)
    except (DrivesimError, OSError) as error:  # missing tracks, an unwritable --out: one line, exit 2 (1 means a failed lap)
        print(f"check_expert.py: error: {error}", file=sys.stderr)
        return 2


def check(args: argparse.Namespace) -> int:
    folders = (sorted(p for p in args.tracks.iterdir() if p.is_dir()) or [args.tracks]) if args.tracks.is_dir() else [args.tracks]
    lines = [
        "| track | length [m] | width [m] | lanes | laps | off-road frames | max lane offset [m] | mean speed [m/s] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    failures, speeds, started = 0, [], time.perf_counter()
    for folder in folders:
        for track in load_tracks(folder):
            world = World(track)
            expert = ExpertDriver()
            result = run_episode(world, expert, expert, EpisodeConfig(laps=args.laps, max_steps=200_000))
            ok = result.off_road_steps == 0 and not result.crashed and result.laps >= int(args.laps)
            failures += not ok
            speeds.append(result.mean_speed)
            lines.append(
                f"| {track.name} | {track.length:.0f} | {track.width:g} | {track.lanes} | {result.laps} | "
                f"{result.off_road_steps} | {result.max_abs_lateral_offset:.2f} | {result.mean_speed:.1f} |" + ("" if ok else " FAIL")
            )
    summary = (
        f"\n{len(speeds)} tracks, {len(speeds) - failures} clean; mean speed over tracks "
        f"{sum(speeds) / len(speeds):.1f} m/s ({3.6 * sum(speeds) / len(speeds):.0f} km/h); "
        f"checked in {time.perf_counter() - started:.0f} s"
    )
    table = "\n".join(lines) + "\n" + summary + "\n"
    print(table)
    if args.out:
        args.out.write_text("# Expert laps on the bundled tracks\n\nMade by `python scripts/check_expert.py --out docs/expert-laps.md`.\n\n" + table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
