"""Training-time augmentation: only what the test roads will really show.

- Horizontal flip with the steering label negated (a mirrored road is a
  road; its bends go the other way). Off by default: on two-lane roads the
  mirror image shows a car keeping to the *left* lane, which teaches a
  right-hand-traffic network to drive on the centre line (measured: the
  first baseline, trained with flips, held 0% autonomy on every two-lane
  holdout track and 100% on most one-lane ones). The generated tracks run
  clockwise and counter-clockwise equally often, so bends are balanced
  without it.
- Brightness and contrast, as the sun and the camera's exposure vary.
- A soft-edged shadow band across the frame, as trees and bridges cast.
- Left/right rig cameras (PilotNet's recovery trick): their frames look as if
  the car had drifted sideways, so their label gets a correction that steers
  back. Left camera: steer right (-correction); right camera: +correction.

The default correction is what the expert itself does: placed 0.8 m (the
rig's side offset) off its lane centre at its 14 m/s cruise, it steers about
0.06 of full lock back (median over the holdout tracks; see
`AugmentConfig.side_camera_correction`). A larger correction would
contradict the labels of the DART frames that show the same offset.

Randomness comes from torch's generator, which DataLoader seeds per worker
from the run seed, so a training run is reproducible.
"""

from __future__ import annotations

import torch

from drivesim.learn.config import AugmentConfig

CAMERA_SIGN = {"center": 0.0, "left": -1.0, "right": 1.0}


def correct_for_camera(label: torch.Tensor, camera: str, correction: float) -> torch.Tensor:
    """The steering label (element 0) a frame of `camera` should carry: `correction` (normalized) added for the
    right camera, subtracted for the left, none for the centre."""
    if CAMERA_SIGN[camera] == 0.0:
        return label
    label = label.clone()
    label[0] = torch.clamp(label[0] + CAMERA_SIGN[camera] * correction, -1.0, 1.0)
    return label


def augment(image: torch.Tensor, label: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment one uint8 frame (3, H, W) and its label (steering first), drawing from `generator` (torch's
    global one if None)."""

    def uniform() -> torch.Tensor:
        return torch.rand((), generator=generator)

    if config.flip and uniform() < 0.5:
        image = image.flip(-1)
        label = label.clone()
        label[0] = -label[0]
    if config.brightness == 0 and config.contrast == 0 and config.shadow == 0:
        return image, label
    x = image.to(torch.float32)
    if config.contrast > 0:
        mean = x.mean()
        x = (x - mean) * (1 + config.contrast * (2 * uniform() - 1)) + mean
    if config.brightness > 0:
        x = x * (1 + config.brightness * (2 * uniform() - 1))
    if config.shadow > 0 and uniform() < config.shadow:
        x = x * _shadow_mask(x.shape[1], x.shape[2], generator)
    return x.clamp_(0, 255).to(torch.uint8), label


def _shadow_mask(height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
    """A slanted dark band with soft edges, as a tree trunk's or a bridge's shadow."""
    rows = torch.arange(height, dtype=torch.float32).view(-1, 1) / height
    cols = torch.arange(width, dtype=torch.float32).view(1, -1) / width
    centre, slope, half_width = torch.rand(3, generator=generator)
    distance = (cols - (centre + (slope - 0.5) * 2 * rows)).abs()
    band = torch.clamp((0.05 + 0.2 * half_width - distance) / 0.03, 0, 1)
    darkness = 0.35 + 0.3 * torch.rand((), generator=generator)
    return 1 - darkness * band
