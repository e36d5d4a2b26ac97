#!/bin/bash
# sat-beam on a tiny model trained here (40 Flickr8k images, 7x7 features).
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -40 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
head -10 "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
cat "$T/train.txt" "$T/dev.txt" | sed "s|^|$F/images/|" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
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

min_len() {
    sat-beam "${M[@]}" -k 3 --min-len 4 -f text "$T/feats.sat" | awk -F'\t' 'split($2, w, " ") < 4 { exit 1 }'
}
check "--min-len 4: no caption shorter than 4 words" min_len

max_len() {
    sat-beam "${M[@]}" -k 3 --max-len 2 -f text "$T/feats.sat" | awk -F'\t' 'split($2, w, " ") > 2 { exit 1 }'
}
check "--max-len 2: no caption longer than 2 words" max_len

check_bad "-n more than -k is a usage error" "nbest" sat-beam "${M[@]}" -k 2 -n 3 "$T/feats.sat"
sat-encode -q "$IMAGES/dog.jpg" > "$T/dog16.sat"
check_bad "features of another grid are refused" "decoder takes L=49" sat-beam "${M[@]}" "$T/dog16.sat"
check "sat-beam --help" sat-beam --help
check "sat-beam --version" sat-beam --version
