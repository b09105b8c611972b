/*
 * bench/ref_loops.h — plain C reference loops for the benchmarks: "the compiler's best
 * static effort".  bench/ref_loops.c is compiled with -O3 -march=native in its own
 * translation unit; every loop is the obvious scalar C a programmer would write (float
 * arithmetic, expf/logf/tanhf from libm, a float accumulator), left to gcc to vectorize.
 *
 * Each op of canon/ops.def with a public elementwise, reduction or loss signature gets two
 * loops generated from its row's expression: `f32` (timed) and `f64` (the same math in
 * double; used only to check results, never timed).
 */
#ifndef HG_BENCH_REF_LOOPS_H
#define HG_BENCH_REF_LOOPS_H

#include <stddef.h>

/* One reference loop over x0, x1 (unused ones may be NULL): maps and softmax write
 * out[0..n); reductions and losses return their scalar result (maps return 0).  `scale`
 * receives sum |term| of a summing loop (f64 loops only; the f32 loops leave it alone). */
typedef double (*ref_fn)(const float *x0, const float *x1, float *out, size_t n, float p0,
                         float p1, double *scale);

typedef struct ref_op {
    const char *name; /* ops.def name, e.g. "sigmoid_f32" */
    ref_fn f32;       /* timed: float arithmetic and libm float functions */
    ref_fn f64;       /* check: double arithmetic and libm double functions */
} ref_op;

/* The loop pair of op `name`, or NULL when ops.def has no such elementwise/reduction/loss
 * op. */
const ref_op *ref_find(const char *name);

/* Row-major C[m x n] = A[m x k] * B[k x n]: i-k-j order, float accumulation in C. */
void ref_gemm_f32(const float *a, const float *b, float *c, size_t m, size_t n, size_t k);
/* The same product with double dot products, rounded to float (check only). */
void ref_gemm_f64(const float *a, const float *b, float *c, size_t m, size_t n, size_t k);
/* Row-major y[m] = A[m x n] * x[n]: one float dot product per row. */
void ref_matvec_f32(const float *a, const float *x, float *y, size_t m, size_t n);
/* The same with double dot products, rounded to float (check only). */
void ref_matvec_f64(const float *a, const float *x, float *y, size_t m, size_t n);

/* The compiler that built the reference loops (its __VERSION__). */
const char *ref_compiler(void);

#endif /* HG_BENCH_REF_LOOPS_H */
