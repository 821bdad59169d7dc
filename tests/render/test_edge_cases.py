"""Poses, cameras and objects at the edges of what the renderer is given: no crash, nothing misplaced."""

import numpy as np

from drivesim.config import CameraConfig
from drivesim.render import REFERENCE, CameraPose, camera_pose, focal_length, get_look, render_view
from drivesim.render.billboards import Billboards, draw_billboards
from drivesim.render.sky import MAX_PANORAMA_PIXELS, sky_panorama
from drivesim.render.view import render_look
from drivesim.sim.car import CarState


def test_ground_far_from_a_two_lane_road_renders(two_lane_scene):
    # Ground outside the road field holds "no dash nearby"; with a dash period under 12 m that value once
    # indexed past the renderer's dash table: a car far off the road, or a high camera looking far, crashed.
    scene = two_lane_scene
    assert scene.dash_period < 12.0
    far_off, high = CameraConfig(), CameraConfig(width=64, height=48, fov=0.6, mount_height=4.0, pitch=-0.2)
    for camera, lateral in ((far_off, 18.0), (far_off, -25.0), (high, 0.0)):
        pose = scene.track.pose_at(100.0, lateral)
        car = CarState(float(pose.x), float(pose.y), float(pose.yaw), 0.0)
        frame = render_view(scene, camera, camera_pose(car, camera), REFERENCE, np.random.default_rng(0))
        assert frame.shape == (camera.height, camera.width, 3)


def test_a_narrow_lens_sky_renders_at_every_heading(one_lane_scene):
    # A full turn of sky at a narrow lens's resolution is over 32,767 columns, more than OpenCV's remap takes.
    look = get_look(one_lane_scene, REFERENCE)
    camera = CameraConfig(width=320, height=40, fov=0.2, pitch=0.0)
    for degrees in range(0, 360, 30):
        frame = render_look(look, camera, CameraPose(0.0, 0.0, camera.mount_height, np.radians(degrees), camera.pitch), np.random.default_rng(0))
        assert frame[0].any()  # sky drawn


def test_a_large_narrow_camera_paints_a_panorama_within_budget(one_lane_scene):
    # 1024x768 at 0.2 rad looking up: a full-resolution panorama is 49 million pixels (2.9 GB while painted, 20 s).
    look = get_look(one_lane_scene, REFERENCE)
    camera = CameraConfig(width=1024, height=768, fov=0.2, pitch=-0.3)
    pose = CameraPose(0.0, 0.0, camera.mount_height, 0.0, camera.pitch)
    panorama, _, _, _, turn = sky_panorama(look, camera, pose, camera.height)
    assert panorama.shape[0] * panorama.shape[1] <= 1.05 * MAX_PANORAMA_PIXELS
    frame = render_look(look, camera, pose, np.random.default_rng(0))
    assert frame[:, :, 2].mean() > frame[:, :, 0].mean()  # all sky: blue over red
    # The default camera keeps its full resolution: four panorama columns per pixel of focal length.
    default = CameraConfig()
    _, _, _, _, turn = sky_panorama(look, default, camera_pose(CarState(0.0, 0.0, 0.0, 0.0), default), default.height)
    assert turn == round(2 * np.pi * focal_length(default) * 4)


def test_a_billboard_leaving_the_left_edge_moves_a_pixel_per_pixel(one_lane_scene):
    # Its left column was rounded towards zero once its centre was left of the image: it stuck a pixel late.
    scene = one_lane_scene
    look, board, camera = get_look(scene, REFERENCE), scene.billboards, CameraConfig()
    pose, f = CameraPose(0.0, 0.0, 1.4, 0.0, 0.1), focal_length(camera)
    tree = next(i for i, sprite in enumerate(board.sprites) if sprite.name == "tree")
    rightmost = []
    for centre in (0.7, -0.3, -1.3, -2.3):  # the column its centre should project to
        ahead = 20.0
        one = Billboards(np.array([[ahead, -(centre - (camera.width - 1) / 2) * ahead / f]]), np.array([8.0]), np.array([tree]),
                         board.sprites, np.array([0.8]), np.array([200.0]))
        frame = np.zeros((camera.height, camera.width, 3), np.uint8)
        draw_billboards(frame, one, look.sprites, pose, camera, 1e9)
        rightmost.append(int(np.flatnonzero(frame.max(axis=(0, 2)))[-1]))
    assert np.diff(rightmost).tolist() == [-1, -1, -1]
