"""Preprocessing declared with the model: what a network sees of a camera frame.

A `Preprocessing` (its settings, in `drivesim.learn.config`) is stored in
every checkpoint, and the training data pipeline and the policy driver both
call `Preprocessing.apply`, which runs `preprocess` here, so whoever loads a
checkpoint feeds it frames exactly as it was trained.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from drivesim.learn.config import Preprocessing

# BT.601 RGB -> YUV, as PilotNet's network input (Bojarski et al. 2016).
_RGB_TO_YUV = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]],
    dtype=torch.float32,
)


def preprocess(settings: Preprocessing, images: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, 3, H, W) or (3, H, W) -> float32 network input, values roughly in [-1, 1]: what
    `Preprocessing.apply` does."""
    single = images.dim() == 3
    x = images.unsqueeze(0) if single else images
    rows = x.shape[2]
    top = int(round(settings.crop_top * rows))
    bottom = rows - int(round(settings.crop_bottom * rows))
    # Antialiasing keeps thin lane markings from aliasing when shrinking. The resize is separable, so
    # it is two matrix products: the same weights as F.interpolate(..., antialias=True) (equal to
    # float32 rounding) at 2-2.5x the speed of its kernel on a CPU.
    along_rows, along_columns = _resize_matrices(bottom - top, x.shape[3], settings.height, settings.width)
    if x.device.type != "cpu":
        along_rows, along_columns = along_rows.to(x.device), along_columns.to(x.device)
    x = along_rows @ x[:, :, top:bottom].to(torch.float32) @ along_columns  # values in [0, 2]
    if settings.color == "yuv":
        x = torch.einsum("ij,bjhw->bihw", _RGB_TO_YUV, x)
        x[:, 0] -= 1.0  # Y from [0, 2] to [-1, 1]; U and V are already centred
    else:
        x -= 1.0
    return x[0] if single else x


@functools.lru_cache(maxsize=16)
def _resize_matrices(rows: int, columns: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(height, rows) and (columns, width) matrices that resize a (rows, columns) image to (height, width) as
    torch's antialiased bilinear interpolation does, scaled so that uint8 input comes out in [0, 2]."""
    # Cached for every later call, so made the same whatever mode the first call ran in: float32 whatever the
    # default dtype, and ordinary tensors even under inference_mode (which a later autograd call could not save).
    with torch.inference_mode(False), torch.no_grad():
        return (2.0 / 255.0) * _resize_weights(rows, height), _resize_weights(columns, width).T.contiguous()


def _resize_weights(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) weights of torch's antialiased bilinear resize along one axis: resizing the unit
    impulses (an identity matrix) along its rows gives them column by column."""
    impulses = torch.eye(size_in, dtype=torch.float32).view(1, 1, size_in, size_in)
    resized = F.interpolate(impulses, size=(size_in, size_out), mode="bilinear", align_corners=False, antialias=True)
    return resized[0, 0].T.contiguous()
