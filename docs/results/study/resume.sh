#!/usr/bin/env bash
# Makes a fresh checkout ready to continue the study: a published copy of the command (in UAN_BIN), the datasets
# grid A needs (grid-b.sh installs its own), and every finished run's results.json copied from here into
# runs/study, so the grid scripts keep those runs and train only the rest. Runs that were in progress in another
# checkout are not here (only finished runs are committed) and start again. Then start the grids, e.g.
#   UAN_BIN=... setsid nohup nice -n 15 bash docs/results/study/grid-a.sh A1 A2 >> runs/study/grid-a.log 2>&1 &
#   UAN_BIN=... setsid nohup nice -n 15 bash docs/results/study/grid-b.sh >> runs/study/grid-b.log 2>&1 &
cd "$(dirname "$0")/../../.."
: "${UAN_BIN:?set UAN_BIN to the folder for the published Uan.Cli}"
[ -f "$UAN_BIN/Uan.Cli.dll" ] || dotnet publish src/Uan.Cli -c Release -o "$UAN_BIN" || exit $?
uan="dotnet $UAN_BIN/Uan.Cli.dll --data-dir data"
$uan data fetch fashion-mnist --quiet || exit $?
kept=0
for grid in docs/results/study/*/; do
  for run in "$grid"*/; do
    [ -f "$run/results.json" ] || continue
    to="runs/study/$(basename "$grid")/$(basename "$run")"
    mkdir -p "$to"
    # -n: a run folder that already has results (this checkout's own run) is left as it is.
    cp -n "$run/results.json" "$to/" && kept=$((kept + 1))
  done
done
echo "runs/study holds the $kept finished runs of docs/results/study"
