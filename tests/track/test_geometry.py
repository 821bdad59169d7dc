import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivesim.config import TrackConfig
from drivesim.track import generate_track, wrap_angle
from drivesim.track.geometry import NEAR_WINDOW, Track

TRACK = generate_track(7, TrackConfig(length=900, lanes=2, width=10))


@settings(max_examples=200, deadline=None)
@given(s=st.floats(0, 1), offset=st.floats(-4.9, 4.9))
def test_project_inverts_pose_at(s, offset):
    s = s * TRACK.length * 0.999
    pose = TRACK.pose_at(s)
    back = TRACK.project(pose.x, pose.y, pose.yaw)
    ds = (back.s - s + TRACK.length / 2) % TRACK.length - TRACK.length / 2
    assert abs(ds) < 1e-6
    assert abs(back.lateral_offset) < 1e-6
    assert abs(back.heading_error) < 1e-6
    shifted = TRACK.pose_at(s, offset)
    away = TRACK.project(shifted.x, shifted.y)
    assert abs(away.lateral_offset - offset) < 0.02
    assert np.isnan(away.heading_error)


def test_offset_sign_is_left_positive():
    pose = TRACK.pose_at(100.0)
    left = np.array([-np.sin(pose.yaw), np.cos(pose.yaw)])
    p = np.array([pose.x, pose.y]) + 2.0 * left
    assert TRACK.project(p[0], p[1]).lateral_offset > 1.9


def test_project_is_vectorised():
    s = np.linspace(0, TRACK.length, 50, endpoint=False)
    pose = TRACK.pose_at(s, 1.0)
    back = TRACK.project(pose.x, pose.y)
    assert back.s.shape == (50,)
    np.testing.assert_allclose(back.lateral_offset, 1.0, atol=0.02)


def test_on_road_matches_half_width():
    s = np.full(4, 300.0)
    offsets = np.array([0.0, 4.9, 5.1, -6.0])
    pose = TRACK.pose_at(s, offsets)
    assert TRACK.on_road(np.stack([pose.x, pose.y], axis=1)).tolist() == [True, True, False, False]


def test_curvature_sign_and_heading():
    # The heading advances by the integral of curvature, and one lap turns by +-2 pi.
    total_turn = np.sum(TRACK.curvature * np.diff(np.append(TRACK.s, TRACK.length)))
    assert abs(abs(total_turn) - 2 * np.pi) < 0.05
    s = 200.0
    ahead = wrap_angle(TRACK.pose_at(s + 1.0).yaw - TRACK.pose_at(s).yaw)
    assert np.sign(ahead) == np.sign(TRACK.curvature_at(s + 0.5)) or abs(ahead) < 1e-4


def test_lane_centres():
    assert TRACK.lane_center_offset(0) == -2.5
    assert TRACK.lane_center_offset(1) == 2.5


@settings(max_examples=300, deadline=None)
@given(s=st.floats(-1, 2), offset=st.floats(-9, 9), yaw=st.floats(-4, 4), lag=st.floats(-3, 3))
def test_project_near_is_project_of_one_point_bit_for_bit(s, offset, yaw, lag):
    # The simulation measures the car with `project_near` every step; it must be the array version's numbers.
    s *= TRACK.length
    pose = TRACK.pose_at(s, offset)
    x, y = float(pose.x), float(pose.y)
    array = TRACK.project(np.array([x]), np.array([y]), yaw, near_s=s + lag)
    assert TRACK.project_near(x, y, yaw, s + lag) == (float(array.s[0]), float(array.lateral_offset[0]), float(array.heading_error[0]))


@settings(max_examples=200, deadline=None)
@given(s=st.floats(-1, 2), offset=st.floats(-9, 9), spread=st.floats(0, 3), lag=st.floats(-3, 3))
def test_distance_near_is_the_size_of_projects_offset_bit_for_bit(s, offset, spread, lag):
    s *= TRACK.length
    pose = TRACK.pose_at(s, offset)
    x = float(pose.x) + spread * np.array([1.0, -1.0, 0.5, -0.5])
    y = float(pose.y) + spread * np.array([0.5, 1.0, -1.0, -0.5])
    expected = np.abs(TRACK.project(x, y, near_s=s + lag).lateral_offset)
    np.testing.assert_array_equal(TRACK.distance_near(x, y, s + lag), expected)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.integers(0, 40))
def test_nearest_points_walks_to_the_tree_searchs_answer(seed, spread):
    # The road field is built from these walks; a walk that stopped short would put lines in the wrong place.
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, TRACK.length, 500)
    pose = TRACK.pose_at(s, rng.uniform(-16.5, 16.5, 500))
    _, tree = TRACK._tree.query(np.column_stack([pose.x, pose.y]))
    guess = tree + rng.integers(-spread, spread + 1, 500)
    found = TRACK.nearest_points(pose.x, pose.y, guess)
    np.testing.assert_array_equal(np.hypot(*(TRACK.centreline[found] - np.column_stack([pose.x, pose.y])).T),
                                  np.hypot(*(TRACK.centreline[tree] - np.column_stack([pose.x, pose.y])).T))
    with_nearest = TRACK.project(pose.x, pose.y, nearest=found)
    searched = TRACK.project(pose.x, pose.y)
    np.testing.assert_array_equal(with_nearest.s, searched.s)
    np.testing.assert_array_equal(with_nearest.lateral_offset, searched.lateral_offset)


def test_the_near_search_is_bounded_by_distance_not_by_the_shortest_segment():
    # An exported loop whose closing point repeats its first with a rounding error: one segment of 10 um.
    # A search window counted in points (12 m / shortest segment) held every segment, a million times over.
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    points = np.column_stack([60 * np.cos(angles), 60 * np.sin(angles)])
    points = np.vstack([points, points[0] + [1e-5, -1e-5]])
    track = Track(points, 8.0, 1)
    window = track._window(100.0)
    assert len(window) == len(np.unique(window)) <= 2 * NEAR_WINDOW / (2 * np.pi * 60 / 400) + 3
    for s in (0.0, 5.0, track.length - 1e-6, 100.0):
        pose = track.pose_at(s, 1.5)
        near = track.project(pose.x, pose.y, near_s=s)
        assert near.s == pytest.approx(track.project(pose.x, pose.y).s, abs=1e-9)  # the window holds the nearest point
