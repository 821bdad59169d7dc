"""`drivesim dagger` end to end at toy size: real data, real training, real evaluation."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from drivesim.config import to_dict
from drivesim.drivers.base import DriverKind
from drivesim.errors import DrivesimError
from drivesim.record import open_recording
from drivesim.track import track_set_sha256


def test_dagger_runs_collects_policy_frames_and_resumes(repo_root, tmp_path):
    out = tmp_path / "dagger"
    command = [
        sys.executable, "-m", "drivesim.cli", "dagger", "--out", str(out),
        "--iterations", "2", "--frames-per-iteration", "120", "--shard-frames", "60",
        "--tracks", str(repo_root / "tracks" / "val"), "--eval-tracks", str(repo_root / "tracks" / "val" / "val-000.json"),
        "--eval-laps", "0.1", "--model", "small", "--epochs", "1", "--workers", "1",
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    rows = json.loads((out / "dagger.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["DAgger iteration 0", "DAgger iteration 1", "BC expert", "BC DART noise 0.1"]
    assert [r["frames"] for r in rows] == [120, 240, 240, 240]
    assert all(0.0 <= r["autonomy_pct"] <= 100.0 for r in rows)
    assert (out / "dagger.png").stat().st_size > 10_000 and "| DAgger iteration 1 | 240 |" in (out / "dagger.md").read_text()

    # Iteration 1's data is driven by iteration 0's network and labelled by the expert, in shards of 60 frames.
    recording = open_recording(out / "data" / "iter-1")
    assert recording.frames == 120 and len(recording.shards) == 2
    with h5py.File(recording.shard_path(0), "r") as f:
        drivers = f["meta/driver"][...]
        labels, applied = f["labels/steering"][...], f["controls/steering"][...]
    policy = drivers == DriverKind.POLICY
    assert policy.any()
    assert not np.allclose(labels[policy], applied[policy])  # the network steers; the expert's label is kept beside it

    # Every run validates on one expert-driven set, so each trains on all of its data, the newest included.
    from drivesim.learn import load_checkpoint

    for name, frames in (("dagger-0", 120), ("dagger-1", 240), ("bc", 240), ("bc-noise", 240)):
        training = load_checkpoint(out / "models" / name).training
        assert training["val"][0]["recording"] == str(out / "data" / "val") and training["val"][0]["frames"] == 100
        assert sum(d["frames"] for d in training["data"]) == frames

    # Re-running the same command keeps every finished stage, also with --out spelled another way.
    model = out / "models" / "dagger-1" / "model.safetensors"
    before = model.stat().st_mtime_ns
    relative = [("dagger" if arg == str(out) else arg) for arg in command]
    (out / "eval" / "bc" / "metrics.json").write_text("")  # as a write cut short would leave it: evaluated again
    again = subprocess.run(relative, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert model.stat().st_mtime_ns == before
    assert "evaluating again" in again.stdout
    assert json.loads((out / "dagger.json").read_text())["rows"] == rows

    # A moved run folder resumes as well: policy-driven data is matched by the policy's weights, not its path.
    # Its own dagger-config.json, as --config, repeats the command (the defaults of the options would not).
    moved = tmp_path / "moved"
    out.rename(moved)
    third = subprocess.run([sys.executable, "-m", "drivesim.cli", "dagger", "--out", str(moved), "--config", str(moved / "dagger-config.json")],
                           capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    assert (moved / "models" / "dagger-1" / "model.safetensors").stat().st_mtime_ns == before

    # Killed in the middle of a stage (iteration 1's data or training: the kill lands somewhere after its
    # model folder appears), the same command finishes the same experiment: equal weights, equal scores.
    # (Without the baselines, which come after the iterations and change nothing in them.)
    killed = tmp_path / "killed"
    command = [(str(killed) if arg == str(out) else arg) for arg in command] + ["--no-baselines"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "models" / "dagger-1").exists() and process.poll() is None:
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert not (killed / "dagger.json").exists(), "the run should have been killed part-way"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "dagger.json").read_text())["rows"] == rows[:2]
    for name in ("dagger-0", "dagger-1"):
        weights, reference = (load_checkpoint(folder / "models" / name).model.state_dict() for folder in (killed, moved))
        assert all(torch.equal(weights[key], reference[key]) for key in reference), name
    assert not list(killed.rglob("*.tmp"))


def test_dagger_refuses_wrong_tracks_and_changed_settings_before_any_work(repo_root, tmp_path):
    from drivesim.dagger import DaggerConfig, DaggerError, run_dagger
    from drivesim.track import TrackError

    with pytest.raises(TrackError, match="no such track file or folder"):
        run_dagger(DaggerConfig(out=str(tmp_path / "a"), eval_tracks=str(tmp_path / "nope"), frames_per_iteration=100), log=lambda _: None)
    assert not (tmp_path / "a").exists()
    with pytest.raises(DrivesimError, match="unknown model 'big'"):
        DaggerConfig(out=str(tmp_path / "b"), model="big")
    with pytest.raises(DrivesimError, match="seed must be >= 0"):
        DaggerConfig(out=str(tmp_path / "b"), seed=-1)
    with pytest.raises(DrivesimError, match="1 to 499 iterations"):  # more would reuse the baselines' data seeds
        DaggerConfig(out=str(tmp_path / "b"), iterations=500)
    (tmp_path / "c").mkdir()
    saved = to_dict(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=200))
    del saved["start_noise"]  # an experiment made before the setting existed: it counts as its default
    (tmp_path / "c" / "dagger-config.json").write_text(json.dumps(saved))
    with pytest.raises(DaggerError, match=r"other settings \(frames_per_iteration\)"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=300, workers=1), log=lambda _: None)
    with pytest.raises(DaggerError, match=r"other settings \(frames_per_iteration, start_noise\)"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=300, start_noise=0.1, workers=1), log=lambda _: None)
    # Made before track digests were stored: the paths are compared as written.
    spelled = str(repo_root / "drivesim" / "tracks" / "train") + "/", str(tmp_path / "holdout-copy")
    shutil.copytree(repo_root / "tracks" / "holdout", spelled[1])
    with pytest.raises(DaggerError, match=r"other settings \(eval_tracks, frames_per_iteration, tracks\);"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=300, tracks=spelled[0], eval_tracks=spelled[1], workers=1), log=lambda _: None)
    # As this version stores them: the same track files, under another path or a copy, are no other setting.
    saved = {**to_dict(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=200)),
             "tracks_sha256": track_set_sha256("tracks/train"), "eval_tracks_sha256": track_set_sha256("tracks/holdout")}
    (tmp_path / "c" / "dagger-config.json").write_text(json.dumps(saved))
    with pytest.raises(DaggerError, match=r"other settings \(frames_per_iteration\);"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=300, tracks=spelled[0], eval_tracks=spelled[1], workers=1), log=lambda _: None)
    (Path(spelled[1]) / "holdout-000.json").unlink()
    with pytest.raises(DaggerError, match=r"other settings \(eval_tracks, frames_per_iteration, tracks\);"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=300, tracks=str(repo_root / "tracks" / "val"), eval_tracks=spelled[1], workers=1),
                   log=lambda _: None)
    (tmp_path / "c" / "dagger-config.json").write_text('{"iterations": 4, "fra')
    with pytest.raises(DaggerError, match="dagger-config.json: not valid JSON"):
        run_dagger(DaggerConfig(out=str(tmp_path / "c"), frames_per_iteration=200, workers=1), log=lambda _: None)
    with pytest.raises(DrivesimError, match=r"eval_laps must be in \[0.01, 1000\]"):  # stored as Infinity, it could never resume
        DaggerConfig(out=str(tmp_path / "b"), eval_laps=float("inf"))
    with pytest.raises(DrivesimError, match="workers must be at least 1"):  # from a config file: no --workers to refuse it
        DaggerConfig(out=str(tmp_path / "b"), workers=0)


def test_dagger_can_start_from_noisy_expert_data(repo_root, tmp_path):
    from drivesim.dagger import DaggerConfig, run_dagger

    config = DaggerConfig(out=str(tmp_path / "d"), iterations=1, frames_per_iteration=100, shard_frames=100, tracks=str(repo_root / "tracks" / "val"),
                          eval_tracks=str(repo_root / "tracks" / "val" / "val-000.json"), eval_laps=0.1, model="small", epochs=1,
                          baselines=False, start_noise=0.2, workers=1)
    run_dagger(config, log=lambda _: None)
    with h5py.File(open_recording(tmp_path / "d" / "data" / "iter-0").shard_path(0), "r") as f:
        labels, applied, drivers = f["labels/steering"][...], f["controls/steering"][...], f["meta/driver"][...]
    assert np.all(drivers == DriverKind.EXPERT)
    assert np.abs(applied - labels).max() > 0.05  # the expert drives with DART noise and labels its own clean answer
    with h5py.File(open_recording(tmp_path / "d" / "data" / "val").shard_path(0), "r") as f:
        assert np.array_equal(f["labels/steering"][...], f["controls/steering"][...])  # validation stays clean
