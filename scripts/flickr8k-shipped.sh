#!/bin/bash
# flickr8k-shipped.sh — score the shipped decoders (models/sat-decoder.satm,
# soft; models/sat-decoder-hard.satm, hard; models/sat-decoder-hard-scst.satm,
# its self-critical fine-tune) and the default pipeline (the last two, an
# ensemble, on sat-encode's two views of each image) on the Flickr8k test
# split with scripts/flickr8k.mk's own decode, eval and pointing rules:
# greedy, beam 3, hard-argmax and hard-sample; the report on stdout
# (results/flickr8k-shipped.md).
#
#   scripts/flickr8k-shipped.sh > results/flickr8k-shipped.md
#
# The models are copied into RUNS=build/shipped as finished runs (best.satm
# and done; the fine-tune also as the SCST run's tuned.satm, which the
# default pipeline's rules read), so make decodes them and trains nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=build/shipped out=build/flickr8k
# The runs are finished by construction and the caches are kept as they are
# (-o: make remakes neither them nor what they depend on, whatever the
# dates of ../shared's files); the captions of a model that changed are
# removed, so they are made again.
mk=(make -s -f scripts/flickr8k.mk RUNS=$runs OUT=$out BEAMS=3 -o $out/train.sat -o $out/dev.sat "$@")
for f in $out/test.sat $out/test-views2.sat $out/pointing.sat; do [ ! -e $f ] || mk+=(-o $f); done
declare -A model=([soft]=models/sat-decoder.satm [hard]=models/sat-decoder-hard.satm
                  [scst]=models/sat-decoder-hard-scst.satm)
declare -A kind=([soft]=Soft-Attention [hard]=Hard-Attention [scst]="Hard-Attention + SCST")
for k in soft hard scst; do
    mk+=(-o $runs/$k/done)
    cmp -s ${model[$k]} $runs/$k/best.satm && [ -e $runs/$k/done ] && continue
    mkdir -p $runs/$k
    cp ${model[$k]} $runs/$k/best.satm
    [ $k != scst ] || cp ${model[$k]} $runs/$k/tuned.satm
    touch $runs/$k/done
    rm -f $out/captions/$k-* $out/pointing/$k-*
    [ $k = soft ] || rm -f $out/captions/default-*
done
"${mk[@]}" decode >&2
rows=()
for k in soft hard scst; do
    for m in greedy beam3 hard-argmax hard-sample; do
        label="${kind[$k]}, shipped (${model[$k]}), ${m/beam3/beam 3}"
        rows+=("$label=$out/captions/$k-$m.eval" --pointing "$label=$out/pointing/$k-$m.point")
    done
done
declare -A program=([greedy]=sat-decode [beam3]="sat-beam -k 3")
for m in greedy beam3; do
    rows+=("The default pipeline: sat-encode, then ${program[$m]} (hard + SCST, both views)=$out/captions/default-$m.eval")
done
scripts/report.sh --title "The shipped decoders on the Flickr8k test split" --paper flickr8k \
    --command "scripts/flickr8k-shipped.sh > results/flickr8k-shipped.md" "${rows[@]}"
