/*
 * tests/test_json.c — JSON transfer (runtime/json.c): float arrays and dims.
 *
 * References are independent of the code under test: glibc's strtof (correctly rounded)
 * for parsing, "%.{p}e" + strtof for the shortest digit count, bit patterns for round
 * trips, and hand-written expected strings and error positions.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "runtime/rt.h"

static uint32_t f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* xorshift64*: reproducible pseudo-random bits. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Formats one float and checks the text between the brackets. */
static void expect_format(float x, const char *want) {
    char *text = NULL;
    assert_int_equal(rt_json_format_floats(&x, 1, &text), HG_OK);
    size_t len = strlen(text);
    assert_true(len >= 2 && text[0] == '[' && text[len - 1] == ']');
    text[len - 1] = '\0';
    if (strcmp(text + 1, want) != 0)
        fail_msg("format(%.9g) = \"%s\", want \"%s\"", (double)x, text + 1, want);
    free(text);
}

/* Parses "[tok]" and checks the single value bit for bit against `want`. */
static void expect_parse(const char *tok, float want) {
    char text[256];
    snprintf(text, sizeof text, "[%s]", tok);
    float *v = NULL;
    uint64_t n = 0;
    if (rt_json_parse_floats(text, &v, &n) != HG_OK)
        fail_msg("parse(%s): %s", text, hg_last_error());
    assert_int_equal(n, 1);
    if (!(isnan(want) ? isnan(v[0]) : f2u(v[0]) == f2u(want)))
        fail_msg("parse(%s) = %.9g (0x%08x), want %.9g (0x%08x)", tok, (double)v[0], f2u(v[0]),
                 (double)want, f2u(want));
    free(v);
}

/* Parses malformed text: HG_ERR_JSON with exactly this message, nothing returned. */
static void expect_json_error(const char *text, const char *message) {
    float *v = (float *)0x1;
    uint64_t n = 77;
    assert_int_equal(rt_json_parse_floats(text, &v, &n), HG_ERR_JSON);
    assert_ptr_equal(v, (float *)0x1);
    assert_int_equal(n, 77);
    if (strcmp(hg_last_error(), message) != 0)
        fail_msg("parse(%s): message \"%s\", want \"%s\"", text, hg_last_error(), message);
}

static void test_format_shortest_examples(void **state) {
    (void)state;
    expect_format(0.1f, "0.1");
    expect_format(1.0f, "1.0");
    expect_format(0.0f, "0.0");
    expect_format(-0.0f, "-0.0");
    expect_format(-3.0f, "-3.0");
    expect_format(100.0f, "100.0");
    expect_format(1.5f, "1.5");
    expect_format(-2.5e-3f, "-0.0025");
    expect_format(0.0001f, "0.0001");
    expect_format(1e-5f, "1e-05");
    expect_format(1e-7f, "1e-07");
    expect_format(1e20f, "1e+20");
    expect_format(123456.789f, "123456.79");
    expect_format(16777215.0f, "16777215.0");
    expect_format(16777216.0f, "16777216.0");
    expect_format(33554432.0f, "33554432.0");
    expect_format(3.4028235e38f, "3.4028235e+38");
    expect_format(-3.4028235e38f, "-3.4028235e+38");
    expect_format(FLT_MIN, "1.1754944e-38");
    expect_format(FLT_TRUE_MIN, "1e-45");
    expect_format(u2f(0x00000002), "3e-45");
    expect_format(u2f(0x007fffff), "1.1754942e-38");
    expect_format(3.14159265f, "3.1415927");
    expect_format(NAN, "NaN");
    expect_format(-NAN, "NaN");
    expect_format(INFINITY, "Infinity");
    expect_format(-INFINITY, "-Infinity");
}

static void test_format_array_layout(void **state) {
    (void)state;
    char *text = NULL;
    assert_int_equal(rt_json_format_floats(NULL, 0, &text), HG_OK);
    assert_string_equal(text, "[]");
    free(text);
    float v[3] = {1.0f, -0.5f, NAN};
    assert_int_equal(rt_json_format_floats(v, 3, &text), HG_OK);
    assert_string_equal(text, "[1.0, -0.5, NaN]");
    free(text);
    assert_int_equal(rt_json_format_floats(NULL, 1, &text), HG_ERR_INVALID_ARGUMENT);
    assert_int_equal(rt_json_format_floats(v, 1, NULL), HG_ERR_INVALID_ARGUMENT);
}

/* Significant digits in a formatted finite number ("-1.25e-05" → 3, "0.0025" → 2). */
static int significant_digits(const char *s) {
    int n = 0, seen = 0, pending = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (*s == '0') {
            if (seen)
                pending++;
        } else {
            n += pending + 1;
            pending = 0;
            seen = 1;
        }
    }
    return n;
}

/* Fewest significant digits p for which "%.{p-1}e" reads back as x (glibc reference). */
static int reference_shortest(float x) {
    char buf[64];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, (double)x);
        if (f2u(strtof(buf, NULL)) == f2u(x))
            return p;
    }
    return 10;
}

/* 1M random bit patterns: parse(format(x)) == x bit for bit (NaN as NaN), each element at
 * most 15 characters, and never more digits than the reference shortest. */
static void test_round_trip_random_bits(void **state) {
    (void)state;
    const uint64_t n = 1000000;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (uint64_t i = 0; i < n; i++)
        x[i] = u2f((uint32_t)(rng() >> 32));
    char *text = NULL;
    assert_int_equal(rt_json_format_floats(x, n, &text), HG_OK);
    float *back = NULL;
    uint64_t m = 0;
    assert_int_equal(rt_json_parse_floats(text, &back, &m), HG_OK);
    assert_int_equal(m, n);
    for (uint64_t i = 0; i < n; i++) {
        if (isnan(x[i]) ? !isnan(back[i]) : f2u(back[i]) != f2u(x[i]))
            fail_msg("element %llu: 0x%08x came back as 0x%08x", (unsigned long long)i, f2u(x[i]),
                     f2u(back[i]));
    }
    /* per-element checks on the first 200k */
    const char *p = text + 1;
    for (uint64_t i = 0; i < 200000; i++) {
        const char *end = strchr(p, ',');
        assert_non_null(end);
        size_t len = (size_t)(end - p);
        assert_true(len <= 15);
        char tok[32];
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (isfinite(x[i]) && !(fabsf(x[i]) < 16777216.0f && x[i] == truncf(x[i]))) {
            int ours = significant_digits(tok), ref = reference_shortest(x[i]);
            if (ours > ref)
                fail_msg("0x%08x written as %s (%d digits), %d suffice", f2u(x[i]), tok, ours, ref);
        }
        p = end + 2;
    }
    free(back);
    free(text);
    free(x);
}

/* Every float of a few dense ranges (subnormals, around 1, around FLT_MAX) round-trips. */
static void test_round_trip_dense_ranges(void **state) {
    (void)state;
    static const uint32_t starts[] = {0x00000000u, 0x3f7f0000u, 0x7f7f0000u,
                                      0x80000000u, 0x4b7f0000u, 0x33d60000u};
    const uint32_t count = 1u << 16;
    float *x = malloc(count * sizeof *x);
    assert_non_null(x);
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        for (uint32_t i = 0; i < count; i++)
            x[i] = u2f(starts[s] + i);
        char *text = NULL;
        assert_int_equal(rt_json_format_floats(x, count, &text), HG_OK);
        float *back = NULL;
        uint64_t m = 0;
        assert_int_equal(rt_json_parse_floats(text, &back, &m), HG_OK);
        assert_int_equal(m, count);
        for (uint32_t i = 0; i < count; i++)
            if (f2u(back[i]) != f2u(x[i]))
                fail_msg("0x%08x came back as 0x%08x", f2u(x[i]), f2u(back[i]));
        free(back);
        free(text);
    }
    free(x);
}

static void test_parse_numbers(void **state) {
    (void)state;
    expect_parse("1", 1.0f);
    expect_parse("-1", -1.0f);
    expect_parse("0", 0.0f);
    expect_parse("-0", -0.0f);
    expect_parse("-0.0", -0.0f);
    expect_parse("0e5", 0.0f);
    expect_parse("1e3", 1000.0f);
    expect_parse("1E+3", 1000.0f);
    expect_parse("-2.5E-3", -2.5e-3f);
    expect_parse("0.1", 0.1f);
    expect_parse("0.10000000149011612", 0.1f); /* Python's repr of float32(0.1) as double */
    expect_parse("3.4028235e38", FLT_MAX);
    expect_parse("3.40282356e38", FLT_MAX); /* just below the midpoint to 2^128 */
    expect_parse("3.4028236e38", INFINITY);
    expect_parse("1e39", INFINITY); /* beyond float32: +-Inf, like np.float32(1e39) */
    expect_parse("-1e39", -INFINITY);
    expect_parse("1e-50", 0.0f);
    expect_parse("-1e-50", -0.0f);
    expect_parse("1.4e-45", FLT_TRUE_MIN);
    expect_parse("1e-45", FLT_TRUE_MIN);
    expect_parse("7e-46", 0.0f); /* below half the smallest subnormal... */
    expect_parse("7.1e-46", FLT_TRUE_MIN);
    expect_parse("16777217", 16777216.0f); /* a tie: to even */
    expect_parse("16777219", 16777220.0f);
    expect_parse("1.000000059604644775390625", 1.0f);              /* exact tie: to even */
    expect_parse("1.0000000596046447753906251", 1.00000012f);      /* just above the tie */
    expect_parse("123456789012345678901234567890", 1.2345679e29f); /* Python big int */
    expect_parse("100000000000000000000000000000000000000000", INFINITY);
    expect_parse("1.00000000000000000000000000000000", 1.0f);
    expect_parse("0.000000000000000000000000000000000000001", 1e-39f);
    expect_parse("1e999999999999", INFINITY);
    expect_parse("0e999999999999", 0.0f);
    expect_parse("NaN", NAN);
    expect_parse("Infinity", INFINITY);
    expect_parse("-Infinity", -INFINITY);

    float *v = (float *)0x1;
    uint64_t n = 5;
    assert_int_equal(rt_json_parse_floats(" \t\n\r[ \t\n\r]\n ", &v, &n), HG_OK);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(rt_json_parse_floats("[1,\n 2.5 ,-3e0\t,NaN,Infinity,-Infinity]", &v, &n),
                     HG_OK);
    assert_int_equal(n, 6);
    assert_true(v[0] == 1.0f && v[1] == 2.5f && v[2] == -3.0f && isnan(v[3]) && v[4] == INFINITY &&
                v[5] == -INFINITY);
    free(v);
}

/* Random decimal strings (1..20 digits, random point and exponent) against strtof. */
static void test_parse_random_decimals(void **state) {
    (void)state;
    char tok[64];
    for (int iter = 0; iter < 300000; iter++) {
        uint64_t r = rng();
        int nd = 1 + (int)(r % 20);
        int point = (int)((r >> 8) % (uint64_t)(nd + 1));
        int exp = (int)((r >> 16) % 101) - 50;
        size_t o = 0;
        if ((r >> 30) & 1)
            tok[o++] = '-';
        uint64_t d = rng();
        for (int i = 0; i < nd; i++) {
            if (i == point && i > 0)
                tok[o++] = '.';
            char c = (char)('0' + (d >> (3 * (i % 20))) % 10);
            if (i == 0)
                c = (char)('1' + (d % 9));
            tok[o++] = c;
        }
        if ((r >> 40) & 1)
            o += (size_t)snprintf(tok + o, sizeof tok - o, "e%d", exp);
        tok[o] = '\0';
        expect_parse(tok, strtof(tok, NULL));
    }
    /* near-ties: the decimal midpoints of random floats, nudged */
    for (int iter = 0; iter < 100000; iter++) {
        float x = u2f(0x00800000u + (uint32_t)(rng() % 0x7e000000u)); /* finite, normal */
        double mid = ((double)x + (double)nextafterf(x, INFINITY)) / 2;
        snprintf(tok, sizeof tok, "%.17g", mid);
        expect_parse(tok, strtof(tok, NULL));
        snprintf(tok, sizeof tok, "%.25g", mid);
        expect_parse(tok, strtof(tok, NULL));
    }
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_json_error("", "JSON error at byte 0: expected '[', found end of input");
    expect_json_error("{}", "JSON error at byte 0: expected '[', found '{'");
    expect_json_error("  5", "JSON error at byte 2: expected '[', found '5'");
    expect_json_error("\"[1]\"", "JSON error at byte 0: expected '[', found '\"'");
    expect_json_error("[", "JSON error at byte 1: expected a number or ']', found end of input");
    expect_json_error("[1", "JSON error at byte 2: expected ',' or ']', found end of input");
    expect_json_error("[1,]", "JSON error at byte 3: expected a number, found ']'");
    expect_json_error("[1,,2]", "JSON error at byte 3: expected a number, found ','");
    expect_json_error("[,1]", "JSON error at byte 1: expected a number or ']', found ','");
    expect_json_error("[1 2]", "JSON error at byte 3: expected ',' or ']', found '2'");
    expect_json_error("[1]x", "JSON error at byte 3: expected end of input, found 'x'");
    expect_json_error("[1] ]", "JSON error at byte 4: expected end of input, found ']'");
    expect_json_error("[1][2]", "JSON error at byte 3: expected end of input, found '['");
    expect_json_error("[\"a\"]", "JSON error at byte 1: expected a number or ']', found '\"a\"'");
    expect_json_error("[null]", "JSON error at byte 1: expected a number or ']', found 'null'");
    expect_json_error("[1, true]", "JSON error at byte 4: expected a number, found 'true'");
    expect_json_error("[[1]]", "JSON error at byte 1: expected a number or ']', found '['");
    expect_json_error("[{}]", "JSON error at byte 1: expected a number or ']', found '{'");
    expect_json_error("[01]", "JSON error at byte 2: expected ',' or ']', found '1'");
    expect_json_error("[-01]", "JSON error at byte 3: expected ',' or ']', found '1'");
    expect_json_error("[1.]", "JSON error at byte 3: expected a digit, found ']'");
    expect_json_error("[1.e5]", "JSON error at byte 3: expected a digit, found 'e5'");
    expect_json_error("[.5]", "JSON error at byte 1: expected a number or ']', found '.5'");
    expect_json_error("[+1]", "JSON error at byte 1: expected a number or ']', found '+1'");
    expect_json_error("[1e]", "JSON error at byte 3: expected a digit, found ']'");
    expect_json_error("[1e+]", "JSON error at byte 4: expected a digit, found ']'");
    expect_json_error("[-]", "JSON error at byte 2: expected a digit, found ']'");
    expect_json_error("[-NaN]", "JSON error at byte 2: expected a digit, found 'NaN'");
    expect_json_error("[0x10]", "JSON error at byte 2: expected ',' or ']', found 'x10'");
    expect_json_error("[inf]", "JSON error at byte 1: expected a number or ']', found 'inf'");
    expect_json_error("[nan]", "JSON error at byte 1: expected a number or ']', found 'nan'");
    expect_json_error("[NaNa]", "JSON error at byte 4: expected ',' or ']', found 'a'");
    expect_json_error("[Infinit]",
                      "JSON error at byte 1: expected a number or ']', found 'Infinit'");
    expect_json_error("[1,\v2]", "JSON error at byte 3: expected a number, found '\\x0b2'");
    expect_json_error("[1]\x01", "JSON error at byte 3: expected end of input, found '\\x01'");

    float *v;
    uint64_t n;
    assert_int_equal(rt_json_parse_floats(NULL, &v, &n), HG_ERR_INVALID_ARGUMENT);
    assert_int_equal(rt_json_parse_floats("[1]", NULL, &n), HG_ERR_INVALID_ARGUMENT);
    assert_int_equal(rt_json_parse_floats("[1]", &v, NULL), HG_ERR_INVALID_ARGUMENT);
}

static void expect_dims(const char *text, uint32_t want_n, const uint64_t *want) {
    uint64_t dims[HG_MAX_DIMS];
    uint32_t n = 99;
    if (rt_json_parse_dims(text, "shape", dims, &n, HG_MAX_DIMS) != HG_OK)
        fail_msg("parse_dims(%s): %s", text, hg_last_error());
    assert_int_equal(n, want_n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(dims[i], want[i]);
}

static void expect_dims_error(const char *text, hg_status status, const char *message) {
    uint64_t dims[HG_MAX_DIMS];
    uint32_t n = 99;
    assert_int_equal(rt_json_parse_dims(text, "shape", dims, &n, HG_MAX_DIMS), status);
    assert_int_equal(n, 99);
    if (strcmp(hg_last_error(), message) != 0)
        fail_msg("parse_dims(%s): message \"%s\", want \"%s\"", text, hg_last_error(), message);
}

static void test_dims(void **state) {
    (void)state;
    expect_dims("[2, 3]", 2, (const uint64_t[]){2, 3});
    expect_dims(" [ ] ", 0, NULL);
    expect_dims("[0,1,2,3,4,5,6,7]", 8, (const uint64_t[]){0, 1, 2, 3, 4, 5, 6, 7});
    expect_dims("[9007199254740991]", 1, (const uint64_t[]){9007199254740991ull});

    const char *bad = "JSON error in shape at byte 1: expected a non-negative integer literal "
                      "below 2^53, found ";
    char want[256];
    static const char *const tokens[] = {"2.5",
                                         "2.0", /* integers, but not integer literals */
                                         "1e3",
                                         "250E-1",
                                         "-0",
                                         "1.00000000000000000000",
                                         "-1",
                                         "1e-1",
                                         "\"2\"",
                                         "NaN",
                                         "Infinity",
                                         "9007199254740992",
                                         "1e16",
                                         "null",
                                         "[2]",
                                         "123456789012345678901"};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[%s]", tokens[i]);
        snprintf(want, sizeof want, "%s'%s'", bad, tokens[i]);
        if (tokens[i][0] == '"' || tokens[i][0] == 'n' || tokens[i][0] == '[') {
            const char *tok = tokens[i][0] == '[' ? "[" : tokens[i];
            snprintf(want, sizeof want,
                     "JSON error in shape at byte 1: expected a number or ']', found '%s'", tok);
        }
        expect_dims_error(text, HG_ERR_JSON, want);
    }
    expect_dims_error("[1, 2,]", HG_ERR_JSON,
                      "JSON error in shape at byte 6: expected a number, found ']'");
    expect_dims_error("{\"a\": 1}", HG_ERR_JSON,
                      "JSON error in shape at byte 0: expected '[', found '{'");
    expect_dims_error("[1,1,1,1,1,1,1,1,1]", HG_ERR_SHAPE, "shape has 9 dimensions, at most 8");
    uint64_t dims[2];
    uint32_t n;
    assert_int_equal(rt_json_parse_dims(NULL, "strides", dims, &n, 2), HG_ERR_INVALID_ARGUMENT);
    assert_int_equal(rt_json_parse_dims("[1,2,3]", "strides", dims, &n, 2), HG_ERR_SHAPE);
    assert_string_equal(hg_last_error(), "strides has 3 dimensions, at most 2");
}

static void test_format_dims(void **state) {
    (void)state;
    char *text = NULL;
    assert_int_equal(rt_json_format_dims((const uint64_t[]){2, 3}, 2, &text), HG_OK);
    assert_string_equal(text, "[2, 3]");
    free(text);
    assert_int_equal(rt_json_format_dims(NULL, 0, &text), HG_OK);
    assert_string_equal(text, "[]");
    free(text);
    assert_int_equal(rt_json_format_dims((const uint64_t[]){9007199254740991ull}, 1, &text), HG_OK);
    assert_string_equal(text, "[9007199254740991]");
    free(text);
    char small[4];
    assert_int_equal(rt_json_dims_text(small, sizeof small, (const uint64_t[]){12, 34}, 2), 8);
    assert_string_equal(small, "[12");
}

/* Times 1M-element transfers both ways (reported, not asserted). */
static void test_speed_1m(void **state) {
    (void)state;
    const uint64_t n = 1000000;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    static const char *const kinds[] = {"uniform [-1,1)", "integers < 2^24"};
    for (int kind = 0; kind < 2; kind++) {
        for (uint64_t i = 0; i < n; i++)
            x[i] = kind == 0 ? (float)((double)(rng() >> 11) / 9007199254740992.0 * 2 - 1)
                             : (float)(rng() % 16777216u);
        double best_f = 1e9, best_p = 1e9;
        size_t bytes = 0;
        for (int rep = 0; rep < 3; rep++) {
            char *text = NULL;
            double t0 = now();
            assert_int_equal(rt_json_format_floats(x, n, &text), HG_OK);
            double t1 = now();
            float *back = NULL;
            uint64_t m = 0;
            assert_int_equal(rt_json_parse_floats(text, &back, &m), HG_OK);
            double t2 = now();
            assert_int_equal(m, n);
            assert_memory_equal(back, x, n * sizeof *x);
            bytes = strlen(text);
            best_f = fmin(best_f, t1 - t0);
            best_p = fmin(best_p, t2 - t1);
            free(back);
            free(text);
        }
        print_message("1M floats, %s: format %.1f ms, parse %.1f ms (%zu bytes)\n", kinds[kind],
                      best_f * 1e3, best_p * 1e3, bytes);
    }
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_shortest_examples),
        cmocka_unit_test(test_format_array_layout),
        cmocka_unit_test(test_round_trip_random_bits),
        cmocka_unit_test(test_round_trip_dense_ranges),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_parse_random_decimals),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_format_dims),
        cmocka_unit_test(test_speed_1m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
