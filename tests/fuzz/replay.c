/* replay — a cmocka test that runs one fuzz target over its committed corpus
 * (tests/fuzz/corpus/NAME, given as SAT_FUZZ_CORPUS at build time): every
 * input found by past fuzzing campaigns is run again on each `make test`,
 * with the sanitizers under `make check-sanitize`.  The test fails if the
 * corpus is missing or empty, or (by crashing) if an input does. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz.h"
#include "sat/util.h"

static int is_input(const struct dirent *e) { return e->d_name[0] != '.'; }

static void test_replay_corpus(void **state)
{
    (void)state;
    struct dirent **names;
    int n = scandir(SAT_FUZZ_CORPUS, &names, is_input, alphasort);
    if (n < 0) fail_msg("%s: cannot list the corpus", SAT_FUZZ_CORPUS);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", SAT_FUZZ_CORPUS, names[i]->d_name);
        unsigned char *data;
        size_t len;
        char err[SAT_ERR_MAX];
        if (sat_read_file(path, (size_t)64 << 20, &data, &len, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(LLVMFuzzerTestOneInput(data, len), 0);
        free(data);
        free(names[i]);
    }
    free(names);
    print_message("replayed %d inputs of %s\n", n, SAT_FUZZ_CORPUS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replay_corpus)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
