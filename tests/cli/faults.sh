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
