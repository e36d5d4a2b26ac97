#!/bin/bash
# Progress meters on a terminal (a pty from script(1)): never drawn for a
# quick single image, drawn with done/total, rate and ETA for longer work,
# erased at the end and before a message, silenced by -q, absent when
# stderr is not a terminal.  SAT_PROGRESS_DELAY=0 draws from the start.
. "$(dirname "$0")/lib.sh"

DOG=$IMAGES/dog.jpg
ERASE=$'\r\033[K'

# on_pty CMD: the terminal's bytes while CMD runs (its stdout/stderr on a pty).
on_pty() { script -qec "$1" /dev/null; }

single_image_silent() {
    local out
    out=$(SAT_PROGRESS_DELAY=0 on_pty "sat-encode '$DOG' > '$T/one.sat'") || return 1
    [ -z "$out" ] || { printf '%q\n' "$out"; return 1; }
    [ -s "$T/one.sat" ]
}
check "sat-encode of one image draws nothing on the terminal" single_image_silent

# The meter waits a second before it draws; under ASan the quick start can
# take longer than that, so this check waits 30 s (the output must still be
# the caption alone: no stray carriage returns, nothing from sat-encode).
quick_start_line() {
    local out
    out=$(SAT_PROGRESS_DELAY=30 on_pty "sat-encode '$DOG' | sat-beam") || return 1
    out=${out%$'\r'}
    case $out in
    "$DOG"$'\t'*[a-z]*) [[ $out != *$'\r'* && $out != *'sat-encode'* ]] || { printf '%q\n' "$out"; return 1; } ;;
    *) printf '%q\n' "$out"; return 1 ;;
    esac
}
check "sat-encode IMG | sat-beam on a terminal: the caption line alone" quick_start_line

encode_meter() {
    local out
    out=$(SAT_PROGRESS_DELAY=0 on_pty "sat-encode '$DOG' '$DOG' -o '$T/two.sat'") || return 1
    [[ $out == *"sat-encode: "[12]"/2 images, "*"/s, ETA "[0-9]*:[0-9][0-9]* ]] || { printf '%q\n' "$out"; return 1; }
    [[ $out == *"$ERASE" && $out != *$'\n'* ]] || { printf 'not erased: %q\n' "$out"; return 1; }
}
check "sat-encode: done/total, rate, ETA; erased at the end" encode_meter

files_from_meter() {
    printf '%s\n' "$DOG" "$DOG" "$DOG" > "$T/list"
    local out
    out=$(SAT_PROGRESS_DELAY=0 on_pty "sat-encode -T '$T/list' -o '$T/three.sat'") || return 1
    [[ $out == *"sat-encode: "[123]" images, "*"/s, "*"%, ETA "* ]] || { printf '%q\n' "$out"; return 1; }
}
check "sat-encode --files-from: share of the list and ETA" files_from_meter

message_erases_meter() {
    printf 'not an image' > "$T/bad.jpg"
    local out
    out=$(SAT_PROGRESS_DELAY=0 on_pty "sat-encode '$DOG' '$T/bad.jpg' '$DOG' -o '$T/x.sat'")
    [[ $out == *"${ERASE}sat-encode: $T/bad.jpg: "* ]] || { printf '%q\n' "$out"; return 1; }
}
check "a warning erases the meter first: it starts its own line" message_erases_meter

stage_meter() {
    local p out
    for p in sat-beam sat-decode "sat-attend -c 'a dog runs'"; do
        out=$(SAT_PROGRESS_DELAY=0 on_pty "$p -f msgpack '$T/two.sat' > '$T/${p%% *}.out'") || return 1
        p=${p%% *}
        [[ $out == *"$p: "[12]" images, "*"/s, "*"%, ETA "* && $out == *"$ERASE" ]] \
            || { printf '%s: %q\n' "$p" "$out"; return 1; }
        [ -s "$T/$p.out" ] || return 1
    done
}
check "sat-beam, sat-decode, sat-attend: images, share of the input, ETA" stage_meter

quiet() {
    local out
    out=$(SAT_PROGRESS_DELAY=0 on_pty "sat-encode -q '$DOG' '$DOG' -o '$T/q.sat'; sat-beam -q -f msgpack '$T/two.sat' > /dev/null")
    [ -z "$out" ] || { printf '%q\n' "$out"; return 1; }
}
check "-q: no meter" quiet

not_a_terminal() {
    SAT_PROGRESS_DELAY=0 sat-encode "$DOG" "$DOG" -o "$T/n.sat" 2> "$T/n.err" || return 1
    SAT_PROGRESS_DELAY=0 sat-beam -f msgpack "$T/two.sat" 2>> "$T/n.err" > /dev/null || return 1
    [ ! -s "$T/n.err" ] || { cat "$T/n.err"; return 1; }
}
check "no meter when stderr is not a terminal" not_a_terminal
