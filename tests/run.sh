#!/bin/bash
# tests/run.sh — run the cmocka unit tests and the shell tests; the last line
# is "N passed, N failed".  Environment: SAT_BIN, SAT_SHARED, SAT_TEST_BIN.
set -u
cd "$(dirname "$0")/.."
: "${SAT_TEST_BIN:=build/tests}"
pass=0
fail=0
failed=()
results=$(mktemp)
trap 'rm -f "$results"' EXIT

for t in "$SAT_TEST_BIN"/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    out=$(timeout 900 "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^\[ *(OK|FAILED|PASSED|ERROR|SKIPPED) *\]|^\[ +(RUN) +\]' | grep -v '^\[ RUN' || true
    # cmocka's summary: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed.*/\1/p' | tail -1)
    pass=$((pass + ${p:-0}))
    fail=$((fail + ${f:-0}))
    if [ $rc -ne 0 ] || [ -z "$p" ]; then
        [ -n "$f" ] || fail=$((fail + 1))
        failed+=("$name")
        printf '%s\n' "$out" | tail -30 | sed 's/^/    /'
    fi
done

for t in tests/cli/*.sh; do
    [ "$(basename "$t")" = lib.sh ] && continue
    echo "== $t"
    : > "$results"
    SAT_RESULT_FILE=$results timeout 1200 bash "$t"
    rc=$?
    read -r p f < "$results" || { p=0; f=1; }
    pass=$((pass + p))
    fail=$((fail + f))
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); fi
    [ "$f" != 0 ] || [ $rc -ne 0 ] && failed+=("$t")
done

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
