#!/bin/bash
# import.sh — sat-import on the real MobileNetV2 file and on bad inputs.
. "$(dirname "$0")/lib.sh"

TFLITE=$SAT_SHARED/models/mobilenet_v2_1.0_224_quant.tflite
LABELS=$SAT_SHARED/models/imagenet_labels.txt

check "sat-import --help" sat-import --help
check "sat-import --version" sat-import --version

# The real model imports with labels; one summary line on stderr.
import_works() {
    sat-import --labels "$LABELS" -o "$T/m.satm" "$TFLITE" 2>"$T/log" || return 1
    is_equal "$(wc -l <"$T/log")" 1 && grep -q '66 ops' "$T/log" && grep -q '1001 labels' "$T/log" &&
        [ "$(stat -c %s "$T/m.satm")" -gt 13000000 ]
}
check "imports MobileNetV2 with labels" import_works

# --f16 halves the params; --name is used.
import_f16() {
    sat-import --f16 --name enc -o "$T/h.satm" "$TFLITE" 2>"$T/log" || return 1
    grep -q '^sat-import: enc: ' "$T/log" &&
        [ "$(stat -c %s "$T/h.satm")" -lt 7500000 ] && [ "$(stat -c %s "$T/h.satm")" -gt 6500000 ]
}
check "import --f16 --name" import_f16

# refuses NAME PATTERN ARGS...: a clean one-line error and no output file
# (nor a leftover temp file) in the output's directory.
refuses() {
    local name=$1 pattern=$2
    shift 2
    rm -rf "$T/bad" && mkdir "$T/bad"
    check_bad "$name" "$pattern" sat-import "$@" -o "$T/bad/out.satm"
    check "$name: one line" is_equal "$(wc -l <"$T/err")" 1
    check "$name: no output" is_equal "$(ls -A "$T/bad")" ""
}

head -c 1000000 "$TFLITE" >"$T/truncated.tflite"
head -n 1000 "$LABELS" >"$T/labels1000.txt"
refuses "refuses a text file" "neither a TensorFlow Lite file .* nor a sat model" "$SAT_SHARED/README.md"
refuses "refuses a truncated .tflite" "malformed flatbuffer" "$T/truncated.tflite"
refuses "refuses a nonexistent path" "No such file" "$T/missing.tflite"
refuses "refuses a wrong number of labels" "1000 labels, but the model has 1001 classes" \
    --labels "$T/labels1000.txt" "$TFLITE"

# A failed import leaves an existing output file as it was.
keeps_old_output() {
    echo old >"$T/keep.satm"
    ! sat-import -o "$T/keep.satm" "$SAT_SHARED/README.md" 2>/dev/null && is_equal "$(cat "$T/keep.satm")" old
}
check "a failed import keeps the old output" keeps_old_output


# --- a sat model as input: a tiny decoder (20 Flickr8k images at output
# stride 32, E=16 H=32 A=16, two seconds of training) rewritten as f16 ---
F=$SAT_SHARED/data/flickr8k
head -20 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
sed "s|^|$F/images/|" "$T/train.txt" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
    --dev "$T/train.txt" --embed 16 --hidden 32 --att-size 16 --batch 16 --min-count 2 --lr 0.01 \
    --epochs 20 --patience 1000 --threads 1 -q -o "$T/dec.satm" 2>/dev/null

decoder_f16() {
    sat-import --f16 -o "$T/dec16.satm" "$T/dec.satm" 2>"$T/log" || return 1
    grep -Eq '^sat-import: sat-decoder: decoder, [0-9]+ params \(f16\), [0-9]+ words' "$T/log" &&
        [ "$(stat -c %s "$T/dec16.satm")" -lt "$(( $(stat -c %s "$T/dec.satm") * 6 / 10 ))" ]
}
check "a decoder model is rewritten with f16 parameters" decoder_f16

# all but the stored parameters is as it was: config, vocab, tensors, source
same_contents() {
    local keep='del(.weights_sha256, .dtype, .params)'
    is_equal "$(sat-dump "$T/dec16.satm" | jq -c "$keep")" "$(sat-dump "$T/dec.satm" | jq -c "$keep")" &&
        is_equal "$(sat-dump "$T/dec16.satm" | jq -r .dtype)" f16
}
check "the f16 decoder keeps config, vocabulary, tensors and provenance" same_contents

check "rewriting an f32 model as f32 gives the same bytes" \
    bash -c 'sat-import -o "$1/same.satm" "$1/dec.satm" 2>/dev/null && cmp "$1/same.satm" "$1/dec.satm"' _ "$T"
check "f16 -> f32 -> f16 gives the same bytes" \
    bash -c 'sat-import -o "$1/back.satm" "$1/dec16.satm" 2>/dev/null &&
             sat-import --f16 -o "$1/again.satm" "$1/back.satm" 2>/dev/null && cmp "$1/again.satm" "$1/dec16.satm"' _ "$T"

# the loader reads f16 parameters: the same greedy captions, log-probabilities within 1%
same_captions() {
    local a b
    a=$(sat-decode -m "$T/dec.satm" -f text "$T/feats.sat") && b=$(sat-decode -m "$T/dec16.satm" -f text "$T/feats.sat") &&
        is_equal "$b" "$a" && [ "$(grep -c . <<<"$a")" -eq 20 ] || return 1
    paste <(sat-decode -m "$T/dec.satm" "$T/feats.sat" | sat-dump | jq .logprob) \
          <(sat-decode -m "$T/dec16.satm" "$T/feats.sat" | sat-dump | jq .logprob) |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (!(d <= 0.01 * -$1)) { print "logprob " $1 " vs " $2; bad = 1 } }
             END { exit bad }'
}
check "the f16 decoder gives the same greedy captions" same_captions

head -c 5000 "$T/dec.satm" >"$T/truncated.satm"
refuses "refuses a truncated sat model" "model file .*truncated.satm" "$T/truncated.satm"
refuses "refuses a sat stream that is not a model" "not a sat model \(type is 'features'\)" "$T/feats.sat"
refuses "refuses --labels for a decoder" "a decoder model has no classes to label" --labels "$LABELS" "$T/dec.satm"

# --- models every program that reads them refuses are refused here too, not
# rewritten with a fresh weights_sha256 (issue 14, item 3): the same checks as
# the loaders (the captioner's for a decoder, sat-encode's for a CNN) ---
# mut.py IN OUT EDIT: a model file with one edit (msgpack read and written
# here; the params, and with them weights_sha256, are left as they are).
cat > "$T/mut.py" <<'PY'
import struct, sys
def read(b, i):
    t = b[i]; i += 1
    if t <= 0x7f: return t, i
    if t >= 0xe0: return t - 256, i
    if 0x80 <= t <= 0x8f: return read_map(b, i, t & 15)
    if 0x90 <= t <= 0x9f: return read_list(b, i, t & 15)
    if 0xa0 <= t <= 0xbf: return b[i:i + (t & 31)].decode(), i + (t & 31)
    if t == 0xc0: return None, i
    if t in (0xc2, 0xc3): return t == 0xc3, i
    fixed = {0xca: '>f', 0xcb: '>d', 0xcc: '>B', 0xcd: '>H', 0xce: '>I', 0xcf: '>Q',
             0xd0: '>b', 0xd1: '>h', 0xd2: '>i', 0xd3: '>q'}
    if t in fixed:
        n = struct.calcsize(fixed[t]); return struct.unpack(fixed[t], b[i:i + n])[0], i + n
    sized = {0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4}
    n = int.from_bytes(b[i:i + sized[t]], 'big'); i += sized[t]
    if t in (0xc4, 0xc5, 0xc6): return b[i:i + n], i + n
    if t in (0xd9, 0xda, 0xdb): return b[i:i + n].decode(), i + n
    return (read_list if t in (0xdc, 0xdd) else read_map)(b, i, n)
def read_list(b, i, n):
    out = []
    for _ in range(n):
        v, i = read(b, i); out.append(v)
    return out, i
def read_map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = read(b, i); v, i = read(b, i); out[k] = v
    return out, i
def hdr(n, fix, small, codes):
    if n < small: return bytes([fix | n])
    for code, size in codes:
        if n < 1 << (8 * size): return bytes([code]) + n.to_bytes(size, 'big')
def enc(v):
    if v is None: return b'\xc0'
    if isinstance(v, bool): return b'\xc3' if v else b'\xc2'
    if isinstance(v, int): return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, float): return b'\xcb' + struct.pack('>d', v)
    if isinstance(v, str):
        s = v.encode(); return hdr(len(s), 0xa0, 32, [(0xd9, 1), (0xda, 2), (0xdb, 4)]) + s
    if isinstance(v, bytes): return hdr(len(v), 0, 0, [(0xc4, 1), (0xc5, 2), (0xc6, 4)]) + v
    if isinstance(v, list): return hdr(len(v), 0x90, 16, [(0xdc, 2), (0xdd, 4)]) + b''.join(map(enc, v))
    return hdr(len(v), 0x80, 16, [(0xde, 2), (0xdf, 4)]) + b''.join(enc(k) + enc(x) for k, x in v.items())
m, _ = read(open(sys.argv[1], 'rb').read(), 0)
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(enc(m))
PY
mut() { python3 "$T/mut.py" "$1" "$T/$2.satm" "$3"; }
check "an unedited model read and written by mut.py is still imported" \
    bash -c 'python3 "$1/mut.py" "$1/dec.satm" "$1/same-mut.satm" "pass" && sat-import -o "$1/ok.satm" "$1/same-mut.satm" 2>/dev/null' _ "$T"
mut "$T/dec.satm" d-shape "m['config']['E'] += 1"
mut "$T/dec.satm" d-range "m['config']['H'] = 0"
mut "$T/dec.satm" d-temperature "m['config']['att.temperature'] = -1.0"
mut "$T/dec.satm" d-tensor "m['tensors'] = m['tensors'][1:]"
mut "$T/dec.satm" d-dupword "m['vocab'][4] = m['vocab'][3]"
mut "$T/dec.satm" d-vsize "m['vocab'] = m['vocab'][:-1]"
mut "$T/dec.satm" d-special "m['vocab'][1] = 'begin'"
mut "$T/dec.satm" d-kind "m['kind'] = 'cnn'"
mut "$T/h.satm" c-nograph "del m['graph']"
mut "$T/h.satm" c-kind "m['kind'] = 'decoder'"
mut "$T/h.satm" c-twopools "g = m['graph']; p = [o for o in g['ops'] if o['op'] == 'AVERAGE_POOL_2D'][0]
g['values'].append(g['values'][p['output']]); g['ops'].append(dict(p, output=len(g['values']) - 1))
g.get('quant', []).append(None)  # the new value, unquantized (one entry per value)"
# each is refused by the program that reads its kind...
for t in d-shape d-range d-temperature d-tensor d-dupword d-vsize d-special c-kind; do
    check_bad "sat-decode refuses $t.satm" "$t.satm" sat-decode -m "$T/$t.satm" "$T/feats.sat"
done
for t in d-kind c-nograph c-twopools; do
    check_bad "sat-encode refuses $t.satm" "." sat-encode -q -m "$T/$t.satm" "$IMAGES/dog.jpg"
done
# ...and by sat-import, with one line naming the file
refuses "refuses a decoder whose tensors do not fit its config" "d-shape.satm: .*mis-shaped" "$T/d-shape.satm"
refuses "refuses a decoder with a size out of range" "d-range.satm: .*H is not an integer in range" "$T/d-range.satm"
refuses "refuses a decoder with a bad attention temperature" "d-temperature.satm: .*att.temperature" "$T/d-temperature.satm"
refuses "refuses a decoder without a tensor" "d-tensor.satm: .*missing" "$T/d-tensor.satm"
refuses "refuses a decoder with a repeated word" "d-dupword.satm: vocabulary" "$T/d-dupword.satm"
refuses "refuses a decoder with one word fewer than V" "d-vsize.satm: vocabulary" "$T/d-vsize.satm"
refuses "refuses a decoder without <start>" "d-special.satm: vocabulary" "$T/d-special.satm"
refuses "refuses a decoder relabelled as a CNN" "d-kind.satm: .*no graph" "$T/d-kind.satm"
refuses "refuses a CNN without a graph" "c-nograph.satm: .*no graph" "$T/c-nograph.satm"
refuses "refuses a CNN relabelled as a decoder" "c-kind.satm: .*config entry" "$T/c-kind.satm"
refuses "refuses a CNN with two pooling ops" "c-twopools.satm: .*more than one AVERAGE_POOL_2D" "$T/c-twopools.satm"
refuses "--average refuses decoders with a bad vocabulary" "d-dupword.satm: vocabulary" \
    --average "$T/d-dupword.satm" "$T/d-dupword.satm"
