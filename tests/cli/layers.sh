#!/bin/bash
# The library's layer map (README.md, "Layout") against its include graph:
# every header of libcommon/sat/ sits in exactly one layer, and a module (its
# header and its .c) includes headers of its own layer and the layers below
# only.  No program is run: this checks the sources.
. "$(dirname "$0")/lib.sh"
R=$(cd "$(dirname "$0")/../.." && pwd)

# "MODULE ROW" per line: the map's rows numbered from the top (tasks 1), so a
# module may include those of its own row or of a larger one.
awk '/^The library.s layers/ { on = 1 } on && /^```/ { if (++fence == 2) exit; next }
     fence == 1 && !/^ cmd\// { row++; for (i = 2; i <= NF; i++) print $i, row }' "$R/README.md" |
    sort > "$T/layers"

every_header_placed() {
    local placed listed
    placed=$(cut -d' ' -f1 "$T/layers" | sort)
    listed=$(cd "$R/libcommon/sat" && ls -- *.h | sed 's/\.h$//' | sort)
    diff <(echo "$placed") <(echo "$listed")
}
check "README's layer map names every header of libcommon/sat once" every_header_placed

includes_downward() {
    local bad=0 m lm d ld
    while read -r m lm; do
        for d in $(cat "$R/libcommon/sat/$m.h" "$R/libcommon/$m.c" 2>/dev/null |
                   sed -n 's/^#include "sat\/\([a-z0-9_]*\)\.h".*/\1/p' | sort -u); do
            ld=$(awk -v d="$d" '$1 == d { print $2 }' "$T/layers")
            if [ -z "$ld" ] || [ "$ld" -lt "$lm" ]; then
                echo "$m (row $lm) includes $d (row ${ld:-none}), a layer above it"
                bad=1
            fi
        done
    done < "$T/layers"
    return $bad
}
check "every module includes its own layer and those below only" includes_downward

no_bare_includes() {
    ! grep -rn --include='*.[ch]' -E '#include "('"$(cut -d' ' -f1 "$T/layers" | paste -sd'|')"')\.h"' \
        "$R/cmd" "$R/libcommon" "$R/tests"
}
check "library headers are included with their sat/ prefix" no_bare_includes
