"""What a training run is: the network, what it sees of a frame, its augmentation, the run's settings.

Nothing here imports torch, so the command line can check a run and say
what is wrong with it in a fraction of a second, before torch (about two
seconds to import) is loaded. The modules that do the work (`models`,
`preprocess`, `augment`, `train`) take these settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivesim.config import check, check_camera_names

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"
"""A model folder's checkpoint file (drivesim.learn.checkpoint's format)."""

MAX_TORCH_SEED = 2**64 - 1
"""The largest seed torch.manual_seed takes."""

DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"
"""The --device values train understands."""


def check_device_name(name: str) -> None:
    """ConfigError unless `name` is a --device value train understands (whether torch can use it is
    `training_device`'s question, asked when a run starts)."""
    check(re.fullmatch(DEVICE_PATTERN, name) is not None, f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")


CONVOLUTIONS = {
    "pilotnet": ((3, 24, 5, 2), (24, 36, 5, 2), (36, 48, 5, 2), (48, 64, 3, 1), (64, 64, 3, 1)),
    "small": ((3, 16, 5, 2), (16, 24, 5, 2), (24, 32, 5, 2), (32, 48, 3, 2)),
}
"""Each architecture's convolutions as (in channels, out channels, kernel, stride), unpadded."""
HIDDEN = {"pilotnet": (100, 50, 10), "small": (32,)}
"""Each architecture's hidden fully connected layers (widths)."""
ARCHITECTURES = tuple(CONVOLUTIONS)


def smallest_input(architecture: str) -> int:
    """The fewest pixels an input needs along each side for `architecture`'s convolutions to leave one [px]."""
    size = 1
    for *_, kernel, stride in reversed(CONVOLUTIONS[architecture]):
        size = (size - 1) * stride + kernel
    return size


@dataclass(frozen=True)
class ModelConfig:
    """Which network, and what it outputs."""

    architecture: str = "pilotnet"
    """pilotnet or small."""
    throttle_head: bool = False
    """Also predict the expert's throttle (a second output)."""
    dropout: float = 0.1
    """Dropout before each hidden fully connected layer [-]."""

    def __post_init__(self) -> None:
        check(self.architecture in ARCHITECTURES, f"unknown model {self.architecture!r}; known: {', '.join(ARCHITECTURES)}")
        check(0 <= self.dropout < 1, "dropout must be in [0, 1)")

    @property
    def outputs(self) -> int:
        return 2 if self.throttle_head else 1


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations a training run uses, and how strongly."""

    flip: bool = False
    """Mirror half the frames left-right and negate their steering (wrong for two-lane roads: see drivesim.learn.augment)."""
    brightness: float = 0.3
    """Largest relative brightness change [-]."""
    contrast: float = 0.3
    """Largest relative contrast change [-]."""
    shadow: float = 0.3
    """Probability of a shadow band across a frame [-]."""
    side_camera_correction: float = 0.06
    """Normalized steering added for the right camera, subtracted for the left [-].

    A side camera sees what the centre camera would see with the car moved
    `RigConfig.side_offset` (0.8 m) sideways; the expert answers such a
    displacement with about 0.062 at its 14 m/s cruise (median over the
    holdout tracks; 0.043 at 19 m/s), so 0.06 keeps side labels consistent
    with the DART frames' own.
    """

    def __post_init__(self) -> None:
        check(0 <= self.brightness < 1 and 0 <= self.contrast < 1, "brightness and contrast must be in [0, 1)")
        check(0 <= self.shadow <= 1, "shadow probability must be in [0, 1]")
        check(0 <= self.side_camera_correction <= 0.5, "side_camera_correction must be in [0, 0.5]")


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
        from drivesim.learn.preprocess import preprocess  # torch: imported by whoever has frames to feed

        return preprocess(self, images)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on."""

    data: tuple[str, ...]
    """Recording folders to train on."""
    out: str
    """Output folder: model.safetensors, train-log.json, loss.png."""
    val: tuple[str, ...] = ()
    """Validation recordings; without them the last `val_fraction` of the training frames is held out."""
    val_fraction: float = 0.1
    """Share of the training frames held out when no --val is given [-]."""
    model: ModelConfig = ModelConfig()
    """Network architecture and heads."""
    preprocessing: Preprocessing = Preprocessing()
    """Crop, resize, colour space: stored in the checkpoint."""
    augment: AugmentConfig = AugmentConfig()
    """Augmentations of the training frames (never of validation frames)."""
    cameras: tuple[str, ...] = ("center",)
    """Rig cameras to train on; left/right frames get the steering correction."""
    epochs: int = 10
    """Passes over the training frames."""
    batch: int = 64
    """Frames per optimisation step."""
    lr: float = 1e-3
    """Peak learning rate of Adam, annealed to 5% of it by a cosine schedule."""
    weight_decay: float = 1e-5
    """L2 penalty of AdamW."""
    workers: int | None = None
    """DataLoader worker processes; None: `loader_workers` picks (2 on the CPU, up to 8 beside a GPU)."""
    seed: int = 0
    """Seeds weights, shuffling and augmentation."""
    max_steps: int | None = None
    """Stop after this many optimisation steps (quick tests); None = all epochs."""
    device: str = "auto"
    """Where the network trains: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N."""

    def __post_init__(self) -> None:
        check(len(self.data) > 0, "train needs at least one --data recording")
        check(0 <= self.seed <= MAX_TORCH_SEED, f"seed must be in [0, 2**64 - 1] (torch's seeds), got {self.seed}")
        check(self.epochs >= 1 and self.batch >= 1, "epochs and batch must be at least 1")
        check(0 < self.val_fraction < 0.9, "val_fraction must be in (0, 0.9)")
        check(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a number > 0, got {self.lr:g}")
        check(self.workers is None or self.workers >= 0, f"--workers must be >= 0, got {self.workers}")
        check_device_name(self.device)
        check_camera_names(self.cameras, "cameras")
        smallest = smallest_input(self.model.architecture)
        check(min(self.preprocessing.height, self.preprocessing.width) >= smallest,
              f"the {self.model.architecture} network needs inputs of at least {smallest}x{smallest} px; "
              f"preprocessing gives {self.preprocessing.height}x{self.preprocessing.width} (height x width)")
