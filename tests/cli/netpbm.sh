#!/bin/bash
# sat-encode reads netpbm images (libnetpbm) and a stream of concatenated
# images on stdin, as `ffmpeg -f image2pipe` writes a video's frames.  The
# netpbm files are made from the shared photos by netpbm's own tools; a
# format that holds the same pixels must give the same record, byte for byte.
. "$(dirname "$0")/lib.sh"

need() { command -v "$1" >/dev/null || { echo "netpbm tools missing ($1): scripts/install-deps.sh installs them" >&2; exit 1; }; }
need pngtopam

# enc FILE: the record of FILE read from stdin, with the id x
enc() { sat-encode -q --id "${2:-x}" - < "$1"; }

pngtopam "$IMAGES/cat.png" > "$T/cat.ppm"
pamtopnm -plain "$T/cat.ppm" > "$T/cat.p3"
pamtopam < "$T/cat.ppm" > "$T/cat.pam"
pamdepth 65535 "$T/cat.ppm" > "$T/cat16.ppm"
enc "$IMAGES/cat.png" > "$T/png.sat"

same_as_png() {
    enc "$T/$1" > "$T/$1.sat" && cmp "$T/png.sat" "$T/$1.sat"
}
check "a raw PPM (P6) gives the PNG's record" same_as_png cat.ppm
check "a plain PPM (P3) gives the PNG's record" same_as_png cat.p3
check "a PAM (P7, RGB) gives the PNG's record" same_as_png cat.pam
check "a 16-bit PPM gives the PNG's record" same_as_png cat16.ppm

# gray and bitmap images against PNGs of the same pixels (pnmtopng)
ppmtopgm "$T/cat.ppm" > "$T/cat.pgm"
pamditherbw "$T/cat.pgm" | pamtopnm > "$T/cat.pbm"
pnmtopng "$T/cat.pgm" > "$T/gray.png"
pnmtopng "$T/cat.pbm" > "$T/bw.png"
same_pixels() { cmp <(enc "$1") <(enc "$2"); }
check "a PGM (P5) gives the record of a gray PNG of it" same_pixels "$T/cat.pgm" "$T/gray.png"
check "a PBM (P4) gives the record of a PNG of it" same_pixels "$T/cat.pbm" "$T/bw.png"

# a netpbm file given by name, and its classification
classify_ppm() {
    is_equal "$(sat-encode --classify -k 1 "$T/cat.ppm" | cut -f1)" "Egyptian cat"
}
check "sat-encode FILE.ppm classifies cat.ppm as the PNG" classify_ppm

# --- frames on stdin ---
pngtopam "$IMAGES/bird.png" > "$T/bird.ppm"
frames=("$IMAGES/dog.jpg" "$IMAGES/cat.png" "$T/bird.ppm" "$T/cat.p3" "$IMAGES/eagle.jpg")
cat "${frames[@]}" > "$T/clip.frames"

frames_are_records() {
    sat-encode -q --id clip - < "$T/clip.frames" > "$T/clip.sat" || return 1
    is_equal "$(sat-dump "$T/clip.sat" | jq -r .id | tr '\n' ' ')" \
        "clip#0001 clip#0002 clip#0003 clip#0004 clip#0005 " || return 1
    local i=1 f
    : > "$T/each.sat"
    for f in "${frames[@]}"; do
        enc "$f" "$(printf 'clip#%04d' $i)" >> "$T/each.sat"
        i=$((i + 1))
    done
    cmp "$T/clip.sat" "$T/each.sat"
}
check "5 concatenated frames (JPEG, PNG, PPM, plain PPM) are 5 records, each as if alone" frames_are_records

default_ids() {
    is_equal "$(cat "$IMAGES/dog.jpg" "$IMAGES/dog.jpg" | sat-encode -q - | sat-dump | jq -r .id | tr '\n' ' ')" \
        "-#0001 -#0002 "
}
check "frames of stdin without --id are -#0001, -#0002" default_ids

one_keeps_id() {
    is_equal "$(sat-encode -q - < "$T/cat.ppm" | sat-dump | jq -r .id)" "-"
}
check "a single image on stdin keeps the id -" one_keeps_id

caption_frames() {
    local out
    out=$(sat-encode -q - < "$T/clip.frames" | sat-beam -q -f text) || return 1
    is_equal "$(cut -f1 <<<"$out" | tr '\n' ' ')" "-#0001 -#0002 -#0003 -#0004 -#0005 " || return 1
    awk -F'\t' 'NF != 2 || $2 !~ /^[a-z]/ { exit 1 }' <<<"$out"
}
check "sat-encode - | sat-beam captions every frame, in order" caption_frames

# A damaged frame ends stdin: the frames before it are written, one error
# line names the frame, the exit status is 1, other inputs go on.
cut_stream() {
    local rc
    { cat "$IMAGES/dog.jpg" "$T/cat.ppm"; head -c 5000 "$IMAGES/eagle.jpg"; } |
        sat-encode -q - "$IMAGES/parrot.jpg" > "$T/cut.sat" 2> "$T/cut.err"
    rc=$?
    is_equal "$rc" 1 || return 1
    is_equal "$(sat-dump "$T/cut.sat" | jq -r .id | tr '\n' ' ')" "-#0001 -#0002 $IMAGES/parrot.jpg " || return 1
    is_equal "$(cat "$T/cut.err")" "sat-encode: stdin (image 3): truncated JPEG (the stream ends inside it)"
}
check "a truncated last frame: the others written, one error line, exit 1" cut_stream

check_bad "text after a frame" "stdin \(image 2\): not a JPEG, PNG or netpbm image \(it looks like text\)" \
    sh -c "{ cat '$IMAGES/dog.jpg'; echo hello; } | sat-encode -q - > /dev/null"
check_bad "a PPM whose header says 0 wide" "stdin: invalid netpbm header: 0x4" \
    sh -c "printf 'P6\n0 4\n255\n' | sat-encode -q - > /dev/null"
check_bad "a truncated PPM file by name" "short.ppm: invalid netpbm image" \
    sh -c "head -c 3000 '$T/cat.ppm' > '$T/short.ppm'; sat-encode -q '$T/short.ppm' > /dev/null"

# --- a real video through ffmpeg's image2pipe ---
need ffmpeg
# two seconds of dog.jpg, then two of cat.png, read back at one frame a second
ffmpeg -loglevel error -loop 1 -t 2 -i "$IMAGES/dog.jpg" -loop 1 -t 2 -i "$IMAGES/cat.png" \
    -filter_complex '[0]scale=320:240,setsar=1[a];[1]scale=320:240,setsar=1[b];[a][b]concat=n=2' \
    -r 5 -pix_fmt yuv420p "$T/clip.mp4"
for codec in ppm png mjpeg; do
    video_frames() {
        ffmpeg -loglevel error -i "$T/clip.mp4" -vf fps=1 -f image2pipe -c:v "$codec" - |
            sat-encode -q --id clip - > "$T/$codec.sat" || return 1
        is_equal "$(sat-dump "$T/$codec.sat" | jq -r .id | tr '\n' ' ')" "clip#0001 clip#0002 clip#0003 clip#0004 " || return 1
        # frames of one still picture are alike (up to the video codec's
        # noise); the cut from the dog to the cat changes them far more
        sat-dump "$T/$codec.sat" | jq -r .data.mean | tr '\n' ' ' |
            awk '{ d = $1 - $2; c = $2 - $4; if (d < 0) d = -d; if (c < 0) c = -c
                   if (!(c > 0.05 && d < c / 3)) { print "feature means " $0; exit 1 } }' || return 1
        sat-beam -q -f text "$T/$codec.sat" | awk -F'\t' 'NF != 2 { exit 1 } END { exit NR != 4 }'
    }
    check "ffmpeg -f image2pipe -c:v $codec | sat-encode - | sat-beam: a caption a second" video_frames
done
