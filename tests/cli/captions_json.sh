#!/bin/bash
# Karpathy's dataset_*.json and COCO's captions_*.json caption files, and the
# @SPLIT arguments of a Karpathy file: the same Flickr8k subset written in the
# three formats (scripts/flickr8k-json.py) gives the same vocabulary, the same
# evaluation and the same trained weights; broken JSON files fail cleanly.
. "$(dirname "$0")/lib.sh"
F=$SAT_SHARED/data/flickr8k
head -40 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
head -10 "$F/Flickr_8k.devImages.txt" > "$T/dev.txt"
head -10 "$F/Flickr_8k.testImages.txt" > "$T/test.txt"
cat "$T/train.txt" "$T/dev.txt" "$T/test.txt" | sed 's/$/#/' | grep -F -f - "$F/Flickr8k.token.txt" > "$T/tokens.txt"
"$(dirname "$0")/../../scripts/flickr8k-json.py" "$T/tokens.txt" "$T/karpathy.json" "$T/coco.json" \
    train="$T/train.txt" val="$T/dev.txt" test="$T/test.txt"
check "the fixtures are written" test -s "$T/karpathy.json" -a -s "$T/coco.json"

vocab() { sat-vocab --min-count 2 "$@" 2>/dev/null; }
same_vocab() {
    vocab -c "$T/tokens.txt" -s "$T/train.txt" > "$T/v.tok" &&
    vocab -c "$T/karpathy.json" -s @train > "$T/v.karpathy" &&
    vocab -c "$T/coco.json" -s "$T/train.txt" > "$T/v.coco" &&
    [ "$(wc -l < "$T/v.tok")" -gt 20 ] &&
    cmp "$T/v.tok" "$T/v.karpathy" && cmp "$T/v.tok" "$T/v.coco"
}
check "sat-vocab: a Karpathy file with -s @train and a COCO file give the token file's vocabulary" same_vocab

splits() {
    # @train+val is the union; restval is absent from this file
    vocab -c "$T/karpathy.json" -s @train+val > "$T/v.tv" &&
    cat "$T/train.txt" "$T/dev.txt" > "$T/tv.txt" &&
    vocab -c "$T/tokens.txt" -s "$T/tv.txt" | cmp - "$T/v.tv"
}
check "@train+val takes both splits" splits

cat "$T/train.txt" "$T/dev.txt" "$T/test.txt" | sed "s|^|$F/images/|" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
args=(--features "$T/feats.sat" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2
      --patience 1000 --epochs 2 -q)
sha() { sat-dump "$1" | jq -r .weights_sha256; }
same_weights() {
    sat-train "${args[@]}" --captions "$T/tokens.txt" --train "$T/train.txt" --dev "$T/dev.txt" -o "$T/tok.satm" 2>/dev/null &&
    sat-train "${args[@]}" --captions "$T/karpathy.json" --train @train --dev @val -o "$T/karpathy.satm" 2>/dev/null &&
    sat-train "${args[@]}" --captions "$T/coco.json" --train "$T/train.txt" --dev "$T/dev.txt" -o "$T/coco.satm" 2>/dev/null &&
    is_equal "$(sha "$T/karpathy.satm")" "$(sha "$T/tok.satm")" &&
    is_equal "$(sha "$T/coco.satm")" "$(sha "$T/tok.satm")"
}
check "sat-train: the same weights from the three formats" same_weights

same_eval() {
    sat-decode -m "$T/tok.satm" "$T/feats.sat" > "$T/caps.sat" &&
    sat-eval -r "$T/tokens.txt" -s "$T/test.txt" "$T/caps.sat" > "$T/e.tok" &&
    sat-eval -r "$T/karpathy.json" -s @test "$T/caps.sat" > "$T/e.karpathy" &&
    sat-eval -r "$T/coco.json" -s "$T/test.txt" "$T/caps.sat" > "$T/e.coco" &&
    grep -q 'BLEU-4' "$T/e.tok" && cmp "$T/e.tok" "$T/e.karpathy" && cmp "$T/e.tok" "$T/e.coco"
}
check "sat-eval: the same scores from the three formats" same_eval

# --- bad files and splits ---
printf '{"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"raw": "a dog"}]}' > "$T/cut.json"
check_bad "a truncated JSON file names the file and the place" "cut.json: not JSON \(line 1" \
    sat-vocab -c "$T/cut.json" -s @train
printf '{"images": [{"filename": "a.jpg", "sentences": []}]}' > "$T/nosplit.json"
check_bad "an image without a split is an error naming it" 'nosplit.json: images\[0\]: no string "filename" and "split"' \
    sat-vocab -c "$T/nosplit.json" -s "$T/train.txt"
printf '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "a dog"}]}' > "$T/orphan.json"
check_bad "a COCO caption of no image is an error" 'annotations\[0\]: image_id 2 is in no image' \
    sat-vocab -c "$T/orphan.json" -s "$T/train.txt"
check_bad "@SPLIT of a COCO file (no splits) is an error" "has no splits" \
    sat-vocab -c "$T/coco.json" -s @train
check_bad "@SPLIT that no image is in is an error" "no image of .* is in split 'restval'" \
    sat-vocab -c "$T/karpathy.json" -s @train+restval
check_bad "@SPLIT with a token file is an error" "is not a JSON caption file" \
    sat-vocab -c "$T/tokens.txt" -s @train
bad_names() {
    printf '{"images": [{"filename": "a/b.jpg", "split": "val", "sentences": [{"raw": "a dog"}]}, {"filename": "c.jpg", "split": "train", "sentences": [{"raw": "  "}, {"raw": "a cat"}]}]}' > "$T/names.json" &&
    sat-vocab -c "$T/names.json" -s @train --min-count 1 > "$T/v.names" 2> "$T/names.err" &&
    grep -q "malformed image name or caption index: 1" "$T/names.err" &&
    grep -q "empty caption: 1" "$T/names.err" && grep -qx "cat.1" <(tr '\t' . < "$T/v.names")
}
check "entries with a bad name or an empty caption are skipped and counted, as lines are" bad_names

# --- scripts/flickr30k.mk and scripts/coco.mk on the Karpathy fixture ---
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" SAT_SHARED="$SAT_SHARED" BIN="$SAT_BIN" \
        KARPATHY="$T/karpathy.json" IMAGES="$F/images" RESULTS="$T/results" EPOCHS=2 THREADS=1 \
        TRAIN_OPTS="--embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2" BEAMS=1 "$@"
}
flickr30k() {
    mk -f scripts/flickr30k.mk OUT="$T/f30k" results > "$T/f30k.log" 2>&1 || { tail "$T/f30k.log"; return 1; }
    local md=$T/results/flickr30k.md
    grep -q '^# Show, Attend and Tell on Flickr30k: test split' "$md" &&
    grep -q '^| Hard-Attention (Xu et al. 2015) | 66.9 | 43.9 | 29.6 | 19.9 | 18.46 |' "$md" &&
    grep -q '^Scores ×100 on 10 images' "$md" &&
    is_equal "$(grep -c '^| \(Soft\|Hard\)-Attention (ours)' "$md")" 8 &&
    cmp "$T/f30k/lists/train.names" "$T/train.txt" && cmp "$T/f30k/lists/test.names" "$T/test.txt" &&
    grep -q "^make -f scripts/flickr30k.mk -j2 .*results$" "$md"
}
check "make -f scripts/flickr30k.mk results: the splits of the JSON file, trained, decoded, reported" flickr30k
coco() {
    # the images under IMAGES/filepath: here filepath is the images' own directory name
    sed 's/"filename"/"filepath": "images", "filename"/g' "$T/karpathy.json" > "$T/coco-k.json" &&
    mk -f scripts/coco.mk OUT="$T/coco" KARPATHY="$T/coco-k.json" IMAGES="$F" ENCODE_OPTS="--dtype u8" features \
        > "$T/coco.log" 2>&1 || { tail "$T/coco.log"; return 1; }
    is_equal "$(head -1 "$T/coco/lists/dev.paths")" "$F/images/$(head -1 "$T/dev.txt")" &&
    is_equal "$(sat-dump "$T/coco/test.sat" | jq -r '.dtype' | sort -u)" u8 &&
    is_equal "$(sat-dump "$T/coco/train.sat" | jq -s length)" 40
}
check "make -f scripts/coco.mk features: the images under IMAGES/filepath, ENCODE_OPTS" coco
