/* meteor_words.c — the function words of our METEOR (see meteor.h).
 *
 * METEOR 1.5 weighs "function words" by 1 - delta and the other ("content")
 * words by delta; its English list is a data file of the METEOR release that
 * we do not use.  This list is ours: the closed-class words of English as
 * sat_tokenize_ptb() writes them (lowercase, clitics split off: "do n't",
 * "dog 's"), in these classes:
 *
 *   articles and determiners, quantifying determiners, personal, possessive,
 *   reflexive, demonstrative, indefinite, relative and interrogative
 *   pronouns, prepositions, conjunctions and subordinators, auxiliary and
 *   modal verbs (every form, with the clitic halves "ca" "wo" "n't" "'s"
 *   "'re" "'ve" "'ll" "'d" "'m"), "not", existential "there", and the
 *   wh-adverbs.
 *
 * Numerals, ordinary adverbs and adjectives, and lexical verbs are content
 * words.  A word in several classes ("like", "that", "'s") is listed once.
 */
#include <stdlib.h>
#include <string.h>

#include "sat/meteor.h"

/* Sorted by strcmp (checked by the unit test through the lookup itself). */
static const char *const function_words[] = {
    "'d", "'ll", "'m", "'re", "'s", "'ve",
    "a", "aboard", "about", "above", "across", "after", "against", "albeit", "all", "along",
    "alongside", "although", "am", "amid", "amidst", "among", "amongst", "an", "and", "another",
    "any", "anybody", "anyone", "anything", "are", "around", "as", "astride", "at", "atop",
    "be", "because", "been", "before", "behind", "being", "below", "beneath", "beside", "besides",
    "between", "beyond", "both", "but", "by",
    "ca", "can", "could",
    "despite", "did", "do", "does", "doing", "down", "during",
    "each", "either", "enough", "every", "everybody", "everyone", "everything", "except",
    "few", "for", "from",
    "had", "has", "have", "having", "he", "her", "hers", "herself", "him", "himself", "his", "how",
    "i", "if", "in", "inside", "into", "is", "it", "its", "itself",
    "like",
    "many", "may", "me", "might", "mine", "more", "most", "much", "must", "my", "myself",
    "n't", "near", "neither", "nobody", "none", "nor", "not", "nothing", "of", "off", "on",
    "onto", "opposite", "or", "other", "others", "ought", "our", "ours", "ourselves", "out",
    "outside", "over",
    "past", "per",
    "several", "shall", "she", "should", "since", "so", "some", "somebody", "someone",
    "something", "such",
    "than", "that", "the", "their", "theirs", "them", "themselves", "there", "these", "they",
    "this", "those", "though", "through", "throughout", "till", "to", "toward", "towards",
    "under", "underneath", "unless", "unlike", "until", "unto", "up", "upon", "us",
    "versus", "via",
    "was", "we", "were", "what", "whatever", "when", "whenever", "where", "whereas", "wherever",
    "whether", "which", "whichever", "while", "who", "whoever", "whom", "whose", "why", "will",
    "with", "within", "without", "wo", "would",
    "yet", "you", "your", "yours", "yourself", "yourselves",
};

static int cmp_word(const void *key, const void *elem) { return strcmp(key, *(const char *const *)elem); }

int sat_meteor_function_word(const char *word)
{
    size_t n = sizeof function_words / sizeof *function_words;
    return bsearch(word, function_words, n, sizeof *function_words, cmp_word) != NULL;
}

int sat_meteor_function_words_sorted(void)
{
    size_t n = sizeof function_words / sizeof *function_words;
    for (size_t i = 1; i < n; i++)
        if (strcmp(function_words[i - 1], function_words[i]) >= 0) return 0;
    return 1;
}
