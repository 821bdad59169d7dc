import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from drivesim.config import ConfigError
from drivesim.learn import (
    AugmentConfig,
    CheckpointError,
    ModelConfig,
    Preprocessing,
    build_model,
    load_checkpoint,
    parameter_count,
    save_checkpoint,
)
from drivesim.learn.augment import augment, correct_for_camera
from drivesim.learn.preprocess import _RGB_TO_YUV
from drivesim.learn.train import TrainConfig, TrainingError, TrainingFrames, measure_loader, train
from drivesim.record import RecordingDataset, open_recording


def test_pilotnet_has_about_250k_parameters():
    model = build_model(ModelConfig("pilotnet"), (66, 200))
    assert 200_000 < parameter_count(model) < 300_000
    assert model(torch.zeros(2, 3, 66, 200)).shape == (2, 1)
    small = build_model(ModelConfig("small", throttle_head=True), (66, 200))
    assert parameter_count(small) < parameter_count(model) / 2
    assert small(torch.zeros(2, 3, 66, 200)).shape == (2, 2)


def test_flip_negates_steering_and_mirrors_the_image():
    image = torch.arange(3 * 4 * 6, dtype=torch.uint8).view(3, 4, 6)
    label = torch.tensor([0.3, 0.5])
    config = AugmentConfig(flip=True, brightness=0, contrast=0, shadow=0)
    flipped = []
    for seed in range(20):
        torch.manual_seed(seed)
        out_image, out_label = augment(image, label, config)
        if out_label[0] < 0:
            flipped.append(seed)
            assert torch.equal(out_image, image.flip(-1))
            assert out_label.tolist() == pytest.approx([-0.3, 0.5])  # throttle is not mirrored
        else:
            assert torch.equal(out_image, image) and out_label[0] == pytest.approx(0.3)
    assert 3 < len(flipped) < 17


def test_side_cameras_steer_back_to_the_centre():
    config = AugmentConfig(side_camera_correction=0.1)
    label = torch.tensor([0.2])
    assert correct_for_camera(label, "left", config.side_camera_correction).item() == pytest.approx(0.1)
    assert correct_for_camera(label, "right", config.side_camera_correction).item() == pytest.approx(0.3)
    assert correct_for_camera(label, "center", config.side_camera_correction).item() == pytest.approx(0.2)


@pytest.fixture(scope="module")
def rig_recording(tmp_path_factory, repo_root):
    """40 frames from all three rig cameras."""
    from drivesim.config import GenerateConfig, RigConfig
    from drivesim.generate import generate

    folder = tmp_path_factory.mktemp("rig") / "rec"
    config = GenerateConfig(frames=40, shard_frames=40, episode_frames=40, seed=2, tracks=str(repo_root / "tracks" / "val"), rig=RigConfig(cameras=("center", "left", "right")))
    generate(config, folder, workers=1, progress=False)
    return folder


def test_every_side_camera_frame_gets_the_configured_correction(rig_recording):
    """Alone or beside the others, with augmentation (training) or without (validation)."""
    center = RecordingDataset(rig_recording, cameras=("center",), labels=("steering",))
    steering = torch.stack([center[i][1][0] for i in range(len(center))])
    for augmentation in (None, AugmentConfig(brightness=0, contrast=0, shadow=0)):
        for camera, sign in (("left", -1), ("right", 1), ("center", 0)):
            alone = TrainingFrames(RecordingDataset(rig_recording, cameras=(camera,), labels=("steering",)), Preprocessing(), augmentation, (camera,), 0.02)
            assert torch.allclose(torch.stack([alone[i][1][0] for i in range(len(alone))]), (steering + sign * 0.02).clamp(-1, 1))
        cameras = ("center", "left", "right")
        rig = TrainingFrames(RecordingDataset(rig_recording, cameras=cameras, labels=("steering",), extras=("camera",)), Preprocessing(), augmentation, cameras, 0.02)
        labels = torch.stack([rig[i][1][0] for i in range(len(rig))]).view(len(steering), 3)  # frame-major, cameras in order
        assert torch.allclose(labels, torch.stack([steering, steering - 0.02, steering + 0.02], dim=1).clamp(-1, 1))


def test_train_learns_from_the_side_cameras_with_the_configured_correction(rig_recording, tmp_path, monkeypatch):
    """What the optimiser sees: every centre label, and each side frame's label shifted by the config's correction."""
    center = RecordingDataset(rig_recording, cameras=("center",), labels=("steering",))
    steering = torch.stack([center[i][1][0] for i in range(len(center))])
    seen = []
    mse = torch.nn.functional.mse_loss

    def watched(outputs, targets, **options):
        if torch.is_grad_enabled():  # training steps, not the validation pass
            seen.append(targets[:, 0].clone())
        return mse(outputs, targets, **options)

    monkeypatch.setattr(torch.nn.functional, "mse_loss", watched)
    augment = AugmentConfig(flip=False, brightness=0, contrast=0, shadow=0, side_camera_correction=0.2)
    cameras = ("center", "left", "right")
    config = TrainConfig(data=(str(rig_recording),), val=(str(rig_recording),), out=str(tmp_path / "m"), model=ModelConfig("small"),
                         augment=augment, cameras=cameras, epochs=1, batch=3 * len(steering), workers=0)
    train(config, progress=False, log=lambda _: None)
    expected = torch.cat([steering, (steering - 0.2).clamp(-1, 1), (steering + 0.2).clamp(-1, 1)])
    assert len(seen) == 1 and torch.allclose(seen[0].sort().values, expected.sort().values)


class _SlowFrames(torch.utils.data.Dataset):
    """Frames that take `seconds` (10 ms) each to load: no loader process can deliver more than 1 / seconds a second."""

    def __init__(self, frames: int, seconds: float = 0.01) -> None:
        self.frames, self.seconds = frames, seconds

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, index):
        time.sleep(self.seconds)
        return torch.zeros(3), torch.zeros(1)


@pytest.mark.parametrize("frames", [8, 6, 40])  # 8: one batch after the warm-up; 6: none; 40: more than asked for
def test_the_loader_rate_counts_only_frames_it_timed(frames):
    rate = measure_loader(torch.utils.data.DataLoader(_SlowFrames(frames), batch_size=2), batches=5, warmup=3)
    assert 50 < rate <= 100


def test_the_loader_rate_does_not_time_the_batches_workers_prefetched():
    """Two workers deliver at most 40 frames/s of these; the fourth batch is ready when the third is in."""
    rate = measure_loader(torch.utils.data.DataLoader(_SlowFrames(8, seconds=0.05), batch_size=2, num_workers=2), batches=5, warmup=3)
    assert rate <= 40
    rate = measure_loader(torch.utils.data.DataLoader(_SlowFrames(24, seconds=0.05), batch_size=2, num_workers=2), batches=5, warmup=3)
    assert 10 < rate <= 40  # batches timed after the prefetched ones (40 frames/s at best; slower on a busy machine)


def test_a_run_that_diverges_fails_and_writes_no_model(tiny_recording, tmp_path):
    config = TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / "m"), model=ModelConfig("small"), epochs=2, batch=16, workers=0, max_steps=6, lr=1e30)
    with pytest.raises(TrainingError, match="no epoch reached a finite validation loss"):
        train(config, progress=False, log=lambda _: None)
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="--lr"):
        TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / "n"), lr=float("inf"))
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    import drivesim.learn.train as training

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "save_checkpoint", full_disk)
        with pytest.raises(OSError, match="No space left"):
            train(replace(config, lr=1e-3, out=str(tmp_path / "full" / "m")), progress=False, log=lambda _: None)
    assert not (tmp_path / "full").exists()  # no empty --out folder left behind
    for seed in (-1, 2**64):  # from a config file: torch.manual_seed raised an OverflowError at 2**64
        with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\*\*64 - 1\]"):
            TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / "n"), seed=seed)


NO_TORCH = "import sys; sys.modules['torch'] = None; sys.argv[0] = 'drivesim'; from drivesim.cli import main; main()"
"""Runs the command line in a Python where `import torch` fails: whatever answers then needs no torch."""


@pytest.mark.parametrize("arguments, message", [
    (["train", "--data", "rec", "--out", "m", "--model", "nonet"], "unknown model 'nonet'"),
    (["train", "--data", "rec", "--out", "m", "--cameras", "center,top"], "top"),
    (["train", "--data", "rec", "--out", "m", "--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N"),
    (["train", "--data", "nowhere", "--out", "m"], "nowhere: no such recording folder"),
    (["train", "--data", "rec", "--val", ".", "--out", "m"], "not a recording folder"),
    (["dagger", "--out", "x", "--tracks", "nowhere"], "nowhere: no such track file or folder"),
    (["dagger", "--out", "x", "--model", "nonet"], "unknown model 'nonet'"),
])  # fmt: skip
def test_train_and_dagger_check_their_settings_before_importing_torch(tiny_recording, tmp_path, arguments, message):
    # torch takes seconds to import: a mistyped option or path is answered at once; torch loads only for a run.
    (tmp_path / "rec").symlink_to(tiny_recording)
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *arguments], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "x").exists()


def test_the_no_torch_guard_stops_a_run_that_needs_torch(tiny_recording, tmp_path):
    # Without this, the test above could pass because torch was never asked for at all.
    result = subprocess.run([sys.executable, "-c", NO_TORCH, "train", "--data", str(tiny_recording), "--out", "m"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "import of torch halted" in result.stderr, result.stderr[-2000:]


def test_too_few_frames_to_hold_some_out_is_a_clear_error(tmp_path, repo_root):
    from drivesim.config import GenerateConfig
    from drivesim.generate import generate

    generate(GenerateConfig(frames=1, shard_frames=1, episode_frames=1, tracks=str(repo_root / "tracks" / "val")), tmp_path / "rec", workers=1, progress=False)
    config = TrainConfig(data=(str(tmp_path / "rec"),), out=str(tmp_path / "m"), model=ModelConfig("small"), workers=0)
    with pytest.raises(TrainingError, match="1 training frame"):
        train(config, progress=False, log=lambda _: None)


def test_overfit_tiny_recording_and_checkpoint_round_trip(tiny_recording, tmp_path):
    config = TrainConfig(
        data=(str(tiny_recording),),
        out=str(tmp_path / "model"),
        model=ModelConfig("small", dropout=0.0),
        augment=AugmentConfig(flip=False, brightness=0, contrast=0, shadow=0),
        epochs=12,
        batch=32,
        lr=2e-3,
        workers=0,
        val_fraction=0.1,
    )
    summary = train(config, progress=False, log=lambda _: None)
    losses = [h["train_loss"] for h in summary["history"]]
    assert losses[-1] < 0.3 * losses[0]
    assert (tmp_path / "model" / "loss.png").stat().st_size > 1000
    log = json.loads((tmp_path / "model" / "train-log.json").read_text())
    assert log["dataloader_frames_per_s"] > 0 and log["train_frames_per_s"] > 0

    checkpoint = load_checkpoint(tmp_path / "model")
    assert checkpoint.training["data"][0]["frames"] == 240
    assert len(checkpoint.training["data"][0]["manifest_sha256"]) == 64
    frames = RecordingDataset(tiny_recording)
    batch = torch.stack([frames[i][0] for i in range(8)])
    # The loaded preprocessing is the one trained with, so the same frames give the same outputs.
    assert checkpoint.preprocessing == config.preprocessing
    again = load_checkpoint(tmp_path / "model" / "model.safetensors")
    with torch.no_grad():
        out_a = checkpoint.model(checkpoint.preprocessing.apply(batch))
        out_b = again.model(again.preprocessing.apply(batch))
    assert torch.equal(out_a, out_b)


def test_training_is_deterministic_whatever_the_loader_workers(tiny_recording, tmp_path):
    def run(name, workers):
        config = TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / name), model=ModelConfig("small"), epochs=3, batch=64, workers=workers)  # 3 steps an epoch
        losses = [(epoch["train_loss"], epoch["val_loss"]) for epoch in train(config, progress=False, log=lambda _: None)["history"]]
        return (tmp_path / name / "model.safetensors").read_bytes(), losses  # the best epoch's weights, every epoch's losses

    # The same bytes, header included: safetensors writes its metadata keys in a different order each
    # call, which the checkpoint writer sorts away. Augmentation is drawn per frame from seeds the sampler
    # hands out, so which worker reads a frame does not matter.
    assert run("a", 0) == run("b", 0) == run("c", 2)


def test_preprocessing_shapes_and_range():
    pre = Preprocessing()
    frames = torch.randint(0, 256, (4, 3, 120, 160), dtype=torch.uint8)
    x = pre.apply(frames)
    assert x.shape == (4, 3, 66, 200) and x.dtype == torch.float32
    assert x.abs().max() <= 1.5
    assert torch.allclose(pre.apply(frames[0]), x[0], rtol=0, atol=1e-6)  # a matmul's last bit may follow the batch size
    # BT.601, as PilotNet: pure red is Y 0.299, U -0.147, V 0.615 (Y scaled to [-1, 1], U and V doubled).
    red = torch.zeros(3, 120, 160, dtype=torch.uint8)
    red[0] = 255
    assert pre.apply(red).mean(dim=(1, 2)).tolist() == pytest.approx([2 * 0.299 - 1, 2 * -0.14713, 2 * 0.615], abs=1e-5)
    assert Preprocessing(color="rgb").apply(red).mean(dim=(1, 2)).tolist() == pytest.approx([1.0, -1.0, -1.0], abs=1e-5)


def test_preprocessing_does_not_depend_on_how_it_was_first_called():
    """The resize weights are cached by the first call: one under inference_mode or a float64 default must not
    leave weights that break later calls (autograd through the input, float32 frames)."""
    from drivesim.learn import preprocess

    pre = Preprocessing(height=13, width=17)  # a size no other test uses: this test makes the first call
    frames = torch.randint(0, 256, (2, 3, 40, 50), dtype=torch.uint8)
    preprocess._resize_matrices.cache_clear()
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        with torch.inference_mode():
            pre.apply(frames)
    finally:
        torch.set_default_dtype(default)
    floats = frames.to(torch.float32).requires_grad_(True)
    out = pre.apply(floats)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert floats.grad is not None and torch.isfinite(floats.grad).all()


@pytest.mark.parametrize("frame", [(120, 160), (240, 320), (60, 80), (96, 333)])
@pytest.mark.parametrize("color", ["yuv", "rgb"])
def test_preprocessing_matches_torch_antialiased_resize(frame, color):
    """The matrix form of the resize gives what F.interpolate(antialias=True) gives, shrinking or enlarging."""
    import torch.nn.functional as F

    pre = Preprocessing(crop_top=0.3, crop_bottom=0.1, color=color)
    frames = torch.randint(0, 256, (3, 3, *frame), dtype=torch.uint8)
    rows = frame[0]
    cropped = frames[:, :, round(0.3 * rows) : rows - round(0.1 * rows)].to(torch.float32) / 255.0
    x = F.interpolate(cropped, size=(pre.height, pre.width), mode="bilinear", align_corners=False, antialias=True)
    if color == "yuv":
        x = 2.0 * (torch.einsum("ij,bjhw->bihw", _RGB_TO_YUV, x) - torch.tensor([0.5, 0.0, 0.0]).view(1, 3, 1, 1))
    else:
        x = 2.0 * x - 1.0
    assert torch.allclose(pre.apply(frames), x, rtol=0, atol=1e-5)
    # Frames laid out as the policy driver hands them over (a permuted channels-last array) give the same.
    channels_last = frames.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.equal(pre.apply(channels_last), pre.apply(frames))


def test_bad_checkpoints_are_rejected(tmp_path):
    model = build_model(ModelConfig("small"), (66, 200))
    leftover = tmp_path / "good.safetensors.tmp"  # from an interrupted save, owner-only
    leftover.write_bytes(b"half a checkpoint")
    leftover.chmod(0o600)
    good = save_checkpoint(tmp_path / "good.safetensors", model, Preprocessing(), {"note": "test"})
    assert not leftover.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert good.stat().st_mode & 0o777 == 0o666 & ~umask  # others may read it as they may any file written here
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    junk = tmp_path / "junk.safetensors"
    junk.write_text("this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_checkpoint(junk)
    log = tmp_path / "train-log.json"  # given as --model, it was called "truncated or corrupt"
    log.write_text('{\n "config": {"epochs": 2}\n}\n')
    with pytest.raises(CheckpointError, match="train-log.json: not a safetensors checkpoint"):
        load_checkpoint(log)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing")
    # Weights of a small network under a header that claims pilotnet.
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    metadata["model"] = json.dumps({"architecture": "pilotnet", "throttle_head": False, "dropout": 0.1})
    wrong = tmp_path / "wrong.safetensors"
    save_file(tensors, str(wrong), metadata=metadata)
    with pytest.raises(CheckpointError, match="do not fit a pilotnet"):
        load_checkpoint(wrong)
    foreign = tmp_path / "foreign.safetensors"
    save_file(tensors, str(foreign))
    with pytest.raises(CheckpointError, match="not a drivesim checkpoint"):
        load_checkpoint(foreign)
    # A preprocessing too small for the network's kernels.
    tiny = tmp_path / "tiny.safetensors"
    save_file(tensors, str(tiny), metadata={**handle_metadata(good), "preprocessing": json.dumps({**json.loads(handle_metadata(good)["preprocessing"]), "height": 8, "width": 8})})
    with pytest.raises(CheckpointError, match="8x8 does not fit|8x8\\) does not fit"):
        load_checkpoint(tiny)
    # Damaged weights: NaN would be clamped into a full-lock command.
    nan = tmp_path / "nan.safetensors"
    save_file({k: torch.full_like(v, float("nan")) if k == next(iter(tensors)) else v for k, v in tensors.items()}, str(nan), metadata=handle_metadata(good))
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        load_checkpoint(nan)
    # One flipped bit in a weight's last mantissa bit: finite, plausible, and not the network that was trained.
    flipped = bytearray(good.read_bytes())
    flipped[-2] ^= 0x01
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="do not match the SHA-256 stored with them"):
        load_checkpoint(tmp_path / "flipped.safetensors")


def test_the_shipped_baseline_carries_and_passes_its_weights_digest(repo_root):
    from drivesim.learn.checkpoint import weights_sha256

    path = repo_root / "models" / "pilotnet-baseline" / "model.safetensors"
    assert handle_metadata(path)["weights_sha256"] == weights_sha256(load_checkpoint(path).model.state_dict())


def handle_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata())


def test_a_policy_whose_output_is_not_finite_stops_instead_of_steering_full_lock(tmp_path):
    import numpy as np

    from drivesim.drivers.policy import PolicyDriver, PolicyError

    model = build_model(ModelConfig("small"), (66, 200))
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model, Preprocessing(), {}))
    driver = PolicyDriver(checkpoint)
    frames = np.zeros((2, 120, 160, 3), np.uint8)
    assert np.all(np.abs(driver.predict(frames)) <= 1)
    # Frames scaled to [0, 1] gave one near-constant answer; one frame without its batch axis, torch's own error.
    with pytest.raises(PolicyError, match="takes uint8 frames .*, got float32"):
        driver.predict(frames.astype(np.float32) / 255)
    with pytest.raises(PolicyError, match=r"a batch of RGB frames \(B, H, W, 3\), got an array of shape \(120, 160, 3\); for one frame, pass frame\[None\]"):
        driver.predict(frames[0])
    with torch.no_grad():
        next(checkpoint.model.parameters()).fill_(float("nan"))
    with pytest.raises(PolicyError, match="not finite"):
        driver.predict(frames)


def test_cli_trains_a_few_steps(tiny_recording, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "drivesim.cli", "train", "--data", str(tiny_recording), "--out", str(tmp_path / "m"), "--model", "small", "--epochs", "1", "--max-steps", "3", "--workers", "0", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "val loss" in result.stdout and "parameters on cpu" in result.stdout
    assert json.loads((tmp_path / "m" / "train-log.json").read_text())["device"] == "cpu"
    assert load_checkpoint(tmp_path / "m").model_config.architecture == "small"
    bad = subprocess.run([sys.executable, "-m", "drivesim.cli", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("drivesim: error:")
    assert not (tmp_path / "x").exists()  # a refused run leaves no empty model folder
    again = subprocess.run(
        [sys.executable, "-m", "drivesim.cli", "train", "--data", str(tiny_recording), "--out", str(tmp_path / "m"), "--model", "pilotnet", "--max-steps", "1", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "already holds a model" in again.stderr
    assert load_checkpoint(tmp_path / "m").model_config.architecture == "small"  # untouched


def test_cli_train_config_file_reaches_settings_without_an_option_and_options_override_it(tiny_recording, tmp_path):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"data": [str(tiny_recording)], "model": {"architecture": "small"}, "epochs": 3, "weight_decay": 0.01,
                                  "preprocessing": {"width": 64, "height": 48}, "augment": {"brightness": 0.1}}))

    def train(out, *args):
        command = [sys.executable, "-m", "drivesim.cli", "train", "--out", str(out), "--config", str(config), "--max-steps", "1", "--workers", "0", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads((out / "train-log.json").read_text())["config"]

    ran = train(tmp_path / "a", "--epochs", "1")
    assert ran["epochs"] == 1 and ran["weight_decay"] == 0.01 and ran["augment"]["brightness"] == 0.1 and ran["data"] == [str(tiny_recording)]
    assert load_checkpoint(tmp_path / "a").preprocessing.width == 64  # the network's input size came from the file
    ran = train(tmp_path / "b", "--no-augment", "--throttle")
    assert ran["augment"]["brightness"] == 0 and ran["model"]["throttle_head"] and ran["epochs"] == 3
    # 48 px rows are too few for PilotNet's convolutions: said before any work, not a torch traceback mid-run.
    too_small = subprocess.run([sys.executable, "-m", "drivesim.cli", "train", "--out", str(tmp_path / "c"), "--config", str(config), "--model", "pilotnet"],
                               capture_output=True, text=True, timeout=120)
    assert too_small.returncode == 2 and "the pilotnet network needs inputs of at least 61x61 px; preprocessing gives 48x64" in too_small.stderr
    config.write_text(json.dumps({"data": [str(tiny_recording)], "cameras": ["left"]}))  # the CLI's --cameras check does not see a file
    sideways = subprocess.run([sys.executable, "-m", "drivesim.cli", "train", "--out", str(tmp_path / "c"), "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert sideways.returncode == 2 and "cameras must name center" in sideways.stderr
    missing = subprocess.run([sys.executable, "-m", "drivesim.cli", "train", "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "train needs --data RECORDING" in missing.stderr
    config.write_text(json.dumps({"epochs": 3}))
    no_data = subprocess.run([sys.executable, "-m", "drivesim.cli", "train", "--out", str(tmp_path / "c"), "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert no_data.returncode == 2 and no_data.stderr.strip() == f"drivesim: error: {config}: data must be given" and not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("tpu", "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        pytest.param("cuda", "--device cuda: torch sees no CUDA GPU", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
        pytest.param("cuda:7", "--device cuda:7: torch sees", marks=pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has 8 GPUs")),
    ],
)
def test_a_device_torch_cannot_use_is_a_one_line_error_before_any_output(tiny_recording, tmp_path, device, message):
    for command in (["train", "--data", str(tiny_recording), "--out", str(tmp_path / "m")], ["dagger", "--out", str(tmp_path / "d"), "--iterations", "1"]):
        result = subprocess.run([sys.executable, "-m", "drivesim.cli", *command, "--device", device], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and result.stderr.startswith("drivesim: error:") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists() and not (tmp_path / "d").exists()


def test_a_run_replacing_a_model_and_stopped_after_its_first_save_leaves_no_old_log(tiny_recording, tmp_path):
    # train-log.json tells dagger a training finished: beside new weights, the earlier run's log would pass for theirs.
    config = TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / "m"), model=ModelConfig("small"), epochs=2, batch=16, workers=0, max_steps=4)
    train(config, progress=False, log=lambda _: None)
    old_weights = (tmp_path / "m" / "model.safetensors").read_bytes()

    def stop_after_the_first_save(line: str) -> None:
        if line.startswith("epoch 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(replace(config, seed=1), progress=False, log=stop_after_the_first_save)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() != old_weights
    assert not (tmp_path / "m" / "train-log.json").exists() and not (tmp_path / "m" / "loss.png").exists()


def test_cli_train_on_a_corrupt_frame_says_so_in_one_line(tiny_recording, tmp_path):
    # The frame is read inside a DataLoader worker process; torch wraps the error with the worker's traceback.
    import shutil

    import h5py

    folder = tmp_path / "rec"
    shutil.copytree(tiny_recording, folder)
    path = folder / "shard-00001.h5"
    with h5py.File(path, "r") as f:
        chunks = [f["images/center"].id.get_chunk_info(k) for k in range(0, 120, 10)]
    data = bytearray(path.read_bytes())
    for chunk in chunks:
        for k in range(8):
            data[chunk.byte_offset + chunk.size // 2 + k] ^= 0xFF
    path.write_bytes(bytes(data))
    result = subprocess.run(
        [sys.executable, "-m", "drivesim.cli", "train", "--data", str(folder), "--out", str(tmp_path / "m"), "--model", "small", "--max-steps", "3", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "shard-00001.h5: cannot read images/center frame" in result.stderr


def test_ctrl_c_during_training_says_what_it_left(tiny_recording, tmp_path, terminal):
    def interrupt_when(args: list[str], prefix: str) -> tuple[int, str]:
        """Ctrl-C once a line of stdout starts with `prefix`; the exit status and stderr."""
        process = terminal.start(*args)
        try:
            for line in process.stdout:
                if line.startswith(prefix):
                    terminal.ctrl_c(process)
                    break
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        return process.returncode, err

    out = tmp_path / "m"
    args = ["train", "--data", str(tiny_recording), "--out", str(out), "--epochs", "1000", "--batch", "1", "--workers", "0"]
    # Before the first epoch's end: nothing to keep, and no empty folder.
    status, err = interrupt_when(args, "model pilotnet:")
    assert status == 130 and err.strip().splitlines()[-1] == "drivesim: interrupted; no model was written", err
    assert not out.exists()
    # After it: the best epoch's weights stay, marked unfinished, and a re-run says why it will not replace them.
    status, err = interrupt_when([*args, "--model", "small"], "epoch 1:")
    assert status == 130 and "holds the best epoch so far" in err.strip().splitlines()[-1], err
    assert (out / "model.safetensors").exists() and not (out / "train-log.json").exists()
    again = subprocess.run([sys.executable, "-m", "drivesim.cli", *args], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "from an interrupted run" in again.stderr, again.stderr

    # SIGTERM as `timeout` sends it, to the process and then its group, loader workers included: the same stop.
    process = terminal.start("train", "--data", tiny_recording, "--out", tmp_path / "t", "--epochs", 1000, "--batch", 1, "--model", "small", "--workers", 2)
    try:
        for line in process.stdout:
            if line.startswith("epoch 1:"):
                process.terminate()
                os.killpg(process.pid, signal.SIGTERM)
                break
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("drivesim: SIGTERM: interrupted; ") and (tmp_path / "t" / "model.safetensors").exists(), err


def test_validating_on_a_training_recording_is_warned_about(tiny_recording, tmp_path):
    lines: list[str] = []
    config = TrainConfig(data=(str(tiny_recording),), out=str(tmp_path / "m"), model=ModelConfig("small"), epochs=1, batch=16, workers=0, max_steps=2)
    train(replace(config, val=(str(tiny_recording / ".." / tiny_recording.name),)), progress=False, log=lines.append)
    assert any(line.startswith("warning: a --val recording is also a --data recording") for line in lines), lines
    import shutil

    lines.clear()
    shutil.copytree(tiny_recording, tmp_path / "copy")  # the same frames elsewhere: only the user can know they are
    train(replace(config, out=str(tmp_path / "n"), val=(str(tmp_path / "copy"),)), progress=False, log=lines.append)
    assert not any(line.startswith("warning") for line in lines), lines


def test_loader_workers_default_to_two_beside_a_cpu_and_to_the_cores_up_to_eight_beside_a_gpu():
    from drivesim.learn.train import loader_workers

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert [loader_workers(None, cpu, cores) for cores in (1, 2, 16)] == [2, 2, 2]
    assert [loader_workers(None, gpu, cores) for cores in (1, 2, 6, 16, 64)] == [2, 2, 6, 8, 8]
    assert loader_workers(0, gpu, 16) == 0 and loader_workers(5, cpu, 2) == 5  # what the user asks for


def test_a_model_keeps_its_camera_and_eval_play_and_generate_drive_it_through_that_camera(tmp_path, repo_root):
    from drivesim.app.session import PlayConfig, PlaySession
    from drivesim.config import CameraConfig
    from drivesim.record import open_recording

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "drivesim.cli", *map(str, args)], capture_output=True, text=True, timeout=300)

    track = repo_root / "tracks" / "val" / "val-000.json"
    made = cli("generate", "--out", tmp_path / "data", "--frames", 60, "--shard-frames", 60, "--width", 192, "--height", 144, "--tracks", track, "--workers", 1)
    assert made.returncode == 0, made.stderr
    trained = cli("train", "--data", tmp_path / "data", "--out", tmp_path / "m", "--model", "small", "--max-steps", 1, "--workers", 0)
    assert trained.returncode == 0, trained.stderr
    assert load_checkpoint(tmp_path / "m").camera == CameraConfig(width=192, height=144)
    # Trained before the camera was kept, through the default one: generate refuses it another camera, as any model.
    assert load_checkpoint(repo_root / "models" / "pilotnet-baseline").camera == CameraConfig()
    (tmp_path / "b.json").write_text(json.dumps({"policy": str(repo_root / "models" / "pilotnet-baseline"), "frames": 20, "tracks": str(track)}))
    refused = cli("generate", "--out", tmp_path / "baseline-data", "--config", tmp_path / "b.json", "--width", 320, "--height", 240)
    assert refused.returncode == 2 and "another camera than this run's rig.camera (width 160 vs 320, height 120 vs 240)" in refused.stderr, refused.stderr

    # eval renders through the model's camera, the expert's reference run too, unless a config file sets one.
    evaluated = cli("eval", "--model", tmp_path / "m", "--tracks", track, "--laps", 0.02, "--record", tmp_path / "rec", "--workers", 1)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "rendering with the camera" in evaluated.stderr and "192x144 px" in evaluated.stderr
    assert open_recording(tmp_path / "rec").cameras == {"center": (144, 192)}
    (tmp_path / "c.json").write_text(json.dumps({"rig": {"camera": {"width": 160, "height": 120}}}))
    chosen = cli("eval", "--model", tmp_path / "m", "--tracks", track, "--laps", 0.02, "--no-reference", "--workers", 1, "--config", tmp_path / "c.json")
    assert chosen.returncode == 0 and f"warning: {tmp_path / 'm'} was trained through another camera; {tmp_path / 'c.json'} changes width 192 vs 160, height 144 vs 120" in chosen.stderr, chosen.stderr

    # A file that changes part of the camera changes the model's camera, not the default 160x120 one.
    (tmp_path / "fov.json").write_text(json.dumps({"rig": {"camera": {"fov": 1.5}}}))
    wider = cli("eval", "--model", tmp_path / "m", "--tracks", track, "--laps", 0.02, "--no-reference", "--workers", 1, "--config", tmp_path / "fov.json",
                "--record", tmp_path / "wide")
    assert wider.returncode == 0 and "changes fov 1.4 vs 1.5" in wider.stderr, wider.stderr
    assert open_recording(tmp_path / "wide").cameras == {"center": (144, 192)}

    assert PlaySession(PlayConfig(size=(320, 240), track=str(track), model=str(tmp_path / "m"))).config.rig.camera.width == 192

    # Data driven by the network through another camera would be frames it never learned from: refused before any work.
    (tmp_path / "g.json").write_text(json.dumps({"policy": str(tmp_path / "m"), "frames": 20, "tracks": str(track)}))
    refused = cli("generate", "--out", tmp_path / "dagger-data", "--config", tmp_path / "g.json")
    assert refused.returncode == 2 and "another camera than this run's rig.camera (width 192 vs 160, height 144 vs 120)" in refused.stderr
    assert not (tmp_path / "dagger-data").exists()


def test_recordings_made_through_different_cameras_give_the_model_no_camera(tiny_recording, tmp_path, repo_root):
    from drivesim.config import CameraConfig, GenerateConfig, RigConfig, to_dict
    from drivesim.generate import generate
    from drivesim.learn.train import recorded_camera

    wide = tmp_path / "wide"  # the same image size (else they could not be trained on together), a wider view
    generate(GenerateConfig(frames=10, shard_frames=10, seed=3, tracks=str(repo_root / "tracks" / "val" / "val-000.json"),
                            rig=RigConfig(camera=CameraConfig(fov=1.5))), wide, workers=1, progress=False)
    default_view, wide_view = open_recording(tiny_recording), open_recording(wide)
    assert recorded_camera((default_view, default_view)) == to_dict(CameraConfig())
    assert recorded_camera((wide_view,)) == to_dict(CameraConfig(fov=1.5))
    assert recorded_camera((default_view, wide_view)) is None

    lines: list[str] = []
    config = TrainConfig(data=(str(tiny_recording), str(wide)), out=str(tmp_path / "m"), model=ModelConfig("small"), max_steps=1, workers=0)
    train(config, progress=False, log=lines.append)
    assert any(line.startswith("warning: the --data recordings do not share one camera") for line in lines), lines
    assert load_checkpoint(tmp_path / "m").camera is None  # eval then renders through the default camera, as before


def test_the_policy_feeds_the_network_what_training_fed_it(tiny_recording, repo_root):
    # Recorded frames (H, W, 3) as eval renders them, against the training path (the Dataset's (3, H, W)
    # tensors, then the checkpoint's preprocessing): one network input. Any other resize still runs, and drives badly.
    import h5py
    import numpy as np

    from drivesim.drivers.policy import PolicyDriver

    policy = PolicyDriver(repo_root / "models" / "pilotnet-baseline")
    dataset = RecordingDataset(tiny_recording)
    with h5py.File(open_recording(tiny_recording).shard_path(0), "r") as f:
        rendered = f["images/center"][:4]
    with torch.no_grad():
        trained_on = policy.model(policy.preprocessing.apply(torch.stack([dataset[i][0] for i in range(4)]))).clamp(-1, 1).numpy()
    np.testing.assert_allclose(policy.predict(rendered), trained_on, atol=1e-6)


class ConstantSteering(torch.nn.Module):
    """A network that answers `steering` to every frame."""

    def __init__(self, steering: float):
        super().__init__()
        self.steering = steering

    def forward(self, x):
        return torch.full((x.shape[0], 1), self.steering)


def test_the_policy_slows_for_bends_either_way_alike(repo_root, tmp_path):
    # Without a throttle head the speed controller aims at cruise / (1 + slow_down * |steering|).
    import numpy as np

    from drivesim.drivers.policy import PolicyDriver
    from drivesim.learn.checkpoint import Checkpoint
    from drivesim.sim import World
    from drivesim.track import load_track

    world = World(load_track(repo_root / "tracks" / "val" / "val-000.json"))
    world.reset(speed=10.0)
    frames = {"center": np.zeros((120, 160, 3), np.uint8)}
    throttle = {}
    for steering in (0.0, 0.2, -0.2):
        driver = PolicyDriver(Checkpoint(ConstantSteering(steering), ModelConfig("small"), Preprocessing(), {}, tmp_path / "m"))
        controls = driver.act(world, frames)
        assert controls.steering == pytest.approx(steering)
        throttle[steering] = controls.throttle
    assert throttle[0.2] == pytest.approx(throttle[-0.2]) and throttle[0.2] < throttle[0.0]


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_a_checkpoint_without_a_weights_digest_is_still_checked_tensor_by_tensor(tmp_path, change):
    # Checkpoints from before the digest (the shipped baseline's first copy) rest on load_state_dict(strict=True).
    from safetensors import safe_open
    from safetensors.torch import save_file

    good = save_checkpoint(tmp_path / "good.safetensors", build_model(ModelConfig("small"), (66, 200)), Preprocessing(), {})
    with safe_open(str(good), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    del metadata["weights_sha256"]
    if change == "missing":
        del tensors[sorted(tensors)[-1]]
    else:
        tensors["spare.weight"] = torch.zeros(2)
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="weights do not fit a small network"):
        load_checkpoint(tmp_path / "old.safetensors")
