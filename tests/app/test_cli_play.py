"""`drivesim play` as a user runs it: a real process, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from window_helpers import leftovers, read_all

ENV = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")


def play(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "drivesim.cli", "play", *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP)])
def test_ctrl_c_or_kill_mid_recording_leaves_a_complete_recording(tmp_path, track_file, signum, status):
    folder = tmp_path / "rec"
    process = play("--track", track_file, "--record", folder, "--driver", "autopilot", "--size", "320x240", "--randomize", "none")
    try:
        deadline = time.monotonic() + 60
        while not (folder / "shard-00000.h5.tmp").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.8)  # real time: about 16 frames at 20 Hz
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == status, err
    assert leftovers(folder) == []
    frames = len(read_all(folder)["meta/driver"])
    assert frames >= 5 and f"recorded {frames} frames" in out


def test_a_short_run_saves_a_screenshot_and_reports_its_rate(tmp_path):
    shot = tmp_path / "shot.png"
    # A bundled track by its README name, from a folder with no tracks/ in it (as after `pip install`).
    process = play("--track", "tracks/holdout/holdout-001.json", "--driver", "autopilot", "--size", "320x240", "--frames", "30",
                   "--screenshot", shot, cwd=tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "30 frames" in out and "frames/s" in out
    import cv2

    assert cv2.imread(str(shot)).shape == (240, 320, 3)


def test_a_session_that_records_no_frame_leaves_no_folder_and_says_so(tmp_path, track_file):
    folder = tmp_path / "new" / "rec"
    process = play("--track", track_file, "--record", folder, "--size", "320x240", "--frames", "1")  # one window frame: no step yet
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert f"recorded no frames (no simulation step ran), so nothing was written to {folder}" in out
    assert list(tmp_path.iterdir()) == []  # nor the parent made for it


def test_user_errors_are_one_line_with_exit_status_2(tmp_path, track_file, monkeypatch, capsys):
    from drivesim.cli import main

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "manifest.json").write_text("{}")
    (tmp_path / "a-file").write_text("")
    cases = {
        ("--size", "100x100"): "--size",
        ("--size", "big"): "--size",
        ("--size", "\u00b2x600"): "--size",  # a digit to str.isdigit, not to int()
        ("--track", track_file, "--seed", "3"): "not both",
        ("--driver", "network"): "--model",
        ("--driver", "robot"): "--driver",
        ("--randomize", "extreme"): "--randomize",
        ("--record", tmp_path / "used"): "already holds a recording",
        ("--model", tmp_path / "missing.safetensors"): "no such checkpoint",
        ("--track", tmp_path / "missing.json"): "missing.json",
        ("--track", tmp_path / "used"): f"--track takes one track file, and {tmp_path / 'used'} is a folder",  # no example: manifest.json is no track
        ("--track", track_file.parent): f"is a folder: e.g. --track {track_file.parent}/",
        ("--record", tmp_path / "a-file" / "rec"): "cannot make the recording folder",  # before the window, not at the first frame
        ("--screenshot", tmp_path / "a-file" / "shot.png"): f"--screenshot: {tmp_path / 'a-file'} is a file, where a folder must be",  # before the session, not after
    }
    for args, message in cases.items():
        monkeypatch.setattr(sys, "argv", ["drivesim", "play", *map(str, args), "--frames", "1"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert exit_info.value.code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("drivesim: error:") and message in lines[0], (args, err)


def test_without_a_display_play_says_so_instead_of_drawing_off_screen(track_file):
    # SDL falls back to its off-screen driver when there is no display: a window nobody sees, running until killed.
    env = {k: v for k, v in ENV.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "drivesim.cli", "play", "--track", str(track_file), "--frames", "5"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line: SDL's own complaints come before it otherwise
    assert result.stderr.startswith("drivesim: error: cannot open a window (no display")
