/*
 * bench/ref_loops.c — the plain C reference loops (see ref_loops.h).  Compiled with
 * -O3 -march=native (bench/CMakeLists.txt); -std=c11 keeps gcc from contracting a*b+c
 * into FMA and from reassociating float sums, exactly as for any portable C program.
 */
#include "ref_loops.h"

#include <math.h>
#include <string.h>

#define REF_T float
#define REF_SFX f32
#define REF_EXP expf
#define REF_LOG logf
#define REF_TANH tanhf
#define REF_FABS fabsf
#define REF_SCALE(v) ((void)0)
#include "ref_template.h"
#undef REF_T
#undef REF_SFX
#undef REF_EXP
#undef REF_LOG
#undef REF_TANH
#undef REF_FABS
#undef REF_SCALE

#define REF_T double
#define REF_SFX f64
#define REF_EXP exp
#define REF_LOG log
#define REF_TANH tanh
#define REF_FABS fabs
#define REF_SCALE(v) (*scale += fabs(v))
#include "ref_template.h"
#undef REF_T
#undef REF_SFX
#undef REF_EXP
#undef REF_LOG
#undef REF_TANH
#undef REF_FABS
#undef REF_SCALE

#define REF_ROW_BIN(name) {#name, ref_##name##_f32, ref_##name##_f64},
#define REF_ROW_UN REF_ROW_BIN
#define REF_ROW_UN1 REF_ROW_BIN
#define REF_ROW_UN2 REF_ROW_BIN
#define REF_ROW_RED REF_ROW_BIN
#define REF_ROW_LOSS REF_ROW_BIN
#define REF_ROW_FILL(name)
#define REF_ROW_COPY REF_ROW_FILL
#define REF_ROW_GEMM REF_ROW_FILL
#define REF_ROW_MATVEC REF_ROW_FILL

static const ref_op ref_ops[] = {
#define HG_OP(name, family, sig, ...) REF_ROW_##sig(name)
#include "canon/ops.def"
#undef HG_OP
};

const ref_op *ref_find(const char *name) {
    for (size_t i = 0; i < sizeof ref_ops / sizeof ref_ops[0]; i++)
        if (strcmp(ref_ops[i].name, name) == 0)
            return &ref_ops[i];
    return NULL;
}

void ref_gemm_f32(const float *restrict a, const float *restrict b, float *restrict c,
                  size_t m, size_t n, size_t k) {
    for (size_t i = 0; i < m; i++) {
        float *ci = c + i * n;
        for (size_t j = 0; j < n; j++)
            ci[j] = 0.0f;
        for (size_t p = 0; p < k; p++) {
            float aip = a[i * k + p];
            const float *bp = b + p * n;
            for (size_t j = 0; j < n; j++)
                ci[j] += aip * bp[j];
        }
    }
}

void ref_gemm_f64(const float *restrict a, const float *restrict b, float *restrict c,
                  size_t m, size_t n, size_t k) {
    enum { BLOCK = 256 }; /* columns of C accumulated in double at a time */
    double acc[BLOCK];
    for (size_t i = 0; i < m; i++)
        for (size_t j0 = 0; j0 < n; j0 += BLOCK) {
            size_t w = n - j0 < BLOCK ? n - j0 : BLOCK;
            for (size_t j = 0; j < w; j++)
                acc[j] = 0;
            for (size_t p = 0; p < k; p++) {
                double aip = a[i * k + p];
                const float *bp = b + p * n + j0;
                for (size_t j = 0; j < w; j++)
                    acc[j] += aip * bp[j];
            }
            for (size_t j = 0; j < w; j++)
                c[i * n + j0 + j] = (float)acc[j];
        }
}

void ref_matvec_f32(const float *restrict a, const float *restrict x, float *restrict y,
                    size_t m, size_t n) {
    for (size_t i = 0; i < m; i++) {
        float s = 0.0f;
        for (size_t j = 0; j < n; j++)
            s += a[i * n + j] * x[j];
        y[i] = s;
    }
}

void ref_matvec_f64(const float *restrict a, const float *restrict x, float *restrict y,
                    size_t m, size_t n) {
    for (size_t i = 0; i < m; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += (double)a[i * n + j] * x[j];
        y[i] = (float)s;
    }
}

const char *ref_compiler(void) {
    return "gcc " __VERSION__;
}
