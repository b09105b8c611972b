/*
 * bench/stream_ref.c — the C baseline of bench/parallel.py's streams: c = a op b with
 * non-temporal stores (the compiler's vector loop for the head up to a 64-byte boundary of
 * c, then _mm512_stream_ps or _mm256_stream_ps, then an sfence).  Built by parallel.py with
 * cc -O3 -march=native -shared.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

void ref_add_nt(const float *a, const float *b, float *c, size_t n);
void ref_mul_nt(const float *a, const float *b, float *c, size_t n);

#if defined(__AVX512F__)
#define REF_VL 16
#define REF_STREAM(op)                                                                   \
    _mm512_stream_ps(c + i, _mm512_##op##_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)))
#else
#define REF_VL 8
#define REF_STREAM(op)                                                                   \
    _mm256_stream_ps(c + i, _mm256_##op##_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)))
#endif

#define REF_NT(name, op, expr)                                                           \
    void name(const float *a, const float *b, float *c, size_t n) {                      \
        size_t i = 0;                                                                    \
        for (; i < n && ((uintptr_t)(c + i) & 63) != 0; i++)                             \
            c[i] = expr;                                                                 \
        for (; i + REF_VL <= n; i += REF_VL)                                             \
            REF_STREAM(op);                                                              \
        for (; i < n; i++)                                                               \
            c[i] = expr;                                                                 \
        _mm_sfence();                                                                    \
    }

REF_NT(ref_add_nt, add, a[i] + b[i])
REF_NT(ref_mul_nt, mul, a[i] * b[i])
