"""The rendered frame shows road, paint, verge and grass exactly where the camera model says they are."""

import numpy as np
import pytest

from drivesim.config import CameraConfig
from drivesim.render import REFERENCE, camera_pose, horizon_row, project_points, render_view
from drivesim.render.look import EDGE_INSET
from drivesim.sim.car import CarState

CAMERA = CameraConfig(width=320, height=240)


def classify(pixel: np.ndarray) -> str:
    """Material of a pixel of the reference look, from its brightness and tint.

    Surfaces vary in brightness (texture, patches), not in kind, so the test
    goes by tint: asphalt and paint are neutral grey (paint much brighter),
    the verge is brown (red over blue), grass green, sky blue.
    """
    red, green, blue = (int(c) for c in pixel)
    chroma = max(red, green, blue) - min(red, green, blue)
    if chroma < 16:
        return "paint" if (red + green + blue) / 3 > 150 else "asphalt"
    if green > red + 5 and green > blue + 25:
        return "grass"
    if red > blue + 20 and red + 5 >= green:
        return "verge"
    if blue > red + 20:
        return "sky"
    return "unclear"


@pytest.fixture(scope="module")
def view(two_lane_scene, without_billboards, straightest_s):
    scene = without_billboards(two_lane_scene)
    track = scene.track
    s0 = straightest_s(scene)
    # On the centreline, so that both edge lines are near enough to be several pixels wide.
    car_pose = track.pose_at(s0, 0.0)
    pose = camera_pose(CarState(float(car_pose.x), float(car_pose.y), float(car_pose.yaw), 0.0), CAMERA)
    frame = render_view(scene, CAMERA, pose, REFERENCE, np.random.default_rng(0))
    return scene, s0 + CAMERA.forward_offset, pose, frame


def pixels_of(scene, pose, s, offset):
    """Image pixels (rounded) of road points at progress `s` and lateral `offset` [m]."""
    points = scene.track.pose_at(np.asarray(s, float), np.asarray(offset, float))
    world = np.column_stack([points.x, points.y, np.zeros_like(points.x)])
    uv, depth = project_points(world, pose, CAMERA)
    assert np.all(depth > 0)
    pixels = np.rint(uv).astype(int)
    assert np.all((pixels >= 0) & (pixels < [CAMERA.width, CAMERA.height])), "test point outside the image"
    return pixels


def materials_at(frame, pixels):
    return [classify(frame[v, u]) for u, v in pixels]


def test_dashes_of_the_centre_line_are_paint_and_the_gaps_asphalt(view):
    scene, s_lens, pose, frame = view
    period = scene.dash_period  # dash centres are at whole multiples of the period
    near, far = s_lens + 4.0, s_lens + 4.0 + period
    centre = np.ceil(near / period) * period
    gap = np.ceil((near - period / 2) / period) * period + period / 2
    assert near <= centre < far and near <= gap < far
    assert materials_at(frame, pixels_of(scene, pose, [centre], 0.0)) == ["paint"]
    assert materials_at(frame, pixels_of(scene, pose, [gap], 0.0)) == ["asphalt"]
    # The dash is dash_length long: paint just inside its ends, asphalt just beyond.
    inside = centre + np.array([-0.4, 0.4]) * REFERENCE.dash_length
    outside = centre + np.array([-0.7, 0.7]) * REFERENCE.dash_length
    assert materials_at(frame, pixels_of(scene, pose, inside, 0.0)) == ["paint"] * 2
    assert materials_at(frame, pixels_of(scene, pose, outside, 0.0)) == ["asphalt"] * 2


def test_edge_lines_are_paint_on_both_sides(view):
    scene, s_lens, pose, frame = view
    edge = scene.track.width / 2 - EDGE_INSET - REFERENCE.line_width / 2
    s = s_lens + np.array([5.0, 7.0, 10.0])
    for side in (1.0, -1.0):
        assert materials_at(frame, pixels_of(scene, pose, s, side * edge)) == ["paint"] * 3


def test_lanes_are_asphalt(view):
    scene, s_lens, pose, frame = view
    quarter = scene.track.width / 4
    s = s_lens + np.array([3.0, 6.0, 12.0, 20.0])
    for side in (1.0, -1.0):
        assert materials_at(frame, pixels_of(scene, pose, s, side * quarter)) == ["asphalt"] * 4


def test_verges_and_grass_lie_beyond_the_edges(view):
    scene, s_lens, pose, frame = view
    half = scene.track.width / 2
    s = s_lens + np.array([6.0, 9.0])
    for side in (1.0, -1.0):
        verge = materials_at(frame, pixels_of(scene, pose, s, side * (half + REFERENCE.verge_width / 2)))
        assert verge == ["verge"] * 2
        grass_pixels = pixels_of(scene, pose, s + 4.0, side * (half + REFERENCE.verge_width + 2.5))
        assert materials_at(frame, grass_pixels) == ["grass"] * 2
        for u, v in grass_pixels:
            red, green, blue = frame[v, u].astype(int)
            assert green > red and green > blue


def test_sky_is_above_the_horizon(view):
    _, _, pose, frame = view
    horizon = horizon_row(CAMERA, pose.pitch)
    sky = frame[: int(horizon) - 8].reshape(-1, 3).astype(int)
    assert np.mean(sky[:, 2] > sky[:, 0]) > 0.9  # blue above red: sky (or white cloud, which ties)
    ground = frame[int(horizon) + 8 :].reshape(-1, 3).astype(int)
    assert np.mean(ground[:, 2] > ground[:, 0] + 20) < 0.05


def test_right_lane_view_is_not_mirrored(two_lane_scene, without_billboards, straightest_s):
    # From the right lane the right edge line is close on the right; the mirror image of that
    # point (as far to the car's left) is plain asphalt in the car's own lane.
    scene = without_billboards(two_lane_scene)
    track = scene.track
    s0 = straightest_s(scene)
    lane = track.lane_center_offset(0)
    car = track.pose_at(s0, lane)
    pose = camera_pose(CarState(float(car.x), float(car.y), float(car.yaw), 0.0), CAMERA)
    frame = render_view(scene, CAMERA, pose, REFERENCE, np.random.default_rng(0))
    edge = -(track.width / 2 - EDGE_INSET - REFERENCE.line_width / 2)
    s = s0 + CAMERA.forward_offset + np.array([4.0, 6.0, 9.0])
    assert lane < 0
    assert materials_at(frame, pixels_of(scene, pose, s, edge)) == ["paint"] * 3
    mirrored = pixels_of(scene, pose, s, 2 * lane - edge)
    assert materials_at(frame, mirrored) == ["asphalt"] * 3
