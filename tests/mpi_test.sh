#!/bin/sh
# Runs tests/mpi_run.c under mpirun for Meson:
#   mpi_test.sh MPIRUN NP PROGRAM MODE
# MODE check must pass; exit and kill (rank 1 leaves at step 5) must make
# the whole job fail within DEAD_SECONDS, before rank 0 finishes.
#   mpi_test.sh MPIRUN NP BOME hyperclean
# `mpirun -np NP bome run hyperclean` on small synthetic IDX data: after 20
# steps the gathered --save-v and the logged figures are the 1-process
# run's to 1e-12 relative; run again on the cache rank 0 wrote, the same
# bits; a problem that does not split its data is refused.
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
if [ "$mode" = hyperclean ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # 600 training and 200 test images of 8 x 8 pixels, labels that
    # follow the pixels, so that there is something to learn
    awk -v d="$tmp" 'function be(x) { return sprintf("%c%c%c%c", int(x / 16777216) % 256, int(x / 65536) % 256,
                                                    int(x / 256) % 256, x % 256) }
        function set(name, n,   i, j, s, p, lab) {
            printf "%s%s%s%s", be(2051), be(n), be(8), be(8) > (d "/" name "-images-idx3-ubyte")
            printf "%s%s", be(2049), be(n) > (d "/" name "-labels-idx1-ubyte")
            for (i = 0; i < n; i++) {
                s = 0
                for (j = 0; j < 64; j++) {
                    p = (i * 37 + j * 11 + int(i * j / 7)) % 251
                    s += p
                    printf "%c", p > (d "/" name "-images-idx3-ubyte")
                }
                printf "%c", int(s / 64) % 10 > (d "/" name "-labels-idx1-ubyte")
            }
        }
        BEGIN { set("train", 600); set("t10k", 200) }' </dev/null
    [ "$(wc -c < "$tmp/train-images-idx3-ubyte")" -eq $((16 + 600 * 64)) ] || { echo "mpi_test: awk wrote other bytes (not LC_ALL=C?)"; exit 1; }
    run="run hyperclean --data-dir $tmp --sizes 400,100,100,200 --warm-steps 10 --steps 20 --eval-every 5 --no-plot --threads 1 --json"
    "$prog" $run --out-dir "$tmp/one" --save-v "$tmp/one.csv" --no-cache > "$tmp/one.json" || exit 1
    timeout 300 "$mpirun" --oversubscribe -np "$np" "$prog" $run --out-dir "$tmp/many" --save-v "$tmp/many.csv" \
        --no-cache > "$tmp/many.json" || { echo "mpi_test: the $np-process run failed"; exit 1; }
    timeout 300 "$mpirun" --oversubscribe -np "$np" "$prog" ${run% --json} --out-dir "$tmp/many" --save-v "$tmp/again.csv" \
        > /dev/null 2> "$tmp/again.err" || { echo "mpi_test: the run on the cache failed"; exit 1; }
    grep -q "loaded from cache" "$tmp/again.err" || { echo "mpi_test: the second run did not use the cache"; exit 1; }
    cmp "$tmp/many.csv" "$tmp/again.csv" || { echo "mpi_test: the run on the cache left other weights"; exit 1; }
    # every number of the two runs' files: --save-v, the logged rows but
    # their seconds, the JSON's f
    tr ',' '\n' < "$tmp/one.csv" > "$tmp/a"; tr ',' '\n' < "$tmp/many.csv" > "$tmp/b"
    cut -d, -f1-8 "$tmp/one/hyperclean.csv" | tr ',' '\n' >> "$tmp/a"
    cut -d, -f1-8 "$tmp/many/hyperclean.csv" | tr ',' '\n' >> "$tmp/b"
    grep -o '"f": [^,]*' "$tmp/one.json" | cut -d' ' -f2 >> "$tmp/a"
    grep -o '"f": [^,]*' "$tmp/many.json" | cut -d' ' -f2 >> "$tmp/b"
    paste -d' ' "$tmp/a" "$tmp/b" | awk '
        function abs(x) { return x < 0 ? -x : x }
        { n++ }
        $1 == $2 { next }
        { d = abs($1 - $2); m = abs($1) > abs($2) ? abs($1) : abs($2)
          if (d > 1e-12 * m) { bad++; if (bad < 5) print "differs: " $1 " " $2 } }
        END { if (n < 1600 || bad) { print "mpi_test: " bad + 0 " of " n " values differ by more than 1e-12"; exit 1 }
              print "mpi_test: hyperclean on " '"$np"' " processes: " n " values within 1e-12 of one process" }' || exit 1
    # the problems whose data is not split are refused, with a reason
    "$mpirun" --oversubscribe -np "$np" "$prog" run coreset --steps 5 > "$tmp/out" 2>&1
    status=$?
    if [ $status -eq 0 ] || ! grep -q "under mpirun only" "$tmp/out"; then
        echo "mpi_test: coreset under mpirun: status $status"; cat "$tmp/out"; exit 1
    fi
    exit 0
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
