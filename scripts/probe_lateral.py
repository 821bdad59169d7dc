"""Open-loop probe of a driving network: how it answers a sideways displacement, per track.

    python scripts/probe_lateral.py --model models/pilotnet-baseline [--tracks tracks/holdout] [--positions 60]

On each track the car is placed at `--positions` points along the road, at
each of several offsets from its lane centre, facing along the road at the
policy's cruise speed; the network's steering is compared with the expert's
on the same frame. Per track it prints the mean of (network - expert) at
each offset, the bias at the lane centre, and the slope of the network's
own answer against offset.

Why: closed-loop drift (a car that settles a metre off its lane) comes from
a bias at the lane centre that the network's lateral gain cannot cancel.
The steady offset is roughly bias / |gain|, so this table tells, in well under
a minute for the ten holdout tracks and without driving, which tracks
a network will drift on and why.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from drivesim.config import CarConfig, ExpertConfig, RandomizationConfig, RigConfig, WorldConfig  # noqa: E402
from drivesim.drivers.expert import ExpertDriver  # noqa: E402
from drivesim.drivers.policy import PolicyDriver  # noqa: E402
from drivesim.errors import DrivesimError  # noqa: E402
from drivesim.render.frame_source import RigView  # noqa: E402
from drivesim.sim.world import World  # noqa: E402
from drivesim.track import Track, load_tracks  # noqa: E402

OFFSETS = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
"""Offsets from the lane centre the car is placed at [m], positive = left."""


def probe_track(
    policy: PolicyDriver, track: Track, index: int, positions: int, speed: float, seed: int, randomize: str = "light"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean network steering and mean expert steering at each of OFFSETS, over `positions` points of `track`.

    The appearance is drawn from (seed, index), as `drivesim eval --seed` draws look 0 of the track at
    `index` of its folder, so the probe sees each track as evaluation does."""
    view = RigView(track, RigConfig(), RandomizationConfig.preset(randomize))
    world = World(track, CarConfig(), WorldConfig())
    expert = ExpertDriver(ExpertConfig())
    view.start_episode(np.random.default_rng([seed, index]))
    network_sum, expert_sum = np.zeros(len(OFFSETS)), np.zeros(len(OFFSETS))
    try:
        for s in np.linspace(0.0, track.length, positions, endpoint=False):
            frames, labels = [], []
            for offset in OFFSETS:
                world.reset(s=float(s), lateral_offset=float(offset), speed=speed)
                expert.reset(world)
                frames.append(view.render(world)["center"])
                labels.append(expert.act(world).steering)
            network_sum += policy.predict(np.stack(frames))[:, 0]
            expert_sum += np.asarray(labels)
    finally:
        view.close()
    return network_sum / positions, expert_sum / positions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder or file")
    parser.add_argument("--tracks", default="tracks/holdout", help="track folder or file")
    parser.add_argument("--positions", type=int, default=60, help="points along each track (at least 1)")
    parser.add_argument("--speed", type=float, default=ExpertConfig.max_speed, help="car speed [m/s] (default: the policy's cruise speed)")
    parser.add_argument("--seed", type=int, default=0, help="seeds each track's appearance, as drivesim eval --seed does for look 0")
    parser.add_argument("--randomize", default="light", choices=("none", "light", "full"), help="look of the world (eval uses light)")
    args = parser.parse_args()
    if args.positions < 1:
        parser.error("--positions must be at least 1")
    if not args.speed > 0:
        parser.error("--speed must be above 0 m/s")
    try:
        probe(args)
    except DrivesimError as error:  # a missing model or tracks: one line, not a traceback
        sys.exit(f"probe_lateral.py: error: {error}")


def probe(args: argparse.Namespace) -> None:
    policy = PolicyDriver(args.model)
    header = " ".join(f"{o:+6.1f}" for o in OFFSETS)
    print(f"network - expert steering (normalized) by offset from the lane centre [m]: {args.model}")
    print(f"{'track':12s} lanes width | {header} | bias at 0 | network slope [1/m] | expert slope [1/m]")
    for index, track in enumerate(load_tracks(args.tracks)):
        network, expert = probe_track(policy, track, index, args.positions, args.speed, args.seed, args.randomize)
        difference = " ".join(f"{d:+6.3f}" for d in network - expert)
        network_slope = np.polyfit(OFFSETS, network, 1)[0]
        expert_slope = np.polyfit(OFFSETS, expert, 1)[0]
        centre = network[OFFSETS == 0.0][0] - expert[OFFSETS == 0.0][0]
        print(f"{track.name:12s} {track.lanes:5d} {track.width:5.1f} | {difference} | {centre:+9.3f} | {network_slope:+19.3f} | {expert_slope:+18.3f}")


if __name__ == "__main__":
    main()
