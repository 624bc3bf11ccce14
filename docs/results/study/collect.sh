#!/usr/bin/env bash
# Copies the results.json of every finished run of the study (status completed or diverged) from runs/study into
# this folder, keeping the grid/run layout; checkpoints stay behind.
cd "$(dirname "$0")/../../.."
for f in runs/study/*/*/results.json; do
  [ -f "$f" ] || continue
  if grep -qE '"status": "(completed|diverged)"' "$f"; then
    rel=${f#runs/study/}
    mkdir -p "docs/results/study/$(dirname "$rel")"
    cp "$f" "docs/results/study/$rel"
  fi
done
