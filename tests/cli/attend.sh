#!/bin/bash
# sat-attend (teacher forcing: attention, word log-probabilities, perplexity,
# ranking) and hard attention in sat-decode and sat-train, on a tiny model
# trained for a few seconds on 40 Flickr8k images at output stride 32 (7x7).
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -40 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
head -10 "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
cat "$T/train.txt" "$T/dev.txt" | sed "s|^|$F/images/|" | sat-encode -q --stride 32 --no-flip -T - -o "$T/feats.sat"
sat-encode -q --stride 32 --no-flip "$F/images/$(head -1 "$T/train.txt")" > "$T/one.sat"
args=(--captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt"
      --dev "$T/dev.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2
      --patience 1000 --lr 2e-3 --dropout 0 --threads 1 -q)
# The checkpoint holds the last epoch's weights (-o keeps the best dev BLEU-4,
# which a model this small may reach at epoch 1).
sat-train "${args[@]}" --epochs 20 -o "$T/best.satm" --checkpoint "$T/soft" 2> "$T/train.err"
M=$T/soft/checkpoint.satm
check "a tiny soft model to attend with" test -s "$M"
CAP="a dog runs through the snow"

# --- one caption on every image, into sat-dump ---
sat-attend -m "$M" -c "$CAP" "$T/feats.sat" > "$T/cap.sat" 2> "$T/cap.err"
records() {
    sat-dump "$T/cap.sat" | jq -se 'length == 50 and all(.[]; .type == "caption" and
        .method == "teacher" and .attention == "soft" and .text == "a dog runs through the snow" and
        .alpha.shape == [6, 7, 7] and (.word_logprobs | length) == 7 and .model.sha256 != null)' >/dev/null
}
check "sat-attend -c writes a teacher caption record per image (7x7 alpha per word)" records

sums() {
    sat-dump --full "$T/cap.sat" | jq -se 'all(.[];
        .alpha as $a | ([range(0; 6)] | map($a[. * 49:(. + 1) * 49] | add) | all(. > 0.999 and . < 1.001))
        and ((.word_logprobs | add) - .logprob | fabs) < 1e-4 and .logprob < 0
        and ((.perplexity - ((-.logprob / 7) | exp)) / .perplexity | fabs) < 1e-6)' >/dev/null
}
check "alpha rows sum to 1, word_logprobs sum to logprob, perplexity = exp(-logprob/(n+1))" sums

text_mode() {
    sat-attend -m "$M" -c "$CAP" -f text "$T/feats.sat" > "$T/cap.txt" &&
    is_equal "$(awk -F'\t' 'NF == 4 && $2 < 0 && $3 > 1 && $4 == "a dog runs through the snow"' "$T/cap.txt" | wc -l)" 50 &&
    is_equal "$(cut -f2 "$T/cap.txt" | head -1)" "$(sat-dump "$T/cap.sat" | head -1 | jq -r '.logprob * 10000 | round / 10000 | tostring')"
}
check "-f text: id<TAB>logprob<TAB>perplexity<TAB>caption" text_mode

heatmap() {
    sat-attend -m "$M" -c "$CAP" "$T/one.sat" | sat-heatmap -o "$T/one.png" > "$T/hm.out" &&
    is_equal "$(cat "$T/hm.out")" "$T/one.png" && [ "$(head -c 4 "$T/one.png" | tail -c 3)" = PNG ]
}
check "the output feeds sat-heatmap" heatmap

# --- ranking ---
ranked() {
    sat-attend -m "$M" --rank -c "$CAP" -c "a man" -c "two dogs play in the snow" "$T/feats.sat" |
        sat-dump | jq -se 'length == 150 and ([.[].rank] == ([range(0; 50)] | map(0, 1, 2))) and
            ([range(0; 50)] as $i | [.[]] as $r | all($i[]; $r[3 * . ].logprob >= $r[3 * . + 1].logprob
              and $r[3 * . + 1].logprob >= $r[3 * . + 2].logprob))' >/dev/null
}
check "--rank: each image's captions best first by logprob, with rank 0, 1, 2" ranked

# The human caption #0 of each training image against its own words shuffled
# (--captions file, Flickr8k format): the model has learned word order.
human_first() {
    local img cap
    : > "$T/pairs.txt"
    while read -r img; do
        cap=$(grep -m1 "^$img#0	" "$F/Flickr8k.token.txt" | cut -f2)
        # the shuffled one first: a tie would rank it first
        printf '%s#9\t%s\n%s#0\t%s\n' "$img" \
            "$(printf '%s\n' $cap | shuf --random-source=<(yes) | tr '\n' ' ')" "$img" "$cap" >> "$T/pairs.txt"
    done < "$T/train.txt"
    sat-attend -m "$M" --rank -f text --captions "$T/pairs.txt" "$T/feats.sat" > "$T/pairs.out" 2> "$T/pairs.err"
    # dev images have no line in the file: an error each, the others scored
    is_equal "$(grep -c 'no caption for it' "$T/pairs.err")" 10 || return 1
    is_equal "$(wc -l < "$T/pairs.out")" 80 || return 1
    local human first
    human=$(awk -F'\t' 'NR % 2 == 1 { n++ } END { print n }' "$T/pairs.out")
    # --rank text: id, rank, logprob, perplexity, caption; ranks 0 and 1 by turns
    awk -F'\t' 'NF != 5 || $2 != (NR + 1) % 2 { bad = 1 } END { exit bad }' "$T/pairs.out" || return 1
    first=$(awk -F'\t' 'NR % 2 == 1' "$T/pairs.out" | cut -f5 | grep -cFxf <(sat-attend -m "$M" -f text \
        --captions <(grep '#0	' "$T/pairs.txt") "$T/feats.sat" 2>/dev/null | cut -f4))
    echo "human caption ranked first for $first of $human images"
    [ "$first" -ge 36 ]
}
check "a human caption outranks its words shuffled (36 of 40 images at least)" human_first

# --- captions from the stream ---
from_stream() {
    sat-decode -m "$M" --keep-features "$T/feats.sat" > "$T/dec.sat" &&
    sat-attend -m "$M" "$T/dec.sat" | sat-dump > "$T/teach.json" &&
    sat-dump -t caption "$T/dec.sat" > "$T/greedy.json" &&
    is_equal "$(jq -s 'length' "$T/teach.json")" 50 &&
    # teacher forcing the greedy caption gives the greedy caption's log-probability
    jq -se --slurpfile g "$T/greedy.json" '[.[] | {id, text, logprob}] as $t |
        all(range(0; 50); ($t[.].id == $g[.].id) and ($t[.].text == $g[.].text) and
            (($t[.].logprob - $g[.].logprob) | fabs) < 1e-3)' "$T/teach.json" >/dev/null
}
check "caption records from the stream (before their features): teacher logprob = sat-decode's" from_stream

# features first, captions after: matched while the features are in the buffer
after_features() {
    sat-decode -m "$M" "$T/feats.sat" > "$T/caps_only.sat" &&
    cat "$T/feats.sat" "$T/caps_only.sat" | sat-attend -m "$M" --buffer 64 -f text > "$T/after.txt" &&
    is_equal "$(wc -l < "$T/after.txt")" 50
}
check "caption records after their features are matched (--buffer 64)" after_features

check_bad "a caption record after --buffer other features records is an error" \
    "matches no features record" \
    bash -c "cat '$T/feats.sat' '$T/caps_only.sat' | sat-attend -m '$M' --buffer 4 -f text > '$T/b4.txt'"
buffer_rest() { is_equal "$(wc -l < "$T/b4.txt")" 4; }
check "... and the captions of the last 4 features records are still scored" buffer_rest

stray_id() {
    # a caption record for an image not in the stream: one error line, 50 captions scored
    printf '\x84\xa4type\xa7caption\xa1v\x01\xa2id\xa8nope.jpg\xa4text\xa5a dog' > "$T/stray.sat"
    cat "$T/dec.sat" "$T/stray.sat" | sat-attend -m "$M" -f text > "$T/stray.out" 2> "$T/stray.err"
    local rc=$?
    [ $rc -eq 1 ] && is_equal "$(wc -l < "$T/stray.out")" 50 &&
    grep -q '^sat-attend: nope.jpg: a caption record whose id matches no features record' "$T/stray.err"
}
check "a caption record whose id matches no features record: an error for it, the rest go on" stray_id

# --- bad captions: an error line each, the good caption still scored, exit 1 ---
bad_caption() {
    local pattern=$1
    shift
    sat-attend -m "$M" -f text "$@" -c "$CAP" "$T/feats.sat" > "$T/bad.out" 2> "$T/bad.err"
    local rc=$?
    [ $rc -eq 1 ] || { echo "exit status $rc"; return 1; }
    grep -Eq "^sat-attend: -c .*$pattern" "$T/bad.err" || { cat "$T/bad.err"; return 1; }
    is_equal "$(wc -l < "$T/bad.out")" 50
}
check "a caption of unknown words only" bad_caption "no word of the caption is in the model's vocabulary" -c "xyzzy qwertz"
check "an empty caption" bad_caption "empty" -c ""
check "a caption of punctuation only is empty" bad_caption "empty" -c " ?! ..."
check "a caption longer than --max-len" bad_caption "has 7 words, more than --max-len 6" --max-len 6 -c "a dog runs on the green grass"
check "a caption longer than the default limit (50)" bad_caption "more than --max-len 50" -c "$(printf 'dog %.0s' $(seq 51))"
check_bad "no caption left to score" "no caption to score" sat-attend -m "$M" -c "" "$T/feats.sat"
check_bad "-c and --captions together" "two sources" sat-attend -m "$M" -c "a" --captions "$T/pairs.txt"
check_bad "a bad --attention" "not soft, hard-sample or hard-argmax" sat-attend -m "$M" --attention hard -c a
check_bad "a missing model" "nope.satm" sat-attend -m "$T/nope.satm" -c a "$T/feats.sat"

file_bad() {
    printf 'x.jpg\tno tab here\nnot a caption line\n%s#0\t\n%s#1\ta dog\n' \
        "$(head -1 "$T/train.txt")" "$(head -1 "$T/train.txt")" > "$T/badfile.txt"
    sat-attend -m "$M" -f text --captions "$T/badfile.txt" "$T/one.sat" > "$T/bf.out" 2> "$T/bf.err"
    [ $? -eq 1 ] && grep -q 'badfile.txt:2: not id<TAB>caption' "$T/bf.err" &&
    grep -q 'badfile.txt:3 (.*): the caption is empty' "$T/bf.err" && is_equal "$(wc -l < "$T/bf.out")" 1
}
check "--captions: a line without a tab and an empty caption are errors naming the line" file_bad

# --- hard attention at inference ---
hard_argmax() {
    sat-decode -m "$M" --attention hard-argmax "$T/feats.sat" | sat-dump --full | jq -se '
        length == 50 and all(.[]; .attention == "hard-argmax" and (.locations | length) == (.words | length)
            and .alpha as $a | ([.locations | to_entries[] | .key as $t | .value as $l |
                ($l >= 0 and $l < 49 and $a[$t * 49 + $l] == 1 and ($a[$t * 49:($t + 1) * 49] | add) == 1)] | all))' >/dev/null
}
check "sat-decode --attention hard-argmax: a location per word, one-hot alpha" hard_argmax

hard_sample() {
    local a b c
    a=$(sat-decode -m "$M" --attention hard-sample --seed 3 "$T/feats.sat" | sat-dump | jq -c .locations | md5sum)
    b=$(sat-decode -m "$M" --attention hard-sample --seed 3 "$T/feats.sat" | sat-dump | jq -c .locations | md5sum)
    c=$(sat-decode -m "$M" --attention hard-sample --seed 4 "$T/feats.sat" | sat-dump | jq -c .locations | md5sum)
    [ "$a" = "$b" ] && [ "$a" != "$c" ]
}
check "sat-decode --attention hard-sample is repeatable by seed" hard_sample

attend_hard() {
    sat-attend -m "$M" --attention hard-sample -c "$CAP" "$T/feats.sat" | sat-dump |
        jq -se 'all(.[]; .attention == "hard-sample" and (.locations | length) == 6)' >/dev/null
}
check "sat-attend --attention hard-sample gives the sampled location of each word" attend_hard

# --- hard attention in training ---
sat-train "${args[@]}" --attention hard --epochs 10 -o "$T/hard.satm" --checkpoint "$T/hard" 2> "$T/hard.err"
hard_trains() {
    grep -q 'hard attention: 1 sample' "$T/hard.err" && test -s "$T/hard.satm" &&
    awk -F'\t' 'NR == 2 { first = $3 } END { if (!($3 < first - 0.3)) { print "xent/token " first " -> " $3; exit 1 } }' \
        "$T/hard/train.log" &&
    sat-dump "$T/hard/checkpoint.satm" | jq -e '.config["train.hard"] == 1 and .config["train.baseline"] < 0' >/dev/null
}
check "sat-train --attention hard: the loss falls; the baseline is in the checkpoint" hard_trains
hard_resume() {
    local h=(--attention hard --hard-samples 2 --dropout 0.3)
    sat-train "${args[@]}" "${h[@]}" --epochs 3 -o "$T/h3.satm" --checkpoint "$T/h3" 2>/dev/null &&
    sat-train "${args[@]}" "${h[@]}" --epochs 2 -o "$T/h2.satm" --checkpoint "$T/h2" 2>/dev/null &&
    sat-train "${args[@]}" "${h[@]}" --epochs 3 -o "$T/h2.satm" --checkpoint "$T/h2" --resume 2>/dev/null &&
    is_equal "$(sat-dump "$T/h2/checkpoint.satm" | jq -r '[.weights_sha256, .config["train.baseline"]] | @tsv')" \
             "$(sat-dump "$T/h3/checkpoint.satm" | jq -r '[.weights_sha256, .config["train.baseline"]] | @tsv')"
}
check "hard attention: --resume reaches the weights and baseline of an uninterrupted run" hard_resume
check_bad "--resume of a soft checkpoint with --attention hard is refused" "another attention" \
    sat-train "${args[@]}" --attention hard --epochs 21 -o "$T/x.satm" --checkpoint "$T/soft" --resume
train_bad_attention() {
    sat-train "${args[@]}" --attention hardest -o "$T/x.satm" 2> "$T/ba.err"
    local rc=$?
    [ $rc -eq 2 ] || { echo "exit status $rc"; return 1; }
    grep -q "^sat-train: --attention: 'hardest' is not soft or hard" "$T/ba.err" || { cat "$T/ba.err"; return 1; }
}
check "sat-train: an --attention other than soft or hard is a usage error (exit 2)" train_bad_attention

# --- the recipe options: a warm start, the baselines, the learning-rate schedule ---
hard_from_soft() {
    sat-train "${args[@]}" --attention hard --init "$M" --epochs 1 -o "$T/hi.satm" --log "$T/hi.log" 2> "$T/hi.err" &&
    grep -q "initial weights from $M" "$T/hi.err" &&
    grep -q "expected-context baseline" "$T/hi.err" &&
    # started from the soft model's last weights, the first epoch's loss is
    # already below what the run from scratch reached after ten
    awk -F'\t' 'NR == FNR { if (FNR == 2) scratch = $3; next } FNR == 2 && !($3 < scratch) { print $3 " vs " scratch; exit 1 }' \
        "$T/hard/train.log" "$T/hi.log"
}
check "sat-train --init: hard attention starts from a soft model" hard_from_soft
check_bad "--init of a model with another vocabulary is refused" "another architecture" \
    sat-train "${args[@]}" --min-count 3 --init "$M" --epochs 1 -o "$T/x.satm"
check_bad "--init of a file that is no model is refused" "--init" \
    sat-train "${args[@]}" --init "$T/train.txt" --epochs 1 -o "$T/x.satm"
moving_baseline() {
    sat-train "${args[@]}" --attention hard --baseline moving --epochs 2 -o "$T/hm.satm" \
        --checkpoint "$T/hm" 2> "$T/hm.err" &&
    grep -q "moving-average baseline" "$T/hm.err" &&
    sat-dump "$T/hm/checkpoint.satm" | jq -e '.config["train.baseline"] < -1' >/dev/null
}
check "--baseline moving: one moving average of log p (far below 0)" moving_baseline
check_bad "a bad --baseline is a usage error" "not expected or moving" \
    sat-train "${args[@]}" --attention hard --baseline mean -o "$T/x.satm"
lr_decay() {
    sat-train "${args[@]}" --epochs 4 --lr-decay 0.5 -o "$T/lr.satm" --checkpoint "$T/lr" 2> "$T/lr.err" || return 1
    local gains
    gains=$(grep -c '(best)' "$T/lr.err")
    sat-dump "$T/lr/checkpoint.satm" |
        jq -e --argjson n $((4 - gains)) '(.config["train.lr"] - 2e-3 * pow(0.5; $n)) | fabs < 1e-9' >/dev/null
}
check "--lr-decay halves the rate after each epoch without a better dev BLEU-4" lr_decay

# --- sat-import --average: the mean of decoders' weights ---
average() {
    local w
    w() { sat-dump "$1" | jq -r .weights_sha256; }
    sat-import --average -o "$T/aa.satm" "$T/best.satm" "$T/best.satm" 2>/dev/null &&
    is_equal "$(w "$T/aa.satm")" "$(w "$T/best.satm")" || return 1
    # checkpoints too (their optimizer state left out), in either order
    local B=$T/hard/checkpoint.satm
    sat-import --average -o "$T/ab.satm" "$T/best.satm" "$B" 2>/dev/null &&
    sat-import --average -o "$T/ba.satm" "$B" "$T/best.satm" 2>/dev/null &&
    is_equal "$(w "$T/ab.satm")" "$(w "$T/ba.satm")" &&
    [ "$(w "$T/ab.satm")" != "$(w "$T/best.satm")" ] && [ "$(w "$T/ab.satm")" != "$(w "$B")" ] &&
    sat-dump "$T/ab.satm" | jq -e '(.tensors | length) == 18 and (.config | keys | all(startswith("train.") | not))' >/dev/null &&
    is_equal "$(sat-decode -m "$T/ab.satm" -f text "$T/one.sat" | wc -l)" 1
}
check "sat-import --average: A with A is A; A with B is B with A, a decoder without training state" average
sat-train "${args[@]}" --min-count 3 --epochs 1 -o "$T/v3.satm" 2>/dev/null
check_bad "--average of decoders with another vocabulary is refused" "another architecture" \
    sat-import --average -o "$T/x.satm" "$T/best.satm" "$T/hard.satm" "$T/v3.satm"
check_bad "--average of an encoder is refused" "not a decoder" \
    sat-import --average -o "$T/x.satm" "$T/best.satm" "$SAT_MODEL_DIR/mobilenet_v2_1.0_224_quant.satm"
check_bad "--average of one model is a usage error" "two or more" sat-import --average -o "$T/x.satm" "$T/best.satm"

# --- a kept features record comes before what the stage made of it, so a
# sink meets the thumbnail first: the whole pipeline works on a vanished file ---
thumbnail_pipeline() {
    local img=$T/gone.jpg stage
    cp "$F/images/$(head -1 "$T/train.txt")" "$img"
    sat-encode -q --stride 32 --thumbnail "$img" > "$T/thumb.sat" && rm "$img" || return 1
    for stage in "sat-decode -m $M" "sat-beam -m $M -k 2" "sat-attend -m $M -c dogs"; do
        sat-dump <($stage --keep-features -f msgpack "$T/thumb.sat") | jq -se 'map(.type) == ["features", "caption"]' >/dev/null || return 1
        is_equal "$($stage --keep-features -f msgpack "$T/thumb.sat" | sat-heatmap -o "$T/thumb/")" "$T/thumb/gone.png" || return 1
    done
}
check "decode, beam and attend --keep-features | sat-heatmap use the thumbnail of a vanished image" thumbnail_pipeline

check "sat-attend --help" sat-attend --help
check "sat-attend --version" sat-attend --version
