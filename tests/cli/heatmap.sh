#!/bin/bash
# sat-heatmap: the figures' size follows the layout options, the hot cell of
# α is the bright spot, reruns are byte-identical, and every bad input of the
# heatmap issue gives a one-line error while the other captions still go on.
. "$(dirname "$0")/lib.sh"

DOG=$IMAGES/dog.jpg

# Records are written by hand (msgpack is simple): mk.py caption|features KEY=VALUE...
#   caption: id=, words="a dog", hot="r,c;r,c" (one-hot α per word, cycled),
#            grid=HxW, noalpha=1, alpha_len=N (cut α), locations=i,j
#   features: id=, thumbnail=PNGFILE
cat > "$T/mk.py" <<'PY'
import struct, sys
def hdr(n, small, fix, codes):
    if n < small: return bytes([fix | n])
    for code, fmt in codes:
        if n < 1 << (8 * struct.calcsize(fmt)): return bytes([code]) + struct.pack('>' + fmt, n)
def enc(v):
    if isinstance(v, int):
        return bytes([v]) if v < 128 else b'\xce' + struct.pack('>I', v)
    if isinstance(v, str):
        b = v.encode(); return hdr(len(b), 32, 0xa0, [(0xd9, 'B'), (0xda, 'H'), (0xdb, 'I')]) + b
    if isinstance(v, bytes):
        return hdr(len(v), 0, 0, [(0xc4, 'B'), (0xc5, 'H'), (0xc6, 'I')]) + v
    if isinstance(v, list):
        return hdr(len(v), 16, 0x90, [(0xdc, 'H')]) + b''.join(map(enc, v))
    return hdr(len(v), 16, 0x80, [(0xde, 'H')]) + b''.join(enc(k) + enc(x) for k, x in v.items())
kind, args = sys.argv[1], dict(a.split('=', 1) for a in sys.argv[2:])
rec = {'type': kind, 'v': 1, 'id': args['id']}
if kind == 'features':
    rec['thumbnail'] = open(args['thumbnail'], 'rb').read()
else:
    words = args['words'].split()
    gh, gw = map(int, args.get('grid', '14x14').split('x'))
    rec.update(text=' '.join(words), words=words, attention='soft', alpha_h=gh, alpha_w=gw)
    hot = [tuple(map(int, c.split(','))) for c in args.get('hot', '0,0').split(';')]
    if 'noalpha' not in args:
        a = [float((r, c) == hot[t % len(hot)]) for t in range(len(words)) for r in range(gh) for c in range(gw)]
        rec['alpha'] = struct.pack('<%df' % len(a), *a)[:int(args.get('alpha_len', 4 * len(a)))]
    if 'locations' in args:
        rec['attention'] = 'hard-sample'
        rec['locations'] = [int(x) for x in args['locations'].split(',')]
sys.stdout.buffer.write(enc(rec))
PY
mk() { python3 "$T/mk.py" "$@"; }

# png.py FILE: "WIDTH HEIGHT"; png.py FILE SIZE GRID X,Y...: for each SIZExSIZE
# panel at X,Y, the cell (row*GRID+col) of its GRIDxGRID cells with the
# highest mean brightness, one line each.
cat > "$T/png.py" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR'
w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', data[16:29])
if len(sys.argv) == 2:
    print(w, h); sys.exit()
assert (depth, ctype, interlace) == (8, 2, 0)
idat, pos = b'', 8
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    if kind == b'IDAT': idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw, stride, rows, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - 3] if i >= 3 else 0
        b, c = prev[i], prev[i - 3] if i >= 3 else 0
        p = a + b - c
        pred = [0, a, b, (a + b) // 2,
                a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
        line[i] = (line[i] + pred) & 255
    rows.append(line); prev = line
size, g = int(sys.argv[2]), int(sys.argv[3])
def mean(x0, y0, cy, cx):
    ys = range(y0 + cy * size // g, y0 + (cy + 1) * size // g)
    xs = range(x0 + cx * size // g, x0 + (cx + 1) * size // g)
    return sum(sum(rows[y][3 * x:3 * x + 3]) for y in ys for x in xs) / (len(ys) * len(xs))
for xy in sys.argv[4:]:
    x0, y0 = map(int, xy.split(','))
    print(max((mean(x0, y0, cy, cx), cy * g + cx) for cy in range(g) for cx in range(g))[1])
PY
png_size() { python3 "$T/png.py" "$1"; }

# The layout the man page gives: margin = size/28 (>= 2), a label band of
# size/6 (>= 12) under each panel, panels in rows of --cols.
expected_size() {
    local panels=$1 cols=$2 size=$3
    local margin=$((size / 28 > 2 ? size / 28 : 2)) label=$((size / 6 > 12 ? size / 6 : 12))
    [ "$cols" -gt "$panels" ] && cols=$panels
    local rows=$(((panels + cols - 1) / cols))
    echo "$((margin + cols * (size + margin))) $((margin + rows * (size + label + margin)))"
}

WORDS="a dog sits beside a bicycle near a truck"
HOT="10,3;10,3;10,4;8,6;7,7;7,7;3,11;3,11;3,11"
mk caption id="$DOG" words="$WORDS" hot="$HOT" > "$T/dog.sat"

default_figure() {
    is_equal "$(sat-heatmap -o "$T/dog.png" < "$T/dog.sat")" "$T/dog.png" || return 1
    is_equal "$(png_size "$T/dog.png")" "$(expected_size 10 5 224)"
}
check "-o FILE: the image and 9 word panels in rows of 5, path printed" default_figure

layout_options() {
    sat-heatmap --cols 3 --size 100 -o "$T/c3.png" "$T/dog.sat" >/dev/null || return 1
    is_equal "$(png_size "$T/c3.png")" "$(expected_size 10 3 100)" || return 1
    sat-heatmap --cols 20 --size 64 -o "$T/c20.png" "$T/dog.sat" >/dev/null || return 1
    is_equal "$(png_size "$T/c20.png")" "$(expected_size 10 20 64)" || return 1
    sat-heatmap --word 5 -o "$T/w5.png" "$T/dog.sat" >/dev/null || return 1
    is_equal "$(png_size "$T/w5.png")" "$(expected_size 2 5 224)"
}
check "--cols, --size and --word set the figure's size" layout_options

# At --size 112 (margin 4, labels 18) panel i starts at
# x = 4 + (i % 5) * 116, y = 4 + (i / 5) * 134.
panels() { local i; for i in "$@"; do printf '%d,%d ' $((4 + i % 5 * 116)) $((4 + i / 5 * 134)); done; }

hot_cell_is_brightest() {
    local want
    sat-heatmap --size 112 -o "$T/small.png" "$T/dog.sat" >/dev/null || return 1
    want=$(tr ';' '\n' <<<"$HOT" | awk -F, '{ print $1 * 14 + $2 }')
    # shellcheck disable=SC2046
    is_equal "$(python3 "$T/png.py" "$T/small.png" 112 14 $(panels 1 2 3 4 5 6 7 8 9))" "$want"
}
check "the brightest cell of each word panel is its hot α cell" hot_cell_is_brightest

hard_attention() {
    mk caption id="$DOG" words="a dog" noalpha=1 locations=0,143 > "$T/hard.sat"
    sat-heatmap --size 112 -o "$T/hard.png" "$T/hard.sat" >/dev/null || return 1
    # shellcheck disable=SC2046
    is_equal "$(python3 "$T/png.py" "$T/hard.png" 112 14 $(panels 1 2) | tr '\n' ' ')" "0 143 "
}
check "hard attention: the sampled location is the bright square" hard_attention

byte_identical() {
    sat-heatmap -o "$T/again.png" "$T/dog.sat" >/dev/null || return 1
    cmp "$T/dog.png" "$T/again.png"
}
check "a rerun gives a byte-identical PNG" byte_identical

colormap_differs() {
    sat-heatmap --colormap -o "$T/jet.png" "$T/dog.sat" >/dev/null || return 1
    is_equal "$(png_size "$T/jet.png")" "$(png_size "$T/dog.png")" || return 1
    ! cmp -s "$T/jet.png" "$T/dog.png"
}
check "--colormap draws another palette in the same layout" colormap_differs

dir_naming() {
    { cat "$T/dog.sat"; mk caption id="$IMAGES/horses.jpg" words="two horses" hot="5,5"; cat "$T/dog.sat"
      mk caption id="other/dog.jpg" words="a dog" hot="1,1"; } > "$T/many.sat"
    local out
    out=$(sat-heatmap -o "$T/figs/" --root "$IMAGES" "$T/many.sat") || return 1
    is_equal "$out" "$(printf '%s\n' "$T/figs/dog.png" "$T/figs/horses.png" "$T/figs/dog-1.png" "$T/figs/dog-2.png")" || return 1
    is_equal "$(ls "$T/figs" | tr '\n' ' ')" "dog-1.png dog-2.png dog.png horses.png " || return 1
    is_equal "$(png_size "$T/figs/horses.png")" "$(expected_size 3 5 224)"
}
check "-o DIR/: one file per caption named from the id, -N for repeats" dir_naming

root_option() {
    mk caption id="/data/moved/dog.jpg" words="a dog" > "$T/moved.sat"
    mk caption id="dog.jpg" words="a dog" > "$T/relative.sat"
    sat-heatmap --root "$IMAGES" -o "$T/moved.png" "$T/moved.sat" >/dev/null || return 1
    sat-heatmap --root "$IMAGES" -o "$T/relative.png" "$T/relative.sat" >/dev/null || return 1
    cmp "$T/moved.png" "$T/relative.png"
}
check "--root finds ROOT/ID and ROOT/BASENAME(ID)" root_option

thumbnail_fallback() {
    { mk features id="/gone/bird.png" thumbnail="$IMAGES/bird.png"
      mk caption id="/gone/bird.png" words="a bird" hot="4,4"; } > "$T/thumb.sat"
    is_equal "$(sat-heatmap -o "$T/thumb/" "$T/thumb.sat")" "$T/thumb/bird.png" || return 1
    is_equal "$(png_size "$T/thumb/bird.png")" "$(expected_size 3 5 224)"
}
check "a missing image is taken from its features record's thumbnail" thumbnail_fallback

# issue 12: the thumbnail reaches sat-heatmap through a captioning stage
thumbnail_through_stages() {
    local p
    for p in sat-beam sat-decode; do
        sat-encode --thumbnail - < "$DOG" | "$p" -f msgpack | sat-heatmap -o "$T/$p-thumb.png" >/dev/null \
            || return 1
        [ "$(png_size "$T/$p-thumb.png")" != "" ] || return 1
    done
    # one thumbnail record, before the caption; none with --keep-features (the features carry it)
    is_equal "$(sat-encode --thumbnail - < "$DOG" | sat-beam -f msgpack | sat-dump | jq -r .type | tr '\n' ' ')" \
        "thumbnail caption " || return 1
    is_equal "$(sat-encode --thumbnail - < "$DOG" | sat-beam -f msgpack --keep-features | sat-dump | jq -r .type | tr '\n' ' ')" \
        "features caption "
}
check "sat-encode --thumbnail - | sat-beam | sat-heatmap: the thumbnail is carried" thumbnail_through_stages

ignores_other_records() {
    { mk features id="$DOG" thumbnail="$IMAGES/bird.png"; } > "$T/feat.sat"
    is_equal "$(sat-heatmap -o "$T/none/" "$T/feat.sat")" "" || return 1
    [ -z "$(ls "$T/none")" ]
}
check "records other than captions write nothing" ignores_other_records

# --- bad input: an error naming the record and id; the next caption still goes on ---
{ mk caption id="$DOG" words="a dog" noalpha=1; mk caption id="$IMAGES/horses.jpg" words="horses" hot="2,2"; } > "$T/noalpha.sat"
check_bad "a caption without alpha" "record 0 \(id .*dog.jpg\): .*no alpha" sat-heatmap -o "$T/na/" "$T/noalpha.sat"
check "... and the next caption still gets its PNG" test -s "$T/na/horses.png"
check "... and no PNG for the bad one" test ! -e "$T/na/dog.png"

mk caption id="$DOG" words="a dog" alpha_len=700 > "$T/short.sat"
check_bad "alpha of the wrong size" "record 0 \(id .*dog.jpg\): alpha has 700 bytes, expected 1568" sat-heatmap -o "$T/x.png" "$T/short.sat"
mk caption id="$DOG" words="a dog" locations=0,196 > "$T/badloc.sat"
check_bad "a location outside the grid" "location 1" sat-heatmap -o "$T/x.png" "$T/badloc.sat"

{ mk caption id="/nonexistent/cat.png" words="a cat"; cat "$T/dog.sat"; } > "$T/missing.sat"
check_bad "an image that is not found" "record 0 \(id /nonexistent/cat.png\): image not found" \
    sat-heatmap -o "$T/miss/" "$T/missing.sat"
check "... and the next caption still gets its PNG" test -s "$T/miss/dog.png"

printf 'not an image' > "$T/fake.jpg"
mk caption id="$T/fake.jpg" words="a dog" > "$T/fake.sat"
check_bad "an image that cannot be decoded" "record 0 \(id .*fake.jpg\): .*fake.jpg: not a JPEG, PNG or netpbm" \
    sat-heatmap -o "$T/x.png" "$T/fake.sat"
check "no PNG is left behind for failed captions" test ! -e "$T/x.png"

check_bad "--word past the caption's end" "--word 9: the caption has 9 words" sat-heatmap --word 9 -o "$T/x.png" "$T/dog.sat"
{ cat "$T/dog.sat" "$T/dog.sat"; } > "$T/two.sat"
check_bad "-o FILE with two captions" "takes one caption.*-o DIR/" sat-heatmap -o "$T/one.png" "$T/two.sat"
check "... and writes no file (issue 12: nothing half done)" test ! -e "$T/one.png"
existing_dir() {
    mkdir -p "$T/figs"
    is_equal "$(sat-heatmap -o "$T/figs" "$T/two.sat" | tr '\n' ' ')" "$T/figs/dog.png $T/figs/dog-1.png "
}
check "-o naming an existing directory (no final /) writes one file per caption into it" existing_dir
head -c 300 "$T/dog.sat" > "$T/trunc.sat"
check_bad "a truncated stream" "record 0 at byte 0: truncated" sat-heatmap -o "$T/x.png" "$T/trunc.sat"
check_bad "a font that does not exist" "font /nonexistent.ttf: No such file" sat-heatmap --font /nonexistent.ttf -o "$T/x.png" "$T/dog.sat"
check_bad "SAT_FONT that is not a font" "font .*dog.sat: not a scalable font" env SAT_FONT="$T/dog.sat" sat-heatmap -o "$T/x.png" "$T/dog.sat"
check_bad "--size out of range" "--size" sat-heatmap --size 5 "$T/dog.sat"

other_font() {
    SAT_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf sat-heatmap -o "$T/serif.png" "$T/dog.sat" >/dev/null || return 1
    ! cmp -s "$T/serif.png" "$T/dog.png"
}
check "SAT_FONT picks the font of the words" other_font

check "--help" bash -c 'sat-heatmap --help | grep -q -- "--colormap"'
check "--version" bash -c 'sat-heatmap --version | grep -Eq "^sat-heatmap \(sat\) [0-9]"'
