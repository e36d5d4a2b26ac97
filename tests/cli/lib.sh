# lib.sh — sourced by every tests/cli/*.sh.  Each check prints "ok - NAME",
# "FAIL - NAME" with the output indented below, or "skipped - NAME: WHY"; the
# counts go to $SAT_RESULT_FILE for tests/run.sh.  Needs SAT_BIN (the programs) and
# SAT_SHARED (the data of ../shared).
set -u
: "${SAT_BIN:?SAT_BIN must name the directory of the sat programs}"
: "${SAT_SHARED:?SAT_SHARED must name the shared data directory}"
export PATH="$SAT_BIN:$PATH"
IMAGES=$SAT_SHARED/images
T=$(mktemp -d "${TMPDIR:-/tmp}/sat-test.XXXXXX")
trap 'rm -rf "$T"; echo "$pass $fail $skipped" > "${SAT_RESULT_FILE:-/dev/null}"' EXIT
pass=0
fail=0
skipped=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() {
    fail=$((fail + 1))
    echo "FAIL - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | head -20 | sed 's/^/    /'
    return 0
}

# flickr8k_sliver NTRAIN NDEV: the first NTRAIN training and NDEV dev images of
# Flickr8k in $T/train.txt and $T/dev.txt, and their features at output
# stride 32 (7x7) in $T/feats.sat; F names the Flickr8k directory.
flickr8k_sliver() {
    F=$SAT_SHARED/data/flickr8k
    head -"$1" "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
    head -"$2" "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
    cat "$T/train.txt" "$T/dev.txt" | sed "s|^|$F/images/|" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
}

# peak_rss_kb CMD...: the peak resident memory of CMD (getrusage of the child), -1 if it fails.
peak_rss_kb() {
    python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:], stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)' "$@"
}

# skip NAME WHY: a check this machine cannot run, neither passed nor failed.
skip() { skipped=$((skipped + 1)); echo "skipped - $1: $2"; }

# check NAME CMD...: CMD exits 0.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}

# check_bad NAME PATTERN CMD...: CMD must fail cleanly — exit status 1..125
# (not a signal, not a sanitizer abort), and stderr must have a line matching
# PATTERN (an extended regex) that starts with the program's name.
check_bad() {
    local name=$1 pattern=$2 rc
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ]; then not_ok "$name" "exit status 0; stderr: $(cat "$T/err")"
    elif [ $rc -ge 126 ]; then not_ok "$name" "exit status $rc (crash or signal): $(cat "$T/err")"
    elif ! grep -Eq "^sat-[a-z]+: .*$pattern" "$T/err"; then
        not_ok "$name" "no error line matching '$pattern': $(cat "$T/err")"
    else ok "$name"
    fi
}

# Helpers for the assertions inside checks.
is_equal() { [ "$1" = "$2" ] || { echo "expected '$2', got '$1'"; return 1; }; }
