#!/bin/bash
# Every program that needs neither the encoder nor Flickr8k, on the committed
# fixtures of tests/data (scripts/make-test-data.sh): four synthetic features
# records (3x3x8, with PNG thumbnails), a tiny decoder trained on two of
# them, a 20-line caption file and its split lists.  Part of `make check`.
. "$(dirname "$0")/lib.sh"
D=$(cd "$(dirname "$0")/../data" && pwd)
export OPENBLAS_NUM_THREADS=1
M=(-m "$D/decoder.satm")
jqs() { sat-dump "$1" | jq -r "$2"; }

# The decoder's greedy captions are the committed hypotheses (its margins are
# wide: xent 0.23 per token on its training captions).
check "sat-decode: the greedy captions of the committed decoder" \
    cmp <(sat-decode "${M[@]}" -q -f text "$D/features.sat") "$D/hyps.txt"

batches_agree() {
    sat-decode "${M[@]}" -q --batch 1 "$D/features.sat" > "$T/one.sat" &&
    sat-decode "${M[@]}" -q --batch 4 "$D/features.sat" > "$T/four.sat" &&
    cmp "$T/one.sat" "$T/four.sat"
}
check "sat-decode --batch 1 and --batch 4: the same bytes" batches_agree

decode_records() {
    is_equal "$(jqs "$T/four.sat" '.type' | sort | uniq -c | tr -s ' \n' ' ')" " 4 caption 4 thumbnail " &&
    sat-dump --full -t caption "$T/four.sat" > "$T/full.json" &&
    # each word's attention is a map over the 3x3 grid that sums to 1
    jq -e '.alpha_h == 3 and .alpha_w == 3 and (.words | length) == (.alpha | length) / 9
           and ([range(0; .alpha | length; 9) as $i | .alpha[$i:$i + 9] | add | . - 1 | fabs < 1e-4] | all)' \
        "$T/full.json" > /dev/null
}
check "sat-decode: caption records with a 3x3 attention per word, thumbnails passed on" decode_records

beam() {
    sat-beam "${M[@]}" -q -k 3 -n 2 "$D/features.sat" > "$T/beam.sat" &&
    is_equal "$(jqs "$T/beam.sat" 'select(.type == "caption") | "\(.id) \(.rank)"' | tr '\n' ' ')" \
        "1001_dog.jpg 0 1001_dog.jpg 1 1002_boy.jpg 0 1002_boy.jpg 1 1003_dog.jpg 0 1003_dog.jpg 1 1004_boy.jpg 0 1004_boy.jpg 1 " &&
    # the best of the beam is at least as probable as the greedy caption
    paste <(jqs "$T/beam.sat" 'select(.rank == 0) | .logprob') <(jqs "$T/four.sat" 'select(.type == "caption") | .logprob') |
        awk '$1 < $2 - 1e-6 { print "beam " $1 " below greedy " $2; bad = 1 } END { exit bad }'
}
check "sat-beam -k 3 -n 2: two ranked captions per image, the best no worse than greedy" beam

# Teacher forcing on the decoder's own captions gives back their logprob.
attend_own() {
    sat-attend "${M[@]}" "$D/features.sat" "$T/four.sat" > "$T/att.sat" &&
    paste <(jqs "$T/att.sat" 'select(.type == "caption") | .logprob') <(jqs "$T/four.sat" 'select(.type == "caption") | .logprob') |
        awk '{ d = $1 - $2; if (d < -1e-4 || d > 1e-4) { print "teacher " $1 " decode " $2; bad = 1 } } END { exit bad || NR != 4 }'
}
check "sat-attend: teacher forcing of the decoded captions gives their logprob" attend_own

attend_caption() {
    sat-attend "${M[@]}" -c "a dog is running outside" -c "a boy jumps into the water" --rank "$D/features.sat" > "$T/rank.sat" &&
    is_equal "$(jqs "$T/rank.sat" 'select(.rank == 0) | "\(.id) \(.text)"' | tr '\n' '|')" \
        "1001_dog.jpg a dog is running outside|1002_boy.jpg a boy jumps into the water|1003_dog.jpg a dog is running outside|1004_boy.jpg a boy jumps into the water|" &&
    jq -e '(.word_logprobs | length) == (.words | length) + 1' <(sat-dump -t caption "$T/rank.sat") > /dev/null
}
check "sat-attend -c --rank: the dog caption first for dogs, the boy's for boys" attend_caption

heatmap() {
    mkdir -p "$T/png" &&
    sat-heatmap -o "$T/png/" --size 32 "$T/four.sat" > "$T/png.list" &&
    is_equal "$(wc -l < "$T/png.list")" 4 &&
    for f in "$T"/png/100{1_dog,2_boy,3_dog,4_boy}.png; do
        is_equal "$(head -c 8 "$f" | od -An -tx1 | tr -d ' ')" 89504e470d0a1a0a || return 1
    done
}
check "sat-heatmap: a PNG per caption, over the thumbnails of the stream" heatmap

eval_stream() {
    is_equal "$(sat-eval --no-meteor -r "$D/captions.txt" "$T/four.sat")" \
        "$(sat-eval --no-meteor -r "$D/captions.txt" "$D/hyps.txt")"
}
check "sat-eval: caption records score as their text lines do" eval_stream

vocab_is_models() {
    sat-vocab -c "$D/captions.txt" -s "$D/train.txt" -m 1 -o "$T/vocab.txt" 2>/dev/null &&
    is_equal "$(cut -f1 "$T/vocab.txt" | tr '\n' ' ')" "$(jqs "$D/decoder.satm" '.vocab | join(" ")') "
}
check "sat-vocab -m 1 on the training split: the decoder's vocabulary" vocab_is_models

args=(--captions "$D/captions.txt" --features "$D/features.sat" --train "$D/train.txt" --dev "$D/dev.txt"
      --min-count 1 --embed 8 --hidden 16 --att-size 8 --batch 5 --epochs 3 --threads 1 -q)
sha() { jqs "$1" .weights_sha256; }
train() {
    sat-train "${args[@]}" -o "$T/a.satm" --checkpoint "$T/run" 2>/dev/null &&
    sat-dump --verify "$T/a.satm" > /dev/null &&
    is_equal "$(wc -l < "$T/run/train.log")" 4 &&
    sat-train "${args[@]}" -o "$T/b.satm" 2>/dev/null &&
    is_equal "$(sha "$T/b.satm")" "$(sha "$T/a.satm")" &&
    sat-decode -m "$T/a.satm" -q -f text "$D/features.sat" | cut -f1 | tr '\n' ' ' > "$T/ids" &&
    is_equal "$(cat "$T/ids")" "1001_dog.jpg 1002_boy.jpg 1003_dog.jpg 1004_boy.jpg "
}
check "sat-train: 3 epochs, a log line each, the same weights again, a model sat-decode reads" train

average() {
    sat-import --average -o "$T/avg.satm" "$D/decoder.satm" "$D/decoder.satm" 2>/dev/null &&
    is_equal "$(sha "$T/avg.satm")" "$(sha "$D/decoder.satm")" &&
    sat-import --f16 -o "$T/f16.satm" "$D/decoder.satm" 2>/dev/null &&
    is_equal "$(jqs "$T/f16.satm" .dtype)" f16 &&
    cmp <(sat-decode -m "$T/f16.satm" -q -f text "$D/features.sat" | cut -f1) <(cut -f1 "$D/hyps.txt")
}
check "sat-import: --average of a model with itself is the model; --f16 rewrites it" average

# A features record whose dtype no reader knows: its data is bytes, not an f16 tensor.
dump_bad_dtype() {
    python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.stdout.buffer.write(d.replace(b"\xa3f16", b"\xa3f64", 1))' \
        "$D/features.sat" > "$T/f64.sat" &&
    is_equal "$(jqs "$T/f64.sat" '.data | tostring' | tr '\n' ' ')" \
        '{"bytes":144} {"shape":[3,3,8],"dtype":"f16","min":0,"max":2.5,"mean":0.588541667} {"shape":[3,3,8],"dtype":"f16","min":0,"max":2.5,"mean":0.578125} {"shape":[3,3,8],"dtype":"f16","min":0,"max":2.5,"mean":0.59375} '
}
check "sat-dump: a features record of an unknown dtype shows its data as bytes" dump_bad_dtype

check_bad "sat-decode: a caption file is no sat stream" "captions.txt: not a sat stream" \
    sat-decode "${M[@]}" "$D/captions.txt"
check_bad "sat-train --init: a model of another vocabulary is refused" "another architecture .*V=32; this run: .*V=17" \
    sat-train "${args[@]}" --min-count 2 --init "$D/decoder.satm" -o "$T/bad.satm"
