#!/usr/bin/env bash
# Rebuild models/pilotnet-baseline from scratch on a CPU machine (about
# 35 minutes on 2 cores; see models/README.md for the measured times).
#
#   bash scripts/train_baseline.sh [OUT_DIR]
#
# Training data comes from 80 freshly generated random tracks (one per shard
# of 500 frames) with PilotNet's three cameras; validation from tracks/val.
# tracks/holdout is used for nothing but the closing evaluation.
set -euo pipefail
out="${1:-models/pilotnet-baseline}"
data="${DATA_DIR:-recordings}"

time drivesim generate --tracks random --frames 40000 --shard-frames 500 --cameras center,left,right --seed 11 --randomize full --noise 0.1 --out "$data/random3-train"
time drivesim generate --tracks tracks/val --frames 3000 --seed 2 --randomize full --noise 0.1 --out "$data/val-v2"
time drivesim train --data "$data/random3-train" --val "$data/val-v2" --model pilotnet --cameras center,left,right --epochs 3 --batch 64 --seed 0 --out "$out"
time drivesim eval --model "$out" --tracks tracks/holdout --laps 2 --randomize light --report "$out/eval-holdout"
