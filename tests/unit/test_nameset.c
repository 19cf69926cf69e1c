/* test_nameset.c - unit tests for shared/nameset: canonical form, invariance under order,
 * case and duplicates, limits, bad characters, and nameset_split's validation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shared/nameset.h"

#define MAXN 70

struct canon_case {
    const char *note;
    const char *names[MAXN];
    size_t n;
    ssize_t want;         /* length, or -errno */
    const char *want_key; /* for successes */
};

static const struct canon_case canon_cases[] = {
    {"single name", {"example.com"}, 1, 11, "example.com"},
    {"lower-cases ASCII", {"WWW.Example.COM"}, 1, 15, "www.example.com"},
    {"sorts bytewise",
     {"b.example", "a.example", "c.example"},
     3,
     29,
     "a.example\nb.example\nc.example"},
    {"prefix sorts first", {"example.comx", "example.com"}, 2, 24, "example.com\nexample.comx"},
    {"drops duplicates", {"a.test", "a.test", "a.test"}, 3, 6, "a.test"},
    {"drops duplicates that differ in case",
     {"A.test", "b.test", "a.TEST"},
     3,
     13,
     "a.test\nb.test"},
    {"keeps IP names", {"127.0.0.1", "::1", "localhost"}, 3, 23, "127.0.0.1\n::1\nlocalhost"},
    {"keeps UTF-8 bytes", {"\xc3\xa9t\xc3\xa9.test"}, 1, 10, "\xc3\xa9t\xc3\xa9.test"},
    {"wildcards are ordinary names",
     {"*.example.com", "example.com"},
     2,
     25,
     "*.example.com\nexample.com"},
    {"empty set", {NULL}, 0, -EINVAL, NULL},
    {"empty name", {"a.test", ""}, 2, -EINVAL, NULL},
    {"newline in name", {"a.test\nb.test"}, 1, -EINVAL, NULL},
    {"tab in name", {"a\t.test"}, 1, -EINVAL, NULL},
    {"DEL in name", {"a\x7f.test"}, 1, -EINVAL, NULL},
    {"escape in name", {"\x1b[31m.test"}, 1, -EINVAL, NULL},
};

static void test_canon_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(canon_cases) / sizeof(canon_cases[0]); i++) {
        const struct canon_case *tc = &canon_cases[i];
        char out[4096];
        const char *why = NULL;
        ssize_t got = nameset_canon_cstr(tc->names, tc->n, out, sizeof(out), &why);

        print_message("case: %s\n", tc->note);
        assert_int_equal(got, tc->want);
        if (got > 0) {
            assert_int_equal(strlen(tc->want_key), (size_t)got);
            assert_memory_equal(out, tc->want_key, (size_t)got);
        } else {
            assert_non_null(why);
        }
    }
}

/* The same set in every rotation, with case flipped and duplicated, gives the same key. */
static void test_canon_invariance(void **state)
{
    (void)state;
    const char *base[] = {"api.example.com", "example.com", "www.example.com", "10.0.0.1"};
    const char *upper[] = {"API.EXAMPLE.COM", "Example.Com", "WWW.example.com", "10.0.0.1"};
    char ref[512], got[512];
    ssize_t rlen = nameset_canon_cstr(base, 4, ref, sizeof(ref), NULL);

    assert_true(rlen > 0);
    for (size_t rot = 0; rot < 4; rot++) {
        const char *v[8];

        for (size_t i = 0; i < 4; i++) {
            v[i] = upper[(i + rot) % 4];
            v[4 + i] = base[(4 - i + rot) % 4]; /* duplicates, reversed */
        }
        assert_int_equal(nameset_canon_cstr(v, 8, got, sizeof(got), NULL), rlen);
        assert_memory_equal(got, ref, (size_t)rlen);
    }
}

static void test_canon_limits(void **state)
{
    (void)state;
    char n253[254], n254[255], big[NAMESET_KEY_MAX];
    char names[NAMESET_MAX_NAMES + 1][16];
    const char *v[NAMESET_MAX_NAMES + 1];
    const char *why = NULL;
    const char *one[1];

    memset(n253, 'a', 253);
    n253[253] = '\0';
    memset(n254, 'a', 254);
    n254[254] = '\0';
    one[0] = n253;
    print_message("case: a 253-byte name is accepted\n");
    assert_int_equal(nameset_canon_cstr(one, 1, big, sizeof(big), &why), 253);
    one[0] = n254;
    print_message("case: a 254-byte name is refused\n");
    assert_int_equal(nameset_canon_cstr(one, 1, big, sizeof(big), &why), -EINVAL);
    assert_string_equal(why, "name longer than 253 bytes");

    for (size_t i = 0; i <= NAMESET_MAX_NAMES; i++) {
        snprintf(names[i], sizeof(names[i]), "h%02zu.test", i);
        v[i] = names[i];
    }
    print_message("case: 64 names are accepted\n");
    assert_int_equal(nameset_canon_cstr(v, NAMESET_MAX_NAMES, big, sizeof(big), &why),
                     NAMESET_MAX_NAMES * 9 - 1);
    print_message("case: 65 names are refused\n");
    assert_int_equal(nameset_canon_cstr(v, NAMESET_MAX_NAMES + 1, big, sizeof(big), &why),
                     -EMSGSIZE);

    /* "h00.test\nh01.test" is 17 bytes: every cap below it fails, 17 fits exactly */
    for (size_t cap = 0; cap < 17; cap++)
        assert_int_equal(nameset_canon_cstr(v, 2, big, cap, &why), -EMSGSIZE);
    assert_int_equal(nameset_canon_cstr(v, 2, big, 17, &why), 17);
}

/* Counted names: an embedded NUL (the classic SAN trick) is a control character. */
static void test_canon_counted(void **state)
{
    (void)state;
    struct nameset_name v[2] = {{"good.test\0.evil.test", 20}, {"x.test", 6}};
    char out[64];
    const char *why = NULL;

    assert_int_equal(nameset_canon(v, 2, out, sizeof(out), &why), -EINVAL);
    assert_string_equal(why, "control character in name");
    v[0].len = 9; /* only "good.test" */
    assert_int_equal(nameset_canon(v, 2, out, sizeof(out), &why), 16);
    assert_memory_equal(out, "good.test\nx.test", 16);
}

struct split_case {
    const char *note;
    const char *key;
    ssize_t want; /* names, or -errno */
};

static const struct split_case split_cases[] = {
    {"one name", "a.test", 1},
    {"sorted names", "a.test\nb.test\nc.test", 3},
    {"empty key", "", -EINVAL},
    {"trailing newline", "a.test\n", -EINVAL},
    {"leading newline", "\na.test", -EINVAL},
    {"empty name in middle", "a.test\n\nb.test", -EINVAL},
    {"unsorted", "b.test\na.test", -EINVAL},
    {"duplicate", "a.test\na.test", -EINVAL},
    {"upper case", "A.test", -EINVAL},
    {"control char", "a\x01.test", -EINVAL},
    {"more names than the array", "a\nb\nc\nd\ne", -EMSGSIZE},
};

static void test_split_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        const struct split_case *tc = &split_cases[i];
        struct nameset_name names[4];
        const char *why = NULL;

        print_message("case: %s\n", tc->note);
        assert_int_equal(nameset_split(tc->key, strlen(tc->key), names, 4, &why), tc->want);
        if (tc->want < 0)
            assert_non_null(why);
    }
}

/* canon then split gives back the distinct lower-cased names, in order, pointing into key. */
static void test_split_roundtrip(void **state)
{
    (void)state;
    const char *v[] = {"WWW.b.test", "a.test", "www.B.test", "10.1.2.3"};
    struct nameset_name names[NAMESET_MAX_NAMES];
    char key[256];
    ssize_t len = nameset_canon_cstr(v, 4, key, sizeof(key), NULL);

    assert_true(len > 0);
    assert_int_equal(nameset_split(key, (size_t)len, names, NAMESET_MAX_NAMES, NULL), 3);
    assert_int_equal(names[0].len, 8);
    assert_memory_equal(names[0].ptr, "10.1.2.3", 8);
    assert_memory_equal(names[1].ptr, "a.test", 6);
    assert_int_equal(names[2].len, 10);
    assert_memory_equal(names[2].ptr, "www.b.test", 10);
    assert_ptr_equal(names[0].ptr, key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_table),  cmocka_unit_test(test_canon_invariance),
        cmocka_unit_test(test_canon_limits), cmocka_unit_test(test_canon_counted),
        cmocka_unit_test(test_split_table),  cmocka_unit_test(test_split_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
