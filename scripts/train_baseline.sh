#!/usr/bin/env bash
# Rebuild models/pilotnet-baseline from scratch on a CPU machine (about
# 30 minutes on 2 cores; see models/README.md for the measured times).
#
#   bash scripts/train_baseline.sh [OUT_DIR]
#
# Data comes only from tracks/train (training) and tracks/val (validation);
# tracks/holdout is used for nothing but the closing evaluation.
set -euo pipefail
out="${1:-models/pilotnet-baseline}"
data="${DATA_DIR:-recordings}"

time drivesim generate --tracks tracks/train --frames 30000 --seed 1 --randomize full --noise 0.1 --out "$data/baseline-train"
time drivesim generate --tracks tracks/val --frames 3000 --seed 2 --randomize full --noise 0.1 --out "$data/baseline-val"
time drivesim train --data "$data/baseline-train" --val "$data/baseline-val" --model pilotnet --epochs 6 --batch 64 --seed 0 --out "$out"
time drivesim eval --model "$out" --tracks tracks/holdout --laps 2 --randomize light --report "$out/eval-holdout"
