#!/bin/bash
# scripts/valgrind-bin.sh BIN OUT — make OUT a directory of wrappers that run
# each program of BIN under valgrind's memcheck: any memory error or leak
# makes the program exit 99 (which the shell tests then report), and the
# report is kept in OUT/logs/.
set -euo pipefail
bin=$(realpath "$1")
out=$2
mkdir -p "$out/logs"
out=$(realpath "$out")
for p in "$bin"/sat-*; do
    name=$(basename "$p")
    cat > "$out/$name" <<WRAP
#!/bin/bash
# libjpeg-turbo's SIMD code gives valgrind false "uninitialised" reports
# (libjpeg-turbo issue #238), so it runs its C code here.
export JSIMD_FORCENONE=1
exec valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \\
    --suppressions="$(realpath "$(dirname "$0")/../tests/valgrind.supp")" \\
    --errors-for-leak-kinds=definite,indirect --log-file="$out/logs/$name.%p.log" "$p" "\$@"
WRAP
    chmod +x "$out/$name"
done
