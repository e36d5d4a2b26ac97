#!/bin/bash
# sat-encode --shard K/N and --shard mpi (issue 11, item 3): the shards of a
# list are its every N-th lines, each shard's stream is byte for byte the
# stream of those lines encoded alone, and under mpirun each rank takes its
# own shard and writes its own file.
. "$(dirname "$0")/lib.sh"

ls "$IMAGES"/* > "$T/all.list"
# lines K, K+N, ... of the list (0-based K)
every() { awk -v k="$1" -v n="$2" '(NR - 1) % n == k' "$T/all.list"; }

shards_are_every_nth() {
    local k
    for k in 0 1 2; do
        sat-encode -q -j 1 --shard $k/3 -T "$T/all.list" -o "$T/part-%k-of-%n.sat" || return 1
        every $k 3 > "$T/expect.list"
        sat-encode -q -j 1 -T "$T/expect.list" -o "$T/expect.sat" || return 1
        cmp "$T/part-$k-of-3.sat" "$T/expect.sat" || return 1
    done
}
check "--shard K/3 of a list: lines K, K+3, ... byte for byte, -o %k and %n expanded" shards_are_every_nth

shard_args() {
    mapfile -t imgs < "$T/all.list"
    sat-encode -q -j 1 --shard 1/2 "${imgs[@]}" > "$T/args.sat" || return 1
    every 1 2 > "$T/expect.list"
    sat-encode -q -j 1 -T "$T/expect.list" | cmp - "$T/args.sat"
}
check "--shard 1/2 of IMAGE arguments" shard_args

pmi_env() {
    PMI_RANK=2 PMI_SIZE=3 sat-encode -q -j 1 --shard mpi -T "$T/all.list" -o "$T/pmi-%k.sat" &&
        cmp "$T/pmi-2.sat" "$T/part-2-of-3.sat"
}
check "--shard mpi reads PMI_RANK and PMI_SIZE (MPICH's launcher)" pmi_env

check_bad "--shard 3/3" "--shard: '3/3' is not K/N" sat-encode --shard 3/3 "$IMAGES/dog.jpg"
check_bad "--shard 1/0" "--shard: '1/0' is not K/N" sat-encode --shard 1/0 "$IMAGES/dog.jpg"
check_bad "--shard mpi outside mpirun" "no MPI rank in the environment" \
    env -u OMPI_COMM_WORLD_RANK -u PMI_RANK -u SLURM_PROCID sat-encode --shard mpi -o x-%k.sat "$IMAGES/dog.jpg"
check_bad "--shard mpi to one file" "needs -o FILE with %k" \
    env OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 sat-encode --shard mpi -o "$T/one.sat" "$IMAGES/dog.jpg"

command -v mpirun >/dev/null || { not_ok "mpirun" "Open MPI missing: scripts/install-deps.sh installs openmpi-bin"; exit 1; }
under_mpirun() {
    mpirun --allow-run-as-root --oversubscribe -np 3 \
        sat-encode -q -j 1 --shard mpi -T "$T/all.list" -o "$T/rank-%k-of-%n.sat" || return 1
    local k
    for k in 0 1 2; do cmp "$T/rank-$k-of-3.sat" "$T/part-$k-of-3.sat" || return 1; done
}
check "mpirun -np 3 sat-encode --shard mpi: each rank its shard, in its own file" under_mpirun
