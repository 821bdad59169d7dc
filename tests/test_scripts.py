"""The scripts other than benchmark.py (tests/test_benchmark_script.py): what they reproduce, and user mistakes.

Each runs as a user runs it, `python scripts/NAME.py ...` in a subprocess, at the smallest size that
shows the behaviour.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys

import pytest


def run_script(repo_root, name, *args, cwd=None):
    return subprocess.run([sys.executable, str(repo_root / "scripts" / name), *args], cwd=cwd or repo_root, capture_output=True, text=True, timeout=300)


def test_make_bundled_tracks_reproduces_the_committed_tracks_from_any_folder(repo_root, tmp_path):
    result = run_script(repo_root, "make_bundled_tracks.py", "--out", str(tmp_path / "tracks"), "--preview", str(tmp_path / "preview.png"), cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    for split in ("train", "val", "holdout"):
        committed = sorted(p.name for p in (repo_root / "tracks" / split).glob("*.json"))
        made = sorted(p.name for p in (tmp_path / "tracks" / split).glob("*.json"))
        assert made == committed
        match, mismatch, errors = filecmp.cmpfiles(repo_root / "tracks" / split, tmp_path / "tracks" / split, committed, shallow=False)
        assert not mismatch and not errors


def test_make_bundled_tracks_refuses_a_folder_holding_other_tracks(repo_root, tmp_path):
    mine = tmp_path / "tracks" / "val" / "my-track.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")
    result = run_script(repo_root, "make_bundled_tracks.py", "--out", str(tmp_path / "tracks"), "--preview", str(tmp_path / "p.png"))
    assert result.returncode != 0
    assert "my-track.json" in result.stderr and "Traceback" not in result.stderr
    assert mine.read_text() == "{}"
    assert not (tmp_path / "tracks" / "train").exists()  # refused before writing anything


def test_make_bundled_tracks_into_another_folder_leaves_the_repository_picture_alone(repo_root, tmp_path):
    picture = repo_root / "docs" / "tracks-preview.png"
    before = picture.stat().st_mtime_ns
    result = run_script(repo_root, "make_bundled_tracks.py", "--out", str(tmp_path / "tracks"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tracks" / "tracks-preview.png").stat().st_size > 0
    assert picture.stat().st_mtime_ns == before


def test_learning_curve_checks_the_baselines_log_before_generating_anything(repo_root, tmp_path):
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    shutil.copy(repo_root / "models" / "pilotnet-baseline" / "model.safetensors", baseline)
    (baseline / "train-log.json").write_text('{"config": {}}')
    out = tmp_path / "curve"
    result = run_script(repo_root, "learning_curve.py", "--out", str(out), "--sizes", "100", "--baseline", str(baseline))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "lacks the epochs" in result.stderr and not out.exists()


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--baseline", "no-such-model"], "no such checkpoint"),
        (["--cameras", "center,middle"], "rig cameras must name center, and may add left and right, got 'center', 'middle'"),
        (["--sizes", "0"], "at least 1"),
    ],
)
def test_learning_curve_refuses_bad_arguments_before_generating_anything(repo_root, tmp_path, args, reason):
    out = tmp_path / "curve"
    result = run_script(repo_root, "learning_curve.py", "--out", str(out), "--sizes", "100", *args)
    assert result.returncode != 0
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_check_expert_and_probe_give_one_line_for_a_missing_input(repo_root, tmp_path):
    result = run_script(repo_root, "check_expert.py", "--tracks", str(tmp_path / "none"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "no such track" in result.stderr
    result = run_script(repo_root, "probe_lateral.py", "--model", str(tmp_path / "none"))
    assert result.returncode != 0 and "Traceback" not in result.stderr and "no such checkpoint" in result.stderr


def test_make_one_lane_tracks_writes_one_lane_pools_and_refuses_a_used_folder(repo_root, tmp_path):
    from drivesim.track import load_tracks

    result = run_script(repo_root, "make_one_lane_tracks.py", "--out", str(tmp_path / "ol"), "--train", "3", "--extra", "2")
    assert result.returncode == 0, result.stderr
    pools = {part: load_tracks(tmp_path / "ol" / part) for part in ("train", "holdout", "holdout-extra")}
    assert [len(pools[p]) for p in pools] == [3, 4, 2]
    assert all(track.lanes == 1 for tracks in pools.values() for track in tracks)
    assert sorted(track.name for track in pools["holdout"]) == ["holdout-001", "holdout-002", "holdout-005", "holdout-007"]
    again = run_script(repo_root, "make_one_lane_tracks.py", "--out", str(tmp_path / "ol"))
    assert again.returncode == 1 and again.stderr.strip().endswith("is not empty; choose another --out")
