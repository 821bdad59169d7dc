"""DAgger with expert takeover (Ross et al. 2011; Kelly et al. 2019, HG-DAgger).

Iteration 0 trains on expert-driven frames (with DART noise if
`start_noise` is set). Each later iteration lets the
current network drive the training tracks while the expert labels every
frame and takes the wheel when the car leaves the safe envelope; those
frames join all earlier data, a network is trained on the aggregate and
evaluated on the held-out tracks. Behavioural-cloning baselines get the same
total number of frames, all expert-driven (with and without DART noise), so
the table answers: does closed-loop data beat more expert data?
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivesim.atomic import write_atomically, write_figure
from drivesim.config import (
    MAX_LAPS,
    MIN_LAPS,
    GenerateConfig,
    NoiseConfig,
    RandomizationConfig,
    check,
    check_track_source,
    to_dict,
)
from drivesim.errors import DrivesimError
from drivesim.evaluate import EvalConfig, Evaluation, evaluate
from drivesim.generate import generate
from drivesim.learn.config import MAX_TORCH_SEED, AugmentConfig, ModelConfig, TrainConfig, check_device_name
from drivesim.processes import usable_cores
from drivesim.report import format_figure
from drivesim.track import load_tracks, track_set_sha256

TRACK_SETTINGS = ("tracks", "eval_tracks")
"""Settings that name track files."""
SETTINGS_DIGESTS = tuple(f"{key}_sha256" for key in TRACK_SETTINGS)
"""Keys dagger-config.json holds beside the settings: the track files' digests (`load_json` ignores them)."""

BASELINE_SEED_OFFSET = 500
"""Data seeds are seed * 1000 + i for iteration i, + this (and + 1) for the cloning baselines, + 2 for validation."""
VALIDATION_SHARE = 0.1
"""Validation frames, expert-driven and made once, as a share of frames_per_iteration (at least 100)."""
TRACKED_METRICS = ("autonomy_pct", "interventions_per_km", "clean_lap_share", "crashes", "mean_abs_offset_m", "mean_abs_steering_rate")


class DaggerError(DrivesimError):
    """A DAgger experiment cannot run as asked."""


@dataclass(frozen=True)
class DaggerConfig:
    """A DAgger experiment and its behavioural-cloning baselines."""

    out: str
    """Folder for data/, models/, eval/, dagger.json, dagger.md and dagger.png."""
    iterations: int = 4
    """Iterations including iteration 0 (expert data only)."""
    frames_per_iteration: int = 4000
    """Frames collected per iteration."""
    tracks: str = "tracks/train"
    """Tracks driven for data (a folder, or random: a fresh track per shard)."""
    shard_frames: int = 1000
    """Frames per shard of collected data; with random tracks each shard is a new track, and each episode (400 frames) a new appearance."""
    eval_tracks: str = "tracks/holdout"
    """Tracks every model is evaluated on (never trained on)."""
    eval_laps: float = 1.0
    """Laps per held-out track in each evaluation."""
    model: str = "pilotnet"
    """Network architecture (pilotnet or small)."""
    epochs: int = 6
    """Epochs of each training run (from scratch, on all data so far)."""
    batch: int = 64
    """Training batch size."""
    dart_noise: float = 0.1
    """Steering noise of the noisy-expert cloning baseline."""
    start_noise: float = 0.0
    """DART steering noise of iteration 0's expert frames: 0 is DAgger's classic start from clean expert data;
    the baseline's dart_noise starts it where noisy-expert cloning starts, so the table shows what closed-loop
    data adds to noise injection."""
    randomize: str = "full"
    """Randomization of the collected frames (evaluation uses light)."""
    baselines: bool = True
    """Also train and evaluate the cloning baselines."""
    seed: int = 0
    """Seeds data, training and evaluation."""
    workers: int | None = None
    """Processes for data generation and evaluation (default: all cores)."""
    device: str = "auto"
    """Where the networks train (auto, cpu, cuda, cuda:N); where they drive is always the CPU."""

    def __post_init__(self) -> None:
        check(1 <= self.iterations < BASELINE_SEED_OFFSET, f"dagger needs 1 to {BASELINE_SEED_OFFSET - 1} iterations")
        check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        check(self.seed <= MAX_TORCH_SEED, f"seed must be at most 2**64 - 1 (torch's seeds: it seeds training), got {self.seed}")
        check(self.frames_per_iteration >= 100, "frames_per_iteration must be at least 100")
        check_track_source(self.tracks)
        check(self.shard_frames >= 1, "shard_frames must be at least 1")
        check(self.randomize in ("none", "light", "full"), "randomize must be none, light or full")
        check(0 <= self.start_noise <= 1 and 0 <= self.dart_noise <= 1, "DART noise must be in [0, 1]")
        check(MIN_LAPS <= self.eval_laps <= MAX_LAPS, f"eval_laps must be in [{MIN_LAPS}, {MAX_LAPS}]")
        check(self.epochs >= 1 and self.batch >= 1, "epochs and batch must be at least 1")
        check(self.workers is None or self.workers >= 1, f"workers must be at least 1 (or null: every core), got {self.workers}")
        ModelConfig(architecture=self.model)  # an unknown architecture fails now, not after the first data
        check_device_name(self.device)


def _data_config(config: DaggerConfig, frames: int, seed: int, noise: float = 0.0, policy: str | None = None) -> GenerateConfig:
    return GenerateConfig(
        frames=frames,
        seed=seed,
        tracks=config.tracks,
        shard_frames=config.shard_frames,
        episode_frames=400,
        randomization=RandomizationConfig.preset(config.randomize),
        noise=NoiseConfig(steering_std=noise),
        policy=policy,
    )


def _train(config: DaggerConfig, data: list[Path], val: Path, out: Path, log: Callable[[str], None]) -> Path:
    from drivesim.learn.train import train

    # train-log.json is written last: a run without it was interrupted and starts again.
    if not (out / "train-log.json").exists():
        run = TrainConfig(
            data=tuple(str(d) for d in data),
            val=(str(val),),  # one expert-driven set for every run: a held-out tail would cut into the newest data
            out=str(out),
            model=ModelConfig(config.model),
            augment=AugmentConfig(),
            epochs=config.epochs,
            batch=config.batch,
            seed=config.seed,
            device=config.device,
        )
        train(run, progress=False, log=lambda line: log(f"  {out.name}: {line}"))
    return out


def _evaluate(config: DaggerConfig, model: Path, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Evaluate a model on the held-out tracks once; the result is cached in `folder`/metrics.json. Returns
    the overall metrics, with "interventions_per_km_by_lanes" (lane count -> rate) added when the tracks
    have both lane counts."""
    from drivesim.drivers.policy import PolicyDriver
    from drivesim.report import write_report

    cached = folder / "metrics.json"
    if cached.exists():
        try:
            stored = next(iter(json.loads(cached.read_text()).values()))  # its one evaluation, however --out was spelled
            return _with_lane_rates(stored["overall"], {int(k): v for k, v in stored.get("by_lanes", {}).items()})
        except (ValueError, KeyError, StopIteration, TypeError, AttributeError):
            log(f"  {cached} is unreadable (an interrupted write?); evaluating again")
    evaluation: Evaluation = evaluate(
        PolicyDriver(model), EvalConfig(tracks=config.eval_tracks, laps=config.eval_laps, seed=config.seed), name=str(model), workers=config.workers or usable_cores()
    )
    write_report([evaluation], folder)
    overall = evaluation.overall
    log(f"  eval {model.name}: autonomy {format_figure(overall['autonomy_pct'], '{:.2f}%')}  interventions/km {format_figure(overall['interventions_per_km'], '{:.2f}')}  crashes {overall['crashes']}")
    return _with_lane_rates(overall, evaluation.by_lanes)


def _with_lane_rates(overall: dict[str, Any], by_lanes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {**overall, "interventions_per_km_by_lanes": {lanes: m["interventions_per_km"] for lanes, m in sorted(by_lanes.items())}}


def run_dagger(config: DaggerConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the experiment; every stage's output is kept and reused on a re-run."""
    # Track folders are read now, so a wrong path fails before any data is made or model trained.
    load_tracks(config.eval_tracks)
    if config.tracks != "random":
        load_tracks(config.tracks)
    from drivesim.learn.train import training_device  # torch: loaded once the settings and tracks are known good

    training_device(config.device)  # a GPU torch cannot see fails here too
    out = Path(config.out).resolve()  # stages name each other by path: the same whatever way --out is spelled
    settings = {**json.loads(json.dumps(to_dict(config))), **_track_digests(config)}
    saved = out / "dagger-config.json"
    if saved.exists():
        # A re-run resumes, with --out spelled any way, if its settings are the experiment's (_changed_settings).
        try:
            before = json.loads(saved.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise DaggerError(f"{saved}: not valid JSON ({error}); restore it or use another --out") from None
        if not isinstance(before, dict):
            raise DaggerError(f"{saved}: expected the experiment's settings, got {type(before).__name__}; restore it or use another --out")
        changed = _changed_settings(settings, before, defaults=json.loads(json.dumps(to_dict(DaggerConfig(out=config.out)))))
        if changed:
            raise DaggerError(f"{out} holds an experiment with other settings ({', '.join(changed)}); re-run it as it was "
                              f"(--config {saved} repeats it), or use another --out")
    (out / "data").mkdir(parents=True, exist_ok=True)
    write_atomically(saved, json.dumps(settings, indent=1) + "\n")
    n = config.frames_per_iteration
    val, val_frames = out / "data" / "val", max(100, int(n * VALIDATION_SHARE))
    log(f"validation: {val_frames} expert frames, shared by every training run")
    generate(_data_config(config, val_frames, seed=config.seed * 1000 + BASELINE_SEED_OFFSET + 2), val, workers=config.workers, progress=False)
    rows: list[dict[str, Any]] = []
    data: list[Path] = []
    model: Path | None = None
    for i in range(config.iterations):
        folder = out / "data" / f"iter-{i}"
        if i == 0:
            log(f"iteration 0: {n} expert frames" + (f" with DART noise {config.start_noise:g}" if config.start_noise else ""))
            spec = _data_config(config, n, seed=config.seed * 1000, noise=config.start_noise)
        else:
            log(f"iteration {i}: {n} frames with {model.name} driving, expert takeover")
            spec = _data_config(config, n, seed=config.seed * 1000 + i, policy=str(model / "model.safetensors"))
        generate(spec, folder, workers=config.workers, progress=False)
        data.append(folder)
        model = _train(config, data, val, out / "models" / f"dagger-{i}", log)
        metrics = _evaluate(config, model, out / "eval" / f"dagger-{i}", log)
        rows.append(_row(f"DAgger iteration {i}", n * (i + 1), metrics))

    if config.baselines:
        total = n * config.iterations
        for name, noise in (("BC expert", 0.0), (f"BC DART noise {config.dart_noise:g}", config.dart_noise)):
            slug = "bc-noise" if noise else "bc"
            log(f"{name}: {total} expert frames")
            folder = out / "data" / slug
            seed = config.seed * 1000 + BASELINE_SEED_OFFSET + (1 if noise else 0)
            generate(_data_config(config, total, seed=seed, noise=noise), folder, workers=config.workers, progress=False)
            model = _train(config, [folder], val, out / "models" / slug, log)
            metrics = _evaluate(config, model, out / "eval" / slug, log)
            rows.append(_row(name, total, metrics))

    summary = {"config": to_dict(config), "rows": rows}
    write_atomically(out / "dagger.json", json.dumps(summary, indent=1) + "\n")
    write_atomically(out / "dagger.md", dagger_table(rows) + "\n")
    start = f", from DART noise {config.start_noise:g}" if config.start_noise else ""
    plot_dagger(rows, out / "dagger.png", label=f"DAgger (expert takeover{start})")
    return summary


def _track_digests(config: DaggerConfig) -> dict[str, str]:
    """The SHA-256 of the track files each track setting names (none for random tracks), kept beside the
    settings in dagger-config.json, so that a resumed experiment knows its tracks by their files."""
    return {f"{key}_sha256": track_set_sha256(getattr(config, key)) for key in TRACK_SETTINGS if getattr(config, key) != "random"}


def _changed_settings(now: dict[str, Any], before: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The settings of `now` that are not the stored experiment's `before`; a setting added since that
    experiment was made counts as its default there. The process count and the training device do not
    change the data made, and an evaluation already made is kept as it was (with another count a network's
    outputs could differ in their last bits). A track set is the same by its files where both stored their
    digest: `tracks/train/`, `./tracks/train` and a moved copy are the same tracks."""
    changed = []
    for key in sorted((now.keys() | before.keys()) - {"out", "workers", "device", *SETTINGS_DIGESTS}):
        digest = f"{key}_sha256"
        if digest in now and digest in before:
            if now[digest] != before[digest]:
                changed.append(key)
        elif now.get(key) != before.get(key, defaults.get(key)):
            changed.append(key)
    return changed


def _row(name: str, frames: int, metrics: dict[str, Any]) -> dict[str, Any]:
    """One line of the table: a run's tracked metrics."""
    by_lanes = metrics.get("interventions_per_km_by_lanes") or {}
    return {"name": name, "frames": frames, **{k: metrics.get(k) for k in TRACKED_METRICS}, "interventions_per_km_by_lanes": by_lanes}


def dagger_table(rows: list[dict[str, Any]]) -> str:
    cell = format_figure
    # With one- and two-lane held-out tracks, a run's rate is often mostly one kind's (docs/dagger.md).
    lane_counts = sorted({int(k) for r in rows for k in r.get("interventions_per_km_by_lanes") or {}})
    by_lanes = "".join(f" {k}-lane interv./km |" for k in lane_counts)
    lines = [
        "| run | frames | autonomy % | interventions/km |" + by_lanes + " clean laps | crashes | mean abs offset [m] | steering rate [1/s] |",
        "|---" * (8 + len(lane_counts)) + "|",
    ]
    for r in rows:
        rates = {int(k): v for k, v in (r.get("interventions_per_km_by_lanes") or {}).items()}
        lane_cells = "".join(f" {cell(rates.get(k), '{:.2f}')} |" for k in lane_counts)
        lines.append(
            f"| {r['name']} | {r['frames']} | {cell(r['autonomy_pct'], '{:.2f}')} | {cell(r['interventions_per_km'], '{:.2f}')} |{lane_cells} "
            f"{cell(r['clean_lap_share'], '{:.0%}')} | {r['crashes']} | {cell(r['mean_abs_offset_m'], '{:.3f}')} | {cell(r['mean_abs_steering_rate'], '{:.3f}')} |"
        )
    return "\n".join(lines)


def plot_dagger(rows: list[dict[str, Any]], path: Path, label: str = "DAgger (expert takeover)") -> None:
    """Each metric against training frames: DAgger iterations as a line (`label`), baselines as markers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dagger = [r for r in rows if r["name"].startswith("DAgger")]
    baselines = [r for r in rows if not r["name"].startswith("DAgger")]
    titles = {"autonomy_pct": "autonomy [%]", "interventions_per_km": "interventions per km", "clean_lap_share": "laps without intervention", "crashes": "crashes", "mean_abs_offset_m": "mean |lateral offset| [m]", "mean_abs_steering_rate": "mean |steering rate| [1/s]"}
    fig = Figure(figsize=(13, 7), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    for ax, key in zip(axes.flat, TRACKED_METRICS, strict=True):
        xs = [r["frames"] for r in dagger if r[key] is not None]
        ys = [r[key] for r in dagger if r[key] is not None]
        ax.plot(xs, ys, "o-", label=label)
        for marker, r in zip(("s", "^", "D"), baselines, strict=False):
            if r[key] is not None:
                ax.plot([r["frames"]], [r[key]], marker, markersize=9, label=r["name"])
        if all(r[key] is None for r in rows):  # e.g. no evaluation lap was finished: say so, not an empty frame
            reason = "no evaluation lap was completed" if key == "clean_lap_share" else "not measured"
            ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center", color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(titles[key], fontsize=10)
        ax.set_xlabel("training frames")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    write_figure(path, fig)


__all__ = ["DaggerConfig", "dagger_table", "run_dagger"]
