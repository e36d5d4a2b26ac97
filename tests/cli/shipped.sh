#!/bin/bash
# The shipped decoders: the default, the ensemble of models/sat-decoder-hard.satm
# and models/sat-decoder-hard-scst.satm on sat-encode's two views, found as the
# programs find them (no -m: SAT_MODEL_DIR, else BINDIR/../models), and the
# soft one, models/sat-decoder.satm: real photos captioned end to end, and
# their quality on the first 100 images of the Flickr8k test split.
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
MODEL=${SAT_MODEL_DIR:-$SAT_BIN/../models}/sat-decoder.satm

soft_file() {
    [ "$(stat -c %s "$MODEL")" -le $((25 << 20)) ] || { echo "$MODEL: larger than 25 MiB"; return 1; }
    sat-dump --verify "$MODEL" | jq -e '.kind == "decoder" and .dtype == "f16" and .name == "sat-decoder"
        and (.vocab | length) == 2538 and .vocab[0:3] == ["<end>", "<start>", "<unk>"]' >/dev/null
}
check "the shipped soft decoder: f16, its weights as hashed, at most 25 MiB, the Flickr8k vocabulary of 2538 words" soft_file

sat-encode -q "$IMAGES/dog.jpg" > "$T/dog.sat"
default_model() {
    local greedy beam
    greedy=$(sat-decode -f text "$T/dog.sat") && beam=$(sat-beam -f text "$T/dog.sat") || return 1
    echo "greedy: $greedy"$'\n'"beam: $beam"
    grep -Eq $'^[^\t]*dog.jpg\t.*\\<dog\\>' <<<"$greedy" && grep -Eq $'^[^\t]*dog.jpg\t.*\\<dog\\>' <<<"$beam" &&
        is_equal "$(sat-beam "$T/dog.sat" | sat-dump | jq -r '[.model.name, .ensemble[].name] | join(" ")')" \
            "sat-decoder-hard sat-decoder-hard sat-decoder-hard-scst" &&
        is_equal "$(sat-dump "$T/dog.sat" | jq -r .views)" 2
}
check "without options, sat-encode writes two views, and sat-decode and sat-beam read the hard model and its SCST fine-tune, an ensemble, and caption dog.jpg with the word dog" default_model

figure() {
    is_equal "$(sat-beam "$T/dog.sat" | sat-heatmap -o "$T/dog.png")" "$T/dog.png" &&
        is_equal "$(head -c 4 "$T/dog.png" | tail -c 3)" PNG
}
check "the quick start's figure: sat-encode | sat-beam | sat-heatmap -o dog.png" figure

# The shipped hard-attention decoder and its SCST fine-tune, also found by their bare names
DIR=${SAT_MODEL_DIR:-$SAT_BIN/../models}
HARD=$DIR/sat-decoder-hard.satm SCST=$DIR/sat-decoder-hard-scst.satm
other_decoder() { # FILE NAME OTHER: a shipped f16 decoder called NAME, its weights not OTHER's
    [ "$(stat -c %s "$1")" -le $((25 << 20)) ] || { echo "$1: larger than 25 MiB"; return 1; }
    sat-dump --verify "$1" | jq -e --arg name "$2" '.kind == "decoder" and .dtype == "f16" and .name == $name
        and (.vocab | length) == 2538' >/dev/null &&
    [ "$(sat-dump "$1" | jq -r .weights_sha256)" != "$(sat-dump "$3" | jq -r .weights_sha256)" ]
}
check "the shipped hard-attention decoder: f16, at most 25 MiB, the same vocabulary, other weights than the soft one's" \
    other_decoder "$HARD" sat-decoder-hard "$MODEL"
check "the shipped SCST fine-tune: f16, at most 25 MiB, the same vocabulary, other weights than the hard model's" \
    other_decoder "$SCST" sat-decoder-hard-scst "$HARD"
hard_argmax_dog() {
    local out
    out=$(cd "$T" && sat-decode -m sat-decoder-hard.satm --attention hard-argmax -f msgpack "$T/dog.sat" |
          sat-dump | jq -r '[.text, (.locations | length), (.words | length), .model.name] | @tsv') || return 1
    echo "$out"
    IFS=$'\t' read -r text nloc nwords name <<<"$out"
    grep -Eq '\<dogs?\>' <<<"$text" && [ "$nloc" = "$nwords" ] && [ "$name" = sat-decoder-hard ]
}
check "sat-decode -m sat-decoder-hard.satm --attention hard-argmax: one location per word, dog.jpg says dog" hard_argmax_dog

# Quality floor on real data: well below what the model measured (README),
# far above what a broken loader, decoder or feature pipeline would give.
head -100 "$F/Flickr_8k.testImages.txt" > "$T/test100.txt"
sed "s|^|$F/images/|" "$T/test100.txt" | sat-encode -q -T - -o "$T/test100.sat"
quality() {
    sat-beam -k 3 "$T/test100.sat" | sat-eval --no-meteor -r "$F/Flickr8k.token.txt" -s "$T/test100.txt" \
        > "$T/eval" 2>/dev/null || return 1
    cat "$T/eval"
    awk '$1 == "BLEU-4" { b = $2 } $1 == "CIDEr-D" { c = $2 } $1 == "images" { n = $2 }
         END { exit !(n == 100 && b >= 15 && c >= 40) }' "$T/eval"
}
check "beam 3 (the default model) on 100 Flickr8k test images: BLEU-4 >= 15, CIDEr-D >= 40" quality
hard_quality() {
    local mode
    for mode in "sat-beam -k 3 -m sat-decoder.satm" "sat-decode --attention hard-argmax -m sat-decoder-hard.satm"; do
        $mode "$T/test100.sat" |
            sat-eval --no-meteor -r "$F/Flickr8k.token.txt" -s "$T/test100.txt" > "$T/heval" 2>/dev/null || return 1
        echo "$mode: $(tr -s ' ' < "$T/heval" | tr '\n' ' ')"
        awk '$1 == "BLEU-4" { b = $2 } $1 == "CIDEr-D" { c = $2 } $1 == "images" { n = $2 }
             END { exit !(n == 100 && b >= 12 && c >= 30) }' "$T/heval" || return 1
    done
}
check "the soft model at beam 3 and the hard one with its own hard-argmax locations, 100 test images: BLEU-4 >= 12, CIDEr-D >= 30" hard_quality

# The pointing check (sat-eval --boxes) on the boxed photos of ../shared/images
BOXES=$(dirname "$0")/../../scripts/boxes.tsv
grep -v '^#' "$BOXES" | cut -f1 | sort -u | while read -r name; do
    [ -e "$IMAGES/$name" ] && echo "$IMAGES/$name"
done > "$T/boxed.list"
sat-encode -q -T "$T/boxed.list" -o "$T/boxed.sat"
pointing() {
    sat-beam -k 3 -f msgpack "$T/boxed.sat" |
        sat-eval -r "$F/Flickr8k.token.txt" --boxes "$BOXES" --entropy > "$T/point" 2> "$T/point.err" || return 1
    cat "$T/point"
    grep -q "no hypothesis with references: attention only (10 read)" "$T/point.err" &&
    awk '{ v[$1] = $2 }
         END { exit !(v["pointing-words"] >= 3 && v["pointing"] >= 0 && v["pointing"] <= 100 &&
                      v["pointing-centre"] > 0 && v["entropy"] > 0 && v["entropy"] < v["entropy-uniform"] &&
                      v["entropy-uniform"] > 5.278 && v["entropy-uniform"] < 5.279) }' "$T/point"
}
check "sat-eval --boxes --entropy: the ten photos, pointing beside the centre, entropy below uniform (log 196)" pointing
check_bad "--boxes needs caption records, not text" "need a stream of caption records" \
    sat-eval -r "$F/Flickr8k.token.txt" --boxes "$BOXES" <(printf 'dog.jpg\ta dog\n')
printf 'dog.jpg\tdog\t0 0 1 1\ndog.jpg\tdog\t0 0 2 1\n' > "$T/bad-boxes.tsv"
check_bad "a box outside the image names the file and line" "bad-boxes.tsv:2: the box is not" \
    sat-eval -r "$F/Flickr8k.token.txt" --boxes "$T/bad-boxes.tsv" "$T/boxed.sat"
