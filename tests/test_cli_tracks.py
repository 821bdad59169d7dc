import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "drivesim.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_tracks_generate_and_preview(tmp_path):
    result = run_cli("tracks", "generate", "--seed", 5, "--count", 2, "--length", 600, "--lanes", 2, "--out", tmp_path / "t")
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "t").glob("*.json"))
    assert [f.name for f in files] == ["track-00005.json", "track-00006.json"]
    again = run_cli("tracks", "generate", "--seed", 5, "--length", 600, "--lanes", 2, "--out", tmp_path / "u")
    assert again.returncode == 0
    assert (tmp_path / "u" / "track-00005.json").read_bytes() == files[0].read_bytes()

    preview = run_cli("tracks", "preview", *files, "--out", tmp_path / "p.png")
    assert preview.returncode == 0, preview.stderr
    image = cv2.imread(str(tmp_path / "p.png"))
    assert image.shape == (360, 720, 3)
    # The start line is drawn in red (BGR order from OpenCV).
    red = (image[..., 2] > 200) & (image[..., 1] < 80) & (image[..., 0] < 80)
    assert red.sum() > 10


def test_tracks_generate_replaces_no_other_track_without_force(tmp_path):
    # A recording made on a track folder resumes only while its files are unchanged.
    assert run_cli("tracks", "generate", "--seed", 5, "--length", 600, "--out", tmp_path).returncode == 0
    before = (tmp_path / "track-00005.json").read_bytes()
    assert run_cli("tracks", "generate", "--seed", 5, "--length", 600, "--out", tmp_path).returncode == 0  # the same track again
    refused = run_cli("tracks", "generate", "--seed", 4, "--count", 2, "--length", 900, "--out", tmp_path)
    assert refused.returncode == 2 and "track-00005.json already holds another track" in refused.stderr, refused.stderr
    assert (tmp_path / "track-00005.json").read_bytes() == before and not (tmp_path / "track-00004.json").exists()
    assert run_cli("tracks", "generate", "--seed", 4, "--count", 2, "--length", 900, "--out", tmp_path, "--force").returncode == 0
    assert (tmp_path / "track-00005.json").read_bytes() != before


def test_preview_columns_beyond_the_track_count_draw_no_empty_tiles(tmp_path):
    assert run_cli("tracks", "generate", "--seed", 5, "--count", 2, "--length", 600, "--out", tmp_path / "t").returncode == 0
    result = run_cli("tracks", "preview", tmp_path / "t", "--out", tmp_path / "p.png", "--columns", 100000)  # once a 36 GB sheet
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "p.png")).shape == (360, 720, 3)


def test_user_errors_are_one_line_with_nonzero_exit(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 1, "width"')
    cases = [
        ("tracks", "preview", bad, "--out", tmp_path / "p.png"),
        ("tracks", "preview", tmp_path / "missing.json", "--out", tmp_path / "p.png"),
        ("tracks", "generate", "--lanes", 3, "--out", tmp_path),
        ("tracks", "generate", "--config", bad, "--out", tmp_path),
        ("tracks", "preview", tmp_path / "missing.json", "--out", tmp_path / "p.txt"),  # OpenCV would pick a format by the name
        ("eval", "--model", "expert", "--report", bad),  # refused before driving, not after
        ("eval", "--model", "expert", "--config", bad),  # (--laps inf, once an OverflowError, is click's usage error now)
        ("train", "--data", tmp_path, "--out", tmp_path / "m", "--cameras", "center,center"),  # once every frame twice
        ("inspect", bad),
        # Click's usage errors too, once four lines (usage, hint, blank, error):
        ("generate", "--out", tmp_path / "r", "--bogus"),
        ("generate",),  # --out missing
        ("inspect", bad, bad),
        ("eval", "--model"),
        ("train", "--data", tmp_path, "--out", tmp_path / "m", "--epochs", "many"),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("drivesim: error:"), result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    # Where to look, also when click has not reached the command yet (an option without its value):
    for args, message in ((("tracks", "generate", "--out"), "option '--out' requires an argument; see drivesim tracks generate -h"),
                          (("generate", "--out", tmp_path, "--frames", "many"), "invalid value for '--frames': input should be a valid integer"),
                          (("inspect", bad, bad), "got unexpected extra argument(s) (" + str(bad) + "); see drivesim inspect -h")):
        assert message in run_cli(*args).stderr


def test_help_lists_commands_and_the_version_is_one_option_away():
    from drivesim import __version__

    result = run_cli("--help")
    assert result.returncode == 0 and "tracks" in result.stdout
    assert "Train a driving network" in run_cli("train", "-h").stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout == f"drivesim {__version__}\n"
    # Options that take a list show what goes in them, not typer's type name.
    assert "--data RECORDING" in run_cli("train", "--help", env={**os.environ, "COLUMNS": "120"}).stdout


def test_track_sources_named_nearly_right_get_the_right_name_in_the_error(tmp_path):
    # "Random" was taken for a folder; "tracks" named the installed package's folder, which holds only sets.
    for args, message in ((("generate", "--tracks", "Random"), "tracks 'Random': for a fresh procedural track per shard, write random (lower case)"),
                          (("dagger", "--tracks", "RANDOM"), "tracks 'RANDOM': for a fresh procedural track per shard, write random (lower case)"),
                          (("eval", "--model", "expert", "--tracks", "tracks"),
                           "tracks: no track files (*.json) in this folder; it holds the track sets holdout, train, val: name one, e.g. tracks/holdout")):
        result = run_cli(*args, "--out" if args[0] != "eval" else "--report", tmp_path / "out", cwd=tmp_path)
        assert result.returncode == 2 and result.stderr == f"drivesim: error: {message}\n", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bundled_tracks_are_found_from_any_folder(tmp_path):
    # Default --tracks values are relative (tracks/holdout); they must work outside the checkout too.
    result = run_cli("tracks", "preview", "tracks/val", "--out", tmp_path / "val.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(5 tracks)" in result.stdout


def test_wheel_ships_the_bundled_tracks(tmp_path):
    # A plain (non-editable) install has no checkout beside it: the track sets must be package data.
    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    shutil.copytree(root / "tracks", source / "tracks")
    shutil.copytree(root / "drivesim", source / "drivesim", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-c", "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))", str(tmp_path / "dist")]
    built = subprocess.run(build, capture_output=True, text=True, cwd=source, timeout=120)
    assert built.returncode == 0, built.stderr
    site = tmp_path / "site"
    with zipfile.ZipFile(tmp_path / "dist" / built.stdout.split()[-1]) as wheel:
        wheel.extractall(site)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import drivesim; from drivesim.track import load_tracks; "
        "print(drivesim.__file__); print(*(len(load_tracks(f'tracks/{s}')) for s in ('train', 'val', 'holdout')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=elsewhere, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    module, counts = loaded.stdout.splitlines()
    assert module.startswith(str(site))
    assert counts.split() == [str(len(list((root / "tracks" / s).glob("*.json")))) for s in ("train", "val", "holdout")]


def test_ctrl_c_in_a_command_without_work_to_keep_still_says_interrupted(tmp_path, terminal):
    # typer turns KeyboardInterrupt into status 130 without a word; commands that keep work say what they
    # kept, and the others (and any command still importing) now say this much.
    import time

    process = terminal.start("tracks", "generate", "--count", 100000, "--out", tmp_path / "t")  # half an hour of tracks
    try:
        time.sleep(4)  # importing, or generating: either way Python's own Ctrl-C handling is in place
        assert process.poll() is None
        terminal.ctrl_c(process)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and err.strip().splitlines()[-1].endswith("drivesim: interrupted"), err
    assert not (tmp_path / "t").exists()  # the tracks are generated in memory first


def test_end_of_input_inside_a_command_is_one_line_not_a_traceback(tmp_path):
    # typer turns an EOFError into its Abort, which the one-line handlers did not know.
    script = ("import sys\nimport drivesim.track\nfrom drivesim import cli\n"
              "def no_input(*args, **kwargs):\n    raise EOFError\n"
              "drivesim.track.generate_track = no_input\n"
              f"sys.argv = ['drivesim', 'tracks', 'generate', '--out', {str(tmp_path / 't')!r}]\ncli.main()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.strip() == "drivesim: aborted", result.stderr
    assert not (tmp_path / "t").exists()
