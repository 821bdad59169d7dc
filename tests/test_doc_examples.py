"""Every Python example in the README and docs/ runs as printed, on real recordings, and gives what its comments say.

A user's first contact with drivesim is copying these blocks; an example that
no longer runs (a renamed argument, a moved import) would otherwise go
unnoticed, since nothing else executes them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from drivesim.record import open_recording, verify_recording
from drivesim.record.schema import FIELDS

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_examples() -> list[tuple[str, str]]:
    """(document:line, code) of every ```python block."""
    examples = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            examples.append((f"{document.relative_to(REPO)}:{line}", match.group(1)))
    return examples


EXAMPLES = python_examples()


def test_the_docs_have_the_examples_this_file_runs():
    # If a block is added, it must be given a case below; if all vanished, the regex broke.
    assert len(EXAMPLES) == 7, [where for where, _ in EXAMPLES]


def _example(*must_contain: str) -> str:
    matching = [code for _, code in EXAMPLES if all(text in code for text in must_contain)]
    assert len(matching) >= 1, f"no example contains {must_contain}"
    return matching[0] if len(matching) == 1 else "\n".join(matching)


@pytest.fixture()
def in_a_project(tmp_path, tiny_recording, monkeypatch) -> Path:
    """A working folder whose recordings/demo, run-7 and run-8 are real recordings, as the examples name them."""
    for name in ("demo", "run-7", "run-8"):
        shutil.copytree(tiny_recording, tmp_path / "recordings" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(code: str, namespace: dict | None = None) -> dict:
    namespace = dict(namespace or {})
    exec(compile(code, "<doc example>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("where,code", [e for e in EXAMPLES if "h5py.File" in e[1]], ids=[w for w, c in EXAMPLES if "h5py.File" in c])
def test_plain_h5py_examples_read_what_their_comments_say(in_a_project, where, code, capsys):
    done = _run(code)
    steering = done["steering"]
    assert steering.dtype == np.float32 and steering.ndim == 1 and len(steering) > 0, where
    if "tracks" in done:
        assert done["tracks"][0]["track"] in capsys.readouterr().out
    with h5py.File(in_a_project / "recordings" / "demo" / "shard-00000.h5") as f:
        assert np.array_equal(steering, f["labels/steering"][:])


@pytest.mark.parametrize("where,code", [e for e in EXAMPLES if "DataLoader" in e[1]], ids=[w for w, c in EXAMPLES if "DataLoader" in c])
def test_dataloader_examples_yield_what_their_comments_say(in_a_project, where, code):
    done = _run(code)
    images, labels = done["images"], done["labels"]  # the last batch of the loop
    assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == (3, 120, 160), where
    assert labels.dtype == torch.float32 and labels.shape == (len(images), 1), where
    if "extras" in done:
        assert set(done["extras"]) == {"state/speed", "meta/events"} and all(len(v) == len(images) for v in done["extras"].values())


def test_the_writer_example_writes_a_recording_that_verifies(tmp_path, tiny_recording, monkeypatch):
    """The example leaves the driving to "your own loop"; here that loop replays the frames of a real recording."""
    with h5py.File(open_recording(tiny_recording).shard_path(0)) as f:
        columns = {name: f[name][:] for name in ["images/center", *(field.name for field in FIELDS)]}
        tracks = json.loads(f.attrs["tracks"])
        config_dict = json.loads(f.attrs["config"])
        intrinsics_dict = json.loads(f.attrs["camera_intrinsics"])
    episodes = []
    for entry in tracks:
        rows = range(entry["first_frame"], entry["first_frame"] + entry["frames"])
        records = [{name: column[i] for name, column in columns.items()} for i in rows]
        episodes.append(SimpleNamespace(records=records, track=SimpleNamespace(name=entry["track"], seed=entry["track_seed"])))
    monkeypatch.chdir(tmp_path)

    _run(_example("RecordingWriter("), {"config_dict": config_dict, "intrinsics_dict": intrinsics_dict, "episodes": episodes})

    written = verify_recording(tmp_path / "recordings" / "run-7")
    assert written.frames == sum(len(e.records) for e in episodes)
    with h5py.File(sorted((tmp_path / "recordings" / "run-7").glob("shard-*.h5"))[0]) as f:
        assert np.array_equal(f["images/center"][:], columns["images/center"])
        assert np.array_equal(f["labels/steering"][:], columns["labels/steering"])


def test_the_gymnasium_example_collects_frames_with_their_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bundled tracks/train is found from any folder
    done = _run(_example("drivesim/Drive-v0", "frames, labels"))
    frames, labels = done["frames"], done["labels"]
    assert len(frames) == len(labels) == 200  # the expert drives max_steps without crashing
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    assert labels[0].shape == (2,) and -1 <= labels[0][0] <= 1
    assert done["truncated"] and not done["terminated"]


def test_the_baseline_drives_the_gymnasium_environment(monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # models/pilotnet-baseline is the checkout's
    done = _run(_example("drivesim/Drive-v0", "PolicyDriver"))
    assert done["truncated"] and not done["crashed"]  # a whole 1,000-step episode
    assert done["info"]["progress"] > 500
    assert capsys.readouterr().out == f"{done['info']['progress']:.0f} m, crashed: False\n"
