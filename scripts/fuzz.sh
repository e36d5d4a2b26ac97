#!/bin/bash
# scripts/fuzz.sh DIR — run every libFuzzer target in DIR for FUZZ_SECONDS.
# Corpus: tests/fuzz/corpus/NAME (committed: small seeds and what past
# campaigns found) + seeds made from ../shared (not with FUZZ_SHARED_SEEDS=0),
# grown in build/fuzz/corpus/NAME.  Inputs up to FUZZ_MAX_LEN bytes.  Crashes,
# leaks and timeouts land in build/fuzz/crashes/ and fail the run.
# FUZZ_MERGE=1: afterwards, the inputs of the grown corpus that add coverage
# are merged into tests/fuzz/corpus/NAME (to be committed; `make test` replays
# them), so the campaign must not use ../shared's files as seeds.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=$1
: "${FUZZ_SECONDS:=60}" "${SAT_SHARED:=../shared}" "${FUZZ_MAX_LEN:=4194304}"
: "${FUZZ_SHARED_SEEDS:=1}" "${FUZZ_MERGE:=0}"
if [ "$FUZZ_MERGE" = 1 ] && [ "$FUZZ_SHARED_SEEDS" = 1 ]; then
    echo "fuzz.sh: FUZZ_MERGE=1 needs FUZZ_SHARED_SEEDS=0 (../shared's files are not to be committed)" >&2
    exit 2
fi
work=build/fuzz
mkdir -p "$work/crashes"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}

# A corpus grown without ../shared is kept apart from one grown with it.
corpora=$work/corpus
[ "$FUZZ_SHARED_SEEDS" = 1 ] || corpora=$work/corpus-own

seed() { # NAME: fill the working corpus
    local name=$1 c=$corpora/$1
    mkdir -p "$c"
    [ -d "tests/fuzz/corpus/$name" ] && cp -n tests/fuzz/corpus/"$name"/* "$c"/ 2>/dev/null
    [ "$FUZZ_SHARED_SEEDS" = 1 ] || return 0
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
    "$fuzzer" "$corpora/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$FUZZ_MAX_LEN" -print_final_stats=1 -artifact_prefix="$work/crashes/$name-" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${execs:-0}))
    if [ $rc -ne 0 ]; then
        bad=$((bad + 1))
        echo "$name: FAILED after ${execs:-?} executions (exit $rc); see $log and $work/crashes/"
        grep -m3 -E 'ERROR|SUMMARY' "$log"
    else
        echo "$name: ${execs:-?} executions in ${FUZZ_SECONDS}s, no crash," \
            "$(find "$corpora/$name" -type f | wc -l) inputs in the corpus"
    fi
    if [ "$FUZZ_MERGE" = 1 ] && [ $rc -eq 0 ]; then
        mkdir -p "tests/fuzz/corpus/$name"
        "$fuzzer" -merge=1 -max_len="$FUZZ_MAX_LEN" "tests/fuzz/corpus/$name" "$corpora/$name" \
            >"$work/$name.merge.log" 2>&1 || { echo "$name: merge failed; see $work/$name.merge.log"; bad=$((bad + 1)); }
        echo "$name: $(find "tests/fuzz/corpus/$name" -type f | wc -l) inputs in tests/fuzz/corpus/$name"
    fi
done
echo "fuzzing: $total executions in all, $bad target(s) failed"
[ $bad -eq 0 ]
