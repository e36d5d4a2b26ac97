#!/bin/bash
# import.sh — sat-import on the real MobileNetV2 file and on bad inputs.
. "$(dirname "$0")/lib.sh"

TFLITE=$SAT_SHARED/models/mobilenet_v2_1.0_224_quant.tflite
LABELS=$SAT_SHARED/models/imagenet_labels.txt

check "sat-import --help" sat-import --help
check "sat-import --version" sat-import --version

# The real model imports with labels; one summary line on stderr.
import_works() {
    sat-import --labels "$LABELS" -o "$T/m.satm" "$TFLITE" 2>"$T/log" || return 1
    is_equal "$(wc -l <"$T/log")" 1 && grep -q '66 ops' "$T/log" && grep -q '1001 labels' "$T/log" &&
        [ "$(stat -c %s "$T/m.satm")" -gt 13000000 ]
}
check "imports MobileNetV2 with labels" import_works

# --f16 halves the params; --name is used.
import_f16() {
    sat-import --f16 --name enc -o "$T/h.satm" "$TFLITE" 2>"$T/log" || return 1
    grep -q '^sat-import: enc: ' "$T/log" &&
        [ "$(stat -c %s "$T/h.satm")" -lt 7500000 ] && [ "$(stat -c %s "$T/h.satm")" -gt 6500000 ]
}
check "import --f16 --name" import_f16

# refuses NAME PATTERN ARGS...: a clean one-line error and no output file
# (nor a leftover temp file) in the output's directory.
refuses() {
    local name=$1 pattern=$2
    shift 2
    rm -rf "$T/bad" && mkdir "$T/bad"
    check_bad "$name" "$pattern" sat-import "$@" -o "$T/bad/out.satm"
    check "$name: one line" is_equal "$(wc -l <"$T/err")" 1
    check "$name: no output" is_equal "$(ls -A "$T/bad")" ""
}

head -c 1000000 "$TFLITE" >"$T/truncated.tflite"
head -n 1000 "$LABELS" >"$T/labels1000.txt"
refuses "refuses a text file" "neither a TensorFlow Lite file .* nor a sat model" "$SAT_SHARED/README.md"
refuses "refuses a truncated .tflite" "malformed flatbuffer" "$T/truncated.tflite"
refuses "refuses a nonexistent path" "No such file" "$T/missing.tflite"
refuses "refuses a wrong number of labels" "1000 labels, but the model has 1001 classes" \
    --labels "$T/labels1000.txt" "$TFLITE"

# A failed import leaves an existing output file as it was.
keeps_old_output() {
    echo old >"$T/keep.satm"
    ! sat-import -o "$T/keep.satm" "$SAT_SHARED/README.md" 2>/dev/null && is_equal "$(cat "$T/keep.satm")" old
}
check "a failed import keeps the old output" keeps_old_output

bad_option() {
    sat-import --bogus 2>"$T/log"
    is_equal $? 2 && grep -q "unrecognized option '--bogus'" "$T/log"
}
check "a bad option exits 2" bad_option

# --- a sat model as input: a tiny decoder (20 Flickr8k images at output
# stride 32, E=16 H=32 A=16, two seconds of training) rewritten as f16 ---
F=$SAT_SHARED/data/flickr8k
head -20 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
sed "s|^|$F/images/|" "$T/train.txt" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
    --dev "$T/train.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2 --lr 0.01 \
    --epochs 20 --patience 1000 --threads 1 -q -o "$T/dec.satm" 2>/dev/null

decoder_f16() {
    sat-import --f16 -o "$T/dec16.satm" "$T/dec.satm" 2>"$T/log" || return 1
    grep -Eq '^sat-import: sat-decoder: decoder, [0-9]+ params \(f16\), [0-9]+ words' "$T/log" &&
        [ "$(stat -c %s "$T/dec16.satm")" -lt "$(( $(stat -c %s "$T/dec.satm") * 6 / 10 ))" ]
}
check "a decoder model is rewritten with f16 parameters" decoder_f16

# all but the stored parameters is as it was: config, vocab, tensors, source
same_contents() {
    local keep='del(.weights_sha256, .dtype, .params)'
    is_equal "$(sat-dump "$T/dec16.satm" | jq -c "$keep")" "$(sat-dump "$T/dec.satm" | jq -c "$keep")" &&
        is_equal "$(sat-dump "$T/dec16.satm" | jq -r .dtype)" f16
}
check "the f16 decoder keeps config, vocabulary, tensors and provenance" same_contents

check "rewriting an f32 model as f32 gives the same bytes" \
    bash -c 'sat-import -o "$1/same.satm" "$1/dec.satm" 2>/dev/null && cmp "$1/same.satm" "$1/dec.satm"' _ "$T"
check "f16 -> f32 -> f16 gives the same bytes" \
    bash -c 'sat-import -o "$1/back.satm" "$1/dec16.satm" 2>/dev/null &&
             sat-import --f16 -o "$1/again.satm" "$1/back.satm" 2>/dev/null && cmp "$1/again.satm" "$1/dec16.satm"' _ "$T"

# the loader reads f16 parameters: the same greedy captions, log-probabilities within 1%
same_captions() {
    local a b
    a=$(sat-decode -m "$T/dec.satm" -f text "$T/feats.sat") && b=$(sat-decode -m "$T/dec16.satm" -f text "$T/feats.sat") &&
        is_equal "$b" "$a" && [ "$(grep -c . <<<"$a")" -eq 20 ] || return 1
    paste <(sat-decode -m "$T/dec.satm" "$T/feats.sat" | sat-dump | jq .logprob) \
          <(sat-decode -m "$T/dec16.satm" "$T/feats.sat" | sat-dump | jq .logprob) |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 0.01 * -$1)) { print "logprob " $1 " vs " $2; bad = 1 } }
             END { exit bad }'
}
check "the f16 decoder gives the same greedy captions" same_captions

head -c 5000 "$T/dec.satm" >"$T/truncated.satm"
refuses "refuses a truncated sat model" "model file .*truncated.satm" "$T/truncated.satm"
refuses "refuses a sat stream that is not a model" "not a sat model \(type is 'features'\)" "$T/feats.sat"
refuses "refuses --labels for a decoder" "a decoder model has no classes to label" --labels "$LABELS" "$T/dec.satm"
