#!/usr/bin/env bash
# Rebuild models/pilotnet-baseline from scratch on a CPU machine (about
# 42 minutes on 2 cores: data 9, training 30, evaluation 4; see
# models/README.md for the measured times).
#
#   bash scripts/train_baseline.sh [OUT_DIR]      # default models/my-baseline
#
# Pass models/pilotnet-baseline to rebuild the shipped checkpoint in place.
# The recordings take about 8 GB (60,000 frames x 3 cameras) under
# $DATA_DIR (default recordings/).
#
# Training data: 60,000 frames on 600 freshly generated random tracks (one
# per shard of 100 frames, each with its own appearance), PilotNet's three
# cameras, the expert at its default 14 m/s cruise (the policy's speed).
# Validation: tracks/val. tracks/holdout is used for nothing but the closing
# evaluation. The folder names are the ones the shipped checkpoint records.
set -euo pipefail
out="${1:-models/my-baseline}"
data="${DATA_DIR:-recordings}"

time drivesim generate --tracks random --frames 60000 --shard-frames 100 --cameras center,left,right --seed 17 --randomize full --noise 0.1 --out "$data/random6k14-train"
time drivesim generate --tracks tracks/val --frames 3000 --seed 2 --randomize full --noise 0.1 --out "$data/val14"
time drivesim train --data "$data/random6k14-train" --val "$data/val14" --model pilotnet --cameras center,left,right --epochs 2 --batch 64 --seed 0 --force --out "$out"  # --force: a re-run rebuilds the model in place
time drivesim eval --model "$out" --tracks tracks/holdout --laps 2 --looks 3 --randomize light --report "$out/eval-holdout"
