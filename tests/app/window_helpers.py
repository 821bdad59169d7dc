"""Posting real pygame events to the window, and reading what it recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygame

from drivesim.record import open_recording


def press(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def release(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=key, mod=0, unicode="", scancode=0))


def tap(app, key: int) -> None:
    """Press and release `key` and let the window take one frame."""
    press(key)
    release(key)
    app.frame()


def frames(app, n: int) -> None:
    for _ in range(n):
        app.frame()


def close_window(app):
    """Click the window's close button and let the window end its run."""
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    return app.run()


def read_all(folder: Path) -> dict[str, np.ndarray]:
    """Every scalar field and the center images of a recording, shards concatenated (opened and checked by the reader)."""
    recording = open_recording(folder)
    names = ("labels/steering", "labels/throttle", "controls/steering", "controls/throttle", "meta/driver", "meta/events",
             "meta/episode", "meta/step", "state/x", "state/y", "state/yaw", "state/speed", "state/progress")
    out = {name: np.concatenate([recording.read(name, i) for i in range(len(recording.shards))]) for name in names}
    import h5py

    images = []
    for i in range(len(recording.shards)):
        with h5py.File(recording.shard_path(i), "r") as f:
            images.append(f["images/center"][...])
    out["images/center"] = np.concatenate(images)
    return out


def leftovers(folder: Path) -> list[str]:
    """Temporary (unfinished) files in a recording folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
