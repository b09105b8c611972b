/*
 * runtime/json.c — JSON transfer of float arrays, shapes and strides.
 *
 *   text ─→ json_walk (one pass: '[' number {',' number} ']', RFC 8259 whitespace, plus
 *           Python's NaN / Infinity / -Infinity) ─→ per element: float sink (exact float32
 *           rounding) or dims sink (non-negative integer literals < 2^53)
 *   float ─→ integral fast path (|x| < 2^24: "3.0") or the shortest of 1..9 significant
 *           digits that reads back as the same float32, printed the way %g prints it
 *
 * Number tokens are validated against the JSON grammar here and decomposed into a decimal
 * mantissa and exponent while scanning.  A token whose value is exactly computable in
 * double with one rounding (Clinger's fast path) and does not land on a float32 midpoint
 * is converted directly; every other token goes to strtof_l in the C locale, which rounds
 * correctly.  Values beyond the float32 range become +-Inf (as NumPy's float32 conversion
 * does); values below it become +-0 or a subnormal.
 *
 * Why not cJSON, which the library uses for structured documents (runtime/expr_json.c):
 * parsing the 11 MB text of 1M floats took 136 ms with cJSON (a node per number, 84 MB)
 * against 25 ms and the 4 MB result array here (5.4x the time, 20x the memory; measured
 * 2026-12-01, best of 5, Zen 4 VM, load ~2), and cJSON rejects the NaN and Infinity that
 * Python's json writes.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* Longest text of one float: "-1.23456789e-45" is 15 bytes, plus the ", " separator. */
#define JSON_FLOAT_MAX_CHARS 17
/* Significant decimal digits kept exactly in a uint64_t mantissa. */
#define JSON_MAX_DIGITS 19

static const double json_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
    1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60};
#define JSON_POW10_EXACT 22 /* 10^e is exact in double for e <= 22 */

/* clang-format off */
static const uint64_t json_pow10u[JSON_MAX_DIGITS + 1] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull, 10000000000000000000ull};
/* clang-format on */

/* ---- the C locale for strtof_l (decimal point '.', whatever the process locale) ---- */
static pthread_once_t json_locale_once = PTHREAD_ONCE_INIT;
static locale_t json_c_locale;

static void json_locale_init(void) { json_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* The C locale, or HG_ERR_NO_MEMORY recorded when it cannot be created. */
static hg_status json_locale(void) {
    pthread_once(&json_locale_once, json_locale_init);
    if (json_c_locale == (locale_t)0)
        return rt_error(HG_ERR_NO_MEMORY, "cannot create the C locale for number conversion");
    return HG_OK;
}

/* ---- scanning --------------------------------------------------------------------- */
typedef enum { JSON_NUM, JSON_NAN, JSON_INF, JSON_NEG_INF } json_kind;

/* One array element: its token and, for numbers, value = (-1)^neg * mant * 10^exp10
 * (exact while !inexact; mant has no trailing zero digit, 0 means the value is zero). */
typedef struct {
    json_kind kind;
    const char *tok;
    int neg;
    int inexact; /* more than JSON_MAX_DIGITS significant digits */
    uint64_t mant;
    long exp10;
} json_num;

typedef hg_status (*json_sink)(void *ctx, const char *text, const json_num *num);

static int json_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int json_is_digit(char c) { return c >= '0' && c <= '9'; }

static const char *json_skip_ws(const char *p) {
    while (json_is_ws(*p))
        p++;
    return p;
}

/* Writes a readable description of the text at `at` ("end of input", or the token in
 * quotes, non-printable bytes as \xNN) into found[0..cap). */
static void json_describe(const char *at, char *found, size_t cap) {
    if (*at == '\0') {
        snprintf(found, cap, "end of input");
        return;
    }
    size_t o = 0;
    int single = strchr(",[]{}:", *at) != NULL; /* a structural character stands alone */
    found[o++] = '\'';
    for (int i = 0; at[i] != '\0' && i < (single ? 1 : 24) && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)at[i];
        if (i > 0 && (json_is_ws((char)c) || strchr(",[]{}:", c) != NULL))
            break;
        if (c >= 0x20 && c < 0x7f)
            found[o++] = (char)c;
        else
            o += (size_t)snprintf(found + o, cap - o, "\\x%02x", c);
    }
    found[o++] = '\'';
    found[o] = '\0';
}

/* Records HG_ERR_JSON: "JSON error [in what ]at byte P: expected ..., found '...'". */
static hg_status json_fail(const char *text, const char *what, const char *at,
                           const char *expected) {
    char found[64];
    json_describe(at, found, sizeof found);
    return rt_error(HG_ERR_JSON, "JSON error %s%s%sat byte %zu: expected %s, found %s",
                    what ? "in " : "", what ? what : "", what ? " " : "", (size_t)(at - text),
                    expected, found);
}

/* Digit accumulator of a number token (see json_num). */
typedef struct {
    uint64_t mant;
    int ndig;   /* significant digits in mant */
    long zeros; /* zero digits after mant not yet multiplied in */
    long frac;  /* digits after the decimal point */
    int inexact;
} json_acc;

static void json_acc_digit(json_acc *a, char c, int in_frac) {
    a->frac += in_frac;
    if (c == '0') {
        if (a->ndig > 0) /* leading zeros are not significant */
            a->zeros++;
    } else if (a->inexact || a->ndig + a->zeros + 1 > JSON_MAX_DIGITS) {
        a->inexact = 1;
    } else {
        a->mant = a->mant * json_pow10u[a->zeros + 1] + (uint64_t)(c - '0');
        a->ndig += (int)a->zeros + 1;
        a->zeros = 0;
    }
}

/* Scans a JSON number at p into *num:  -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 * Returns the byte after it, or NULL with *err_at at the byte where a digit was required. */
static const char *json_scan_number(const char *p, json_num *num, const char **err_at) {
    json_acc a = {0, 0, 0, 0, 0};
    long exp = 0;

    num->kind = JSON_NUM;
    num->tok = p;
    num->neg = (*p == '-');
    if (num->neg)
        p++;
    if (!json_is_digit(*p)) {
        *err_at = p;
        return NULL;
    }
    if (*p == '0')
        p++;
    else
        for (; json_is_digit(*p); p++)
            json_acc_digit(&a, *p, 0);
    if (*p == '.') {
        p++;
        if (!json_is_digit(*p)) {
            *err_at = p;
            return NULL;
        }
        for (; json_is_digit(*p); p++)
            json_acc_digit(&a, *p, 1);
    }
    if (*p == 'e' || *p == 'E') {
        int eneg = 0;
        p++;
        if (*p == '+' || *p == '-')
            eneg = (*p++ == '-');
        if (!json_is_digit(*p)) {
            *err_at = p;
            return NULL;
        }
        for (; json_is_digit(*p); p++)
            if (exp < 100000000L)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
    }
    num->inexact = a.inexact;
    num->mant = a.mant;
    num->exp10 = exp - a.frac + a.zeros;
    return p;
}

/* Scans one element at p (a number, NaN, Infinity, -Infinity).  Returns the byte after
 * it, or NULL with the error recorded. */
static const char *json_scan_value(const char *text, const char *what, const char *p,
                                   const char *expected, json_num *num, hg_status *st) {
    if ((*p == 'N' && strncmp(p, "NaN", 3) == 0) || (*p == 'I' && strncmp(p, "Infinity", 8) == 0) ||
        (*p == '-' && p[1] == 'I' && strncmp(p, "-Infinity", 9) == 0)) {
        num->tok = p;
        num->kind = p[0] == 'N' ? JSON_NAN : p[0] == 'I' ? JSON_INF : JSON_NEG_INF;
        return p + (p[0] == 'N' ? 3 : p[0] == 'I' ? 8 : 9);
    }
    if (*p != '-' && !json_is_digit(*p)) {
        *st = json_fail(text, what, p, expected);
        return NULL;
    }
    const char *err_at = NULL;
    const char *end = json_scan_number(p, num, &err_at);
    if (end == NULL)
        *st = json_fail(text, what, err_at, "a digit");
    return end;
}

/* Walks a JSON array of numbers, calling sink(ctx, text, element) for each in order.
 * Stops at the first error (recorded) or sink failure. */
static hg_status json_walk(const char *text, const char *what, json_sink sink, void *ctx) {
    hg_status st = HG_OK;
    const char *p = json_skip_ws(text);
    if (*p != '[')
        return json_fail(text, what, p, "'['");
    p = json_skip_ws(p + 1);
    if (*p == ']') {
        p++;
    } else {
        const char *expected = "a number or ']'";
        for (;;) {
            json_num num;
            p = json_scan_value(text, what, p, expected, &num, &st);
            if (p == NULL)
                return st;
            st = sink(ctx, text, &num);
            if (st != HG_OK)
                return st;
            p = json_skip_ws(p);
            if (*p == ']') {
                p++;
                break;
            }
            if (*p != ',')
                return json_fail(text, what, p, "',' or ']'");
            p = json_skip_ws(p + 1);
            expected = "a number";
        }
    }
    p = json_skip_ws(p);
    if (*p != '\0')
        return json_fail(text, what, p, "end of input");
    return HG_OK;
}

/* ---- exact decimal → float32 --------------------------------------------------------- */
/* mant * 10^exp10 rounded to float32 when one double operation computes it exactly
 * rounded and the double is not a float32 rounding midpoint (then the single rounding to
 * float is correct).  Returns 0 when the caller must use strtof. */
static int json_fast_float(uint64_t mant, long exp10, float *out) {
    if (mant >= (1ull << 53) || exp10 < -JSON_POW10_EXACT || exp10 > JSON_POW10_EXACT)
        return 0;
    double d = exp10 < 0 ? (double)mant / json_pow10[-exp10] : (double)mant * json_pow10[exp10];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    if ((bits & 0x1fffffffull) == 0x10000000ull)
        return 0;
    *out = (float)d; /* d is 0 or in [1e-22, 9.1e37]: a normal float32 */
    return 1;
}

/* The float32 value of a scanned number token. */
static float json_num_value(const json_num *num) {
    float v;
    if (num->mant == 0 && !num->inexact)
        return num->neg ? -0.0f : 0.0f;
    if (!num->inexact && json_fast_float(num->mant, num->exp10, &v))
        return num->neg ? -v : v;
    return strtof_l(num->tok, NULL, json_c_locale);
}

/* ---- float arrays ------------------------------------------------------------------ */
typedef struct {
    float *values;
    uint64_t n, cap;
} json_floats;

static hg_status json_float_sink(void *ctx, const char *text, const json_num *num) {
    json_floats *f = ctx;
    (void)text;
    if (f->n == f->cap) {
        uint64_t cap = f->cap ? 2 * f->cap : 256;
        float *grown = realloc(f->values, cap * sizeof *grown);
        if (grown == NULL)
            return rt_error(HG_ERR_NO_MEMORY, "cannot hold %llu parsed floats",
                            (unsigned long long)cap);
        f->values = grown;
        f->cap = cap;
    }
    float v;
    switch (num->kind) {
    case JSON_NAN: v = NAN; break;
    case JSON_INF: v = INFINITY; break;
    case JSON_NEG_INF: v = -INFINITY; break;
    default: v = json_num_value(num); break;
    }
    f->values[f->n++] = v;
    return HG_OK;
}

hg_status rt_json_parse_floats(const char *text, float **out_values, uint64_t *out_count) {
    if (text == NULL || out_values == NULL || out_count == NULL)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "JSON text or output pointer is NULL");
    hg_status st = json_locale();
    if (st != HG_OK)
        return st;
    json_floats f = {NULL, 0, 0};
    st = json_walk(text, NULL, json_float_sink, &f);
    if (st != HG_OK) {
        free(f.values);
        return st;
    }
    *out_values = f.values;
    *out_count = f.n;
    return HG_OK;
}

/* ---- float formatting ---------------------------------------------------------------- */
/* v * 10^e for e in [-60, 60] (double; exact for |e| <= 22 up to one rounding). */
static double json_scale(double v, int e) {
    return e >= 0 ? v * json_pow10[e] : v / json_pow10[-e];
}

/* 1 when mant * 10^exp10 reads back as exactly the positive finite float `x`. */
static int json_reads_back(uint64_t mant, int exp10, float x) {
    float v;
    if (!json_fast_float(mant, exp10, &v)) {
        char tok[48];
        snprintf(tok, sizeof tok, "%llue%d", (unsigned long long)mant, exp10);
        v = strtof_l(tok, NULL, json_c_locale);
    }
    return v == x;
}

/* Writes the decimal digits of x (> 0) into buf (most significant first); returns count. */
static int json_digits(uint64_t x, char *buf) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Tries the p-digit decimals nearest to v = x (k = floor(log10 v)): the nearest one, and its
 * other neighbour when that may be inside x's rounding interval while the nearest is not.
 * Returns 1 with *mant, *exp10 set when one reads back as x. */
static int json_try_digits(float x, double v, int k, int p, int pow2, uint64_t *mant, int *exp10) {
    double s = json_scale(v, p - 1 - k);
    double r = nearbyint(s);
    uint64_t near = (uint64_t)r;
    int e = k - p + 1;
    if (near != 0 && json_reads_back(near, e, x)) {
        *mant = near;
        *exp10 = e;
        return 1;
    }
    if (pow2 || fabs(s - r) > 0.49) {
        uint64_t other = s > r ? near + 1 : near - 1;
        if (other != 0 && json_reads_back(other, e, x)) {
            *mant = other;
            *exp10 = e;
            return 1;
        }
    }
    return 0;
}

/* Finds the shortest decimal mant * 10^exp10 (1 to 9 significant digits) that reads back as
 * the positive finite float x.  Whether p digits suffice is monotonic in p except just above
 * a power of two (narrower interval below x), so those are searched linearly and all
 * others by bisection. */
static void json_shortest(float x, uint64_t *out_mant, int *out_exp10) {
    double v = x;
    uint64_t dbits;
    memcpy(&dbits, &v, sizeof dbits);
    int e2 = (int)((dbits >> 52) & 0x7ff) - 1023;
    int k = (int)floor(e2 * 0.30102999566398120); /* floor(log10 v) is k or k + 1 */
    double s9 = nearbyint(json_scale(v, 8 - k));
    if (s9 >= 1e9) {
        k++;
        s9 = nearbyint(json_scale(v, 8 - k));
    }
    /* 9 digits always read back: their error is below 1/6 of x's half-interval */
    *out_mant = (uint64_t)s9;
    *out_exp10 = k - 8;
    uint32_t fbits;
    memcpy(&fbits, &x, sizeof fbits);
    int pow2 = (fbits & 0x7fffffu) == 0;
    uint64_t mant;
    int exp10;
    if (pow2) {
        for (int p = 1; p <= 8; p++)
            if (json_try_digits(x, v, k, p, 1, out_mant, out_exp10))
                return;
        return;
    }
    int lo = 1, hi = 9; /* hi digits suffice */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (json_try_digits(x, v, k, mid, 0, &mant, &exp10)) {
            hi = mid;
            *out_mant = mant;
            *out_exp10 = exp10;
        } else {
            lo = mid + 1;
        }
    }
}

/* Writes x as JSON at o (at most 15 bytes); returns the end. */
static char *json_put_float(char *o, float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) {
        const char *s = (bits & 0x7fffffu) ? "NaN" : (bits >> 31) ? "-Infinity" : "Infinity";
        size_t len = strlen(s);
        memcpy(o, s, len);
        return o + len;
    }
    if (bits >> 31)
        *o++ = '-';
    float a = fabsf(x);
    if (a < 16777216.0f && a == (float)(int32_t)a) {
        o += json_digits((uint64_t)a, o);
        memcpy(o, ".0", 2);
        return o + 2;
    }
    uint64_t mant;
    int exp10;
    json_shortest(a, &mant, &exp10);
    while (mant % 10 == 0) {
        mant /= 10;
        exp10++;
    }
    char dig[24];
    int nd = json_digits(mant, dig);
    int xexp = exp10 + nd - 1;     /* decimal exponent of the first digit */
    if (xexp < -4 || xexp >= nd) { /* %g's choice of scientific notation */
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        *o++ = 'e';
        *o++ = xexp < 0 ? '-' : '+';
        int ax = abs(xexp);
        if (ax < 10)
            *o++ = '0';
        o += json_digits((uint64_t)ax, o);
    } else if (xexp >= 0) {
        memcpy(o, dig, (size_t)xexp + 1);
        o += xexp + 1;
        if (nd > xexp + 1) {
            *o++ = '.';
            memcpy(o, dig + xexp + 1, (size_t)(nd - xexp - 1));
            o += nd - xexp - 1;
        } else {
            memcpy(o, ".0", 2);
            o += 2;
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -xexp - 1; i++)
            *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    }
    return o;
}

hg_status rt_json_format_floats(const float *values, uint64_t n, char **out_text) {
    if (out_text == NULL || (values == NULL && n > 0))
        return rt_error(HG_ERR_INVALID_ARGUMENT, "values or output pointer is NULL");
    hg_status st = json_locale();
    if (st != HG_OK)
        return st;
    if (n > (SIZE_MAX - 3) / JSON_FLOAT_MAX_CHARS)
        return rt_error(HG_ERR_NO_MEMORY, "%llu floats do not fit in a JSON string",
                        (unsigned long long)n);
    char *text = malloc(3 + (size_t)n * JSON_FLOAT_MAX_CHARS);
    if (text == NULL)
        return rt_error(HG_ERR_NO_MEMORY, "cannot allocate the JSON text for %llu floats",
                        (unsigned long long)n);
    char *o = text;
    *o++ = '[';
    for (uint64_t i = 0; i < n; i++) {
        if (i > 0) {
            *o++ = ',';
            *o++ = ' ';
        }
        o = json_put_float(o, values[i]);
    }
    *o++ = ']';
    *o = '\0';
    *out_text = text;
    return HG_OK;
}

/* ---- shapes and strides ---------------------------------------------------------------- */
typedef struct {
    const char *what;
    uint64_t *dims;
    uint32_t n, max;
} json_dims;

/* 1 when number token tok (valid JSON) is an integer literal: digits only, no sign,
 * fraction or exponent. */
static int json_is_integer_literal(const char *tok) {
    if (!json_is_digit(*tok))
        return 0;
    while (json_is_digit(*tok))
        tok++;
    return *tok != '.' && *tok != 'e' && *tok != 'E';
}

/* Dimensions are integer literals only: "2.0", "1e3" and "-0" are refused, not read as
 * the integers they equal. */
static hg_status json_dims_sink(void *ctx, const char *text, const json_num *num) {
    json_dims *d = ctx;
    uint64_t value = 0;
    int ok = num->kind == JSON_NUM && !num->inexact && json_is_integer_literal(num->tok);
    if (ok && num->mant != 0) {
        ok = !num->neg && num->exp10 >= 0 && num->exp10 <= 15;
        if (ok) {
            value = num->mant * json_pow10u[num->exp10]; /* < 10^19: no overflow */
            ok = num->mant < json_pow10u[19 - num->exp10] && value < (1ull << 53);
        }
    }
    if (!ok)
        return json_fail(text, d->what, num->tok, "a non-negative integer literal below 2^53");
    if (d->n < d->max)
        d->dims[d->n] = value;
    d->n++;
    return HG_OK;
}

hg_status rt_json_parse_dims(const char *text, const char *what, uint64_t *out_dims,
                             uint32_t *out_ndim, uint32_t max) {
    if (what == NULL)
        what = "dimensions";
    if (text == NULL || out_dims == NULL || out_ndim == NULL)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s JSON or output pointer is NULL", what);
    json_dims d = {what, out_dims, 0, max};
    hg_status st = json_walk(text, what, json_dims_sink, &d);
    if (st != HG_OK)
        return st;
    if (d.n > max)
        return rt_error(HG_ERR_SHAPE, "%s has %u dimensions, at most %u", what, d.n, max);
    *out_ndim = d.n;
    return HG_OK;
}

size_t rt_json_dims_text(char *buf, size_t cap, const uint64_t *dims, uint32_t n) {
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%llu",
                                i ? ", " : "", (unsigned long long)dims[i]);
    len += (size_t)snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "]");
    return len;
}

hg_status rt_json_format_dims(const uint64_t *dims, uint32_t n, char **out_text) {
    if (out_text == NULL || (dims == NULL && n > 0))
        return rt_error(HG_ERR_INVALID_ARGUMENT, "dims or output pointer is NULL");
    size_t len = rt_json_dims_text(NULL, 0, dims, n);
    char *text = malloc(len + 1);
    if (text == NULL)
        return rt_error(HG_ERR_NO_MEMORY, "cannot allocate %zu bytes of JSON", len + 1);
    rt_json_dims_text(text, len + 1, dims, n);
    *out_text = text;
    return HG_OK;
}
