import json

import numpy as np
import pytest

from drivesim.config import TrackConfig
from drivesim.track import TrackError, generate_track, load_track, load_tracks, save_track


def test_round_trip_is_bit_identical(tmp_path):
    track = generate_track(11, TrackConfig(length=600, lanes=2, width=9))
    path = save_track(track, tmp_path / "t.json")
    loaded = load_track(path)
    assert loaded.centreline.tobytes() == track.centreline.tobytes()
    assert loaded.curvature.tobytes() == track.curvature.tobytes()
    assert (loaded.width, loaded.lanes, loaded.seed, loaded.config) == (track.width, track.lanes, track.seed, track.config)
    assert loaded.length == track.length


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda text: text[: len(text) // 2], "truncated or corrupt"),
        (lambda text: "[1, 2, 3]", "not a track file"),
        (lambda text: text.replace('"format_version":1', '"format_version":99'), "format_version"),
        (lambda text: text.replace('"lanes":1', '"lanes":"one"'), "lanes"),
        (lambda text: text.replace('"width":', '"wide":'), "missing field"),
        (lambda text: text.replace('},"width":8.0', '},"width":true'), "width must be a number"),
        (lambda text: text.replace('},"width":8.0', '},"width":1.0'), r"width must be a number of metres in \[4, 20\]"),
        (lambda text: text.replace('},"width":8.0', '},"width":' + "9" * 400), "width must be"),
        (lambda text: text.replace('},"width":8.0', '},"width":' + "9" * 5000), "cannot read track file"),
        (lambda text: text.replace('"lanes":1,"length"', '"lanes":true,"length"'), "lanes must be an integer"),
        (lambda text: text.replace('"seed":3', '"seed":{"x":1}'), "seed must be an integer or null"),
        (lambda text: text.replace('"name":"seed-3"', '"name":5'), "name must be a string"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, mutate, message):
    path = save_track(generate_track(3, TrackConfig(length=500)), tmp_path / "t.json")
    path.write_text(mutate(path.read_text()))
    with pytest.raises(TrackError, match=message):
        load_track(path)


def test_a_null_name_is_the_file_name(tmp_path):
    path = save_track(generate_track(3, TrackConfig(length=500)), tmp_path / "mine.json")
    path.write_text(path.read_text().replace('"name":"seed-3"', '"name":null'))
    assert load_track(path).name == "mine"


def test_a_file_without_config_must_have_bends_the_car_can_take(tmp_path):
    # A 4 m road may bend at 4 m, but the car turns no tighter than 2.6 m / tan(0.5) = 4.8 m.
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    circle = {"format_version": 1, "name": "tight", "seed": None, "config": None, "width": 4.0, "lanes": 1}
    for radius, fits in ((4.2, False), (6.0, True)):
        circle["centreline"] = np.column_stack([radius * np.cos(angles), radius * np.sin(angles)]).tolist()
        (tmp_path / "t.json").write_text(json.dumps(circle))
        if fits:
            assert load_track(tmp_path / "t.json").name == "tight"
        else:
            with pytest.raises(TrackError, match="tighter than the minimum 4.8 m"):
                load_track(tmp_path / "t.json")


def test_self_intersecting_file_is_rejected(tmp_path):
    track = generate_track(5, TrackConfig(length=500))
    data = json.loads(save_track(track, tmp_path / "t.json").read_text())
    points = np.array(data["centreline"])
    # Swap two far-apart halves of the loop: the centreline now crosses itself.
    n = len(points)
    data["centreline"] = np.concatenate([points[: n // 4], points[n // 2 : 3 * n // 4], points[n // 4 : n // 2], points[3 * n // 4 :]]).tolist()
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(TrackError, match="t.json"):
        load_track(tmp_path / "t.json")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(TrackError, match="no such track file"):
        load_track(tmp_path / "nope.json")
    with pytest.raises(TrackError, match="no track files"):
        load_tracks(tmp_path)


def test_a_recording_given_as_tracks_is_named_as_such(tiny_recording):
    with pytest.raises(TrackError, match="rec is a recording folder, not a folder of track files"):
        load_tracks(tiny_recording)  # its manifest.json once read as a track file of format_version None


def test_two_tracks_of_one_name_in_a_set_are_refused(tmp_path, repo_root):
    import shutil

    for name in ("a.json", "b.json"):  # the same file twice: the same "name" field
        shutil.copy(repo_root / "tracks" / "val" / "val-000.json", tmp_path / name)
    with pytest.raises(TrackError, match=r"b.json: its track name 'val-000' is also that of a.json"):
        load_tracks(tmp_path)
    data = json.loads((tmp_path / "b.json").read_text())
    data["name"] = ""  # an unnamed track is named after its file
    (tmp_path / "b.json").write_text(json.dumps(data))
    assert [t.name for t in load_tracks(tmp_path)] == ["val-000", "b"]


def test_bundled_tracks_load_and_splits_are_disjoint(repo_root):
    splits = {split: load_tracks(repo_root / "tracks" / split) for split in ("train", "val", "holdout")}
    assert [len(splits[s]) >= n for s, n in (("train", 20), ("val", 5), ("holdout", 10))] == [True] * 3
    seeds = {split: {t.seed for t in tracks} for split, tracks in splits.items()}
    assert not (seeds["train"] & seeds["val"]) and not (seeds["train"] & seeds["holdout"]) and not (seeds["val"] & seeds["holdout"])
    lengths = [t.length for tracks in splits.values() for t in tracks]
    assert min(lengths) < 800 and max(lengths) > 2000
