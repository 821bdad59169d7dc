import dataclasses

import numpy as np
import pytest

from drivesim.config import TrackConfig
from drivesim.render import Scene, build_scene
from drivesim.track import generate_track


@pytest.fixture(scope="session")
def two_lane_scene() -> Scene:
    return build_scene(generate_track(11, TrackConfig(length=600.0, lanes=2, width=8.0)))


@pytest.fixture(scope="session")
def one_lane_scene() -> Scene:
    return build_scene(generate_track(5, TrackConfig(length=500.0, lanes=1, width=7.0, curviness=0.2)))


@pytest.fixture(scope="session")
def without_billboards():
    """Function: the scene's ground and sky with no roadside objects, so nothing hides the road."""
    return _without_billboards


@pytest.fixture(scope="session")
def straightest_s():
    """Function: progress [m] where the next `ahead` metres of a scene's road bend least."""
    return _straightest_s


def _without_billboards(scene: Scene) -> Scene:
    """The same ground and sky with no roadside objects, so nothing hides the road in pixel checks."""
    empty = dataclasses.replace(
        scene.billboards,
        position=scene.billboards.position[:0],
        height=scene.billboards.height[:0],
        sprite=scene.billboards.sprite[:0],
        aspect=scene.billboards.aspect[:0],
        draw_distance=scene.billboards.draw_distance[:0],
    )
    return dataclasses.replace(scene, billboards=empty, cache={})


def _straightest_s(scene: Scene, ahead: float = 40.0) -> float:
    """Progress [m] where the next `ahead` metres of road bend least."""
    track = scene.track
    window = int(ahead / (track.length / len(track.s)))
    bend = np.abs(track.curvature)
    total = np.convolve(np.concatenate([bend, bend[:window]]), np.ones(window), mode="valid")[: len(bend)]
    return float(track.s[int(np.argmin(total))])
