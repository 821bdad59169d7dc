"""Track pools of one-lane roads only, for DAgger experiments without the lane-count question.

On `tracks/holdout` most interventions of networks trained on 16,000 frames
come from choosing between keeping right (two-lane roads) and driving down
the middle (one-lane roads) (docs/dagger.md). These pools take that choice
away, so an experiment measures what closed-loop data does for steering.
Each track is drawn as `drivesim generate --tracks random` draws one, with
one lane and a width of 6-10 m:

    python scripts/make_one_lane_tracks.py                 # recordings/one-lane/{train,holdout,holdout-extra}

- train/: 200 tracks (seeds 20000-20199);
- holdout/: copies of the four one-lane tracks of tracks/holdout;
- holdout-extra/: 16 more unseen tracks (seeds 30000-30015), about 31 km a lap.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from arguments import at_least

from drivesim.errors import DrivesimError
from drivesim.track import load_track, save_track
from drivesim.track.generator import generate_track, random_track_config

REPO = Path(__file__).resolve().parents[1]
ONE_LANE_WIDTHS = (6.0, 10.0)
"""Road widths of the pools [m]: random_track_config's range for one-lane roads."""


def one_lane_tracks(folder: Path, count: int, first_seed: int, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        seed = first_seed + k
        config = replace(random_track_config(rng), lanes=1)
        config = replace(config, width=float(np.round(rng.uniform(*ONE_LANE_WIDTHS), 1)))
        config = replace(config, min_radius=max(20.0, config.width * 2.5))
        save_track(generate_track(seed, config), folder / f"track-{seed:05d}.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "recordings" / "one-lane", help="folder for train/, holdout/ and holdout-extra/ (default: recordings/one-lane)")
    parser.add_argument("--train", type=at_least(1), default=200, help="tracks in train/ (default: 200)")
    parser.add_argument("--extra", type=at_least(1), default=16, help="tracks in holdout-extra/ (default: 16)")
    args = parser.parse_args()
    for part in ("train", "holdout", "holdout-extra"):
        if (args.out / part).exists() and any((args.out / part).iterdir()):
            raise DrivesimError(f"{args.out / part} is not empty; choose another --out")
    one_lane_tracks(args.out / "train", args.train, 20_000, np.random.default_rng(2026))
    holdout = args.out / "holdout"
    holdout.mkdir(parents=True)
    for path in sorted((REPO / "tracks" / "holdout").glob("*.json")):
        if load_track(path).lanes == 1:
            shutil.copy(path, holdout)
    one_lane_tracks(args.out / "holdout-extra", args.extra, 30_000, np.random.default_rng(3026))
    print(f"wrote {args.train} + {args.extra} one-lane tracks and the one-lane held-out tracks to {args.out}")


if __name__ == "__main__":
    try:
        main()
    except DrivesimError as error:
        sys.exit(f"make_one_lane_tracks.py: error: {error}")
