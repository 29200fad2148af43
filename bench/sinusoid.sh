#!/usr/bin/env bash
# Few-shot sinusoid regression at equal budgets: every meta-learning method
# (and the argmin methods on the proximal variant) spends the same number of
# gradients plus Hessian-vector products; the held-out post-adaptation MSE
# (1000 tasks, 95% interval) is logged along the way. Writes one CSV per run
# to bench/results/sinusoid-*.csv, a table on stdout and
# bench/results/sinusoid.png (gnuplot).
#
#   bench/sinusoid.sh [BUDGET] [R] [LABEL ...]   (defaults: 1500000, 5, every run)
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-1500000}
r=${2:-5}
only=("${@:3}")
exe=${BOME_EXE:-build/problems/bome}
out=bench/results
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

# label | flags; the argmin methods take one task a step on the proximal variant
runs=(
  "fo-blo|--method fo-blo"
  "ufo-blo-q0.1|--method ufo-blo --ufo-q 0.1"
  "ufo-blo-q0.2|--method ufo-blo --ufo-q 0.2"
  "ufo-blo-adaptive|--method ufo-blo --ufo-q 0.1 --ufo-adaptive 1"
  "exact|--method exact"
  "bome-beta1|--method bome --beta 1 --batch 1 --phi value --lr-inner 0"
  "aid-cg-beta1|--method aid-cg --beta 1 --batch 1"
)
printf '| run | outer steps | gradients | HVPs | held-out MSE (95%%) | seconds |\n|---|---|---|---|---|---|\n'
for run in "${runs[@]}"; do
    label=${run%%|*}
    flags=${run#*|}
    if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $label " ]]; then
        continue
    fi
    csv="$out/sinusoid-r$r-$label.csv"
    # shellcheck disable=SC2086
    "$exe" run sinusoid $flags --T "$r" --steps 1000000 --budget "$budget" --eval-every 250 \
        --csv "$csv" --json --quiet > "$out/sinusoid-r$r-$label.json" 2> "$out/sinusoid-r$r-$label.log" || true
    # keep the evaluated rows: the held-out curve, small enough to commit
    if [ -s "$csv" ]; then awk -F, 'NR == 1 || $12 != ""' "$csv" > "$csv.tmp" && mv "$csv.tmp" "$csv"; fi
    /usr/bin/python3 - "$out/sinusoid-r$r-$label.json" "$label" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
score = "fails: " + d["status"][:70] if d["status"] != "ok" else f"{d['test_mse']:.3f} ± {d['test_mse_ci95']:.3f}"
print(f"| {sys.argv[2]} | {d['steps']} | {int(d['grad_evals'])} | {int(d['hvp_evals'])} | {score} | {d['seconds']:.1f} |")
PY
done
if command -v gnuplot >/dev/null 2>&1; then
    plot=""
    for run in "${runs[@]}"; do
        label=${run%%|*}
        [ -s "$out/sinusoid-r$r-$label.csv" ] || continue
        plot+="'$out/sinusoid-r$r-$label.csv' using (\$10+\$11):(\$12) with linespoints title '$label', "
    done
    gnuplot <<GP
set terminal png size 900,600
set output '$out/sinusoid-r$r.png'
set datafile separator ','
set key top right
set xlabel 'gradients + Hessian-vector products spent'
set ylabel 'held-out MSE after $r inner steps (1000 tasks)'
set logscale y
set yrange [0.1:10]   # fo-blo's divergent evaluations go off the top
plot ${plot%, }
GP
    echo "plot: $out/sinusoid-r$r.png"
fi
