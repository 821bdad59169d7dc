"""Regenerate the bundled tracks in tracks/train, tracks/val and tracks/holdout.

    python scripts/make_bundled_tracks.py [--out tracks]   # about 2 s

The files it makes (`train-000.json` ...) replace the ones of the same
names; it refuses to run over a split folder holding other JSON files.

Each split draws its track configs (length, width, lanes, curviness) from
its own seeded generator and uses its own range of track seeds, so the
splits never share a track. Holdout tracks are for evaluation only: nothing
shipped is ever trained on them. Also writes docs/tracks-preview.png.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from drivesim.config import TrackConfig
from drivesim.render.topdown import preview_tracks
from drivesim.track import generate_track, save_track
from drivesim.track.generator import random_track_config

SPLITS = {"train": (20, 1000), "val": (5, 2000), "holdout": (10, 3000)}
"""split -> (number of tracks, first seed)."""
BUNDLED_WIDTHS = {1: (6.0, 9.0), 2: (8.0, 12.0)}
"""Width ranges the bundled tracks were drawn with [m]; kept so this script reproduces them.
(`--tracks random` now uses the wider, overlapping drivesim.track.generator.RANDOM_WIDTHS.)"""


def split_configs(count: int, first_seed: int) -> list[TrackConfig]:
    rng = np.random.default_rng(first_seed)
    return [random_track_config(rng, BUNDLED_WIDTHS) for _ in range(count)]


REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tracks", help="root folder of the splits (default: the repository's tracks/)")
    parser.add_argument("--preview", type=Path, default=None,
                        help="preview PNG of a few tracks (default: the repository's docs/tracks-preview.png with the default --out, "
                             "else tracks-preview.png in --out)")
    args = parser.parse_args()
    if args.preview is None:  # a run into another folder must not overwrite the repository's picture
        args.preview = REPO / "docs" / "tracks-preview.png" if args.out.resolve() == (REPO / "tracks").resolve() else args.out / "tracks-preview.png"
    if args.preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        sys.exit(f"make_bundled_tracks.py: error: --preview must end in .png or .jpg, got {args.preview}")
    # Only this script's own files are replaced: anything else in a split folder is someone's work.
    for split in SPLITS:
        folder = args.out / split
        if folder.exists() and not folder.is_dir():
            sys.exit(f"make_bundled_tracks.py: error: {folder} is a file, not a folder")
        own = re.compile(rf"{split}-\d{{3}}\.json")
        others = sorted(p.name for p in folder.glob("*.json") if not own.fullmatch(p.name)) if folder.is_dir() else []
        if others:
            sys.exit(f"make_bundled_tracks.py: error: {folder} holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}, "
                     "which this script did not make; move them or give another --out")
    shown = []
    args.out.mkdir(parents=True, exist_ok=True)
    for split, (count, first_seed) in SPLITS.items():
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{split}-[0-9][0-9][0-9].json"):
            old.unlink()
        for i, config in enumerate(split_configs(count, first_seed)):
            track = generate_track(first_seed + i, config)
            track.name = f"{split}-{i:03d}"
            save_track(track, folder / f"{track.name}.json")
            if i < 4 and split != "holdout":
                shown.append(track)
        print(f"{split}: {count} tracks in {folder}")
    preview_tracks(shown[:8], args.preview, columns=4)
    print(f"preview: {args.preview}")


if __name__ == "__main__":
    main()
