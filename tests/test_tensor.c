/*
 * tests/test_tensor.c — the hg_tensor_* functions through the public API.
 *
 * Values are checked against independent references: a double-precision loop over the
 * view's indices (offset + sum idx_d * stride_d) for copies, and a double triple loop per
 * batch item for matmul, reading A and B through their strides (tolerance 1e-6 * (k + 1) *
 * sum_p |a_ip * b_pj|, tests/test_jit.c's contraction bound).  Computing tests
 * run under every backend the build has ("interp", and "jit" when compiled in).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hologram/hologram.h>

#define OK(call)                                                                                   \
    do {                                                                                           \
        hg_status st_ = (call);                                                                    \
        if (st_ != HG_OK)                                                                          \
            fail_msg("%s -> %s: %s", #call, hg_status_string(st_), hg_last_error());               \
    } while (0)

/* Expects `call` to fail with `status` and a message containing `part`. */
#define FAILS(call, status, part)                                                                  \
    do {                                                                                           \
        hg_status st_ = (call);                                                                    \
        if (st_ != (status))                                                                       \
            fail_msg("%s -> %s (%s), want %s", #call, hg_status_string(st_), hg_last_error(),      \
                     hg_status_string(status));                                                    \
        if (strstr(hg_last_error(), (part)) == NULL)                                               \
            fail_msg("%s: message \"%s\" lacks \"%s\"", #call, hg_last_error(), (part));           \
    } while (0)

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Uniform in [-1, 1). */
static float rnd(void) { return (float)((double)(rng() >> 11) / 9007199254740992.0 * 2 - 1); }

/* A buffer of n floats holding `values` (or 0, 1, 2, ... when NULL). */
static uint64_t make_buffer(uint64_t exec, uint64_t n, const float *values) {
    uint64_t b;
    OK(hg_executor_allocate_buffer(exec, n, &b));
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (uint64_t i = 0; i < n; i++)
        v[i] = values ? values[i] : (float)i;
    OK(hg_buffer_write(exec, b, v, n));
    free(v);
    return b;
}

static void expect_json(hg_status (*get)(uint64_t, char **), uint64_t t, const char *want) {
    char *s = NULL;
    OK(get(t, &s));
    if (strcmp(s, want) != 0)
        fail_msg("got %s, want %s", s, want);
    hg_free_string(s);
}

static uint32_t u32_of(hg_status (*get)(uint64_t, uint32_t *), uint64_t t) {
    uint32_t v = 0;
    OK(get(t, &v));
    return v;
}

static int contiguous(uint64_t t) {
    uint8_t f = 2;
    OK(hg_tensor_is_contiguous(t, &f));
    return f;
}

static uint64_t buffer_of(uint64_t t) {
    uint64_t b = 0;
    OK(hg_tensor_buffer(t, &b));
    return b;
}

/* The backends this build has. */
static const char *const backends[] = {"interp", "jit"};
static int use_backend(int i) { return hg_set_backend(backends[i]) == HG_OK; }

/* ---- reference views --------------------------------------------------------------------- */
typedef struct {
    uint32_t ndim;
    uint64_t shape[8], stride[8], offset;
} view;

/* The view's elements in row-major order, read from `data` in double. */
static void view_gather(const view *v, const float *data, double *out) {
    uint64_t idx[8] = {0}, numel = 1;
    for (uint32_t d = 0; d < v->ndim; d++)
        numel *= v->shape[d];
    for (uint64_t f = 0; f < numel; f++) {
        uint64_t pos = v->offset;
        for (uint32_t d = 0; d < v->ndim; d++)
            pos += idx[d] * v->stride[d];
        out[f] = data[pos];
        for (uint32_t d = v->ndim; d-- > 0;) {
            if (++idx[d] < v->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

static void dims_json(char *buf, size_t cap, const uint64_t *d, uint32_t n) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? "," : "", (unsigned long long)d[i]);
    snprintf(buf + o, cap - o, "]");
}

/* How many tensors view buffer b (>= 1), read from hg_buffer_cleanup's BUSY message. */
static unsigned views_of(uint64_t b) {
    unsigned n = 0;
    hg_status st = hg_buffer_cleanup(b);
    if (st != HG_ERR_BUSY)
        fail_msg("buffer_cleanup -> %s, want BUSY", hg_status_string(st));
    const char *m = strstr(hg_last_error(), "viewed by ");
    assert_non_null(m);
    assert_int_equal(sscanf(m, "viewed by %u", &n), 1);
    return n;
}

/* Checks that get(t) (tensor_shape or tensor_strides) gives dims d[0..n). */
static void expect_dims(hg_status (*get)(uint64_t, char **), uint64_t t, const uint64_t *d,
                        uint32_t n) {
    char want[200], *s = NULL;
    dims_json(want, sizeof want, d, n);
    OK(get(t, &s));
    char *o = s; /* drop the spaces of ", " (dims_json writes none) */
    for (const char *c = s; *c; c++)
        if (*c != ' ')
            *o++ = *c;
    *o = '\0';
    if (strcmp(s, want) != 0)
        fail_msg("got %s, want %s", s, want);
    hg_free_string(s);
}

/* Checks that tensor t (over a buffer) holds exactly `want[0..numel)` in row-major order
 * when made contiguous, and that the copy is a new contiguous buffer of numel elements. */
static void expect_contiguous_values(uint64_t exec, uint64_t t, const double *want,
                                     uint64_t numel) {
    uint64_t c;
    OK(hg_tensor_contiguous(exec, t, &c));
    uint64_t cb = buffer_of(c);
    assert_true(cb != buffer_of(t));
    assert_int_equal(contiguous(c), 1);
    assert_int_equal(u32_of(hg_tensor_numel, c), numel);
    assert_int_equal(u32_of(hg_tensor_offset, c), 0);
    uint32_t len = 0;
    OK(hg_buffer_length(cb, &len));
    assert_int_equal(len, numel);
    float *got = malloc((numel ? numel : 1) * sizeof *got);
    assert_non_null(got);
    OK(hg_buffer_read(exec, cb, got, numel));
    for (uint64_t i = 0; i < numel; i++)
        if ((double)got[i] != want[i])
            fail_msg("element %llu: %g, want %g", (unsigned long long)i, (double)got[i], want[i]);
    free(got);
    OK(hg_tensor_cleanup(c));
    OK(hg_buffer_cleanup(cb));
}

/* ---- tests ------------------------------------------------------------------------------ */
static void test_from_buffer(void **state) {
    (void)state;
    uint64_t e, t, t2;
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 6, NULL);
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    assert_int_equal(u32_of(hg_tensor_ndim, t), 2);
    assert_int_equal(u32_of(hg_tensor_numel, t), 6);
    assert_int_equal(u32_of(hg_tensor_offset, t), 0);
    expect_json(hg_tensor_shape, t, "[2, 3]");
    expect_json(hg_tensor_strides, t, "[3, 1]");
    assert_int_equal(contiguous(t), 1);
    assert_int_equal(buffer_of(t), b);
    OK(hg_tensor_from_buffer(b, " [2,1,2] ", &t2)); /* fewer elements than the buffer */
    expect_json(hg_tensor_strides, t2, "[2, 2, 1]");
    assert_int_equal(u32_of(hg_tensor_numel, t2), 4);
    OK(hg_tensor_cleanup(t2));
    OK(hg_tensor_from_buffer(b, "[0, 3]", &t2)); /* zero-size dimension */
    assert_int_equal(u32_of(hg_tensor_numel, t2), 0);
    assert_int_equal(contiguous(t2), 1);
    OK(hg_tensor_cleanup(t2));

    uint64_t out = 12345;
    FAILS(hg_tensor_from_buffer(b, "[7]", &out), HG_ERR_OUT_OF_BOUNDS, "has 7 elements");
    FAILS(hg_tensor_from_buffer(b, "[7]", &out), HG_ERR_OUT_OF_BOUNDS, "holds 6");
    FAILS(hg_tensor_from_buffer(b, "[]", &out), HG_ERR_SHAPE, "at least 1");
    FAILS(hg_tensor_from_buffer(b, "[1,1,1,1,1,1,1,1,1]", &out), HG_ERR_SHAPE,
          "shape has 9 dimensions, at most 8");
    FAILS(hg_tensor_from_buffer(b, "[65536, 65536]", &out), HG_ERR_SHAPE,
          "4294967296 elements, at most 4294967295");
    FAILS(hg_tensor_from_buffer(b, "[4294967296, 4294967296, 4294967296]", &out), HG_ERR_SHAPE,
          "more than 2^64");
    FAILS(hg_tensor_from_buffer(b, "[0, 4294967296, 4294967296]", &out), HG_ERR_SHAPE,
          "more than 2^64");
    FAILS(hg_tensor_from_buffer(b, "[2, 3", &out), HG_ERR_JSON, "at byte 5");
    FAILS(hg_tensor_from_buffer(b, "[2, -3]", &out), HG_ERR_JSON, "found '-3'");
    FAILS(hg_tensor_from_buffer(b, "[2.5]", &out), HG_ERR_JSON, "found '2.5'");
    FAILS(hg_tensor_from_buffer(b, "{\"shape\": [2]}", &out), HG_ERR_JSON, "expected '['");
    FAILS(hg_tensor_from_buffer(b, NULL, &out), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_from_buffer(b, "[2]", NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_from_buffer(t, "[2]", &out), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_from_buffer(0, "[2]", &out), HG_ERR_INVALID_HANDLE, "");
    assert_int_equal(out, 12345);

    OK(hg_tensor_cleanup(t));
    OK(hg_buffer_cleanup(b));
    FAILS(hg_tensor_from_buffer(b, "[2]", &out), HG_ERR_INVALID_HANDLE, "");
    OK(hg_executor_cleanup(e));
}

static void test_with_strides(void **state) {
    (void)state;
    uint64_t e, t, out = 777;
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 6, NULL);

    /* transposed view of a [2, 3] matrix */
    OK(hg_tensor_from_buffer_with_strides(b, "[3, 2]", "[1, 3]", &t));
    expect_json(hg_tensor_shape, t, "[3, 2]");
    expect_json(hg_tensor_strides, t, "[1, 3]");
    assert_int_equal(contiguous(t), 0);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, t, (const double[]){0, 3, 1, 4, 2, 5}, 6);
    OK(hg_tensor_cleanup(t));
    /* stepped: every second element */
    OK(hg_tensor_from_buffer_with_strides(b, "[3]", "[2]", &t));
    assert_int_equal(contiguous(t), 0);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, t, (const double[]){0, 2, 4}, 3);
    OK(hg_tensor_cleanup(t));
    /* zero strides: broadcast rows, more elements than the buffer holds */
    OK(hg_tensor_from_buffer_with_strides(b, "[4, 3]", "[0, 1]", &t));
    assert_int_equal(u32_of(hg_tensor_numel, t), 12);
    assert_int_equal(contiguous(t), 0);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, t, (const double[]){0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2},
                                     12);
    OK(hg_tensor_cleanup(t));
    /* size-1 dimensions with any stride are still contiguous */
    OK(hg_tensor_from_buffer_with_strides(b, "[1, 3, 1]", "[99, 1, 42]", &t));
    assert_int_equal(contiguous(t), 1);
    OK(hg_tensor_cleanup(t));
    /* a zero dimension: nothing is reachable, any strides */
    OK(hg_tensor_from_buffer_with_strides(b, "[0, 5]", "[1000, 1000]", &t));
    assert_int_equal(u32_of(hg_tensor_numel, t), 0);
    assert_int_equal(contiguous(t), 1);
    OK(hg_tensor_cleanup(t));
    /* the last element exactly */
    OK(hg_tensor_from_buffer_with_strides(b, "[2, 2]", "[3, 2]", &t));
    OK(hg_tensor_cleanup(t));

    FAILS(hg_tensor_from_buffer_with_strides(b, "[3]", "[3]", &out), HG_ERR_OUT_OF_BOUNDS,
          "reaches element 6");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2, 2]", "[3, 3]", &out), HG_ERR_OUT_OF_BOUNDS,
          "holds 6");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2, 2]", "[9007199254740991, 1]", &out),
          HG_ERR_OUT_OF_BOUNDS, "reaches element");
    FAILS(hg_tensor_from_buffer_with_strides(
              b, "[3, 3, 3]", "[9007199254740991, 9007199254740991, 9007199254740991]", &out),
          HG_ERR_OUT_OF_BOUNDS, "");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2, 3]", "[3]", &out), HG_ERR_SHAPE,
          "shape [2, 3] has 2 dimensions, strides [3] has 1");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2]", "[1.5]", &out), HG_ERR_JSON,
          "JSON error in strides at byte 1");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2]", "[-1]", &out), HG_ERR_JSON, "'-1'");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[2]", NULL, &out), HG_ERR_INVALID_ARGUMENT, "");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[]", "[]", &out), HG_ERR_SHAPE, "");
    FAILS(hg_tensor_from_buffer_with_strides(b, "[65536, 65536]", "[0, 0]", &out), HG_ERR_SHAPE,
          "at most 4294967295");
    assert_int_equal(out, 777);
    OK(hg_buffer_cleanup(b));
    OK(hg_executor_cleanup(e));
}

/* Random strided views of ndim 1..4 (with an offset from a select) copied by
 * tensor_contiguous, against the reference gather. */
static void test_contiguous_random_views(void **state) {
    (void)state;
    uint64_t e;
    OK(hg_new_executor(&e));
    const uint64_t len = 5000;
    float *data = malloc(len * sizeof *data);
    double *want = malloc(len * 8 * sizeof *want);
    assert_non_null(data);
    assert_non_null(want);
    for (uint64_t i = 0; i < len; i++)
        data[i] = rnd();
    uint64_t b = make_buffer(e, len, data);
    int runs = 0;
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        runs++;
        for (uint32_t ndim = 1; ndim <= 4; ndim++) {
            for (int iter = 0; iter < 25; iter++) {
                /* a (ndim+1)-D view; select dim 0 at index 1 gives an offset */
                view v = {ndim + 1, {0}, {0}, 0};
                uint64_t reach = 0;
                v.shape[0] = 2;
                for (uint32_t d = 1; d <= ndim; d++) {
                    v.shape[d] = 1 + rng() % (ndim <= 2 ? 17 : 6);
                    v.stride[d] = rng() % 5 == 0 ? 0 : 1 + rng() % 9;
                    reach += (v.shape[d] - 1) * v.stride[d];
                }
                v.stride[0] = reach + 1 + rng() % 7;
                if (v.stride[0] + reach >= len)
                    continue;
                char shape[128], strides[128];
                dims_json(shape, sizeof shape, v.shape, v.ndim);
                dims_json(strides, sizeof strides, v.stride, v.ndim);
                uint64_t t, s;
                OK(hg_tensor_from_buffer_with_strides(b, shape, strides, &t));
                OK(hg_tensor_select(t, 0, 1, &s));
                assert_int_equal(u32_of(hg_tensor_offset, s), v.stride[0]);
                assert_int_equal(u32_of(hg_tensor_ndim, s), ndim);
                view sv = {ndim, {0}, {0}, v.stride[0]};
                memcpy(sv.shape, v.shape + 1, ndim * sizeof *sv.shape);
                memcpy(sv.stride, v.stride + 1, ndim * sizeof *sv.stride);
                uint64_t numel = 1;
                for (uint32_t d = 0; d < ndim; d++)
                    numel *= sv.shape[d];
                view_gather(&sv, data, want);
                expect_contiguous_values(e, s, want, numel);
                OK(hg_tensor_cleanup(s));
                OK(hg_tensor_cleanup(t));
            }
        }
    }
    assert_true(runs >= 1);
    OK(hg_buffer_cleanup(b));
    free(want);
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_select(void **state) {
    (void)state;
    uint64_t e, t, r, c, s0, out = 5;
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 6, NULL);
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    OK(hg_tensor_select(t, 0, 1, &r)); /* row 1 */
    expect_json(hg_tensor_shape, r, "[3]");
    expect_json(hg_tensor_strides, r, "[1]");
    assert_int_equal(u32_of(hg_tensor_offset, r), 3);
    assert_int_equal(contiguous(r), 1);
    OK(hg_tensor_select(t, 1, 2, &c)); /* column 2 */
    expect_json(hg_tensor_shape, c, "[2]");
    expect_json(hg_tensor_strides, c, "[3]");
    assert_int_equal(u32_of(hg_tensor_offset, c), 2);
    assert_int_equal(contiguous(c), 0);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk)) {
            expect_contiguous_values(e, r, (const double[]){3, 4, 5}, 3);
            expect_contiguous_values(e, c, (const double[]){2, 5}, 2);
        }
    OK(hg_tensor_select(c, 0, 1, &s0)); /* down to 0-D: element [1, 2] */
    expect_json(hg_tensor_shape, s0, "[]");
    expect_json(hg_tensor_strides, s0, "[]");
    assert_int_equal(u32_of(hg_tensor_ndim, s0), 0);
    assert_int_equal(u32_of(hg_tensor_numel, s0), 1);
    assert_int_equal(u32_of(hg_tensor_offset, s0), 5);
    assert_int_equal(contiguous(s0), 1);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, s0, (const double[]){5}, 1);

    FAILS(hg_tensor_select(t, 2, 0, &out), HG_ERR_OUT_OF_BOUNDS, "dim 2");
    FAILS(hg_tensor_select(t, 0, 2, &out), HG_ERR_OUT_OF_BOUNDS,
          "index 2 is out of range for dimension 0 of size 2");
    FAILS(hg_tensor_select(t, 1, 3, &out), HG_ERR_OUT_OF_BOUNDS, "index 3");
    FAILS(hg_tensor_select(s0, 0, 0, &out), HG_ERR_OUT_OF_BOUNDS, "0-D");
    FAILS(hg_tensor_select(b, 0, 0, &out), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_select(t, 0, 0, NULL), HG_ERR_INVALID_ARGUMENT, "");
    assert_int_equal(out, 5);
    /* a view over nothing cannot move its offset past the buffer */
    uint64_t z, zs;
    OK(hg_tensor_from_buffer_with_strides(b, "[5, 0]", "[1000, 1]", &z));
    FAILS(hg_tensor_select(z, 0, 4, &out), HG_ERR_OUT_OF_BOUNDS, "past the end");
    OK(hg_tensor_from_buffer_with_strides(b, "[5, 0]", "[1, 1]", &zs));
    OK(hg_tensor_select(zs, 0, 4, &out));
    assert_int_equal(u32_of(hg_tensor_offset, out), 4);
    assert_int_equal(u32_of(hg_tensor_numel, out), 0);
    OK(hg_executor_cleanup(e)); /* frees every tensor above with the buffer */
    FAILS(hg_tensor_cleanup(s0), HG_ERR_INVALID_HANDLE, "");
}

static void test_transpose(void **state) {
    (void)state;
    uint64_t e, t, tt, ttt, out = 9;
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 24, NULL);
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    OK(hg_tensor_transpose(t, &tt));
    expect_json(hg_tensor_shape, tt, "[3, 2]");
    expect_json(hg_tensor_strides, tt, "[1, 3]");
    assert_int_equal(buffer_of(tt), b);
    assert_int_equal(contiguous(tt), 0);
    OK(hg_tensor_transpose(tt, &ttt));
    assert_int_equal(contiguous(ttt), 1);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, tt, (const double[]){0, 3, 1, 4, 2, 5}, 6);
    uint64_t t3, t1;
    OK(hg_tensor_from_buffer(b, "[2, 3, 4]", &t3));
    OK(hg_tensor_from_buffer(b, "[4]", &t1));
    FAILS(hg_tensor_transpose(t3, &out), HG_ERR_SHAPE, "3 dimensions");
    FAILS(hg_tensor_transpose(t1, &out), HG_ERR_SHAPE, "1 dimensions");
    FAILS(hg_tensor_transpose(t, NULL), HG_ERR_INVALID_ARGUMENT, "");
    assert_int_equal(out, 9);
    FAILS(hg_buffer_cleanup(b), HG_ERR_BUSY, "5");
    OK(hg_executor_cleanup(e));
}

static void test_reshape(void **state) {
    (void)state;
    uint64_t e, e2, t, r, r0, tt, rc, out = 3;
    OK(hg_new_executor(&e));
    OK(hg_new_executor(&e2));
    uint64_t b = make_buffer(e, 6, NULL);
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    /* contiguous: a view over the same buffer */
    OK(hg_tensor_reshape(e, t, "[3, 1, 2]", &r));
    assert_int_equal(buffer_of(r), b);
    expect_json(hg_tensor_shape, r, "[3, 1, 2]");
    expect_json(hg_tensor_strides, r, "[2, 2, 1]");
    OK(hg_tensor_select(t, 0, 1, &r0)); /* contiguous with an offset */
    OK(hg_tensor_reshape(e, r0, "[3, 1]", &out));
    assert_int_equal(buffer_of(out), b);
    assert_int_equal(u32_of(hg_tensor_offset, out), 3);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, out, (const double[]){3, 4, 5}, 3);
    /* not contiguous: a copy into a new buffer of the executor */
    OK(hg_tensor_transpose(t, &tt));
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        OK(hg_tensor_reshape(e, tt, "[6]", &rc));
        uint64_t nb = buffer_of(rc);
        assert_true(nb != b);
        expect_json(hg_tensor_strides, rc, "[1]");
        assert_int_equal(contiguous(rc), 1);
        float got[6];
        OK(hg_buffer_read(e, nb, got, 6));
        const float want[6] = {0, 3, 1, 4, 2, 5};
        assert_memory_equal(got, want, sizeof want);
        FAILS(hg_buffer_cleanup(nb), HG_ERR_BUSY, "1");
        OK(hg_tensor_cleanup(rc));
        OK(hg_buffer_cleanup(nb));
    }
    out = 3;
    FAILS(hg_tensor_reshape(e, t, "[4]", &out), HG_ERR_SHAPE,
          "cannot reshape [2, 3] (6 elements) to [4] (4 elements)");
    FAILS(hg_tensor_reshape(e, t, "[2, 3", &out), HG_ERR_JSON, "byte 5");
    FAILS(hg_tensor_reshape(e2, t, "[6]", &out), HG_ERR_INVALID_HANDLE, "belongs to executor");
    FAILS(hg_tensor_reshape(e, b, "[6]", &out), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_reshape(t, t, "[6]", &out), HG_ERR_INVALID_HANDLE, "");
    assert_int_equal(out, 3);
    OK(hg_executor_cleanup(e2));
    OK(hg_executor_cleanup(e));
}

/* The element offset of batch item `idx` (C's batch index, nd: C's rank) in view v: its
 * batch dimensions aligned at the right, a missing or extent-1 one contributing nothing. */
static uint64_t batch_offset(const view *v, uint32_t nd, const uint64_t *idx) {
    uint64_t pos = v->offset;
    for (uint32_t d = 0; d + 2 < nd; d++)
        if (d + v->ndim >= nd && v->shape[d + v->ndim - nd] > 1)
            pos += idx[d] * v->stride[d + v->ndim - nd];
    return pos;
}

/* C = matmul(A, B) for tensors ta and tb whose geometry over `data` (their buffer's
 * contents) is va and vb (ranks >= 2, batch dimensions broadcast as NumPy does), checked:
 * C's shape, a new contiguous buffer of exactly numel elements, and each element against a
 * double loop reading A and B through va and vb, within 1e-6 * (k + 1) * sum_p |A[i,p]
 * B[p,j]| (tests/test_jit.c's contraction bound, tighter than the API's gemm bound; with
 * k = 0 exact zeros). */
static void check_matmul(uint64_t e, uint64_t ta, uint64_t tb, const view *va, const view *vb,
                         const float *data) {
    const uint32_t nd = va->ndim > vb->ndim ? va->ndim : vb->ndim;
    uint64_t shape[8], items = 1;
    for (uint32_t d = 0; d + 2 < nd; d++) {
        uint64_t ea = d + va->ndim >= nd ? va->shape[d + va->ndim - nd] : 1;
        uint64_t eb = d + vb->ndim >= nd ? vb->shape[d + vb->ndim - nd] : 1;
        assert_true(ea == eb || ea == 1 || eb == 1);
        shape[d] = ea == 1 ? eb : ea;
        items *= shape[d];
    }
    const uint64_t m = va->shape[va->ndim - 2], k = va->shape[va->ndim - 1];
    const uint64_t n = vb->shape[vb->ndim - 1], numel = items * m * n;
    const int64_t ars = (int64_t)va->stride[va->ndim - 2], acs = (int64_t)va->stride[va->ndim - 1];
    const int64_t brs = (int64_t)vb->stride[vb->ndim - 2], bcs = (int64_t)vb->stride[vb->ndim - 1];
    shape[nd - 2] = m;
    shape[nd - 1] = n;
    uint64_t tc;
    OK(hg_tensor_matmul(e, ta, tb, &tc));
    expect_dims(hg_tensor_shape, tc, shape, nd);
    assert_int_equal(contiguous(tc), 1);
    assert_int_equal(u32_of(hg_tensor_offset, tc), 0);
    uint64_t cb = buffer_of(tc);
    uint32_t len = 0;
    OK(hg_buffer_length(cb, &len));
    assert_int_equal(len, numel);
    assert_true(cb != buffer_of(ta) && cb != buffer_of(tb));
    float *got = malloc((numel ? numel : 1) * sizeof *got);
    assert_non_null(got);
    OK(hg_buffer_read(e, cb, got, numel));
    for (uint64_t item = 0; item < items && m * n > 0; item++) {
        uint64_t idx[8], rest = item;
        for (uint32_t d = nd - 2; d-- > 0;) {
            idx[d] = rest % shape[d];
            rest /= shape[d];
        }
        const uint64_t oa = batch_offset(va, nd, idx), ob = batch_offset(vb, nd, idx);
        for (uint64_t i = 0; i < m; i++)
            for (uint64_t j = 0; j < n; j++) {
                double ref = 0, mag = 0;
                for (uint64_t p = 0; p < k; p++) {
                    double t = (double)data[oa + i * ars + p * acs] *
                               (double)data[ob + p * brs + j * bcs];
                    ref += t;
                    mag += fabs(t);
                }
                const double c = got[(item * m + i) * n + j];
                const double tol = 1e-6 * (double)(k + 1) * mag;
                if (!(fabs(c - ref) <= tol))
                    fail_msg("item %llu C[%llu,%llu] = %.9g, want %.9g (tol %.3g)",
                             (unsigned long long)item, (unsigned long long)i,
                             (unsigned long long)j, c, ref, tol);
            }
    }
    OK(hg_tensor_cleanup(tc));
    OK(hg_buffer_cleanup(cb));
    free(got);
}

/* A tensor over buffer b with v's geometry: a [2, shape...] view with strides [offset,
 * strides...], selected at 1 (so v's strides need reach only its own elements). */
static uint64_t make_view_at(uint64_t b, const view *v) {
    uint64_t shape[9] = {2}, stride[9] = {v->offset}, outer, t;
    char s1[256], s2[256];
    memcpy(shape + 1, v->shape, v->ndim * sizeof *shape);
    memcpy(stride + 1, v->stride, v->ndim * sizeof *stride);
    dims_json(s1, sizeof s1, shape, v->ndim + 1);
    dims_json(s2, sizeof s2, stride, v->ndim + 1);
    OK(hg_tensor_from_buffer_with_strides(b, s1, s2, &outer));
    OK(hg_tensor_select(outer, 0, 1, &t));
    OK(hg_tensor_cleanup(outer));
    return t;
}

static void test_matmul(void **state) {
    (void)state;
    uint64_t e;
    OK(hg_new_executor(&e));
    const uint64_t len = 4096;
    float *data = malloc(len * sizeof *data);
    assert_non_null(data);
    for (uint64_t i = 0; i < len; i++)
        data[i] = rnd();
    uint64_t b = make_buffer(e, len, data);
    static const uint64_t sizes[][3] = {{4, 8, 5},    {1, 1, 1}, {3, 17, 2},
                                        {16, 16, 16}, {7, 1, 9}, {33, 20, 31}};
    int runs = 0;
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        runs++;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            uint64_t m = sizes[s][0], k = sizes[s][1], n = sizes[s][2];
            for (int layout = 0; layout < 4; layout++) {
                /* A: row-major, or the transpose of a [k x m] view; B: row-major at an
                 * offset, or stepped (column stride 2, row stride 2n+1). */
                view va = {2, {m, k}, {k, 1}, 0}, vb = {2, {k, n}, {n, 1}, m * k};
                if (layout & 1) {
                    va.stride[0] = 1;
                    va.stride[1] = m;
                }
                if (layout & 2) {
                    vb.stride[0] = 2 * n + 1;
                    vb.stride[1] = 2;
                }
                uint64_t base_a, ta;
                char shape[64];
                if (layout & 1) { /* a [k x m] row-major view, transposed */
                    snprintf(shape, sizeof shape, "[%llu, %llu]", (unsigned long long)k,
                             (unsigned long long)m);
                    OK(hg_tensor_from_buffer(b, shape, &base_a));
                    OK(hg_tensor_transpose(base_a, &ta));
                } else {
                    snprintf(shape, sizeof shape, "[%llu, %llu]", (unsigned long long)m,
                             (unsigned long long)k);
                    OK(hg_tensor_from_buffer(b, shape, &base_a));
                    OK(hg_tensor_reshape(e, base_a, shape, &ta));
                }
                const uint64_t tb = make_view_at(b, &vb); /* at offset m * k */
                check_matmul(e, ta, tb, &va, &vb, data);
                OK(hg_tensor_cleanup(tb));
                OK(hg_tensor_cleanup(ta));
                OK(hg_tensor_cleanup(base_a));
            }
        }
    }
    assert_true(runs >= 1);
    free(data);
    OK(hg_executor_cleanup(e));
}

/* How a matmul operand lies in its buffer (make_operand). */
typedef enum {
    LAY_OFFSET,    /* row-major from an offset: a narrow of the buffer, reshaped */
    LAY_PERMUTED,  /* stored last dimension first ([k, b, m] for [b, m, k]), permuted back
                      (hg_tensor_transpose at rank 2) */
    LAY_STEPPED,   /* every other element (slice, step 2) of each dimension but the last,
                      which is narrowed */
    LAY_BROADCAST, /* the first dimension and the rows from extent 1 (stride 0) */
    LAY_COUNT
} layout;

static void row_major(const uint64_t *shape, uint32_t nd, uint64_t *stride) {
    uint64_t s = 1;
    for (uint32_t d = nd; d-- > 0;) {
        stride[d] = s;
        s *= shape[d] ? shape[d] : 1;
    }
}

/* A tensor of shape[0..nd) laid out as `lay` in the buffer that the 1-D tensor `flat`
 * covers, its storage starting at element `at`, made by hologram's views from `flat`.  *v
 * gets its geometry, computed here from the layout alone (the reference reads A and B
 * through it). */
static uint64_t make_operand(uint64_t e, uint64_t flat, layout lay, const uint64_t *shape,
                             uint32_t nd, uint64_t at, view *v) {
    uint64_t store[8], sst[8], numel = 1, t, u;
    char text[128];
    memcpy(store, shape, nd * sizeof *shape);
    if (lay == LAY_PERMUTED) {
        store[0] = shape[nd - 1];
        memcpy(store + 1, shape, (nd - 1) * sizeof *shape);
    } else if (lay == LAY_STEPPED) {
        for (uint32_t d = 0; d + 1 < nd; d++)
            store[d] = 2 * shape[d] + 1;
        store[nd - 1] = shape[nd - 1] + 3;
    } else if (lay == LAY_BROADCAST) {
        store[0] = store[nd - 2] = 1;
    }
    for (uint32_t d = 0; d < nd; d++)
        numel *= store[d];
    row_major(store, nd, sst);
    OK(hg_tensor_narrow(flat, 0, at, numel, &u));
    dims_json(text, sizeof text, store, nd);
    OK(hg_tensor_reshape(e, u, text, &t));
    OK(hg_tensor_cleanup(u));
    *v = (view){nd, {0}, {0}, at};
    memcpy(v->shape, shape, nd * sizeof *shape);
    memcpy(v->stride, sst, nd * sizeof *sst);
    switch (lay) {
    case LAY_OFFSET:
    case LAY_COUNT:
        return t;
    case LAY_PERMUTED: { /* view dimension i is stored dimension i + 1, the last is 0 */
        uint64_t perm[8];
        for (uint32_t i = 0; i < nd; i++) {
            perm[i] = (i + 1) % nd;
            v->stride[i] = sst[perm[i]];
        }
        dims_json(text, sizeof text, perm, nd);
        OK(nd == 2 ? hg_tensor_transpose(t, &u) : hg_tensor_permute(t, text, &u));
        break;
    }
    case LAY_STEPPED:
        for (uint32_t d = 0; d < nd; d++) {
            const int last = d + 1 == nd;
            OK(last ? hg_tensor_narrow(t, d, 2, shape[d], &u)
                    : hg_tensor_slice(t, d, 1, -1, 2, &u));
            OK(hg_tensor_cleanup(t));
            t = u;
            if (shape[d] > 0) /* an empty slice keeps offset and stride (NumPy's a[s:s]) */
                v->offset += (last ? 2 : 1) * sst[d];
            if (shape[d] > 1 && !last)
                v->stride[d] = 2 * sst[d];
        }
        return t;
    case LAY_BROADCAST:
        for (uint32_t d = 0; d < nd; d++)
            if (store[d] != shape[d])
                v->stride[d] = 0;
        dims_json(text, sizeof text, shape, nd);
        OK(hg_tensor_broadcast_to(t, text, &u));
        break;
    }
    OK(hg_tensor_cleanup(t));
    return u;
}

/* Batched matmul with broadcasting, ranks 2-4 mixed, every layout for A and for B (offsets,
 * non-contiguous batch strides, steps, narrowing, stride 0), zero extents, under every
 * backend, against the double reference. */
static void test_matmul_batched(void **state) {
    (void)state;
    static const struct {
        uint32_t na;
        uint64_t a[4];
        uint32_t nb;
        uint64_t b[4];
    } cases[] = {
        {3, {3, 4, 5}, 3, {3, 5, 2}},      {3, {1, 4, 5}, 3, {3, 5, 2}},
        {3, {3, 4, 5}, 3, {1, 5, 2}},      {2, {4, 5}, 3, {3, 5, 2}},
        {3, {3, 4, 5}, 2, {5, 2}},         {4, {2, 1, 4, 5}, 3, {3, 5, 6}},
        {3, {2, 17, 16}, 3, {2, 16, 33}},  {3, {2, 1, 1}, 3, {2, 1, 1}},
        {3, {1, 6, 20}, 3, {4, 20, 1}},    {3, {2, 40, 300}, 2, {300, 70}},
        {3, {0, 4, 5}, 2, {5, 2}},         {3, {3, 0, 5}, 3, {3, 5, 2}},
        {3, {3, 4, 0}, 3, {3, 0, 2}},      {3, {1, 4, 5}, 3, {0, 5, 2}},
        {3, {2, 4, 5}, 3, {2, 5, 0}},      {4, {2, 3, 1, 5}, 2, {5, 1}},
    };
    uint64_t e, b, flat;
    const uint64_t len = 1 << 18, half = len / 2;
    float *data = malloc(len * sizeof *data);
    assert_non_null(data);
    for (uint64_t i = 0; i < len; i++)
        data[i] = rnd();
    OK(hg_new_executor(&e));
    b = make_buffer(e, len, data);
    OK(hg_tensor_from_buffer(b, "[262144]", &flat));
    int runs = 0;
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        runs++;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int la = 0; la < LAY_COUNT; la++) {
                const layout lb = (layout)((la + 1 + (int)c) % LAY_COUNT);
                view va, vb;
                uint64_t ta = make_operand(e, flat, (layout)la, cases[c].a, cases[c].na,
                                           1 + rng() % 97, &va);
                uint64_t tb = make_operand(e, flat, lb, cases[c].b, cases[c].nb,
                                           half + 1 + rng() % 97, &vb);
                check_matmul(e, ta, tb, &va, &vb, data);
                OK(hg_tensor_cleanup(ta));
                OK(hg_tensor_cleanup(tb));
            }
    }
    assert_true(runs >= 1);
    free(data);
    OK(hg_executor_cleanup(e));
}

/* Dimensions of extent 1 are never stepped, whatever their stride (here 2^40, far outside
 * the buffer): a batch dimension of extent 1 broadcasts, and rows, columns or k of extent 1
 * are read at index 0 only. */
static void test_matmul_extent_one_strides(void **state) {
    (void)state;
    const uint64_t far = 1ull << 40;
    const view cases[][2] = {
        {{3, {1, 4, 5}, {far, 5, 1}, 3}, {3, {3, 5, 2}, {10, 2, 1}, 30}},
        {{2, {1, 7}, {far, 1}, 0}, {2, {7, 1}, {1, far}, 30}},
        {{3, {2, 3, 1}, {3, 1, far}, 5}, {3, {1, 1, 4}, {far, far, 1}, 40}},
        {{4, {1, 2, 1, 3}, {far, 3, far, 1}, 7}, {3, {2, 3, 1}, {3, 1, far}, 50}},
    };
    uint64_t e, b;
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = rnd();
    OK(hg_new_executor(&e));
    b = make_buffer(e, 64, data);
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            uint64_t ta = make_view_at(b, &cases[c][0]), tb = make_view_at(b, &cases[c][1]);
            check_matmul(e, ta, tb, &cases[c][0], &cases[c][1], data);
            OK(hg_tensor_cleanup(ta));
            OK(hg_tensor_cleanup(tb));
        }
    }
    OK(hg_executor_cleanup(e));
}

/* A is read in place, never copied: a row broadcast to [32768, 32768] has 2^30 elements,
 * one more than a buffer holds (tensor_contiguous of it fails), and matmul with x reads it
 * through its stride 0: every element of C is the row's dot product with x. */
static void test_matmul_reads_in_place(void **state) {
    (void)state;
    enum { K = 32768 };
    uint64_t e, row, a, x, c, out = 21;
    float *v = malloc(2 * K * sizeof *v), *got = malloc(K * sizeof *got);
    assert_true(v && got);
    double dot = 0, mag = 0;
    for (int i = 0; i < 2 * K; i++)
        v[i] = rnd();
    for (int i = 0; i < K; i++) {
        dot += (double)v[i] * v[K + i];
        mag += fabs((double)v[i] * v[K + i]);
    }
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 2 * K, v);
    OK(hg_tensor_from_buffer(b, "[32768]", &row));
    OK(hg_tensor_broadcast_to(row, "[32768, 32768]", &a));
    x = make_view_at(b, &(view){2, {K, 1}, {1, 1}, K});
    FAILS(hg_tensor_contiguous(e, a, &out), HG_ERR_NO_MEMORY, "exceeds the maximum");
    assert_int_equal(out, 21);
    const double tol = 1e-6 * (K + 1) * mag;
    for (int bk = 0; bk < 2; bk++) {
        if (!use_backend(bk))
            continue;
        OK(hg_tensor_matmul(e, a, x, &c));
        expect_dims(hg_tensor_shape, c, (const uint64_t[]){K, 1}, 2);
        OK(hg_buffer_read(e, buffer_of(c), got, K));
        for (int i = 0; i < K; i++)
            if (!(fabs(got[i] - dot) <= tol))
                fail_msg("C[%d] = %.9g, want %.9g (tol %.3g)", i, (double)got[i], dot, tol);
        uint64_t cb = buffer_of(c);
        OK(hg_tensor_cleanup(c));
        OK(hg_buffer_cleanup(cb));
    }
    free(got);
    free(v);
    OK(hg_executor_cleanup(e));
}

/* Every batch item is one contraction of the same shape and strides, so the JIT compiles
 * one kernel for the batch (one miss, then hits), not one per item. */
static void test_matmul_one_kernel_per_batch(void **state) {
    (void)state;
    if (hg_set_backend("jit") != HG_OK)
        skip();
    uint64_t e, b, flat;
    const uint64_t len = 4096;
    float *data = malloc(len * sizeof *data);
    assert_non_null(data);
    for (uint64_t i = 0; i < len; i++)
        data[i] = rnd();
    OK(hg_new_executor(&e));
    b = make_buffer(e, len, data);
    OK(hg_tensor_from_buffer(b, "[4096]", &flat));
    view va, vb;
    uint64_t ta = make_operand(e, flat, LAY_PERMUTED, (const uint64_t[]){6, 4, 5}, 3, 3, &va);
    uint64_t tb = make_operand(e, flat, LAY_STEPPED, (const uint64_t[]){6, 5, 3}, 3, 2000, &vb);
    OK(hg_cache_reset());
    check_matmul(e, ta, tb, &va, &vb, data);
    hg_cache_stats st;
    OK(hg_cache_stats_get(&st));
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 5);
    free(data);
    OK(hg_executor_cleanup(e));
}

/* The handle the registry issues next, as a buffer (allocated and freed at once).  Its slot
 * then heads the free list one generation on (runtime/registry.c), so two probes with
 * nothing created between them differ by exactly one generation (1 << 32); anything
 * registered between them, even if freed again, breaks that. */
static uint64_t next_handle(uint64_t e) {
    uint64_t b;
    OK(hg_executor_allocate_buffer(e, 1, &b));
    OK(hg_buffer_cleanup(b));
    return b;
}

/* Every refusal, with its status and message, creates nothing: no buffer, no tensor (the
 * next handle is unchanged, no new view of the inputs' buffer), *out untouched. */
static void test_matmul_errors(void **state) {
    (void)state;
    uint64_t e, e2, b, t24, t46, t48, t33, t234, t256, t546, t2334, t022, t322, sc, o33;
    OK(hg_new_executor(&e));
    OK(hg_new_executor(&e2));
    b = make_buffer(e, 64, NULL);
    OK(hg_tensor_from_buffer(b, "[24]", &t24));
    OK(hg_tensor_from_buffer(b, "[4, 6]", &t46));
    OK(hg_tensor_from_buffer(b, "[4, 8]", &t48));
    OK(hg_tensor_from_buffer(b, "[3, 3]", &t33));
    OK(hg_tensor_from_buffer(b, "[2, 3, 4]", &t234));
    OK(hg_tensor_from_buffer(b, "[2, 5, 6]", &t256));
    OK(hg_tensor_from_buffer_with_strides(b, "[5, 4, 6]", "[0, 6, 1]", &t546));
    OK(hg_tensor_from_buffer_with_strides(b, "[2, 3, 3, 4]", "[0, 0, 4, 1]", &t2334));
    OK(hg_tensor_from_buffer(b, "[0, 2, 2]", &t022));
    OK(hg_tensor_from_buffer(b, "[3, 2, 2]", &t322));
    OK(hg_tensor_select(t24, 0, 3, &sc)); /* 0-D */
    static const char *const big_shapes[][2] = {
        /* shapes of many (or no) elements over one element: strides 0 */
        {"[65536, 1]", "[0, 0]"},      {"[1, 65536]", "[0, 0]"},
        {"[65536, 1, 1]", "[0, 0, 0]"}, {"[4294967296, 0]", "[0, 0]"},
        {"[0, 4294967296]", "[0, 0]"}, {"[32768, 1]", "[0, 0]"}};
    uint64_t big[6];
    for (int i = 0; i < 6; i++)
        OK(hg_tensor_from_buffer_with_strides(b, big_shapes[i][0], big_shapes[i][1], &big[i]));
    uint64_t b2 = make_buffer(e2, 9, NULL);
    OK(hg_tensor_from_buffer(b2, "[3, 3]", &o33));
    uint64_t freed;
    OK(hg_tensor_from_buffer(b, "[3, 3]", &freed));
    OK(hg_tensor_cleanup(freed));
    const struct {
        uint64_t exec, a, b;
        hg_status status;
        const char *part;
    } bad[] = {
        {e, t24, t46, HG_ERR_SHAPE,
         "matmul [24] x [4, 6]: A is 1-D and B 2-D: both need at least 2 dimensions"},
        {e, t46, t24, HG_ERR_SHAPE, "matmul [4, 6] x [24]: A is 2-D and B 1-D"},
        {e, sc, t33, HG_ERR_SHAPE, "matmul [] x [3, 3]: A is 0-D"},
        {e, t24, t24, HG_ERR_SHAPE, "unsqueeze it"},
        {e, t48, t33, HG_ERR_SHAPE,
         "matmul [4, 8] x [3, 3]: inner dimensions differ: dimension 1 of A has 8, dimension "
         "0 of B has 3"},
        {e, t234, t256, HG_ERR_SHAPE, "dimension 2 of A has 4, dimension 1 of B has 5"},
        {e, t33, t256, HG_ERR_SHAPE, "matmul [3, 3] x [2, 5, 6]: inner dimensions differ"},
        {e, t234, t546, HG_ERR_SHAPE,
         "matmul [2, 3, 4] x [5, 4, 6]: batch dimensions do not broadcast: dimension 0 of A "
         "has 2, dimension 0 of B has 5, and neither is 1"},
        {e, t2334, t546, HG_ERR_SHAPE, "dimension 1 of A has 3, dimension 0 of B has 5"},
        {e, t022, t322, HG_ERR_SHAPE, "dimension 0 of A has 0, dimension 0 of B has 3"},
        {e, big[0], big[1], HG_ERR_SHAPE,
         "matmul [65536, 1] x [1, 65536]: the result's shape [65536, 65536] has 4294967296 "
         "elements, at most 4294967295"},
        {e, big[2], big[1], HG_ERR_SHAPE, "the result's shape [65536, 1, 65536] has"},
        {e, big[3], big[4], HG_ERR_SHAPE,
         "the result's shape [4294967296, 4294967296] is too large: its nonzero dimensions "
         "multiply to more than 2^64"},
        {e, big[5], big[1], HG_ERR_NO_MEMORY, "length 2147483648 exceeds the maximum"},
        {e2, t33, t33, HG_ERR_INVALID_HANDLE, "belongs to executor"},
        {e, t33, o33, HG_ERR_INVALID_HANDLE, "belongs to executor"},
        {e, o33, t33, HG_ERR_INVALID_HANDLE, "belongs to executor"},
        {e, t33, b, HG_ERR_INVALID_HANDLE, "not a tensor"},
        {e, freed, t33, HG_ERR_INVALID_HANDLE, ""},
        {t33, t33, t33, HG_ERR_INVALID_HANDLE, "not an executor"},
        {0, t33, t33, HG_ERR_INVALID_HANDLE, ""},
    };
    const unsigned views = views_of(b);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t out = 77;
        const uint64_t before = next_handle(e);
        FAILS(hg_tensor_matmul(bad[i].exec, bad[i].a, bad[i].b, &out), bad[i].status,
              bad[i].part);
        assert_int_equal(next_handle(e), before + (1ull << 32));
        assert_int_equal(out, 77);
    }
    const uint64_t before = next_handle(e);
    FAILS(hg_tensor_matmul(e, t33, t33, NULL), HG_ERR_INVALID_ARGUMENT, "out_tensor is NULL");
    assert_int_equal(next_handle(e), before + (1ull << 32));
    assert_int_equal(views_of(b), views);
    uint64_t out = 77;
    FAILS(hg_tensor_contiguous(e, o33, &out), HG_ERR_INVALID_HANDLE, "belongs to executor");
    assert_int_equal(out, 77);
    OK(hg_executor_cleanup(e2));
    OK(hg_executor_cleanup(e));
}

static void test_cleanup_and_busy(void **state) {
    (void)state;
    uint64_t e, t1, t2, c, out = 8;
    uint32_t u = 0;
    OK(hg_new_executor(&e));
    uint64_t b = make_buffer(e, 8, NULL);
    OK(hg_tensor_from_buffer(b, "[8]", &t1));
    OK(hg_tensor_from_buffer(b, "[2, 4]", &t2));
    FAILS(hg_buffer_cleanup(b), HG_ERR_BUSY, "2");
    OK(hg_tensor_cleanup(t1));
    FAILS(hg_buffer_cleanup(b), HG_ERR_BUSY, "1");
    FAILS(hg_tensor_cleanup(t1), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_ndim(t1, &u), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_cleanup(b), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_cleanup(0), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_shape(t2, NULL), HG_ERR_INVALID_ARGUMENT, "");
    FAILS(hg_tensor_numel(e, &u), HG_ERR_INVALID_HANDLE, "");
    OK(hg_tensor_cleanup(t2));
    OK(hg_buffer_cleanup(b));
    FAILS(hg_buffer_cleanup(b), HG_ERR_INVALID_HANDLE, "");

    /* a copy owns a new buffer; executor cleanup frees it with its tensor */
    b = make_buffer(e, 8, NULL);
    OK(hg_tensor_from_buffer(b, "[8]", &t1));
    if (use_backend(0) || use_backend(1)) {
        OK(hg_tensor_contiguous(e, t1, &c));
        uint64_t cb = buffer_of(c);
        OK(hg_executor_cleanup(e));
        FAILS(hg_tensor_cleanup(c), HG_ERR_INVALID_HANDLE, "");
        FAILS(hg_buffer_cleanup(cb), HG_ERR_INVALID_HANDLE, "");
    } else {
        OK(hg_executor_cleanup(e));
    }
    FAILS(hg_tensor_cleanup(t1), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_contiguous(e, t1, &out), HG_ERR_INVALID_HANDLE, "");
}

/* ---- views: permute, narrow, slice, view_1d, broadcast_to, unsqueeze, squeeze -------------- */

/* Checks that t has want's shape, strides and offset, views buffer b, and holds want's
 * elements of `data` (b's contents) under every backend. */
static void expect_view(uint64_t e, uint64_t t, uint64_t b, const view *want, const float *data) {
    uint64_t numel = 1;
    for (uint32_t d = 0; d < want->ndim; d++)
        numel *= want->shape[d];
    expect_dims(hg_tensor_shape, t, want->shape, want->ndim);
    expect_dims(hg_tensor_strides, t, want->stride, want->ndim);
    assert_int_equal(u32_of(hg_tensor_offset, t), want->offset);
    assert_int_equal(u32_of(hg_tensor_ndim, t), want->ndim);
    assert_int_equal(u32_of(hg_tensor_numel, t), numel);
    assert_int_equal(buffer_of(t), b);
    double *vals = malloc((numel ? numel : 1) * sizeof *vals);
    assert_non_null(vals);
    view_gather(want, data, vals);
    for (int bk = 0; bk < 2; bk++)
        if (use_backend(bk))
            expect_contiguous_values(e, t, vals, numel);
    free(vals);
}

/* A new executor *e with a buffer *b of n elements 0, 1, 2, ...; returns those values
 * (malloc'd). */
static float *iota_buffer(uint64_t n, uint64_t *e, uint64_t *b) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (uint64_t i = 0; i < n; i++)
        v[i] = (float)i;
    OK(hg_new_executor(e));
    *b = make_buffer(*e, n, v);
    return v;
}

static void test_permute(void **state) {
    (void)state;
    uint64_t e, t, p, pp, s0, z, out = 11;
    uint64_t b;
    float *data = iota_buffer(24, &e, &b);
    OK(hg_tensor_from_buffer(b, "[2, 3, 4]", &t));
    OK(hg_tensor_permute(t, "[2, 0, 1]", &p));
    expect_view(e, p, b, &(view){3, {4, 2, 3}, {1, 12, 4}, 0}, data);
    assert_int_equal(contiguous(p), 0);
    OK(hg_tensor_permute(p, "[1, 2, 0]", &pp)); /* back to the identity */
    expect_view(e, pp, b, &(view){3, {2, 3, 4}, {12, 4, 1}, 0}, data);
    assert_int_equal(contiguous(pp), 1);
    OK(hg_tensor_cleanup(pp));
    OK(hg_tensor_permute(t, " [0,1,2] ", &pp));
    expect_view(e, pp, b, &(view){3, {2, 3, 4}, {12, 4, 1}, 0}, data);
    OK(hg_tensor_cleanup(pp));
    /* with an offset, and a zero-size dimension */
    OK(hg_tensor_select(t, 0, 1, &s0));
    OK(hg_tensor_permute(s0, "[1, 0]", &pp));
    expect_view(e, pp, b, &(view){2, {4, 3}, {1, 4}, 12}, data);
    OK(hg_tensor_cleanup(pp));
    OK(hg_tensor_from_buffer(b, "[2, 0, 3]", &z));
    OK(hg_tensor_permute(z, "[1, 2, 0]", &pp));
    expect_view(e, pp, b, &(view){3, {0, 3, 2}, {3, 1, 3}, 0}, data);
    OK(hg_tensor_cleanup(pp));
    /* 0-D: the empty permutation */
    uint64_t r, sc;
    OK(hg_tensor_select(s0, 0, 2, &r));
    OK(hg_tensor_select(r, 0, 3, &sc));
    OK(hg_tensor_permute(sc, "[]", &pp));
    expect_view(e, pp, b, &(view){0, {0}, {0}, 23}, data);
    OK(hg_tensor_cleanup(pp));

    unsigned before = views_of(b);
    static const struct {
        const char *dims, *part;
        hg_status status;
    } bad[] = {
        {"[0, 1]", "dims [0, 1] has 2 entries, tensor 0x", HG_ERR_SHAPE},
        {"[0, 1]", "has 3 dimensions", HG_ERR_SHAPE},
        {"[0, 1, 2, 0]", "4 entries", HG_ERR_SHAPE},
        {"[0, 0, 1]", "dims [0, 0, 1] is not a permutation of the 3 dimensions", HG_ERR_SHAPE},
        {"[0, 0, 1]", "0 appears twice", HG_ERR_SHAPE},
        {"[0, 3, 1]", "3 is out of range", HG_ERR_SHAPE},
        {"[0, 9007199254740991, 1]", "9007199254740991 is out of range", HG_ERR_SHAPE},
        {"[0, 1, 2, 3, 4, 5, 6, 7, 8]", "dims [0, 1, 2, 3, 4, 5, 6, 7, 8] has more than 8 entries",
         HG_ERR_SHAPE},
        {"[0, -1, 2]", "found '-1'", HG_ERR_JSON},
        {"[0, 1.5, 2]", "found '1.5'", HG_ERR_JSON},
        {"[0, 1, 2", "JSON error in dims", HG_ERR_JSON},
        {"{}", "expected '['", HG_ERR_JSON},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        FAILS(hg_tensor_permute(t, bad[i].dims, &out), bad[i].status, bad[i].part);
    FAILS(hg_tensor_permute(sc, "[0]", &out), HG_ERR_SHAPE, "has 0 dimensions");
    FAILS(hg_tensor_permute(t, NULL, &out), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_permute(t, "[0, 1, 2]", NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_permute(b, "[0]", &out), HG_ERR_INVALID_HANDLE, "not a tensor");
    FAILS(hg_tensor_permute(0, "[0]", &out), HG_ERR_INVALID_HANDLE, "");
    assert_int_equal(out, 11);
    assert_int_equal(views_of(b), before); /* nothing was created */
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_narrow(void **state) {
    (void)state;
    uint64_t e, t, n, nn, z, sc, out = 12;
    uint64_t b;
    float *data = iota_buffer(20, &e, &b);
    OK(hg_tensor_from_buffer(b, "[4, 5]", &t));
    OK(hg_tensor_narrow(t, 1, 1, 3, &n)); /* t[:, 1:4] */
    expect_view(e, n, b, &(view){2, {4, 3}, {5, 1}, 1}, data);
    assert_int_equal(contiguous(n), 0);
    OK(hg_tensor_narrow(n, 0, 2, 2, &nn)); /* then rows 2..3 */
    expect_view(e, nn, b, &(view){2, {2, 3}, {5, 1}, 11}, data);
    OK(hg_tensor_cleanup(nn));
    OK(hg_tensor_narrow(t, 0, 1, 2, &nn)); /* whole rows: contiguous */
    expect_view(e, nn, b, &(view){2, {2, 5}, {5, 1}, 5}, data);
    assert_int_equal(contiguous(nn), 1);
    OK(hg_tensor_cleanup(nn));
    OK(hg_tensor_narrow(t, 1, 0, 5, &nn)); /* everything */
    expect_view(e, nn, b, &(view){2, {4, 5}, {5, 1}, 0}, data);
    OK(hg_tensor_cleanup(nn));
    /* length 0, even at the end: the offset stays (NumPy's a[s:s]) */
    OK(hg_tensor_narrow(n, 0, 4, 0, &nn));
    expect_view(e, nn, b, &(view){2, {0, 3}, {5, 1}, 1}, data);
    OK(hg_tensor_cleanup(nn));
    OK(hg_tensor_narrow(t, 1, 2, 0, &nn));
    expect_view(e, nn, b, &(view){2, {4, 0}, {5, 1}, 0}, data);
    OK(hg_tensor_cleanup(nn));

    unsigned before = views_of(b);
    FAILS(hg_tensor_narrow(t, 2, 0, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "dim 2 is out of range for a 2-D tensor (0..1)");
    FAILS(hg_tensor_narrow(t, 1, 3, 3, &out), HG_ERR_OUT_OF_BOUNDS,
          "narrow start 3 with length 3 goes past the end of dimension 1 of size 5");
    FAILS(hg_tensor_narrow(t, 0, 5, 0, &out), HG_ERR_OUT_OF_BOUNDS, "start 5 with length 0");
    FAILS(hg_tensor_narrow(t, 1, UINT64_MAX, 2, &out), HG_ERR_OUT_OF_BOUNDS,
          "start 18446744073709551615 with length 2");
    FAILS(hg_tensor_narrow(t, 1, 1, UINT64_MAX, &out), HG_ERR_OUT_OF_BOUNDS,
          "length 18446744073709551615");
    FAILS(hg_tensor_narrow(t, 0, 0, 1, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_narrow(b, 0, 0, 1, &out), HG_ERR_INVALID_HANDLE, "");
    /* 0-D: no dimension to narrow */
    uint64_t r;
    OK(hg_tensor_select(t, 0, 0, &r));
    OK(hg_tensor_select(r, 0, 0, &sc));
    FAILS(hg_tensor_narrow(sc, 0, 0, 1, &out), HG_ERR_OUT_OF_BOUNDS, "0-D tensor");
    /* a tensor without elements cannot move its offset past the buffer */
    OK(hg_tensor_from_buffer_with_strides(b, "[5, 0]", "[1000, 1]", &z));
    FAILS(hg_tensor_narrow(z, 0, 4, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "offset 4000 is past the end of buffer");
    FAILS(hg_tensor_narrow(z, 0, 4, 1, &out), HG_ERR_OUT_OF_BOUNDS, "(20 elements)");
    OK(hg_tensor_narrow(z, 0, 4, 0, &nn)); /* selects nothing: offset 0 stays */
    assert_int_equal(u32_of(hg_tensor_offset, nn), 0);
    OK(hg_tensor_cleanup(nn));
    assert_int_equal(out, 12);
    assert_int_equal(views_of(b), before + 3);
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_slice(void **state) {
    (void)state;
    uint64_t e, v, m, s, ss, out = 13;
    uint64_t b;
    float *data = iota_buffer(24, &e, &b);
    OK(hg_tensor_from_buffer(b, "[10]", &v));
    OK(hg_tensor_slice(v, 0, 1, -1, 3, &s)); /* v[1::3] */
    expect_view(e, s, b, &(view){1, {3}, {3}, 1}, data);
    OK(hg_tensor_slice(s, 0, 1, 3, 2, &ss)); /* then [1:3:2]: element 4 */
    expect_view(e, ss, b, &(view){1, {1}, {3}, 4}, data);
    OK(hg_tensor_cleanup(ss));
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 2, 9, 3, &s)); /* 2, 5, 8 */
    expect_view(e, s, b, &(view){1, {3}, {3}, 2}, data);
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 2, 10, 3, &s)); /* 2, 5, 8 */
    expect_view(e, s, b, &(view){1, {3}, {3}, 2}, data);
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 0, 10, 1, &s)); /* everything */
    expect_view(e, s, b, &(view){1, {10}, {1}, 0}, data);
    assert_int_equal(contiguous(s), 1);
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 9, -1, 100, &s)); /* one element: its stride stays */
    expect_view(e, s, b, &(view){1, {1}, {1}, 9}, data);
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 0, -1, INT64_MAX, &s));
    expect_view(e, s, b, &(view){1, {1}, {1}, 0}, data);
    OK(hg_tensor_cleanup(s));
    /* empty: start >= end, start at the end; offset and stride stay */
    OK(hg_tensor_slice(v, 0, 7, 2, 2, &s));
    expect_view(e, s, b, &(view){1, {0}, {1}, 0}, data);
    OK(hg_tensor_cleanup(s));
    OK(hg_tensor_slice(v, 0, 10, -1, 3, &s));
    expect_view(e, s, b, &(view){1, {0}, {1}, 0}, data);
    OK(hg_tensor_cleanup(s));
    /* 2-D: columns 1, 3 of a [4, 6] matrix, then rows 1..3 by 2 */
    OK(hg_tensor_from_buffer(b, "[4, 6]", &m));
    OK(hg_tensor_slice(m, 1, 1, 5, 2, &s));
    expect_view(e, s, b, &(view){2, {4, 2}, {6, 2}, 1}, data);
    OK(hg_tensor_slice(s, 0, 1, -1, 2, &ss));
    expect_view(e, ss, b, &(view){2, {2, 2}, {12, 2}, 7}, data);
    OK(hg_tensor_cleanup(ss));
    OK(hg_tensor_cleanup(s));

    unsigned before = views_of(b);
    FAILS(hg_tensor_slice(v, 0, 0, 5, 0, &out), HG_ERR_INVALID_ARGUMENT,
          "slice step 0: the step must be >= 1");
    FAILS(hg_tensor_slice(v, 0, 0, 5, -1, &out), HG_ERR_INVALID_ARGUMENT,
          "slice step -1 is negative: negative steps are not supported");
    FAILS(hg_tensor_slice(v, 0, 5, 0, INT64_MIN, &out), HG_ERR_INVALID_ARGUMENT,
          "step -9223372036854775808");
    FAILS(hg_tensor_slice(v, 0, -1, 5, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "slice start -1 is outside [0, 10] for dimension 0 of size 10");
    FAILS(hg_tensor_slice(v, 0, 11, -1, 1, &out), HG_ERR_OUT_OF_BOUNDS, "start 11 is outside");
    FAILS(hg_tensor_slice(v, 0, INT64_MIN, -1, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "start -9223372036854775808");
    FAILS(hg_tensor_slice(v, 0, 0, 11, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "slice end 11 is outside [0, 10] (or -1, to the end)");
    FAILS(hg_tensor_slice(v, 0, 0, -2, 1, &out), HG_ERR_OUT_OF_BOUNDS, "end -2 is outside");
    FAILS(hg_tensor_slice(v, 0, 0, INT64_MAX, 1, &out), HG_ERR_OUT_OF_BOUNDS,
          "end 9223372036854775807");
    FAILS(hg_tensor_slice(v, 1, 0, -1, 1, &out), HG_ERR_OUT_OF_BOUNDS, "dim 1 is out of range");
    FAILS(hg_tensor_slice(v, 0, 0, -1, 1, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_slice(e, 0, 0, -1, 1, &out), HG_ERR_INVALID_HANDLE, "");
    uint64_t sc, z;
    OK(hg_tensor_select(v, 0, 3, &sc));
    FAILS(hg_tensor_slice(sc, 0, 0, -1, 1, &out), HG_ERR_OUT_OF_BOUNDS, "0-D tensor");
    /* a stride that the step would carry beyond 2^64 (only without elements) */
    OK(hg_tensor_from_buffer_with_strides(b, "[8192, 0]", "[4503599627370496, 1]", &z));
    FAILS(hg_tensor_slice(z, 0, 0, -1, 4096, &out), HG_ERR_OUT_OF_BOUNDS,
          "step 4096 times stride 4503599627370496 of dimension 0 is beyond 2^64");
    FAILS(hg_tensor_slice(z, 0, 1, -1, 1, &out), HG_ERR_OUT_OF_BOUNDS, "past the end");
    assert_int_equal(out, 13);
    assert_int_equal(views_of(b), before + 2);
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_view_1d(void **state) {
    (void)state;
    uint64_t e, t, f, r, sc, tt, z, w, out = 14;
    uint64_t b;
    float *data = iota_buffer(12, &e, &b);
    OK(hg_tensor_from_buffer(b, "[2, 3, 2]", &t));
    OK(hg_tensor_view_1d(t, &f));
    expect_view(e, f, b, &(view){1, {12}, {1}, 0}, data);
    OK(hg_tensor_cleanup(f));
    OK(hg_tensor_select(t, 0, 1, &r)); /* contiguous from offset 6 */
    OK(hg_tensor_view_1d(r, &f));
    expect_view(e, f, b, &(view){1, {6}, {1}, 6}, data);
    OK(hg_tensor_cleanup(f));
    uint64_t r2;
    OK(hg_tensor_select(r, 0, 2, &r2));
    OK(hg_tensor_select(r2, 0, 1, &sc)); /* 0-D: element 11 */
    OK(hg_tensor_view_1d(sc, &f));
    expect_view(e, f, b, &(view){1, {1}, {1}, 11}, data);
    OK(hg_tensor_cleanup(f));
    OK(hg_tensor_from_buffer_with_strides(b, "[1, 3, 1]", "[99, 1, 42]", &w));
    OK(hg_tensor_view_1d(w, &f));
    expect_view(e, f, b, &(view){1, {3}, {1}, 0}, data);
    OK(hg_tensor_cleanup(f));
    OK(hg_tensor_from_buffer_with_strides(b, "[0, 4]", "[7, 3]", &z));
    OK(hg_tensor_view_1d(z, &f));
    expect_view(e, f, b, &(view){1, {0}, {1}, 0}, data);
    OK(hg_tensor_cleanup(f));

    unsigned before = views_of(b);
    OK(hg_tensor_permute(t, "[1, 0, 2]", &tt));
    FAILS(hg_tensor_view_1d(tt, &out), HG_ERR_SHAPE,
          "tensor_view_1d needs a contiguous tensor; use tensor_contiguous");
    FAILS(hg_tensor_view_1d(tt, &out), HG_ERR_SHAPE, "shape [3, 2, 2], strides [2, 6, 1]");
    uint64_t st;
    OK(hg_tensor_slice(t, 2, 0, -1, 2, &st));
    FAILS(hg_tensor_view_1d(st, &out), HG_ERR_SHAPE, "contiguous");
    FAILS(hg_tensor_view_1d(t, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_view_1d(b, &out), HG_ERR_INVALID_HANDLE, "");
    assert_int_equal(out, 14);
    assert_int_equal(views_of(b), before + 2);
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_broadcast_to(void **state) {
    (void)state;
    uint64_t e, row, col, sc, r0, z, one, t, v, vv, out = 15;
    uint64_t b;
    float *data = iota_buffer(6, &e, &b);
    OK(hg_tensor_from_buffer(b, "[3]", &row));
    OK(hg_tensor_broadcast_to(row, "[2, 3]", &v)); /* a new leading dimension */
    expect_view(e, v, b, &(view){2, {2, 3}, {0, 1}, 0}, data);
    assert_int_equal(contiguous(v), 0);
    OK(hg_tensor_broadcast_to(v, "[4, 2, 3]", &vv)); /* a view of a view */
    expect_view(e, vv, b, &(view){3, {4, 2, 3}, {0, 0, 1}, 0}, data);
    OK(hg_tensor_cleanup(vv));
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_from_buffer(b, "[3, 1]", &col)); /* an extent-1 dimension */
    OK(hg_tensor_broadcast_to(col, "[2, 3, 4]", &v));
    expect_view(e, v, b, &(view){3, {2, 3, 4}, {0, 1, 0}, 0}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_broadcast_to(col, "[3, 1]", &v)); /* the same shape: the same strides */
    expect_view(e, v, b, &(view){2, {3, 1}, {1, 1}, 0}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_broadcast_to(col, "[3, 0]", &v)); /* extent 1 to 0 */
    expect_view(e, v, b, &(view){2, {3, 0}, {1, 0}, 0}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_select(row, 0, 2, &sc)); /* 0-D to anything, keeping its offset */
    OK(hg_tensor_broadcast_to(sc, "[2, 2]", &v));
    expect_view(e, v, b, &(view){2, {2, 2}, {0, 0}, 2}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_broadcast_to(sc, "[]", &v));
    expect_view(e, v, b, &(view){0, {0}, {0}, 2}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    OK(hg_tensor_select(t, 0, 1, &r0)); /* [3] at offset 3 */
    OK(hg_tensor_broadcast_to(r0, "[2, 1, 3]", &v));
    expect_view(e, v, b, &(view){3, {2, 1, 3}, {0, 0, 1}, 3}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_from_buffer(b, "[1]", &one));
    OK(hg_tensor_broadcast_to(one, "[0]", &v));
    expect_view(e, v, b, &(view){1, {0}, {0}, 0}, data);
    OK(hg_tensor_cleanup(v));
    OK(hg_tensor_broadcast_to(one, "[65536, 65535]", &v)); /* 4294901760 elements, no copy */
    assert_int_equal(u32_of(hg_tensor_numel, v), 4294901760u);
    OK(hg_tensor_cleanup(v));

    unsigned before = views_of(b);
    FAILS(hg_tensor_broadcast_to(row, "[4]", &out), HG_ERR_SHAPE,
          "cannot broadcast shape [3] to [4]: aligned at the right, only a dimension of "
          "extent 1 or a new leading one may change");
    FAILS(hg_tensor_broadcast_to(t, "[3]", &out), HG_ERR_SHAPE,
          "cannot broadcast shape [2, 3] to [3]");
    FAILS(hg_tensor_broadcast_to(t, "[2, 1]", &out), HG_ERR_SHAPE, "shape [2, 3] to [2, 1]");
    FAILS(hg_tensor_broadcast_to(row, "[3, 1]", &out), HG_ERR_SHAPE, "shape [3] to [3, 1]");
    FAILS(hg_tensor_broadcast_to(row, "[]", &out), HG_ERR_SHAPE, "shape [3] to []");
    FAILS(hg_tensor_broadcast_to(one, "[65536, 65536]", &out), HG_ERR_SHAPE,
          "4294967296 elements, at most 4294967295");
    FAILS(hg_tensor_broadcast_to(one, "[1, 1, 1, 1, 1, 1, 1, 1, 1]", &out), HG_ERR_SHAPE,
          "shape has 9 dimensions, at most 8");
    FAILS(hg_tensor_broadcast_to(row, "[2, 3", &out), HG_ERR_JSON, "JSON error in shape");
    FAILS(hg_tensor_broadcast_to(row, "[2, -3]", &out), HG_ERR_JSON, "found '-3'");
    FAILS(hg_tensor_broadcast_to(row, NULL, &out), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_broadcast_to(row, "[3]", NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_broadcast_to(b, "[3]", &out), HG_ERR_INVALID_HANDLE, "");
    OK(hg_tensor_from_buffer(b, "[0]", &z));
    FAILS(hg_tensor_broadcast_to(z, "[2]", &out), HG_ERR_SHAPE, "shape [0] to [2]");
    assert_int_equal(out, 15);
    assert_int_equal(views_of(b), before + 1);
    free(data);
    OK(hg_executor_cleanup(e));
}

static void test_unsqueeze_squeeze(void **state) {
    (void)state;
    uint64_t e, t, u, q, r, sc, out = 16;
    uint64_t b;
    float *data = iota_buffer(6, &e, &b);
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    static const view want[3] = {
        {3, {1, 2, 3}, {6, 3, 1}, 0}, {3, {2, 1, 3}, {3, 3, 1}, 0}, {3, {2, 3, 1}, {3, 1, 1}, 0}};
    for (uint64_t d = 0; d <= 2; d++) {
        OK(hg_tensor_unsqueeze(t, d, &u));
        expect_view(e, u, b, &want[d], data);
        assert_int_equal(contiguous(u), 1);
        OK(hg_tensor_squeeze(u, d, &q)); /* and back */
        expect_view(e, q, b, &(view){2, {2, 3}, {3, 1}, 0}, data);
        OK(hg_tensor_cleanup(q));
        OK(hg_tensor_cleanup(u));
    }
    /* transposed: the new dimension takes the stride of the one it precedes times its extent */
    uint64_t tt;
    OK(hg_tensor_transpose(t, &tt));
    OK(hg_tensor_unsqueeze(tt, 1, &u));
    expect_view(e, u, b, &(view){3, {3, 1, 2}, {1, 6, 3}, 0}, data);
    OK(hg_tensor_cleanup(u));
    /* 0-D <-> [1] */
    OK(hg_tensor_select(t, 1, 2, &r));  /* [2] at offset 2, stride 3 */
    OK(hg_tensor_select(r, 0, 1, &sc)); /* element 5 */
    OK(hg_tensor_unsqueeze(sc, 0, &u));
    expect_view(e, u, b, &(view){1, {1}, {1}, 5}, data);
    OK(hg_tensor_squeeze(u, 0, &q));
    expect_view(e, q, b, &(view){0, {0}, {0}, 5}, data);
    OK(hg_tensor_cleanup(q));
    OK(hg_tensor_cleanup(u));
    /* up to HG_MAX_DIMS */
    uint64_t m = t;
    for (int i = 2; i < 8; i++) {
        uint64_t next;
        OK(hg_tensor_unsqueeze(m, 0, &next));
        m = next;
    }
    assert_int_equal(u32_of(hg_tensor_ndim, m), 8);

    unsigned before = views_of(b);
    FAILS(hg_tensor_unsqueeze(m, 0, &out), HG_ERR_SHAPE, "would give 9 dimensions, at most 8");
    FAILS(hg_tensor_unsqueeze(t, 3, &out), HG_ERR_OUT_OF_BOUNDS,
          "dim 3 is out of range for a 2-D tensor (0..2)");
    FAILS(hg_tensor_unsqueeze(sc, 1, &out), HG_ERR_OUT_OF_BOUNDS, "0-D tensor (0..0)");
    FAILS(hg_tensor_unsqueeze(t, 0, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_unsqueeze(b, 0, &out), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_squeeze(t, 1, &out), HG_ERR_SHAPE,
          "squeeze of dimension 1 needs extent 1, shape [2, 3] has 3 there");
    FAILS(hg_tensor_squeeze(t, 2, &out), HG_ERR_OUT_OF_BOUNDS,
          "dim 2 is out of range for a 2-D tensor (0..1)");
    FAILS(hg_tensor_squeeze(sc, 0, &out), HG_ERR_OUT_OF_BOUNDS,
          "dim 0 is out of range for a 0-D tensor (it has no dimensions)");
    FAILS(hg_tensor_squeeze(t, 0, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    FAILS(hg_tensor_squeeze(0, 0, &out), HG_ERR_INVALID_HANDLE, "");
    assert_int_equal(out, 16);
    assert_int_equal(views_of(b), before);
    free(data);
    OK(hg_executor_cleanup(e));
}

/* broadcast_shapes of shape texts a and b (views of the 0-D tensor `scalar`): want (a JSON
 * array) or NULL for "do not broadcast". */
static void expect_broadcast(uint64_t scalar, const char *a, const char *b, const char *want) {
    uint64_t ta, tb;
    uint8_t flag = 7;
    OK(hg_tensor_broadcast_to(scalar, a, &ta));
    OK(hg_tensor_broadcast_to(scalar, b, &tb));
    OK(hg_tensor_is_broadcast_compatible_with(ta, tb, &flag));
    assert_int_equal(flag, want != NULL);
    OK(hg_tensor_is_broadcast_compatible_with(tb, ta, &flag));
    assert_int_equal(flag, want != NULL);
    char *s = (char *)"unchanged";
    if (want != NULL) {
        OK(hg_tensor_broadcast_shapes(ta, tb, &s));
        if (strcmp(s, want) != 0)
            fail_msg("broadcast_shapes(%s, %s) = %s, want %s", a, b, s, want);
        hg_free_string(s);
        OK(hg_tensor_broadcast_shapes(tb, ta, &s));
        if (strcmp(s, want) != 0)
            fail_msg("broadcast_shapes(%s, %s) = %s, want %s", b, a, s, want);
        hg_free_string(s);
    } else {
        FAILS(hg_tensor_broadcast_shapes(ta, tb, &s), HG_ERR_SHAPE, "do not broadcast");
        assert_string_equal(s, "unchanged");
    }
    OK(hg_tensor_cleanup(ta));
    OK(hg_tensor_cleanup(tb));
}

static void test_broadcast_shapes(void **state) {
    (void)state;
    uint64_t e, e2;
    OK(hg_new_executor(&e));
    OK(hg_new_executor(&e2));
    uint64_t b = make_buffer(e, 6, NULL);
    uint64_t t23, t4, t3, sc, r, other, big1, big2;
    OK(hg_tensor_from_buffer(b, "[2, 3]", &t23));
    OK(hg_tensor_from_buffer(b, "[4]", &t4));
    OK(hg_tensor_from_buffer(b, "[3]", &t3));
    OK(hg_tensor_select(t3, 0, 0, &sc));
    expect_broadcast(sc, "[2, 0]", "[0]", "[2, 0]");
    expect_broadcast(sc, "[4, 1, 3]", "[5, 1]", "[4, 5, 3]");
    expect_broadcast(sc, "[1, 6]", "[7, 1]", "[7, 6]");
    expect_broadcast(sc, "[0]", "[1]", "[0]");
    expect_broadcast(sc, "[2, 1]", "[1, 0]", "[2, 0]");
    expect_broadcast(sc, "[]", "[3, 1]", "[3, 1]");
    expect_broadcast(sc, "[]", "[]", "[]");
    expect_broadcast(sc, "[2, 3]", "[2, 3]", "[2, 3]");
    expect_broadcast(sc, "[2, 1, 1, 1, 1, 1, 1, 1]", "[3, 1, 1, 1, 1, 1, 2]",
                     "[2, 3, 1, 1, 1, 1, 1, 2]");
    expect_broadcast(sc, "[2, 3]", "[4]", NULL);
    expect_broadcast(sc, "[2, 0]", "[3, 0]", NULL);
    expect_broadcast(sc, "[0]", "[2]", NULL);
    expect_broadcast(sc, "[5, 2, 1]", "[3, 1, 1]", NULL);

    char *s = NULL;
    OK(hg_tensor_broadcast_shapes(t23, t3, &s));
    assert_string_equal(s, "[2, 3]");
    hg_free_string(s);
    OK(hg_tensor_broadcast_shapes(sc, t23, &s)); /* 0-D with anything */
    assert_string_equal(s, "[2, 3]");
    hg_free_string(s);
    OK(hg_tensor_broadcast_shapes(sc, sc, &s));
    assert_string_equal(s, "[]");
    hg_free_string(s);
    OK(hg_tensor_select(t23, 0, 1, &r));
    uint64_t ob = make_buffer(e2, 3, NULL); /* only shapes count: any executor */
    OK(hg_tensor_from_buffer(ob, "[1, 3]", &other));
    OK(hg_tensor_broadcast_shapes(other, t23, &s));
    assert_string_equal(s, "[2, 3]");
    hg_free_string(s);
    /* the shape of more elements than a tensor holds is still a shape */
    OK(hg_tensor_from_buffer_with_strides(b, "[65536, 1]", "[0, 0]", &big1));
    OK(hg_tensor_from_buffer_with_strides(b, "[65536]", "[0]", &big2));
    OK(hg_tensor_broadcast_shapes(big1, big2, &s));
    assert_string_equal(s, "[65536, 65536]");
    hg_free_string(s);

    s = (char *)"unchanged";
    uint8_t flag = 9;
    FAILS(hg_tensor_broadcast_shapes(t23, t4, &s), HG_ERR_SHAPE,
          "shapes [2, 3] and [4] do not broadcast: aligned at the right, extents 3 and 4 "
          "differ (dimension 1 of the result) and neither is 1");
    FAILS(hg_tensor_broadcast_shapes(t4, t23, &s), HG_ERR_SHAPE, "extents 4 and 3 differ");
    FAILS(hg_tensor_broadcast_shapes(t23, b, &s), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_broadcast_shapes(0, t23, &s), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_broadcast_shapes(t23, t3, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    assert_string_equal(s, "unchanged");
    FAILS(hg_tensor_is_broadcast_compatible_with(t23, e, &flag), HG_ERR_INVALID_HANDLE, "");
    FAILS(hg_tensor_is_broadcast_compatible_with(t23, t3, NULL), HG_ERR_INVALID_ARGUMENT, "NULL");
    assert_int_equal(flag, 9);
    OK(hg_tensor_is_broadcast_compatible_with(t23, t4, &flag));
    assert_int_equal(flag, 0);
    OK(hg_tensor_is_broadcast_compatible_with(r, t23, &flag));
    assert_int_equal(flag, 1);
    OK(hg_executor_cleanup(e2));
    OK(hg_executor_cleanup(e));
}

/* Every view keeps its buffer alive (BUSY) on its own, and goes with its executor. */
static void test_views_keep_buffer(void **state) {
    (void)state;
    enum { N_VIEWS = 9 };
    for (int k = 0; k < N_VIEWS; k++) {
        uint64_t e, t, v = 0;
        OK(hg_new_executor(&e));
        uint64_t b = make_buffer(e, 6, NULL);
        OK(hg_tensor_from_buffer(b, k == 8 ? "[1, 6]" : "[2, 3]", &t));
        switch (k) {
        case 0: OK(hg_tensor_permute(t, "[1, 0]", &v)); break;
        case 1: OK(hg_tensor_narrow(t, 1, 1, 2, &v)); break;
        case 2: OK(hg_tensor_slice(t, 1, 0, -1, 2, &v)); break;
        case 3: OK(hg_tensor_view_1d(t, &v)); break;
        case 4: OK(hg_tensor_broadcast_to(t, "[4, 2, 3]", &v)); break;
        case 5: OK(hg_tensor_unsqueeze(t, 1, &v)); break;
        case 6: OK(hg_tensor_transpose(t, &v)); break;
        case 7: OK(hg_tensor_select(t, 0, 1, &v)); break;
        case 8: OK(hg_tensor_squeeze(t, 0, &v)); break;
        }
        assert_int_equal(buffer_of(v), b);
        assert_int_equal(views_of(b), 2);
        OK(hg_tensor_cleanup(t));
        FAILS(hg_buffer_cleanup(b), HG_ERR_BUSY, "viewed by 1 tensor");
        if (k % 2 == 0) { /* the view alone keeps the buffer; freeing it frees the buffer */
            OK(hg_tensor_cleanup(v));
            OK(hg_buffer_cleanup(b));
            OK(hg_executor_cleanup(e));
        } else { /* the executor frees the view with its buffer */
            OK(hg_executor_cleanup(e));
            uint32_t u;
            FAILS(hg_tensor_ndim(v, &u), HG_ERR_INVALID_HANDLE, "");
            FAILS(hg_tensor_cleanup(v), HG_ERR_INVALID_HANDLE, "");
            FAILS(hg_buffer_cleanup(b), HG_ERR_INVALID_HANDLE, "");
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_buffer),
        cmocka_unit_test(test_with_strides),
        cmocka_unit_test(test_contiguous_random_views),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_batched),
        cmocka_unit_test(test_matmul_extent_one_strides),
        cmocka_unit_test(test_matmul_reads_in_place),
        cmocka_unit_test(test_matmul_one_kernel_per_batch),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_cleanup_and_busy),
        cmocka_unit_test(test_permute),
        cmocka_unit_test(test_narrow),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_view_1d),
        cmocka_unit_test(test_broadcast_to),
        cmocka_unit_test(test_unsqueeze_squeeze),
        cmocka_unit_test(test_broadcast_shapes),
        cmocka_unit_test(test_views_keep_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
