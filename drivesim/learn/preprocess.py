"""Preprocessing declared with the model: what a network sees of a camera frame.

A `Preprocessing` is stored in every checkpoint, and the training data
pipeline and the policy driver both call `Preprocessing.apply`, so whoever
loads a checkpoint feeds it frames exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from drivesim.config import check

# BT.601 RGB -> YUV, as PilotNet's network input (Bojarski et al. 2016).
_RGB_TO_YUV = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]],
    dtype=torch.float32,
)


@dataclass(frozen=True)
class Preprocessing:
    """Crop, resize, colour space and normalization of the network input."""

    crop_top: float = 0.35
    """Share of the frame height cut off at the top (sky, far horizon) [-]."""
    crop_bottom: float = 0.0
    """Share of the frame height cut off at the bottom (bonnet) [-]."""
    height: int = 66
    """Network input height [px]."""
    width: int = 200
    """Network input width [px]."""
    color: str = "yuv"
    """Colour space of the network input: yuv or rgb."""

    def __post_init__(self) -> None:
        check(0 <= self.crop_top and 0 <= self.crop_bottom and self.crop_top + self.crop_bottom < 0.9, "crop shares must leave at least 10% of the frame")
        check(8 <= self.height <= 1024 and 8 <= self.width <= 1024, "network input size must be in [8, 1024] px")
        check(self.color in ("yuv", "rgb"), "preprocessing color must be yuv or rgb")

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, 3, H, W) or (3, H, W) -> float32 network input, values roughly in [-1, 1]."""
        single = images.dim() == 3
        x = images.unsqueeze(0) if single else images
        x = x.to(torch.float32) / 255.0
        rows = x.shape[2]
        top = int(round(self.crop_top * rows))
        bottom = rows - int(round(self.crop_bottom * rows))
        x = x[:, :, top:bottom]
        # Antialiasing keeps thin lane markings from aliasing when shrinking.
        x = F.interpolate(x, size=(self.height, self.width), mode="bilinear", align_corners=False, antialias=True)
        if self.color == "yuv":
            x = torch.einsum("ij,bjhw->bihw", _RGB_TO_YUV, x)
            x = x + torch.tensor([-0.5, 0.0, 0.0]).view(1, 3, 1, 1)
            x = x * 2.0
        else:
            x = x * 2.0 - 1.0
        return x[0] if single else x
