#!/bin/bash
# The shipped default decoder, models/sat-decoder.satm, found as the programs
# find it (no -m: SAT_MODEL_DIR, else BINDIR/../models): real photos captioned
# end to end, and its quality on the first 100 images of the Flickr8k test split.
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
MODEL=${SAT_MODEL_DIR:-$SAT_BIN/../models}/sat-decoder.satm

shipped_file() {
    [ "$(stat -c %s "$MODEL")" -le $((25 << 20)) ] || { echo "$MODEL: larger than 25 MiB"; return 1; }
    sat-dump "$MODEL" | jq -e '.kind == "decoder" and .dtype == "f16" and .name == "sat-decoder"
        and (.vocab | length) == 2538 and .vocab[0:3] == ["<end>", "<start>", "<unk>"]' >/dev/null
}
check "the shipped decoder: f16, at most 25 MiB, the Flickr8k vocabulary of 2538 words" shipped_file

sat-encode -q "$IMAGES/dog.jpg" > "$T/dog.sat"
default_model() {
    local greedy beam
    greedy=$(sat-decode -f text "$T/dog.sat") && beam=$(sat-beam -f text "$T/dog.sat") || return 1
    echo "greedy: $greedy"$'\n'"beam: $beam"
    grep -Eq $'^[^\t]*dog.jpg\t.*\\<dog\\>' <<<"$greedy" && grep -Eq $'^[^\t]*dog.jpg\t.*\\<dog\\>' <<<"$beam"
}
check "without -m, sat-decode and sat-beam caption dog.jpg with the word dog" default_model

figure() {
    is_equal "$(sat-beam "$T/dog.sat" | sat-heatmap -o "$T/dog.png")" "$T/dog.png" &&
        is_equal "$(head -c 4 "$T/dog.png" | tail -c 3)" PNG
}
check "the quick start's figure: sat-encode | sat-beam | sat-heatmap -o dog.png" figure

# Quality floor on real data: well below what the model measured (README),
# far above what a broken loader, decoder or feature pipeline would give.
head -100 "$F/Flickr_8k.testImages.txt" > "$T/test100.txt"
sed "s|^|$F/images/|" "$T/test100.txt" | sat-encode -q -T - -o "$T/test100.sat"
quality() {
    sat-beam -k 3 "$T/test100.sat" | sat-eval --no-meteor -r "$F/Flickr8k.token.txt" -s "$T/test100.txt" \
        > "$T/eval" 2>/dev/null || return 1
    cat "$T/eval"
    awk '$1 == "BLEU-4" { b = $2 } $1 == "CIDEr-D" { c = $2 } $1 == "images" { n = $2 }
         END { exit !(n == 100 && b >= 0.15 && c >= 0.40) }' "$T/eval"
}
check "beam 3 on 100 Flickr8k test images: BLEU-4 >= 0.15, CIDEr-D >= 0.40" quality
