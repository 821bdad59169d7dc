"""summarize_recording counts, contact sheet and histogram PNGs."""

from __future__ import annotations

import cv2
import numpy as np

from drivesim.record import Event, contact_sheet, format_summary, plot_histograms, summarize_recording


def test_summary_counts(recording):
    folder, records = recording
    summary = summarize_recording(folder)
    assert (summary["frames"], summary["episodes"], summary["shards"]) == (51, 7, 2)
    assert summary["cameras"] == {"center": [24, 32]}
    assert summary["episode_frames"] == {"min": 4, "mean": 51 / 7, "max": 12}
    drivers = [r["meta/driver"] for r in records]
    assert summary["drivers"] == {"expert": drivers.count(0), "policy": drivers.count(1), "human": drivers.count(2)}
    events = np.array([r["meta/events"] for r in records])
    episodes = np.array([r["meta/episode"] for r in records])
    assert summary["events"]["OFF_ROAD"]["frames"] == int(np.count_nonzero(events & Event.OFF_ROAD))
    # RECOVERING is set on steps 3..5 of each episode at least 4 steps long: one onset per such episode.
    assert summary["events"]["RECOVERING"] == {"frames": int(np.count_nonzero(events & Event.RECOVERING)), "onsets": 7}
    assert summary["events"]["CRASH"] == {"frames": 0, "onsets": 0}
    # OFF_ROAD is on every 5th frame; never on two frames in a row, so each is an onset.
    assert summary["events"]["OFF_ROAD"]["onsets"] == summary["events"]["OFF_ROAD"]["frames"]
    assert len(set(episodes)) == 7
    steering = np.array([r["labels/steering"] for r in records], np.float32)
    for name in ("labels/steering", "controls/throttle"):
        histogram = summary["histograms"][name]
        assert len(histogram["edges"]) == len(histogram["counts"]) + 1 and sum(histogram["counts"]) == 51
    assert summary["histograms"]["controls/throttle"]["counts"][15] == 51  # 0.5 falls in bin 15 of 21 over [-1, 1]
    # State is histogrammed too, over its own range; values beyond it count in the end bins rather than vanish.
    offsets = np.array([r["state/lateral_offset"] for r in records])
    lateral = summary["histograms"]["state/lateral_offset"]
    assert lateral["edges"][0] == -3.0 and lateral["edges"][-1] == 3.0 and sum(lateral["counts"]) == 51
    expected = np.histogram(np.clip(offsets, -3, 3), bins=np.linspace(-3, 3, 22))[0]
    assert lateral["counts"] == expected.tolist()
    assert sum(summary["histograms"]["state/speed"]["counts"]) == 51
    assert np.isclose(summary["steering"]["mean"], steering.mean(), atol=1e-6)
    assert np.isclose(summary["steering"]["std"], steering.std(), atol=1e-6)
    assert summary["speed"]["max"] == max(r["state/speed"] for r in records)
    assert "51 frames, 7 episodes in 2 shards" in format_summary(summary)


def test_contact_sheet_and_histograms(recording, tmp_path):
    folder, _ = recording
    out = contact_sheet(folder, tmp_path / "sheet.png", n=10, seed=3, columns=4)
    image = cv2.imread(str(out))
    assert image.shape == (3 * (48 + 2) + 2, 4 * (64 + 2) + 2, 3)
    # Tiles are filled: the 10th tile (row 2, column 1) is not the white background, the 11th is.
    assert image[2 * 50 + 2 : 3 * 50, 66 + 2 : 2 * 66].std() > 0
    assert (image[2 * 50 + 2 : 3 * 50, 2 * 66 + 2 : 3 * 66] == 255).all()
    again = contact_sheet(folder, tmp_path / "again.png", n=10, seed=3, columns=4)
    assert out.read_bytes() == again.read_bytes()
    other = contact_sheet(folder, tmp_path / "other.png", n=10, seed=4, columns=4)
    assert out.read_bytes() != other.read_bytes()
    plot = plot_histograms(summarize_recording(folder), tmp_path / "hist.png")
    assert cv2.imread(str(plot)).shape[0] > 100
