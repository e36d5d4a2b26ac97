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
refuses "refuses a text file" "not a TensorFlow Lite file" "$SAT_SHARED/README.md"
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
