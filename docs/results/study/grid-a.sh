#!/usr/bin/env bash
# The classification study's grid A (Fashion-MNIST), one torch thread. Arguments name the sub-grids to run, in order
# (default: A1 A2 A3), so two processes can share the work, e.g. `grid-a.sh A1 A2` beside `grid-a.sh A3`. Each
# compare keeps finished runs and resumes stopped ones, so running this again continues where it stopped.
cd "$(dirname "$0")/../../.."
# A published copy of the command, so rebuilding the repository does not touch the running grid:
#   dotnet publish src/Uan.Cli -c Release -o "${UAN_BIN:?set UAN_BIN to a folder}"
uan="dotnet ${UAN_BIN:?set UAN_BIN to the folder of a published Uan.Cli}/Uan.Cli.dll --data-dir data"
common="--dataset fashion-mnist --subset 20000 --val-fraction 0.1 --epochs 8 --probe --threads 1 --plain"
BN="BN=bn:eps=1e-3,momentum=0.1"
for part in "${@:-A1 A2 A3}"; do
  for p in $part; do
    echo "$p start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    case $p in
      A1) $uan compare $common --batch-size 64 --lr 0.001 --seed 1 2 3 --val-every 94 --norm "$BN" --norm UAN=uan:k=3 \
            --norm GN=gn:groups=32 --norm MN=mn:k=3 --norm UAN-BatchStats=uan:k=3,mode=batchstats \
            --norm UAN-Compat=uan:k=3,mode=compat --out runs/study/fmnist-b64 || exit $? ;;
      A2) $uan compare $common --batch-size 64 --lr 0.005 --seed 1 2 3 --val-every 94 --norm "$BN" --norm UAN=uan:k=3 \
            --out runs/study/fmnist-b64 || exit $? ;;
      A3) $uan compare $common --batch-size 8 --lr 0.001 --seed 1 2 3 --val-every 750 --norm "$BN" --norm UAN=uan:k=3 \
            --norm GN=gn:groups=32 --out runs/study/fmnist-b8 || exit $? ;;
      *) echo "unknown sub-grid '$p' (A1, A2 or A3)" >&2; exit 2 ;;
    esac
  done
done
echo "done $(date -u +%FT%TZ)"
