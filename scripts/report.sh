#!/bin/bash
# report.sh — a Markdown report of sat-eval scores, laid out like
# Table 1 of Xu et al. (2015): Model | BLEU-1..4 | METEOR, plus ROUGE-L and
# CIDEr-D, every score ×100.  Used by scripts/experiment.mk (results, tune-beam).
#
#   report.sh [OPTION]... LABEL=EVAL...
#
#   LABEL=EVAL          a table row: EVAL is sat-eval's text output (its entropy line,
#                       when there is one, fills the α entropy column)
#   --pointing LABEL=P  the pointing check of row LABEL: P is sat-eval --boxes's output
#   --title TEXT        the heading
#   --paper DATA        the paper's rows for DATA (flickr8k, flickr30k, coco) first
#                       (Table 1 of Xu et al.; the only numbers written here)
#   --best PREFIX       under the table, the rows starting with "PREFIX, " that score
#                       best by BLEU-4 and by CIDEr-D (repeatable)
#   --log NAME=LOG      a training run: its sat-train log (train.log) summarized (repeatable)
#   --curve PNG         link the training-curve picture
#   --command CMD       the command that reproduces the report
#
# Markdown on stdout; a missing or malformed file is a one-line error naming it.
set -euo pipefail
prog=report.sh
die() { echo "$prog: $*" >&2; exit 1; }

title="Flickr8k" paper="" curve="" command=""
rows=() bests=() logs=() pointing=()
while [ $# -gt 0 ]; do
    case $1 in
    --title) title=${2:?}; shift ;;
    --paper) paper=${2:?}; shift ;;
    --best) bests+=("${2:?}"); shift ;;
    --log) logs+=("${2:?}"); shift ;;
    --pointing) pointing+=("${2:?}"); shift ;;
    --curve) curve=${2:?}; shift ;;
    --command) command=${2:?}; shift ;;
    -*) die "unknown option '$1'" ;;
    *=*) rows+=("$1") ;;
    *) die "'$1' is not LABEL=EVAL" ;;
    esac
    shift
done
[ ${#rows[@]} -gt 0 ] || die "no LABEL=EVAL rows"

# scores FILE: "images b1 b2 b3 b4 meteor rouge cider" (sat-eval's ×100; one
# decimal, METEOR two as in the paper), or a one-line error.
scores() {
    [ -r "$1" ] || die "$1: cannot read"
    awk -v f="$prog: $1" '
        { v[$1] = $2 }
        END {
            n = split("images BLEU-1 BLEU-2 BLEU-3 BLEU-4 METEOR ROUGE-L CIDEr-D", k, " ")
            for (i = 1; i <= n; i++)
                if (!(k[i] in v) || v[k[i]] !~ /^[0-9.]+$/) { print f ": no number for " k[i] > "/dev/stderr"; exit 1 }
            if (v["images"] < 1) { print f ": no images scored" > "/dev/stderr"; exit 1 }
            printf "%d", v["images"]
            for (i = 2; i <= n; i++) printf(k[i] == "METEOR" ? " %.2f" : " %.1f", v[k[i]])
            print ""
        }' "$1" || exit 1
}

# entropy FILE: sat-eval's mean attention entropy (nats, two decimals), or —
entropy() {
    awk '$1 == "entropy" { e = sprintf("%.2f", $2) } END { print e ? e : "—" }' "$1"
}

# point LABEL: "pointing% centre%" of the row's pointing check, or "— —" (none, or no words)
point() {
    local p f
    for p in "${pointing[@]}"; do
        [ "${p%%=*}" = "$1" ] || continue
        f=${p#*=}
        [ -r "$f" ] || die "$f: cannot read"
        awk -v f="$prog: $f" '{ v[$1] = $2 }
            END { if (!("pointing-words" in v) || !("pointing" in v) || !("pointing-centre" in v)) {
                      print f ": no pointing lines" > "/dev/stderr"; exit 1 }
                  if (v["pointing-words"] == 0) print "— —"    # no word named a boxed object
                  else printf "%.0f %.0f\n", v["pointing"], v["pointing-centre"] }' "$f" || exit 1
        return
    done
    echo "— —"
}

# all rows as "label<TAB>images b1 b2 b3 b4 meteor rouge cider entropy pointing centre"
table=""
for r in "${rows[@]}"; do
    s=$(scores "${r#*=}")
    table+="${r%%=*}"$'\t'"$s $(entropy "${r#*=}") $(point "${r%%=*}")"$'\n'
done
table=${table%$'\n'}
images=$(cut -f2 <<<"$table" | cut -d' ' -f1 | sort -u | paste -sd/)

echo "# $title"
echo
echo "Scores ×100 on $images images, by \`sat-eval\` (BLEU with the brevity penalty, ROUGE-L and"
echo "CIDEr-D as the coco-caption toolkit computes them; METEOR 1.5's scoring without its"
echo "paraphrase table, with WordNet synonyms and Snowball stems, see man/sat-eval.1)."
echo "α entropy: the attention's mean entropy per word in nats (\`sat-eval --entropy\`; uniform"
echo "attention over 14×14 has 5.28), for captions read with the expected context."
if [ ${#pointing[@]} -gt 0 ]; then
    echo "Pointing: % of the words naming an object boxed in scripts/boxes.tsv (10 photos, 24 dev"
    echo "images) whose attention peak falls in its box; centre: the same for the image centre"
    echo "(\`sat-eval --boxes\`)."
fi
echo
echo "| Model | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | METEOR | ROUGE-L | CIDEr-D | α entropy | pointing | centre |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# Table 1 of Xu et al. (2015): BLEU-1..4, METEOR
case $paper in
"") ;;
flickr8k) paper_soft="67 | 44.8 | 29.9 | 19.5 | 18.93" paper_hard="67 | 45.7 | 31.4 | 21.3 | 20.30" ;;
flickr30k) paper_soft="66.7 | 43.4 | 28.8 | 19.1 | 18.49" paper_hard="66.9 | 43.9 | 29.6 | 19.9 | 18.46" ;;
coco) paper_soft="70.7 | 49.2 | 34.4 | 24.3 | 23.90" paper_hard="71.8 | 50.4 | 35.7 | 25.0 | 23.04" ;;
*) die "--paper: '$paper' is not flickr8k, flickr30k or coco" ;;
esac
if [ -n "$paper" ]; then
    echo "| Soft-Attention (Xu et al. 2015) | $paper_soft | — | — | — | — | — |"
    echo "| Hard-Attention (Xu et al. 2015) | $paper_hard | — | — | — | — | — |"
fi
awk -F'\t' '{ split($2, s, " "); printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11] }' <<<"$table"

for p in "${bests[@]}"; do
    awk -F'\t' -v p="$p" '
        index($1, p ", ") == 1 { split($2, s, " "); $1 = substr($1, length(p) + 3)
            if (!b4 || s[5] + 0 > b4v) { b4 = $1; b4v = s[5] + 0 }
            if (!cd || s[8] + 0 > cdv) { cd = $1; cdv = s[8] + 0 } }
        END { if (b4) printf "\n%s: best BLEU-4 %.1f with %s; best CIDEr-D %.1f with %s.\n", p, b4v, b4, cdv, cd }' <<<"$table"
done

if [ ${#logs[@]} -gt 0 ]; then
    echo
    echo "## Training"
    echo
    echo "| Run | epochs | best dev BLEU-4 | at epoch | last loss | last xent/word | hours |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for l in "${logs[@]}"; do
        f=${l#*=}
        [ -r "$f" ] || die "$f: cannot read"
        # epoch loss xent_per_token bleu1..4 (x100) seconds, under a header line
        awk -F'\t' -v name="${l%%=*}" -v f="$prog: $f" '
            NR == 1 { next }
            NF != 8 { print f ": line " NR " is not 8 tab-separated fields" > "/dev/stderr"; bad = 1; exit 1 }
            { n++; secs += $8; loss = $2; xent = $3; if (n == 1 || $7 > best) { best = $7; at = $1 } }
            END { if (bad) exit 1
                  if (!n) { print f ": no epochs" > "/dev/stderr"; exit 1 }
                  printf "| %s | %d | %.2f | %d | %.3f | %.3f | %.1f |\n", name, n, best, at, loss, xent, secs / 3600 }' "$f"
    done
fi
if [ -n "$curve" ]; then
    echo
    echo "![Training loss and dev BLEU-4 per epoch]($curve)"
fi
if [ -n "$command" ]; then
    echo
    echo "## Reproduce"
    echo
    echo '```'
    echo "$command"
    echo '```'
    rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    echo
    echo "sat $(cat VERSION 2>/dev/null || echo '?'), commit $rev."
fi
