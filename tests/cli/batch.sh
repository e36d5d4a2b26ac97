#!/bin/bash
# Batched captioning (issue 15 item 2): sat-decode, sat-beam and sat-attend -c
# read up to --batch images ahead and step them together; their output must be the same,
# byte for byte, as one image at a time — captions, alphas, records passed
# through and their places, errors — whatever the batch (7: not a divisor of
# the 20 images; the default; one larger than the stream).  On the shipped
# decoders and 20 Flickr8k dev images, one view each, and 6 of two views.
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -20 "$F/Flickr_8k.devImages.txt" | sed "s|^|$F/images/|" > "$T/list"
sat-encode -q --no-flip -T "$T/list" -o "$T/f.sat"
head -6 "$T/list" | sat-encode -q -T - -o "$T/two.sat" # the default: two views
BOTH=(-m sat-decoder.satm -m sat-decoder-hard.satm)

# A stream with other records among the images: 8 images (thumbnails
# embedded), a caption record, a features record the decoder cannot read
# (7x7: stride 32), a caption record, 12 images.
head -8 "$T/list" > "$T/a.list"
tail -n +9 "$T/list" > "$T/b.list"
sat-encode -q --no-flip --thumbnail=32 -T "$T/a.list" -o "$T/a.sat"
sat-encode -q --no-flip -T "$T/b.list" -o "$T/b.sat"
sat-encode -q --stride 32 "$IMAGES/dog.jpg" > "$T/bad.sat"
sat-decode -q "$T/bad.sat" 2>/dev/null # nothing: 7x7 is refused
sat-encode -q "$IMAGES/dog.jpg" | sat-decode -q > "$T/cap.sat"
cat "$T/a.sat" "$T/cap.sat" "$T/bad.sat" "$T/cap.sat" "$T/b.sat" > "$T/mixed.sat"

# same_output NAME CMD...: CMD --batch 1, 7, 32 and the default write the
# same stdout and stderr, and exit alike.
same_output() {
    local b rc1 rc
    "$@" --batch 1 > "$T/out1" 2> "$T/err1"
    rc1=$?
    [ -s "$T/out1" ] || { echo "--batch 1 wrote nothing"; return 1; }
    for b in 7 32 default; do
        if [ $b = default ]; then "$@" > "$T/out" 2> "$T/err"; else "$@" --batch $b > "$T/out" 2> "$T/err"; fi
        rc=$?
        cmp "$T/out1" "$T/out" || { echo "--batch $b: other output"; return 1; }
        cmp "$T/err1" "$T/err" || { echo "--batch $b: other errors"; return 1; }
        is_equal "$rc" "$rc1" || return 1
    done
}

for fmt in msgpack text; do
    check "sat-decode -f $fmt: batched as one by one" same_output sat-decode -q -f $fmt "$T/f.sat"
    check "sat-beam -k 3 -f $fmt: batched as one by one" same_output sat-beam -q -k 3 -f $fmt "$T/f.sat"
    check "sat-beam -k 3 ensemble -f $fmt: batched as one by one" \
        same_output sat-beam -q -k 3 "${BOTH[@]}" -f $fmt "$T/f.sat"
done
check "sat-decode ensemble: batched as one by one" same_output sat-decode -q "${BOTH[@]}" "$T/f.sat"
check "sat-beam -k 3, the default ensemble on two views: batched as one by one" \
    same_output sat-beam -q -k 3 "$T/two.sat"
check "sat-decode --attention hard-argmax, the default ensemble on two views: batched as one by one" \
    same_output sat-decode -q --attention hard-argmax "$T/two.sat"
check "sat-decode --attention hard-argmax: batched as one by one" \
    same_output sat-decode -q -m sat-decoder-hard.satm --attention hard-argmax "$T/f.sat"
check "sat-beam -k 3 -n 3 --attention hard-argmax: batched as one by one" \
    same_output sat-beam -q -k 3 -n 3 -m sat-decoder-hard.satm --attention hard-argmax "$T/f.sat"
check "sat-decode --sample: batched as one by one" same_output sat-decode -q --sample --seed 5 "$T/f.sat"
check "sat-attend -c -c --rank: batched as one by one" \
    same_output sat-attend -q --rank -c "a dog runs on the grass" -c "two people" "$T/f.sat"
check "sat-attend -c, ensemble, hard-argmax -f text: batched as one by one" \
    same_output sat-attend -q "${BOTH[@]}" --attention hard-argmax -c "a man climbs a rock" -f text "$T/f.sat"

# the mixed stream: records in place, the bad record reported, exit status 1
for stage in "sat-decode" "sat-beam -k 3" "sat-decode --keep-features" "sat-beam -k 3 --keep-features" \
    "sat-attend -c dogs"; do
    check "$stage, other records and a bad one among the images: batched as one by one" \
        same_output $stage -q "$T/mixed.sat"
done
mixed_order() {
    sat-beam -q --batch 7 "$T/mixed.sat" 2> "$T/err" > "$T/out"
    is_equal $? 1 || return 1
    grep -q "features are 7x7x1280" "$T/err" || { cat "$T/err"; return 1; }
    # 8 × (thumbnail, caption), the 2 caption records passed through, 12 captions
    is_equal "$(sat-dump "$T/out" | jq -r .type | tr '\n' ' ')" \
        "$(printf 'thumbnail caption %.0s' $(seq 8))caption caption $(printf 'caption %.0s' $(seq 12))"
}
check "sat-beam --batch 7 on the mixed stream: each thumbnail before its caption, the records in place" mixed_order
check "sat-decode on two files: batches go across them" same_output sat-decode -q "$T/a.sat" "$T/b.sat"

wide_beam() { # K × batch past 4096 hypotheses: fewer images at once, the same output
    local one=(-q -k 256 -m sat-decoder-hard.satm)
    cmp <(sat-beam "${one[@]}" --batch 1 "$T/a.sat") <(sat-beam "${one[@]}" --batch 1024 "$T/a.sat")
}
check "sat-beam -k 256 --batch 1024: fewer images at once, the same output" wide_beam

usage() {
    local prog=$1 arg=$2 rc
    "$prog" --batch "$arg" "$T/f.sat" > "$T/out" 2> "$T/err"
    rc=$?
    is_equal "$rc" 2 && [ ! -s "$T/out" ] &&
        is_equal "$(head -1 "$T/err")" "$prog: --batch: '$arg' is not a whole number in [1, 1024]"
}
for prog in sat-decode sat-beam sat-attend; do
    for arg in 0 x 1025; do check "$prog --batch $arg: a usage error" usage "$prog" "$arg"; done
done
