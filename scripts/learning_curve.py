"""Learning curve: closed-loop autonomy and validation loss versus training-set size.

    python scripts/learning_curve.py --out recordings/learning-curve [--sizes 1000 3000 10000 30000] [--model small]
        [--tracks random --shard-frames 100 --cameras center,left,right] [--baseline models/pilotnet-baseline]

For each size N it generates N expert frames (the same run seed, so each
smaller set is exactly the first shards of the larger ones), trains a
network with at least `--min-steps` optimisation steps (small sets get more
epochs, so every size is trained to convergence, not to a fixed epoch
count), and evaluates it on tracks/holdout. The validation set is the one
scripts/train_baseline.sh makes, so `--baseline` can add a trained
checkpoint (the shipped one) as one more point, evaluated the same way.
Writes learning-curve.json, learning-curve.md and learning-curve.png into
--out: if autonomy is still rising at the largest size, more data would
still help.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from arguments import at_least  # scripts/arguments.py: this folder is on sys.path

from drivesim.atomic import write_figure
from drivesim.config import GenerateConfig, NoiseConfig, RandomizationConfig, RigConfig
from drivesim.drivers.policy import PolicyDriver
from drivesim.errors import DrivesimError
from drivesim.evaluate import EvalConfig, evaluate
from drivesim.generate import generate
from drivesim.learn import ModelConfig, load_checkpoint
from drivesim.learn.train import TrainConfig, train
from drivesim.processes import usable_cores


def main() -> None:
    try:
        run(parse_arguments())
    except DrivesimError as error:  # a bad argument or file: one line, not a traceback
        sys.exit(f"learning_curve.py: error: {error}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the data, models and evaluations, and learning-curve.json, .md and .png")
    parser.add_argument("--sizes", type=at_least(1), nargs="+", default=[1000, 3000, 10000, 30000], help="training-set sizes [frames]")
    parser.add_argument("--model", default="small", choices=["small", "pilotnet"], help="network to train at each size (default: small; the README's curve used pilotnet)")
    parser.add_argument("--min-steps", type=at_least(1), default=1200, help="fewest optimisation steps of any training run")
    parser.add_argument("--epochs", type=at_least(1), default=6, help="epochs for sizes large enough to reach --min-steps with them")
    parser.add_argument("--eval-laps", type=float, default=1.0, help="laps of each held-out track in each closed-loop evaluation (default: 1)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the training data (the validation set is fixed: train_baseline.sh's)")
    parser.add_argument("--tracks", default="tracks/train", help="track folder for the training data, or random (a fresh track per shard)")
    parser.add_argument("--shard-frames", type=at_least(1), default=1000, help="frames per shard; with random tracks, one track and look each")
    parser.add_argument("--cameras", default="center", help="rig cameras of the training data (left and right add recovery views)")
    parser.add_argument("--baseline", type=Path, default=None, help="a trained checkpoint folder to add as a point (its frames: --baseline-frames)")
    parser.add_argument("--baseline-frames", type=at_least(1), default=60000, help="training frames of --baseline (the shipped recipe's 60,000)")
    args = parser.parse_args()
    if args.eval_laps <= 0:
        parser.error("--eval-laps must be above 0")
    return args


def run(args: argparse.Namespace) -> None:
    cameras = tuple(args.cameras.split(","))
    rig = RigConfig(cameras=cameras)  # checked now, not after the validation set is made
    eval_config = EvalConfig(tracks="tracks/holdout", laps=args.eval_laps)
    baseline = None
    if args.baseline is not None:  # checked now, not hours later when its row is due
        load_checkpoint(args.baseline)
        log_file = args.baseline / "train-log.json"
        try:
            log = json.loads(log_file.read_text())
            baseline = {"epochs": log["config"]["epochs"], "val_loss": log["best_val_loss"], "train_seconds": log["seconds"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DrivesimError(f"--baseline {args.baseline}: its train-log.json is missing or lacks the epochs, validation loss "
                                f"and training time ({type(error).__name__}: {error})") from None

    val = args.out / "val"
    generate(GenerateConfig(frames=3000, seed=2, tracks="tracks/val", randomization=RandomizationConfig.preset("full"), noise=NoiseConfig(steering_std=0.1)), val, progress=False)
    rows: list[dict] = []

    def closed_loop(model_dir: Path, name: str) -> dict:
        overall = evaluate(PolicyDriver(model_dir), eval_config, name=name, workers=usable_cores()).overall
        return {"autonomy_pct": overall["autonomy_pct"], "interventions_per_km": overall["interventions_per_km"], "clean_lap_share": overall["clean_lap_share"]}

    for size in sorted(set(args.sizes)):
        data = args.out / f"train-{size}"
        spec = GenerateConfig(
            frames=size,
            seed=args.seed,
            tracks=args.tracks,
            shard_frames=args.shard_frames,
            rig=rig,
            randomization=RandomizationConfig.preset("full"),
            noise=NoiseConfig(steering_std=0.1),
        )
        generate(spec, data, progress=False)
        batch = 64
        epochs = max(args.epochs, math.ceil(args.min_steps * batch / (size * len(cameras))))
        model_dir = args.out / f"model-{size}"
        summary = train(
            TrainConfig(data=(str(data),), val=(str(val),), out=str(model_dir), model=ModelConfig(args.model), cameras=cameras, epochs=epochs, batch=batch, seed=0),
            progress=False,
            log=lambda line, size=size: print(f"[{size}] {line}"),
        )
        row = {"frames": size, "epochs": epochs, "val_loss": summary["best_val_loss"], **closed_loop(model_dir, f"{size} frames"), "train_seconds": summary["seconds"]}
        print(json.dumps(row))
        rows.append(row)
        write_results(rows, args.out)  # after every point: a run that fails later keeps what it measured
    if baseline is not None:
        row = {"frames": args.baseline_frames, **baseline, **closed_loop(args.baseline, str(args.baseline))}
        print(json.dumps(row))
        rows.append(row)
    print(write_results(rows, args.out))


def write_results(rows: list[dict], out: Path) -> str:
    """learning-curve.json, .md and .png for the points so far; returns the Markdown table."""
    (out / "learning-curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| training frames | epochs | val loss | autonomy % | interventions/km | clean laps | training time [s] |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r['frames']} | {r['epochs']} | {r['val_loss']:.5f} | {r['autonomy_pct']:.2f} | {r['interventions_per_km']:.2f} | {'-' if r['clean_lap_share'] is None else format(r['clean_lap_share'], '.0%')} | {r['train_seconds']:.0f} |"
        for r in rows
    ]
    (out / "learning-curve.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "learning-curve.png")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    frames = [r["frames"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    left.plot(frames, [r["autonomy_pct"] for r in rows], "o-")
    left.set_ylabel("closed-loop autonomy on holdout [%]")
    left.set_ylim(0, 100)  # the full scale: a few points of autonomy are within run-to-run spread
    right.plot(frames, [r["val_loss"] for r in rows], "s-", color="tab:orange")
    right.set_ylabel("validation loss (MSE)")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(frames, [f"{f:,}" for f in frames])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # 3x10^3, 4x10^3, ... would overprint
        ax.set_xlabel("training frames")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)


if __name__ == "__main__":
    main()
