#!/bin/bash
# Test-time augmentation with the mirror image: sat-encode --flip writes
# features records of two views (formats/stream.md), which the captioning
# stages read as an ensemble of models x views, sat-train as view 0.
. "$(dirname "$0")/lib.sh"
export OPENBLAS_NUM_THREADS=1
jqs() { sat-dump "$1" | jq -r "$2"; }

# A 224x224 photo-like PPM, with nothing symmetric about it, and its mirror
# image (column x of one is column 223-x of the other): at the network's
# input size, so the resize is the identity and the mirror's input is the
# image's input flipped exactly.
ppm() { # MIRROR (0 or 1)
    awk -v m="$1" 'BEGIN {
        print "P3\n224 224\n255"
        for (y = 0; y < 224; y++)
            for (x = 0; x < 224; x++) {
                u = m ? 223 - x : x
                r = (u < 90 && y > 60 && y < 170) ? 200 : int(40 + u * 0.6)
                g = int(128 + 100 * sin(u / 17.0 + y / 29.0))
                b = ((u - 150) ^ 2 + (y - 70) ^ 2 < 900) ? 250 : int(y * 0.9)
                print r, g, b
            }
    }'
}
ppm 0 > "$T/img.ppm"
ppm 1 > "$T/mirror.ppm"

sat-encode -q --dtype f32 --no-flip "$T/img.ppm" > "$T/one.sat"
sat-encode -q --dtype f32 "$T/img.ppm" > "$T/two.sat"
sat-encode -q --dtype f32 --flip "$T/img.ppm" > "$T/flip.sat"
sat-encode -q --dtype f32 --flip "$T/mirror.ppm" > "$T/mirror.sat"

two_views() {
    is_equal "$(jqs "$T/one.sat" '[.views, .data.shape] | tostring')" '[null,[14,14,1280]]' &&
    is_equal "$(jqs "$T/two.sat" '[.views, .data.shape] | tostring')" '[2,[2,14,14,1280]]' &&
    cmp "$T/two.sat" "$T/flip.sat" &&
    # view 0 is the record of --no-flip, value for value; view 1 is more data
    sat-dump --full "$T/one.sat" | jq -c .data > "$T/one.json" &&
    sat-dump --full "$T/two.sat" | jq -c '.data | length, .[:250880]' > "$T/two.json" &&
    is_equal "$(head -1 "$T/two.json")" 501760 &&
    cmp <(tail -1 "$T/two.json") "$T/one.json"
}
check "sat-encode (= --flip): views 2, twice the data, view 0 the --no-flip map" two_views

# The image's views and its mirror's views, column-mirrored: view 0 of the
# mirror is view 1 of the image flipped (x -> 13-x) and the other way round;
# and view 1 is not view 0 (the image is not symmetric: the check can fail).
mirrored() {
    sat-dump --full "$T/two.sat" > "$T/a.json" && sat-dump --full "$T/mirror.sat" > "$T/b.json" &&
    python3 - "$T/a.json" "$T/b.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
h, w, c = a["h"], a["w"], a["c"]
def view(rec, v):
    n = h * w * c
    return rec["data"][v * n:(v + 1) * n]
def flip(m):
    return [m[(y * w + (w - 1 - x)) * c + k] for y in range(h) for x in range(w) for k in range(c)]
a0, a1, b0, b1 = view(a, 0), view(a, 1), view(b, 0), view(b, 1)
assert b0 == flip(a1), "mirror view 0 != image view 1 flipped"
assert b1 == flip(a0), "mirror view 1 != image view 0 flipped"
assert a0 != a1 and a0 != flip(a0), "the image's views are the same: nothing tested"
EOF
}
check "an image and its mirror image: exactly mirrored maps" mirrored

check_bad "sat-encode --flip --classify: a usage error" "flip" \
    sat-encode --flip --classify "$T/img.ppm"

# --- the captioning stages on two views ---
sat-encode -q --flip "$IMAGES/dog.jpg" "$IMAGES/cat.png" "$IMAGES/horses.jpg" > "$T/flip3.sat"
sat-encode -q --no-flip "$IMAGES/bird.png" "$IMAGES/parrot.jpg" > "$T/plain2.sat"

beam_two_views() {
    sat-beam -q -k 3 -m sat-decoder-hard.satm "$T/flip3.sat" > "$T/flip3.caps" &&
    is_equal "$(jqs "$T/flip3.caps" '.type' | sort | uniq -c | tr -s ' \n' ' ')" " 3 caption " &&
    # one model on two views: two members, no ensemble key; soft alpha rows sum to 1
    is_equal "$(jqs "$T/flip3.caps" '.ensemble' | sort -u)" null &&
    sat-dump --full "$T/flip3.caps" | jq -e '.alpha_h == 14 and .alpha_w == 14 and .text != ""
        and ([range(0; .alpha | length; 196) as $i | .alpha[$i:$i + 196] | add | . - 1 | fabs < 1e-4] | all)' \
        > /dev/null &&
    cmp "$T/flip3.caps" <(sat-beam -q -k 3 -m sat-decoder-hard.satm --batch 1 "$T/flip3.sat")
}
check "sat-beam on a --flip stream: a caption per image, batches agree" beam_two_views

# A stream of one and two views mixed: a batch holds one view count, so each
# run of records of one count is captioned as the stream of that run alone.
cat "$T/plain2.sat" "$T/flip3.sat" "$T/plain2.sat" > "$T/mixed.sat"
mixed() { # PROGRAM ARGS...
    cmp <("$@" "$T/mixed.sat") <("$@" "$T/plain2.sat"; "$@" "$T/flip3.sat"; "$@" "$T/plain2.sat")
}
check "sat-beam on a mixed stream: each part as alone" mixed sat-beam -q -k 3
check "sat-beam --keep-features on a mixed stream: records in their places" mixed sat-beam -q --keep-features
check "sat-beam -f text, ensemble, on a mixed stream" mixed sat-beam -q -k 2 -f text \
    -m sat-decoder.satm -m sat-decoder-hard.satm
check "sat-decode on a mixed stream" mixed sat-decode -q --attention hard-argmax
check "sat-attend -c on a mixed stream" mixed sat-attend -q -c "a dog runs" -c "a bird on a branch"

# an ensemble of two models on two views, its models on 1 or 2 threads: the same bytes
threads_same() { # PROGRAM ARGS...
    cmp <("$@" --threads 1 "$T/flip3.sat") <("$@" --threads 2 "$T/flip3.sat")
}
check "sat-beam --threads 1 and 2, ensemble on two views: the same bytes" threads_same \
    sat-beam -q -k 3 -m sat-decoder.satm -m sat-decoder-hard.satm
check "sat-decode --threads 1 and 2, hard-argmax ensemble: the same bytes" threads_same \
    sat-decode -q --attention hard-argmax -m sat-decoder.satm -m sat-decoder-hard.satm
check "sat-attend --threads 1 and 2, ensemble: the same bytes" threads_same \
    sat-attend -q -c "a dog runs" -m sat-decoder.satm -m sat-decoder-hard.satm

heatmap_of_views() {
    sat-encode -q --flip --thumbnail "$IMAGES/dog.jpg" | sat-beam -q -k 3 |
        sat-heatmap -o "$T/dog.png" > /dev/null && test -s "$T/dog.png"
}
check "sat-heatmap draws the captions of two views" heatmap_of_views

# --- sat-train reads view 0 of a two-view cache: the same weights as without ---
F=$SAT_SHARED/data/flickr8k
head -12 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
head -4 "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
cat "$T/train.txt" "$T/dev.txt" | sed "s|^|$F/images/|" > "$T/paths.txt"
train_view0() {
    sat-encode -q --stride 32 --no-flip -T "$T/paths.txt" -o "$T/f1.sat" &&
    sat-encode -q --stride 32 --flip -T "$T/paths.txt" -o "$T/f2.sat" &&
    for v in 1 2; do
        sat-train --captions "$F/Flickr8k.token.txt" --features "$T/f$v.sat" --train "$T/train.txt" \
            --dev "$T/dev.txt" --embed 8 --hidden 16 --att-size 8 --batch 8 --min-count 2 \
            --epochs 2 -q -o "$T/m$v.satm" 2>/dev/null || return 1
    done
    is_equal "$(jqs "$T/m2.satm" .weights_sha256)" "$(jqs "$T/m1.satm" .weights_sha256)"
}
check "sat-train on a two-view cache: view 0, the same weights" train_view0
