import numpy as np

from drivesim.config import TrackConfig
from drivesim.sim import Controls, World
from drivesim.sim.car import footprint
from drivesim.track import generate_track

TRACK = generate_track(4, TrackConfig(length=500, width=8))


def test_reset_places_car_in_lane_facing_forward():
    world = World(TRACK)
    road = world.reset(s=50.0)
    assert abs(road.lateral_offset) < 1e-6 and abs(road.heading_error) < 1e-6
    assert not road.off_road and not road.crashed and road.progress == 0.0


def test_driving_off_the_edge_is_off_road_then_crash():
    world = World(TRACK)
    world.reset(s=10.0, speed=10.0)
    steer = -1.0 if TRACK.curvature_at(10.0) > 0 else 1.0  # turn towards the outside of the bend
    seen_off_road = False
    for _ in range(200):
        road = world.step(Controls(steer, 0.3))
        seen_off_road = seen_off_road or road.off_road
        if road.crashed:
            break
    assert seen_off_road and road.crashed


def test_wrong_way_is_a_crash():
    world = World(TRACK)
    road = world.reset(s=10.0, yaw_offset=3.0)
    assert road.crashed


def test_progress_counts_laps_across_the_start_line():
    world = World(TRACK)
    world.reset(s=TRACK.length - 1.0, speed=10.0)
    road = world.step(Controls(0.0, 0.0))
    for _ in range(3):
        road = world.step(Controls(0.0, 0.0))
    assert 1.5 < road.progress < 2.5 and road.s < 2.0


def test_off_road_is_any_corner_off_the_asphalt():
    # The world projects the corners only near the edge; the flag must be what projecting them always gives.
    world = World(TRACK)
    for offset in np.linspace(-4.5, 4.5, 91):  # from beyond the right edge to beyond the left (one lane: its centre is the centreline)
        road = world.reset(s=120.0, lateral_offset=offset, yaw_offset=0.2)
        corners = footprint(world.car, world.car_config)
        expected = np.abs(TRACK.project(corners[:, 0], corners[:, 1], near_s=120.0).lateral_offset) > TRACK.width / 2
        assert road.off_road == bool(expected.any()), offset
