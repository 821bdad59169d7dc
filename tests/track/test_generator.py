import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from drivesim.config import ConfigError, TrackConfig
from drivesim.track import TrackError, generate_track, validate_track
from drivesim.track.geometry import Track

configs = st.builds(
    TrackConfig,
    length=st.floats(400, 3000),
    width=st.floats(6, 12),
    lanes=st.sampled_from([1, 2]),
    curviness=st.floats(0, 1),
    min_radius=st.floats(30, 40),
)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), config=configs)
def test_generated_tracks_are_valid_closed_and_deterministic(seed, config):
    track = generate_track(seed, config)
    # Closed: the last point is about one sample spacing from the first.
    assert np.hypot(*(track.centreline[0] - track.centreline[-1])) < 1.5
    assert shapely.LinearRing(track.centreline).is_simple
    assert np.max(np.abs(track.curvature)) <= 1.02 / config.min_radius
    assert 0.85 * config.length <= track.length <= 1.15 * config.length
    assert len(track.polygon(config.verge_clearance / 2).interiors) == 1
    again = generate_track(seed, config)
    assert again.centreline.tobytes() == track.centreline.tobytes()


def test_different_seeds_give_different_tracks():
    a, b = generate_track(1), generate_track(2)
    assert a.centreline.shape != b.centreline.shape or not np.array_equal(a.centreline, b.centreline)


def test_both_directions_occur():
    # Half the tracks run clockwise so left and right bends are balanced in the data.
    turning = [np.sign(generate_track(seed).curvature.sum()) for seed in range(12)]
    assert 1.0 in turning and -1.0 in turning


def test_self_overlapping_road_is_rejected():
    # A figure-of-eight-like pinch: two straights 5 m apart with a road 8 m wide.
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    x, y = 100 * np.cos(t), 40 * np.sin(t) * (0.05 + np.abs(np.cos(t)))
    track = Track(np.column_stack([x, y]), width=8.0)
    with pytest.raises(TrackError, match="overlaps|crosses|tighter"):
        validate_track(track, min_radius=1.0, clearance=2.0)


def test_too_tight_bend_is_rejected():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    track = Track(np.column_stack([15 * np.cos(t), 15 * np.sin(t)]), width=6.0)
    with pytest.raises(TrackError, match="tighter than the minimum"):
        validate_track(track, min_radius=20.0)


def test_impossible_config_raises_clear_error():
    with pytest.raises(ConfigError, match="lanes"):
        TrackConfig(lanes=3)
    with pytest.raises(ConfigError, match="min_radius"):
        TrackConfig(width=10, min_radius=5)
