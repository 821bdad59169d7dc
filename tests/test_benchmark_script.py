"""scripts/benchmark.py runs: every subcommand, at tiny sizes, prints its figures and exits cleanly.

The README's performance figures come from this script, so a change that breaks it should fail here, not
the next time someone measures. Nothing here judges a speed: the sizes are far too small for that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from drivesim.processes import usable_cores

CASES = {
    "render": (["--frames", "10", "--episodes", "1", "--length", "400", "--levels", "none"], r"randomization none : +(\d+) frames/s"),
    "generate": (["--frames", "60", "--levels", "none", "--car-racing-steps", "20"], r"writer's deflate and checksum of the same frames alone \(the first \d+\), one core: +(\d+) frames/s"),
    "setup": (["--tracks", "1", "--looks", "1"], r"look and camera set-up (\d+) ms"),
    "compression": (["--frames", "40", "--levels", "full"], r"full +writer +[\d.]+ +(\d+)"),
    "parallel": (["--frames", "200", "--shard-frames", "50", "--repeats", "1"], r"2 workers: +(\d+) frames/s"),
    "memory": (["--frames", "100", "200"], r"tracks/train: +200 frames: peak +(\d+) MiB"),
    "loader": (["--frames", "200", "--model", "small"], r"training pipeline \(augment \+ preprocess\): +(\d+) frames/s"),
    "closedloop": (
        ["--model", "models/pilotnet-baseline", "--tracks", "tracks/val", "--laps", "0.03", "--repeats", "1"],
        r"network alone in 2 one-thread processes at once, batches of \d+: +(\d+) frames/s",
    ),
    "env": (["--steps", "30", "--max-steps", "12", "--tracks", "tracks/val", "--levels", "full", "--car-racing-steps", "20"],
            r"pixels 160x120, randomization full: +(\d+) steps/s"),
}


@pytest.mark.parametrize("command", list(CASES))
def test_benchmark_subcommand_runs_and_reports(command, repo_root):
    args, figure = CASES[command]
    if command == "closedloop" and usable_cores() < 2:  # as the benchmark decides
        pytest.skip("the processes line needs two cores")
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", command, *args],
        cwd=repo_root, capture_output=True, text=True, timeout=300, env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    match = re.search(figure, result.stdout)
    assert match, result.stdout
    assert int(match.group(1)) > 0


@pytest.mark.parametrize(
    "args, reason",
    [
        (["parallel", "--frames", "100", "--shard-frames", "100"], "one shard"),
        (["closedloop", "--model", "no-such-model"], "no such checkpoint"),
        (["render", "--frames", "1"], "must be at least 2"),
        (["render", "--size", "160"], "WxH"),
    ],
)
def test_benchmark_user_mistakes_get_one_line_and_no_traceback(args, reason, repo_root):
    result = subprocess.run([sys.executable, "scripts/benchmark.py", *args], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert reason in result.stderr
