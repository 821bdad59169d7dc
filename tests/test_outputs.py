"""Each command writes its own kind of output folder, and refuses one that holds another's."""

import shutil
import subprocess
import sys

import pytest

from drivesim import outputs
from drivesim.outputs import output_held


def cli(*args):
    return subprocess.run([sys.executable, "-m", "drivesim.cli", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def folders(tmp_path, tiny_recording, repo_root):
    """One folder of each kind of output."""
    shutil.copytree(tiny_recording, tmp_path / "recording")
    shutil.copytree(repo_root / "tracks" / "val", tmp_path / "tracks")
    shutil.copytree(repo_root / "models" / "pilotnet-baseline", tmp_path / "model", ignore=shutil.ignore_patterns("eval-*"))
    (tmp_path / "dagger").mkdir()
    (tmp_path / "dagger" / "dagger-config.json").write_text("{}")
    return tmp_path


def test_each_kind_of_output_is_known_by_its_files(folders, tmp_path):
    assert output_held(folders / "recording") == outputs.RECORDING
    assert output_held(folders / "tracks") == outputs.TRACKS
    assert output_held(folders / "model") == outputs.MODEL
    assert output_held(folders / "dagger") == outputs.DAGGER
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "interrupted" / "shard-00003.h5.tmp").write_bytes(b"half a shard")  # generate killed before its manifest
    assert output_held(tmp_path / "interrupted") == outputs.RECORDING
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "settings.json").write_text('{"a": 1}')  # JSON, but no track
    assert output_held(tmp_path / "notes") is None and output_held(tmp_path / "absent") is None


@pytest.mark.parametrize("command, target, held", [
    (["generate", "--frames", "10", "--workers", "1", "--out"], "tracks", "track files, not a recording"),
    (["generate", "--frames", "10", "--workers", "1", "--force", "--out"], "model", "a model, not a recording"),
    (["dagger", "--frames-per-iteration", "100", "--out"], "recording", "a recording, not a DAgger experiment"),
    (["train", "--data", "RECORDING", "--model", "small", "--max-steps", "1", "--force", "--out"], "recording", "a recording, not a model"),
    (["train", "--data", "RECORDING", "--model", "small", "--max-steps", "1", "--force", "--out"], "dagger", "a DAgger experiment, not a model"),
    (["tracks", "generate", "--count", "2", "--out"], "recording", "a recording, not track files"),
    (["play", "--driver", "autopilot", "--frames", "1", "--record"], "tracks", "track files, not a recording"),
], ids=["generate-into-tracks", "generate-into-model", "dagger-into-recording", "train-into-recording", "train-into-dagger", "tracks-into-recording",
        "play-into-tracks"])  # fmt: skip
def test_a_command_refuses_an_output_folder_of_another_kind_and_leaves_it_as_it_was(folders, tiny_recording, command, target, held):
    # generate into a track folder made it unreadable as tracks; dagger into a recording buried it in data/, models/, eval/.
    before = sorted((path.relative_to(folders / target), path.stat().st_size) for path in (folders / target).rglob("*"))
    result = cli(*[tiny_recording if word == "RECORDING" else word for word in command], folders / target)
    option = command[-1]
    assert result.returncode == 2 and result.stderr == f"drivesim: error: {option}: {folders / target} holds {held}; choose another {option}\n", result.stderr
    assert sorted((path.relative_to(folders / target), path.stat().st_size) for path in (folders / target).rglob("*")) == before


def test_a_command_still_writes_into_a_folder_of_its_own_kind(folders, repo_root):
    # Resuming and adding are what a folder of one's own kind is for: more tracks beside tracks.
    result = cli("tracks", "generate", "--count", "1", "--seed", "7", "--out", folders / "tracks")
    assert result.returncode == 0 and (folders / "tracks" / "track-00007.json").exists(), result.stderr
