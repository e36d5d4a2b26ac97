#!/bin/bash
# sat-beam on a tiny model trained here (40 Flickr8k images, 7x7 features).
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -40 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
head -10 "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
cat "$T/train.txt" "$T/dev.txt" | sed "s|^|$F/images/|" | sat-encode -q --stride 32 --no-flip -T - -o "$T/feats.sat"
sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
    --dev "$T/dev.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2 \
    --epochs 30 --patience 1000 -q -o "$T/m.satm" 2>/dev/null
M=(-m "$T/m.satm")

beam1_is_greedy() {
    cmp <(sat-decode "${M[@]}" -f text "$T/feats.sat") <(sat-beam "${M[@]}" -k 1 -f text "$T/feats.sat")
}
check "a beam of 1 is greedy decoding" beam1_is_greedy

beam_not_worse() {
    # the beam's best caption is at least as probable as the greedy one, image by image
    paste <(sat-decode "${M[@]}" "$T/feats.sat" | sat-dump | jq .logprob) \
          <(sat-beam "${M[@]}" -k 5 "$T/feats.sat" | sat-dump | jq .logprob) |
        awk '$2 < $1 - 1e-4 { print "beam " $2 " < greedy " $1; bad = 1 } END { exit bad }'
}
check "beam 5 finds captions at least as probable as greedy" beam_not_worse

no_unk() {
    # the tiny model's vocabulary (min count 2) leaves many words <unk>: it is
    # written only with --allow-unk, and the captions are otherwise complete
    local prog n
    for prog in "sat-decode" "sat-beam -k 3"; do
        n=$($prog "${M[@]}" --allow-unk -f text "$T/feats.sat" | grep -c '<unk>')
        [ "$n" -gt 0 ] || { echo "$prog --allow-unk: no <unk> to suppress"; return 1; }
        is_equal "$($prog "${M[@]}" -f text "$T/feats.sat" | grep -c '<unk>')" 0 || return 1
        is_equal "$($prog "${M[@]}" -f text "$T/feats.sat" | awk -F'\t' 'NF == 2 && $2 != ""' | wc -l)" 50 || return 1
    done
}
check "<unk> is never written unless --allow-unk" no_unk

nbest() {
    sat-beam "${M[@]}" -k 4 -n 3 "$T/feats.sat" | sat-dump | jq -se '
        length == 150 and (group_by(.id) | all(length == 3 and (map(.rank) == [0, 1, 2])
            and .[0].logprob >= .[1].logprob and .[1].logprob >= .[2].logprob))' >/dev/null
}
check "-n 3 gives three ranked captions per image, best first" nbest

alpha_per_word() {
    sat-beam "${M[@]}" -k 3 "$T/feats.sat" | sat-dump | jq -se '
        all(.[]; .method == "beam" and .alpha.shape == [(.words | length), 7, 7])' >/dev/null
}
check "every beam caption has a 7x7 alpha per word" alpha_per_word

soft_default() {
    sat-beam "${M[@]}" -k 3 "$T/feats.sat" | sat-dump | jq -se '
        length == 50 and all(.[]; .attention == "soft" and .locations == null)' >/dev/null
}
check "the default attention is soft: no locations" soft_default

# --- hard attention ---
hard_argmax() {
    # -n 3: the locations of every ranked caption, through the beam's reordering
    sat-beam "${M[@]}" -k 4 -n 3 --attention hard-argmax "$T/feats.sat" | sat-dump --full | jq -se '
        length == 150 and all(.[]; .method == "beam" and .attention == "hard-argmax"
            and (.locations | length) == (.words | length) and (.alpha | length) == 49 * (.words | length)
            and .alpha as $a | ([.locations | to_entries[] | .key as $t | .value as $l |
                ($l >= 0 and $l < 49 and $a[$t * 49 + $l] == 1 and ($a[$t * 49:($t + 1) * 49] | add) == 1)] | all))' >/dev/null
}
check "--attention hard-argmax: a location per word, one-hot alpha (-n 3)" hard_argmax

# the captions and locations of a hard-sample beam with --seed $1
sampled() {
    sat-beam "${M[@]}" -k 3 --attention hard-sample --seed "$1" "$T/feats.sat" | sat-dump |
        jq -c '[.text, .attention, (.locations | length) == (.words | length), .locations]'
}
hard_sample() {
    sampled 3 > "$T/s3a" && sampled 3 > "$T/s3b" && sampled 4 > "$T/s4" &&
    is_equal "$(grep -c '"hard-sample",true' "$T/s3a")" 50 &&
    cmp "$T/s3a" "$T/s3b" && ! cmp -s "$T/s3a" "$T/s4"
}
check "--attention hard-sample is repeatable by --seed, another seed draws other locations" hard_sample

beam1_hard_is_greedy() {
    # the same words, locations and log-probability as sat-decode's greedy hard-argmax caption
    # (neither ends at once: this model read hard would, on some images)
    local fields='[.id, .text, .locations, .logprob]'
    cmp <(sat-decode "${M[@]}" --attention hard-argmax "$T/feats.sat" | sat-dump | jq -c "$fields") \
        <(sat-beam "${M[@]}" -k 1 --attention hard-argmax "$T/feats.sat" | sat-dump | jq -c "$fields")
}
check "a beam of 1 with hard-argmax is sat-decode --attention hard-argmax" beam1_hard_is_greedy
check_bad "a bad --attention is a usage error" "--attention: 'hard' is not soft, hard-sample or hard-argmax" \
    sat-beam "${M[@]}" --attention hard "$T/feats.sat"

min_len() {
    sat-beam "${M[@]}" -k 3 --min-len 4 -f text "$T/feats.sat" | awk -F'\t' 'split($2, w, " ") < 4 { exit 1 }'
}
check "--min-len 4: no caption shorter than 4 words" min_len

max_len() {
    sat-beam "${M[@]}" -k 3 --max-len 2 -f text "$T/feats.sat" | awk -F'\t' 'split($2, w, " ") > 2 { exit 1 }'
}
check "--max-len 2: no caption longer than 2 words" max_len

# --- ensembles (-m A -m B) ---
train_tiny() { # train_tiny OUT OPTION...: another tiny model of the same data
    local out=$1
    shift
    sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
        --dev "$T/dev.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --epochs 10 \
        --patience 1000 -q -o "$out" "$@" 2>/dev/null
}
train_tiny "$T/seed2.satm" --min-count 2 --seed 2 --hidden 24 --embed 12
train_tiny "$T/vocab1.satm" --min-count 1
fields='[.id, .text, .tokens, (.logprob * 1000 | round)]'
ensemble_of_one() {
    # a model twice is the model: the mean of equal log-probabilities, renormalised
    local prog
    for prog in "sat-decode" "sat-beam -k 3"; do
        cmp <($prog "${M[@]}" "$T/feats.sat" | sat-dump | jq -c "$fields") \
            <($prog "${M[@]}" "${M[@]}" "$T/feats.sat" | sat-dump | jq -c "$fields") || return 1
    done
}
check "an ensemble of a model with itself gives that model's captions and log p" ensemble_of_one
ensemble_of_two() {
    local out
    out=$(sat-beam "${M[@]}" -m "$T/seed2.satm" -k 3 "$T/feats.sat" | sat-dump) &&
    echo "$out" | jq -se 'length == 50 and all(.[]; (.ensemble | length) == 2
        and .ensemble[0] == .model and .ensemble[1].sha256 != .model.sha256
        and (.alpha.shape == [(.words | length), 7, 7]))' >/dev/null &&
    # its captions are neither model's alone
    ! cmp -s <(echo "$out" | jq -r .text) <(sat-beam "${M[@]}" -k 3 "$T/feats.sat" | sat-dump | jq -r .text) &&
    ! cmp -s <(echo "$out" | jq -r .text) <(sat-beam -m "$T/seed2.satm" -k 3 "$T/feats.sat" | sat-dump | jq -r .text)
}
check "an ensemble of two models (of other sizes): both named in each record, captions of their own" ensemble_of_two
check "a lone model's records name no ensemble" \
    bash -c "sat-beam -m '$T/m.satm' '$T/feats.sat' | sat-dump | jq -se 'all(.[]; .ensemble == null)' | grep -qx true"
check_bad "an ensemble of models with other vocabularies is refused" "vocab1.satm: its vocabulary differs" \
    sat-beam "${M[@]}" -m "$T/vocab1.satm" "$T/feats.sat"
check_bad "more than 8 models is a usage error" "at most 8 models" \
    sat-decode "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "${M[@]}" "$T/feats.sat"

check_bad "-n more than -k is a usage error" "nbest" sat-beam "${M[@]}" -k 2 -n 3 "$T/feats.sat"
sat-encode -q "$IMAGES/dog.jpg" > "$T/dog16.sat"
check_bad "features of another grid are refused" "decoder takes L=49" sat-beam "${M[@]}" "$T/dog16.sat"
check "sat-beam --help" sat-beam --help
check "sat-beam --version" sat-beam --version
