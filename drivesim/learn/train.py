"""Behavioural cloning: train a driving network on recordings.

Reads top to bottom: arguments, data, model, loop, checkpoint. Each epoch
trains on the training frames, measures the validation loss, and keeps the
best checkpoint; a JSON log and a loss-curve PNG are written beside it.
Deterministic given the seed: the same data and arguments, whatever the
DataLoader's worker count, give the same checkpoint file, byte for byte (no
timings in it; train-log.json has those), on one kind of device. On a CUDA
GPU (`device`, by default used when torch sees one) the network and its
optimiser run there with deterministic kernels, while the frames are still
read, augmented and preprocessed by the DataLoader's CPU workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from drivesim import __version__
from drivesim.atomic import (
    FolderInUse,
    missing_folders,
    remove_empty_folders,
    write_atomically,
    write_figure,
    writing_alone,
)
from drivesim.config import CameraConfig, from_dict, to_dict
from drivesim.errors import DrivesimError
from drivesim.learn.augment import augment, correct_for_camera
from drivesim.learn.checkpoint import save_checkpoint
from drivesim.learn.config import WEIGHTS_FILE, AugmentConfig, Preprocessing, TrainConfig
from drivesim.learn.models import build_model, parameter_count
from drivesim.processes import end_quietly_on_termination, usable_cores
from drivesim.record import Recording, RecordingDataset
from drivesim.record.manifest import MANIFEST_NAME
from drivesim.wording import counted


class TrainingError(DrivesimError):
    """A training run cannot start or did not produce a model."""


class TrainingFrames(Dataset):
    """Recording frames as (network input, label): side-camera correction, augmentation, preprocessing.

    `base` must carry the "camera" extra when it has several `cameras`. Every
    left or right frame gets `side_correction`, validation frames included;
    `augmentation` (None for validation) adds the random changes on top,
    drawn from the seed an `AugmentedOrder` key carries (from torch's global
    generator for a plain index).
    """

    def __init__(
        self, base: RecordingDataset, preprocessing: Preprocessing, augmentation: AugmentConfig | None, cameras: tuple[str, ...], side_correction: float
    ) -> None:
        self.base, self.preprocessing, self.augmentation, self.cameras = base, preprocessing, augmentation, cameras
        self.side_correction = side_correction

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        item = self.base[index]
        image, label = item[0], item[1]
        camera = self.cameras[int(item[2]["camera"])] if len(self.cameras) > 1 else self.cameras[0]
        label = correct_for_camera(label, camera, self.side_correction)
        if self.augmentation is not None:
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            image, label = augment(image, label, self.augmentation, generator)
        return self.preprocessing.apply(image), label


class AugmentedOrder(Sampler[tuple[int, int]]):
    """Each pass, the frames `indices` in a shuffled order, each with the seed of its augmentation.

    Both are drawn here, in the training process: a frame's random changes
    then do not depend on which DataLoader worker reads it, and the same seed
    trains the same network whatever --workers is.
    """

    def __init__(self, indices: Sequence[int], generator: torch.Generator) -> None:
        self.indices, self.generator = indices, generator

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(len(self.indices), generator=self.generator).tolist()
        seeds = torch.randint(0, 2**62, (len(self.indices),), generator=self.generator).tolist()
        return ((self.indices[k], seed) for k, seed in zip(order, seeds, strict=True))


def recording_fingerprints(folders: Sequence[str], recordings: Sequence[Recording]) -> list[dict[str, Any]]:
    """Which data a model saw: each recording's frames and a hash of its manifest, under the name `folders` gives it."""
    return [{"recording": str(folder), "frames": recording.frames, "manifest_sha256": hashlib.sha256((recording.folder / MANIFEST_NAME).read_bytes()).hexdigest()}
            for folder, recording in zip(folders, recordings, strict=True)]


def train(config: TrainConfig, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the training; returns the log that is also written to train-log.json. A run that fails or is
    interrupted before its first model is saved (a full disk, Ctrl-C) leaves no empty --out folder."""
    made = missing_folders(config.out)
    try:
        Path(config.out).mkdir(parents=True, exist_ok=True)
        with writing_alone(config.out, "--out"):  # two runs into one folder: one model, with the other's log
            return _run_training(config, progress, log)
    except FolderInUse:
        raise  # the folder is the other run's, whichever of them made it
    except BaseException:
        remove_empty_folders(made)
        raise


def _run_training(config: TrainConfig, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from tqdm import tqdm

    out = Path(config.out)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)

    # ---- data
    labels = ("steering", "throttle") if config.model.throttle_head else ("steering",)
    extras = ("camera",) if len(config.cameras) > 1 else ()
    train_base = RecordingDataset(list(config.data), cameras=config.cameras, labels=labels, extras=extras)
    correction = config.augment.side_camera_correction
    train_set = TrainingFrames(train_base, config.preprocessing, config.augment, config.cameras, correction)
    train_indices = range(len(train_set))
    if config.val:
        if any(Path(v).resolve() == Path(d).resolve() for v in config.val for d in config.data):
            log("warning: a --val recording is also a --data recording: the validation loss is measured on frames the network trains on")
        val_base = RecordingDataset(list(config.val), cameras=("center",), labels=labels)
        val_set: Dataset = TrainingFrames(val_base, config.preprocessing, None, ("center",), correction)
    else:
        # Hold out a contiguous tail: neighbouring frames are near-duplicates,
        # so a random split would leak them into validation.
        held = max(1, int(len(train_set) * config.val_fraction))
        if held >= len(train_set):
            raise TrainingError(f"{len(train_set)} training frame(s) leave none to train on once validation frames are held out; give more data or --val")
        plain = TrainingFrames(train_base, config.preprocessing, None, config.cameras, correction)
        val_set = Subset(plain, range(len(train_set) - held, len(train_set)))
        train_indices = range(len(train_set) - held)
    order = AugmentedOrder(train_indices, torch.Generator().manual_seed(config.seed))
    device = training_device(config.device)
    workers = loader_workers(config.workers, device)
    # Each loader draws a base seed for its workers (unused: the order hands out every seed) from its generator
    # whenever it starts a pass: every epoch without workers, once a run with persistent ones. From torch's
    # global generator, those draws would shift the dropout masks drawn in this process with --workers.
    loader_seeds = torch.Generator().manual_seed(config.seed)
    loader_args = {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": device.type == "cuda", "generator": loader_seeds,
                   "worker_init_fn": end_quietly_on_termination if workers > 0 else None}
    train_loader = DataLoader(train_set, batch_size=config.batch, sampler=order, drop_last=len(order) > config.batch, **loader_args)
    val_loader = DataLoader(val_set, batch_size=256, shuffle=False, **loader_args)
    loader_rate = measure_loader(train_loader, batches=20)

    # ---- model
    model = build_model(config.model, (config.preprocessing.height, config.preprocessing.width)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * len(train_loader)
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1))))
    per_frame = f" ({len(config.cameras)} cameras a frame)" if len(config.cameras) > 1 else ""
    log(f"model {config.model.architecture}: {parameter_count(model):,} parameters on {device}, {counted(workers, 'loader worker')}; {len(order):,} training / {len(val_set):,} validation images{per_frame}")

    # ---- loop
    # The datasets checked each recording when they opened it: opening a 600-shard one again costs seconds.
    data_prints = {"data": recording_fingerprints(config.data, train_base.recordings),
                   "val": recording_fingerprints(config.val, val_base.recordings) if config.val else "tail of data",
                   "camera": recorded_camera(train_base.recordings)}
    if data_prints["camera"] is None:
        log("warning: the --data recordings do not share one camera (or do not say which), so the model records none: "
            "eval and play will render with their own, which may not be what it was trained on")
    history: list[dict[str, float]] = []
    best = math.inf
    diverged = False
    step, frames_seen, started = 0, 0, time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        running, batches, epoch_frames, epoch_started = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress, leave=False)
        for inputs, targets in bar:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            value = loss.item()
            if not math.isfinite(value):  # the weights are lost; no later step can bring them back
                diverged = True
                log(f"step {step + 1}: the training loss is {value}; training diverged (try a lower --lr)")
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += value
            batches += 1
            step += 1
            frames_seen += len(inputs)
            epoch_frames += len(inputs)
            bar.set_postfix(loss=f"{running / batches:.4f}", fps=f"{frames_seen / (time.perf_counter() - started):.0f}")
            if config.max_steps is not None and step >= config.max_steps:
                break
        if diverged:
            break
        train_rate = epoch_frames / (time.perf_counter() - epoch_started)
        val_loss = evaluate_loss(model, val_loader, device)
        record = {"epoch": epoch + 1, "train_loss": running / max(batches, 1), "val_loss": val_loss, "train_frames_per_s": train_rate, "lr": schedule.get_last_lr()[0]}
        history.append(record)
        improved = val_loss < best
        if improved:
            if not math.isfinite(best):  # the first save replaces an earlier run's model: its log no longer describes it
                for stale in ("train-log.json", "loss.png"):
                    (out / stale).unlink(missing_ok=True)
            best = val_loss
            save_checkpoint(out / WEIGHTS_FILE, model, config.preprocessing, _training_meta(config, data_prints, history, frames_seen, best))
        log(f"epoch {epoch + 1}: train loss {record['train_loss']:.5f}  val loss {val_loss:.5f}  {train_rate:.0f} frames/s" + ("  (best, saved)" if improved else ""))
        if config.max_steps is not None and step >= config.max_steps:
            break

    # ---- report
    if not math.isfinite(best):
        raise TrainingError(f"no epoch reached a finite validation loss (training diverged: try a lower --lr); no model was written to {out}")
    summary = {
        "config": to_dict(config),
        "history": history,
        "best_val_loss": best,
        "frames_seen": frames_seen,
        "seconds": time.perf_counter() - started,
        "dataloader_frames_per_s": loader_rate,
        "train_frames_per_s": frames_seen / (time.perf_counter() - started),
        "checkpoint": str(out / WEIGHTS_FILE),
        "device": str(device),
        "loader_workers": workers,
        "diverged": diverged,
    }
    plot_losses(history, out / "loss.png")
    # Its presence marks a finished run (dagger resumes by it), so it is written last and never half-written.
    write_atomically(out / "train-log.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    log(f"data loader {loader_rate:.0f} frames/s vs training {summary['train_frames_per_s']:.0f} frames/s; best val loss {best:.5f}; wrote {out}")
    return summary


def recorded_camera(recordings: Sequence[Recording]) -> dict[str, Any] | None:
    """The camera (CameraConfig fields) all of `recordings` were recorded with, as their manifests' rig says;
    None when they differ or one does not say. A network sees the world through it: its field of view,
    mounting and image size are as much a part of the input as the preprocessing."""
    stored = [(recording.manifest.config.get("rig") or {}).get("camera") for recording in recordings]
    if any(camera is None for camera in stored):
        return None
    # As configs, not as stored: a field added since a recording was made counts as its default there.
    cameras = [from_dict(CameraConfig, camera, f"{recording.folder}: rig.camera") for recording, camera in zip(recordings, stored, strict=True)]
    return to_dict(cameras[0]) if all(camera == cameras[0] for camera in cameras) else None


def _training_meta(config: TrainConfig, data_prints: dict[str, Any], history: list[dict[str, float]], frames_seen: int, best: float) -> dict[str, Any]:
    return {
        **data_prints,
        "epochs": len(history),
        "frames_seen": frames_seen,
        "best_val_loss": best,
        "history": [{key: value for key, value in h.items() if key != "train_frames_per_s"} for h in history],  # no timings
        "seed": config.seed,
        "augment": to_dict(config.augment),
        "cameras": list(config.cameras),
        "drivesim_version": __version__,
        "torch_version": torch.__version__,
    }


def training_device(name: str) -> torch.device:
    """The torch device `name` (auto, cpu, cuda, cuda:N) stands for; TrainingError if torch cannot use it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"--device {name}: torch sees no CUDA GPU (torch {torch.__version__}; a CPU build, or no driver)")
        if (device.index or 0) >= torch.cuda.device_count():
            raise TrainingError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
        # Deterministic cuBLAS needs this before its first call (PyTorch's reproducibility notes); a value the
        # user set is kept.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return device


def loader_workers(workers: int | None, device: torch.device, cores: int | None = None) -> int:
    """DataLoader workers for training on `device`: `workers` when given, else 2 beside a CPU's training,
    whose own threads need the cores, and one per core up to 8 beside a GPU, which the workers' augmentation
    and preprocessing otherwise hold back (on an H100 with 16 cores: 2,000-2,500 frames/s with 4 workers,
    3,400-4,200 with 8 or 14; docs/performance.md). The network trains the same whatever the count."""
    if workers is not None:
        return workers
    if device.type != "cuda":
        return 2
    return max(2, min(8, cores if cores is not None else usable_cores()))


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, loader: DataLoader, device: torch.device | str = "cpu") -> float:
    """Mean squared error over a loader, in eval mode."""
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        total += torch.nn.functional.mse_loss(model(inputs), targets, reduction="sum").item() / targets.shape[1]
        count += len(inputs)
    return total / max(count, 1)


def measure_loader(loader: DataLoader, batches: int, warmup: int = 3) -> float:
    """Frames/s the loader delivers alone (no training) over `batches` batches, after `warmup` batches of worker
    start-up; a loader with no batch beyond the warm-up is timed over all its batches, start-up included.

    The warm-up also covers the batches the workers prefetch while starting (workers x prefetch factor):
    those come out at once, and timing them gave 60,000 frames/s on a few hundred frames."""
    if loader.num_workers > 0:
        warmup = max(warmup, loader.num_workers * (loader.prefetch_factor or 2))
    first = started = time.perf_counter()
    frames = total = 0
    for i, (inputs, _) in enumerate(loader):
        total += len(inputs)
        if i < warmup:
            started = time.perf_counter()  # the clock starts once the last warm-up batch is in
            continue
        frames += len(inputs)
        if i + 1 >= warmup + batches:
            break
    if frames == 0:
        return total / (time.perf_counter() - first)
    return frames / (time.perf_counter() - started)


def plot_losses(history: list[dict[str, float]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train (augmented)")
    ax.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    # Whole epochs only: a single epoch was drawn with ticks 0.96 ... 1.04.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    ax.set_ylabel("MSE of normalized steering")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_figure(path, fig)


__all__ = ["TrainConfig", "TrainingError", "TrainingFrames", "train"]
