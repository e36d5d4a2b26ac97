#!/bin/bash
# sat-train's figures for `make bench` (issue 11, item 5), called by
# scripts/bench.sh: training throughput of one process with 2 BLAS threads
# against 2 ranks of one thread each (mpirun), the bytes summed over the
# ranks per step, and the peak resident memory against the feature cache's
# size and type.  Figures on a machine busy with other work are not clean.
. "$(dirname "$0")/../cli/lib.sh"
F=$SAT_SHARED/data/flickr8k
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

head -160 "$F/Flickr_8k.trainImages.txt" > "$T/train160.txt"
head -40 "$T/train160.txt" > "$T/train40.txt"
for dtype in f16 u8; do
    for n in 40 160; do
        sed "s|^|$F/images/|" "$T/train$n.txt" | sat-encode -q -j 2 --no-flip --dtype $dtype -T - -o "$T/$dtype-$n.sat"
    done
done

# captions_per_s THREADS LAUNCHER...: one epoch of the default decoder (E=256,
# H=512, A=256, 14x14 features) on the first 160 training images (800
# captions, 13 batches: enough steps that the log's tenths of a second do not
# round the ratio), in captions per second of the epoch's own time (the log's;
# data loading not counted).
captions_per_s() {
    "${@:2}" sat-train --captions "$F/Flickr8k.token.txt" --features "$T/f16-160.sat" \
        --train "$T/train160.txt" --epochs 1 --threads "$1" -q -o "$T/m.satm" --log "$T/log" 2> "$T/err" ||
        { cat "$T/err" >&2; return 1; }
    local n
    n=$(sed -n 's/.* \([0-9]*\) training captions.*/\1/p' "$T/err")
    awk -F'\t' -v n="$n" 'NR == 2 { print n / $8 }' "$T/log"
}
mpirun2=(mpirun --allow-run-as-root --oversubscribe -x OPENBLAS_NUM_THREADS=1 -np 2)

echo "== sat-train throughput: 1 process x 1 or 2 BLAS threads against 2 ranks x 1 thread (mpirun)"
echo "   (one epoch of 160 Flickr8k images, the default decoder, batch 64; median of 3 runs)"
single=$(for run in 1 2 3; do captions_per_s 1 env OPENBLAS_NUM_THREADS=1; done | median)
one=$(for run in 1 2 3; do captions_per_s 2 env OPENBLAS_NUM_THREADS=2; done | median)
if ! command -v mpirun >/dev/null; then
    echo "1 process x 1 thread: $single captions/s; x 2 threads: $one; 2 ranks not run: no mpirun"
else
    two=$(for run in 1 2 3; do captions_per_s 1 "${mpirun2[@]}"; done | median)
    awk -v s="$single" -v a="$one" -v b="$two" 'BEGIN { printf "1 process x 1 thread: %.1f captions/s; x 2 threads: %.1f; 2 ranks x 1 thread: %.1f\nratio 2 ranks / 1 single-threaded process: %.2f (scaling efficiency %.0f%%); 2 ranks / 1 process x 2 threads: %.2f\n", s, a, b, b / s, 50 * b / s, b / a }'
    sed -n 's/^sat-train: 2 processes.*; \([0-9]*\) bytes summed over them per step (\([^)]*\)).*/summed over the ranks per step: \1 bytes (the gradients as f32 and 7 doubles), \2/p' "$T/err"
    awk -F'\t' 'NR == 2 { print $8 }' "$T/log" | paste - <(sed -n 's/.*  summing \([0-9.]*\) s.*/\1/p' "$T/err") |
        awk '{ printf "time in the sums (the sum of the gradients + wait for the slower rank + sharing the weights), last 2-rank epoch: %.2f s of %.1f s (%.0f%%)\n", $2, $1, 100 * $2 / $1 }'
    # as across machines: the gradients in an Allreduce, the weights gathered
    apart=$(for run in 1 2 3; do captions_per_s 1 "${mpirun2[@]}" -x SAT_TRAIN_SHARED_MEMORY=0; done | median)
    awk -v s="$single" -v b="$apart" 'BEGIN { printf "2 ranks x 1 thread summing in messages (SAT_TRAIN_SHARED_MEMORY=0, as across machines): %.1f captions/s, ratio %.2f\n", b, b / s }'
fi

echo "== sat-train peak resident memory against the feature cache (one epoch, a small decoder, 1 thread)"
rss_train() { # CACHE LIST (--max-vocab: the same vocabulary for both sizes, as tests/cli/caches.sh)
    sat-train --captions "$F/Flickr8k.token.txt" --features "$1" --train "$2" --embed 32 \
        --hidden 64 --att-size 32 --min-count 2 --max-vocab 200 --epochs 1 --threads 1 -q -o "$T/r.satm"
}
export -f rss_train
export F T
for dtype in f16 u8; do
    for n in 40 160; do
        kb=$(peak_rss_kb bash -c 'rss_train "$0" "$1"' "$T/$dtype-$n.sat" "$T/train$n.txt")
        echo "$dtype cache of $n images ($(($(wc -c < "$T/$dtype-$n.sat") / 1000000)) MB): peak RSS $((kb / 1024)) MB"
    done
done
