/*
 * tests/test_interp.c — the block interpreter (runtime/interp.c) on every op of ops.def,
 * against independent references: plain C loops in double, written here without
 * canon/scalar.h.  Each family test walks the op table, so a new ops.def row is run (and,
 * for maps and losses, fails until it has a reference here).
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "canon/canon.h"
#include "runtime/interp.h"
#include "grid_cases.h"

/* ---- tolerances --------------------------------------------------------------------------- */
#define TOL_ULP ((double)FLT_EPSILON) /* 2^-23: one ulp at 1.0 */
#define TOL_TRANS_ULPS 2.0            /* exp/tanh/sigmoid/gelu: 2 ulp*|y| + TOL_TRANS_ABS */
#define TOL_TRANS_ABS 1e-7
#define TOL_RED_REL 1e-6 /* sums, losses: 1e-6*log2(max(n,2))*sum|terms| + TOL_RED_ABS */
#define TOL_RED_ABS 1e-30
#define TOL_SOFTMAX_ULPS 3.0 /* softmax: (3 ulp + the sum's relative bound)*y + 1e-7 */
#define TOL_SOFTMAX_ABS 1e-7
/* gemm, matvec: k*ulp*sum_p |a b| (a k-term float sum) + TOL_RED_ABS */

#define N_MAX 1000000u
#define GUARD 64u /* sentinel elements after every output */
#define SENTINEL (-12345.75f)

static const uint64_t lengths[] = {0, 1, 15, 16, 17, 1000, 1023, 1024, 1025, N_MAX};
#define N_LENGTHS (sizeof lengths / sizeof lengths[0])

/* ---- data --------------------------------------------------------------------------------- */
static float *buf_in0, *buf_in1, *buf_out, *buf_save;
static uint64_t rng_state;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(double lo, double hi) {
    return (float)(lo + (hi - lo) * (double)(rng_next() >> 11) * 0x1p-53);
}

static const float specials[] = {NAN, -NAN, 0.0f, -0.0f, INFINITY, -INFINITY, 1e-40f,
                                 -1e-40f, FLT_MIN, FLT_MAX, -FLT_MAX, 1.0f, -1.0f};
#define N_SPECIALS (sizeof specials / sizeof specials[0])

/* n values in [lo, hi); with `spice`, every 61st is one of `specials`. */
static void fill_random(float *x, uint64_t n, double lo, double hi, int spice) {
    for (uint64_t i = 0; i < n; i++)
        x[i] = spice && i % 61 == 7 ? specials[rng_next() % N_SPECIALS] : rng_uniform(lo, hi);
}

static void fill_sentinel(float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        x[i] = SENTINEL;
}

static void check_sentinel(const float *x, uint64_t n, const char *what) {
    for (uint64_t i = 0; i < n; i++)
        if (memcmp(&x[i], &(float){SENTINEL}, sizeof(float)) != 0)
            fail_msg("%s: element %llu past the output was written", what,
                     (unsigned long long)i);
}

static double log2n(uint64_t n) { return log2(n < 2 ? 2.0 : (double)n); }

static int setup(void **state) {
    (void)state;
    const size_t bytes = (N_MAX + GUARD) * sizeof(float);
    buf_in0 = malloc(bytes);
    buf_in1 = malloc(bytes);
    buf_out = malloc(bytes);
    buf_save = malloc(bytes);
    return buf_in0 && buf_in1 && buf_out && buf_save ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(buf_in0);
    free(buf_in1);
    free(buf_out);
    free(buf_save);
    return 0;
}

/* canon_form(op), which must exist. */
static const canon_program *form(canon_op op) {
    const canon_program *p = canon_form(op);
    assert_non_null(p);
    return p;
}

/* ---- independent float64 references -------------------------------------------------------- */
static double ref_minimum(double x, double y) {
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static double ref_maximum(double x, double y) {
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

enum { REF_EXACT, REF_TRANS };

/* The float64 value of MAP op on (x, y) with parameters p0, p1, and its tolerance class
 * (REF_EXACT: the float32 result must be the correctly rounded one); -1 when this test
 * has no reference for op. */
static int ref_map(canon_op op, double x, double y, double p0, double p1, double *out) {
    switch (op) {
    case CANON_OP_vector_add_f32: *out = x + y; return REF_EXACT;
    case CANON_OP_vector_sub_f32: *out = x - y; return REF_EXACT;
    case CANON_OP_vector_mul_f32: *out = x * y; return REF_EXACT;
    case CANON_OP_vector_div_f32: *out = x / y; return REF_EXACT;
    case CANON_OP_vector_min_f32: *out = ref_minimum(x, y); return REF_EXACT;
    case CANON_OP_vector_max_f32: *out = ref_maximum(x, y); return REF_EXACT;
    case CANON_OP_vector_abs_f32: *out = fabs(x); return REF_EXACT;
    case CANON_OP_vector_neg_f32: *out = -x; return REF_EXACT;
    case CANON_OP_vector_relu_f32: *out = ref_maximum(x, 0.0); return REF_EXACT;
    case CANON_OP_vector_clip_f32: *out = ref_minimum(ref_maximum(x, p0), p1); return REF_EXACT;
    case CANON_OP_scalar_add_f32: *out = x + p0; return REF_EXACT;
    case CANON_OP_scalar_mul_f32: *out = x * p0; return REF_EXACT;
    case CANON_OP_buffer_fill: *out = p0; return REF_EXACT;
    case CANON_OP_buffer_copy: *out = x; return REF_EXACT;
    case CANON_OP_sigmoid_f32: *out = 1.0 / (1.0 + exp(-x)); return REF_TRANS;
    case CANON_OP_tanh_f32: *out = tanh(x); return REF_TRANS;
    case CANON_OP_gelu_f32: /* at -Inf, its limit -0 (the formula would give -Inf * 0) */
        *out = x == -INFINITY ? -0.0
                              : 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
        return REF_TRANS;
    default:
        return -1;
    }
}

/* Checks one MAP result against ref_map; `what` names the case on failure. */
static void check_map(canon_op op, float x, float y, float p0, float p1, float got,
                      uint64_t i, const char *what) {
    double ref = 0;
    int cls = ref_map(op, x, y, p0, p1, &ref);
    if (cls < 0)
        fail_msg("%s: no reference for op %s", what, canon_op_get(op)->name);
    int ok;
    if (isnan(ref))
        ok = isnan(got);
    else if (cls == REF_EXACT) {
        const float want = (float)ref;
        ok = memcmp(&want, &got, sizeof got) == 0;
    } else if (isinf(ref))
        ok = got == ref;
    else
        ok = fabs((double)got - ref) <= TOL_TRANS_ULPS * TOL_ULP * fabs(ref) + TOL_TRANS_ABS;
    if (!ok)
        fail_msg("%s %s: x[%llu] = %.9g, y = %.9g: got %.9g, want %.9g", what,
                 canon_op_get(op)->name, (unsigned long long)i, x, y, got, ref);
}

/* Inputs suited to op: the exp-based activations see [-100, 100] on even and [-8, 8] on
 * odd elements; everything else [-10, 10]; specials sprinkled in. */
static void fill_map_inputs(canon_op op, uint64_t n) {
    const int wide = op == CANON_OP_sigmoid_f32 || op == CANON_OP_tanh_f32 ||
                     op == CANON_OP_gelu_f32;
    fill_random(buf_in0, n, -10, 10, 1);
    fill_random(buf_in1, n, -10, 10, 1);
    if (wide)
        for (uint64_t i = 0; i < n; i++)
            if (i % 61 != 7)
                buf_in0[i] = i % 2 ? rng_uniform(-8, 8) : rng_uniform(-100, 100);
}

/* ---- maps ----------------------------------------------------------------------------------- */
/* Every MAP op on every length, out of place and in place (output slot = slot 0). */
static void test_maps(void **state) {
    (void)state;
    const float p0 = -2.5f, p1 = 3.25f; /* a valid clip range; used by scalar ops and fill */
    rng_state = 1;
    int n_ops = 0;
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_MAP)
            continue;
        n_ops++;
        for (size_t li = 0; li < N_LENGTHS; li++) {
            const uint64_t n = lengths[li];
            fill_map_inputs(info->op, n);
            for (int in_place = 0; in_place < 2 && (!in_place || info->n_in > 0); in_place++) {
                canon_args a = {.param = {p0, p1}, .n = n};
                a.slot[0] = buf_in0;
                a.slot[1] = buf_in1;
                float *out = buf_out;
                if (in_place) {
                    memcpy(buf_save, buf_in0, n * sizeof(float));
                    memcpy(buf_out, buf_in0, n * sizeof(float));
                    a.slot[0] = buf_out;
                } else {
                    fill_sentinel(buf_out, n);
                }
                fill_sentinel(buf_out + n, GUARD);
                a.slot[info->n_in] = out;
                assert_int_equal(interp_run(form(info->op), &a, NULL), HG_OK);
                const float *x = in_place ? buf_save : buf_in0;
                for (uint64_t i = 0; i < n; i++)
                    check_map(info->op, x[i], buf_in1[i], p0, p1, out[i], i,
                              in_place ? "in place" : "map");
                check_sentinel(out + n, GUARD, info->name);
            }
        }
    }
    assert_true(n_ops > 0);
}

/* Every MAP op on special values in every pairing (NaN, +-0, +-Inf, subnormals, ...). */
static void test_map_specials(void **state) {
    (void)state;
    const uint64_t n = N_SPECIALS * N_SPECIALS;
    for (uint64_t i = 0; i < n; i++) {
        buf_in0[i] = specials[i / N_SPECIALS];
        buf_in1[i] = specials[i % N_SPECIALS];
    }
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_MAP)
            continue;
        for (size_t pi = 0; pi < 3; pi++) { /* parameters: ordinary, signed zeros, NaN */
            const float ps[3][2] = {{-2.5f, 3.25f}, {-0.0f, 0.0f}, {NAN, 1.0f}};
            canon_args a = {.param = {ps[pi][0], ps[pi][1]}, .n = n};
            a.slot[0] = buf_in0;
            a.slot[1] = buf_in1;
            a.slot[info->n_in] = buf_out;
            assert_int_equal(interp_run(form(info->op), &a, NULL), HG_OK);
            for (uint64_t i = 0; i < n; i++)
                check_map(info->op, buf_in0[i], buf_in1[i], ps[pi][0], ps[pi][1], buf_out[i],
                          i, "specials");
        }
    }
}

/* buffer_copy between overlapping ranges behaves like memmove (both directions). */
static void test_copy_overlap(void **state) {
    (void)state;
    const uint64_t n = 3000;
    for (int64_t shift = -5; shift <= 5; shift += 10) {
        for (uint64_t i = 0; i < n + 10; i++)
            buf_in0[i] = (float)i;
        float *src = buf_in0 + 5, *dst = src + shift;
        canon_args a = {.slot = {src, dst}, .n = n};
        assert_int_equal(interp_run(form(CANON_OP_buffer_copy), &a, NULL), HG_OK);
        for (uint64_t i = 0; i < n; i++)
            assert_true(dst[i] == (float)(i + 5));
    }
}

/* ---- reductions ----------------------------------------------------------------------------- */
/* Every REDUCE op on every accepted length: sums within the blocked-sum bound, min/max
 * exact; then NaN propagation (NaN in the middle block and in the tail) and signed zeros. */
static void test_reductions(void **state) {
    (void)state;
    rng_state = 2;
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_REDUCE)
            continue;
        for (size_t li = 0; li < N_LENGTHS; li++) {
            const uint64_t n = lengths[li];
            if (n < info->min_n)
                continue;
            fill_random(buf_in0, n, -10, 10, 0);
            double sum = 0, sum_abs = 0, mn = INFINITY, mx = -INFINITY;
            for (uint64_t i = 0; i < n; i++) {
                sum += buf_in0[i];
                sum_abs += fabs(buf_in0[i]);
                mn = ref_minimum(mn, buf_in0[i]);
                mx = ref_maximum(mx, buf_in0[i]);
            }
            canon_args a = {.slot = {buf_in0}, .n = n};
            float r = SENTINEL;
            assert_int_equal(interp_run(form(info->op), &a, &r), HG_OK);
            if (info->reduce == CANON_RED_SUM) {
                const double tol = TOL_RED_REL * log2n(n) * sum_abs + TOL_RED_ABS;
                if (fabs(r - sum) > tol)
                    fail_msg("%s n=%llu: got %.9g, want %.17g (tol %.3g)", info->name,
                             (unsigned long long)n, r, sum, tol);
            } else {
                assert_true(r == (float)(info->reduce == CANON_RED_MIN ? mn : mx));
            }
            for (int at = 0; at < 2 && n >= 2; at++) { /* NaN mid-way, then in the tail */
                const uint64_t k = at ? n - 1 : n / 2;
                const float keep = buf_in0[k];
                buf_in0[k] = NAN;
                r = 0.0f;
                assert_int_equal(interp_run(form(info->op), &a, &r), HG_OK);
                assert_true(isnan(r));
                buf_in0[k] = keep;
            }
        }
        /* signed zeros: min(+0, -0) = -0, max = +0 (and the sum is +0) */
        const float z[2] = {0.0f, -0.0f};
        canon_args a = {.slot = {(float *)z}, .n = 2};
        float r = 1.0f;
        assert_int_equal(interp_run(form(info->op), &a, &r), HG_OK);
        assert_true(r == 0.0f);
        assert_int_equal(!!signbit(r), info->reduce == CANON_RED_MIN);
        /* n = 0 gives the identity (the runtime rejects it for min and max) */
        a.n = 0;
        assert_int_equal(interp_run(form(info->op), &a, &r), HG_OK);
        assert_true(r == (info->reduce == CANON_RED_SUM   ? 0.0f
                          : info->reduce == CANON_RED_MIN ? INFINITY
                                                          : -INFINITY));
    }
}

/* ---- losses --------------------------------------------------------------------------------- */
/* The float64 reference of LOSS op over p, t; *sum_abs gets sum |term| / n (the scale of
 * its tolerance).  -1 when this test has no reference for op.  The clamp bounds are the
 * float32 values ops.def uses (1 - 1e-7 is 0.99999988f in float32). */
static int ref_loss(canon_op op, const float *p, const float *t, uint64_t n, double *value,
                    double *sum_abs) {
    const double lo = 1e-7f, hi = 1.0f - 1e-7f;
    double s = 0, sa = 0;
    for (uint64_t i = 0; i < n; i++) {
        double term;
        const double q = p[i] < lo ? lo : p[i] > hi ? hi : p[i];
        switch (op) {
        case CANON_OP_mse_loss_f32: term = ((double)p[i] - t[i]) * ((double)p[i] - t[i]); break;
        case CANON_OP_cross_entropy_loss_f32: term = t[i] * log(p[i] < lo ? lo : p[i]); break;
        case CANON_OP_binary_cross_entropy_loss_f32:
            term = t[i] * log(q) + (1.0 - t[i]) * log(1.0 - q);
            break;
        default:
            return -1;
        }
        s += term;
        sa += fabs(term);
    }
    *value = op == CANON_OP_mse_loss_f32 ? s / (double)n : -s / (double)n;
    *sum_abs = sa / (double)n;
    return 0;
}

static void test_losses(void **state) {
    (void)state;
    rng_state = 3;
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_LOSS)
            continue;
        const int prob = info->op != CANON_OP_mse_loss_f32;
        for (size_t li = 0; li < N_LENGTHS; li++) {
            const uint64_t n = lengths[li];
            if (n < info->min_n)
                continue;
            fill_random(buf_in0, n, prob ? -0.1 : -10, prob ? 1.1 : 10, 0); /* clamps hit */
            fill_random(buf_in1, n, prob ? 0 : -10, prob ? 1 : 10, 0);
            double want = 0, scale = 0;
            if (ref_loss(info->op, buf_in0, buf_in1, n, &want, &scale) != 0)
                fail_msg("no reference for op %s", info->name);
            canon_args a = {.slot = {buf_in0, buf_in1}, .n = n};
            float r = SENTINEL;
            assert_int_equal(interp_run(form(info->op), &a, &r), HG_OK);
            const double tol = TOL_RED_REL * log2n(n) * scale + TOL_RED_ABS;
            if (!(fabs(r - want) <= tol))
                fail_msg("%s n=%llu: got %.9g, want %.17g (tol %.3g)", info->name,
                         (unsigned long long)n, r, want, tol);
        }
    }
}

/* ---- softmax -------------------------------------------------------------------------------- */
static void check_softmax(const canon_op_info *info, const float *x, const float *y,
                          uint64_t n) {
    double mx = -INFINITY, sum = 0;
    for (uint64_t i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (uint64_t i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    const double rel = TOL_SOFTMAX_ULPS * TOL_ULP + TOL_RED_REL * log2n(n);
    for (uint64_t i = 0; i < n; i++) {
        const double want = exp((double)x[i] - mx) / sum;
        if (!(fabs(y[i] - want) <= rel * want + TOL_SOFTMAX_ABS))
            fail_msg("%s n=%llu: y[%llu] = %.9g, want %.9g", info->name,
                     (unsigned long long)n, (unsigned long long)i, y[i], want);
    }
}

/* Every SOFTMAX op, out of place and in place, on [-100, 100] and on [-3, 3]. */
static void test_softmax(void **state) {
    (void)state;
    rng_state = 4;
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_SOFTMAX)
            continue;
        for (size_t li = 0; li < N_LENGTHS; li++) {
            const uint64_t n = lengths[li];
            if (n < info->min_n)
                continue;
            for (int wide = 0; wide < 2; wide++) {
                fill_random(buf_in0, n, wide ? -100 : -3, wide ? 100 : 3, 0);
                canon_args a = {.slot = {buf_in0, buf_out}, .n = n};
                fill_sentinel(buf_out + n, GUARD);
                assert_int_equal(interp_run(form(info->op), &a, NULL), HG_OK);
                check_softmax(info, buf_in0, buf_out, n);
                check_sentinel(buf_out + n, GUARD, info->name);
                memcpy(buf_save, buf_in0, n * sizeof(float)); /* in place */
                a.slot[1] = buf_in0;
                assert_int_equal(interp_run(form(info->op), &a, NULL), HG_OK);
                check_softmax(info, buf_save, buf_in0, n);
            }
        }
    }
}

/* ---- contractions --------------------------------------------------------------------------- */
/* Runs CONTRACT op on shape sh over A (a), B (b) and checks C against a double loop. */
static void run_contract(canon_op op, const canon_contract_shape *sh, const float *a,
                         const float *b, float *c) {
    const uint64_t mn = sh->m * sh->n;
    fill_sentinel(c, mn + GUARD);
    canon_args args = {.slot = {(float *)a, (float *)b, c}, .contract = *sh};
    assert_int_equal(interp_run(form(op), &args, NULL), HG_OK);
    for (uint64_t i = 0; i < sh->m; i++)
        for (uint64_t j = 0; j < sh->n; j++) {
            double s = 0, sa = 0;
            for (uint64_t p = 0; p < sh->k; p++) {
                const double t = (double)a[(int64_t)i * sh->a_rs + (int64_t)p * sh->a_cs] *
                                 b[(int64_t)p * sh->b_rs + (int64_t)j * sh->b_cs];
                s += t;
                sa += fabs(t);
            }
            const double got = c[i * sh->n + j];
            if (!(fabs(got - s) <= (double)sh->k * TOL_ULP * sa + TOL_RED_ABS))
                fail_msg("%s (%llu,%llu,%llu) strides a %lld,%lld b %lld,%lld: C[%llu,%llu] = "
                         "%.9g, want %.9g",
                         canon_op_get(op)->name, (unsigned long long)sh->m,
                         (unsigned long long)sh->n, (unsigned long long)sh->k,
                         (long long)sh->a_rs, (long long)sh->a_cs, (long long)sh->b_rs,
                         (long long)sh->b_cs, (unsigned long long)i, (unsigned long long)j,
                         got, s);
        }
    check_sentinel(c + mn, GUARD, canon_op_get(op)->name);
}

/* Every CONTRACT op on gemm shapes (m, n, k), with A and B each plain or transposed. */
static void test_gemm(void **state) {
    (void)state;
    static const uint64_t shapes[][3] = {{1, 1, 1},   {3, 5, 7},  {16, 16, 16}, {17, 33, 9},
                                         {64, 64, 64}, {0, 4, 4}, {4, 0, 4},    {4, 4, 0},
                                         {5, 300, 3}, {130, 2, 70}};
    rng_state = 5;
    fill_random(buf_in0, 1 << 16, -1, 1, 0);
    fill_random(buf_in1, 1 << 16, -1, 1, 0);
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        if (info->family != CANON_FAM_CONTRACT)
            continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int t = 0; t < 4; t++) {
                const int64_t m = (int64_t)shapes[si][0], n = (int64_t)shapes[si][1],
                              k = (int64_t)shapes[si][2];
                canon_contract_shape sh = {.m = (uint64_t)m, .n = (uint64_t)n, .k = (uint64_t)k};
                sh.a_rs = t & 1 ? 1 : k; /* A stored k x m when transposed */
                sh.a_cs = t & 1 ? m : 1;
                sh.b_rs = t & 2 ? 1 : n; /* B stored n x k when transposed */
                sh.b_cs = t & 2 ? k : 1;
                run_contract(info->op, &sh, buf_in0, buf_in1, buf_out);
            }
    }
}

/* matvec: y[m] = A[m x n] x[n] as the contraction (m, 1, n), x contiguous or strided. */
static void test_matvec(void **state) {
    (void)state;
    static const uint64_t shapes[][2] = {{1, 1}, {5, 7}, {64, 100}, {1000, 1000}, {3, 0}};
    rng_state = 6;
    fill_random(buf_in0, N_MAX, -1, 1, 0);
    fill_random(buf_in1, 4000, -1, 1, 0);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int64_t xs = 1; xs <= 3; xs += 2) {
            const uint64_t m = shapes[si][0], n = shapes[si][1];
            canon_contract_shape sh = {.m = m, .n = 1, .k = n, .a_rs = (int64_t)n, .a_cs = 1,
                                       .b_rs = xs, .b_cs = 1};
            run_contract(CANON_OP_matvec_f32, &sh, buf_in0, buf_in1, buf_out);
        }
}

/* ---- GRID programs ---------------------------------------------------------------------- */
/* Every op with a GRID twin (the maps, reductions, losses, softmax) over grid_cases in
 * every operand layout, against the op's RANGE form run on each row gathered into
 * contiguous arrays (verified above against the float64 references): stores and results
 * bit-identical, nothing written beyond the output. */
static void test_grid(void **state) {
    (void)state;
    enum { ROW_MAX = 8192 };
    float *rows = malloc((CANON_MAX_INPUTS + 1) * ROW_MAX * sizeof(float));
    float *res = malloc((ROW_MAX + GUARD) * sizeof(float));
    assert_non_null(rows);
    assert_non_null(res);
    rng_state = 11;
    fill_random(buf_in0, 20000, -4, 4, 1);
    fill_random(buf_in1, 20000, 0.05, 0.95, 0);
    const float par[CANON_MAX_PARAMS] = {-0.5f, 0.75f};
    for (int o = 0; o < CANON_OP_COUNT; o++) {
        const canon_op_info *info = canon_op_get((canon_op)o);
        const canon_program *twin = canon_grid_form(info->op), *range = form(info->op);
        if (!twin)
            continue;
        const uint32_t n_in = info->n_in, stores = twin->n_slots > n_in;
        const int has_result = twin->result_stage != CANON_NONE;
        for (size_t ci = 0; ci < N_GRID_CASES; ci++)
            for (int li = 0; li < GRID_LAYOUTS; li++) {
                const grid_case *gc = &grid_cases[ci];
                int64_t st[CANON_MAX_SLOTS][CANON_MAX_DIMS] = {{0}};
                canon_args a = {.n = grid_count(gc, gc->outer, gc->ndim)};
                memcpy(a.param, par, sizeof par);
                for (uint32_t k = 0; k < n_in; k++) {
                    grid_layout(gc, (li + (int)k) % GRID_LAYOUTS, (uint32_t)(ci + k), st[k]);
                    a.slot[k] = (k % 2 ? buf_in1 : buf_in0) + 3 * k;
                }
                const uint64_t total = grid_count(gc, 0, gc->ndim);
                const uint64_t n_rows = grid_count(gc, 0, gc->outer);
                if (stores) {
                    grid_layout(gc, GRID_ROW_MAJOR, 0, st[n_in]);
                    a.slot[n_in] = buf_out;
                    fill_sentinel(buf_out, total + GUARD);
                }
                canon_grid g;
                grid_fill(&g, gc, twin->n_slots, st, has_result ? res : NULL);
                fill_sentinel(res, n_rows + GUARD);
                a.grid = &g;
                assert_int_equal(interp_run(twin, &a, NULL), HG_OK);
                for (uint64_t r = 0; r < n_rows; r++) {
                    canon_args ra = {.n = a.n};
                    memcpy(ra.param, par, sizeof par);
                    for (uint32_t k = 0; k < twin->n_slots; k++) {
                        ra.slot[k] = rows + (size_t)k * ROW_MAX;
                        if (k == n_in)
                            continue;
                        const float *row = a.slot[k] + grid_offset(gc, st[k], 0, gc->outer, r);
                        for (uint64_t e = 0; e < a.n; e++)
                            ra.slot[k][e] = row[grid_offset(gc, st[k], gc->outer, gc->ndim, e)];
                    }
                    float want = SENTINEL;
                    assert_int_equal(interp_run(range, &ra, &want), HG_OK);
                    if (has_result && memcmp(&res[r], &want, sizeof want) != 0)
                        fail_msg("%s case %zu layout %d row %llu: result %.9g, want %.9g",
                                 info->name, ci, li, (unsigned long long)r, res[r], want);
                    for (uint64_t e = 0; stores && e < a.n; e++) {
                        const float *got = buf_out + r * a.n + e;
                        if (memcmp(got, &ra.slot[n_in][e], sizeof *got) != 0)
                            fail_msg("%s case %zu layout %d row %llu element %llu: %.9g, want "
                                     "%.9g", info->name, ci, li, (unsigned long long)r,
                                     (unsigned long long)e, *got, ra.slot[n_in][e]);
                    }
                }
                if (stores)
                    check_sentinel(buf_out + total, GUARD, info->name);
                check_sentinel(res + (has_result ? n_rows : 0), GUARD, info->name);
            }
    }
    free(rows);
    free(res);
}

/* ---- hand-built programs -------------------------------------------------------------------- */
/* Uniform sub-expressions and a uniform root: out = x + p0*2, then sum of p0 over n. */
static void test_uniform_paths(void **state) {
    (void)state;
    canon_program *p = canon_program_new(2, 1);
    assert_non_null(p);
    uint32_t x = canon_leaf(p, CANON_LOAD, 0), p0 = canon_leaf(p, CANON_PARAM, 0);
    uint32_t k = canon_node_add(p, CANON_MUL, p0, canon_const(p, 2.0f), CANON_NONE);
    uint32_t y = canon_node_add(p, CANON_ADD, x, k, CANON_NONE);
    assert_int_not_equal(canon_stage_add(p, CANON_DOM_RANGE, y, 1, CANON_RED_NONE), CANON_NONE);
    uint32_t s = canon_stage_add(p, CANON_DOM_RANGE, p0, CANON_NONE, CANON_RED_SUM);
    assert_int_not_equal(s, CANON_NONE);
    p->result_stage = s;
    const uint64_t n = 3000;
    rng_state = 8;
    fill_random(buf_in0, n, -10, 10, 0);
    canon_args a = {.slot = {buf_in0, buf_out}, .param = {1.5f}, .n = n};
    float r = 0;
    assert_int_equal(interp_run(p, &a, &r), HG_OK);
    for (uint64_t i = 0; i < n; i++)
        assert_true(buf_out[i] == buf_in0[i] + 3.0f);
    assert_true(r == 4500.0f);
    canon_program_free(p);
}

/* p (freed here) must be refused with HG_ERR_INTERNAL, writing neither output nor result. */
static void expect_internal(canon_program *p, int n_slots) {
    float in[4] = {1, 2, 3, 4}, out[4] = {SENTINEL, SENTINEL, SENTINEL, SENTINEL};
    canon_args a = {.n = 4, .contract = {.m = 2, .n = 2, .k = 2, .a_rs = 2, .a_cs = 1,
                                         .b_rs = 2, .b_cs = 1}};
    for (int i = 0; i < n_slots; i++)
        a.slot[i] = i == n_slots - 1 ? out : in;
    float r = SENTINEL;
    assert_int_equal(interp_run(p, &a, &r), HG_ERR_INTERNAL);
    assert_true(r == SENTINEL);
    check_sentinel(out, 4, "refused program");
    canon_program_free(p);
}

static void test_malformed(void **state) {
    (void)state;
    assert_int_equal(interp_run(NULL, &(canon_args){0}, NULL), HG_ERR_INTERNAL);
    canon_program *p;
    uint32_t x, y;
    /* a sugar kind */
    p = canon_program_new(3, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    y = canon_leaf(p, CANON_LOAD, 1);
    canon_stage_add(p, CANON_DOM_RANGE, canon_node_add(p, CANON_SUB, x, y, CANON_NONE), 2,
                    CANON_RED_NONE);
    expect_internal(p, 3);
    /* a CONTRACT stage that loads its own output slot; one that does not sum */
    p = canon_program_new(3, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    y = canon_leaf(p, CANON_LOAD, 2);
    canon_stage_add(p, CANON_DOM_CONTRACT, canon_node_add(p, CANON_ADD, x, y, CANON_NONE), 2,
                    CANON_RED_SUM);
    expect_internal(p, 3);
    p = canon_program_new(3, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    y = canon_leaf(p, CANON_LOAD, 1);
    canon_stage_add(p, CANON_DOM_CONTRACT, canon_node_add(p, CANON_MUL, x, y, CANON_NONE), 2,
                    CANON_RED_MAX);
    expect_internal(p, 3);
    /* a GRID program run without a grid */
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    canon_stage_add(p, CANON_DOM_GRID, canon_node_add(p, CANON_NEG, x, CANON_NONE, CANON_NONE),
                    1, CANON_RED_NONE);
    expect_internal(p, 2);
    /* a GRID stage next to a RANGE stage */
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    canon_stage_add(p, CANON_DOM_GRID, x, 1, CANON_RED_NONE);
    canon_stage_add(p, CANON_DOM_RANGE, x, 1, CANON_RED_NONE);
    expect_internal(p, 2);
    /* a LOAD of a slot the program does not have */
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 3);
    canon_stage_add(p, CANON_DOM_RANGE, canon_node_add(p, CANON_NEG, x, CANON_NONE, CANON_NONE),
                    1, CANON_RED_NONE);
    expect_internal(p, 2);
    /* an ACC of the stage itself; a SCALAR stage that loads; a result that is no scalar */
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    y = canon_node_add(p, CANON_ADD, x, canon_leaf(p, CANON_ACC, 0), CANON_NONE);
    canon_stage_add(p, CANON_DOM_RANGE, y, 1, CANON_RED_SUM);
    expect_internal(p, 2);
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    canon_stage_add(p, CANON_DOM_RANGE, x, CANON_NONE, CANON_RED_SUM);
    y = canon_node_add(p, CANON_ADD, x, canon_leaf(p, CANON_ACC, 0), CANON_NONE);
    canon_stage_add(p, CANON_DOM_SCALAR, y, CANON_NONE, CANON_RED_NONE);
    expect_internal(p, 2);
    p = canon_program_new(2, 0);
    x = canon_leaf(p, CANON_LOAD, 0);
    canon_stage_add(p, CANON_DOM_RANGE, x, 1, CANON_RED_NONE);
    p->result_stage = 0;
    expect_internal(p, 2);
}

/* ---- threads -------------------------------------------------------------------------------- */
#define MT_N 100000u
#define MT_ROUNDS 20

typedef struct {
    const float *x;
    float *y;
    hg_status st;
} mt_job;

static void *mt_worker(void *arg) {
    mt_job *job = arg;
    canon_args a = {.slot = {(float *)job->x, job->y}, .n = MT_N};
    for (int r = 0; r < MT_ROUNDS && job->st == HG_OK; r++)
        job->st = interp_run(canon_form(CANON_OP_gelu_f32), &a, NULL);
    return NULL;
}

/* Two threads run gelu at once (each with its own scratch); both match a lone run. */
static void test_threads(void **state) {
    (void)state;
    rng_state = 9;
    fill_random(buf_in0, MT_N, -8, 8, 0);
    fill_random(buf_in1, MT_N, -8, 8, 0);
    canon_args a = {.slot = {buf_in0, buf_save}, .n = MT_N};
    assert_int_equal(interp_run(form(CANON_OP_gelu_f32), &a, NULL), HG_OK);
    a.slot[0] = buf_in1;
    a.slot[1] = buf_save + MT_N;
    assert_int_equal(interp_run(form(CANON_OP_gelu_f32), &a, NULL), HG_OK);
    mt_job jobs[2] = {{buf_in0, buf_out, HG_OK}, {buf_in1, buf_out + MT_N, HG_OK}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, mt_worker, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].st, HG_OK);
    }
    assert_memory_equal(buf_out, buf_save, 2 * MT_N * sizeof(float));
}

/* ---- timing (reported, not asserted) -------------------------------------------------------- */
static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of 30 runs of `op` on pre-touched buffers, in milliseconds. */
static double time_op(canon_op op, const canon_args *a) {
    float r;
    double best = INFINITY;
    for (int i = 0; i < 33; i++) {
        const double t0 = now_sec();
        assert_int_equal(interp_run(form(op), a, &r), HG_OK);
        const double dt = now_sec() - t0;
        if (i >= 3 && dt < best)
            best = dt;
    }
    return best * 1e3;
}

static void test_timing(void **state) {
    (void)state;
    rng_state = 10;
    fill_random(buf_in0, N_MAX, -8, 8, 0);
    fill_random(buf_in1, N_MAX, -8, 8, 0);
    memset(buf_out, 0, N_MAX * sizeof(float));
    canon_args a = {.slot = {buf_in0, buf_in1, buf_out}, .n = N_MAX};
    const double t_add = time_op(CANON_OP_vector_add_f32, &a);
    a.slot[1] = buf_out;
    const double t_sig = time_op(CANON_OP_sigmoid_f32, &a);
    const double t_gelu = time_op(CANON_OP_gelu_f32, &a);
    const double t_sum = time_op(CANON_OP_reduce_sum_f32, &a);
    canon_args g = {.slot = {buf_in0, buf_in1, buf_out},
                    .contract = {.m = 256, .n = 256, .k = 256, .a_rs = 256, .a_cs = 1,
                                 .b_rs = 256, .b_cs = 1}};
    const double t_gemm = time_op(CANON_OP_gemm_f32, &g);
    print_message("interp n=1M: vector_add %.3f ms, sigmoid %.3f ms, gelu %.3f ms, "
                  "reduce_sum %.3f ms; gemm 256^3 %.3f ms (%.1f GFLOP/s)\n",
                  t_add, t_sig, t_gelu, t_sum, t_gemm, 2.0 * 256 * 256 * 256 / t_gemm * 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps),          cmocka_unit_test(test_map_specials),
        cmocka_unit_test(test_copy_overlap),
        cmocka_unit_test(test_reductions),    cmocka_unit_test(test_losses),
        cmocka_unit_test(test_softmax),       cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_matvec),        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_uniform_paths), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
