#!/bin/sh
# bench/RESULTS.md: `bome run hyperclean` on Fashion-MNIST as 2 processes x
# 1 thread (mpirun -np 2) against 1 process x 2 threads, runs interleaved
# (the order alternating), each run's median seconds per outer step (the
# CSV's solver seconds, steps 2 to STEPS), then the median over the runs;
# then what the processes exchange per step, from the JSON's counts of a
# 2-step and a 6-step run. OUT holds the warm start's cache (made once).
#   bench/hyperclean_mpi.sh [REPS] [STEPS]
set -eu
build=${BUILD:-build}
reps=${1:-3}
steps=${2:-6}
out=${OUT:-out}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
bome=$build/cli/bome
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run="run hyperclean --warm-steps 300 --out-dir $out --no-plot --quiet"
procs() { OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 "$bome" $run --threads 1 "$@"; }
threads() { OPENBLAS_NUM_THREADS=2 "$bome" $run --threads 2 "$@"; }
# the median of the per-step seconds of a CSV (cumulative seconds, column 11)
per_step() {
    awk -F, 'NR > 2 { if (NR > 3) print $11 - prev; prev = $11 }' "$1" | sort -g |
        awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
median() { sort -g | awk '{v[NR] = $1} END {printf "%.3f (min %.3f, max %.3f, %d runs)", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR], NR}'; }
echo "bench/hyperclean_mpi.sh: $reps runs each of $steps steps, load average $(cut -d' ' -f1-3 /proc/loadavg)"
threads --steps 1 --eval-every 1 --csv "$tmp/warm.csv" # the cache, if it is not there yet
i=0
while [ $i -lt "$reps" ]; do
    if [ $((i % 2)) -eq 0 ]; then
        procs --steps "$steps" --eval-every 1 --csv "$tmp/p$i.csv"; threads --steps "$steps" --eval-every 1 --csv "$tmp/t$i.csv"
    else
        threads --steps "$steps" --eval-every 1 --csv "$tmp/t$i.csv"; procs --steps "$steps" --eval-every 1 --csv "$tmp/p$i.csv"
    fi
    echo "run $i: 2 x 1 $(per_step "$tmp/p$i.csv") s/step, 1 x 2 $(per_step "$tmp/t$i.csv") s/step, load $(cut -d' ' -f1 /proc/loadavg)"
    i=$((i + 1))
done
echo "2 processes x 1 thread: $(for f in "$tmp"/p*.csv; do per_step "$f"; done | median) s/step"
echo "1 process x 2 threads:  $(for f in "$tmp"/t*.csv; do per_step "$f"; done | median) s/step"
for n in 2 6; do
    procs --steps $n --eval-every 100 --json > "$tmp/s$n.json"
done
s2=$(grep -o '"sums": [0-9]*' "$tmp/s2.json" | cut -d' ' -f2); s6=$(grep -o '"sums": [0-9]*' "$tmp/s6.json" | cut -d' ' -f2)
v2=$(grep -o '"summed_values": [0-9.e+]*' "$tmp/s2.json" | cut -d' ' -f2); v6=$(grep -o '"summed_values": [0-9.e+]*' "$tmp/s6.json" | cut -d' ' -f2)
awk -v s2="$s2" -v s6="$s6" -v v2="$v2" -v v6="$v6" 'BEGIN {
    printf "per outer step: %.2f sums, %.0f doubles (%.1f KB)\n", (s6 - s2) / 4, (v6 - v2) / 4, (v6 - v2) / 4 * 8 / 1000 }'
echo "bench/hyperclean_mpi.sh: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
