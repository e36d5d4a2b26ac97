#!/bin/bash
# Every example of every man page and of README.md runs as written (as jq
# tests its manual), in a scratch directory that holds the files the
# examples name: photo.jpg, dog.jpg, feats.sat, captions.sat, clip.mp4, a
# copy of models/, ../shared, scripts/, and small Flickr8k feature caches
# under the names the Makefile gives the real ones.  tests/cli/examples.py
# cuts the examples out; an example is one .RS/.RE block or ``` block.
#   run   it must exit 0 within RUN_LIMIT seconds;
#   long  hours of work as written (full training, the whole data set): it
#         must exit 0 or still be running, without having failed, after
#         LONG_LIMIT seconds;
#   ci    the quick start: its make and install steps must be what .ci/run
#         runs, the rest runs here.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN_LIMIT=${SAT_EXAMPLE_LIMIT:-300}
LONG_LIMIT=${SAT_EXAMPLE_LONG_LIMIT:-10}

python3 "$ROOT/tests/cli/examples.py" "$T/examples" "$ROOT"/man/*.1 "$ROOT/README.md" || exit 1

# --- the scratch directory ---
S=$T/box/work
F=$SAT_SHARED/data/flickr8k
mkdir -p "$S"/{data,images,build/soft,build/flickr8k,run}
ln -s "$SAT_SHARED" "$T/box/shared"
ln -s "$SAT_BIN" "$S/bin"
ln -s "$ROOT/scripts" "$S/scripts"
cp -r "${SAT_MODEL_DIR:-$ROOT/models}" "$S/models"
export SAT_MODEL_DIR=$S/models
cd "$S" || exit 1
cp "$IMAGES/dog.jpg" photo.jpg
cp "$IMAGES/dog.jpg" dog.jpg
cp "$IMAGES/eagle.jpg" a.jpg
cp "$IMAGES/parrot.jpg" b.jpg
cp "$IMAGES/horses.jpg" "$IMAGES/person.jpg" data/
cp "$IMAGES/giraffe.jpg" "$IMAGES/hot_dog.jpg" "$IMAGES/horses.jpg" "$IMAGES/person.jpg" \
    "$IMAGES/parrot.jpg" images/
# mpirun as root (CI runs as root), more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ln -s "$F/Flickr8k.token.txt" Flickr8k.token.txt
for i in 8 9 10; do cp models/sat-decoder.satm "run/epoch$i.satm"; done
cp models/sat-decoder.satm build/soft/best.satm
{
    sat-encode -q dog.jpg "$IMAGES/cat.png" -o feats.sat &&
        sat-encode -q dog.jpg | sat-decode > captions.sat &&
        for split in train dev test; do # one view, as scripts/experiment.mk makes them
            head -12 "$F/Flickr_8k.${split}Images.txt" | sed "s|^|../shared/data/flickr8k/images/|" |
                sat-encode -q --no-flip -T - -o "build/flickr8k/$split.sat" || exit 1
        done &&
        head -12 "$F/Flickr_8k.testImages.txt" | sed "s|^|$F/images/|" | sat-encode -q -T - -o test.sat
} || { not_ok "the examples' files" "could not be made"; exit 1; }
if command -v ffmpeg >/dev/null; then
    ffmpeg -loglevel error -loop 1 -i dog.jpg -t 3 -r 5 -vf scale=320:240 -pix_fmt yuv420p clip.mp4
fi

# in_ci CMD: CMD is a line of .ci/run.
in_ci() { grep -qxF "$1" "$ROOT/.ci/run" || { echo "'$1' is not what .ci/run runs"; return 1; }; }

# ci_block FILE: each command joined by && is in .ci/run or runs here.
ci_block() {
    local line cmd
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        while IFS= read -r cmd; do
            cmd=$(sed 's/^ *//; s/ *$//' <<<"$cmd")
            case $cmd in
            scripts/install-deps.sh | make | make\ *) in_ci "$cmd" || return 1 ;;
            *) timeout "$RUN_LIMIT" bash -eo pipefail -c "$cmd" </dev/null >"$T/ci.out" || return 1 ;;
            esac
        done < <(sed 's/ && /\n/g' <<<"$line")
    done <"$1"
}

# run_example SCRIPT: it exits 0 within RUN_LIMIT seconds (its output kept aside).
run_example() {
    timeout "$RUN_LIMIT" bash -eo pipefail "$1" </dev/null >"$T/run.out" 2>"$T/run.err" ||
        { echo "exit status $?"; tail -5 "$T/run.err"; return 1; }
}

declare -A seen # an example written twice (README and a man page) runs once
for script in "$T"/examples/*.sh; do
    base=${script%.sh}
    name=$(cat "$base.name")
    mode=$(cat "$base.mode")
    sum=$(md5sum <"$script")
    if [ -n "${seen[$sum]:-}" ]; then
        ok "$name: the same as ${seen[$sum]}"
        continue
    fi
    seen[$sum]=$name
    [ -n "${SAT_EXAMPLE_TIMES:-}" ] && echo "# $(date +%s) $name" >&2
    case $mode in
    run) check "$name: $(head -c 70 "$script" | tr '\n' ' ')" run_example "$script" ;;
    long)
        timeout "$LONG_LIMIT" bash -eo pipefail "$script" </dev/null >"$T/long.out" 2>&1
        rc=$?
        if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then ok "$name (long: ran ${LONG_LIMIT} s without failing)"
        else not_ok "$name (long)" "exit status $rc: $(tail -5 "$T/long.out")"
        fi ;;
    ci) check "$name (the quick start: CI's steps, then the caption)" ci_block "$script" ;;
    esac
done
