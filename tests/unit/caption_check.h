/* caption_check.h — what the caption tests (test_captioner.c, test_beam.c)
 * share: two captions the same to the bit.  Include after cmocka.h. */
#ifndef SAT_TEST_CAPTION_CHECK_H
#define SAT_TEST_CAPTION_CHECK_H

#include "sat/captioner.h"

/* Same words, attention (L locations a row), locations and log-probabilities. */
static inline void assert_same_caption(const sat_caption *a, const sat_caption *b, int L)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->tokens, b->tokens, (size_t)a->n * sizeof(int));
    assert_memory_equal(a->alpha, b->alpha, (size_t)(a->n + 1) * L * sizeof(float));
    assert_true(a->logprob == b->logprob);
    assert_true(!a->locations == !b->locations);
    if (a->locations) assert_memory_equal(a->locations, b->locations, (size_t)(a->n + 1) * sizeof(int));
    assert_true(!a->word_logprobs == !b->word_logprobs);
    if (a->word_logprobs)
        assert_memory_equal(a->word_logprobs, b->word_logprobs, (size_t)(a->n + 1) * sizeof(float));
}

#endif
