#!/bin/bash
# tests/run.sh — run the cmocka unit tests and the shell tests, SAT_TEST_JOBS
# at a time (default: the number of CPUs), each one's output printed whole and
# in order; the last line is "N passed, N failed, N skipped" (a skipped test
# is one that needs what this machine lacks, such as ../shared: it counts as
# neither passed nor failed).
# Environment: SAT_BIN, SAT_SHARED, SAT_TEST_BIN, SAT_TEST_JOBS, SAT_TEST_ONLY
# (a pattern: run only the tests whose name matches it, e.g. 'test_nn|cli/usage').
set -u
cd "$(dirname "$0")/.."
: "${SAT_TEST_BIN:=build/tests}" "${SAT_TEST_JOBS:=$(nproc)}" "${SAT_TEST_ONLY:=}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# cmocka_count WORD TAIL: cmocka's summaries of every group on stdin, added up:
# "[  PASSED  ] N test(s).", "[  FAILED  ] N test(s), listed below:" and
# "[  SKIPPED ] N test(s), listed below:" (PASSED does not count the skipped);
# nothing when there is no such line.
cmocka_count() { sed -n "s/^\[  $1 *\] \([0-9]*\) test$2.*/\1/p" | awk '{ s += $1 } END { if (NR) print s }'; }

# run_unit N BINARY: its cmocka lines to $work/N.out, "pass fail skip" to $work/N.res.
run_unit() {
    local n=$1 t=$2 out rc p f s
    out=$(timeout 900 "$t" 2>&1)
    rc=$?
    {
        echo "== $(basename "$t")"
        printf '%s\n' "$out" | grep -E '^\[ *(OK|FAILED|PASSED|ERROR|SKIPPED) *\]' || true
    } > "$work/$n.out"
    p=$(printf '%s\n' "$out" | cmocka_count PASSED '')
    f=$(printf '%s\n' "$out" | cmocka_count FAILED '(s), listed')
    s=$(printf '%s\n' "$out" | cmocka_count SKIPPED '(s), listed')
    if [ $rc -ne 0 ] || [ -z "$p" ]; then
        [ -n "$f" ] || f=1
        printf '%s\n' "$out" | tail -30 | sed 's/^/    /' >> "$work/$n.out"
    fi
    echo "${p:-0} ${f:-0} ${s:-0}" > "$work/$n.res"
}

# run_cli N SCRIPT: the script's ok/FAIL/skipped lines and counts, likewise.
run_cli() {
    local n=$1 t=$2 rc p f s
    echo "== $t" > "$work/$n.out"
    SAT_RESULT_FILE=$work/$n.counts timeout 1200 bash "$t" >> "$work/$n.out" 2>&1
    rc=$?
    read -r p f s < "$work/$n.counts" 2>/dev/null || { p=0; f=1; }
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    echo "$p $f ${s:-0}" > "$work/$n.res"
}

tests=()
for t in "$SAT_TEST_BIN"/test_*; do [ -x "$t" ] && tests+=("unit:$t"); done
for t in tests/cli/*.sh; do [ "$(basename "$t")" = lib.sh ] || tests+=("cli:$t"); done
if [ -n "$SAT_TEST_ONLY" ]; then
    kept=()
    for t in "${tests[@]}"; do [[ $t =~ $SAT_TEST_ONLY ]] && kept+=("$t"); done
    tests=("${kept[@]}")
fi

i=0
for t in "${tests[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$SAT_TEST_JOBS" ]; do wait -n; done
    case $t in
    unit:*) run_unit "$i" "${t#unit:}" & ;;
    cli:*) run_cli "$i" "${t#cli:}" & ;;
    esac
    i=$((i + 1))
done
wait

pass=0
fail=0
skipped=0
failed=()
for ((n = 0; n < ${#tests[@]}; n++)); do
    cat "$work/$n.out"
    read -r p f s < "$work/$n.res"
    pass=$((pass + p))
    fail=$((fail + f))
    skipped=$((skipped + s))
    [ "$f" = 0 ] || failed+=("${tests[n]#*:}")
done

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
