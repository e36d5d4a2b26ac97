#!/bin/bash
# Every program's command line: --help, --version, and one error line plus
# the --help hint (exit 2, nothing on stdout) for an unknown option, a
# missing argument and an argument given to a flag; a man page each.
. "$(dirname "$0")/lib.sh"

PROGRAMS="sat-attend sat-beam sat-decode sat-dump sat-encode sat-eval sat-heatmap sat-import sat-train sat-vocab"

# usage_error PROG EXPECTED ARGS...: exit 2, stdout empty, stderr exactly
# "PROG: EXPECTED" and "Try 'PROG --help'.".
usage_error() {
    local prog=$1 expected=$2 rc
    shift 2
    "$prog" "$@" > "$T/out" 2> "$T/err" < /dev/null
    rc=$?
    is_equal "$rc" 2 || return 1
    [ ! -s "$T/out" ] || { echo "stdout not empty"; return 1; }
    is_equal "$(cat "$T/err")" "$prog: $expected"$'\n'"Try '$prog --help'." || return 1
}

help_and_version() {
    local prog=$1
    "$prog" --help > "$T/help" || return 1
    grep -q "^Usage: $prog " "$T/help" || { head -2 "$T/help"; return 1; }
    is_equal "$("$prog" --version)" "$prog (sat) $(cat "$(dirname "$0")/../../VERSION")"
}

man_page() {
    local page=$(dirname "$0")/../../man/$1.1
    [ -s "$page" ] || { echo "no $page"; return 1; }
    grep -q '^\.SH EXAMPLES' "$page" || { echo "$page: no EXAMPLES"; return 1; }
}

for p in $PROGRAMS; do
    check "$p --help and --version" help_and_version "$p"
    check "$p: a man page with examples" man_page "$p"
    check "$p --bogus: one line" usage_error "$p" "unknown option '--bogus'" --bogus
    check "$p --bogus=1: one line, without the value" usage_error "$p" "unknown option '--bogus'" --bogus=1
    check "$p -Z: one line" usage_error "$p" "unknown option '-Z'" -Z
    check "$p --version=2: takes no argument" usage_error "$p" "option '--version' takes no argument" --version=2
done
check "sat-beam -k (last): needs an argument" usage_error sat-beam "option '-k' needs an argument" -k
check "sat-beam --beam (last): needs an argument" usage_error sat-beam "option '--beam' needs an argument" --beam
check "sat-encode -o (last): needs an argument" usage_error sat-encode "option '-o' needs an argument" -o
check "sat-train --captions (last): needs an argument" usage_error sat-train "option '--captions' needs an argument" --captions
check "sat-encode --precision fp16: names the three choices" usage_error sat-encode \
    "--precision: 'fp16' is not auto, float or int8" --precision fp16 x.jpg
