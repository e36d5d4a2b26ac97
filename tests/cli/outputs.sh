#!/bin/bash
# outputs.sh — where -o writes (issue 14, items 2 and 7): a device node, a
# FIFO or a symlink named by -o is written through, never replaced by a
# regular file; the temp files of killed writers do not pile up.
#
# Device nodes are made here, in $T, with mknod (root only; skipped
# otherwise): never point a test at the real /dev.
. "$(dirname "$0")/lib.sh"

DOG=$IMAGES/dog.jpg
F=$SAT_SHARED/data/flickr8k
sat-encode -q "$DOG" > "$T/dog.sat"
sat-beam < "$T/dog.sat" > "$T/beam.sat"

# -- a stand-in for /dev/full and /dev/null, in $T --
if mknod "$T/full" c 1 7 2>/dev/null && mknod "$T/null" c 1 3 2>/dev/null; then
    full_device() {
        ! sat-encode -q "$DOG" -o "$T/full" 2> "$T/err" && [ -c "$T/full" ] &&
            is_equal "$(wc -l < "$T/err")" 1 && grep -q '^sat-encode: .*No space left on device' "$T/err"
    }
    check "sat-encode -o FULL-DEVICE: one-line ENOSPC error, the node stays a device" full_device
    null_device() {
        "$@" 2>&1 && [ -c "$T/null" ] && is_equal "$(stat -c '%t,%T' "$T/null")" "1,3" &&
            is_equal "$(ls "$T" | grep -c '^null\.tmp')" 0
    }
    check "sat-encode -o NULL-DEVICE writes into it and leaves it a device" \
        null_device sat-encode -q "$DOG" -o "$T/null"
    check "sat-heatmap -o NULL-DEVICE" \
        null_device sat-heatmap -o "$T/null" "$T/beam.sat"
    check "sat-import -o NULL-DEVICE" \
        null_device sat-import -o "$T/null" "$SAT_MODEL_DIR/sat-decoder.satm"
    ln -s null "$T/nulllink"
    link_to_device() {
        sat-encode -q "$DOG" -o "$T/nulllink" && [ -L "$T/nulllink" ] && [ -c "$T/null" ]
    }
    check "a symlink to a device node: written through, both stay" link_to_device
    check_bad "sat-import -o FULL-DEVICE: write error" "full: write error: No space left" \
        sat-import -o "$T/full" "$SAT_MODEL_DIR/sat-decoder.satm"
else
    echo "# not root (mknod failed): the device-node checks are skipped"
fi

# -- a FIFO: the reader gets the stream, the FIFO stays a FIFO --
mkfifo "$T/fifo"
through_fifo() {
    timeout 60 cat "$T/fifo" > "$T/from-fifo" &  # (no writer ever opens a replaced FIFO)
    local reader=$!
    "$@" -o "$T/fifo" || { kill $reader; return 1; }
    wait $reader && [ -p "$T/fifo" ] && [ -s "$T/from-fifo" ]
}
fifo_encode() { through_fifo sat-encode -q "$DOG" && cmp "$T/from-fifo" "$T/dog.sat"; }
check "sat-encode -o FIFO: the reader gets the stream, the FIFO stays" fifo_encode
fifo_heatmap() {
    through_fifo sat-heatmap "$T/beam.sat" > /dev/null &&
        is_equal "$(head -c 4 "$T/from-fifo" | tail -c 3)" PNG
}
check "sat-heatmap -o FIFO" fifo_heatmap

# -- symlinks: the file they name gets the data, atomically beside it --
mkdir "$T/real"
echo old > "$T/real/feats.sat"
ln -s real/feats.sat "$T/link.sat"            # relative
ln -s "$T/link.sat" "$T/link2.sat"            # a chain
ln -s real/new.sat "$T/dangling.sat"          # to a file that is not there yet
symlink_kept() {
    sat-encode -q "$DOG" -o "$T/link2.sat" && [ -L "$T/link.sat" ] && [ -L "$T/link2.sat" ] &&
        cmp "$T/real/feats.sat" "$T/dog.sat" && is_equal "$(ls "$T/real")" feats.sat
}
check "sat-encode -o SYMLINK (a chain, relative): the link stays, its target gets the data" symlink_kept
dangling_kept() {
    sat-encode -q "$DOG" -o "$T/dangling.sat" && [ -L "$T/dangling.sat" ] && cmp "$T/real/new.sat" "$T/dog.sat"
}
check "sat-encode -o DANGLING-SYMLINK creates the file it names" dangling_kept
ln -s real/fig.png "$T/fig.png"
heatmap_link() {
    sat-heatmap -o "$T/fig.png" "$T/beam.sat" > /dev/null && [ -L "$T/fig.png" ] &&
        is_equal "$(head -c 4 "$T/real/fig.png" | tail -c 3)" PNG
}
check "sat-heatmap -o SYMLINK" heatmap_link
ln -s real/dec.satm "$T/dec.satm"
import_link() {
    sat-import --f16 -o "$T/dec.satm" "$SAT_MODEL_DIR/sat-decoder.satm" 2> /dev/null && [ -L "$T/dec.satm" ] &&
        cmp "$T/real/dec.satm" "$SAT_MODEL_DIR/sat-decoder.satm"
}
check "sat-import -o SYMLINK" import_link
ln -s real/vocab.txt "$T/vocab.txt"
head -20 "$F/Flickr_8k.trainImages.txt" > "$T/train.txt"
vocab_link() {
    sat-vocab -c "$F/Flickr8k.token.txt" -s "$T/train.txt" -o "$T/vocab.txt" 2> /dev/null &&
        [ -L "$T/vocab.txt" ] && [ -s "$T/real/vocab.txt" ]
}
check "sat-vocab -o SYMLINK" vocab_link

# sat-train -o and its checkpoint through symlinks (a tiny run)
sed "s|^|$F/images/|" "$T/train.txt" | sat-encode -q --stride 32 -T - -o "$T/feats.sat"
ln -s real/model.satm "$T/model.satm"
mkdir "$T/ckpt" && ln -s ../real/ckpt.satm "$T/ckpt/checkpoint.satm"
train_link() {
    sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
        --dev "$T/train.txt" --embed 8 --hidden 8 --att-size 8 --batch 16 --min-count 2 --epochs 1 \
        --threads 1 -q -o "$T/model.satm" --checkpoint "$T/ckpt" 2> /dev/null &&
        [ -L "$T/model.satm" ] && [ -s "$T/real/model.satm" ] &&
        [ -L "$T/ckpt/checkpoint.satm" ] && [ -s "$T/real/ckpt.satm" ]
}
check "sat-train -o SYMLINK and a symlinked checkpoint" train_link

# -- what cannot be written is refused before any work --
mkdir "$T/adir"
check_bad "-o DIRECTORY is refused" "adir: is a directory" sat-encode -q "$DOG" -o "$T/adir"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
socket_refused() {
    check_bad "-o SOCKET is refused" "sock: is a socket" sat-encode -q "$DOG" -o "$T/sock"
    [ -S "$T/sock" ] || not_ok "-o SOCKET: the socket stays"
}
socket_refused

# -- item 7: the temp file of a killed writer is removed by the next one --
# A writer that has opened its output and waits for more image names on a
# FIFO (so that it is killed mid-write, not by chance).
start_writer() {
    rm -f "$T/list"
    mkfifo "$T/list"
    sat-encode -q -T - -o "$T/out.sat" < "$T/list" 2> "$T/writer.err" &
    writer=$!
    exec 9> "$T/list"
    echo "$IMAGES/cat.png" >&9
    local i
    for i in $(seq 1 500); do
        compgen -G "$T/out.sat.tmp.*" > /dev/null && return 0
        sleep 0.01
    done
    echo "no temp file appeared"
    return 1
}
temps() { ls -A "$T" | grep -c '^out\.sat\.tmp\.'; }
stale_removed() {
    start_writer || return 1
    kill -9 $writer
    wait $writer 2> /dev/null
    exec 9>&-
    is_equal "$(temps)" 1 || return 1
    sat-encode -q "$DOG" -o "$T/out.sat" && is_equal "$(temps)" 0 && cmp "$T/out.sat" "$T/dog.sat"
}
check "the temp file of a writer killed by -9 is removed by the next writer" stale_removed
live_kept() {
    start_writer || return 1
    sat-encode -q "$DOG" -o "$T/out.sat" || return 1
    is_equal "$(temps)" 1 || return 1
    exec 9>&-
    wait $writer || { cat "$T/writer.err"; return 1; }
    is_equal "$(temps)" 0 && is_equal "$(sat-dump "$T/out.sat" | jq -r .id)" "$IMAGES/cat.png"
}
check "the temp file of a live writer is left alone (it commits afterwards)" live_kept

# Which temp files count as stale, at sat-train's checkpoint: only those of
# the path being written (PATH.tmp.PID.XXXXXX), whose PID is gone and which
# nobody holds locked (the lock covers a writer in another pid namespace).
dead_pid=$(sh -c 'echo $$')
mkdir "$T/ck2"
for name in "checkpoint.satm.tmp.$dead_pid.AbCdEf" "checkpoint.satm.tmp.$$.AbCdEf" \
            "other.satm.tmp.$dead_pid.AbCdEf" "checkpoint.satm.tmp.$dead_pid.locked"; do
    echo torn > "$T/ck2/$name"
done
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(120)' \
    "$T/ck2/checkpoint.satm.tmp.$dead_pid.locked" "$T/locked" &
locker=$!
stale_kinds() {
    local i
    for i in $(seq 1 500); do [ -e "$T/locked" ] && break; sleep 0.01; done
    sat-train --captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt" \
        --dev "$T/train.txt" --embed 8 --hidden 8 --att-size 8 --batch 16 --min-count 2 --epochs 1 \
        --threads 1 -q -o "$T/m2.satm" --checkpoint "$T/ck2" 2> /dev/null || return 1
    [ -s "$T/ck2/checkpoint.satm" ] &&
        is_equal "$(ls "$T/ck2" | grep '\.tmp\.' | sort | tr '\n' ' ')" \
            "$(printf '%s\n' "checkpoint.satm.tmp.$$.AbCdEf" "checkpoint.satm.tmp.$dead_pid.locked" \
                "other.satm.tmp.$dead_pid.AbCdEf" | sort | tr '\n' ' ')" # PIDs wrap: sorted alike
}
check "sat-train --checkpoint: a dead writer's temp is removed; a live, a locked and another file's are kept" stale_kinds
kill $locker
wait $locker 2> /dev/null || true
