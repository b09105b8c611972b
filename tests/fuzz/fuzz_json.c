/*
 * tests/fuzz/fuzz_json.c — libFuzzer target for the float-array JSON transfer
 * (runtime/json.c: rt_json_parse_floats, rt_json_format_floats; hg_buffer_copy_from_slice,
 * hg_buffer_to_vec).
 *
 * Input: byte 0 selects the mode, the rest is the data.
 *   bit 0  0: JSON text (copied and NUL-terminated, so an embedded NUL ends it)
 *          1: raw float32 bit patterns, 4 bytes each (little-endian)
 *
 * Text: an independent reference (fz_ref_parse: the RFC 8259 number grammar, Python's NaN,
 * Infinity, -Infinity, strtof in the C locale) decides validity and each value; the
 * library must agree on both, bit for bit (any NaN for NaN).  Both modes: the values'
 * formatted text is valid for the reference, parses back to the same bits, formats to the
 * same text again, each number in it is the one strtof reads, and the public API
 * (copy_from_slice into a buffer, to_vec) gives the same text.
 */
#include <math.h>
#include <stdint.h>

#include <hologram/hologram.h>

#include "runtime/rt.h"

#define FZ_TARGET "fuzz_json"
#include "fuzz.h"

static int fz_digit(char c) { return c >= '0' && c <= '9'; }
static int fz_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Length of the JSON number at s (RFC 8259), or 0. */
static size_t fz_number(const char *s) {
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (fz_digit(*p))
            p++;
    else
        return 0;
    if (*p == '.') {
        if (!fz_digit(*++p))
            return 0;
        while (fz_digit(*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!fz_digit(*p))
            return 0;
        while (fz_digit(*p))
            p++;
    }
    return (size_t)(p - s);
}

/* The reference reader: 1 and the values (*out, malloc'd; *n) when text is a valid
 * array, else 0. */
static int fz_ref_parse(const char *text, float **out, uint64_t *n) {
    size_t cap = 16;
    float *v = fz_alloc(cap * sizeof *v);
    uint64_t k = 0;
    const char *p = text;
    while (fz_ws(*p))
        p++;
    if (*p++ != '[')
        goto bad;
    while (fz_ws(*p))
        p++;
    if (*p == ']') {
        p++;
    } else {
        for (;;) {
            while (fz_ws(*p))
                p++;
            float x;
            size_t len;
            if (strncmp(p, "NaN", 3) == 0) {
                x = NAN;
                len = 3;
            } else if (strncmp(p, "Infinity", 8) == 0) {
                x = INFINITY;
                len = 8;
            } else if (strncmp(p, "-Infinity", 9) == 0) {
                x = -INFINITY;
                len = 9;
            } else if ((len = fz_number(p)) > 0) {
                char *tok = fz_alloc(len + 1);
                memcpy(tok, p, len);
                tok[len] = '\0';
                x = strtof(tok, NULL);
                free(tok);
            } else {
                goto bad;
            }
            p += len;
            if (k == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            FZ_CHECK(v, "out of memory");
            v[k++] = x;
            while (fz_ws(*p))
                p++;
            if (*p == ']') {
                p++;
                break;
            }
            if (*p++ != ',')
                goto bad;
        }
    }
    while (fz_ws(*p))
        p++;
    if (*p != '\0')
        goto bad;
    *out = v;
    *n = k;
    return 1;
bad:
    free(v);
    return 0;
}

static int fz_same(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (isnan(a) && isnan(b));
}

static uint64_t fz_executor, fz_buffer;
static uint64_t fz_buffer_len;

/* The text of values v[0..n) through the public API: copy_from_slice(json) into a buffer of
 * n elements, to_vec. */
static char *fz_api_round_trip(const char *json, uint64_t n) {
    if (!fz_executor)
        FZ_CHECK(hg_new_executor(&fz_executor) == HG_OK, "new_executor: %s", hg_last_error());
    if (fz_buffer && fz_buffer_len != n) {
        FZ_CHECK(hg_buffer_cleanup(fz_buffer) == HG_OK, "buffer_cleanup: %s", hg_last_error());
        fz_buffer = 0;
    }
    if (!fz_buffer) {
        FZ_CHECK(hg_executor_allocate_buffer(fz_executor, n, &fz_buffer) == HG_OK,
                 "allocate_buffer(%llu): %s", (unsigned long long)n, hg_last_error());
        fz_buffer_len = n;
    }
    FZ_CHECK(hg_buffer_copy_from_slice(fz_executor, fz_buffer, json) == HG_OK,
             "copy_from_slice of formatted text: %s", hg_last_error());
    char *out = NULL;
    FZ_CHECK(hg_buffer_to_vec(fz_executor, fz_buffer, &out) == HG_OK, "to_vec: %s",
             hg_last_error());
    return out;
}

/* The invariants of formatted values v[0..n) (see the top). */
static void fz_check_format(const float *v, uint64_t n) {
    char *text = NULL;
    FZ_CHECK(rt_json_format_floats(v, n, &text) == HG_OK, "format: %s", hg_last_error());
    float *ref = NULL, *back = NULL;
    uint64_t ref_n = 0, back_n = 0;
    FZ_CHECK(fz_ref_parse(text, &ref, &ref_n), "formatted text is not valid: %.200s", text);
    FZ_CHECK(rt_json_parse_floats(text, &back, &back_n) == HG_OK, "formatted text refused: %s",
             hg_last_error());
    FZ_CHECK(ref_n == n && back_n == n, "round trip of %llu values gave %llu / %llu",
             (unsigned long long)n, (unsigned long long)ref_n, (unsigned long long)back_n);
    for (uint64_t i = 0; i < n; i++) {
        FZ_CHECK(fz_same(back[i], v[i]), "value %llu: %a formatted and read back as %a",
                 (unsigned long long)i, (double)v[i], (double)back[i]);
        FZ_CHECK(fz_same(ref[i], v[i]), "value %llu: %a formatted as text strtof reads as %a",
                 (unsigned long long)i, (double)v[i], (double)ref[i]);
    }
    char *again = NULL;
    FZ_CHECK(rt_json_format_floats(back, n, &again) == HG_OK, "format: %s", hg_last_error());
    FZ_CHECK(strcmp(again, text) == 0, "formatting is not a fixpoint");
    if (n > 0 && n <= 4096) {
        char *api = fz_api_round_trip(text, n);
        FZ_CHECK(strcmp(api, text) == 0, "the API's round trip differs: %.200s", api);
        hg_free_string(api);
    }
    hg_free_string(again);
    hg_free_string(text);
    free(ref);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        uint64_t n = (size - 1) / 4;
        float *v = fz_alloc(n * sizeof *v);
        memcpy(v, data + 1, n * sizeof *v);
        fz_check_format(v, n);
        free(v);
        return 0;
    }
    char *text = fz_alloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    fz_text = text;
    float *ref = NULL, *got = NULL;
    uint64_t ref_n = 0, got_n = 0;
    int valid = fz_ref_parse(text, &ref, &ref_n);
    hg_status st = rt_json_parse_floats(text, &got, &got_n);
    FZ_CHECK((st == HG_OK) == valid, "library says %s, the reference %s", hg_status_string(st),
             valid ? "valid" : "invalid");
    if (st != HG_OK)
        FZ_CHECK(st == HG_ERR_JSON && hg_last_error()[0], "status %s, message \"%s\"",
                 hg_status_string(st), hg_last_error());
    if (valid) {
        FZ_CHECK(got_n == ref_n, "%llu values, the reference %llu", (unsigned long long)got_n,
                 (unsigned long long)ref_n);
        for (uint64_t i = 0; i < got_n; i++)
            FZ_CHECK(fz_same(got[i], ref[i]), "value %llu: %a, strtof %a",
                     (unsigned long long)i, (double)got[i], (double)ref[i]);
        fz_check_format(got, got_n);
    }
    free(ref);
    free(got);
    free(text);
    fz_text = "";
    return 0;
}
