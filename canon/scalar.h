/*
 * canon/scalar.h — float32 semantics of every canonical primitive, written once.
 *
 * Used by the constant folder (canon/rewrite.c) and the interpreter (runtime/interp.c);
 * the JIT (jit/lower_math.c) emits the very same operation sequences as LLVM IR, so the
 * two engines agree bit for bit on maps.  Everything here is branch-free (selects, no
 * table lookups) so that loops over it vectorize, and free of undefined behaviour for
 * every input, NaN and +-Inf included.  Requires strict IEEE float32 evaluation (no
 * -ffast-math; FLT_EVAL_METHOD 0, as on x86-64).
 */
#ifndef CANON_SCALAR_H
#define CANON_SCALAR_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "canon.h"

static inline uint32_t canon_f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline float canon_u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline float canon_neg_f32(float x) { return canon_u2f(canon_f2u(x) ^ 0x80000000u); }
static inline float canon_abs_f32(float x) { return canon_u2f(canon_f2u(x) & 0x7fffffffu); }

/* IEEE 754-2019 minimum/maximum (LLVM llvm.minimum/llvm.maximum): NaN if either operand
 * is NaN, and -0 < +0. */
static inline float canon_min_f32(float x, float y) {
    float m = x < y ? x : y;
    m = (x == y) ? canon_u2f(canon_f2u(x) | canon_f2u(y)) : m; /* min(-0, +0) = -0 */
    return (x != x || y != y) ? x + y : m;
}
static inline float canon_max_f32(float x, float y) {
    float m = x > y ? x : y;
    m = (x == y) ? canon_u2f(canon_f2u(x) & canon_f2u(y)) : m; /* max(-0, +0) = +0 */
    return (x != x || y != y) ? x + y : m;
}

/* exp(x), Cephes-style: x = k*ln2 + r, |r| <= ln2/2, degree-6 polynomial, then 2^k
 * applied as two exact power-of-two factors (k in [-151, 129], so no exponent overflow
 * in either factor and one rounding into the subnormal range).  About 1 ulp.
 * NaN propagates through r; x > 88.73 gives +Inf, x < -104 gives 0. */
#define CANON_EXP_HI 88.8f
#define CANON_EXP_LO (-104.0f)
#define CANON_LOG2E 1.44269504088896341f
#define CANON_RINT_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define CANON_LN2_HI 0.693359375f
#define CANON_LN2_LO (-2.12194440e-4f)
#define CANON_EXP_P0 1.9875691500e-4f
#define CANON_EXP_P1 1.3981999507e-3f
#define CANON_EXP_P2 8.3334519073e-3f
#define CANON_EXP_P3 4.1665795894e-2f
#define CANON_EXP_P4 1.6666665459e-1f
#define CANON_EXP_P5 5.0000001201e-1f

/* x = k*ln2 + r with |r| <= ln2/2 (x in [-104, 129]): returns k, r in *r. */
static inline int32_t canon_exp_split_f32(float x, float *r) {
    float t = x * CANON_LOG2E + CANON_RINT_MAGIC; /* k in the low mantissa bits */
    float kf = t - CANON_RINT_MAGIC;
    *r = fmaf(kf, -CANON_LN2_HI, x);
    *r = fmaf(kf, -CANON_LN2_LO, *r);
    return (int32_t)(canon_f2u(t) - canon_f2u(CANON_RINT_MAGIC)); /* exact integer k */
}

/* exp(r) - 1 for |r| <= ln2/2: r + r^2 P(r). */
static inline float canon_expm1_poly_f32(float r) {
    float p = CANON_EXP_P0;
    p = fmaf(p, r, CANON_EXP_P1);
    p = fmaf(p, r, CANON_EXP_P2);
    p = fmaf(p, r, CANON_EXP_P3);
    p = fmaf(p, r, CANON_EXP_P4);
    p = fmaf(p, r, CANON_EXP_P5);
    float r2 = r * r;
    return fmaf(p, r2, r);
}

static inline float canon_exp_f32(float x) {
    x = x > CANON_EXP_HI ? CANON_EXP_HI : x; /* NaN compares false and stays NaN */
    x = x < CANON_EXP_LO ? CANON_EXP_LO : x;
    float r;
    int32_t k = canon_exp_split_f32(x, &r);
    float p = canon_expm1_poly_f32(r) + 1.0f;
    int32_t k1 = k >> 1; /* arithmetic shift (gcc, clang, LLVM ashr) */
    int32_t k2 = k - k1;
    float s1 = canon_u2f((uint32_t)(k1 + 127) << 23);
    float s2 = canon_u2f((uint32_t)(k2 + 127) << 23);
    return (p * s1) * s2;
}

/* log(x), Cephes-style: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), degree-8 polynomial
 * in f = m - 1.  Subnormals are scaled by 2^23 first.  About 1 ulp.
 * log(+-0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf, NaN propagates. */
#define CANON_LOG_Q0 7.0376836292e-2f
#define CANON_LOG_Q1 (-1.1514610310e-1f)
#define CANON_LOG_Q2 1.1676998740e-1f
#define CANON_LOG_Q3 (-1.2420140846e-1f)
#define CANON_LOG_Q4 1.4249322787e-1f
#define CANON_LOG_Q5 (-1.6668057665e-1f)
#define CANON_LOG_Q6 2.0000714765e-1f
#define CANON_LOG_Q7 (-2.4999993993e-1f)
#define CANON_LOG_Q8 3.3333331174e-1f
#define CANON_SQRT_HALF 0.707106781186547524f

static inline float canon_log_f32(float x) {
    float xs = x < 1.17549435e-38f ? x * 8388608.0f : x; /* 2^23 for subnormals */
    float ebias = x < 1.17549435e-38f ? -23.0f : 0.0f;
    uint32_t u = canon_f2u(xs);
    int32_t e = (int32_t)((u >> 23) & 0xffu) - 126;      /* m in [0.5, 1) */
    float m = canon_u2f((u & 0x007fffffu) | 0x3f000000u);
    int32_t small = m < CANON_SQRT_HALF;
    float ef = (float)(e - small) + ebias;
    float f = small ? (m + m) - 1.0f : m - 1.0f;
    float z = f * f;
    float y = CANON_LOG_Q0;
    y = fmaf(y, f, CANON_LOG_Q1);
    y = fmaf(y, f, CANON_LOG_Q2);
    y = fmaf(y, f, CANON_LOG_Q3);
    y = fmaf(y, f, CANON_LOG_Q4);
    y = fmaf(y, f, CANON_LOG_Q5);
    y = fmaf(y, f, CANON_LOG_Q6);
    y = fmaf(y, f, CANON_LOG_Q7);
    y = fmaf(y, f, CANON_LOG_Q8);
    y = y * f * z;
    y = fmaf(ef, CANON_LN2_LO, y);
    y = fmaf(z, -0.5f, y);
    float r = f + y;
    r = fmaf(ef, CANON_LN2_HI, r);
    r = (x == 0.0f) ? -INFINITY : r;
    r = (x < 0.0f) ? NAN : r;
    r = (x == INFINITY) ? INFINITY : r;
    return (x != x) ? x : r;
}

/* tanh(x) = sign(x) * tanh(|x|), a = |x|:
 *   a < CANON_TANH_SMALL: a + a^3 P(a^2), P of degree 5 (a least-squares fit of relative
 *     error, 1.6e-10 before rounding), no division and no cancellation;
 *   else 1 - 2 / (m + 2) with m = expm1(2a): y = 2a in [1.25, 20] (clamped: tanh rounds
 *     to 1 from a = 9.02 on), y = k*ln2 + r, expm1(r) from exp's polynomial,
 *     expm1(y) = 2^k expm1(r) + (2^k - 1) in one fma.
 * Both are computed, the select keeps one (branch-free).  Measured over every float32:
 * at most 0.73 ulp below CANON_TANH_SMALL, 1.33 ulp above (at 0.628).  NaN propagates;
 * tanh(-0) = -0. */
#define CANON_TANH_SMALL 0.625f
#define CANON_TANH_Y_HI 20.0f
#define CANON_TANH_P0 (-0.3333333134651184f)
#define CANON_TANH_P1 0.13333208858966827f
#define CANON_TANH_P2 (-0.053947046399116516f)
#define CANON_TANH_P3 0.021702103316783905f
#define CANON_TANH_P4 (-0.008180559612810612f)
#define CANON_TANH_P5 0.002145639853551984f

static inline float canon_tanh_f32(float x) {
    float a = canon_abs_f32(x);
    float y = a + a;
    y = y > CANON_TANH_Y_HI ? CANON_TANH_Y_HI : y; /* NaN compares false and stays NaN */
    float r;
    int32_t k = canon_exp_split_f32(y, &r);          /* k in [0, 29] */
    float s = canon_u2f((uint32_t)(k + 127) << 23); /* 2^k */
    float m = fmaf(s, canon_expm1_poly_f32(r), s - 1.0f);
    float t = a * a;
    float p = CANON_TANH_P5;
    p = fmaf(p, t, CANON_TANH_P4);
    p = fmaf(p, t, CANON_TANH_P3);
    p = fmaf(p, t, CANON_TANH_P2);
    p = fmaf(p, t, CANON_TANH_P1);
    p = fmaf(p, t, CANON_TANH_P0);
    float small = fmaf(a * t, p, a);
    float large = 1.0f - 2.0f / (m + 2.0f);
    float q = a < CANON_TANH_SMALL ? small : large;               /* tanh(|x|) >= +0 */
    q = canon_u2f(canon_f2u(q) | (canon_f2u(x) & 0x80000000u)); /* odd: tanh(-0) = -0 */
    return x != x ? x : q;
}

static inline uint64_t canon_d2u(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline double canon_u2d(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* IEEE square root (correctly rounded; sqrtf is one instruction under -fno-math-errno). */
static inline float canon_sqrt_f32(float x) { return sqrtf(x); }

/* pow(x, y) for float32 with C99 powf's special cases, as 2^(y * log2|x|) in double:
 *   log2|x|: |x| = m * 2^e (as a double, so float subnormals are normal), m in
 *            [sqrt(1/2), sqrt(2)), log2 m = s * P(s^2) with s = (m-1)/(m+1), |s| <= 0.172,
 *            P the atanh series scaled by 2/ln2 (terms to s^15: relative error < 4e-14)
 *   2^t:     t clamped to [-200, 200] (beyond, float32 gives 0 or Inf anyway), t = k + r
 *            with k = rint(t), 2^r = Taylor polynomial of degree 11 in r (|r| <= 1/2:
 *            relative error < 1e-14), times 2^k by adding k to the exponent bits
 *   float:   one rounding of that double, so the result is within 1 ulp (it is the
 *            correctly rounded one unless the exact value lies within 1e-13 of a midpoint).
 *   specials, applied last in this order: a negative x with an odd integer y gives the
 *   negated magnitude (also for -0 and -Inf); x < 0 finite with y not an integer: NaN;
 *   x or y NaN: NaN; x = -1 and y = +-Inf: 1; y = +-0 or x = 1: 1 (even for NaN). */
#define CANON_POW_SQRT2 1.4142135623730951
#define CANON_POW_RINT_MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
#define CANON_POW_T_LIMIT 200.0
#define CANON_POW_L0 2.8853900817779268  /* 2/(1 ln2), 2/(3 ln2), ... 2/(15 ln2) */
#define CANON_POW_L1 0.9617966939259756
#define CANON_POW_L2 0.5770780163555853
#define CANON_POW_L3 0.4121985831111324
#define CANON_POW_L4 0.3205988979753252
#define CANON_POW_L5 0.2623081892525388
#define CANON_POW_L6 0.22195308321368667
#define CANON_POW_L7 0.19235933878519512
#define CANON_POW_E1 0.6931471805599453  /* ln2^j / j! */
#define CANON_POW_E2 0.24022650695910072
#define CANON_POW_E3 0.05550410866482158
#define CANON_POW_E4 0.009618129107628477
#define CANON_POW_E5 0.0013333558146428443
#define CANON_POW_E6 0.0001540353039338161
#define CANON_POW_E7 1.5252733804059841e-05
#define CANON_POW_E8 1.321548679014431e-06
#define CANON_POW_E9 1.01780860092397e-07
#define CANON_POW_E10 7.054911620801123e-09
#define CANON_POW_E11 4.4455382718708116e-10

/* log2(a) for a > 0 finite (a double from a float, hence normal). */
static inline double canon_pow_log2(double a) {
    uint64_t u = canon_d2u(a);
    int64_t e = (int64_t)(u >> 52) - 1023;
    double m = canon_u2d((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
    int big = m > CANON_POW_SQRT2;
    m = big ? m * 0.5 : m;
    double ef = (double)(e + big);
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double p = CANON_POW_L7;
    p = fma(p, s2, CANON_POW_L6);
    p = fma(p, s2, CANON_POW_L5);
    p = fma(p, s2, CANON_POW_L4);
    p = fma(p, s2, CANON_POW_L3);
    p = fma(p, s2, CANON_POW_L2);
    p = fma(p, s2, CANON_POW_L1);
    p = fma(p, s2, CANON_POW_L0);
    return fma(s, p, ef);
}

/* 2^t for t in [-200, 200] (NaN gives an unspecified value; canon_pow_f32 overrides it). */
static inline double canon_pow_exp2(double t) {
    double kt = t + CANON_POW_RINT_MAGIC; /* k in the low mantissa bits */
    double r = t - (kt - CANON_POW_RINT_MAGIC);
    uint64_t k = canon_d2u(kt) - canon_d2u(CANON_POW_RINT_MAGIC); /* two's complement k */
    double p = CANON_POW_E11;
    p = fma(p, r, CANON_POW_E10);
    p = fma(p, r, CANON_POW_E9);
    p = fma(p, r, CANON_POW_E8);
    p = fma(p, r, CANON_POW_E7);
    p = fma(p, r, CANON_POW_E6);
    p = fma(p, r, CANON_POW_E5);
    p = fma(p, r, CANON_POW_E4);
    p = fma(p, r, CANON_POW_E3);
    p = fma(p, r, CANON_POW_E2);
    p = fma(p, r, CANON_POW_E1);
    p = fma(p, r, 1.0);
    return canon_u2d(canon_d2u(p) + (k << 52)); /* exponent of p stays normal */
}

static inline float canon_pow_f32(float x, float y) {
    double ax = (double)canon_abs_f32(x);
    double l = canon_pow_log2(ax > 0.0 && ax < (double)INFINITY ? ax : 1.0);
    l = ax == 0.0 ? -(double)INFINITY : l;
    l = ax == (double)INFINITY ? (double)INFINITY : l;
    double t = (double)y * l;
    t = t > CANON_POW_T_LIMIT ? CANON_POW_T_LIMIT : t; /* NaN compares false */
    t = t < -CANON_POW_T_LIMIT ? -CANON_POW_T_LIMIT : t;
    float r = (float)canon_pow_exp2(t);
    float half = y * 0.5f;
    int y_int = floorf(y) == y;                       /* +-Inf count as (even) integers */
    int y_odd = y_int && floorf(half) != half;
    r = y_odd && (canon_f2u(x) >> 31) ? canon_neg_f32(r) : r;
    r = x < 0.0f && x > -INFINITY && !y_int ? NAN : r; /* y NaN included */
    r = x != x || y != y ? x + y : r;
    r = x == -1.0f && canon_abs_f32(y) == INFINITY ? 1.0f : r;
    return y == 0.0f || x == 1.0f ? 1.0f : r;
}

/* Comparisons give 1 or 0 (IEEE: every ordered comparison with a NaN is false, != true);
 * a condition holds when it is not 0, so a NaN condition holds (NumPy's bool(nan)). */
static inline float canon_flag_f32(int c) { return c ? 1.0f : 0.0f; }
static inline float canon_where_f32(float c, float a, float b) { return c != 0.0f ? a : b; }

/* The value of compute kind `kind` on its operands x, y, z (those past its arity are
 * ignored): the one map from node kinds to the semantics above, used by the constant
 * folder and the interpreter.  Leaves and sugar have no value here (NaN). */
static inline float canon_apply_f32(canon_kind kind, float x, float y, float z) {
    switch (kind) {
    case CANON_NEG: return canon_neg_f32(x);
    case CANON_ABS: return canon_abs_f32(x);
    case CANON_EXP: return canon_exp_f32(x);
    case CANON_LOG: return canon_log_f32(x);
    case CANON_TANH: return canon_tanh_f32(x);
    case CANON_SQRT: return canon_sqrt_f32(x);
    case CANON_ADD: return x + y;
    case CANON_MUL: return x * y;
    case CANON_DIV: return x / y;
    case CANON_MIN: return canon_min_f32(x, y);
    case CANON_MAX: return canon_max_f32(x, y);
    case CANON_POW: return canon_pow_f32(x, y);
    case CANON_LT: return canon_flag_f32(x < y);
    case CANON_LE: return canon_flag_f32(x <= y);
    case CANON_EQ: return canon_flag_f32(x == y);
    case CANON_NE: return canon_flag_f32(x != y);
    case CANON_WHERE: return canon_where_f32(x, y, z);
    default: return NAN;
    }
}

#endif /* CANON_SCALAR_H */
