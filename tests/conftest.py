import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# pygame must never try to open a real display in tests.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture()
def two_val_tracks(tmp_path) -> Path:
    """A track folder of copies of two bundled validation tracks, which a test may change."""
    import shutil

    folder = tmp_path / "pool"
    folder.mkdir()
    for name in ("val-000", "val-001"):
        shutil.copy(REPO / "tracks" / "val" / f"{name}.json", folder)
    return folder


@pytest.fixture(scope="session")
def tiny_recording(tmp_path_factory) -> Path:
    """A real 240-frame recording (2 shards) made by `generate` on bundled training tracks."""
    from drivesim.config import GenerateConfig
    from drivesim.generate import generate

    folder = tmp_path_factory.mktemp("tiny") / "rec"
    config = GenerateConfig(frames=240, shard_frames=120, episode_frames=60, seed=3, tracks=str(REPO / "tracks" / "train"))
    generate(config, folder, workers=1, progress=False)
    return folder


def _default_interrupt_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


class Terminal:
    """`drivesim` run as a terminal's foreground command, which Ctrl-C can interrupt."""

    @staticmethod
    def start(*args) -> subprocess.Popen:
        # A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and under nohup SIGHUP,
        # and so would drivesim (which keeps nohup's choice): the child gets the default dispositions back, as a
        # terminal's foreground command has them.
        return subprocess.Popen(
            [sys.executable, "-m", "drivesim.cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, preexec_fn=_default_interrupt_signals,
        )  # fmt: skip

    @staticmethod
    def ctrl_c(process: subprocess.Popen) -> None:
        """What Ctrl-C in a terminal does: SIGINT to the command's process group, its workers included."""
        os.killpg(process.pid, signal.SIGINT)


@pytest.fixture()
def terminal() -> type[Terminal]:
    return Terminal
