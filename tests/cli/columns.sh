#!/bin/bash
# The text output of every program has the columns its man page's OUTPUT
# section documents: the names are read from the page (its .RS lists of
# `.I name` items), and each line of the real output must have that many
# tab-separated fields, each of the documented kind.
. "$(dirname "$0")/lib.sh"
MAN=$(cd "$(dirname "$0")/../../man" && pwd)

# documented PAGE N: the column names of the Nth list (1-based) of PAGE's OUTPUT.
documented() {
    awk -v n="$2" '
        /^\.SH / { out = ($2 == "OUTPUT") }
        out && /^\.RS/ { list++ }
        out && list == n && /^\.I / { printf "%s ", $2 }
        out && /^\.RE/ && list == n { exit }' "$MAN/$1.1"
}

# field_ok NAME VALUE: VALUE is of the kind the column NAME documents.
field_ok() {
    case $1 in
    id) [ -n "$2" ] ;;
    rank) [[ $2 =~ ^[0-9]+$ ]] ;;
    logprob) [[ $2 =~ ^-[0-9]+\.[0-9]{4}$ ]] ;;
    perplexity) [[ $2 =~ ^[0-9]+\.[0-9]{4}$ ]] && awk -v p="$2" 'BEGIN { exit !(p >= 1) }' ;;
    caption) [[ $2 =~ ^[a-z\<\>\'-]+( [a-z\<\>\'-]+)*$ ]] ;;
    label) [ -n "$2" ] ;;
    probability) [[ $2 =~ ^[01]\.[0-9]{4}$ ]] ;;
    word) [[ $2 =~ ^[^[:space:]]+$ ]] ;;
    count) [[ $2 =~ ^[0-9]+$ ]] ;;
    *) echo "no kind known for column '$1'"; return 1 ;;
    esac
}

# columns_are PAGE N FILE: every line of FILE has PAGE's Nth column list.
columns_are() {
    local names line i
    read -ra names <<<"$(documented "$1" "$2")"
    [ ${#names[@]} -ge 2 ] || { echo "$1.1: OUTPUT list $2 has ${#names[@]} columns"; return 1; }
    [ -s "$3" ] || { echo "no output"; return 1; }
    while IFS= read -r line; do
        IFS=$'\t' read -ra f <<<"$line"
        [ ${#f[@]} -eq ${#names[@]} ] || { echo "${#f[@]} fields, documented ${names[*]}: $line"; return 1; }
        for i in "${!names[@]}"; do
            field_ok "${names[$i]}" "${f[$i]}" || { echo "${names[$i]} '${f[$i]}' in: $line"; return 1; }
        done
    done <"$3"
}

sat-encode -q "$IMAGES/dog.jpg" "$IMAGES/cat.png" > "$T/two.sat"
sat-decode -f text "$T/two.sat" > "$T/decode.txt"
check "sat-decode -f text: the columns of sat-decode(1)" columns_are sat-decode 1 "$T/decode.txt"
sat-beam -f text "$T/two.sat" > "$T/beam.txt"
check "sat-beam -f text: the columns of sat-beam(1)" columns_are sat-beam 1 "$T/beam.txt"
sat-beam -n 3 -f text "$T/two.sat" > "$T/beam-n.txt"
check "sat-beam -n 3 -f text: the columns of sat-beam(1)" columns_are sat-beam 2 "$T/beam-n.txt"
ranks() { is_equal "$(cut -f2 "$T/beam-n.txt" | tr '\n' ' ')" "0 1 2 0 1 2 "; }
check "sat-beam -n 3: ranks 0..2 per image" ranks
sat-attend -c "a dog runs" -f text "$T/two.sat" > "$T/attend.txt"
check "sat-attend -f text: the columns of sat-attend(1)" columns_are sat-attend 1 "$T/attend.txt"
sat-beam -n 3 --keep-features "$T/two.sat" | sat-attend --rank -f text > "$T/rank.txt"
check "sat-attend --rank -f text: the columns of sat-attend(1)" columns_are sat-attend 2 "$T/rank.txt"
sat-encode --classify -k 4 "$IMAGES/cat.png" > "$T/classify.txt"
check "sat-encode --classify: the columns of sat-encode(1)" columns_are sat-encode 1 "$T/classify.txt"
F=$SAT_SHARED/data/flickr8k
sat-vocab -c "$F/Flickr8k.token.txt" -s "$F/Flickr_8k.trainImages.txt" 2>/dev/null > "$T/vocab.txt"
check "sat-vocab: the columns of sat-vocab(1)" columns_are sat-vocab 1 "$T/vocab.txt"

# sat-eval: the header line, then the documented names in order
eval_names() {
    head -2 "$F/Flickr_8k.devImages.txt" | sed "s|^|$F/images/|" | sat-encode -q -T - |
        sat-beam | sat-eval -r "$F/Flickr8k.token.txt" > "$T/eval.txt" 2>/dev/null
    is_equal "$(head -1 "$T/eval.txt")" "# scores x100; pointing in % of words; entropy in nats" || return 1
    is_equal "$(tail -n +2 "$T/eval.txt" | awk '{ printf "%s ", $1 }')" \
        "images reflen testlen BLEU-1 BLEU-2 BLEU-3 BLEU-4 BLEU-1-nobp BLEU-2-nobp BLEU-3-nobp BLEU-4-nobp METEOR ROUGE-L CIDEr-D "
}
check "sat-eval: its header line and the names of sat-eval(1), in order" eval_names
eval_attention_names() {
    sat-beam -f msgpack "$T/two.sat" | sat-eval --boxes "$(dirname "$0")/../../scripts/boxes.tsv" --entropy \
        > "$T/eval-att.txt" 2>/dev/null || return 1
    is_equal "$(tail -n +2 "$T/eval-att.txt" | awk '{ printf "%s ", $1 }')" \
        "pointing-words pointing pointing-centre entropy entropy-uniform "
}
check "sat-eval --boxes --entropy without references: the names of sat-eval(1), in order" eval_attention_names
