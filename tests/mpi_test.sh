#!/bin/sh
# Runs tests/mpi_run.c under mpirun for Meson:
#   mpi_test.sh MPIRUN NP PROGRAM MODE
# MODE check must pass; exit and kill (rank 1 leaves at step 5) must make
# the whole job fail within DEAD_SECONDS, before rank 0 finishes.
set -u
mpirun=$1 np=$2 prog=$3 mode=$4
# As root (containers, CI) Open MPI wants both variables; shared memory
# without cross-memory attach, which containers often forbid.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# One BLAS thread per rank; Open MPI leaks by design, so no leak report.
export OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0
DEAD_SECONDS=30

if [ "$mode" = check ]; then
    exec timeout 300 "$mpirun" --oversubscribe -np "$np" "$prog" check
fi
out=$(mktemp)
start=$(date +%s)
timeout 120 "$mpirun" --oversubscribe -np "$np" "$prog" "$mode" >"$out" 2>&1
status=$?
took=$(( $(date +%s) - start ))
cat "$out"
if grep -q "rank 0 finished: 0" "$out"; then
    echo "mpi_test: rank 0 finished its run although rank 1 had left"
    rm -f "$out"; exit 1
fi
rm -f "$out"
if [ $status -eq 0 ] || [ $status -eq 124 ]; then
    echo "mpi_test: the job with a dead rank ended with status $status (0: not failed; 124: hung)"
    exit 1
fi
if [ $took -gt $DEAD_SECONDS ]; then
    echo "mpi_test: the job took $took s to fail (limit $DEAD_SECONDS s)"
    exit 1
fi
echo "mpi_test: a dead rank ($mode) ended the job in $took s with status $status"
