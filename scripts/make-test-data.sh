#!/bin/bash
# make-test-data.sh — write the synthetic fixtures of the data-free test tier
# (make check) into tests/data/, from the committed caption file and split
# lists there; run once from the repository root after `make programs`, and
# commit what it writes.  Nothing here comes from ../shared:
#   features.sat  one features record per image of captions.txt: a 3x3 grid
#                 of 8 channels (f16), a pattern per kind of image (dog, boy)
#                 plus a little per-image variation, and a 12x12 PNG thumbnail
#   decoder.satm  a tiny soft-attention decoder (embed 8, LSTM 16, attention
#                 8) trained by sat-train on the two training images
#   decoded.sat   the tiny decoder's greedy caption records of all four images
#   hyps.txt      the same as text lines, the hypotheses that
#                 tests/golden/eval*.test score
# Regenerating changes decoder.satm's weights only where the BLAS kernels
# round differently; the golden outputs (tests/golden/*.ok) may then need
# their sha256 lines updated, which the golden runner's diff shows.
set -eu
cd "$(dirname "$0")/.."
D=tests/data
export PATH=$PWD/bin:$PATH OPENBLAS_NUM_THREADS=1

python3 - "$D/features.sat" <<'PY'
import hashlib, struct, sys, zlib

def pack(x):
    """The msgpack subset a features record needs (keys in insertion order)."""
    if isinstance(x, dict):
        return bytes([0x80 | len(x)]) + b"".join(pack(k) + pack(v) for k, v in x.items())
    if isinstance(x, str):
        b = x.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
    if isinstance(x, int):
        return bytes([x]) if x < 128 else b"\xcd" + struct.pack(">H", x)
    if isinstance(x, bytes):
        return (b"\xc4" + bytes([len(x)]) if len(x) < 256 else b"\xc5" + struct.pack(">H", len(x))) + x
    raise TypeError(x)

def png(w, h, rgb):
    """A w x h RGB PNG of rgb(x, y)."""
    raw = b"".join(b"\0" + b"".join(bytes(rgb(x, y)) for x in range(w)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

H = W = 3
C = 8
images = ["1001_dog.jpg", "1002_boy.jpg", "1003_dog.jpg", "1004_boy.jpg"]
encoder = {"name": "synthetic", "sha256": hashlib.sha256(b"sat test data").hexdigest(), "size": 12, "stride": 4}
out = b""
for k, name in enumerate(images):
    dog = "dog" in name
    values = []
    for y in range(H):
        for x in range(W):
            centre = 1.0 if (y, x) == (1, 1) else 0.25
            for c in range(C):
                on = (c < 4) == dog
                values.append((2.0 if on else 0.0) * centre + 0.125 * ((k * 7 + y * 5 + x * 3 + c) % 5))
    colour = (150, 100, 50) if dog else (40, 90, 200)
    thumb = png(12, 12, lambda x, y: colour if 3 <= x < 9 and 3 <= y < 9 else (230, 230, 230))
    out += pack({"type": "features", "v": 1, "id": name, "h": H, "w": W, "c": C, "dtype": "f16",
                 "data": struct.pack("<%de" % len(values), *values), "image_width": 12,
                 "image_height": 12, "encoder": encoder, "thumbnail": thumb})
open(sys.argv[1], "wb").write(out)
PY

sat-train --captions "$D/captions.txt" --features "$D/features.sat" --train "$D/train.txt" \
    --min-count 1 --embed 8 --hidden 16 --att-size 8 --batch 5 \
    --dropout 0 --lr 1e-2 --epochs 200 --patience 1000 --threads 1 --name sat-test-decoder -q \
    -o "$D/decoder.satm"
sat-decode -m "$D/decoder.satm" -q "$D/features.sat" > "$D/decoded.sat"
sat-decode -m "$D/decoder.satm" -q -f text "$D/features.sat" > "$D/hyps.txt"
