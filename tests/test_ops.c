/*
 * tests/test_ops.c — every operation of the public API against an independent reference
 * written here as plain C loops in double precision, under both engines (each case runs
 * once with hg_set_backend("interp") and once with hg_set_backend("jit")).
 *
 * Only <hologram/hologram.h> is used.  Cases are tables per family (maps, reductions,
 * losses, softmax, contractions); each table row is an X-macro that also generates the
 * test registrations.  Every output buffer carries N_SENTINEL guard elements after n that
 * must come back untouched; inputs that are not also outputs must come back unchanged.
 *
 * HG_TEST_MAX_LEN=<k> in the environment skips lengths above k (the valgrind run).
 */
#include "ref.h"

#include <float.h>

/* ---- tolerances (/work/shared/API.md, "Accuracy") ----------------------------------------
 * Exact maps (+ - * / min max abs neg relu clip scalar_add scalar_mul, fill, copy): the
 *   float32 result equals the double reference rounded to float32 (same bits; NaN == NaN).
 * exp/tanh/sigmoid/gelu:  |y - ref| <= TOL_ACT_ULPS * ULP_REL * |ref| + TOL_ABS.
 * softmax, per element:   |y - ref| <= TOL_SOFTMAX_ULPS * ULP_REL * |ref| + TOL_ABS.
 * reduce_sum:             |r - ref| <= TOL_SUM_REL * log2(max(n,2)) * sum|x| + TOL_ABS.
 * losses (means):         |r - ref| <= TOL_SUM_REL * log2(max(n,2)) * sum|term|/n + TOL_ABS.
 * reduce_min/max:         exact (== , NaN == NaN).
 * gemm/matvec:            |c - ref| <= TOL_GEMM_REL * k * max|a| * max|b| elementwise.
 * ULP_REL = 2^-23 (FLT_EPSILON), the "ulp" of API.md's "2 ulp * |y|". */
#define ULP_REL ((double)FLT_EPSILON)
#define TOL_ACT_ULPS 2.0
#define TOL_SOFTMAX_ULPS 4.0
#define TOL_ABS 1e-7
#define TOL_SUM_REL 1e-6
#define TOL_GEMM_REL 1e-5

#define N_SENTINEL 8       /* guard elements after n in every output buffer */
#define BIG_N 4000000u     /* the extra length for one map and one reduction */
#define ENGINE_CHECK_LEN 1025u

static const uint64_t k_lengths[] = {0, 1, 15, 16, 17, 255, 256, 257, 1000, 1023, 1024, 1025,
                                     1000000};
#define N_LENGTHS (sizeof k_lengths / sizeof k_lengths[0])

static uint64_t g_max_len = UINT64_MAX; /* HG_TEST_MAX_LEN */
static uint64_t g_exec;                 /* the executor of the running test */

/* ---- test data ----------------------------------------------------------------------- */

typedef enum {
    GEN_NONE,     /* no input */
    GEN_MIXED,    /* signs, magnitudes 2^-70..2^70 (subnormal/overflowing products), 0, -0 */
    GEN_MODERATE, /* signs, magnitudes 2^-6..2^7 */
    GEN_WIDE,     /* uniform in [-90, 90] (exp-based ops) */
    GEN_PROB      /* probabilities in (0, 1) with ~3% exact 0 and ~3% exact 1 */
} gen_kind;

/* Fills v[0..n) with seeded data of the given kind. */
static void gen_fill(float *v, uint64_t n, gen_kind kind, uint64_t seed)
{
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    for (uint64_t i = 0; i < n; i++) {
        double u = ref_uniform(&s), w = ref_uniform(&s);
        double sign = (ref_rand(&s) & 1) ? -1.0 : 1.0;
        double x = 0.0;
        switch (kind) {
        case GEN_NONE:
            break;
        case GEN_MIXED:
            if (u < 0.60)
                x = sign * (1.0 + w) * ldexp(1.0, (int)(w * 1e6) % 17 - 8);
            else if (u < 0.80)
                x = sign * (1.0 + w) * ldexp(1.0, (int)(w * 1e6) % 141 - 70);
            else if (u < 0.90)
                x = (double)((int)(w * 9.0) - 4);
            else if (u < 0.95)
                x = sign * 0.0;
            else
                x = 2.0 * w - 1.0;
            break;
        case GEN_MODERATE:
            x = sign * (1.0 + w) * ldexp(1.0, (int)(u * 13.0) - 6);
            break;
        case GEN_WIDE:
            x = -90.0 + 180.0 * u;
            break;
        case GEN_PROB:
            x = u < 0.03 ? 0.0 : u < 0.06 ? 1.0 : w;
            break;
        }
        v[i] = (float)x;
    }
}

/* The guard value at position i after n. */
static float sentinel(uint64_t i)
{
    return 12345.5f + (float)i;
}

/* Writes the guard pattern over v[0..count). */
static void sentinel_fill(float *v, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++)
        v[i] = sentinel(i);
}

/* Fails unless got[0..N_SENTINEL) still holds the guard pattern. */
static void check_tail(const float *got, const char *what, const char *backend, uint64_t n)
{
    for (uint64_t i = 0; i < N_SENTINEL; i++)
        if (ref_bits(got[i]) != ref_bits(sentinel(i)))
            fail_msg("%s [%s] n=%llu: element n+%llu beyond the operation was overwritten: "
                     "%.9g, was %.9g",
                     what, backend, (unsigned long long)n, (unsigned long long)i,
                     (double)got[i], (double)sentinel(i));
}

/* A linear buffer of n + N_SENTINEL floats holding v[0..n) then the guard pattern. */
static uint64_t guarded_buffer(const float *v, uint64_t n)
{
    uint64_t b = ref_buffer(g_exec, n + N_SENTINEL);
    float *tmp = ref_alloc((n + N_SENTINEL) * sizeof(float));
    if (n)
        memcpy(tmp, v, n * sizeof(float));
    sentinel_fill(tmp + n, N_SENTINEL);
    ref_write(g_exec, b, tmp, n + N_SENTINEL);
    free(tmp);
    return b;
}

/* Reads buffer b (n + N_SENTINEL floats) into a new host array. */
static float *read_guarded(uint64_t b, uint64_t n)
{
    float *got = ref_alloc((n + N_SENTINEL) * sizeof(float));
    ref_read(g_exec, b, got, n + N_SENTINEL);
    return got;
}

/* Fails unless buffer b still holds v[0..n) and its guard tail. */
static void check_unchanged(uint64_t b, const float *v, uint64_t n, const char *what,
                            const char *backend)
{
    float *got = read_guarded(b, n);
    for (uint64_t i = 0; i < n; i++)
        if (ref_bits(got[i]) != ref_bits(v[i]))
            fail_msg("%s [%s] n=%llu: input element %llu changed from %.9g to %.9g", what,
                     backend, (unsigned long long)n, (unsigned long long)i, (double)v[i],
                     (double)got[i]);
    check_tail(got + n, what, backend, n);
    free(got);
}

static void free_buffer(uint64_t b)
{
    REF_OK(hg_buffer_cleanup(b));
}

/* 1 when length n is enabled by HG_TEST_MAX_LEN. */
static int len_enabled(uint64_t n)
{
    return n <= g_max_len;
}

/* |got - ref| <= ulps * ULP_REL * |ref| + TOL_ABS; NaN and infinities must match exactly. */
static int close_rel(float got, double ref, double ulps)
{
    if (isnan(ref))
        return isnan(got);
    if (isinf(ref) || isinf(got))
        return (double)got == ref;
    return fabs((double)got - ref) <= ulps * ULP_REL * fabs(ref) + TOL_ABS;
}

/* ---- double-precision references ------------------------------------------------------- */

/* IEEE 754-2019 minimum/maximum: NaN if either is NaN, -0 < +0. */
static double d_minimum(double x, double y)
{
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static double d_maximum(double x, double y)
{
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double d_sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static double d_gelu(double x)
{
    const double c = sqrt(2.0 / 3.14159265358979323846);
    return 0.5 * x * (1.0 + tanh(c * (x + 0.044715 * x * x * x)));
}

/* Map references: v = {x (a[i]), y (b[i]), p0, p1}. */
static double r_add(const double *v) { return v[0] + v[1]; }
static double r_sub(const double *v) { return v[0] - v[1]; }
static double r_mul(const double *v) { return v[0] * v[1]; }
static double r_div(const double *v) { return v[0] / v[1]; }
static double r_min(const double *v) { return d_minimum(v[0], v[1]); }
static double r_max(const double *v) { return d_maximum(v[0], v[1]); }
static double r_abs(const double *v) { return fabs(v[0]); }
static double r_neg(const double *v) { return -v[0]; }
static double r_relu(const double *v) { return d_maximum(v[0], 0.0); }
static double r_clip(const double *v) { return d_minimum(d_maximum(v[0], v[2]), v[3]); }
static double r_sadd(const double *v) { return v[0] + v[2]; }
static double r_smul(const double *v) { return v[0] * v[2]; }
static double r_fill(const double *v) { return v[2]; }
static double r_copy(const double *v) { return v[0]; }
static double r_sigmoid(const double *v) { return d_sigmoid(v[0]); }
static double r_tanh(const double *v) { return tanh(v[0]); }
static double r_gelu(const double *v) { return d_gelu(v[0]); }

/* ---- elementwise maps ------------------------------------------------------------------ */

typedef enum { SIG_BIN, SIG_UN, SIG_UN1, SIG_UN2, SIG_FILL } map_sig;
typedef enum { TOL_EXACT, TOL_ACT } tol_kind;
typedef hg_status (*bin_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
typedef hg_status (*un_fn)(uint64_t, uint64_t, uint64_t, uint64_t);
typedef hg_status (*un1_fn)(uint64_t, uint64_t, uint64_t, uint64_t, float);
typedef hg_status (*un2_fn)(uint64_t, uint64_t, uint64_t, uint64_t, float, float);
typedef hg_status (*fill_fn)(uint64_t, uint64_t, float, uint64_t);

typedef struct {
    const char *name;
    map_sig sig;
    union {
        bin_fn bin;
        un_fn un;
        un1_fn un1;
        un2_fn un2;
        fill_fn fill;
    } fn;
    tol_kind tol;
    gen_kind gen0, gen1;
    float p0, p1;        /* scalar parameters (s; lo, hi; the fill value) */
    int big;             /* also run at BIG_N */
    double (*ref)(const double *v);
} map_case;

#define FN_SIG_BIN(f) {.bin = f}
#define FN_SIG_UN(f) {.un = f}
#define FN_SIG_UN1(f) {.un1 = f}
#define FN_SIG_UN2(f) {.un2 = f}
#define FN_SIG_FILL(f) {.fill = f}

/* X(name, sig, tol, gen a, gen b, p0, p1, big, reference) */
#define MAP_CASES(X)                                                                      \
    X(vector_add_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 1, r_add)           \
    X(vector_sub_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 0, r_sub)           \
    X(vector_mul_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 0, r_mul)           \
    X(vector_div_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 0, r_div)           \
    X(vector_min_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 0, r_min)           \
    X(vector_max_f32, SIG_BIN, TOL_EXACT, GEN_MIXED, GEN_MIXED, 0, 0, 0, r_max)           \
    X(vector_abs_f32, SIG_UN, TOL_EXACT, GEN_MIXED, GEN_NONE, 0, 0, 0, r_abs)             \
    X(vector_neg_f32, SIG_UN, TOL_EXACT, GEN_MIXED, GEN_NONE, 0, 0, 0, r_neg)             \
    X(vector_relu_f32, SIG_UN, TOL_EXACT, GEN_MIXED, GEN_NONE, 0, 0, 0, r_relu)           \
    X(vector_clip_f32, SIG_UN2, TOL_EXACT, GEN_MIXED, GEN_NONE, -1.5f, 0.3f, 0, r_clip)   \
    X(scalar_add_f32, SIG_UN1, TOL_EXACT, GEN_MIXED, GEN_NONE, 0.1f, 0, 0, r_sadd)        \
    X(scalar_mul_f32, SIG_UN1, TOL_EXACT, GEN_MIXED, GEN_NONE, -3.7f, 0, 0, r_smul)       \
    X(buffer_fill, SIG_FILL, TOL_EXACT, GEN_NONE, GEN_NONE, -2.75f, 0, 0, r_fill)         \
    X(buffer_copy, SIG_UN, TOL_EXACT, GEN_MIXED, GEN_NONE, 0, 0, 0, r_copy)               \
    X(sigmoid_f32, SIG_UN, TOL_ACT, GEN_WIDE, GEN_NONE, 0, 0, 0, r_sigmoid)               \
    X(tanh_f32, SIG_UN, TOL_ACT, GEN_WIDE, GEN_NONE, 0, 0, 0, r_tanh)                     \
    X(gelu_f32, SIG_UN, TOL_ACT, GEN_WIDE, GEN_NONE, 0, 0, 0, r_gelu)

enum {
#define MAP_ENUM(name, ...) MAP_##name,
    MAP_CASES(MAP_ENUM)
#undef MAP_ENUM
    MAP_COUNT
};

static const map_case k_maps[MAP_COUNT] = {
#define MAP_ROW(name, sig, tol, g0, g1, p0, p1, big, ref) \
    {#name, sig, FN_##sig(hg_##name), tol, g0, g1, p0, p1, big, ref},
    MAP_CASES(MAP_ROW)
#undef MAP_ROW
};

/* Where the output goes: its own buffer, or the buffer of input 0 or 1 (in place). */
typedef enum { OUT_OWN, OUT_IS_A, OUT_IS_B } out_mode;
static const char *const k_out_names[] = {"c separate", "c == a", "c == b"};

/* Number of array inputs of a map signature. */
static int sig_inputs(map_sig sig)
{
    return sig == SIG_BIN ? 2 : sig == SIG_FILL ? 0 : 1;
}

/* Calls the op of row mc on the running executor. */
static hg_status map_call(const map_case *mc, uint64_t a, uint64_t b, uint64_t c, uint64_t n)
{
    switch (mc->sig) {
    case SIG_BIN:
        return mc->fn.bin(g_exec, a, b, c, n);
    case SIG_UN:
        return mc->fn.un(g_exec, a, c, n);
    case SIG_UN1:
        return mc->fn.un1(g_exec, a, c, n, mc->p0);
    case SIG_UN2:
        return mc->fn.un2(g_exec, a, c, n, mc->p0, mc->p1);
    case SIG_FILL:
        return mc->fn.fill(g_exec, c, mc->p0, n);
    }
    return HG_ERR_INTERNAL;
}

/* 1 when `got` is acceptable for the double reference `ref` under the row's tolerance. */
static int map_accepts(const map_case *mc, float got, double ref)
{
    if (mc->tol == TOL_EXACT)
        return ref_same(got, (float)ref);
    return close_rel(got, ref, TOL_ACT_ULPS);
}

/* Runs row mc on inputs in0/in1 (n elements each, as the row needs) with the output placed
 * as `mode` says; checks every element against the reference, the guard tail and the
 * untouched inputs.  If `out_copy` is not NULL, the n results are copied there. */
static void map_check(const map_case *mc, const char *backend, uint64_t n, out_mode mode,
                      const float *in0, const float *in1, float *out_copy)
{
    int n_in = sig_inputs(mc->sig);
    const float *in[2] = {in0, in1};
    uint64_t buf[2] = {0, 0};
    for (int k = 0; k < n_in; k++)
        buf[k] = guarded_buffer(in[k], n);
    uint64_t out;
    if (mode == OUT_OWN) {
        float *garbage = ref_alloc((n + N_SENTINEL) * sizeof(float));
        gen_fill(garbage, n, GEN_MODERATE, 99);
        out = guarded_buffer(garbage, n);
        free(garbage);
    } else {
        out = buf[mode == OUT_IS_A ? 0 : 1];
    }

    hg_status st = map_call(mc, buf[0], buf[1], out, n);
    if (st != HG_OK)
        fail_msg("%s [%s] n=%llu (%s): status %d (%s): %s", mc->name, backend,
                 (unsigned long long)n, k_out_names[mode], (int)st, hg_status_string(st),
                 hg_last_error());

    float *got = read_guarded(out, n);
    for (uint64_t i = 0; i < n; i++) {
        double v[4] = {n_in > 0 ? in0[i] : 0.0, n_in > 1 ? in1[i] : 0.0, mc->p0, mc->p1};
        double r = mc->ref(v);
        if (!map_accepts(mc, got[i], r))
            fail_msg("%s [%s] n=%llu (%s, parameters %.9g, %.9g): element %llu: a=%.9g (%a) "
                     "b=%.9g (%a) expected %.9g (%a, float %a) got %.9g (%a)",
                     mc->name, backend, (unsigned long long)n, k_out_names[mode], v[2], v[3],
                     (unsigned long long)i, v[0], v[0], v[1], v[1], r, r, (double)(float)r,
                     (double)got[i], (double)got[i]);
    }
    check_tail(got + n, mc->name, backend, n);
    if (out_copy && n)
        memcpy(out_copy, got, n * sizeof(float));
    free(got);

    for (int k = 0; k < n_in; k++)
        if (!(mode == OUT_IS_A && k == 0) && !(mode == OUT_IS_B && k == 1))
            check_unchanged(buf[k], in[k], n, mc->name, backend);
    for (int k = 0; k < n_in; k++)
        free_buffer(buf[k]);
    if (mode == OUT_OWN)
        free_buffer(out);
}

/* Seeded inputs for row mc at length n: *a and *b (NULL when the row has fewer inputs). */
static void map_inputs(const map_case *mc, uint64_t n, uint64_t seed, float **a, float **b)
{
    *a = *b = NULL;
    if (mc->gen0 != GEN_NONE) {
        *a = ref_alloc(n * sizeof(float));
        gen_fill(*a, n, mc->gen0, seed);
    }
    if (mc->gen1 != GEN_NONE) {
        *b = ref_alloc(n * sizeof(float));
        gen_fill(*b, n, mc->gen1, seed + 7777);
    }
}

/* Selects an engine; a build without the JIT refuses "jit" (INVALID_ARGUMENT), which
 * skips the test instead of failing it. */
static void use_backend(const char *name)
{
    hg_status st = hg_set_backend(name);
    if (st == HG_ERR_INVALID_ARGUMENT && strcmp(name, "jit") == 0) {
        print_message("skipped: %s\n", hg_last_error());
        skip();
    }
    REF_OK(st);
}

/* Parameter of a registered test: the engine, the row of its family table, the test. */
typedef struct op_param {
    const char *backend;
    int index;
    void (*run)(const struct op_param *p);
} op_param;

/* One map row over every length, with the output separate and in place. */
static void test_map(const op_param *p)
{
    const map_case *mc = &k_maps[p->index];
    int n_in = sig_inputs(mc->sig);
    for (size_t li = 0; li <= N_LENGTHS; li++) {
        uint64_t n = li < N_LENGTHS ? k_lengths[li] : BIG_N;
        if ((li == N_LENGTHS && !mc->big) || !len_enabled(n))
            continue;
        float *a, *b;
        map_inputs(mc, n, 1000 * (uint64_t)p->index + li, &a, &b);
        map_check(mc, p->backend, n, OUT_OWN, a, b, NULL);
        if (n_in >= 1)
            map_check(mc, p->backend, n, OUT_IS_A, a, b, NULL);
        if (n_in >= 2)
            map_check(mc, p->backend, n, OUT_IS_B, a, b, NULL);
        free(a);
        free(b);
    }
}

/* The scalar parameters are call arguments, not baked into a cached kernel: each map with
 * parameters runs with several values (signed zeros, NaN, infinities, huge) in a row at
 * the same lengths, every result checked. */
static void test_map_parameters(const op_param *p)
{
    const float inf = INFINITY;
    static const float scalars[] = {0.1f, -3.7f, 0.0f, -0.0f, 1e30f, NAN, -INFINITY, 1e-45f};
    const float bounds[][2] = {{-1.5f, 0.3f}, {0.0f, 0.0f}, {-inf, inf}, {-0.0f, 0.0f},
                               {2.0f, 1e30f}, {-inf, -1.0f}, {1e-45f, 1e-45f}};
    static const uint64_t lens[] = {17, 1025};
    for (int m = 0; m < MAP_COUNT; m++) {
        map_case mc = k_maps[m];
        if (mc.sig != SIG_UN1 && mc.sig != SIG_UN2 && mc.sig != SIG_FILL)
            continue;
        size_t count = mc.sig == SIG_UN2 ? sizeof bounds / sizeof bounds[0]
                                         : sizeof scalars / sizeof scalars[0];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t v = 0; v < count; v++) {
                mc.p0 = mc.sig == SIG_UN2 ? bounds[v][0] : scalars[v];
                mc.p1 = mc.sig == SIG_UN2 ? bounds[v][1] : 0.0f;
                float *a, *b;
                map_inputs(&mc, lens[li], 200 + v, &a, &b);
                map_check(&mc, p->backend, lens[li], OUT_OWN, a, b, NULL);
                free(a);
                free(b);
            }
    }
}

/* The exact maps give bit-identical results under both engines (NaN == NaN).  Registered
 * as a "jit" case, so it is skipped in a build without the JIT. */
static void test_exact_maps_engines_agree(const op_param *p)
{
    (void)p;
    static const uint64_t lens[] = {17, ENGINE_CHECK_LEN, 1000000};
    for (int m = 0; m < MAP_COUNT; m++) {
        const map_case *mc = &k_maps[m];
        if (mc->tol != TOL_EXACT)
            continue;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint64_t n = lens[li];
            if (!len_enabled(n))
                continue;
            float *a, *b;
            map_inputs(mc, n, 55 + li, &a, &b);
            float *res[2];
            const char *engines[2] = {"interp", "jit"};
            for (int e = 0; e < 2; e++) {
                use_backend(engines[e]);
                res[e] = ref_alloc(n * sizeof(float));
                map_check(mc, engines[e], n, OUT_OWN, a, b, res[e]);
            }
            for (uint64_t i = 0; i < n; i++)
                if (!ref_same(res[0][i], res[1][i]))
                    fail_msg("%s n=%llu element %llu: interp %.9g (%a) != jit %.9g (%a)",
                             mc->name, (unsigned long long)n, (unsigned long long)i,
                             (double)res[0][i], (double)res[0][i], (double)res[1][i],
                             (double)res[1][i]);
            free(res[0]);
            free(res[1]);
            free(a);
            free(b);
        }
    }
}

/* ---- special values through the maps --------------------------------------------------- */

#define SPECIAL_W 10
typedef struct {
    int map;                   /* row of k_maps */
    float a[SPECIAL_W], b[SPECIAL_W];
    float want[SPECIAL_W];     /* exact expected results (NaN: any NaN) */
} special_row;

/* Fills v[0..n) by repeating pattern[0..SPECIAL_W). */
static void tile(float *v, uint64_t n, const float *pattern)
{
    for (uint64_t i = 0; i < n; i++)
        v[i] = pattern[i % SPECIAL_W];
}

/* x/0, 0/0, NaN in min/max/relu, -0 in neg/abs/min/max, infinities: the results are
 * written out here (not computed) and must match bit for bit, at a short length and
 * tiled over vector bodies and tails. */
static void test_special_maps(const op_param *p)
{
    const float inf = INFINITY, nan = NAN;
    static const uint64_t lens[] = {SPECIAL_W, 17, 1025};
    const special_row rows[] = {
        {MAP_vector_div_f32,
         {1, -1, 0, -0.0f, 3, inf, -inf, nan, 0, -5},
         {0, 0, 0, 0, -0.0f, inf, 2, 1, -0.0f, -0.0f},
         {inf, -inf, nan, nan, -inf, nan, -inf, nan, nan, inf}},
        {MAP_vector_min_f32,
         {nan, 1, nan, -0.0f, 0, -inf, 2, -0.0f, inf, 3},
         {1, nan, nan, 0, -0.0f, 5, inf, -0.0f, nan, -3},
         {nan, nan, nan, -0.0f, -0.0f, -inf, 2, -0.0f, nan, -3}},
        {MAP_vector_max_f32,
         {nan, 1, nan, -0.0f, 0, -inf, 2, -0.0f, inf, 3},
         {1, nan, nan, 0, -0.0f, 5, inf, -0.0f, nan, -3},
         {nan, nan, nan, 0, 0, 5, inf, -0.0f, nan, 3}},
        {MAP_vector_relu_f32,
         {nan, 1, -nan, -0.0f, 0, -inf, inf, -2, 1e-45f, -1e-45f},
         {0},
         {nan, 1, nan, 0, 0, 0, inf, 0, 1e-45f, 0}},
        {MAP_vector_abs_f32,
         {nan, -1, -nan, -0.0f, 0, -inf, inf, -2, 1e-45f, -1e-45f},
         {0},
         {nan, 1, nan, 0, 0, inf, inf, 2, 1e-45f, 1e-45f}},
        {MAP_vector_neg_f32,
         {nan, -1, 3, -0.0f, 0, -inf, inf, -2, 1e-45f, -1e-45f},
         {0},
         {nan, 1, -3, 0, -0.0f, inf, -inf, 2, -1e-45f, 1e-45f}},
        {MAP_vector_add_f32,
         {inf, inf, -inf, 0, -0.0f, -0.0f, FLT_MAX, nan, 1e-45f, 1},
         {-inf, inf, 1, -0.0f, -0.0f, 0, FLT_MAX, 0, -1e-45f, nan},
         {nan, inf, -inf, 0, -0.0f, 0, inf, nan, 0, nan}},
        {MAP_vector_mul_f32,
         {0, inf, -0.0f, 2, 1e-30f, -1e-30f, FLT_MAX, nan, -1, 3},
         {inf, -2, 5, -0.0f, 1e-30f, 1e-30f, 2, 0, -0.0f, 0.5f},
         {nan, -inf, -0.0f, -0.0f, 0, -0.0f, inf, nan, 0, 1.5f}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const map_case *mc = &k_maps[rows[r].map];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint64_t n = lens[li];
            float *a = ref_alloc(n * sizeof(float)), *b = ref_alloc(n * sizeof(float));
            tile(a, n, rows[r].a);
            tile(b, n, rows[r].b);
            float *got = ref_alloc(n * sizeof(float));
            map_check(mc, p->backend, n, OUT_OWN, a, b, got);
            for (uint64_t i = 0; i < n; i++)
                if (!ref_same(got[i], rows[r].want[i % SPECIAL_W]))
                    fail_msg("%s [%s] n=%llu element %llu: a=%a b=%a expected %a got %a",
                             mc->name, p->backend, (unsigned long long)n,
                             (unsigned long long)i, (double)a[i], (double)b[i],
                             (double)rows[r].want[i % SPECIAL_W], (double)got[i]);
            free(got);
            free(a);
            free(b);
        }
    }
}

/* sigmoid/tanh/gelu at extreme finite inputs, and sigmoid/tanh at +-Inf (-> 0/1, -1/1):
 * no overflow, no NaN, within the activation tolerance of the double reference
 * (sigmoid(+-100), sigmoid(+-1e30) -> 1/0, tanh(+-20) -> +-1). */
static void test_special_activations(const op_param *p)
{
    const float pattern[SPECIAL_W] = {100.0f, -100.0f, 1e30f, -1e30f, 20.0f,
                                      -20.0f, FLT_MAX, -FLT_MAX, 88.8f, -104.0f};
    const float infinities[SPECIAL_W] = {INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f,
                                         -1e-30f, 1e-45f, 9.0f, -9.0f, 0.5f};
    const int ops[] = {MAP_sigmoid_f32, MAP_tanh_f32, MAP_gelu_f32};
    static const uint64_t lens[] = {SPECIAL_W, 1025};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (int set = 0; set < (ops[o] == MAP_gelu_f32 ? 1 : 2); set++)
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                uint64_t n = lens[li];
                float *a = ref_alloc(n * sizeof(float));
                tile(a, n, set ? infinities : pattern);
                map_check(&k_maps[ops[o]], p->backend, n, OUT_OWN, a, NULL, NULL);
                free(a);
            }
}

/* ---- reductions ------------------------------------------------------------------------ */

typedef enum { RED_SUM, RED_MIN, RED_MAX } red_kind;
typedef hg_status (*red_fn)(uint64_t, uint64_t, uint64_t, uint64_t, float *);

typedef struct {
    const char *name;
    red_fn fn;
    red_kind kind;
    gen_kind gen;
    int big; /* also run at BIG_N */
} red_case;

/* X(name, kind, data, big) */
#define RED_CASES(X)                                  \
    X(reduce_sum_f32, RED_SUM, GEN_MODERATE, 1)       \
    X(reduce_min_f32, RED_MIN, GEN_MIXED, 0)          \
    X(reduce_max_f32, RED_MAX, GEN_MIXED, 0)

enum {
#define RED_ENUM(name, ...) RED_##name,
    RED_CASES(RED_ENUM)
#undef RED_ENUM
    RED_COUNT
};

static const red_case k_reds[RED_COUNT] = {
#define RED_ROW(name, kind, gen, big) {#name, hg_##name, kind, gen, big},
    RED_CASES(RED_ROW)
#undef RED_ROW
};

/* Runs reduction rc over x[0..n) and checks: the status (min/max of n = 0 is
 * INVALID_ARGUMENT with `out` untouched), the value against the double reference, the
 * returned value == out[0] bit for bit, out's guard tail, x unchanged. */
static void red_check(const red_case *rc, const char *backend, const float *x, uint64_t n)
{
    uint64_t bx = guarded_buffer(x, n);
    float init = -6.5f;
    uint64_t bout = guarded_buffer(&init, 1);
    float result = 1234.0f;
    hg_status st = rc->fn(g_exec, bx, bout, n, &result);
    float *out = read_guarded(bout, 1);
    if (n == 0 && rc->kind != RED_SUM) {
        if (st != HG_ERR_INVALID_ARGUMENT)
            fail_msg("%s [%s] n=0: status %d (%s), expected INVALID_ARGUMENT", rc->name,
                     backend, (int)st, hg_status_string(st));
        assert_true(ref_bits(out[0]) == ref_bits(init));
    } else {
        if (st != HG_OK)
            fail_msg("%s [%s] n=%llu: status %d (%s): %s", rc->name, backend,
                     (unsigned long long)n, (int)st, hg_status_string(st), hg_last_error());
        double acc = rc->kind == RED_SUM ? 0.0 : x[0], mag = 0.0;
        for (uint64_t i = 0; i < n; i++) {
            double v = x[i];
            mag += fabs(v);
            acc = rc->kind == RED_SUM   ? acc + v
                  : rc->kind == RED_MIN ? d_minimum(acc, v)
                                        : d_maximum(acc, v);
        }
        int ok;
        double tol = 0.0;
        if (rc->kind == RED_SUM) {
            tol = TOL_SUM_REL * log2(n > 2 ? (double)n : 2.0) * mag + TOL_ABS;
            ok = isnan(acc) ? isnan(result) : fabs((double)result - acc) <= tol;
            if (isinf(acc))
                ok = (double)result == acc;
        } else {
            ok = isnan(acc) ? isnan(result) : (double)result == acc;
        }
        if (!ok)
            fail_msg("%s [%s] n=%llu: expected %.17g got %.9g (|diff| %.3g, tolerance %.3g)",
                     rc->name, backend, (unsigned long long)n, acc, (double)result,
                     fabs((double)result - acc), tol);
        if (ref_bits(out[0]) != ref_bits(result))
            fail_msg("%s [%s] n=%llu: returned %a but out[0] = %a", rc->name, backend,
                     (unsigned long long)n, (double)result, (double)out[0]);
    }
    check_tail(out + 1, rc->name, backend, 1);
    free(out);
    check_unchanged(bx, x, n, rc->name, backend);
    free_buffer(bx);
    free_buffer(bout);
}

/* One reduction row over every length. */
static void test_reduce(const op_param *p)
{
    const red_case *rc = &k_reds[p->index];
    for (size_t li = 0; li <= N_LENGTHS; li++) {
        uint64_t n = li < N_LENGTHS ? k_lengths[li] : BIG_N;
        if ((li == N_LENGTHS && !rc->big) || !len_enabled(n))
            continue;
        float *x = ref_alloc(n * sizeof(float));
        gen_fill(x, n, rc->gen, 500 + 1000 * (uint64_t)p->index + li);
        red_check(rc, p->backend, x, n);
        free(x);
    }
}

/* NaN anywhere propagates through sum/min/max; infinities are handled exactly. */
static void test_special_reductions(const op_param *p)
{
    static const uint64_t lens[] = {1, 2, 17, 1000, 1025};
    for (int r = 0; r < RED_COUNT; r++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint64_t n = lens[li];
            float *x = ref_alloc(n * sizeof(float));
            const uint64_t where[] = {0, n / 2, n - 1};
            for (int w = 0; w < 3; w++) {
                gen_fill(x, n, GEN_MODERATE, 3 + li);
                x[where[w]] = NAN;
                red_check(&k_reds[r], p->backend, x, n);
                gen_fill(x, n, GEN_MODERATE, 3 + li);
                x[where[w]] = -INFINITY;
                red_check(&k_reds[r], p->backend, x, n);
                x[n - 1 - where[w]] = INFINITY; /* sum: +Inf + -Inf = NaN (or Inf at n = 1) */
                red_check(&k_reds[r], p->backend, x, n);
            }
            free(x);
        }
}

/* ---- losses ---------------------------------------------------------------------------- */

typedef hg_status (*loss_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, float *);

/* The float32 clamp bounds 1e-7 and 1 - 1e-7 (the inputs are float32, so are the bounds,
 * as with NumPy float32 arrays). */
#define P_LO ((double)1e-7f)
#define P_HI ((double)(float)(1.0 - 1e-7))

/* Per-element terms (summed, then scaled by sign/n); *mag gets |term| for the bound. */
static double t_mse(double p, double t, double *mag)
{
    double d = (p - t) * (p - t);
    *mag = d;
    return d;
}

static double t_ce(double p, double t, double *mag)
{
    double v = t * log(p > P_LO ? p : P_LO);
    *mag = fabs(v);
    return v;
}

static double t_bce(double p, double t, double *mag)
{
    double q = p < P_LO ? P_LO : p > P_HI ? P_HI : p;
    double u = t * log(q), w = (1.0 - t) * log(1.0 - q);
    *mag = fabs(u) + fabs(w);
    return u + w;
}

typedef struct {
    const char *name;
    loss_fn fn;
    gen_kind gen_p, gen_t;
    double sign; /* loss = sign * sum(term) / n */
    double (*term)(double p, double t, double *mag);
} loss_case;

/* X(name, data p, data t, sign, term) */
#define LOSS_CASES(X)                                                          \
    X(mse_loss_f32, GEN_MODERATE, GEN_MODERATE, 1.0, t_mse)                    \
    X(cross_entropy_loss_f32, GEN_PROB, GEN_PROB, -1.0, t_ce)                  \
    X(binary_cross_entropy_loss_f32, GEN_PROB, GEN_PROB, -1.0, t_bce)

enum {
#define LOSS_ENUM(name, ...) LOSS_##name,
    LOSS_CASES(LOSS_ENUM)
#undef LOSS_ENUM
    LOSS_COUNT
};

static const loss_case k_losses[LOSS_COUNT] = {
#define LOSS_ROW(name, gp, gt, sign, term) {#name, hg_##name, gp, gt, sign, term},
    LOSS_CASES(LOSS_ROW)
#undef LOSS_ROW
};

/* Runs loss lc over (p, t)[0..n) and checks status (n = 0: INVALID_ARGUMENT), value,
 * result == out[0] bitwise, out's guard tail and unchanged inputs. */
static void loss_check(const loss_case *lc, const char *backend, const float *pv,
                       const float *tv, uint64_t n)
{
    uint64_t bp = guarded_buffer(pv, n), bt = guarded_buffer(tv, n);
    float init = -6.5f;
    uint64_t bout = guarded_buffer(&init, 1);
    float result = 1234.0f;
    hg_status st = lc->fn(g_exec, bp, bt, bout, n, &result);
    float *out = read_guarded(bout, 1);
    if (n == 0) {
        if (st != HG_ERR_INVALID_ARGUMENT)
            fail_msg("%s [%s] n=0: status %d (%s), expected INVALID_ARGUMENT", lc->name,
                     backend, (int)st, hg_status_string(st));
        assert_true(ref_bits(out[0]) == ref_bits(init));
    } else {
        if (st != HG_OK)
            fail_msg("%s [%s] n=%llu: status %d (%s): %s", lc->name, backend,
                     (unsigned long long)n, (int)st, hg_status_string(st), hg_last_error());
        double sum = 0.0, mag = 0.0;
        for (uint64_t i = 0; i < n; i++) {
            double m;
            sum += lc->term(pv[i], tv[i], &m);
            mag += m;
        }
        double want = lc->sign * sum / (double)n;
        double tol = TOL_SUM_REL * log2(n > 2 ? (double)n : 2.0) * mag / (double)n + TOL_ABS;
        if (!(fabs((double)result - want) <= tol))
            fail_msg("%s [%s] n=%llu: expected %.17g got %.9g (|diff| %.3g, tolerance %.3g)",
                     lc->name, backend, (unsigned long long)n, want, (double)result,
                     fabs((double)result - want), tol);
        if (ref_bits(out[0]) != ref_bits(result))
            fail_msg("%s [%s] n=%llu: returned %a but out[0] = %a", lc->name, backend,
                     (unsigned long long)n, (double)result, (double)out[0]);
    }
    check_tail(out + 1, lc->name, backend, 1);
    free(out);
    check_unchanged(bp, pv, n, lc->name, backend);
    check_unchanged(bt, tv, n, lc->name, backend);
    free_buffer(bp);
    free_buffer(bt);
    free_buffer(bout);
}

/* One loss row over every length. */
static void test_loss(const op_param *p)
{
    const loss_case *lc = &k_losses[p->index];
    for (size_t li = 0; li < N_LENGTHS; li++) {
        uint64_t n = k_lengths[li];
        if (!len_enabled(n))
            continue;
        float *pv = ref_alloc(n * sizeof(float)), *tv = ref_alloc(n * sizeof(float));
        gen_fill(pv, n, lc->gen_p, 700 + 1000 * (uint64_t)p->index + li);
        gen_fill(tv, n, lc->gen_t, 900 + 1000 * (uint64_t)p->index + li);
        loss_check(lc, p->backend, pv, tv, n);
        free(pv);
        free(tv);
    }
}

/* The clamps: p = 0 and p = 1 with t = 0 and 1 give finite losses (log of the float32
 * bounds), at a short length and tiled. */
static void test_special_losses(const op_param *p)
{
    const float pv[SPECIAL_W] = {0, 1, 0, 1, 0.5f, 1e-30f, 0.99999994f, 1e-8f, 0, 1};
    const float tv[SPECIAL_W] = {1, 0, 0, 1, 0, 1, 0, 1, 0.5f, 0.5f};
    static const uint64_t lens[] = {1, 2, 4, SPECIAL_W, 1025};
    for (int l = 0; l < LOSS_COUNT; l++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint64_t n = lens[li];
            float *a = ref_alloc(n * sizeof(float)), *b = ref_alloc(n * sizeof(float));
            tile(a, n, pv);
            tile(b, n, tv);
            loss_check(&k_losses[l], p->backend, a, b, n);
            free(a);
            free(b);
        }
}

/* ---- softmax --------------------------------------------------------------------------- */

/* Runs softmax over x[0..n) (y separate or y == x) and checks every element within the
 * softmax tolerance of the double reference, the guard tail and the untouched input. */
static void softmax_check(const char *backend, const float *x, uint64_t n, out_mode mode)
{
    uint64_t bx = guarded_buffer(x, n), by = bx;
    if (mode == OUT_OWN) {
        float *garbage = ref_alloc((n + N_SENTINEL) * sizeof(float));
        gen_fill(garbage, n, GEN_MIXED, 5);
        by = guarded_buffer(garbage, n);
        free(garbage);
    }
    hg_status st = hg_softmax_f32(g_exec, bx, by, n);
    float *got = read_guarded(by, n);
    if (n == 0) {
        if (st != HG_ERR_INVALID_ARGUMENT)
            fail_msg("softmax_f32 [%s] n=0: status %d (%s), expected INVALID_ARGUMENT",
                     backend, (int)st, hg_status_string(st));
    } else {
        if (st != HG_OK)
            fail_msg("softmax_f32 [%s] n=%llu (%s): status %d (%s): %s", backend,
                     (unsigned long long)n, k_out_names[mode], (int)st, hg_status_string(st),
                     hg_last_error());
        double m = x[0], s = 0.0;
        for (uint64_t i = 1; i < n; i++)
            m = x[i] > m ? x[i] : m;
        for (uint64_t i = 0; i < n; i++)
            s += exp((double)x[i] - m);
        for (uint64_t i = 0; i < n; i++) {
            double r = exp((double)x[i] - m) / s;
            if (!close_rel(got[i], r, TOL_SOFTMAX_ULPS))
                fail_msg("softmax_f32 [%s] n=%llu (%s): element %llu: x=%.9g max=%.9g "
                         "expected %.9g got %.9g",
                         backend, (unsigned long long)n, k_out_names[mode],
                         (unsigned long long)i, (double)x[i], m, r, (double)got[i]);
        }
        if (n == 1 && got[0] != 1.0f)
            fail_msg("softmax_f32 [%s] n=1: x=%.9g gave %.9g, expected exactly 1", backend,
                     (double)x[0], (double)got[0]);
    }
    check_tail(got + n, "softmax_f32", backend, n);
    free(got);
    if (mode == OUT_OWN || n == 0)
        check_unchanged(bx, x, n, "softmax_f32", backend);
    free_buffer(bx);
    if (by != bx)
        free_buffer(by);
}

/* Softmax over every length, separate and in place, on data in [-90, 90]. */
static void test_softmax(const op_param *p)
{
    for (size_t li = 0; li < N_LENGTHS; li++) {
        uint64_t n = k_lengths[li];
        if (!len_enabled(n))
            continue;
        float *x = ref_alloc(n * sizeof(float));
        gen_fill(x, n, GEN_WIDE, 300 + li);
        softmax_check(p->backend, x, n, OUT_OWN);
        softmax_check(p->backend, x, n, OUT_IS_A);
        free(x);
    }
}

/* Large inputs (+-1e30, +-FLT_MAX) stay finite and exact enough; n = 1 gives 1.0. */
static void test_special_softmax(const op_param *p)
{
    const float pattern[SPECIAL_W] = {1e30f, 1e30f, -1e30f, 0, 5, -FLT_MAX,
                                      -1e30f, 1e30f, 3e29f, 1e30f};
    const float huge[3] = {FLT_MAX, -FLT_MAX, 0};
    const float singles[] = {0, 1e30f, -1e30f, -90, 90, FLT_MAX, -FLT_MAX};
    static const uint64_t lens[] = {4, SPECIAL_W, 1025};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        float *x = ref_alloc(lens[li] * sizeof(float));
        tile(x, lens[li], pattern);
        softmax_check(p->backend, x, lens[li], OUT_OWN);
        softmax_check(p->backend, x, lens[li], OUT_IS_A);
        free(x);
    }
    softmax_check(p->backend, huge, 3, OUT_OWN);
    for (size_t i = 0; i < sizeof singles / sizeof singles[0]; i++)
        softmax_check(p->backend, &singles[i], 1, OUT_OWN);
    float *same = ref_alloc(1000 * sizeof(float));
    for (int i = 0; i < 1000; i++)
        same[i] = 42.0f;
    softmax_check(p->backend, same, 1000, OUT_IS_A);
    free(same);
}

/* ---- contractions ---------------------------------------------------------------------- */

/* Checks c[m x n] (row-major, read with its guard tail) against A[m x k] * B[k x n] in
 * double with the gemm tolerance; k = 0 must give exact zeros. */
static void contraction_verify(const char *what, const char *backend, const float *a,
                               const float *b, const float *c, uint64_t m, uint64_t n,
                               uint64_t k)
{
    double amax = 0.0, bmax = 0.0;
    for (uint64_t i = 0; i < m * k; i++)
        amax = fmax(amax, fabs(a[i]));
    for (uint64_t i = 0; i < k * n; i++)
        bmax = fmax(bmax, fabs(b[i]));
    double tol = TOL_GEMM_REL * (double)k * amax * bmax;
    for (uint64_t i = 0; i < m; i++)
        for (uint64_t j = 0; j < n; j++) {
            double r = 0.0;
            for (uint64_t q = 0; q < k; q++)
                r += (double)a[i * k + q] * b[q * n + j];
            double got = c[i * n + j];
            if (!(fabs(got - r) <= tol))
                fail_msg("%s [%s] (m=%llu n=%llu k=%llu): C[%llu][%llu] expected %.9g got "
                         "%.9g (tolerance %.3g)",
                         what, backend, (unsigned long long)m, (unsigned long long)n,
                         (unsigned long long)k, (unsigned long long)i, (unsigned long long)j,
                         r, got, tol);
        }
    check_tail(c + m * n, what, backend, m * n);
}

/* Runs gemm (is_gemm) or matvec (n == 1, B = x) on seeded A, B with a garbage-filled
 * output that must be fully overwritten. */
static void contraction_check(const char *backend, int is_gemm, uint64_t m, uint64_t n,
                              uint64_t k, uint64_t seed)
{
    const char *what = is_gemm ? "gemm_f32" : "matvec_f32";
    float *a = ref_alloc(m * k * sizeof(float)), *b = ref_alloc(k * n * sizeof(float));
    float *garbage = ref_alloc((m * n + N_SENTINEL) * sizeof(float));
    gen_fill(a, m * k, GEN_MODERATE, seed);
    gen_fill(b, k * n, GEN_MODERATE, seed + 1);
    gen_fill(garbage, m * n, GEN_MIXED, seed + 2);
    uint64_t ba = guarded_buffer(a, m * k), bb = guarded_buffer(b, k * n);
    uint64_t bc = guarded_buffer(garbage, m * n);
    hg_status st = is_gemm ? hg_gemm_f32(g_exec, ba, bb, bc, m, n, k)
                           : hg_matvec_f32(g_exec, ba, bb, bc, m, k);
    if (st != HG_OK)
        fail_msg("%s [%s] (m=%llu n=%llu k=%llu): status %d (%s): %s", what, backend,
                 (unsigned long long)m, (unsigned long long)n, (unsigned long long)k, (int)st,
                 hg_status_string(st), hg_last_error());
    float *c = read_guarded(bc, m * n);
    contraction_verify(what, backend, a, b, c, m, n, k);
    free(c);
    check_unchanged(ba, a, m * k, what, backend);
    check_unchanged(bb, b, k * n, what, backend);
    free_buffer(ba);
    free_buffer(bb);
    free_buffer(bc);
    free(a);
    free(b);
    free(garbage);
}

/* gemm over the listed (m, n, k) shapes, including empty ones. */
static void test_gemm(const op_param *p)
{
    static const uint64_t shapes[][3] = {{1, 1, 1},     {2, 3, 4},     {16, 16, 16},
                                         {17, 33, 9},   {64, 64, 64},  {128, 1, 256},
                                         {1, 128, 64},  {100, 100, 100}, {0, 5, 5},
                                         {5, 0, 5},     {5, 5, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        contraction_check(p->backend, 1, shapes[s][0], shapes[s][1], shapes[s][2], 40 + s);
}

/* matvec y[m] = A[m x n] x[n] over the listed (m, n) shapes. */
static void test_matvec(const op_param *p)
{
    static const uint64_t shapes[][2] = {{1, 1}, {17, 33}, {1000, 1000}, {64, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        contraction_check(p->backend, 0, shapes[s][0], 1, shapes[s][1], 80 + s);
}

/* ---- boundary buffers as operands ------------------------------------------------------ */

/* Maps and a reduction over whole boundary classes (3,072 floats, windows onto the
 * executor's boundary pool), and an in-place op through two handles of one class (they
 * share memory, so a (3, 16, 16) window aliases the first 64 floats of class 3). */
static void test_boundary_operands(const op_param *p)
{
    const uint64_t len = HG_BOUNDARY_CLASS_BYTES / sizeof(float), win = 64;
    uint64_t ba, bb, bc, bw;
    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 3, HG_BOUNDARY_PAGES,
                                                HG_BOUNDARY_PAGE_BYTES, &ba));
    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 4, HG_BOUNDARY_PAGES,
                                                HG_BOUNDARY_PAGE_BYTES, &bb));
    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 5, HG_BOUNDARY_PAGES,
                                                HG_BOUNDARY_PAGE_BYTES, &bc));
    float *a = ref_alloc(len * sizeof(float)), *b = ref_alloc(len * sizeof(float));
    float *c = ref_alloc(len * sizeof(float)), *got = ref_alloc(len * sizeof(float));
    gen_fill(a, len, GEN_WIDE, 61);
    gen_fill(b, len, GEN_MIXED, 62);
    gen_fill(c, len, GEN_MIXED, 63);
    ref_write(g_exec, ba, a, len);
    ref_write(g_exec, bb, b, len);
    static const uint64_t lens[] = {1, 17, 1024, 3072};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        uint64_t n = lens[li];
        ref_write(g_exec, bc, c, len);
        REF_OK(hg_vector_add_f32(g_exec, ba, bb, bc, n));
        ref_read(g_exec, bc, got, len);
        for (uint64_t i = 0; i < len; i++) {
            float want = i < n ? (float)((double)a[i] + b[i]) : c[i];
            if (!ref_same(got[i], want))
                fail_msg("vector_add_f32 [%s] boundary n=%llu: element %llu expected %a got %a",
                         p->backend, (unsigned long long)n, (unsigned long long)i,
                         (double)want, (double)got[i]);
        }
    }
    REF_OK(hg_sigmoid_f32(g_exec, ba, bc, len));
    ref_read(g_exec, bc, got, len);
    for (uint64_t i = 0; i < len; i++)
        if (!close_rel(got[i], d_sigmoid(a[i]), TOL_ACT_ULPS))
            fail_msg("sigmoid_f32 [%s] boundary: element %llu x=%.9g expected %.9g got %.9g",
                     p->backend, (unsigned long long)i, (double)a[i], d_sigmoid(a[i]),
                     (double)got[i]);
    uint64_t out = ref_buffer(g_exec, 1);
    float r;
    REF_OK(hg_reduce_sum_f32(g_exec, ba, out, len, &r));
    double sum = 0.0, mag = 0.0;
    for (uint64_t i = 0; i < len; i++) {
        sum += a[i];
        mag += fabs(a[i]);
    }
    double tol = TOL_SUM_REL * log2((double)len) * mag + TOL_ABS;
    if (!(fabs((double)r - sum) <= tol))
        fail_msg("reduce_sum_f32 [%s] boundary: expected %.17g got %.9g (tolerance %.3g)",
                 p->backend, sum, (double)r, tol);

    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 3, 16, 16, &bw));
    ref_write(g_exec, ba, a, len); /* the new window was zero-filled, over ba's start */
    REF_OK(hg_vector_neg_f32(g_exec, ba, bw, win));
    ref_read(g_exec, ba, got, len);
    for (uint64_t i = 0; i < len; i++) {
        float want = i < win ? -a[i] : a[i];
        if (!ref_same(got[i], want))
            fail_msg("vector_neg_f32 [%s] class-3 window onto class 3: element %llu expected "
                     "%a got %a",
                     p->backend, (unsigned long long)i, (double)want, (double)got[i]);
    }
    uint64_t all[] = {ba, bb, bc, bw, out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free_buffer(all[i]);
    free(a);
    free(b);
    free(c);
    free(got);
}

/* ---- fixtures and registration ---------------------------------------------------------- */

/* Creates the test's executor. */
static int engine_setup(void **state)
{
    (void)state;
    hg_status st = hg_new_executor(&g_exec);
    if (st != HG_OK) {
        print_error("hg_new_executor: %s: %s\n", hg_status_string(st), hg_last_error());
        return -1;
    }
    return 0;
}

/* Frees the test's executor (and anything a failed test left behind). */
static int engine_teardown(void **state)
{
    (void)state;
    hg_status st = hg_executor_cleanup(g_exec);
    g_exec = 0;
    return st == HG_OK ? 0 : -1;
}

/* Selects the test's engine (skipping the test when the build lacks it) and runs it.
 * Under "jit" the kernel cache must have been consulted and no call may have fallen back
 * to the interpreter (a fallback would pass the checks without testing the JIT). */
static void run_case(void **state)
{
    const op_param *p = *state;
    use_backend(p->backend);
    hg_cache_stats before, after;
    REF_OK(hg_cache_stats_get(&before));
    p->run(p);
    if (strcmp(p->backend, "jit") != 0)
        return;
    REF_OK(hg_cache_stats_get(&after));
    if (after.fallbacks != before.fallbacks)
        fail_msg("[jit] %llu call(s) fell back to the interpreter",
                 (unsigned long long)(after.fallbacks - before.fallbacks));
    if (after.hits + after.misses <= before.hits + before.misses)
        fail_msg("[jit] no call went through the kernel cache (hits %llu, misses %llu)",
                 (unsigned long long)after.hits, (unsigned long long)after.misses);
}

#define ENGINE_TEST(label, func, idx, engine)                                 \
    {label " [" engine "]", run_case, engine_setup, engine_teardown,         \
     &(op_param){engine, idx, func}}
#define BOTH_ENGINES(label, func, idx) \
    ENGINE_TEST(label, func, idx, "interp"), ENGINE_TEST(label, func, idx, "jit")
#define MAP_TESTS(name, ...) BOTH_ENGINES(#name, test_map, MAP_##name),
#define RED_TESTS(name, ...) BOTH_ENGINES(#name, test_reduce, RED_##name),
#define LOSS_TESTS(name, ...) BOTH_ENGINES(#name, test_loss, LOSS_##name),

int main(void)
{
    const char *max_len = getenv("HG_TEST_MAX_LEN");
    if (max_len && *max_len)
        g_max_len = strtoull(max_len, NULL, 10);

    const struct CMUnitTest tests[] = {
        MAP_CASES(MAP_TESTS)
        RED_CASES(RED_TESTS)
        LOSS_CASES(LOSS_TESTS)
        BOTH_ENGINES("scalar parameters vary between calls", test_map_parameters, 0),
        BOTH_ENGINES("softmax_f32", test_softmax, 0),
        BOTH_ENGINES("gemm_f32", test_gemm, 0),
        BOTH_ENGINES("matvec_f32", test_matvec, 0),
        BOTH_ENGINES("special values: maps", test_special_maps, 0),
        BOTH_ENGINES("special values: activations", test_special_activations, 0),
        BOTH_ENGINES("special values: reductions", test_special_reductions, 0),
        BOTH_ENGINES("special values: losses", test_special_losses, 0),
        BOTH_ENGINES("special values: softmax", test_special_softmax, 0),
        BOTH_ENGINES("boundary buffers as operands", test_boundary_operands, 0),
        ENGINE_TEST("exact maps: interp and jit agree bitwise", test_exact_maps_engines_agree,
                    0, "jit"),
    };
    int failed = cmocka_run_group_tests_name("ops", tests, NULL, NULL);
    hg_cache_stats cs;
    if (hg_cache_stats_get(&cs) == HG_OK)
        printf("kernel cache after the suite: %llu hits, %llu misses, %llu compiles "
               "(%.1f ms), %llu disk loads (%.2f ms), %llu evictions, %llu entries, "
               "%llu fallbacks\n",
               (unsigned long long)cs.hits, (unsigned long long)cs.misses,
               (unsigned long long)cs.compiles, cs.compile_seconds * 1e3,
               (unsigned long long)cs.disk_loads, cs.disk_load_seconds * 1e3,
               (unsigned long long)cs.evictions, (unsigned long long)cs.entries,
               (unsigned long long)cs.fallbacks);
    hg_clear_all_registries();
    return failed;
}
