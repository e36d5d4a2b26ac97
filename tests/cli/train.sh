#!/bin/bash
# sat-train and sat-decode on a tiny real data set: 40 Flickr8k training
# images and 10 dev images at output stride 32 (7x7), a tiny decoder.
# Repeatability, kill -9 and --resume, and the bad inputs of the decoder issue.
. "$(dirname "$0")/lib.sh"
flickr8k_sliver 40 10
args=(--captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt"
      --dev "$T/dev.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2
      --patience 1000 -q)
sha() { sat-dump "$1" | jq -r .weights_sha256; }

sat-train "${args[@]}" --epochs 12 -o "$T/a.satm" --checkpoint "$T/runA" 2> "$T/a.err"
check "sat-train writes a model and a checkpoint" test -s "$T/a.satm" -a -s "$T/runA/checkpoint.satm"

log_lines() {
    is_equal "$(wc -l < "$T/runA/train.log")" 13 &&
    awk -F'\t' 'NR == 1 && $7 != "bleu4_x100" { exit 1 } NR > 1 && (NF != 8 || $4 < 0 || $4 > 100) { exit 1 }' "$T/runA/train.log"
}
check "one tab-separated log line per epoch" log_lines

loss_falls() {
    awk -F'\t' 'NR == 2 { first = $3 } END { if (!($3 < first)) { print "xent/token " first " -> " $3; exit 1 } }' \
        "$T/runA/train.log"
}
check "the training loss falls" loss_falls

repeatable() {
    sat-train "${args[@]}" --epochs 12 -o "$T/b.satm" 2>/dev/null &&
    is_equal "$(sha "$T/b.satm")" "$(sha "$T/a.satm")"
}
check "the same seed gives the same weights" repeatable

max_vocab() {
    sat-train "${args[@]}" --epochs 1 --max-vocab 20 -o "$T/v.satm" 2> "$T/v.err" &&
    grep -q "vocabulary 20\$" "$T/v.err" &&
    is_equal "$(sat-train "${args[@]}" --epochs 1 --max-vocab 3 -o "$T/v3.satm" 2>&1 >/dev/null | head -1 | cut -c1-22)" \
        "sat-train: --max-vocab" && [ ! -e "$T/v3.satm" ]
}
check "--max-vocab bounds the vocabulary; below the special words it is refused" max_vocab

other_seed() {
    sat-train "${args[@]}" --epochs 2 --seed 7 -o "$T/c.satm" 2>/dev/null &&
    sat-train "${args[@]}" --epochs 2 -o "$T/d.satm" 2>/dev/null &&
    [ "$(sha "$T/c.satm")" != "$(sha "$T/d.satm")" ]
}
check "another seed gives other weights" other_seed

# kill -9 in the middle of the run (checkpoints after every batch), then --resume
kill_and_resume() {
    rm -rf "$T/runK"
    sat-train "${args[@]}" --epochs 12 -o "$T/k.satm" --checkpoint "$T/runK" --checkpoint-every 1 2>/dev/null &
    local pid=$! i
    for i in $(seq 1 400); do
        [ -s "$T/runK/checkpoint.satm" ] && break
        sleep 0.01
    done
    sleep 0.3
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ -s "$T/runK/checkpoint.satm" ] || { echo "no checkpoint before the kill"; return 1; }
    sat-train "${args[@]}" --epochs 12 -o "$T/k.satm" --checkpoint "$T/runK" --resume 2>/dev/null &&
    is_equal "$(sha "$T/runK/checkpoint.satm")" "$(sha "$T/runA/checkpoint.satm")" &&
    is_equal "$(sha "$T/k.satm")" "$(sha "$T/a.satm")"
}
check "kill -9 then --resume reaches the same weights as an uninterrupted run" kill_and_resume

# --- one run per checkpoint directory; outputs checked before training ---
locked() {
    rm -rf "$T/runL"
    sat-train "${args[@]}" --epochs 12 -o "$T/l1.satm" --checkpoint "$T/runL" 2>/dev/null &
    local pid=$! i
    for i in $(seq 1 500); do [ -s "$T/runL/lock" ] && break; sleep 0.01; done
    sat-train "${args[@]}" --epochs 12 -o "$T/l2.satm" --checkpoint "$T/runL" 2> "$T/l2.err"
    local rc=$?
    wait $pid || { echo "the first run failed"; return 1; }
    [ $rc -eq 1 ] && grep -q "^sat-train: $T/runL: another sat-train (pid $pid) is using this checkpoint directory" "$T/l2.err" &&
    [ ! -e "$T/l2.satm" ] && is_equal "$(sha "$T/runL/checkpoint.satm")" "$(sha "$T/runA/checkpoint.satm")"
}
check "a second run on a checkpoint directory in use is refused; the first goes on" locked
check_bad "an -o in a missing directory fails before the first epoch" "nodir/m.satm" \
    sat-train "${args[@]}" --epochs 12 -o "$T/nodir/m.satm"
check "... and before the data is loaded" bash -c "! grep -q 'training captions' '$T/err'"
resume_seed() {
    sat-train "${args[@]}" --epochs 12 --seed 9 -o "$T/r.satm" --checkpoint "$T/runA" --resume 2> "$T/r.err" &&
    grep -q "was made with --seed 1, whose random state goes on (--seed 9 is not used)" "$T/r.err"
}
check "--resume with another --seed says which seed goes on" resume_seed
check_bad "--resume of a cross-entropy checkpoint with --objective scst is refused" "another --objective" \
    sat-train "${args[@]}" --epochs 13 --objective scst -o "$T/r2.satm" --checkpoint "$T/runA" --resume

# --- self-critical training on the same sliver, from the model above ---
scst() { sat-train "${args[@]}" --init "$T/a.satm" --objective scst --lr 1e-3 --scst-samples 4 "$@"; }
scst_runs() {
    scst --epochs 2 -o "$T/s1.satm" --checkpoint "$T/runS" 2> "$T/s1.err" &&
    grep -q "self-critical: 4 captions per image, CIDEr-D over the references of 40 train images" "$T/s1.err" &&
    is_equal "$(grep -Ec 'train CIDEr-D greedy [0-9.]+ sampled [0-9.]+$' "$T/s1.err")" 2 &&
    is_equal "$(sat-decode -m "$T/s1.satm" -f text "$T/feats.sat" | wc -l)" 50 &&
    [ "$(sha "$T/runS/checkpoint.satm")" != "$(sha "$T/a.satm")" ]
}
check "--objective scst fine-tunes a model on its sampled captions' CIDEr-D" scst_runs
scst_resume() {
    # the same weights again from the same seed, and from one epoch then --resume
    scst --epochs 2 -o "$T/s2.satm" --checkpoint "$T/runS2" 2>/dev/null &&
    is_equal "$(sha "$T/runS2/checkpoint.satm")" "$(sha "$T/runS/checkpoint.satm")" &&
    scst --epochs 1 -o "$T/s3.satm" --checkpoint "$T/runS3" 2>/dev/null &&
    scst --epochs 2 -o "$T/s3.satm" --checkpoint "$T/runS3" --resume 2>/dev/null &&
    is_equal "$(sha "$T/runS3/checkpoint.satm")" "$(sha "$T/runS/checkpoint.satm")"
}
check "--objective scst is repeatable, and --resume carries it over" scst_resume
scst_mean() {
    scst --epochs 1 --scst-baseline mean -o "$T/s5.satm" 2> "$T/s5.err" &&
    grep -q "mean baseline" "$T/s5.err" &&
    [ "$(sha "$T/s5.satm")" != "$(sha "$T/a.satm")" ]
}
check "--scst-baseline mean trains too" scst_mean
check_bad "--scst-baseline mean with one sample is a usage error" "needs --scst-samples 2" \
    scst --scst-baseline mean --scst-samples 1 -o "$T/s6.satm"
scst_hard() {
    # the samples draw locations: other weights than the same run with the expected context, repeatably
    scst --epochs 1 --scst-baseline mean --attention hard -o "$T/h1.satm" 2> "$T/h1.err" &&
    grep -q "mean baseline, cross-entropy weight 0; hard attention: a location drawn per word" "$T/h1.err" &&
    is_equal "$(grep -Ec 'train CIDEr-D greedy [0-9.]+ sampled [0-9.]+$' "$T/h1.err")" 1 &&
    scst --epochs 1 --scst-baseline mean --attention hard -o "$T/h2.satm" 2>/dev/null &&
    is_equal "$(sha "$T/h2.satm")" "$(sha "$T/h1.satm")" &&
    [ "$(sha "$T/h1.satm")" != "$(sha "$T/s5.satm")" ] && [ "$(sha "$T/h1.satm")" != "$(sha "$T/a.satm")" ] &&
    is_equal "$(sat-decode -m "$T/h1.satm" --attention hard-argmax -f text "$T/feats.sat" | wc -l)" 50
}
check "--objective scst with --attention hard draws a location per word and trains" scst_hard
check_bad "an unknown --objective is a usage error" "'cider' is not xent or scst" \
    sat-train "${args[@]}" --objective cider -o "$T/s4.satm"

check_bad "--resume with a checkpoint of another architecture is refused" "another architecture" \
    sat-train "${args[@]}" --hidden 24 --epochs 13 -o "$T/x.satm" --checkpoint "$T/runA" --resume

# --- sat-decode ---
decode_text() {
    # (a caption may be empty: the tiny model may say <end> at once)
    local n
    n=$(sat-decode -m "$T/a.satm" -f text "$T/feats.sat" | awk -F'\t' 'NF == 2 && $1 ~ /\.jpg$/' | wc -l)
    is_equal "$n" 50 &&
    [ "$(sat-decode -m "$T/a.satm" -f text "$T/feats.sat" | awk -F'\t' '$2 != ""' | wc -l)" -ge 45 ]
}
check "sat-decode -f text: one id<TAB>caption line per image" decode_text

decode_records() {
    sat-decode -m "$T/a.satm" "$T/feats.sat" | sat-dump | jq -se '
        length == 50 and all(.[]; .type == "caption" and (.tokens | length) == (.words | length)
            and .logprob < 0 and .method == "greedy" and .model.sha256 != null)
        and all(.[] | select(.words | length > 0); .alpha.shape[1] == 7 and .alpha.shape[2] == 7
            and .alpha.shape[0] == (.words | length))' >/dev/null
}
check "sat-decode writes caption records with a 7x7 alpha per word" decode_records

alpha_sums_to_one() {
    sat-decode -m "$T/a.satm" "$T/feats.sat" | head -c 100000 | sat-dump --full 2>/dev/null |
        jq -e 'select(.words | length > 0) | .alpha as $a | [range(0; (.words | length))] |
               map($a[. * 49:(. + 1) * 49] | add) | all(. > 0.999 and . < 1.001)' >/dev/null
}
check "each word's attention sums to 1" alpha_sums_to_one

sampling_seeded() {
    local a b c
    a=$(sat-decode -m "$T/a.satm" -f text --sample --seed 3 "$T/feats.sat" | md5sum)
    b=$(sat-decode -m "$T/a.satm" -f text --sample --seed 3 "$T/feats.sat" | md5sum)
    c=$(sat-decode -m "$T/a.satm" -f text --sample --seed 4 "$T/feats.sat" | md5sum)
    [ "$a" = "$b" ] && [ "$a" != "$c" ]
}
check "sampling is repeatable by seed" sampling_seeded

pass_through() {
    printf '\x82\xa4type\xa4note\xa1v\x01' > "$T/note.sat"
    cat "$T/note.sat" "$T/feats.sat" | sat-decode -m "$T/a.satm" | sat-dump | head -1 | jq -e '.type == "note"' >/dev/null
}
check "sat-decode passes other records through" pass_through

keep_features() {
    is_equal "$(sat-decode -m "$T/a.satm" --keep-features "$T/feats.sat" | sat-dump |
        jq -sc 'group_by(.type) | map([.[0].type, length])')" '[["caption",50],["features",50]]'
}
check "--keep-features passes the features through too" keep_features

sat-encode -q "$IMAGES/dog.jpg" > "$T/dog16.sat"
check_bad "features of another grid are refused" "14x14x1280 but the decoder takes L=49" \
    sat-decode -m "$T/a.satm" "$T/dog16.sat"

nan_record() {
    # f32 features with a NaN in the middle, then a good record: one error, one caption
    python3 - "$T/nan.sat" <<'PY'
import struct, sys
def s(x): b = x.encode(); return bytes([0xa0 | len(b)]) + b
def rec(values):
    data = struct.pack("<%df" % len(values), *values)
    m = [("type", s("features")), ("v", b"\x01"), ("id", s("nan.jpg")), ("h", b"\x07"), ("w", b"\x07"),
         ("c", b"\xcd\x05\x00"), ("dtype", s("f32")), ("data", b"\xc6" + struct.pack(">I", len(data)) + data)]
    return bytes([0x80 | len(m)]) + b"".join(s(k) + v for k, v in m)
v = [0.5] * (49 * 1280)
bad = list(v); bad[1000] = float("nan")
open(sys.argv[1], "wb").write(rec(bad) + rec(v))
PY
    sat-decode -m "$T/a.satm" -f text "$T/nan.sat" > "$T/nan.out" 2> "$T/nan.err" && return 1
    grep -q "NaN or Inf" "$T/nan.err" && is_equal "$(wc -l < "$T/nan.out")" 1
}
check "a features record with NaN is an error for that record; the next is captioned" nan_record

check_bad "a missing model is refused before any work" "nope.satm" sat-decode -m "$T/nope.satm" "$T/feats.sat"
check_bad "an encoder model is not a decoder" "not a decoder" \
    sat-decode -m "$SAT_MODEL_DIR/mobilenet_v2_1.0_224_quant.satm" "$T/feats.sat"
check_bad "sat-train without data is a usage error naming what is missing" \
    "missing --captions, --features, --train \(--captions, --features, --train and -o are required\)" \
    sat-train -o "$T/y.satm"

# issue 12: a try without --dev (no model selection, and the messages say so)
no_dev() {
    local plain=()
    for a in "${args[@]}"; do [ "$a" = --dev ] || [ "$a" = "$T/dev.txt" ] || plain+=("$a"); done
    sat-train "${plain[@]}" --epochs 3 -o "$T/nodev.satm" --log "$T/nodev.log" 2> "$T/nodev.err" || return 1
    grep -q "no --dev: no model selection and no early stopping" "$T/nodev.err" || return 1
    grep -q "the model of epoch 3 is in $T/nodev.satm (no --dev: not selected)" "$T/nodev.err" || return 1
    ! grep -q "dev BLEU" "$T/nodev.err" || return 1
    # the BLEU columns of the log are NA; the model decodes
    awk -F'\t' 'NR > 1 && ($4 != "NA" || $7 != "NA") { exit 1 } END { exit NR != 4 }' "$T/nodev.log" || return 1
    [ -n "$(sat-decode -m "$T/nodev.satm" -f text "$T/feats.sat" | head -1 | cut -f2)" ]
}
check "sat-train without --dev: trains, writes the last epoch's model, says it was not selected" no_dev
check "sat-train --help" sat-train --help
check "sat-train --version" sat-train --version
check "sat-decode --help" sat-decode --help
check "sat-decode --version" sat-decode --version
