#!/bin/bash
# scripts/fuzz.sh DIR — run every libFuzzer target in DIR for FUZZ_SECONDS.
# Corpus: tests/fuzz/corpus/NAME (committed seeds) + seeds made from
# ../shared, grown in build/fuzz/corpus/NAME.  Crashes, leaks and timeouts
# land in build/fuzz/crashes/ and fail the run.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=$1
: "${FUZZ_SECONDS:=60}" "${SAT_SHARED:=../shared}"
work=build/fuzz
mkdir -p "$work/crashes"

seed() { # NAME: fill the working corpus
    local name=$1 c=$work/corpus/$1
    mkdir -p "$c"
    [ -d "tests/fuzz/corpus/$name" ] && cp -n tests/fuzz/corpus/"$name"/* "$c"/ 2>/dev/null
    case $name in
    fuzz_image) cp -n "$SAT_SHARED"/images/* "$c"/ ;;
    fuzz_stream)
        [ -x bin/sat-encode ] && bin/sat-encode -q --stride 32 --dtype f16 "$SAT_SHARED/images/dog.jpg" > "$c/dog.sat" 2>/dev/null ;;
    fuzz_tflite) cp -n "$SAT_SHARED"/models/*.tflite "$c"/ ;;
    fuzz_captions) head -200 "$SAT_SHARED/data/flickr8k/Flickr8k.token.txt" > "$c/token200.txt" ;;
    esac
    true
}

total=0
bad=0
for fuzzer in "$dir"/fuzz_*; do
    name=$(basename "$fuzzer")
    seed "$name"
    log=$work/$name.log
    "$fuzzer" "$work/corpus/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=$((4 << 20)) -print_final_stats=1 -artifact_prefix="$work/crashes/$name-" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${execs:-0}))
    if [ $rc -ne 0 ]; then
        bad=$((bad + 1))
        echo "$name: FAILED after ${execs:-?} executions (exit $rc); see $log and $work/crashes/"
        grep -m3 -E 'ERROR|SUMMARY' "$log"
    else
        echo "$name: ${execs:-?} executions in ${FUZZ_SECONDS}s, no crash"
    fi
done
echo "fuzzing: $total executions in all, $bad target(s) failed"
[ $bad -eq 0 ]
