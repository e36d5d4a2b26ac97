/* test_util.c — the large-array allocators of util.h: sat_xmalloc_large's
 * rounding and alignment, the blocks sat_free_large keeps, and sat_pool's
 * zeroed, aligned, disjoint arrays, in chunks of its own and beyond a chunk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sat/util.h"

static void test_large_size_and_alignment(void **state)
{
    (void)state;
    assert_int_equal(sat_large_size(100), 128);          /* cache lines below 512 KiB */
    assert_int_equal(sat_large_size(512 << 10), 2 << 20); /* whole 2 MiB pages from 512 KiB */
    assert_int_equal(sat_large_size((2 << 20) + 1), 4 << 20);
    unsigned char *p = sat_xmalloc_large(3 << 20);
    assert_int_equal((uintptr_t)p % (2 << 20), 0);
    memset(p, 1, sat_large_size(3 << 20)); /* all of it is usable */
    free(p);
}

/* sat_free_large keeps a block of huge pages for the next request of its
 * rounded size, and no other; beyond the few it keeps, and below 512 KiB,
 * it frees (the sanitizer build would report a leak). */
static void test_free_large_keeps_blocks(void **state)
{
    (void)state;
    unsigned char *p = sat_xmalloc_large(3 << 20);
    memset(p, 7, 3 << 20);
    sat_free_large(p, 3 << 20);
    unsigned char *q = sat_xmalloc_large((3 << 20) + 5); /* 4 MiB, as p */
    assert_ptr_equal(q, p);
    memset(q, 8, sat_large_size((3 << 20) + 5)); /* all of it is usable */
    unsigned char *r = sat_xmalloc_large(3 << 20);    /* p is taken: another block */
    assert_ptr_not_equal(r, q);
    sat_free_large(q, 3 << 20);
    unsigned char *other = sat_xmalloc_large(6 << 20); /* 6 MiB: not q's 4 */
    assert_ptr_not_equal(other, q);
    sat_free_large(other, 6 << 20);
    sat_free_large(r, 3 << 20);
    enum { MANY = 9 };
    void *many[MANY];
    for (int i = 0; i < MANY; i++) many[i] = sat_xmalloc_large(1 << 20);
    for (int i = 0; i < MANY; i++) sat_free_large(many[i], 1 << 20);
    sat_free_large(sat_xmalloc_large(100), 100);
    sat_free_large(NULL, 5 << 20);
}

/* Every array: 64-byte aligned, zeroed (the pool's first chunk may reuse
 * the block of 0xff freed just before), and not overlapping any other
 * (each is filled with its own number and checked after all are made);
 * sizes from 1 byte to more than a chunk (4 MiB). */
static void test_pool_arrays(void **state)
{
    (void)state;
    enum { N = 40 };
    static const size_t sizes[] = {1, 63, 64, 65, 4096, 300000, 1 << 20, (5 << 20) + 3};
    unsigned char *dirty = sat_xmalloc_large(4 << 20);
    memset(dirty, 0xff, 4 << 20);
    free(dirty);
    sat_pool *pool = sat_pool_new();
    unsigned char *a[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        n[i] = sizes[i % (int)(sizeof sizes / sizeof sizes[0])];
        a[i] = sat_pool_zalloc(pool, n[i]);
        assert_int_equal((uintptr_t)a[i] % 64, 0);
        for (size_t j = 0; j < n[i]; j++) assert_int_equal(a[i][j], 0);
        memset(a[i], i + 1, n[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < n[i]; j += 97) assert_int_equal(a[i][j], i + 1);
    sat_pool_free(pool);
    sat_pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_size_and_alignment),
        cmocka_unit_test(test_free_large_keeps_blocks),
        cmocka_unit_test(test_pool_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
