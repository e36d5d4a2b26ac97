#!/bin/bash
# experiment.sh — scripts/flickr8k.mk end to end on a sliver of Flickr8k:
# the first 24 train, 8 dev and 12 test images (encoded afresh), three tiny
# models (soft, then hard started from it, then self-critical from hard and
# averaged with it; two epochs each), greedy, beam and
# hard-attention decoding of test, the pointing check on the boxed images,
# the dev tuning, and the reports (results/flickr8k.md, -tuning.md, the curve).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# a make of its own: nothing from a calling make (its MAKEFLAGS) comes in
mk=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" -f scripts/flickr8k.mk SAT_SHARED="$SAT_SHARED" BIN="$SAT_BIN" OUT="$T/out"
    RESULTS="$T/results" TRAIN_IMAGES=24 DEV_IMAGES=8 TEST_IMAGES=12 EPOCHS=2 THREADS=1
    TRAIN_OPTS="--embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2" BEAMS="1 3" TUNE_NORMS="0 1")
MD=$T/results/flickr8k.md

check "make train-soft train-hard decode results tune-beam" \
    "${mk[@]}" train-soft train-hard decode results tune-beam

# table rows "| label | b1 | b2 | b3 | b4 | meteor | rouge | cider | entropy | pointing | centre |"
rows() { grep -E "^\| $1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [—0-9.]+ \| [—0-9.]+ \| [—0-9.]+ \| [—0-9.]+ \| [—0-9]+ \| [—0-9]+ \|$" "$2"; }
table() {
    is_equal "$(rows 'Soft-Attention \(Xu et al. 2015\)' "$MD" | cut -d'|' -f3-7)" " 67 | 44.8 | 29.9 | 19.5 | 18.93 " &&
        is_equal "$(rows '(Soft|Hard)-Attention \(ours\), (greedy|beam [13]|hard-argmax|hard-sample)' "$MD" | wc -l)" 10 &&
        grep -q '^Scores ×100 on 12 images' "$MD"
}
check "results: the paper's rows and ten of ours, on 12 test images" table
scst_rows() {
    is_equal "$(rows 'Hard-Attention \+ SCST, averaged \(ours\), (greedy|beam [13]|hard-argmax|hard-sample)' "$MD" | wc -l)" 5
}
check "results: five rows of the self-critical, averaged model" scst_rows

# soft readings have an entropy below log 196 (14x14), above 0;
# one-location readings have none; every row of ours has pointing numbers
attention_columns() {
    is_equal "$(rows '(Soft|Hard)-Attention \(ours\), [a-z0-9 -]+' "$MD" | wc -l)" 10 &&
    rows '(Soft|Hard)-Attention \(ours\), (greedy|beam [13])' "$MD" |
        awk -F'|' '{ e = $10 + 0; if (!(e > 0 && e <= 5.2784)) { print "entropy " $10; exit 1 } }' &&
    rows '(Soft|Hard)-Attention \(ours\), hard-[a-z]+' "$MD" | awk -F'|' '$10 !~ /—/ { exit 1 }' &&
    # each row's pointing is its own sat-eval --boxes's (— when no word named a boxed object)
    local k m p
    for k in soft hard; do
        for m in greedy hard-sample; do
            p=$(awk '{ v[$1] = $2 } END { if (v["pointing-words"] == 0) print "—|—"
                     else printf "%.0f|%.0f\n", v["pointing"], v["pointing-centre"] }' "$T/out/pointing/$k-$m.point")
            is_equal "$(rows "${k^}-Attention \\(ours\\), $m" "$MD" | cut -d'|' -f11,12 | tr -d ' ')" "$p" || return 1
        done
    done
}
check "results: the attention's entropy (soft readings) and the pointing check of every row" attention_columns

hard_from_soft() {
    grep -q "initial weights from $T/out/soft/best.satm" "$T/out/hard/stderr.log"
}
check "the hard run starts from the soft model (HARD_INIT=soft)" hard_from_soft

scst_averaged() {
    grep -q "initial weights from $T/out/hard/best.satm" "$T/out/scst/stderr.log" &&
    grep -q "self-critical" "$T/out/scst/stderr.log" &&
    sat-import --average -o "$T/avg.satm" "$T/out/hard/best.satm" "$T/out/scst/tuned.satm" 2>/dev/null &&
    is_equal "$(sat-dump "$T/out/scst/best.satm" | jq -r .weights_sha256)" "$(sat-dump "$T/avg.satm" | jq -r .weights_sha256)"
}
check "the self-critical run starts from hard, and its best.satm is the mean of the two" scst_averaged

# the row shows sat-eval's scores x100: BLEU-4, METEOR and CIDEr-D of the hard model, beam 3
transcribed() {
    local e=$T/out/captions/hard-beam3.eval row
    row=$(rows 'Hard-Attention \(ours\), beam 3' "$MD")
    is_equal "$(cut -d'|' -f6,7,9 <<<"$row" | tr -d ' ')" \
        "$(awk '$1 == "BLEU-4" { b = $2 } $1 == "METEOR" { m = $2 } $1 == "CIDEr-D" { c = $2 }
                END { printf "%.1f|%.2f|%.1f", b, m, c }' "$e")"
}
check "results: the scores are sat-eval's, x100" transcribed

beam1_is_greedy() {
    local k
    for k in Soft Hard; do
        is_equal "$(rows "$k-Attention \(ours\), beam 1" "$MD" | cut -d'|' -f3-)" \
                 "$(rows "$k-Attention \(ours\), greedy" "$MD" | cut -d'|' -f3-)" || return 1
    done
}
check "results: beam 1 scores as greedy" beam1_is_greedy

training() {
    grep -Eq '^\| Soft-Attention \| 2 \| [0-9.]+ \| [12] \|' "$MD" &&
        grep -Eq '^\| Hard-Attention \| 2 \| [0-9.]+ \| [12] \|' "$MD" &&
        grep -q "^make -f scripts/flickr8k.mk -j2 EPOCHS='2' .* results$" "$MD"
}
check "results: the training runs and the command" training

curve() {
    if command -v gnuplot >/dev/null; then
        grep -q '^!\[.*\](flickr8k-curve.png)$' "$MD" && is_equal "$(head -c 4 "$T/results/flickr8k-curve.png" | tail -c 3)" PNG
    else
        ! grep -q 'flickr8k-curve.png' "$MD"
    fi
}
check "results: the training curve (with gnuplot)" curve

tuning() {
    local f=$T/results/flickr8k-tuning.md
    is_equal "$(rows '(Soft|Hard)-Attention, beam [13], length norm [01]' "$f" | wc -l)" 8 &&
        is_equal "$(grep -c '^\(Soft\|Hard\)-Attention: best BLEU-4 [0-9.]* with beam' "$f")" 2 &&
        grep -q '^Scores ×100 on 8 images' "$f"
}
check "tune-beam: every width and length norm on dev, the best of each model" tuning

check "a second make has nothing to do" "${mk[@]}" -q train-soft train-hard train-scst decode results tune-beam

# a finished run is resumed to no effect (it stopped at its last epoch)
resume_finished() {
    local before
    before=$(sha256sum <"$T/out/soft/best.satm")
    rm "$T/out/soft/done"
    "${mk[@]}" train-soft 2>"$T/log" && grep -q 'resuming from' "$T/log" &&
        is_equal "$(sha256sum <"$T/out/soft/best.satm")" "$before" &&
        is_equal "$(grep -c . "$T/out/soft/train.log")" 3
}
check "make train-soft again resumes the finished run, which stays as it was" resume_finished

# a damaged score file: a one-line error naming it, the old report kept
bad_eval() {
    local old
    old=$(cat "$MD")
    echo "images 12" >"$T/out/captions/soft-beam3.eval"
    ! "${mk[@]}" results 2>"$T/log" && grep -q "report.sh: $T/out/captions/soft-beam3.eval: no number for BLEU-1" "$T/log" &&
        is_equal "$(cat "$MD")" "$old" && ! compgen -G "$T/results/*.tmp" >/dev/null
}
check "a damaged score file is named and the old report kept" bad_eval
