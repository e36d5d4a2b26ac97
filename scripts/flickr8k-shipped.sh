#!/bin/bash
# flickr8k-shipped.sh — score the shipped decoders (models/sat-decoder.satm,
# soft; models/sat-decoder-hard.satm, hard) on the Flickr8k test split with
# scripts/flickr8k.mk's own decode, eval and pointing rules: greedy, beam 3,
# hard-argmax and hard-sample; the report on stdout (results/flickr8k-shipped.md).
#
#   scripts/flickr8k-shipped.sh > results/flickr8k-shipped.md
#
# The models are copied into RUNS=build/shipped as finished runs (best.satm
# and done), so make decodes them and trains nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=build/shipped out=build/flickr8k
mk=(make -s -f scripts/flickr8k.mk RUNS=$runs OUT=$out BEAMS=3 "$@")
model_of() { if [ "$1" = soft ]; then echo models/sat-decoder.satm; else echo "models/sat-decoder-$1.satm"; fi; }
"${mk[@]}" features >&2
for k in soft hard; do
    model=$(model_of $k)
    mkdir -p $runs/$k
    # a new model is a finished run newer than the features; the same one is left as it is
    cmp -s $model $runs/$k/best.satm && [ -e $runs/$k/done ] && continue
    cp $model $runs/$k/best.satm
    touch $runs/$k/done
done
"${mk[@]}" decode >&2
rows=()
for k in soft hard; do
    model=$(model_of $k)
    for m in greedy beam3 hard-argmax hard-sample; do
        label="${k^}-Attention, shipped ($model), ${m/beam3/beam 3}"
        rows+=("$label=$out/captions/$k-$m.eval" --pointing "$label=$out/pointing/$k-$m.point")
    done
done
scripts/report.sh --title "The shipped decoders on the Flickr8k test split" --paper flickr8k \
    --command "scripts/flickr8k-shipped.sh > results/flickr8k-shipped.md" "${rows[@]}"
