"""Fixtures of the window tests: the real pygame window, headless (SDL_VIDEODRIVER=dummy, set in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def track_file(repo_root: Path) -> Path:
    """A short one-lane bundled track."""
    return repo_root / "tracks" / "train" / "train-008.json"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A valid, randomly initialised small network: it drives, badly, which is all a takeover test needs."""
    import torch

    from drivesim.learn import ModelConfig, Preprocessing, build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig("small"), (66, 200))
    return save_checkpoint(tmp_path_factory.mktemp("model") / "model.safetensors", model, Preprocessing(), {"note": "untrained, for tests"})


@pytest.fixture
def make_app(track_file):
    """Build windows of 320x240 that take exactly one simulation step per frame, as fast as they can; all closed at teardown."""
    from drivesim.app import App, PlayConfig

    apps = []

    def make(**overrides):
        settings = dict(size=(320, 240), track=str(track_file), steps_per_frame=1, max_fps=0, randomization="none")
        settings.update(overrides)
        app = App(PlayConfig(**settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.session.close()
        app.close()
