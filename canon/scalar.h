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

/* tanh(x) = sign(x) * tanh(|x|), from m = expm1(2|x|) and one division for every x:
 * tanh(a) = m / (m + 2) below CANON_TANH_SMALL (no cancellation: m is expm1, not exp - 1),
 * else 1 - 2 / (m + 2).  expm1(y), y = 2a in [0, 20]: y = k*ln2 + r, expm1(r) from exp's
 * polynomial, expm1(y) = 2^k expm1(r) + (2^k - 1) in one fma.  y is clamped to 20: tanh
 * rounds to 1 from |x| = 9.02 on.  About 2 ulp; NaN propagates; tanh(-0) = -0. */
#define CANON_TANH_SMALL 0.5f
#define CANON_TANH_Y_HI 20.0f

static inline float canon_tanh_f32(float x) {
    float a = canon_abs_f32(x);
    float y = a + a;
    y = y > CANON_TANH_Y_HI ? CANON_TANH_Y_HI : y; /* NaN compares false and stays NaN */
    float r;
    int32_t k = canon_exp_split_f32(y, &r);          /* k in [0, 29] */
    float s = canon_u2f((uint32_t)(k + 127) << 23); /* 2^k */
    float m = fmaf(s, canon_expm1_poly_f32(r), s - 1.0f);
    int small = a < CANON_TANH_SMALL;
    float q = (small ? m : 2.0f) / (m + 2.0f);
    q = small ? q : 1.0f - q;                                    /* tanh(|x|) >= +0 */
    q = canon_u2f(canon_f2u(q) | (canon_f2u(x) & 0x80000000u)); /* odd: tanh(-0) = -0 */
    return x != x ? x : q;
}

/* The value of compute kind `kind` on x (and y for binary kinds): the one map from node
 * kinds to the semantics above, used by the constant folder and the interpreter.  Leaves
 * and sugar have no value here (NaN). */
static inline float canon_apply_f32(canon_kind kind, float x, float y) {
    switch (kind) {
    case CANON_NEG: return canon_neg_f32(x);
    case CANON_ABS: return canon_abs_f32(x);
    case CANON_EXP: return canon_exp_f32(x);
    case CANON_LOG: return canon_log_f32(x);
    case CANON_TANH: return canon_tanh_f32(x);
    case CANON_ADD: return x + y;
    case CANON_MUL: return x * y;
    case CANON_DIV: return x / y;
    case CANON_MIN: return canon_min_f32(x, y);
    case CANON_MAX: return canon_max_f32(x, y);
    default: return NAN;
    }
}

#endif /* CANON_SCALAR_H */
