#!/bin/bash
# sat-train's feature caches (issue 11, item 2): mapped, not copied, so its
# resident memory does not grow with the cache; a pipe is read instead and
# gives the same model; u8 caches train like f16 ones.
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -160 "$F/Flickr_8k.trainImages.txt" > "$T/train160.txt"
head -40 "$T/train160.txt" > "$T/train40.txt"
for n in 40 160; do
    sed "s|^|$F/images/|" "$T/train$n.txt" | sat-encode -q --no-flip -T - -o "$T/f16-$n.sat"
done
sed "s|^|$F/images/|" "$T/train40.txt" | sat-encode -q --no-flip --dtype u8 -T - -o "$T/u8-40.sat"
# One epoch of a tiny decoder.  --max-vocab 200 (the 40 images have 242 words
# seen twice, the 160 have 610): the same vocabulary, so that only the cache
# differs between the two sizes, not the output layer and its buffers.
train() { # CACHE LIST OUT
    sat-train --captions "$F/Flickr8k.token.txt" --features "$1" --train "$2" --embed 32 \
        --hidden 64 --att-size 32 --min-count 2 --max-vocab 200 --epochs 1 --threads 1 -q -o "$3" 2>/dev/null
}
export -f train
export F

flat_rss() {
    local small big
    # AddressSanitizer keeps freed memory in quarantine (256 MB), which grows
    # with the batches run, not with the cache: measured without it
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
    small=$(peak_rss_kb bash -c 'train "$0" "$1" "$2"' "$T/f16-40.sat" "$T/train40.txt" "$T/m40.satm")
    big=$(peak_rss_kb bash -c 'train "$0" "$1" "$2"' "$T/f16-160.sat" "$T/train160.txt" "$T/m160.satm")
    echo "peak RSS: $small KB with 40 images (20 MB cache), $big KB with 160 (80 MB)"
    # A cache copied into memory would add its 60 MB; mapped, the growth is
    # the batches' and the allocator's: 6-10 MB, 13-16 MB under ASan
    [ "$small" -gt 0 ] && [ "$big" -gt 0 ] && [ $((big - small)) -lt 30000 ]
}
check "4x the cache (60 MB more features): sat-train's peak RSS grows by less than half that (30 MB)" flat_rss

pipe_same() {
    train "$T/f16-40.sat" "$T/train40.txt" "$T/file.satm" &&
        train <(cat "$T/f16-40.sat") "$T/train40.txt" "$T/pipe.satm" &&
        is_equal "$(sat-dump "$T/pipe.satm" | jq -r .weights_sha256)" "$(sat-dump "$T/file.satm" | jq -r .weights_sha256)"
}
check "a cache read from a pipe (not mapped) trains the same weights as the mapped file" pipe_same

u8_trains() {
    train "$T/u8-40.sat" "$T/train40.txt" "$T/u8.satm" && [ -s "$T/u8.satm" ] &&
        [ "$(wc -c < "$T/u8-40.sat")" -lt $(($(wc -c < "$T/f16-40.sat") / 2 + 100000)) ]
}
check "a u8 cache (half the f16 size) trains a model" u8_trains
