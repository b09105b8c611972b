/*
 * jit/lower_math.c — exp, log, tanh and pow emitted as LLVM IR, operation for operation the
 * sequences of canon/scalar.h (llvm.fma where it calls fma/fmaf, llvm.floor for floorf,
 * double lanes where pow works in double, bitcasts for its bit tricks,
 * selects for its conditionals), so JIT kernels and the interpreter agree bit for bit and
 * kernels call no libm.  The substitutions, on AVX-512 and provably the same values: exp's
 * final scaling by 2^k as vscalefps, log's split x = m * 2^e as vgetmantps / vgetexpps and
 * its special cases as vfixupimmps.  Every emitter works on a float or a float vector.
 */
#include <string.h>

#include "../canon/scalar.h"
#include "jit_internal.h"

unsigned jit_width(LLVMValueRef v) {
    LLVMTypeRef t = LLVMTypeOf(v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMGetVectorSize(t) : 1;
}

/* `c` as a scalar, or a vector of w copies of it. */
static LLVMValueRef jit_splat_const(LLVMValueRef c, unsigned w) {
    if (w == 1)
        return c;
    LLVMValueRef lanes[64];
    for (unsigned i = 0; i < w; i++)
        lanes[i] = c;
    return LLVMConstVector(lanes, w);
}

LLVMValueRef jit_fconst(jit_ir *ir, float c, unsigned w) {
    /* By bits, so NaN payloads and -0 are exact. */
    LLVMValueRef bits = LLVMConstInt(ir->i32, canon_f2u(c), 0);
    return jit_splat_const(LLVMConstBitCast(bits, ir->f32), w);
}

LLVMValueRef jit_iconst(jit_ir *ir, uint32_t c, unsigned w) {
    return jit_splat_const(LLVMConstInt(ir->i32, c, 0), w);
}

LLVMValueRef jit_intrinsic(jit_ir *ir, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
                           unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(ir->mod, id, &ty, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(ir->ctx, id, &ty, 1);
    return LLVMBuildCall2(ir->b, fty, fn, args, n, "");
}

/* Type of an i32 with the shape of v (scalar or vector). */
static LLVMTypeRef jit_int_like(jit_ir *ir, LLVMValueRef v) {
    unsigned w = jit_width(v);
    return w == 1 ? ir->i32 : LLVMVectorType(ir->i32, w);
}

/* Float type with the shape of v. */
static LLVMTypeRef jit_float_like(jit_ir *ir, LLVMValueRef v) {
    unsigned w = jit_width(v);
    return w == 1 ? ir->f32 : LLVMVectorType(ir->f32, w);
}

/* fmaf(a, b, c) as llvm.fma. */
static LLVMValueRef jit_fma(jit_ir *ir, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return jit_intrinsic(ir, "llvm.fma", LLVMTypeOf(a), args, 3);
}

/* cond ? a : b where cond is `x pred c` on floats. */
static LLVMValueRef jit_fsel(jit_ir *ir, LLVMRealPredicate pred, LLVMValueRef x,
                             LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(ir->b, LLVMBuildFCmp(ir->b, pred, x, c, ""), a, b, "");
}

static LLVMValueRef jit_f2u(jit_ir *ir, LLVMValueRef x) {
    return LLVMBuildBitCast(ir->b, x, jit_int_like(ir, x), "");
}
static LLVMValueRef jit_u2f(jit_ir *ir, LLVMValueRef u) {
    return LLVMBuildBitCast(ir->b, u, jit_float_like(ir, u), "");
}

/* canon_exp_split_f32: returns k (i32 lanes), r in *r and k as a float in *kf. */
static LLVMValueRef jit_exp_split(jit_ir *ir, LLVMValueRef x, LLVMValueRef *r,
                                  LLVMValueRef *kf_out) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(x);
    LLVMValueRef magic = jit_fconst(ir, CANON_RINT_MAGIC, w);
    LLVMValueRef t = LLVMBuildFAdd(b, LLVMBuildFMul(b, x, jit_fconst(ir, CANON_LOG2E, w), ""),
                                   magic, "");
    LLVMValueRef kf = LLVMBuildFSub(b, t, magic, "");
    *kf_out = kf;
    *r = jit_fma(ir, kf, jit_fconst(ir, -CANON_LN2_HI, w), x);
    *r = jit_fma(ir, kf, jit_fconst(ir, -CANON_LN2_LO, w), *r);
    return LLVMBuildSub(b, jit_f2u(ir, t), jit_iconst(ir, canon_f2u(CANON_RINT_MAGIC), w), "k");
}

/* canon_expm1_poly_f32. */
static LLVMValueRef jit_expm1_poly(jit_ir *ir, LLVMValueRef r) {
    unsigned w = jit_width(r);
    static const float poly[] = {CANON_EXP_P1, CANON_EXP_P2, CANON_EXP_P3, CANON_EXP_P4,
                                 CANON_EXP_P5};
    LLVMValueRef p = jit_fconst(ir, CANON_EXP_P0, w);
    for (size_t i = 0; i < sizeof poly / sizeof poly[0]; i++)
        p = jit_fma(ir, p, r, jit_fconst(ir, poly[i], w));
    return jit_fma(ir, p, LLVMBuildFMul(ir->b, r, r, ""), r);
}

/* 2^k as a float, for k + 127 in [1, 254]. */
static LLVMValueRef jit_pow2(jit_ir *ir, LLVMValueRef k) {
    unsigned w = jit_width(k);
    LLVMValueRef e = LLVMBuildAdd(ir->b, k, jit_iconst(ir, 127, w), "");
    return jit_u2f(ir, LLVMBuildShl(ir->b, e, jit_iconst(ir, 23, w), ""));
}

/* Call of the AVX-512 intrinsic `name` (not overloaded: its type is fixed by the name). */
static LLVMValueRef jit_x86(jit_ir *ir, const char *name, LLVMValueRef *args, unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    return LLVMBuildCall2(ir->b, LLVMIntrinsicGetType(ir->ctx, id, NULL, 0),
                          LLVMGetIntrinsicDeclaration(ir->mod, id, NULL, 0), args, n, "");
}

/* The i16 write mask of all 16 lanes, and the "current rounding / no SAE" operand. */
static LLVMValueRef jit_x86_all(jit_ir *ir) {
    return LLVMConstInt(LLVMInt16TypeInContext(ir->ctx), 0xffff, 0);
}
static LLVMValueRef jit_x86_cur(jit_ir *ir) { return LLVMConstInt(ir->i32, 4, 0); }

LLVMValueRef jit_emit_exp(jit_ir *ir, LLVMValueRef x) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(x);
    LLVMValueRef hi = jit_fconst(ir, CANON_EXP_HI, w), lo = jit_fconst(ir, CANON_EXP_LO, w);
    x = jit_fsel(ir, LLVMRealOGT, x, hi, hi, x);
    x = jit_fsel(ir, LLVMRealOLT, x, lo, lo, x);
    LLVMValueRef r, kf;
    LLVMValueRef k = jit_exp_split(ir, x, &r, &kf);
    LLVMValueRef p = LLVMBuildFAdd(b, jit_expm1_poly(ir, r), jit_fconst(ir, 1.0f, w), "");
    if (ir->avx512 && w == 16) {
        /* (p * 2^k1) * 2^k2 is exact up to one final rounding (p * 2^k1 stays normal), so
         * it equals p * 2^k rounded once: vscalefps, one instruction instead of eight. */
        LLVMValueRef args[5] = {p, kf, LLVMGetPoison(LLVMTypeOf(p)), jit_x86_all(ir),
                                jit_x86_cur(ir)};
        return jit_x86(ir, "llvm.x86.avx512.mask.scalef.ps.512", args, 5);
    }
    LLVMValueRef k1 = LLVMBuildAShr(b, k, jit_iconst(ir, 1, w), "");
    LLVMValueRef k2 = LLVMBuildSub(b, k, k1, "");
    return LLVMBuildFMul(b, LLVMBuildFMul(b, p, jit_pow2(ir, k1), ""), jit_pow2(ir, k2), "exp");
}

/* canon_log_f32's decomposition of x > 0 (finite) into f (exact) and ef: its exact
 * operation sequence, with the 2^23 scaling of subnormals. */
static void jit_log_split(jit_ir *ir, LLVMValueRef x, LLVMValueRef *f, LLVMValueRef *ef) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(x);
    LLVMValueRef fmin = jit_fconst(ir, 1.17549435e-38f, w);
    LLVMValueRef one = jit_fconst(ir, 1.0f, w), zero = jit_fconst(ir, 0.0f, w);
    LLVMValueRef xs = jit_fsel(ir, LLVMRealOLT, x, fmin,
                               LLVMBuildFMul(b, x, jit_fconst(ir, 8388608.0f, w), ""), x);
    LLVMValueRef ebias = jit_fsel(ir, LLVMRealOLT, x, fmin, jit_fconst(ir, -23.0f, w), zero);
    LLVMValueRef u = jit_f2u(ir, xs);
    LLVMValueRef e = LLVMBuildAnd(b, LLVMBuildLShr(b, u, jit_iconst(ir, 23, w), ""),
                                  jit_iconst(ir, 0xffu, w), "");
    e = LLVMBuildSub(b, e, jit_iconst(ir, 126, w), "");
    LLVMValueRef m = jit_u2f(ir, LLVMBuildOr(b, LLVMBuildAnd(b, u, jit_iconst(ir, 0x007fffffu, w), ""),
                                             jit_iconst(ir, 0x3f000000u, w), ""));
    LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLT, m, jit_fconst(ir, CANON_SQRT_HALF, w), "");
    LLVMValueRef small32 = LLVMBuildZExt(b, small, jit_int_like(ir, x), "");
    *ef = LLVMBuildSIToFP(b, LLVMBuildSub(b, e, small32, ""), jit_float_like(ir, x), "");
    *ef = LLVMBuildFAdd(b, *ef, ebias, "");
    *f = LLVMBuildSelect(b, small, LLVMBuildFSub(b, LLVMBuildFAdd(b, m, m, ""), one, ""),
                         LLVMBuildFSub(b, m, one, ""), "");
}

/* The same f and ef for 16 lanes from vgetmantps / vgetexpps, which see through
 * subnormals.  With x = M * 2^E, M in [1, 2) (getmant interval 0, source sign), E exact:
 * canon_log_f32's m is M/2 and its e - small + ebias is E + 1 - small, where
 * small = M/2 < CANON_SQRT_HALF, i.e. M < 2 * CANON_SQRT_HALF (scaling by 2 is exact).
 * Hence f = M - 1 (= (m + m) - 1) when small, else M * 0.5 - 1 (= m - 1), both exact as
 * in the scalar code, and ef = E or E + 1, exact small integers. */
static void jit_log_split_avx512(jit_ir *ir, LLVMValueRef x, LLVMValueRef *f,
                                 LLVMValueRef *ef) {
    LLVMBuilderRef b = ir->b;
    LLVMValueRef poison = LLVMGetPoison(LLVMTypeOf(x));
    LLVMValueRef margs[5] = {x, LLVMConstInt(ir->i32, 0, 0), poison, jit_x86_all(ir),
                             jit_x86_cur(ir)};
    LLVMValueRef mant = jit_x86(ir, "llvm.x86.avx512.mask.getmant.ps.512", margs, 5);
    LLVMValueRef eargs[4] = {x, poison, jit_x86_all(ir), jit_x86_cur(ir)};
    LLVMValueRef ex = jit_x86(ir, "llvm.x86.avx512.mask.getexp.ps.512", eargs, 4);
    LLVMValueRef small =
        LLVMBuildFCmp(b, LLVMRealOLT, mant, jit_fconst(ir, 2.0f * CANON_SQRT_HALF, 16), "");
    LLVMValueRef ms = LLVMBuildSelect(
        b, small, mant, LLVMBuildFMul(b, mant, jit_fconst(ir, 0.5f, 16), ""), "");
    *f = LLVMBuildFSub(b, ms, jit_fconst(ir, 1.0f, 16), "");
    *ef = LLVMBuildSelect(b, small, ex, LLVMBuildFAdd(b, ex, jit_fconst(ir, 1.0f, 16), ""),
                          "");
}

/* canon_log_f32's polynomial and reconstruction from f and ef. */
static LLVMValueRef jit_log_poly(jit_ir *ir, LLVMValueRef f, LLVMValueRef ef) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(f);
    LLVMValueRef z = LLVMBuildFMul(b, f, f, "");
    static const float poly[] = {CANON_LOG_Q1, CANON_LOG_Q2, CANON_LOG_Q3, CANON_LOG_Q4,
                                 CANON_LOG_Q5, CANON_LOG_Q6, CANON_LOG_Q7, CANON_LOG_Q8};
    LLVMValueRef y = jit_fconst(ir, CANON_LOG_Q0, w);
    for (size_t i = 0; i < sizeof poly / sizeof poly[0]; i++)
        y = jit_fma(ir, y, f, jit_fconst(ir, poly[i], w));
    y = LLVMBuildFMul(b, LLVMBuildFMul(b, y, f, ""), z, "");
    y = jit_fma(ir, ef, jit_fconst(ir, CANON_LN2_LO, w), y);
    y = jit_fma(ir, z, jit_fconst(ir, -0.5f, w), y);
    LLVMValueRef r = LLVMBuildFAdd(b, f, y, "");
    return jit_fma(ir, ef, jit_fconst(ir, CANON_LN2_HI, w), r);
}

/* vfixupimmps token responses (4 bits per input class) for log's specials: QNaN and SNaN
 * give x itself, +-0 gives -Inf, +Inf gives +Inf; 1, -Inf, negative and positive values
 * keep the computed result. */
#define JIT_LOG_FIXUP 0x00500411u

LLVMValueRef jit_emit_log(jit_ir *ir, LLVMValueRef x) {
    unsigned w = jit_width(x);
    LLVMValueRef zero = jit_fconst(ir, 0.0f, w), r, f, ef;
    if (ir->avx512 && w == 16) {
        /* Getmant/getexp replace the ~17-instruction split, and one vfixupimmps replaces
         * three of the four special-case compare/selects (the x < 0 one stays: no fixup
         * response is the positive NaN canon_log_f32 returns). */
        jit_log_split_avx512(ir, x, &f, &ef);
        LLVMValueRef args[6] = {jit_log_poly(ir, f, ef), x, jit_iconst(ir, JIT_LOG_FIXUP, w),
                                LLVMConstInt(ir->i32, 0, 0), jit_x86_all(ir), jit_x86_cur(ir)};
        r = jit_x86(ir, "llvm.x86.avx512.mask.fixupimm.ps.512", args, 6);
        return jit_fsel(ir, LLVMRealOLT, x, zero, jit_fconst(ir, NAN, w), r);
    }
    jit_log_split(ir, x, &f, &ef);
    r = jit_log_poly(ir, f, ef);
    r = jit_fsel(ir, LLVMRealOEQ, x, zero, jit_fconst(ir, -INFINITY, w), r);
    r = jit_fsel(ir, LLVMRealOLT, x, zero, jit_fconst(ir, NAN, w), r);
    r = jit_fsel(ir, LLVMRealOEQ, x, jit_fconst(ir, INFINITY, w), jit_fconst(ir, INFINITY, w), r);
    return jit_fsel(ir, LLVMRealUNO, x, x, x, r);
}

LLVMValueRef jit_emit_tanh(jit_ir *ir, LLVMValueRef x) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(x);
    LLVMValueRef one = jit_fconst(ir, 1.0f, w), two = jit_fconst(ir, 2.0f, w);
    LLVMValueRef a = jit_intrinsic(ir, "llvm.fabs", LLVMTypeOf(x), &x, 1);
    LLVMValueRef y = LLVMBuildFAdd(b, a, a, "");
    LLVMValueRef yhi = jit_fconst(ir, CANON_TANH_Y_HI, w);
    y = jit_fsel(ir, LLVMRealOGT, y, yhi, yhi, y);
    LLVMValueRef r, kf;
    LLVMValueRef s = jit_pow2(ir, jit_exp_split(ir, y, &r, &kf));
    LLVMValueRef m = jit_fma(ir, s, jit_expm1_poly(ir, r), LLVMBuildFSub(b, s, one, ""));
    LLVMValueRef t = LLVMBuildFMul(b, a, a, "");
    static const float poly[] = {CANON_TANH_P4, CANON_TANH_P3, CANON_TANH_P2, CANON_TANH_P1,
                                 CANON_TANH_P0};
    LLVMValueRef p = jit_fconst(ir, CANON_TANH_P5, w);
    for (size_t i = 0; i < sizeof poly / sizeof poly[0]; i++)
        p = jit_fma(ir, p, t, jit_fconst(ir, poly[i], w));
    LLVMValueRef small = jit_fma(ir, LLVMBuildFMul(b, a, t, ""), p, a);
    LLVMValueRef large =
        LLVMBuildFSub(b, one, LLVMBuildFDiv(b, two, LLVMBuildFAdd(b, m, two, ""), ""), "");
    LLVMValueRef q =
        jit_fsel(ir, LLVMRealOLT, a, jit_fconst(ir, CANON_TANH_SMALL, w), small, large);
    LLVMValueRef sign = LLVMBuildAnd(b, jit_f2u(ir, x), jit_iconst(ir, 0x80000000u, w), "");
    q = jit_u2f(ir, LLVMBuildOr(b, jit_f2u(ir, q), sign, ""));
    return jit_fsel(ir, LLVMRealUNO, x, x, x, q);
}

/* ---- pow: canon_pow_f32, in double lanes --------------------------------------------- */

/* The double constant c, or a vector of w copies of it. */
static LLVMValueRef jit_dconst(jit_ir *ir, double c, unsigned w) {
    return jit_splat_const(LLVMConstReal(ir->f64, c), w);
}

/* The i64 constant c, or a vector of w copies of it. */
static LLVMValueRef jit_i64const(jit_ir *ir, uint64_t c, unsigned w) {
    return jit_splat_const(LLVMConstInt(ir->i64, c, 0), w);
}

/* canon_pow_log2: log2(a) for doubles a > 0 (finite, normal). */
static LLVMValueRef jit_pow_log2(jit_ir *ir, LLVMValueRef a) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(a);
    LLVMTypeRef it = w == 1 ? ir->i64 : LLVMVectorType(ir->i64, w);
    LLVMValueRef u = LLVMBuildBitCast(b, a, it, "");
    LLVMValueRef e = LLVMBuildSub(b, LLVMBuildLShr(b, u, jit_i64const(ir, 52, w), ""),
                                  jit_i64const(ir, 1023, w), "");
    LLVMValueRef mbits = LLVMBuildOr(
        b, LLVMBuildAnd(b, u, jit_i64const(ir, 0x000fffffffffffffull, w), ""),
        jit_i64const(ir, 0x3ff0000000000000ull, w), "");
    LLVMValueRef m = LLVMBuildBitCast(b, mbits, LLVMTypeOf(a), "");
    LLVMValueRef big = LLVMBuildFCmp(b, LLVMRealOGT, m, jit_dconst(ir, CANON_POW_SQRT2, w), "");
    m = LLVMBuildSelect(b, big, LLVMBuildFMul(b, m, jit_dconst(ir, 0.5, w), ""), m, "");
    LLVMValueRef ef = LLVMBuildSIToFP(b, LLVMBuildAdd(b, e, LLVMBuildZExt(b, big, it, ""), ""),
                                      LLVMTypeOf(a), "");
    LLVMValueRef one = jit_dconst(ir, 1.0, w);
    LLVMValueRef s = LLVMBuildFDiv(b, LLVMBuildFSub(b, m, one, ""), LLVMBuildFAdd(b, m, one, ""),
                                   "");
    LLVMValueRef s2 = LLVMBuildFMul(b, s, s, "");
    static const double poly[] = {CANON_POW_L6, CANON_POW_L5, CANON_POW_L4, CANON_POW_L3,
                                  CANON_POW_L2, CANON_POW_L1, CANON_POW_L0};
    LLVMValueRef p = jit_dconst(ir, CANON_POW_L7, w);
    for (size_t i = 0; i < sizeof poly / sizeof poly[0]; i++)
        p = jit_fma(ir, p, s2, jit_dconst(ir, poly[i], w));
    return jit_fma(ir, s, p, ef);
}

/* canon_pow_exp2: 2^t for doubles t in [-200, 200]. */
static LLVMValueRef jit_pow_exp2(jit_ir *ir, LLVMValueRef t) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(t);
    LLVMTypeRef it = w == 1 ? ir->i64 : LLVMVectorType(ir->i64, w);
    LLVMValueRef magic = jit_dconst(ir, CANON_POW_RINT_MAGIC, w);
    LLVMValueRef kt = LLVMBuildFAdd(b, t, magic, "");
    LLVMValueRef r = LLVMBuildFSub(b, t, LLVMBuildFSub(b, kt, magic, ""), "");
    LLVMValueRef k = LLVMBuildSub(b, LLVMBuildBitCast(b, kt, it, ""),
                                  jit_i64const(ir, canon_d2u(CANON_POW_RINT_MAGIC), w), "");
    static const double poly[] = {CANON_POW_E10, CANON_POW_E9, CANON_POW_E8, CANON_POW_E7,
                                  CANON_POW_E6,  CANON_POW_E5, CANON_POW_E4, CANON_POW_E3,
                                  CANON_POW_E2,  CANON_POW_E1, 1.0};
    LLVMValueRef p = jit_dconst(ir, CANON_POW_E11, w);
    for (size_t i = 0; i < sizeof poly / sizeof poly[0]; i++)
        p = jit_fma(ir, p, r, jit_dconst(ir, poly[i], w));
    LLVMValueRef bits = LLVMBuildAdd(b, LLVMBuildBitCast(b, p, it, ""),
                                     LLVMBuildShl(b, k, jit_i64const(ir, 52, w), ""), "");
    return LLVMBuildBitCast(b, bits, LLVMTypeOf(t), "");
}

LLVMValueRef jit_emit_pow(jit_ir *ir, LLVMValueRef x, LLVMValueRef y) {
    LLVMBuilderRef b = ir->b;
    unsigned w = jit_width(x);
    LLVMTypeRef dt = w == 1 ? ir->f64 : LLVMVectorType(ir->f64, w);
    LLVMValueRef ax = LLVMBuildFPExt(b, jit_intrinsic(ir, "llvm.fabs", LLVMTypeOf(x), &x, 1),
                                     dt, "");
    LLVMValueRef dzero = jit_dconst(ir, 0.0, w), dinf = jit_dconst(ir, INFINITY, w);
    LLVMValueRef finite = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOGT, ax, dzero, ""),
                                       LLVMBuildFCmp(b, LLVMRealOLT, ax, dinf, ""), "");
    LLVMValueRef l = jit_pow_log2(ir, LLVMBuildSelect(b, finite, ax, jit_dconst(ir, 1.0, w), ""));
    l = jit_fsel(ir, LLVMRealOEQ, ax, dzero, jit_dconst(ir, -INFINITY, w), l);
    l = jit_fsel(ir, LLVMRealOEQ, ax, dinf, dinf, l);
    LLVMValueRef t = LLVMBuildFMul(b, LLVMBuildFPExt(b, y, dt, ""), l, "");
    LLVMValueRef hi = jit_dconst(ir, CANON_POW_T_LIMIT, w), lo = jit_dconst(ir, -CANON_POW_T_LIMIT, w);
    t = jit_fsel(ir, LLVMRealOGT, t, hi, hi, t);
    t = jit_fsel(ir, LLVMRealOLT, t, lo, lo, t);
    LLVMValueRef r = LLVMBuildFPTrunc(b, jit_pow_exp2(ir, t), LLVMTypeOf(x), "");
    LLVMValueRef half = LLVMBuildFMul(b, y, jit_fconst(ir, 0.5f, w), "");
    LLVMValueRef fy = jit_intrinsic(ir, "llvm.floor", LLVMTypeOf(y), &y, 1);
    LLVMValueRef fh = jit_intrinsic(ir, "llvm.floor", LLVMTypeOf(y), &half, 1);
    LLVMValueRef y_int = LLVMBuildFCmp(b, LLVMRealOEQ, fy, y, "");
    LLVMValueRef y_odd = LLVMBuildAnd(b, y_int, LLVMBuildFCmp(b, LLVMRealUNE, fh, half, ""), "");
    LLVMValueRef x_neg_bit = LLVMBuildICmp(
        b, LLVMIntNE, LLVMBuildLShr(b, jit_f2u(ir, x), jit_iconst(ir, 31, w), ""),
        jit_iconst(ir, 0, w), "");
    r = LLVMBuildSelect(b, LLVMBuildAnd(b, y_odd, x_neg_bit, ""), LLVMBuildFNeg(b, r, ""), r, "");
    LLVMValueRef zero = jit_fconst(ir, 0.0f, w);
    LLVMValueRef neg_finite =
        LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""),
                     LLVMBuildFCmp(b, LLVMRealOGT, x, jit_fconst(ir, -INFINITY, w), ""), "");
    r = LLVMBuildSelect(b, LLVMBuildAnd(b, neg_finite, LLVMBuildNot(b, y_int, ""), ""),
                        jit_fconst(ir, NAN, w), r, "");
    LLVMValueRef any_nan = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""),
                                       LLVMBuildFCmp(b, LLVMRealUNO, y, y, ""), "");
    r = LLVMBuildSelect(b, any_nan, LLVMBuildFAdd(b, x, y, ""), r, "");
    LLVMValueRef one = jit_fconst(ir, 1.0f, w);
    LLVMValueRef ay = jit_intrinsic(ir, "llvm.fabs", LLVMTypeOf(y), &y, 1);
    LLVMValueRef minus_one_inf =
        LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, jit_fconst(ir, -1.0f, w), ""),
                     LLVMBuildFCmp(b, LLVMRealOEQ, ay, jit_fconst(ir, INFINITY, w), ""), "");
    r = LLVMBuildSelect(b, minus_one_inf, one, r, "");
    LLVMValueRef unit = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOEQ, y, zero, ""),
                                    LLVMBuildFCmp(b, LLVMRealOEQ, x, one, ""), "");
    return LLVMBuildSelect(b, unit, one, r, "pow");
}
