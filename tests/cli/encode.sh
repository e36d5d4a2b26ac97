#!/bin/bash
# sat-encode and sat-dump: the ImageNet facts of ../shared/README.md, the
# stream they write, and every kind of bad input the encoder issue lists.
. "$(dirname "$0")/lib.sh"

# --- the five top-1 facts (float inference of the dequantized weights) ---
# top1 IMAGE LABEL PROB [ENCODE OPTIONS]: the first line names LABEL with a
# probability within 0.08 of the measured PROB.
top1() {
    local img=$1 label=$2 prob=$3
    shift 3
    local line
    line=$(sat-encode --classify -k 3 "$@" "$IMAGES/$img" | head -1) || return 1
    awk -F'\t' -v l="$label" -v p="$prob" \
        '{ if ($1 != l || ($2 - p) > 0.08 || (p - $2) > 0.08) { print "got: " $0; exit 1 } }' \
        <<<"$line"
}
# The same facts hold for the integer path (--precision int8).  Under
# valgrind (make check-valgrind) the CPU shows no AVX-512 VNNI and int8 runs
# its portable kernels, some 50 times slower again: one photo there.
precisions="float int8"
[ -n "${SAT_VALGRIND:-}" ] && precisions=float
for precision in $precisions; do
    for stride in 16 32; do
        o=(--stride $stride --precision $precision)
        check "top-1 grace_hopper.png, stride $stride, $precision" top1 grace_hopper.png "military uniform" 0.93 "${o[@]}"
        check "top-1 cat.png, stride $stride, $precision" top1 cat.png "Egyptian cat" 0.80 "${o[@]}"
        check "top-1 bird.png, stride $stride, $precision" top1 bird.png "chickadee" 0.99 "${o[@]}"
        check "top-1 parrot.jpg, stride $stride, $precision" top1 parrot.jpg "macaw" 1.00 "${o[@]}"
        check "top-1 hot_dog.jpg, stride $stride, $precision" top1 hot_dog.jpg "hotdog, hot dog, red hot" 0.91 "${o[@]}"
    done
done
[ -n "${SAT_VALGRIND:-}" ] && check "top-1 cat.png, stride 16, int8" top1 cat.png "Egyptian cat" 0.80 --precision int8

# --- int8 against float: the cosine of the features of every test photo ---
# (issue 15 asks for >= 0.99 on every image.  Measured, both views: min
# 0.9936, cat.png, mean 0.9951; 0.987 and 0.993 while the int8 path still
# quantized the image for the stem, libcommon/cnn.c plan_float_stem).
features_tsv() {
    sat-encode -q -j 1 --dtype f32 --precision "$1" "$IMAGES"/* | sat-dump --full | jq -r '.data | @tsv'
}
int8_cosines() {
    features_tsv float > "$T/float.tsv" && features_tsv int8 > "$T/int8.tsv" || return 1
    awk -F'\t' 'NR == FNR { a[FNR] = $0; next }
        { n = split(a[FNR], x, "\t"); d = p = q = 0
          for (i = 1; i <= n; i++) { d += x[i] * $i; p += x[i] * x[i]; q += $i * $i }
          c = d / sqrt(p * q); sum += c; if (FNR == 1 || c < min) min = c }
        END { printf "min %.4f mean %.4f over %d images\n", min, sum / FNR, FNR
              exit !(FNR >= 10 && min >= 0.99) }' "$T/float.tsv" "$T/int8.tsv"
}
[ -z "${SAT_VALGRIND:-}" ] &&
    check "int8 features: cosine to float >= 0.99 on every test photo" int8_cosines

int8_is_recorded() {
    sat-encode --precision int8 "$IMAGES/dog.jpg" | sat-dump | jq -e '.encoder.precision == "int8"' >/dev/null &&
        sat-encode --precision float "$IMAGES/dog.jpg" | sat-dump | jq -e '.encoder | has("precision") | not' >/dev/null
}
check "an int8 record says so in encoder.precision; a float one has no such key" int8_is_recorded

# (valgrind's CPU shows no AVX-512)
auto_follows_the_cpu() {
    local want=float flag
    [ -z "${SAT_VALGRIND:-}" ] && want=int8
    for flag in avx512f avx512bw avx512vl avx512_vnni; do grep -qw "$flag" /proc/cpuinfo || want=float; done
    cmp <(sat-encode "$IMAGES/dog.jpg") <(sat-encode --precision "$want" "$IMAGES/dog.jpg") &&
        cmp <(sat-encode "$IMAGES/dog.jpg") <(sat-encode --precision auto "$IMAGES/dog.jpg")
}
check "--precision auto, the default: int8 where the CPU has AVX-512 VNNI, else float" auto_follows_the_cpu

classify_lines() {
    local n
    n=$(sat-encode --classify -k 7 "$IMAGES/cat.png" | awk -F'\t' 'NF == 2 && $2 >= 0 && $2 <= 1' | wc -l)
    is_equal "$n" 7
}
check "--classify -k 7 prints 7 label<TAB>probability lines" classify_lines

best_first() {
    sat-encode --classify -k 10 "$IMAGES/dog.jpg" | awk -F'\t' 'NR > 1 && $2 > prev { exit 1 } { prev = $2 }'
}
check "--classify lists best first" best_first

# --- the stream ---
sat-encode -q "$IMAGES"/*.jpg > "$T/jpgs.sat" 2> "$T/jpgs.err"
records_are_14x14() {
    local n shapes
    n=$(ls "$IMAGES"/*.jpg | wc -l)
    shapes=$(sat-dump "$T/jpgs.sat" | jq -r '[.type, .h, .w, .c, .dtype, .views, (.data.shape | tostring)] | @tsv' | sort -u)
    is_equal "$shapes" "$(printf 'features\t14\t14\t1280\tf16\t2\t[2,14,14,1280]')" || return 1
    is_equal "$(sat-dump "$T/jpgs.sat" | wc -l)" "$n"
}
check "every jpg gives a 14x14x1280 f16 features record of two views (the image, its mirror)" records_are_14x14

ids_in_order() {
    is_equal "$(sat-dump "$T/jpgs.sat" | jq -r .id | tr '\n' ' ')" "$(ls "$IMAGES"/*.jpg | tr '\n' ' ')"
}
check "records come in input order with the path as id" ids_in_order

record_fields() {
    sat-dump "$T/jpgs.sat" | jq -se 'map(select(.id | endswith("/dog.jpg"))) | .[0]
        | .v == 1 and .image_width == 768 and .image_height == 576
          and .encoder.stride == 16 and .encoder.size == 224
          and (.encoder.sha256 | length) == 64
          and .data.min >= 0 and .data.max <= 6 and .data.mean > 0' >/dev/null
}
check "features record fields (size, encoder, ReLU6 range)" record_fields

stride32() {
    is_equal "$(sat-encode --stride 32 "$IMAGES/dog.jpg" | sat-dump | jq -r '"\(.h)x\(.w)x\(.c)"')" 7x7x1280
}
check "--stride 32 gives 7x7x1280" stride32

# --help names every stride that is accepted (issue 14, item 11: 8 was missing)
stride_help() {
    local help s
    help=$(sat-encode --help | sed -n '/--stride/,/--size/p' | sed '$d')
    for s in 8 16 32; do
        grep -qw "$s" <<<"$help" || { echo "--help does not name stride $s: $help"; return 1; }
    done
    is_equal "$(sat-encode --stride 8 "$IMAGES/dog.jpg" | sat-dump | jq -r '"\(.h)x\(.w)"')" 28x28
}
check "--help names the strides 8, 16 and 32, and --stride 8 gives 28x28" stride_help

size_option() {
    is_equal "$(sat-encode --size 320 "$IMAGES/dog.jpg" | sat-dump | jq -r '"\(.h)x\(.w)"')" 20x20
}
check "--size 320 gives 20x20" size_option

f32_matches_f16() {
    sat-encode --dtype f32 "$IMAGES/dog.jpg" | sat-dump --full | jq -c '.data' > "$T/f32.json"
    sat-encode "$IMAGES/dog.jpg" | sat-dump --full | jq -c '.data' > "$T/f16.json"
    jq -n --slurpfile a "$T/f32.json" --slurpfile b "$T/f16.json" \
        '[$a[0], $b[0]] | transpose | map(.[0] - .[1] | fabs) | max < 0.01' | grep -qx true
}
check "--dtype f32 agrees with f16 to f16 precision" f32_matches_f16

u8_matches_f32() {
    sat-encode --dtype u8 "$IMAGES/dog.jpg" > "$T/u8.sat" || return 1
    sat-dump "$T/u8.sat" | jq -e '.dtype == "u8" and .zero_point == 0 and (.scale - 6 / 255 | fabs) < 1e-6' >/dev/null ||
        return 1
    sat-dump --full "$T/u8.sat" | jq -c '.data' > "$T/u8.json"
    # half a step (6 / 255 / 2) plus f16's own rounding of the reference
    jq -n --slurpfile a "$T/u8.json" --slurpfile b "$T/f32.json" \
        '[$a[0], $b[0]] | transpose | map(.[0] - .[1] | fabs) | max < 0.0125' | grep -qx true || return 1
    # a quarter of f32, half of f16, and decoders read it
    local n16 n8
    n16=$(sat-encode "$IMAGES/dog.jpg" | wc -c)
    n8=$(wc -c < "$T/u8.sat")
    [ "$n8" -lt $((n16 / 2 + 1000)) ] || { echo "u8 record $n8 bytes, f16 $n16"; return 1; }
    sat-beam -f text "$T/u8.sat" | awk -F'\t' 'NF == 2 && $2 ~ /dog/ { ok = 1 } END { exit !ok }'
}
check "--dtype u8: 8-bit values within half a step of f32, half the f16 size, captioned" u8_matches_f32

thumbnail() {
    sat-encode --thumbnail=64 "$IMAGES/dog.jpg" | sat-dump --full | jq -r .thumbnail | base64 -d > "$T/thumb.png" &&
    python3 -c 'import struct, sys; d = open(sys.argv[1], "rb").read(); assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$T/thumb.png" > "$T/thumb.size" &&
    is_equal "$(cat "$T/thumb.size")" 64x48
}
check "--thumbnail=64 embeds a 64x48 PNG of the 768x576 image" thumbnail

jobs_agree() {
    sat-encode -j 1 "$IMAGES"/*.jpg | cmp - "$T/jpgs.sat"
}
check "-j 1 and -j 2 write identical streams" jobs_agree

# A lone image's record is the prefix of a batch's stream that starts with it:
# the same bytes alone (two views side by side on two threads, or one view)
# as among others (one image per thread).
alone_as_in_batch() {
    local first flip
    first=$(ls "$IMAGES"/*.jpg | head -1)
    for flip in --flip --no-flip; do
        sat-encode $flip "$first" > "$T/alone.sat" &&
            sat-encode $flip "$IMAGES"/*.jpg | head -c "$(wc -c < "$T/alone.sat")" | cmp - "$T/alone.sat" || return 1
    done
}
check "an image's record is the same bytes alone as among others, two views or one" alone_as_in_batch

stdin_image() {
    sat-encode --id mine < "$IMAGES/dog.jpg" - > "$T/stdin.sat" &&
    is_equal "$(sat-dump "$T/stdin.sat" | jq -r .id)" mine &&
    sat-encode "$IMAGES/dog.jpg" | sat-dump | jq .data > "$T/a" &&
    sat-dump "$T/stdin.sat" | jq .data > "$T/b" && cmp "$T/a" "$T/b"
}
check "'-' reads one image from stdin" stdin_image

files_from() {
    ls "$IMAGES"/*.jpg | sat-encode -T - -o "$T/list.sat" && cmp "$T/list.sat" "$T/jpgs.sat"
}
check "--files-from - and -o give the same stream" files_from

pass_through_cat() {
    cat "$T/jpgs.sat" "$T/jpgs.sat" | sat-dump | wc -l | grep -qx $((2 * $(ls "$IMAGES"/*.jpg | wc -l)))
}
check "concatenated streams are a stream" pass_through_cat

sigpipe_quiet() {
    local err
    err=$( { sat-encode "$IMAGES"/*.jpg | head -c 10 >/dev/null; } 2>&1 )
    [ -z "$err" ] || { echo "stderr: $err"; return 1; }
}
check "SIGPIPE: sat-encode ... | head -c 10 is quiet" sigpipe_quiet

check "sat-encode --help" sat-encode --help
check "sat-encode --version" sat-encode --version
check "sat-dump --help" sat-dump --help
check "sat-dump --version" sat-dump --version
check_bad "no arguments is a usage error" "no images" sat-encode
terminal_refused() {
    # script(1) gives the program a terminal as stdout (and stderr).
    local out
    out=$(script -qec "sat-encode $IMAGES/dog.jpg; echo status=\$?" /dev/null | tr -d '\r')
    grep -q '^sat-encode: refusing to write a binary stream to a terminal' <<<"$out" &&
        grep -q '^status=1$' <<<"$out" || { echo "$out" | head -3; return 1; }
}
check "binary to a terminal is refused" terminal_refused

# --- bad input: each a one-line error naming the input; the others still encoded ---
python3 - "$T" "$IMAGES" <<'PY'
import struct, sys, zlib
out, images = sys.argv[1], sys.argv[2]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def png(w, h, rows=None, color=2):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    body = chunk(b"IHDR", ihdr)
    if rows is not None:
        body += chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")
open(f"{out}/huge.png", "wb").write(png(100000, 100000, b"\0" * 16))
open(f"{out}/one.png", "wb").write(png(1, 1, b"\0\xff\x80\x00"))
cat = open(f"{images}/cat.png", "rb").read()
bad = bytearray(cat); bad[29] ^= 0xff           # the IHDR CRC
open(f"{out}/badcrc.png", "wb").write(bad)
open(f"{out}/trunc.png", "wb").write(cat[: len(cat) // 2])
dog = open(f"{images}/dog.jpg", "rb").read()
open(f"{out}/trunc.jpg", "wb").write(dog[: len(dog) // 3])
open(f"{out}/text.jpg", "w").write("this is not a JPEG\n")
open(f"{out}/empty.jpg", "wb").close()
PY
mkdir "$T/adir.jpg"

bad_image() {
    local name=$1 file=$2 pattern=$3
    check_bad "bad input: $name" "$file: .*$pattern" sat-encode -q "$IMAGES/dog.jpg" "$file" "$IMAGES/cat.png" -o "$T/batch.sat"
    local n
    n=$(sat-dump "$T/batch.sat" 2>/dev/null | wc -l)
    if [ "$n" = 2 ] && [ "$(wc -l < "$T/err")" = 1 ]; then ok "bad input: $name: the other two images encoded, one error line"
    else not_ok "bad input: $name: the other two images encoded, one error line" "records: $n; stderr: $(cat "$T/err")"; fi
}
bad_image "nonexistent path" "$T/nope.jpg" "No such file"
bad_image "a directory" "$T/adir.jpg" "directory"
bad_image "zero-byte file" "$T/empty.jpg" "empty"
bad_image "text file named .jpg" "$T/text.jpg" "not a JPEG, PNG or netpbm"
bad_image "truncated JPEG" "$T/trunc.jpg" "truncat|premature"
bad_image "truncated PNG" "$T/trunc.png" "truncat|premature|end of"
bad_image "PNG with a bad CRC" "$T/badcrc.png" "CRC"
bad_image "100000x100000 image" "$T/huge.png" "limit"

tiny_image() {
    sat-encode "$T/one.png" | sat-dump | jq -e '.image_width == 1 and .image_height == 1 and .h == 14' >/dev/null
}
check "a 1x1 image is encoded" tiny_image

pixel_limit_option() {
    sat-encode --max-pixels 1000 "$IMAGES/dog.jpg" > /dev/null 2> "$T/err" && return 1
    grep -q "limit of 1000 pixels" "$T/err"
}
check "--max-pixels is honoured" pixel_limit_option

no_partial_output() {
    sat-encode -o "$T/none.sat" "$T/nope.jpg" 2>/dev/null && return 1
    is_equal "$(ls "$T" | grep -c none.sat)" 0
}
check "-o with every image bad leaves no file, not even a temp file" no_partial_output

full_disk() {
    sat-encode "$IMAGES/dog.jpg" > /dev/full 2> "$T/err" && return 1
    grep -q "write error" "$T/err"
}
check "writing to a full disk is an error" full_disk

check_bad "an unreadable model is refused" "model|\.satm" sat-encode -m "$T/text.jpg" "$IMAGES/dog.jpg"

# --- sat-dump on bad streams ---
printf '\x82\xa4type\xa3foo\xa1v\x01\xc1\xc1' > "$T/garbage.sat"
check_bad "sat-dump: garbage after a record" "record 1 at byte 13: not msgpack" sat-dump "$T/garbage.sat"
head -c 300000 "$T/jpgs.sat" > "$T/cut.sat"
check_bad "sat-dump: a stream cut inside a record" "record 0 at byte 0: truncated" sat-dump "$T/cut.sat"
head -c 1500000 "$T/jpgs.sat" > "$T/cut2.sat" # a record of two f16 views: ~1.0 MB
check_bad "sat-dump: cut inside the second record" "record 1 at byte [0-9]+: truncated" sat-dump "$T/cut2.sat"
printf '\x81\xa1v\x01\x82\xa4type\xa3foo\xa1v\x01' > "$T/notype.sat"
check_bad "sat-dump: a map without type" "record 0 at byte 0: map has no string 'type'" sat-dump "$T/notype.sat"
notype_goes_on() { sat-dump "$T/notype.sat" 2>/dev/null | jq -e '.type == "foo"' >/dev/null; }
check "sat-dump: goes on after a map without type" notype_goes_on
check_bad "sat-dump: nonexistent file" "nope.sat: No such file" sat-dump "$T/nope.sat"
type_filter() {
    is_equal "$( (cat "$T/jpgs.sat"; printf '\x81\xa4type\xa3foo') | sat-dump -t foo | jq -r .type)" foo
}
check "sat-dump --type filters" type_filter
