#!/bin/bash
# scripts/bench.sh — `make bench`: speed figures as medians, with the ratio to
# the anchor named by the issue, measured in the same run.
# Environment (set by the Makefile): SAT_BIN, SAT_BENCH_BIN, SAT_SHARED, SAT_MODEL_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$SAT_BIN:$PATH"
model=$SAT_MODEL_DIR/mobilenet_v2_1.0_224_quant.satm
flickr=$SAT_SHARED/data/flickr8k/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "== CNN forward (MobileNetV2, 224x224), one thread"
"$SAT_BENCH_BIN/bench_cnn" "$model" | tee "$tmp/cnn.txt"
ours=$(awk '/^stride 16:/ { print $3 }' "$tmp/cnn.txt")

echo "== anchor: PyTorch, the same stride-16 network, one thread"
if anchor=$(scripts/bench_torch.py 2>"$tmp/torch.err"); then
    echo "$anchor"
    theirs=$(awk '/^stride 16:/ { print $3 }' <<<"$anchor")
    if [ -n "$theirs" ]; then
        awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio sat/PyTorch (stride 16, 1 thread): %.2f (%.2f ms vs %.2f ms; target <= 8 ms)\n", a / b, a, b }'
    fi
else
    echo "PyTorch anchor not run: $(tail -1 "$tmp/torch.err")"
fi

echo "== end to end: decode + resize + CNN + write, 200 Flickr8k images, -j 2"
ls "$flickr"/*.jpg | head -200 > "$tmp/list"
for run in 1 2 3; do
    t0=$(date +%s.%N)
    sat-encode -q -j 2 -T "$tmp/list" > /dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { print 200 / (b - a) }'
done | median | awk '{ printf "end to end, 2 cores: %.1f images/s (median of 3 runs)\n", $1 }'

for b in "$SAT_BENCH_BIN"/bench_*; do
    case "$(basename "$b")" in bench_cnn) continue ;; esac
    echo "== $(basename "$b")"
    "$b"
done
