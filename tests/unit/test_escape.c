/* test_escape.c — ids in text output (libcommon/sat/escape.h): what is escaped
 * and how, every byte 1..255 back unchanged, and the lenient reading of a
 * backslash that starts no escape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sat/escape.h"

static void expect_escaped(const char *id, const char *want)
{
    char *got = sat_escape_id(id);
    assert_string_equal(got, want);
    sat_unescape_id(got);
    assert_string_equal(got, id);
    free(got);
}

static void test_escape(void **state)
{
    expect_escaped("photos/dog.jpg", "photos/dog.jpg");
    expect_escaped("a\tb\nc.jpg", "a\\tb\\nc.jpg");
    expect_escaped("back\\slash\\n", "back\\\\slash\\\\n");
    expect_escaped("cr\r\x01\x1f\x7f", "cr\\r\\x01\\x1f\\x7f");
    expect_escaped("caf\xc3\xa9", "caf\xc3\xa9"); /* UTF-8 as it is */
    expect_escaped("", "");
}

static void test_every_byte(void **state)
{
    char id[256];
    for (int i = 1; i < 256; i++) id[i - 1] = (char)i;
    id[255] = 0;
    char *e = sat_escape_id(id);
    assert_null(strchr(e, '\t'));
    assert_null(strchr(e, '\n'));
    assert_null(strchr(e, '\r'));
    sat_unescape_id(e);
    assert_memory_equal(e, id, 256);
    free(e);
}

static void expect_unescaped(const char *text, const char *want)
{
    char *s = strdup(text);
    sat_unescape_id(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_lenient(void **state)
{
    expect_unescaped("C:\\photos\\dog.jpg", "C:\\photos\\dog.jpg"); /* \p, \d: no escapes */
    expect_unescaped("end\\", "end\\");
    expect_unescaped("\\x4", "\\x4");
    expect_unescaped("\\xg0", "\\xg0");
    expect_unescaped("\\x00", "\\x00"); /* no NUL in an id */
    expect_unescaped("\\x41\\X41", "A\\X41");
    expect_unescaped("\\\\n", "\\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_lenient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
