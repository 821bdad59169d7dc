"""Checkpoints: safetensors weights plus JSON metadata in the same file.

Loading never executes anything from the file (no pickle). The header holds
the model config, the preprocessing and the training metadata, so a loaded
checkpoint rebuilds its network and feeds it frames as in training, and the
weights' SHA-256 (safetensors has no checksum of its own: a damaged byte in
the weights would load and drive, just differently).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from drivesim import __version__
from drivesim.atomic import write_atomically
from drivesim.config import CameraConfig, ConfigError, from_dict, to_dict
from drivesim.errors import DrivesimError
from drivesim.learn.config import WEIGHTS_FILE, ModelConfig, Preprocessing
from drivesim.learn.models import DrivingNet, build_model

CHECKPOINT_FORMAT = "drivesim-checkpoint-1"


class CheckpointError(DrivesimError):
    """A checkpoint file is missing, corrupt, or not a drivesim checkpoint."""


@dataclass
class Checkpoint:
    """A loaded network with everything needed to use it."""

    model: DrivingNet
    """The network, in eval mode."""
    model_config: ModelConfig
    preprocessing: Preprocessing
    training: dict[str, Any]
    """What the training run recorded: data, frames seen, losses, versions."""
    path: Path

    @property
    def camera(self) -> CameraConfig | None:
        """The camera the training recordings were made with; None when they did not share one. A checkpoint
        from before drivesim recorded it (the shipped baseline) was trained through the default camera."""
        if "camera" not in self.training:
            return CameraConfig()
        stored = self.training["camera"]
        return None if stored is None else from_dict(CameraConfig, stored, f"{self.path}: training camera")


def resolve(path: Path | str) -> Path:
    """A checkpoint folder (models/NAME) or file -> the weights file."""
    path = Path(path)
    return path / WEIGHTS_FILE if path.is_dir() else path


def save_checkpoint(path: Path | str, model: DrivingNet, preprocessing: Preprocessing, training: dict[str, Any]) -> Path:
    """Write weights and metadata to `path` (a .safetensors file) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "drivesim_version": __version__,
        "model": json.dumps(to_dict(model.config), sort_keys=True),
        "preprocessing": json.dumps(to_dict(preprocessing), sort_keys=True),
        "training": json.dumps(training, sort_keys=True),
    }
    tensors = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    metadata["weights_sha256"] = weights_sha256(tensors)
    # Written here rather than by safetensors' save_file, which makes files owner-only.
    return write_atomically(path, _sorted_header(save(tensors, metadata=metadata)))


def weights_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' names, dtypes, shapes and bytes, in name order (so not of the file's layout)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _sorted_header(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted.

    safetensors writes the metadata map in an order that changes from call
    to call, so the same weights and metadata gave different file bytes.
    Tensor data offsets count from the end of the header, so they stay valid.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header with spaces to 8-byte alignment
    return len(header).to_bytes(8, "little") + header + data[8 + length :]


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Load a checkpoint; CheckpointError says what is wrong with a bad one."""
    file = resolve(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such checkpoint")
    with open(file, "rb") as handle:
        start = handle.read(9)
    if len(start) < 9 or start[8:9] != b"{":  # safetensors: the header's length, then its JSON
        raise CheckpointError(f"{file}: not a safetensors checkpoint (a model is its model.safetensors file, or the folder holding it)")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for a bad header or data
        raise CheckpointError(f"{file}: not a readable safetensors checkpoint, truncated or corrupt ({type(error).__name__}: {error})") from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{file}: not a drivesim checkpoint (format {metadata.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    try:
        model_config = from_dict(ModelConfig, json.loads(metadata["model"]))
        preprocessing = from_dict(Preprocessing, json.loads(metadata["preprocessing"]))
        training = json.loads(metadata.get("training", "{}"))
    except (KeyError, json.JSONDecodeError, ConfigError) as error:
        raise CheckpointError(f"{file}: checkpoint metadata is damaged ({error})") from None
    try:
        model = build_model(model_config, (preprocessing.height, preprocessing.width))
    except (RuntimeError, ValueError) as error:  # e.g. an input too small for the network's kernels
        raise CheckpointError(
            f"{file}: its preprocessing ({preprocessing.height}x{preprocessing.width}) does not fit a {model_config.architecture} network ({error})"
        ) from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        # torch's first line only says "Error(s) in loading state_dict"; the next one names the tensor.
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        raise CheckpointError(f"{file}: weights do not fit a {model_config.architecture} network ({' '.join(lines[:2])})") from None
    broken = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:  # clamped, NaN would be a full-lock command
        raise CheckpointError(f"{file}: weights hold NaN or infinity ({', '.join(broken[:3])})")
    # Checkpoints saved before the digest was stored carry none, and load unchecked.
    if "weights_sha256" in metadata and weights_sha256(tensors) != metadata["weights_sha256"]:
        raise CheckpointError(f"{file}: the weights do not match the SHA-256 stored with them: the file is damaged")
    model.eval()
    return Checkpoint(model, model_config, preprocessing, training, file)

