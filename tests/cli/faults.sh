#!/bin/bash
# Faults every stage must survive (issue: robustness): a full disk, a stream
# cut inside a record, a reader that goes away, an unusable model.  On the
# shipped decoder and two real photos.
. "$(dirname "$0")/lib.sh"
sat-encode -q "$IMAGES/dog.jpg" "$IMAGES/horses.jpg" > "$T/two.sat"
size=$(stat -c %s "$T/two.sat")

for stage in "sat-decode -f msgpack" "sat-beam -f msgpack" "sat-attend -f msgpack -c dogs" "sat-dump"; do
    check_bad "${stage%% *} > /dev/full: a write error, non-zero exit" "stdout: write error" \
        bash -c "$stage '$T/two.sat' > /dev/full"
done
check_bad "sat-eval > /dev/full: a write error, non-zero exit" "stdout" \
    bash -c "printf '1000268201_693b08cb0e.jpg\\ta child in a pink dress\\n' |
             sat-eval --no-meteor -r '$SAT_SHARED/data/flickr8k/Flickr8k.token.txt' > /dev/full"

# the second record cut in half: the first is captioned, the cut one named by index
head -c $((size * 3 / 4)) "$T/two.sat" > "$T/cut.sat"
for stage in sat-decode sat-beam "sat-attend -c dogs"; do
    cut_stream() {
        local out
        out=$($stage -f text "$T/cut.sat" 2> "$T/cut.err")
        [ $? -ne 0 ] && is_equal "$(wc -l <<<"$out")" 1 && grep -q "dog.jpg" <<<"$out" &&
            grep -Eq "^sat-[a-z]+: $T/cut.sat: record 1 at byte [0-9]+: truncated" "$T/cut.err" &&
            is_equal "$(wc -l < "$T/cut.err")" 1
    }
    check "${stage%% *}: a stream cut inside record 1 is reported by index, record 0 still done" cut_stream
done

quiet_sigpipe() {
    local prog
    for prog in sat-decode sat-beam sat-dump; do
        # a reader that closes at once: no message, no crash (exit 0 or SIGPIPE's 141)
        bash -c "$prog '$T/two.sat' 2> '$T/pipe.err' | head -c 1 > /dev/null; exit \${PIPESTATUS[0]}"
        case $? in 0|141) ;; *) echo "$prog: exit $?"; return 1 ;; esac
        [ ! -s "$T/pipe.err" ] || { echo "$prog: $(cat "$T/pipe.err")"; return 1; }
    done
}
check "a closed reader ends decode, beam and dump quietly" quiet_sigpipe

head -c 1000 "${SAT_MODEL_DIR:-$SAT_BIN/../models}/sat-decoder.satm" > "$T/cut.satm"
for model in "$T/cut.satm" "$T" /nonexistent.satm; do
    check_bad "an unusable model ($(basename "$model")) is refused before any input is read" "$(basename "$model")" \
        bash -c "sat-decode -m '$model' < /dev/zero"
done

# --- inputs of the wrong kind (issue 14, items 1, 4, 6 and 9) ---

# fails_once PATTERN CMD...: CMD exits 1 with exactly one line on stderr,
# "sat-xxx: ...PATTERN" (the old reader wrote a line per byte).
fails_once() {
    local pattern=$1 rc
    shift
    "$@" > "$T/once.out" 2> "$T/once.err"
    rc=$?
    [ $rc -eq 1 ] || { echo "exit status $rc"; head -3 "$T/once.err"; return 1; }
    is_equal "$(wc -l < "$T/once.err")" 1 || { head -3 "$T/once.err"; return 1; }
    grep -Eq "^sat-[a-z]+: .*$pattern" "$T/once.err" || { cat "$T/once.err"; return 1; }
}

# A flipped weight byte passes the load-time checks (the programs skip the
# hash for start-up time); sat-dump --verify names the file and refuses it.
cp "${SAT_MODEL_DIR:-$SAT_BIN/../models}/sat-decoder.satm" "$T/flipped.satm"
printf '\x5a' | dd of="$T/flipped.satm" bs=1 seek=5000000 conv=notrunc status=none
flipped_weights() {
    sat-encode -q "$IMAGES/dog.jpg" | sat-decode -m "$T/flipped.satm" -f text > /dev/null &&
        fails_once "flipped.satm: params do not match weights_sha256 \(corrupt file\)$" \
            sat-dump --verify "$T/flipped.satm" && [ ! -s "$T/once.out" ]
}
check "a model with a flipped weight byte: loaded as it is, refused by sat-dump --verify" flipped_weights

check "zero bytes into sat-beam: one line, 'not a sat stream', not one per byte" \
    fails_once "stdin: not a sat stream \(it looks like zero bytes\)$" \
    bash -c "head -c 10000 /dev/zero | sat-beam -f text"
check "text into sat-dump: one line, 'it looks like text'" \
    fails_once "stdin: not a sat stream \(it looks like text\)$" bash -c "echo hello | sat-dump"
for stage in sat-decode sat-beam "sat-attend -c dogs" "sat-heatmap -o $T/never.png" sat-dump; do
    check "${stage%% *} on a JPEG: one line that says to run sat-encode" \
        fails_once "$IMAGES/dog.jpg: not a sat stream \(it looks like a JPEG image: run sat-encode first\)$" \
        $stage "$IMAGES/dog.jpg"
done
check "sat-dump on a PNG: one line that says to run sat-encode" \
    fails_once "not a sat stream \(it looks like a PNG image: run sat-encode first\)$" sat-dump "$IMAGES/cat.png"
check_bad "sat-eval on a PNG: says to run sat-encode" "cat.png: not a sat stream \(it looks like a PNG image: run sat-encode first\)$" \
    sat-eval --no-meteor -r "$SAT_SHARED/data/flickr8k/Flickr8k.token.txt" "$IMAGES/cat.png"
other_inputs_go_on() {
    fails_once "dog.jpg: not a sat stream" sat-beam -f text "$IMAGES/dog.jpg" "$T/two.sat" &&
        is_equal "$(wc -l < "$T/once.out")" 2
}
check "sat-beam: the inputs after one that is no stream are still captioned" other_inputs_go_on

# garbage between the records of a real stream: one line, the first bad
# record and the bytes skipped; the records on both sides are read
{ cat "$T/two.sat"; head -c 100000 /dev/zero; printf 'a note, h\xc3\xa9llo\n'; cat "$T/two.sat"; } > "$T/junk.sat"
for stage in "sat-beam -f text" "sat-decode -f text" "sat-attend -f text -c dogs"; do
    check "${stage%% *}: garbage inside a stream is one line with the bytes skipped" \
        fails_once "junk.sat: record 2 at byte $size: not a map \(.*\); 100015 bytes skipped, up to the next record, at byte $((size + 100015))$" \
        $stage "$T/junk.sat"
    check "${stage%% *}: the records after garbage are read" is_equal "$(wc -l < "$T/once.out")" 4
done
dump_after_junk() {
    fails_once "100015 bytes skipped" sat-dump "$T/junk.sat" && is_equal "$(jq -r .id < "$T/once.out" | wc -l)" 4
}
check "sat-dump: garbage inside a stream is one line, the four records are dumped" dump_after_junk

# a record nested deeper than 32 levels is skipped like any bad record
sat-encode -q "$IMAGES/dog.jpg" > "$T/one.sat"
{ cat "$T/one.sat"; printf '\x82\xa4type\xa4deep\xa1d'; head -c 40 /dev/zero | tr '\0' '\221'; printf '\x01'
  cat "$T/one.sat"; } > "$T/deep.sat"
for stage in "sat-beam -f text" "sat-decode -f text" "sat-attend -f text -c dogs" sat-dump; do
    deep_skipped() {
        fails_once "deep.sat: record 1 at byte [0-9]+: nested deeper than 32 levels$" $stage "$T/deep.sat" &&
            is_equal "$(wc -l < "$T/once.out")" 2
    }
    check "${stage%% *}: a record nested too deep is skipped, the record after it read" deep_skipped
done

# non-regular inputs are looked at before they are read whole: the writer
# into a FIFO or pipe is cut off after the first bytes
mkfifo "$T/fifo1" "$T/fifo2"
cut_off() { # cut_off FIFO...: each writer was stopped (SIGPIPE or EPIPE), not done
    local f
    for f in "$@"; do [ "$(cat "$f.status")" != 0 ] || { echo "$f was read whole"; return 1; }; done
}
feed() { (head -c 16777216 /dev/zero 2> /dev/null > "$1"; echo $? > "$1.status") & }
encode_fifos() {
    local errs
    feed "$T/fifo1"; feed "$T/fifo2"
    errs=$(sat-encode -q -j 2 "$T/fifo1" "$T/fifo2" 2>&1 > /dev/null)
    wait
    is_equal "$(grep -Ec "^sat-encode: $T/fifo[12]: not a JPEG, PNG or netpbm image \(it looks like zero bytes\)$" <<<"$errs")" 2 &&
        cut_off "$T/fifo1" "$T/fifo2"
}
check "sat-encode -j 2 FIFO FIFO of zero bytes: refused from the first bytes, not read whole" encode_fifos
model_fifo() {
    feed "$T/fifo1"
    fails_once "model file $T/fifo1: not a sat model \(it looks like zero bytes\)$" sat-beam -m "$T/fifo1" "$T/one.sat"
    local rc=$?
    wait
    [ $rc -eq 0 ] && cut_off "$T/fifo1"
}
check "sat-beam -m FIFO of zero bytes: refused from the first bytes, not read whole" model_fifo
encode_pipe() {
    local status
    status=$(head -c 16777216 /dev/zero 2> /dev/null | sat-encode -q - 2> "$T/pipe.err"; echo "${PIPESTATUS[*]}")
    [ "${status% *}" != 0 ] && is_equal "${status#* }" 1 && grep -q "^sat-encode: stdin: not a JPEG, PNG or netpbm image (it looks like zero bytes)$" "$T/pipe.err"
}
check "sat-encode - with zero bytes on a pipe: refused from the first bytes" encode_pipe
check "sat-encode: a model of the wrong kind is named for what it looks like" \
    fails_once "not a sat model \(it looks like a JPEG image\)$" sat-encode -q -m "$IMAGES/dog.jpg" "$IMAGES/dog.jpg"
check "sat-encode: a sat stream given as an image is named for what it is" \
    fails_once "one.sat: not a JPEG, PNG or netpbm image \(it looks like a sat stream or model file\)$" sat-encode -q "$T/one.sat"

# accurate messages for ids and -T lines
patch_id() { python3 -c 'import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d.replace(b"\xa5a_X_b", b"\xa5a\0X_b"))'; }
sat-encode -q --id a_X_b - < "$IMAGES/dog.jpg" > "$T/idx.sat"
patch_id < "$T/idx.sat" > "$T/idnul.sat"
check "sat-beam: an id with a NUL byte is said to have one" \
    fails_once "record 0: features record: 'id' contains a NUL byte$" sat-beam -f text "$T/idnul.sat"
sat-beam < "$T/idx.sat" | patch_id > "$T/capnul.sat"
check "sat-heatmap: a caption id with a NUL byte is said to have one" \
    fails_once "record 0: caption: 'id' contains a NUL byte$" sat-heatmap -o "$T/nul.png" "$T/capnul.sat"
{ cat "$T/idx.sat"; sat-beam < "$T/idx.sat" | patch_id; } > "$T/featcapnul.sat"
check "sat-attend: a caption id with a NUL byte is said to have one" \
    fails_once "record 1: caption record: 'id' contains a NUL byte$" sat-attend -f text "$T/featcapnul.sat"
check "sat-encode -T: a line with a NUL byte is named by its line number" \
    fails_once "stdin:2: a NUL byte in the line \(no file name has one\); line skipped$" \
    bash -c "printf '%s\n\0x.jpg\n' '$IMAGES/dog.jpg' | sat-encode -q -T - | sat-dump > /dev/null; exit \${PIPESTATUS[1]}"
blank_lines() {
    local out
    out=$(printf ' \n%s\n\t \n\n' "$IMAGES/dog.jpg" | sat-encode -q -T - 2> "$T/blank.err" | sat-dump | jq -r .id) &&
        is_equal "$out" "$IMAGES/dog.jpg" && is_equal "$(cat "$T/blank.err")" ""
}
check "sat-encode -T: lines of white space only are skipped like empty ones" blank_lines
