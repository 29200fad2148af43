#!/usr/bin/env bash
# Every method of opt's table on hyper-cleaning from the same warm start:
# test accuracy, cleaning F1 and seconds per outer step after STEPS outer
# steps (default 500), each with the released grid's settings for it (the
# CLI's defaults). CSVs and JSON in bench/results/hyperclean-STEPS-METHOD.*;
# a markdown table on stdout. The meta-learning estimators (fo-blo, ufo-blo,
# exact) are left out: hyper-cleaning's theta does not start at v, so their
# v would not move.
#
#   bench/hyperclean_methods.sh [STEPS] [METHOD ...]
#   HC_FLAGS="--warm-steps 300" bench/hyperclean_methods.sh   (more flags for every run)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-500}
shift || true
exe=${BOME_EXE:-build/cli/bome}
out=bench/results
mkdir -p "$out"
threads=${OPENBLAS_NUM_THREADS:-2}
export OPENBLAS_NUM_THREADS=$threads
if [ $# -gt 0 ]; then
    methods=("$@")
else
    mapfile -t methods < <("$exe" methods | awk '{print $1}' | grep -v -x -e fo-blo -e ufo-blo -e exact)
fi
printf '| method | test accuracy | F1 | s/step (CLI total / steps) |\n|---|---|---|---|\n'
for m in "${methods[@]}"; do
    json="$out/hyperclean-$steps-$m.json"
    # shellcheck disable=SC2086
    "$exe" run hyperclean --method "$m" --steps "$steps" --threads "$threads" --out-dir out --no-plot --quiet ${HC_FLAGS:-} \
        --csv "$out/hyperclean-$steps-$m.csv" --json > "$json" 2> "$out/hyperclean-$steps-$m.log" || true
    /usr/bin/python3 - "$json" "$m" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(f"| {sys.argv[2]} | {d['test_accuracy']:.4f} | {d['f1']:.3f} | {d['seconds'] / max(d['steps'], 1):.3f} |")
except Exception as e:
    print(f"| {sys.argv[2]} | failed: see {sys.argv[1][:-5]}.log | | |")
PY
done
