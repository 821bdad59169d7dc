"""Procedural closed-loop tracks: generation, geometry queries, JSON files."""

from drivesim.track.generator import (
    RANDOM_TRACK_SEEDS,
    TrackGenerationError,
    generate_track,
    random_track_config,
    validate_track,
)
from drivesim.track.geometry import Pose, Projection, Track, TrackError, wrap_angle
from drivesim.track.io import is_track_file, load_track, load_tracks, save_track, track_files, track_set_sha256

__all__ = [
    "RANDOM_TRACK_SEEDS",
    "Pose",
    "Projection",
    "Track",
    "TrackError",
    "TrackGenerationError",
    "generate_track",
    "is_track_file",
    "load_track",
    "load_tracks",
    "random_track_config",
    "save_track",
    "track_files",
    "track_set_sha256",
    "validate_track",
    "wrap_angle",
]
