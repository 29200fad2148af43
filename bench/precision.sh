#!/usr/bin/env bash
# float32 against float64, and both against PyTorch's two dtypes: seconds per
# BOME outer step of hyper-cleaning (50 000 x 784, T = 10) through opt
# (bench_precision, bench_precision_f32) and in PyTorch (peer_torch.py), one
# process each, interleaved over ROUNDS rounds, at 1 and 2 threads; then the
# 784-300-10 network in both precisions (MLP_ROWS rows). Prints every run's
# line and the medians over the rounds.
#
#   bench/precision.sh [BUILD_DIR]    (default build; ROUNDS=3 MLP_ROWS=10000 THREADS="1 2")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${ROUNDS:-3}
mlp_rows=${MLP_ROWS:-10000}
py=/usr/bin/python3 # Debian's interpreter: python3-torch belongs to it
log=$(mktemp)
trap 'rm -f "$log"' EXIT
grep -m1 'model name' /proc/cpuinfo
for threads in ${THREADS:-1 2}; do
    export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
    for r in $(seq "$rounds"); do
        for b in bench_precision bench_precision_f32; do
            "$build/bench/$b" --reps 5 | sed "s/^/linear-bome /" | tee -a "$log"
        done
        if "$py" -c 'import torch' 2>/dev/null; then
            "$py" bench/peer_torch.py --only hyperclean --threads "$threads" --reps 10 |
                awk -v t="$threads" '$1 == t && ($2 == "float64" || $2 == "float32") {
                    print "linear-torch precision " $2 " threads " t " step_s " $3 }' | tee -a "$log"
        fi
    done
    for r in $(seq "$rounds"); do
        for b in bench_precision bench_precision_f32; do
            "$build/bench/$b" --reps 3 --mlp 300 --rows "$mlp_rows" | sed "s/^/mlp-bome /" | tee -a "$log"
        done
        if "$py" -c 'import torch' 2>/dev/null; then
            "$py" bench/peer_torch.py --only hyperclean --threads "$threads" --reps 10 --warmup 1 --mlp 300 \
                --rows "$mlp_rows" |
                awk -v t="$threads" '$1 == t && ($2 == "float64" || $2 == "float32") {
                    print "mlp-torch precision " $2 " threads " t " step_s " $3 }' | tee -a "$log"
        fi
    done
done
echo
echo "medians over $rounds rounds (seconds per outer step; ratio: step / bandwidth floor)"
# mawk has no sort: one "key value" line per run, sorted, then the middle one
median() { # FIELD: the value after this field name
    awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) print $1 " " $3 " threads=" $5, $(i + 1) }' "$log" |
        sort -k1,3 -k4g | awk '{ k = $1 " " $2 " " $3; v[k, ++n[k]] = $4 }
            END { for (k in n) print k, v[k, int((n[k] + 1) / 2)] }' | sort
}
echo "step seconds:"
median step_s
echo "step / floor:"
median ratio | grep -v nan || true
