"""Learning curve: closed-loop autonomy and validation loss versus training-set size.

    python scripts/learning_curve.py --out recordings/learning-curve [--sizes 1000 3000 10000 30000] [--model small]

For each size N it generates N expert frames on tracks/train (the same run
seed, so each smaller set is exactly the first shards of the larger ones),
trains a network with at least `--min-steps` optimisation steps (small sets
get more epochs, so every size is trained to convergence, not to a fixed
epoch count), and evaluates it on tracks/holdout. Writes learning-curve.json,
learning-curve.md and learning-curve.png into --out: if autonomy is still
rising at the largest size, more data would still help.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from drivesim.config import GenerateConfig, NoiseConfig, RandomizationConfig
from drivesim.drivers.policy import PolicyDriver
from drivesim.evaluate import EvalConfig, evaluate
from drivesim.generate import generate
from drivesim.learn import ModelConfig
from drivesim.learn.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000])
    parser.add_argument("--model", default="small", choices=["small", "pilotnet"])
    parser.add_argument("--min-steps", type=int, default=1200, help="fewest optimisation steps of any training run")
    parser.add_argument("--epochs", type=int, default=6, help="epochs for sizes large enough to reach --min-steps with them")
    parser.add_argument("--eval-laps", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    val = args.out / "val"
    generate(GenerateConfig(frames=2000, seed=args.seed + 1000, tracks="tracks/val", randomization=RandomizationConfig.preset("full"), noise=NoiseConfig(steering_std=0.1)), val, progress=False)
    rows = []
    for size in sorted(args.sizes):
        data = args.out / f"train-{size}"
        generate(GenerateConfig(frames=size, seed=args.seed, tracks="tracks/train", randomization=RandomizationConfig.preset("full"), noise=NoiseConfig(steering_std=0.1)), data, progress=False)
        batch = 64
        epochs = max(args.epochs, math.ceil(args.min_steps * batch / size))
        model_dir = args.out / f"model-{size}"
        summary = train(
            TrainConfig(data=(str(data),), val=(str(val),), out=str(model_dir), model=ModelConfig(args.model), epochs=epochs, batch=batch, seed=0),
            progress=False,
            log=lambda line, size=size: print(f"[{size}] {line}"),
        )
        evaluation = evaluate(PolicyDriver(model_dir), EvalConfig(tracks="tracks/holdout", laps=args.eval_laps), name=f"{size} frames")
        overall = evaluation.overall
        row = {
            "frames": size,
            "epochs": epochs,
            "val_loss": summary["best_val_loss"],
            "autonomy_pct": overall["autonomy_pct"],
            "interventions_per_km": overall["interventions_per_km"],
            "train_seconds": summary["seconds"],
        }
        print(json.dumps(row))
        rows.append(row)

    (args.out / "learning-curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| training frames | epochs | val loss | autonomy % | interventions/km | training time [s] |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['frames']} | {r['epochs']} | {r['val_loss']:.5f} | {r['autonomy_pct']:.2f} | {r['interventions_per_km']:.2f} | {r['train_seconds']:.0f} |" for r in rows]
    (args.out / "learning-curve.md").write_text("\n".join(lines) + "\n")
    plot(rows, args.out / "learning-curve.png")
    print("\n".join(lines))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        ax.set_xlabel("training frames")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
