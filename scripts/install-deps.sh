#!/bin/bash
# Install the Debian packages sat needs to build and test (run as root, or
# with sudo available).  Safe to run again: it installs only what is missing.
set -euo pipefail
packages=(
    build-essential pkg-config
    libjpeg62-turbo-dev libpng-dev libopenblas-dev libmsgpack-dev libssl-dev   # build
    libnetpbm-dev                                                              # sat-encode: netpbm
    libjansson-dev                                                             # JSON caption files
    libopenmpi-dev                                                             # mpirun sat-train
    libfreetype-dev fonts-dejavu-core                                          # sat-heatmap
    libstemmer-dev wordnet-dev wordnet-base                                    # sat-eval: METEOR
    libcmocka-dev jq python3 bsdutils netpbm ffmpeg openmpi-bin parallel       # tests
)
# Optional, not installed here: make bench's PyTorch anchors (scripts/bench_torch.py,
# scripts/bench_torch_decoder.py) need python3-torch, and the decoder's python3-msgpack;
# without them make bench prints "PyTorch anchor not run" / "no anchor".
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
