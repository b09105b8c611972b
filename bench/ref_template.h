/*
 * bench/ref_template.h — the reference loops of every elementwise, reduction and loss op,
 * generated from canon/ops.def.  Included by bench/ref_loops.c once per arithmetic type,
 * with REF_T (float or double), REF_SFX (f32 or f64) and REF_EXP, REF_LOG, REF_TANH,
 * REF_FABS (the libm functions of that type) defined; REF_SCALE(v) accumulates |v| into
 * *scale (or does nothing).  Defines static functions ref_<op>_<sfx>.
 */
#define REF_CAT_(a, b) a##b
#define REF_CAT(a, b) REF_CAT_(a, b)
#define REF_NAME(name) REF_CAT(ref_##name##_, REF_SFX)

/* NaN-propagating minimum/maximum written the plain way (the -0 < +0 order is ignored). */
static inline REF_T REF_CAT(ref_min_, REF_SFX)(REF_T a, REF_T b) {
    return (a < b || a != a) ? a : b;
}
static inline REF_T REF_CAT(ref_max_, REF_SFX)(REF_T a, REF_T b) {
    return (a > b || a != a) ? a : b;
}
/* clip as one would write it: a NaN fails both tests and passes through. */
static inline REF_T REF_CAT(ref_clip_, REF_SFX)(REF_T a, REF_T lo, REF_T hi) {
    return a < lo ? lo : a > hi ? hi : a;
}

/* The ops.def expression vocabulary as plain C of type REF_T. */
#define X0 ((REF_T)x0[i])
#define X1 ((REF_T)x1[i])
#define P0 ((REF_T)p0)
#define P1 ((REF_T)p1)
#define K(c) ((REF_T)(c))
#define ACC0 acc
#define LEN ((REF_T)n)
#define ADD(a, b) ((a) + (b))
#define SUB(a, b) ((a) - (b))
#define MUL(a, b) ((a) * (b))
#define DIV(a, b) ((a) / (b))
#define NEG(a) (-(a))
#define ABS(a) REF_FABS(a)
#define MIN(a, b) REF_CAT(ref_min_, REF_SFX)(a, b)
#define MAX(a, b) REF_CAT(ref_max_, REF_SFX)(a, b)
#define RELU(a) MAX(a, K(0))
#define CLIP(a, lo, hi) REF_CAT(ref_clip_, REF_SFX)(a, lo, hi)
#define EXP(a) REF_EXP(a)
#define LOG(a) REF_LOG(a)
#define TANH(a) REF_TANH(a)
#define SIGMOID(a) (K(1) / (K(1) + REF_EXP(-(a))))
#define GELU(a)                                                                            \
    (K(0.5) * (a) * (K(1) + REF_TANH(K(0.7978845608) * ((a) + K(0.044715) * (a) * (a) * (a)))))

#define REF_PROLOGUE (void)x0, (void)x1, (void)out, (void)p0, (void)p1, (void)scale

/* Families.  MAP: out[i] = body.  REDUCE: fold body into acc.  LOSS: sum body, then the
 * row's final expression.  SOFTMAX: max, exp and sum, scale. */
#define REF_FAM_MAP(name, reduce, body, final)                                             \
    static double REF_NAME(name)(const float *restrict x0, const float *restrict x1,       \
                                 float *restrict out, size_t n, float p0, float p1,        \
                                 double *scale) {                                          \
        REF_PROLOGUE;                                                                      \
        for (size_t i = 0; i < n; i++)                                                     \
            out[i] = (float)(body);                                                        \
        return 0;                                                                          \
    }
#define REF_INIT_SUM K(0)
#define REF_INIT_MIN ((REF_T)INFINITY)
#define REF_INIT_MAX ((REF_T)-INFINITY)
#define REF_STEP_SUM(acc, v) (acc += (v), REF_SCALE(v))
#define REF_STEP_MIN(acc, v) (acc = MIN(v, acc))
#define REF_STEP_MAX(acc, v) (acc = MAX(v, acc))
#define REF_FAM_REDUCE(name, reduce, body, final)                                          \
    static double REF_NAME(name)(const float *restrict x0, const float *restrict x1,       \
                                 float *restrict out, size_t n, float p0, float p1,        \
                                 double *scale) {                                          \
        REF_PROLOGUE;                                                                      \
        REF_T acc = REF_INIT_##reduce;                                                     \
        for (size_t i = 0; i < n; i++)                                                     \
            REF_STEP_##reduce(acc, body);                                                  \
        return acc;                                                                        \
    }
#define REF_FAM_LOSS(name, reduce, body, final)                                            \
    static double REF_NAME(name)(const float *restrict x0, const float *restrict x1,       \
                                 float *restrict out, size_t n, float p0, float p1,        \
                                 double *scale) {                                          \
        REF_PROLOGUE;                                                                      \
        REF_T acc = 0;                                                                     \
        for (size_t i = 0; i < n; i++) {                                                   \
            REF_T v = body;                                                                \
            acc += v;                                                                      \
            REF_SCALE(v);                                                                  \
        }                                                                                  \
        return final;                                                                      \
    }
#define REF_FAM_SOFTMAX(name, reduce, body, final)                                         \
    static double REF_NAME(name)(const float *restrict x0, const float *restrict x1,       \
                                 float *restrict out, size_t n, float p0, float p1,        \
                                 double *scale) {                                          \
        REF_PROLOGUE;                                                                      \
        REF_T m = REF_INIT_MAX, sum = 0;                                                   \
        for (size_t i = 0; i < n; i++)                                                     \
            m = MAX(X0, m);                                                                \
        for (size_t i = 0; i < n; i++) {                                                   \
            REF_T e = REF_EXP(X0 - m);                                                     \
            out[i] = (float)e;                                                             \
            sum += e;                                                                      \
        }                                                                                  \
        REF_T inv = K(1) / sum;                                                            \
        for (size_t i = 0; i < n; i++)                                                     \
            out[i] = (float)(out[i] * inv);                                                \
        return 0;                                                                          \
    }

/* Only ops with a public elementwise, reduction or loss signature get a loop. */
#define REF_SIG_BIN(name, family, reduce, body, final) REF_FAM_##family(name, reduce, body, final)
#define REF_SIG_UN REF_SIG_BIN
#define REF_SIG_UN1 REF_SIG_BIN
#define REF_SIG_UN2 REF_SIG_BIN
#define REF_SIG_RED REF_SIG_BIN
#define REF_SIG_LOSS REF_SIG_BIN
#define REF_SIG_FILL(name, family, reduce, body, final)
#define REF_SIG_COPY REF_SIG_FILL
#define REF_SIG_GEMM REF_SIG_FILL
#define REF_SIG_MATVEC REF_SIG_FILL

#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)            \
    REF_SIG_##sig(name, family, reduce, body, final)
#include "canon/ops.def"
#undef HG_OP

#undef REF_SIG_BIN
#undef REF_SIG_UN
#undef REF_SIG_UN1
#undef REF_SIG_UN2
#undef REF_SIG_RED
#undef REF_SIG_LOSS
#undef REF_SIG_FILL
#undef REF_SIG_COPY
#undef REF_SIG_GEMM
#undef REF_SIG_MATVEC
#undef REF_FAM_MAP
#undef REF_FAM_REDUCE
#undef REF_FAM_LOSS
#undef REF_FAM_SOFTMAX
#undef REF_INIT_SUM
#undef REF_INIT_MIN
#undef REF_INIT_MAX
#undef REF_STEP_SUM
#undef REF_STEP_MIN
#undef REF_STEP_MAX
#undef REF_PROLOGUE
#undef X0
#undef X1
#undef P0
#undef P1
#undef K
#undef ACC0
#undef LEN
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef NEG
#undef ABS
#undef MIN
#undef MAX
#undef RELU
#undef CLIP
#undef EXP
#undef LOG
#undef TANH
#undef SIGMOID
#undef GELU
#undef REF_NAME
#undef REF_CAT
#undef REF_CAT_
