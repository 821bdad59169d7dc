import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from drivesim.config import CarConfig, GenerateConfig, RandomizationConfig, to_dict
from drivesim.errors import DrivesimError
from drivesim.generate import GenerateError, LastScene, generate, plan_shards, shard_groups, write_shard
from drivesim.record import (
    Event,
    RecordingDataset,
    RecordingError,
    open_recording,
    read_manifest,
    shard_info_from_file,
    verify_recording,
)
from drivesim.track import load_tracks

REPO = Path(__file__).resolve().parents[1]


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "drivesim.cli", *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def test_round_trip_plain_h5py_and_dataset(tiny_recording):
    manifest = json.loads((tiny_recording / "manifest.json").read_text())
    assert manifest["frames"] == 240 and len(manifest["shards"]) == 2
    car = CarConfig()
    total = 0
    with h5py.File(tiny_recording / "shard-00000.h5", "r") as f:
        images = f["images/center"]
        assert images.dtype == np.uint8 and images.shape == (120, 120, 160, 3)
        assert images.chunks == (1, 120, 160, 3) and images.compression == "gzip" and images.fletcher32
        steering = f["labels/steering"][...]
        np.testing.assert_allclose(f["labels/steering_rad"][...], steering * car.max_steer, rtol=1e-6)
        assert np.all(np.abs(steering) <= 1)
        episodes = f["meta/episode"][...]
        steps = f["meta/step"][...]
        events = f["meta/events"][...]
        # Every episode starts with the reset flag at step 0 and counts its steps.
        starts = np.flatnonzero(np.diff(episodes, prepend=-1) != 0)
        assert np.all(events[starts] & Event.EPISODE_RESET) and np.all(steps[starts] == 0)
        assert json.loads(f.attrs["config"])["frames"] == 240
        assert set(json.loads(f.attrs["camera_intrinsics"])) == {"center"}
        first_image = images[5]
        first_label = steering[5]
        total += len(steering)
    # Frames are not blank: a road picture has sky above and ground below.
    assert first_image[:20].mean(axis=(0, 1))[2] > first_image[-20:].mean(axis=(0, 1))[2]
    dataset = RecordingDataset(tiny_recording, labels=("steering", "throttle"), extras=("state/speed",))
    assert len(dataset) == 240
    image, label, extras = dataset[5]
    assert torch.equal(image, torch.from_numpy(first_image).permute(2, 0, 1))
    assert label[0].item() == pytest.approx(float(first_label))
    assert extras["state/speed"].item() > 5.0
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, num_workers=2, shuffle=True)
    assert sum(len(batch[0]) for batch in loader) == 240
    # Every attribute but the version ones is JSON text, and comes back decoded.
    attrs = open_recording(tiny_recording).attrs(1)
    assert attrs["generator"]["shard"] == 1 and isinstance(attrs["tracks"], list)
    assert isinstance(attrs["drivesim_version"], str) and attrs["schema_version"] == 1


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, repo_root):
    config = GenerateConfig(frames=150, shard_frames=50, episode_frames=40, seed=11, tracks=str(repo_root / "tracks" / "val"))
    generate(config, tmp_path / "one", workers=1, progress=False)
    generate(config, tmp_path / "two", workers=2, progress=False)  # forked from this process, torch loaded
    # The CLI's workers fork from a process without torch; the bytes must not care how a worker started.
    forked = cli("generate", "--frames", 150, "--shard-frames", 50, "--episode-frames", 40, "--seed", 11, "--tracks", repo_root / "tracks" / "val", "--workers", 2, "--out", tmp_path / "forked")
    assert forked.returncode == 0, forked.stderr
    one, two = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")
    assert [s.sha256 for s in one.shards] == [s.sha256 for s in two.shards]
    for other_run in ("two", "forked"):
        assert (tmp_path / "one" / "manifest.json").read_bytes() == (tmp_path / other_run / "manifest.json").read_bytes()
    other = GenerateConfig(frames=150, shard_frames=50, episode_frames=40, seed=12, tracks=str(repo_root / "tracks" / "val"))
    generate(other, tmp_path / "three", workers=1, progress=False)
    assert read_manifest(tmp_path / "three").shards[0].sha256 != one.shards[0].sha256


def test_fresh_random_tracks_give_the_same_bytes_whatever_the_worker_count(tmp_path):
    """The default --tracks random draws each shard's track from the run seed and the shard index, in any process."""
    config = GenerateConfig(frames=60, shard_frames=20, episode_frames=20, seed=4, tracks="random")
    generate(config, tmp_path / "one", workers=1, progress=False)
    generate(config, tmp_path / "two", workers=2, progress=False)
    assert (tmp_path / "one" / "manifest.json").read_bytes() == (tmp_path / "two" / "manifest.json").read_bytes()
    recording = open_recording(tmp_path / "one")
    assert len({recording.attrs(i)["generator"]["track_seed"] for i in range(3)}) == 3  # a fresh track per shard


def test_shards_sharing_a_scene_are_the_shards_built_alone(tmp_path, repo_root):
    # A process is handed a track's shards together and keeps its last scene for the next; not a byte may change.
    pool = load_tracks(repo_root / "tracks" / "val")
    config = GenerateConfig(frames=200, shard_frames=40, episode_frames=40, seed=3, tracks=str(repo_root / "tracks" / "val"))
    groups = shard_groups(plan_shards(config), config, pool)
    jobs = [job for group in groups for job in group]
    assert sorted(job.index for job in jobs) == list(range(5))
    (tmp_path / "shared").mkdir()
    (tmp_path / "alone").mkdir()
    scenes = LastScene()
    shared = [write_shard(job, config, tmp_path / "shared", pool, scenes=scenes) for job in jobs]
    alone = [write_shard(job, config, tmp_path / "alone", pool) for job in jobs]
    assert [info.sha256 for info in shared] == [info.sha256 for info in alone]
    track_of = {}
    for job, info in zip(jobs, shared, strict=True):
        with h5py.File(tmp_path / "shared" / info.file, "r") as f:
            track_of[job.index] = json.loads(f.attrs["generator"])["track"]
    assert all(len({track_of[job.index] for job in group}) == 1 for group in groups), "a group is one track's shards"
    assert max(len(group) for group in groups) > 1, "the test needs two shards on one track"
    # Two processes: no group may hold more than a quarter of the shards, so neither process idles.
    assert max(len(group) for group in shard_groups(plan_shards(config), config, pool, workers=2)) <= 2


def test_the_plan_cuts_the_frames_into_shards_of_the_configured_size():
    jobs = plan_shards(GenerateConfig(frames=2500, shard_frames=1000))
    assert [(j.index, j.frames) for j in jobs] == [(0, 1000), (1, 1000), (2, 500)]


def test_resume_after_a_killed_run_gives_the_same_recording(tmp_path, repo_root):
    args = ["generate", "--frames", 400, "--shard-frames", 100, "--episode-frames", 50, "--seed", 5, "--tracks", repo_root / "tracks" / "val", "--workers", 1]
    reference = cli(*args, "--out", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr
    size = sum(shard.size for shard in read_manifest(tmp_path / "ref").shards)
    assert f"wrote 400 frames in 4 shards, {size / 1e6:,.1f} MB to " in reference.stdout  # what the disk holds

    target = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "drivesim.cli", *map(str, args), "--out", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(target.glob("shard-*.h5")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in target.glob("shard-*.h5"))
    assert finished and len(finished) < 4, "the run should have been killed part-way"
    assert not (target / "manifest.json").exists()

    resumed = cli(*args, "--out", target)
    assert resumed.returncode == 0, resumed.stderr
    assert "kept from an earlier run" in resumed.stdout
    assert (target / "manifest.json").read_bytes() == (tmp_path / "ref" / "manifest.json").read_bytes()
    assert not list(target.glob("*.tmp"))


def test_resuming_says_when_it_keeps_shards_another_drivesim_version_wrote(tmp_path, pool):
    args = ["generate", "--frames", 90, "--shard-frames", 30, "--episode-frames", 30, "--tracks", pool, "--workers", 1, "--out", tmp_path / "r"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "another version" not in first.stderr
    (tmp_path / "r" / "manifest.json").unlink()  # interrupted before the manifest, under an older drivesim
    with h5py.File(tmp_path / "r" / "shard-00001.h5", "r+") as f:
        f.attrs["drivesim_version"] = "0.0.9"
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "(3 kept from an earlier run)" in resumed.stdout
    assert "kept shards written by another version (1 by drivesim 0.0.9; this is " in resumed.stderr
    assert len(resumed.stderr.strip().splitlines()) == 1


def test_other_config_is_never_overwritten_without_force(tmp_path, repo_root):
    config = GenerateConfig(frames=60, shard_frames=30, episode_frames=30, tracks=str(repo_root / "tracks" / "val"))
    generate(config, tmp_path / "r", workers=1, progress=False)
    changed = GenerateConfig(frames=60, shard_frames=30, episode_frames=30, seed=1, tracks=str(repo_root / "tracks" / "val"))
    with pytest.raises(GenerateError, match=r"different config \(seed 0 there, 1 now\)") as refused:
        generate(changed, tmp_path / "r", workers=1, progress=False)
    assert "To add frames" not in str(refused.value)
    with pytest.raises(GenerateError, match=r"\(frames 60 there, 90 now\).*To add frames, generate another recording with another --seed"):
        generate(replace(config, frames=90), tmp_path / "r", workers=1, progress=False)
    with pytest.raises(GenerateError, match=r"\(frames 60 there, 30 now\)") as fewer:
        generate(replace(config, frames=30), tmp_path / "r", workers=1, progress=False)
    assert "To add frames" not in str(fewer.value)
    (tmp_path / "r" / "manifest.json").unlink()  # an interrupted run: the shards alone are judged
    nested = replace(config, noise=replace(config.noise, correlation_time=1.0))
    with pytest.raises(GenerateError, match=r"shard-00000.h5 was made with a different config \(noise.correlation_time 0.5 there, 1.0 now\)"):
        generate(nested, tmp_path / "r", workers=1, progress=False)
    generate(config, tmp_path / "r", workers=1, progress=False)
    assert read_manifest(tmp_path / "r").config["seed"] == 0
    generate(changed, tmp_path / "r", workers=1, force=True, progress=False)
    assert read_manifest(tmp_path / "r").config["seed"] == 1

    # A recording of a network's or a person's driving is named as such: --force would delete it.
    from drivesim.drivers import ExpertDriver
    from drivesim.evaluate import EvalConfig, evaluate

    evaluate(ExpertDriver(), EvalConfig(tracks=str(repo_root / "tracks" / "val" / "val-000.json"), laps=0.02), record=tmp_path / "evaluated")
    with pytest.raises(GenerateError, match=r"evaluated holds a recording made by drivesim eval --record, not by generate; choose another --out \(--force would delete it\)"):
        generate(config, tmp_path / "evaluated", workers=1, progress=False)


def _pool_config(tracks, **kwargs) -> GenerateConfig:
    return GenerateConfig(frames=90, shard_frames=30, episode_frames=30, seed=4, tracks=str(tracks), **kwargs)


@pytest.fixture()
def pool(two_val_tracks):
    return two_val_tracks


def test_a_resumed_track_pool_is_judged_by_its_files_not_by_how_its_path_is_spelled(tmp_path, pool, repo_root, monkeypatch):
    import shutil

    generate(_pool_config(pool), tmp_path / "r", workers=1, progress=False)
    first = {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir()}
    kept = (tmp_path / "r" / "shard-00000.h5").stat().st_mtime_ns
    monkeypatch.chdir(pool.parent)
    for spelling in (f"{pool}/", f"./{pool.name}", f"{pool.name}//"):  # tab completion's slash, a relative path
        (tmp_path / "r" / "shard-00001.h5").unlink()
        generate(_pool_config(spelling), tmp_path / "r", workers=1, progress=False)
        # The recording's own spelling is kept: the resumed recording is the uninterrupted one, byte for byte.
        assert {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir()} == first
    assert (tmp_path / "r" / "shard-00000.h5").stat().st_mtime_ns == kept
    (tmp_path / "r" / "shard-00001.h5").unlink()
    (pool / "val-001.json").unlink()
    shutil.copy(repo_root / "tracks" / "holdout" / "holdout-000.json", pool)  # same folder name, other tracks
    with pytest.raises(GenerateError, match="different config: the same options, but the track files in .*pool have changed"):
        generate(_pool_config(pool), tmp_path / "r", workers=1, progress=False)
    with pytest.raises(GenerateError, match=r"different config \(tracks '.*pool' there, '.*holdout' now\)"):  # another pool
        generate(_pool_config(repo_root / "tracks" / "holdout"), tmp_path / "r", workers=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "r").glob("shard-*.h5")) == ["shard-00000.h5", "shard-00002.h5"]  # nothing removed


def test_a_recordings_stored_config_works_as_config_file(tmp_path, pool):
    generate(_pool_config(pool), tmp_path / "a", workers=1, progress=False)
    stored = read_manifest(tmp_path / "a").config
    assert "tracks_sha256" in stored
    (tmp_path / "run.json").write_text(json.dumps(stored))
    result = cli("generate", "--config", tmp_path / "run.json", "--out", tmp_path / "b", "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b" / "manifest.json").read_bytes() == (tmp_path / "a" / "manifest.json").read_bytes()
    # The manifest itself is no config: the error says where its config is, not which ten keys are unknown.
    result = cli("generate", "--config", tmp_path / "a" / "manifest.json", "--out", tmp_path / "c")
    assert result.returncode == 2 and "manifest.json is a run's log or manifest, not a config file: its \"config\" section" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"car": {"drag": NaN}}', "NaN is not a number"),
        ('{"car": {"drag": 1e999}}', "car.drag: expected a finite number"),
        ('{"frames": 1' + "0" * 5000 + "}", "not valid JSON"),
        ('{"world": {"crash_margin": -5}}', "world: world crash_margin must be in"),  # once: every frame a crash
    ],
    ids=["nan", "infinity", "5000-digit-integer", "negative-crash-margin"],
)
def test_a_config_file_that_could_not_run_is_refused_before_force_deletes_anything(tmp_path, tiny_recording, text, message):
    shutil.copytree(tiny_recording, tmp_path / "r")
    (tmp_path / "c.json").write_text(text)
    result = cli("generate", "--config", tmp_path / "c.json", "--out", tmp_path / "r", "--force", "--workers", 1)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(p.name for p in tiny_recording.iterdir())


def test_limits_are_judged_on_the_values_that_will_run(tmp_path):
    # The file's values alone once failed the shard-count check although the command line replaced both.
    (tmp_path / "big.json").write_text('{"frames": 200000000, "shard_frames": 500000}')
    result = cli("generate", "--config", tmp_path / "big.json", "--frames", 12, "--tracks", REPO / "tracks" / "val", "--workers", 1, "--out", tmp_path / "a")
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "a").frames == 12
    GenerateConfig(frames=20, shard_frames=500_000)  # one 20-frame shard: 1 episode, not 1,250


def test_a_config_file_section_keeps_the_defaults_it_does_not_mention(tmp_path):
    # A section used to start from its class's defaults: this file turned randomization and DART noise off.
    (tmp_path / "c.json").write_text('{"frames": 12, "shard_frames": 12, "tracks": "%s", "randomization": {"shadows": false}, '
                                     '"noise": {"correlation_time": 1.0}}' % (REPO / "tracks" / "val"))
    assert cli("generate", "--config", tmp_path / "c.json", "--out", tmp_path / "a", "--workers", 1).returncode == 0
    # --randomize sets the level and keeps the file's switches.
    assert cli("generate", "--config", tmp_path / "c.json", "--out", tmp_path / "b", "--workers", 1, "--randomize", "light").returncode == 0
    a, b = read_manifest(tmp_path / "a").config, read_manifest(tmp_path / "b").config
    assert a["randomization"] == {**to_dict(RandomizationConfig.preset("full")), "shadows": False}
    assert a["noise"] == {**to_dict(GenerateConfig().noise), "correlation_time": 1.0} and a["noise"]["steering_std"] == 0.1
    assert b["randomization"] == {**a["randomization"], "level": "light"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "c.json: expected a mapping, got a list"),
        ('{"randomization": 5}', "c.json: randomization: expected a mapping, got a number"),
        ('{"rig": null}', "c.json: rig: expected a mapping, got null"),
        ('{"policy": "no-such-model"}', "no-such-model: no such checkpoint"),
        # Spelled as in the file: JSON's true, not Python's True.
        ('{"noise": {"steering_std": true}}', "c.json: noise.steering_std: expected a number, got true"),
        ('{"seed": 1, "seed": 2}', 'c.json: the key "seed" is given twice in one object'),  # the last one won
    ],
    ids=["list", "number-section", "null-section", "missing-policy", "json-true", "repeated-key"],
)
def test_a_broken_config_file_is_refused_even_beside_options_that_set_its_sections(tmp_path, text, message):
    # The options' sections once replaced what the file had in their place: a broken file ran as if it were fine.
    (tmp_path / "c.json").write_text(text)
    result = cli("generate", "--config", tmp_path / "c.json", "--randomize", "none", "--width", 64, "--frames", 10, "--out", tmp_path / "r")
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "r").exists()


def test_a_config_file_in_another_format_is_told_that_config_files_are_json(tmp_path):
    (tmp_path / "c.yaml").write_text("frames: 10\n")
    result = cli("generate", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert result.returncode == 2 and result.stderr.strip().endswith("; config files are JSON"), result.stderr


def test_a_damaged_manifest_is_named_as_such(tmp_path, pool):
    generate(_pool_config(pool), tmp_path / "r", workers=1, progress=False)
    (tmp_path / "r" / "manifest.json").write_text('{"format": "drivesim-rec')
    with pytest.raises(GenerateError, match="manifest.json.*use --force to replace the recording"):
        generate(_pool_config(pool), tmp_path / "r", workers=1, progress=False)


def test_a_shard_damaged_after_the_run_is_not_kept_silently(tmp_path, pool):
    config = _pool_config(pool)
    generate(config, tmp_path / "ref", workers=1, progress=False)
    generate(config, tmp_path / "r", workers=1, progress=False)
    shard = tmp_path / "r" / "shard-00001.h5"
    with h5py.File(shard, "r") as f:
        offset = f["images/center"].id.get_chunk_info(5).byte_offset
    data = bytearray(shard.read_bytes())
    data[offset + 100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(GenerateError, match="shard-00001.h5 differs from the size and SHA-256 the manifest recorded"):
        generate(config, tmp_path / "r", workers=1, progress=False)
    assert shard.read_bytes() == bytes(data) and (tmp_path / "r" / "manifest.json").exists()  # untouched
    result = generate(config, tmp_path / "r", workers=1, force=True, progress=False)
    assert result.reused_shards == 2
    assert (tmp_path / "r" / "manifest.json").read_bytes() == (tmp_path / "ref" / "manifest.json").read_bytes()


@pytest.mark.parametrize("intruder", ["renamed", "not a shard"])
def test_a_file_under_a_shard_name_that_is_not_this_runs_shard_stops_the_run(tmp_path, pool, intruder):
    config = _pool_config(pool)
    generate(config, tmp_path / "ref", workers=1, progress=False)
    generate(config, tmp_path / "r", workers=1, progress=False)
    folder = tmp_path / "r"
    (folder / "manifest.json").unlink()  # as after an interrupted run
    if intruder == "renamed":
        (folder / "shard-00001.h5").write_bytes((folder / "shard-00000.h5").read_bytes())
        message = "shard-00001.h5 is not this run's shard 1 \\(it holds shard 0"
    else:
        (folder / "shard-00001.h5").write_text("my notes")
        message = "shard-00001.h5 is not a readable drivesim shard"
    (folder / "shard-00002.h5.tmp").write_text("unfinished")
    with pytest.raises(GenerateError, match=message):
        generate(config, folder, workers=1, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5", "shard-00002.h5.tmp"]  # nothing removed
    generate(config, folder, workers=1, force=True, progress=False)
    assert (folder / "manifest.json").read_bytes() == (tmp_path / "ref" / "manifest.json").read_bytes()
    assert not list(folder.glob("*.tmp"))


def test_corrupt_shard_is_reported_clearly(tmp_path, tiny_recording):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_recording, copy)
    shard = copy / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
    shard.write_bytes(bytes(data))
    result = cli("inspect", copy, "--verify")
    assert result.returncode == 2 and "shard-00001.h5" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(RecordingError):
        open_recording(copy).read("images/center", 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", 0], "frames"),
        (["--randomize", "heavy"], "--randomize"),
        (["--cameras", "front"], "--cameras"),
        (["--tracks", "no/such/folder"], "no such track file"),
        (["--width", 4], "width"),
        (["--seed", -1], "--seed"),
        (["--cameras", "center,center"], "more than once"),
        (["--cameras", "center,"], "--cameras must name center, and may add left and right"),
        (["--cameras", ""], "an empty argument after '--cameras' (an unset shell variable?)"),
        (["--cameras", "left,right"], "--cameras must name center"),
        (["--frames", 10**11, "--shard-frames", 1], "raise shard_frames"),  # once built a list of 1e11 shards
        (["--frames", 1001, "--shard-frames", 1001, "--episode-frames", 1], "1,001 episodes a shard"),  # failed 1,000 frames in
    ],
)
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    result = cli("generate", "--out", tmp_path / "x", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--frames", "5", "--out", ""], "an empty argument after '--out'"),
        (["train", "--data", "rec", "--out="], "--out is empty"),
        (["eval", "--model", "expert", "--report", ""], "an empty argument after '--report'"),
        (["inspect", ""], "an empty argument after 'inspect'"),
    ],
)
def test_an_empty_argument_is_refused_not_taken_for_the_current_folder(tmp_path, args, message):
    # `--out "$OUT"` with OUT unset: Path("") is ".", and a model or report would land among the user's files.
    result = subprocess.run([sys.executable, "-m", "drivesim.cli", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"drivesim: error: {message} (an unset shell variable?)", result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "command, option, value, message",
    [
        ("generate", "--noise", "nan", "expected a number in [0, 1], got nan"),  # typer's own range let NaN through
        ("generate", "--noise", "2", "expected a number in [0, 1], got 2"),
        ("eval", "--laps", "inf", "expected a number in [0.01, 1000], got inf"),
        ("dagger", "--eval-laps", "1e-9", "expected a number in [0.01, 1000], got 1e-9"),  # once no distance: a None in a log line
        ("train", "--lr", "nan", "expected a number in (0, inf), got nan"),
        ("tracks generate", "--length", "-inf", "expected a finite number, got -inf"),
        ("dagger", "--start-noise", "x", "expected a number, got 'x'"),
    ],
)
def test_number_options_name_the_option_and_its_range(tmp_path, command, option, value, message):
    required = {"eval": ["--model", "expert", "--record"], "train": ["--data", tmp_path, "--out"]}.get(command, ["--out"])
    result = cli(*command.split(), *required, tmp_path / "x", option, value)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"drivesim: error: invalid value for '{option}': {message}; see drivesim {command} -h\n", result.stderr
    assert not (tmp_path / "x").exists()


def test_inspect_of_a_recording_it_cannot_write_asks_for_out(tiny_recording, monkeypatch):
    import drivesim.cli as command_line

    # As on a read-only share (chmod cannot show it to root, who may write anyway).
    monkeypatch.setattr(command_line.os, "access", lambda path, mode: Path(path) != tiny_recording)
    with pytest.raises(DrivesimError, match="rec is not writable, and the pictures go into the recording unless --out names another folder"):
        command_line.inspect_command(tiny_recording, out=None, samples=1, camera="center", verify=False)


def test_inspect_writes_pictures(tmp_path, tiny_recording):
    result = cli("inspect", tiny_recording, "--out", tmp_path, "--samples", 6)
    assert result.returncode == 0, result.stderr
    assert "240 frames" in result.stdout
    assert (tmp_path / "contact-sheet.png").stat().st_size > 5000 and (tmp_path / "histograms.png").stat().st_size > 5000
    wrong = cli("inspect", tiny_recording, "--camera", "left", "--out", tmp_path / "x")
    assert wrong.returncode == 2 and "--camera 'left' is not in" in wrong.stderr and "it has center" in wrong.stderr
    assert wrong.stdout == "" and not (tmp_path / "x").exists()  # refused before the summary, no folder made
    (tmp_path / "afile").write_text("")
    assert f"--out: {tmp_path / 'afile'} is a file, where a folder must be" in cli("inspect", tiny_recording, "--out", tmp_path / "afile").stderr


def test_a_policy_checkpoint_folder_drives_and_is_recognised_however_it_is_named(tmp_path, repo_root):
    from drivesim.generate import config_fingerprint, same_config
    from drivesim.learn import ModelConfig, Preprocessing, build_model
    from drivesim.learn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "net" / "model.safetensors", build_model(ModelConfig("small"), (66, 200)), Preprocessing(), {})
    tracks = str(repo_root / "tracks" / "val" / "val-000.json")
    as_folder = GenerateConfig(frames=40, shard_frames=40, episode_frames=40, tracks=tracks, policy=str(tmp_path / "net"))
    generate(as_folder, tmp_path / "rec", workers=1, progress=False)
    with h5py.File(open_recording(tmp_path / "rec").shard_path(0), "r") as f:
        assert np.any(f["meta/driver"][...] == 1)  # the network drove
    stored = read_manifest(tmp_path / "rec").config
    as_file = replace(as_folder, policy=str(tmp_path / "net" / "model.safetensors"))
    assert same_config(stored, config_fingerprint(as_file))
    # Without the digest (recordings made before it was stored) the folder and its weights file are still one policy.
    assert same_config({k: v for k, v in stored.items() if k != "policy_sha256"}, {k: v for k, v in config_fingerprint(as_file).items() if k != "policy_sha256"})
    other = replace(as_folder, seed=1)
    assert not same_config(stored, config_fingerprint(other))


def test_workers_fork_from_a_process_whose_opencv_threads_are_running(tmp_path, repo_root):
    # A forked child inherits the book-keeping of OpenCV's thread pool but not its threads, and waited for
    # them forever: a script that had used OpenCV on many cores hung at generate's first shard.
    script = tmp_path / "warm.py"
    script.write_text(
        "import cv2, numpy as np\nfrom drivesim.config import GenerateConfig\nfrom drivesim.generate import generate\n"
        "if __name__ == '__main__':\n"
        "    cv2.setNumThreads(2)\n"
        "    image = np.zeros((2000, 2000, 3), np.uint8)\n"
        "    for _ in range(5):\n        cv2.warpPerspective(image, np.eye(3), (2000, 2000))  # the pool's threads start\n"
        f"    generate(GenerateConfig(frames=40, shard_frames=20, episode_frames=20, tracks={str(repo_root / 'tracks' / 'val')!r}), {str(tmp_path / 'rec')!r}, workers=2, progress=False)\n"
        "    assert cv2.getNumThreads() == 2\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "rec").glob("shard-*.h5"))) == 2


def test_an_unguarded_script_works_while_workers_fork_and_gets_a_reason_when_they_spawn(tmp_path, repo_root):
    # Spawned workers import the calling script (as on macOS); without a __main__ guard they die at start.
    # Say why. Forked workers do not import it, so the same script just works, torch loaded or not.
    call = (
        "from drivesim.config import GenerateConfig\nfrom drivesim.generate import generate\n"
        f"generate(GenerateConfig(frames=40, shard_frames=20, episode_frames=20, tracks={str(repo_root / 'tracks' / 'val')!r}), {str(tmp_path / 'rec')!r}, workers=2, progress=False)\n"
    )
    spawn = "import multiprocessing, drivesim.processes\ndrivesim.processes.worker_context = lambda threads=1: multiprocessing.get_context('spawn')\n"
    linux = sys.platform == "linux"
    for preamble, works in (("", linux), ("import torch\n", linux), (spawn, False)):
        shutil.rmtree(tmp_path / "rec", ignore_errors=True)
        script = tmp_path / "unguarded.py"
        script.write_text(preamble + call)
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        if works:
            assert result.returncode == 0, result.stderr
            assert len(list((tmp_path / "rec").glob("shard-*.h5"))) == 2
        else:
            assert result.returncode != 0, result.stdout
            # The workers' own tracebacks may come after the parent's last line: look for the reason anywhere.
            reason = [line for line in result.stderr.splitlines() if line.startswith("drivesim.generate.GenerateError: a worker process died")]
            assert reason and 'if __name__ == "__main__":' in reason[0], result.stderr[-3000:]


def test_ctrl_c_stops_the_workers_at_once(tmp_path, repo_root, terminal):
    # A worker used to write out the group of shards already handed to it before the pool closed: Ctrl-C
    # took ten seconds, and wrote a dozen shards nobody asked for any more.
    args = ["generate", "--frames", 20000, "--shard-frames", 200, "--episode-frames", 100, "--seed", 5, "--tracks", repo_root / "tracks" / "val", "--workers", 2, "--out", tmp_path / "r"]
    process = terminal.start(*args)
    try:
        deadline = time.time() + 120
        while len(list((tmp_path / "r").glob("shard-*.h5"))) < 2:
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.05)
        at_interrupt = len(list((tmp_path / "r").glob("shard-*.h5")))
        terminal.ctrl_c(process)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    kept = sorted((tmp_path / "r").glob("shard-*.h5"))
    assert len(kept) <= at_interrupt + 2  # at most the shards being written then
    # What Ctrl-C leaves is whole shards only, each one a resume can keep: no half-written temporary.
    assert not list((tmp_path / "r").glob("*.tmp"))
    for shard in kept:
        info, _ = shard_info_from_file(shard)
        assert info.frames == 200


FINALIZER_INTERRUPTS = {
    # Python only prints a KeyboardInterrupt raised in a __del__ (the garbage collector runs them at any
    # moment): an eval went on to write its report after Ctrl-C, once in CI. drivesim's main raises it again.
    "ctrl-c": ("signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it\n",
               "raise KeyboardInterrupt", "interrupted"),
    # `drivesim ... &` from a script ignores SIGINT, and interrupt_main then did nothing: the SIGTERM was lost
    # for good, its handler having set the signals that follow to be ignored.
    "sigterm, sigint ignored": ("signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n",
                                "time.sleep(0.5)  # the SIGTERM arrives while a finalizer runs", "interrupted SIGTERM:"),
}


@pytest.mark.parametrize("case", list(FINALIZER_INTERRUPTS))
def test_an_interrupt_that_lands_in_a_finalizer_is_not_lost(case):
    setup, finalizer, expected = FINALIZER_INTERRUPTS[case]
    script = (
        "import os, signal, sys, threading, time\n"
        "from drivesim import cli\n"
        "for s in cli.TERMINATION_SIGNALS:  # as cli.main sets them\n"
        "    signal.signal(s, cli._stop_as_on_ctrl_c)\n"
        "sys.unraisablehook = cli.resend_interrupt_lost_in_a_finalizer\n"
        f"{setup}"
        "class Finalized:\n"
        "    def __del__(self):\n"
        f"        {finalizer}\n"
        "try:\n"
        "    Finalized()\n"
        "    deadline = time.monotonic() + 10\n"
        "    while time.monotonic() < deadline:\n"
        "        pass\n"
        "    print('lost')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', cli._signal_name())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected and not result.stderr, result.stderr


@pytest.mark.parametrize("group", [False, True], ids=["to drivesim alone (kill)", "then to its group (timeout, schedulers)"])
def test_sigterm_stops_drivesim_and_its_workers_as_ctrl_c_does(tmp_path, repo_root, terminal, group):
    args = ["generate", "--frames", 20000, "--shard-frames", 200, "--episode-frames", 100, "--tracks", repo_root / "tracks" / "val", "--workers", 2, "--out", tmp_path / "r"]
    process = terminal.start(*args)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "r").glob("shard-*.h5")):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.05)
        process.terminate()
        if group:  # the workers get it too, and the main process a second one
            os.killpg(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "drivesim: SIGTERM: interrupted; finished parts are kept, and the same command resumes from them"
    assert not list((tmp_path / "r").glob("*.tmp"))
    deadline = time.time() + 10
    while time.time() < deadline:  # the process group: its workers end with it
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("a worker outlived drivesim")


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--frames", 10, "--out"],
        ["train", "--data", "no-such-recording", "--out"],
        ["dagger", "--out"],
        ["eval", "--model", "expert", "--record"],
        ["eval", "--model", "expert", "--report"],
        ["inspect", "RECORDING", "--out"],
    ],
    ids=lambda command: " ".join(map(str, command[:1] + command[-1:])),
)
@pytest.mark.parametrize("below", [False, True], ids=["the-file", "below-it"])
def test_an_output_folder_option_naming_a_file_is_refused_before_any_work(tmp_path, tiny_recording, command, below):
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "sub" if below else tmp_path / "afile"
    result = cli(*[tiny_recording if word == "RECORDING" else word for word in command], target)
    assert result.returncode == 2 and f"{command[-1]}: {tmp_path / 'afile'} is a file, where a folder must be" in result.stderr, result.stderr
    assert result.stdout == "" and (tmp_path / "afile").read_text() == ""


def test_an_output_path_through_a_broken_link_is_refused_before_any_work(tmp_path, tiny_recording, repo_root):
    # mkdir fails on a link to nothing only when the output is written: train lost its model, eval its report.
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    track = repo_root / "tracks" / "val" / "val-000.json"
    for command in (["train", "--data", tiny_recording, "--model", "small", "--epochs", "1", "--out", tmp_path / "dangling"],
                    ["eval", "--model", "expert", "--tracks", track, "--laps", "0.05", "--report", tmp_path / "dangling" / "report"],
                    ["inspect", tiny_recording, "--out", tmp_path / "dangling"],
                    ["tracks", "preview", track, "--out", tmp_path / "dangling" / "preview.png"]):
        result = cli(*command)
        assert result.returncode == 2 and result.stdout == "", (command, result.stdout, result.stderr)
        assert result.stderr == f"drivesim: error: --out: {tmp_path / 'dangling'} is a link to {tmp_path / 'gone'}, which does not exist\n" or (
            command[0] == "eval" and "--report: " in result.stderr and "which does not exist" in result.stderr), result.stderr
    assert not (tmp_path / "gone").exists()


def test_an_output_path_through_a_loop_of_links_is_called_one(tmp_path, tiny_recording):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = cli("inspect", tiny_recording, "--out", tmp_path / "a" / "sheet")
    assert result.returncode == 2 and result.stderr == f"drivesim: error: --out: {tmp_path / 'a'} is a link in a loop of links\n", result.stderr


def test_tracks_preview_checks_where_its_png_goes_before_drawing(tmp_path, repo_root):
    # It used to draw first and then fail on its temporary file ("p.png.tmp: Read-only file system").
    (tmp_path / "afile").write_text("")
    (tmp_path / "a.png").mkdir()
    for out, message in ((tmp_path / "afile" / "p.png", f"--out: {tmp_path / 'afile'} is a file, where a folder must be"),
                         (tmp_path / "a.png", f"--out: {tmp_path / 'a.png'} is a folder, where a .png file must be")):
        result = cli("tracks", "preview", repo_root / "tracks" / "val", "--out", out)
        assert result.returncode == 2 and result.stderr == f"drivesim: error: {message}\n", result.stderr


def test_a_second_run_into_a_folder_being_written_is_refused_and_the_first_is_unharmed(tmp_path, repo_root):
    # The second run once took the first's shards in progress for an interrupted run's leftovers and deleted them.
    args = ["generate", "--frames", 3000, "--shard-frames", 500, "--tracks", repo_root / "tracks" / "val", "--randomize", "none", "--workers", 1, "--out", tmp_path / "r"]
    first = subprocess.Popen([sys.executable, "-m", "drivesim.cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "r").glob("shard-*.h5*")):
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.02)
        second = cli(*args)
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 2 and "is being written by another drivesim run" in second.stderr and len(second.stderr.splitlines()) == 1, second.stderr
    assert first.returncode == 0, err
    verify_recording(tmp_path / "r")
    assert cli(*args).returncode == 0  # once the first has ended, the same command runs (and keeps every shard)


@pytest.mark.parametrize("command, writing", [
    (["eval", "--model", "expert", "--tracks", "TRACK", "--laps", "0.05", "--no-reference", "--workers", "1", "--record"], "shard-00000.h5.tmp"),
    (["train", "--data", "RECORDING", "--model", "small", "--max-steps", "1", "--workers", "0", "--force", "--out"], "loss.png.tmp"),
    # Its first model saved, its log not yet: no longer called "a model from an interrupted run".
    (["train", "--data", "RECORDING", "--model", "small", "--max-steps", "1", "--workers", "0", "--out"], "model.safetensors"),
], ids=["eval-record", "train-out", "train-out-with-a-model"])  # fmt: skip
def test_eval_and_train_refuse_a_folder_another_run_is_writing(tmp_path, tiny_recording, repo_root, command, writing):
    # Two evals into one --record destroyed each other (each one's clean-up removed the other's shards); two
    # trains into one --out both said they wrote it, and one model was lost.
    import fcntl

    folder = tmp_path / "busy"
    folder.mkdir()
    in_progress = folder / writing  # what the other run is writing
    in_progress.write_bytes(b"half a shard")
    track = repo_root / "tracks" / "val" / "val-000.json"
    holder = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = cli(*[{"TRACK": track, "RECORDING": tiny_recording}.get(word, word) for word in command], folder)
    finally:
        os.close(holder)
    assert refused.returncode == 2 and f"{folder} is being written by another drivesim run" in refused.stderr, refused.stderr
    assert f"choose another {command[-1]}" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert sorted(folder.iterdir()) == [in_progress] and in_progress.read_bytes() == b"half a shard"


def test_a_file_system_without_folder_locks_still_generates(tmp_path, monkeypatch):
    # NFS emulates flock with fcntl locks, which a folder opened read-only cannot take: EBADF, for every run.
    import errno
    import fcntl

    def unsupported(fd, operation):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    config = GenerateConfig(frames=20, shard_frames=20, tracks=str(REPO / "tracks" / "val"), randomization=RandomizationConfig.preset("none"))
    assert generate(config, tmp_path / "r", workers=1, progress=False).frames == 20


def test_a_policy_that_is_no_checkpoint_is_refused_before_the_folder_is_made(tmp_path):
    (tmp_path / "junk.safetensors").write_text("junk")
    (tmp_path / "c.json").write_text(json.dumps({"policy": str(tmp_path / "junk.safetensors")}))
    result = cli("generate", "--config", tmp_path / "c.json", "--frames", 10, "--out", tmp_path / "r")
    assert result.returncode == 2 and "junk.safetensors: not a safetensors checkpoint" in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()


def test_shards_differ_in_track_start_noise_and_look(tmp_path):
    # Each shard's seeds derive from the run seed and the shard's index: a seed lost on the way would give every
    # shard the same episode, which every determinism test still passes.
    config = GenerateConfig(frames=30, shard_frames=10, seed=1, tracks=str(REPO / "tracks" / "val" / "val-000.json"))
    recording = open_recording(generate(config, tmp_path / "r", workers=1, progress=False).folder)
    starts = {(float(recording.read("state/progress", k)[0]), float(recording.read("state/lateral_offset", k)[0])) for k in range(3)}
    steering = {recording.read("controls/steering", k).tobytes() for k in range(3)}  # the executed, noisy command
    looks = set()
    for k in range(3):
        with h5py.File(recording.shard_path(k), "r") as f:
            looks.add(json.dumps(json.loads(f.attrs["tracks"])[0]["appearance"], sort_keys=True))
    assert len(starts) == len(steering) == len(looks) == 3
    # And with --tracks random, each shard its own track.
    config = replace(config, frames=20, tracks="random")
    recording = open_recording(generate(config, tmp_path / "random", workers=1, progress=False).folder)
    assert recording.attrs(0)["generator"]["track_seed"] != recording.attrs(1)["generator"]["track_seed"]
