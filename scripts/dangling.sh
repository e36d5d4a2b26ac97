#!/bin/bash
# dangling.sh — count the captions that end on a word the training references
# almost never end on ("a dog runs on a", "... on a red"): self-critical
# training's known defect.  A word dangles at the end when fewer than 1% of its
# occurrences in the training references are their last word ("a" under 0.01%,
# "white" 0.6%, "man" 0.9%, "dog" 4%, "grass" 68%): a rough measure that
# also counts the odd sound ending ("... in front of a man").
#
#   sat-beam -f text FEATS | scripts/dangling.sh TOKEN_FILE TRAIN_LIST
#
# TOKEN_FILE: Flickr8k.token.txt (NAME.jpg#N<TAB>caption); TRAIN_LIST: the
# training images' names.  Input: sat-beam/sat-decode -f text lines
# (NAME<TAB>caption).  Prints "dangling N of M", then the N lines.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: dangling.sh TOKEN_FILE TRAIN_LIST < CAPTIONS" >&2; exit 2; }
awk -F'\t' -v list="$2" '
    BEGIN { while ((getline name < list) > 0) train[name] = 1 }
    FILENAME != "-" { split($1, id, "#"); if (!(id[1] in train)) next
                      n = split(tolower($2), w, " "); while (n > 0 && w[n] !~ /[a-z0-9]/) n--
                      for (i = 1; i <= n; i++) seen[w[i]]++
                      if (n > 0) ends[w[n]]++; next }
    { n = split($2, w, " "); total++
      if (n > 0 && ends[w[n]] < 0.01 * seen[w[n]]) bad[++nbad] = $0 }
    END { printf "dangling %d of %d\n", nbad, total; for (i = 1; i <= nbad; i++) print bad[i] }
' "$1" -
