#!/bin/sh
# bench/RESULTS.md's data-parallel section: on this machine's cores, P
# processes x 1 thread against 1 process x P threads, and 1 x 1 for the
# compute of the model, runs interleaved (the order rotating), each run's
# median seconds per step, then the median over the runs; then
# MPI_Allreduce's latency and bandwidth between the processes. BUILD
# (default build) must have the MPI component.
#   bench/mpi.sh [REPS] [bench_mpi options...]
set -eu
build=${BUILD:-build}
reps=${1:-5}
[ $# -gt 0 ] && shift
P=${P:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
bin=$build/bench/bench_mpi
procs() { OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np "$P" "$bin" --threads 1 "$@"; }
threads() { OPENBLAS_NUM_THREADS=$P "$bin" --threads "$P" "$@"; }
single() { OPENBLAS_NUM_THREADS=1 "$bin" --threads 1 "$@"; }
out=$(mktemp)
echo "bench/mpi.sh: $reps runs each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ $i -lt "$reps" ]; do
    case $((i % 3)) in
    0) procs "$@" | tee -a "$out"; threads "$@" | tee -a "$out"; single "$@" | tee -a "$out" ;;
    1) threads "$@" | tee -a "$out"; single "$@" | tee -a "$out"; procs "$@" | tee -a "$out" ;;
    *) single "$@" | tee -a "$out"; procs "$@" | tee -a "$out"; threads "$@" | tee -a "$out" ;;
    esac
    i=$((i + 1))
done
for conf in "$P ranks x 1 threads" "1 ranks x $P threads" "1 ranks x 1 threads"; do
    grep "$conf" "$out" | sed 's/.*: \([0-9.]*\) s\/step.*/\1/' | sort -g |
        awk -v c="$conf" '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
            printf "bench/mpi.sh: %s: median %.4f s/step over %d runs (min %.4f, max %.4f)\n", c, m, NR, v[1], v[NR]}'
done
rm -f "$out"
OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np "$P" "$bin" --allreduce
echo "bench/mpi.sh: load average after $(cut -d' ' -f1-3 /proc/loadavg)"
