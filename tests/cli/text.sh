#!/bin/bash
# text.sh — sat-vocab and sat-eval on the real Flickr8k caption file.
. "$(dirname "$0")/lib.sh"
export LC_ALL=C

F=$SAT_SHARED/data/flickr8k
TOKENS=$F/Flickr8k.token.txt
TRAIN=$F/Flickr_8k.trainImages.txt
DEV=$F/Flickr_8k.devImages.txt
TEST=$F/Flickr_8k.testImages.txt

# value KEY FILE: the number after KEY in sat-eval's text output.
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
# within X LO HI: LO < X < HI.
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x > lo && x < hi) }' || { echo "$1 not in ($2, $3)"; return 1; }; }

# A sat stream of caption records from "id<TAB>text" lines (msgpack str8: < 256 bytes).
mp_str() { printf '\xd9'; printf "\\x$(printf %02x ${#1})"; printf '%s' "$1"; }
to_stream() {
    while IFS=$'\t' read -r id text; do
        printf '\x84'; mp_str type; mp_str caption; mp_str v; printf '\x01'
        mp_str id; mp_str "$id"; mp_str text; mp_str "$text"
    done
}

for p in sat-vocab sat-eval; do
    check "$p --help" "$p" --help
    check "$p --version" "$p" --version
done

# ---- sat-vocab ----

vocab_real() {
    sat-vocab -c "$TOKENS" -s "$TRAIN" --other-split "$DEV" --other-split "$TEST" --images "$F/images" \
        -o "$T/vocab.txt" 2> "$T/vocab.err" || { cat "$T/vocab.err"; return 1; }
    cat "$T/vocab.err"
    local size malformed_line
    size=$(sed -n 's/.*vocabulary: \([0-9]*\) words.*/\1/p' "$T/vocab.err")
    is_equal "$size" "$(wc -l < "$T/vocab.txt")" || return 1
    within "$size" 1000 5000 || return 1
    is_equal "$(head -3 "$T/vocab.txt" | cut -f1 | tr '\n' ' ')" "<end> <start> <unk> " || return 1
    # the quirks: the malformed "...jpg.1#0" name, and captions of images that are in no split and not on disk
    malformed_line=$(grep -n 'jpg\.1#' "$TOKENS" | cut -d: -f1)
    is_equal "$(grep -c 'note:' "$T/vocab.err")" 1 || return 1
    grep -q "note: 1 line skipped (malformed image name or caption index: 1, first at line $malformed_line); " "$T/vocab.err" || return 1
    grep -Eq "not used: [0-9]+ captions of [0-9]+ images in no split list" "$T/vocab.err" || return 1
    grep -q "coverage: " "$T/vocab.err" || return 1
    # counts are descending after the specials
    tail -n +4 "$T/vocab.txt" | cut -f2 | sort -c -n -r
}
check "sat-vocab on Flickr8k: size, specials, quirks reported" vocab_real

vocab_on_disk() {
    sat-vocab -c "$TOKENS" -s "$TRAIN" --images "$F/images" -o "$T/vocab2.txt" 2> "$T/vocab2.err" || return 1
    grep -Eq "not used: [0-9]+ captions of [0-9]+ images missing from the image directory" "$T/vocab2.err" || { cat "$T/vocab2.err"; return 1; }
    cmp "$T/vocab.txt" "$T/vocab2.txt"   # deterministic, and the checks do not change the vocabulary
}
check "sat-vocab --images reports the missing image, same vocabulary" vocab_on_disk

vocab_options() {
    sat-vocab -c "$TOKENS" -s "$TRAIN" --min-count 1 --max-size 100 > "$T/v100.txt" 2>/dev/null || return 1
    is_equal "$(wc -l < "$T/v100.txt")" 100 || return 1
    cmp <(head -100 "$T/vocab.txt" | tail -97) <(tail -97 "$T/v100.txt")
}
check "sat-vocab --max-size keeps the most frequent words" vocab_options

check_bad "sat-vocab --strict fails on the quirks" "malformed" sat-vocab -c "$TOKENS" -s "$TRAIN" --strict -o "$T/strict.txt"
check_bad "sat-vocab without --split" "split" sat-vocab -c "$TOKENS"
check_bad "sat-vocab, missing caption file" "no-such-file" sat-vocab -c "$T/no-such-file" -s "$TRAIN"
printf 'a.jpg\ndir/b.jpg\n' > "$T/bad_split.txt"
check_bad "sat-vocab, bad split list" "bad_split.txt:2:" sat-vocab -c "$TOKENS" -s "$T/bad_split.txt"
printf 'x.jpg\n' > "$T/unknown_split.txt"
check_bad "sat-vocab, split without captions" "no captions" sat-vocab -c "$TOKENS" -s "$T/unknown_split.txt"

# ---- sat-eval ----

# caption #0 of each test image is the hypothesis; the references are all five, or the other four
grep -F -f "$TEST" "$TOKENS" | grep -v 'jpg\.1#' > "$T/test_refs5.txt"
grep -v '#0'$'\t' "$T/test_refs5.txt" > "$T/test_refs4.txt"
grep '#0'$'\t' "$T/test_refs5.txt" | sed 's/#0\t/\t/' > "$T/hyp.txt"

eval_self() {
    sat-eval -r "$TOKENS" -s "$TEST" "$T/hyp.txt" > "$T/self.out" 2> "$T/self.err" || { cat "$T/self.err"; return 1; }
    cat "$T/self.out"
    is_equal "$(value images "$T/self.out")" 1000 || return 1
    for k in BLEU-1 BLEU-4 ROUGE-L; do is_equal "$(value $k "$T/self.out")" 100.0000 || return 1; done
    is_equal "$(value reflen "$T/self.out")" "$(value testlen "$T/self.out")" || return 1
    within "$(value CIDEr-D "$T/self.out")" 100 1000 || return 1
    # every segment scores 1, but the summed statistics have one chunk per image
    within "$(value METEOR "$T/self.out")" 50 80
}
check "sat-eval: a reference against all five scores 1" eval_self

eval_leave_one_out() {
    sat-eval -r "$T/test_refs4.txt" "$T/hyp.txt" > "$T/loo.out" 2> "$T/loo.err" || { cat "$T/loo.err"; return 1; }
    cat "$T/loo.out"
    is_equal "$(value images "$T/loo.out")" 1000 || return 1
    within "$(value BLEU-1 "$T/loo.out")" 40 90 || return 1
    within "$(value BLEU-4 "$T/loo.out")" 5 50 || return 1
    within "$(value ROUGE-L "$T/loo.out")" 30 80 || return 1
    within "$(value CIDEr-D "$T/loo.out")" 30 200 || return 1
    within "$(value METEOR "$T/loo.out")" 15 35 || return 1
    # BLEU-n decreases with n
    within "$(value BLEU-2 "$T/loo.out")" "$(value BLEU-3 "$T/loo.out")" "$(value BLEU-1 "$T/loo.out")"
}
check "sat-eval: human captions against the other four score like humans" eval_leave_one_out

eval_stream() {
    to_stream < "$T/hyp.txt" > "$T/hyp.sat"
    sat-eval -r "$T/test_refs4.txt" < "$T/hyp.sat" > "$T/stream.out" 2>&1 || { cat "$T/stream.out"; return 1; }
    diff "$T/loo.out" "$T/stream.out"
}
check "sat-eval: a stream of caption records scores as the text form" eval_stream

eval_no_meteor() {
    sat-eval -r "$T/test_refs4.txt" --no-meteor "$T/hyp.txt" > "$T/nometeor.out" || return 1
    diff <(grep -v '^METEOR ' "$T/loo.out") "$T/nometeor.out"
}
check "sat-eval --no-meteor: the same scores without METEOR" eval_no_meteor

eval_json() {
    sat-eval -r "$T/test_refs4.txt" --json "$T/hyp.txt" > "$T/loo.json" || return 1
    grep -q '^{"scale":100,"images":1000,.*"bleu":\[.*"meteor":2[0-9]\..*"cider_d":' "$T/loo.json" || { cat "$T/loo.json"; return 1; }
    # the same numbers as the text output (both x100)
    is_equal "$(jq -r '.bleu[3] * 100 | round' "$T/loo.json")" \
        "$(awk '$1 == "BLEU-4" { printf "%.0f", $2 * 100 }' "$T/loo.out")"
}
check "sat-eval --json: scores x100 like the text, and says so" eval_json

eval_header() {
    is_equal "$(head -1 "$T/loo.out")" "# scores x100; pointing in % of words; entropy in nats"
}
check "sat-eval's text output says its scale in a header line" eval_header

# hypotheses with problems: scored anyway, each kind warned once, exit 1
{
    head -5 "$T/hyp.txt" | sed 's|^|some/dir/|'
    head -1 "$T/hyp.txt"                                # duplicate
    printf 'no tab on this line\n'
    printf 'unknown.jpg\ta dog\n'
    printf '%s\t . \n' "$(sed -n 6p "$T/hyp.txt" | cut -f1)"   # empty after tokenization
    printf 'bad\xff.jpg\tx\n'
} > "$T/messy.txt"
messy() {
    sat-eval -r "$TOKENS" "$T/messy.txt" > "$T/messy.out" 2> "$T/messy.err"
    local rc=$?
    cat "$T/messy.err"
    is_equal "$rc" 1 || return 1
    is_equal "$(value images "$T/messy.out")" 6 || return 1
    for p in "duplicate hypotheses.*: 1 " "malformed hypotheses.*: 2 " "without references.*: 1 " "empty hypotheses.*: 1 "; do
        grep -Eq "^sat-eval: .*$p" "$T/messy.err" || { echo "no warning '$p'"; return 1; }
    done
}
check "sat-eval: duplicates, malformed, unknown and empty hypotheses are warned, not fatal" messy

eval_missing() {
    head -10 "$T/hyp.txt" > "$T/hyp10.txt"
    sat-eval -r "$TOKENS" -s "$TEST" "$T/hyp10.txt" > "$T/part.out" 2> "$T/part.err"
    is_equal "$?" 1 || return 1
    grep -q "990 of 1000 images have no hypothesis" "$T/part.err" || { cat "$T/part.err"; return 1; }
    is_equal "$(value images "$T/part.out")" 10
}
check "sat-eval --split: images without a hypothesis are warned" eval_missing

JPEG=$(find "$F/images" -name '*.jpg' | sort | head -1)
check_bad "sat-eval: binary garbage" "no hypothesis to score" sat-eval -r "$TOKENS" "$JPEG"
{ printf '\x85'; head -c 3000 "$JPEG"; } > "$T/garbage.sat"
check_bad "sat-eval: garbage after a map lead byte" "no hypothesis to score" sat-eval -r "$TOKENS" "$T/garbage.sat"
head -c 50 "$T/hyp.sat" > "$T/truncated.sat"
check_bad "sat-eval: truncated stream" "truncated" sat-eval -r "$TOKENS" "$T/truncated.sat"
check_bad "sat-eval: empty input" "no hypothesis to score" sat-eval -r "$TOKENS" /dev/null
check_bad "sat-eval without --refs" "refs" sat-eval "$T/hyp.txt"
check_bad "sat-eval without WordNet's data" "cannot open WordNet.*--no-meteor" \
    env WNSEARCHDIR=/nonexistent sat-eval -r "$T/test_refs4.txt" "$T/hyp.txt"
check_bad "sat-eval: missing reference file" "no-such-file" sat-eval -r "$T/no-such-file" "$T/hyp.txt"

# ---- ids with a tab, a newline or a backslash (file names sat-encode takes)
# in text output: escaped C-style (\t \n \\), so one line per caption and
# the fields stay apart; sat-eval and sat-attend --captions read them back ----
IMG=$(head -1 "$TEST")
odd=("$T/ids/tab	dir/$IMG" "$T/ids/new
line/$IMG" "$T/ids/back\\slash/$IMG" "$T/ids/a	b
c.jpg")
escaped=("$T/ids/tab\\tdir/$IMG" "$T/ids/new\\nline/$IMG" "$T/ids/back\\\\slash/$IMG" "$T/ids/a\\tb\\nc.jpg")
for path in "${odd[@]}"; do mkdir -p "$(dirname "$path")" && cp "$F/images/$IMG" "$path"; done
sat-encode -q "${odd[@]}" > "$T/odd.sat"
# fields N: every line of stdin has N tab-separated fields; the first ones are the escaped ids, in order
fields() {
    local out
    out=$(cat)
    awk -F'\t' -v n="$1" 'NF != n { print "line " NR " has " NF " fields: " $0; bad = 1 } END { exit bad }' <<<"$out" &&
        is_equal "$(cut -f1 <<<"$out" | awk '!seen[$0]++')" "$(printf '%s\n' "${escaped[@]}")"
}
check "sat-decode -f text escapes the ids" fields 2 < <(sat-decode -f text "$T/odd.sat")
check "sat-beam -f text escapes the ids" fields 2 < <(sat-beam -f text "$T/odd.sat")
check "sat-beam -n 2 -f text escapes the ids" fields 4 < <(sat-beam -k 2 -n 2 -f text "$T/odd.sat")
check "sat-attend -f text escapes the ids" fields 4 < <(sat-attend -c "a dog runs" -f text "$T/odd.sat")
classify_headers() {
    is_equal "$(sat-encode --classify -k 1 "${odd[3]}" "${odd[0]}" | grep '^==>')" \
        "$(printf '==> %s <==\n' "${escaped[3]}" "${escaped[0]}")"
}
check "sat-encode --classify escapes the ids of its headers" classify_headers
attend_reads_back() {
    sat-decode -f text "$T/odd.sat" > "$T/odd.txt" &&
        sat-attend --captions "$T/odd.txt" -f text "$T/odd.sat" 2> "$T/odd.err" | fields 4 &&
        is_equal "$(cat "$T/odd.err")" ""
}
check "sat-attend --captions reads the escaped ids back" attend_reads_back
echo "$IMG" > "$T/one.txt"
sat-encode -q "$F/images/$IMG" | sat-decode -f text | sat-eval -r "$TOKENS" -s "$T/one.txt" > "$T/plain.out" 2>/dev/null
eval_reads_back() {
    sat-encode -q "$1" | sat-decode -f text | sat-eval -r "$TOKENS" -s "$T/one.txt" > "$T/odd.out" &&
        diff "$T/plain.out" "$T/odd.out"
}
for i in 0 1 2; do
    check "sat-eval reads back the escaped id ${escaped[$i]#$T/ids/}" eval_reads_back "${odd[$i]}"
done

[ "$fail" -eq 0 ]
