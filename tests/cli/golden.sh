#!/bin/bash
# The golden outputs (netpbm's style): each tests/golden/NAME.test is a
# command line, run by bash in tests/data with the programs on PATH, one BLAS
# thread and the C locale; its stdout must be NAME.ok byte for byte.  Every
# output here is exact (token lists, counts, scores of text, summaries of
# committed records), none a float computed by BLAS.  After a deliberate
# change, SAT_GOLDEN_UPDATE=1 rewrites the .ok files; review their diff.
. "$(dirname "$0")/lib.sh"
G=$(cd "$(dirname "$0")/../golden" && pwd)
export OPENBLAS_NUM_THREADS=1 LC_ALL=C

golden() {
    local name=$1
    (cd "$G/../data" && bash "$G/$name.test") > "$T/$name.out" || { cat "$T/$name.out"; return 1; }
    [ -z "${SAT_GOLDEN_UPDATE:-}" ] || cp "$T/$name.out" "$G/$name.ok"
    diff -u "$G/$name.ok" "$T/$name.out"
}
for t in "$G"/*.test; do
    name=$(basename "$t" .test)
    check "golden $name: $(head -1 "$t")" golden "$name"
done
