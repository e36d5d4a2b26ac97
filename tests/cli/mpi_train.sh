#!/bin/bash
# mpirun -np 2 sat-train (issue 11, item 1): two ranks, each a share of every
# batch, train the weights of one process up to the order of float sums, with
# the same dev BLEU, summing in the memory they share or in messages; rank 0
# alone writes; a killed rank stops the job, and --resume goes on with 2
# ranks or with 1.  The checkpoints compared hold the
# optimizer's moments, which each rank steps for its slice of the weights
# alone and rank 0 gathers before writing.  A tiny decoder on 24 Flickr8k
# training images and 8 dev images at output stride 32 (7x7).
. "$(dirname "$0")/lib.sh"
command -v mpirun >/dev/null || { skip "mpirun -np 2 sat-train" "no mpirun: scripts/install-deps.sh installs openmpi-bin"; exit 0; }
flickr8k_sliver 24 8
args=(--captions "$F/Flickr8k.token.txt" --features "$T/feats.sat" --train "$T/train.txt"
      --dev "$T/dev.txt" --embed 8 --hidden 16 --att-size 8 --batch 16 --min-count 2
      --patience 1000 --threads 1 -q)
# OPENBLAS_NUM_THREADS: one BLAS thread per rank whatever --threads says
mpirun2=(mpirun --allow-run-as-root --oversubscribe -x OPENBLAS_NUM_THREADS=1 -np 2)
two() { "${mpirun2[@]}" sat-train "$@"; }
# The tolerance on a weight: float sums taken in another order, through 3 epochs of Adam.
TOL=1e-5

# max_diff A B: the largest |a - b| over the parameters of two models (checkpoints too).
max_diff() {
    python3 - <(sat-dump --full "$1") <(sat-dump --full "$2") <<'EOF'
import base64, json, struct, sys
def params(path):
    rec = json.loads(open(path).readline())
    raw = base64.b64decode(rec["params"])
    return struct.unpack("<%df" % (len(raw) // 4), raw)
a, b = params(sys.argv[1]), params(sys.argv[2])
if len(a) != len(b): sys.exit("%d parameters against %d" % (len(a), len(b)))
print(max(abs(x - y) for x, y in zip(a, b)))
EOF
}
within() { # within A B: the two models' weights agree to TOL
    local d
    d=$(max_diff "$1" "$2") || return 1
    python3 -c "import sys; sys.exit(0 if $d <= $TOL else 1)" || { echo "max |difference| $d > $TOL"; return 1; }
}
bleu() { cut -f1,4-7 "$1"; } # epoch and the dev BLEU columns of a log

# same_run NAME OPTION...: one process and two ranks, the same options.
same_run() {
    local name=$1
    shift
    sat-train "${args[@]}" "$@" -o "$T/$name-1.satm" --checkpoint "$T/$name-1" 2> "$T/$name-1.err" &&
    two "${args[@]}" "$@" -o "$T/$name-2.satm" --checkpoint "$T/$name-2" 2> "$T/$name-2.err" || return 1
    within "$T/$name-1.satm" "$T/$name-2.satm" && within "$T/$name-1/checkpoint.satm" "$T/$name-2/checkpoint.satm" &&
    is_equal "$(bleu "$T/$name-2/train.log")" "$(bleu "$T/$name-1/train.log")"
}
check "soft attention: 2 ranks train the weights and dev BLEU of 1 process" same_run soft --epochs 3
check "hard attention: likewise" same_run hard --epochs 3 --attention hard --hard-samples 2
check "--optim rmsprop (its one moment gathered into the checkpoint): likewise" same_run rms \
    --epochs 2 --optim rmsprop
check "--objective scst from the soft model: likewise" same_run scst --epochs 2 --init "$T/soft-1.satm" \
    --objective scst --scst-samples 3
check "--objective scst --attention hard --scst-xent: likewise" same_run scsth --epochs 1 \
    --init "$T/soft-1.satm" --objective scst --attention hard --scst-xent 0.5
# Ranks on one machine sum in the memory they share; across machines (here
# SAT_TRAIN_SHARED_MEMORY=0) the gradients go in messages: the same weights.
messages() {
    "${mpirun2[@]}" -x SAT_TRAIN_SHARED_MEMORY=0 sat-train "${args[@]}" --epochs 3 -o "$T/msg.satm" \
        2> "$T/msg.err" &&
    grep -q "summed over them per step (in messages)" "$T/msg.err" &&
    grep -q "summed over them per step (in memory they share)" "$T/soft-2.err" &&
    within "$T/msg.satm" "$T/soft-2.satm" && within "$T/msg.satm" "$T/soft-1.satm"
}
check "sums in messages (as across machines) train the same weights as in shared memory" messages

rank0_writes() {
    # one log of 3 epochs, the files of one process, one set of messages
    is_equal "$(ls "$T/soft-2")" "$(ls "$T/soft-1")" &&
    is_equal "$(wc -l < "$T/soft-2/train.log")" 4 &&
    is_equal "$(grep -c '^sat-train: epoch ' "$T/soft-2.err")" 3 &&
    grep -q "^sat-train: 2 processes, each a share of every batch's captions; [0-9]* bytes summed over them per step (in memory they share), each stepping the optimizer on 1/2 of the weights$" "$T/soft-2.err" &&
    is_equal "$(grep -c '^sat-train: epoch .*  summing [0-9.]* s$' "$T/soft-2.err")" 3 &&
    ! grep -q 'summing' "$T/soft-1.err" &&
    is_equal "$(ls "$T" | grep -c '^soft-2')" 3 # soft-2, soft-2.err, soft-2.satm
}
check "rank 0 alone writes the model, checkpoint and log, and talks (with the time summing)" rank0_writes

# kill -9 one rank in the middle of the run (checkpoints after every batch):
# the job stops with an error naming it; --resume then goes on with 2 ranks,
# to the weights of the run never stopped, and with 1.
kill_rank() {
    rm -rf "$T/runK"
    "${mpirun2[@]}" sat-train "${args[@]}" --epochs 30 -o "$T/k.satm" --checkpoint "$T/runK" \
        --checkpoint-every 1 2> "$T/k.err" &
    local pid=$! i rc ranks
    for i in $(seq 1 1000); do
        [ -s "$T/runK/checkpoint.satm" ] && break
        sleep 0.01
    done
    sleep 0.3
    ranks=$(pgrep -P $pid) # the ranks are mpirun's children
    is_equal "$(echo "$ranks" | wc -l)" 2 || { kill $pid; wait $pid; return 1; }
    kill -9 $(echo "$ranks" | tail -1)
    wait $pid
    rc=$?
    [ $rc -ne 0 ] || { echo "mpirun exited 0 after a rank was killed"; return 1; }
    grep -q "exited on signal 9 (Killed)" "$T/k.err" || { cat "$T/k.err"; return 1; }
    [ -s "$T/runK/checkpoint.satm" ] && ! grep -q "^30	" "$T/runK/train.log"
}
check "kill -9 of one rank stops the job, non-zero, saying which" kill_rank
resume_two() {
    cp -r "$T/runK" "$T/runK1"
    two "${args[@]}" --epochs 30 -o "$T/k.satm" --checkpoint "$T/runK" --resume 2> "$T/k2.err" &&
    grep -q "^sat-train: resuming from" "$T/k2.err" &&
    two "${args[@]}" --epochs 30 -o "$T/u.satm" --checkpoint "$T/runU" 2>/dev/null &&
    within "$T/runK/checkpoint.satm" "$T/runU/checkpoint.satm" && within "$T/k.satm" "$T/u.satm"
}
check "... then --resume with 2 ranks reaches the weights of a run never stopped" resume_two
resume_one() {
    sat-train "${args[@]}" --epochs 30 -o "$T/k1.satm" --checkpoint "$T/runK1" --resume 2>/dev/null &&
    within "$T/runK1/checkpoint.satm" "$T/runU/checkpoint.satm"
}
check "... and with 1 process" resume_one

singleton() {
    # the MPI build run without mpirun: one process, as before
    sat-train "${args[@]}" --epochs 3 -o "$T/s.satm" 2> "$T/s.err" &&
    ! grep -q "processes" "$T/s.err" &&
    is_equal "$(sat-dump "$T/s.satm" | jq -r .weights_sha256)" "$(sat-dump "$T/soft-1.satm" | jq -r .weights_sha256)"
}
check "without mpirun sat-train is one process" singleton
