/*
 * jit/lower.c — canonical form + specialization key → one LLVM function
 *   void name(const canon_args *args, float *result)
 *
 *   entry: read slots, parameters and (unless specialized as constants) n / shapes from
 *          args by offsetof
 *   per stage, by domain (one emitter each):
 *     RANGE     vector loop of JIT_VW lanes + scalar tail; sinks: store, sum (float
 *               vector partials per JIT_SUM_BLOCK, reassoc, block sums added in double),
 *               min/max (llvm.minimum/maximum: NaN propagates)
 *     SCALAR    the expression once (loss finals)
 *     CONTRACT  unit column stride of B: JIT_GEMM_MR x JIT_GEMM_W register blocks over a
 *               vector of B's row (accumulated in p order, contracted to FMA); other
 *               columns and strides: scalar (i, j, p) loops with a reassoc sum
 *     STRIDED   one loop per dimension, innermost stores dst[flat++]
 *   result: the result stage's scalar → *result
 *
 * Expressions go through one switch over canon_kind (lw_node) that works on scalars and
 * vectors alike.  Loop-carried values live in entry-block allocas; mem2reg in the O3
 * pipeline turns them into registers.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jit_internal.h"

#define JIT_VW 16      /* lanes of RANGE loops (one AVX-512 register) */
#define JIT_GEMM_W 32  /* columns of a contraction register block */
#define JIT_GEMM_MR 4  /* rows of a contraction register block */

typedef struct {
    jit_ir ir;
    LLVMTypeRef i8;
    const canon_program *p;
    const jit_key *key;
    LLVMValueRef fn, args, result;
    LLVMBuilderRef alloca_b;            /* positioned in the entry block */
    LLVMValueRef slot[CANON_MAX_SLOTS]; /* float pointers */
    LLVMValueRef param[CANON_MAX_PARAMS];
    LLVMValueRef acc[CANON_MAX_STAGES]; /* float scalar of each reducing / SCALAR stage */
    LLVMValueRef n, len_f;              /* RANGE length (i64) and as float */
    LLVMValueRef *memo;                 /* per expression evaluation, one per node */
    hg_status st;
    char *err;
    size_t cap;
} jit_lower_ctx;

/* A point of a stage's domain: the element index (RANGE) and lane count, or the values
 * of LOAD leaves supplied by the domain's emitter (CONTRACT, STRIDED). */
typedef struct {
    LLVMValueRef index;
    unsigned w;
    LLVMValueRef loaded[CANON_MAX_SLOTS];
} jit_point;

typedef struct {
    LLVMValueRef var, step;
    LLVMBasicBlockRef cond, exit;
} jit_loop;

/* Records a lowering error (first one wins); returns NULL for use in value emitters. */
static LLVMValueRef lw_fail(jit_lower_ctx *c, const char *what, unsigned a) {
    if (c->st == HG_OK)
        c->st = jit_fail(HG_ERR_COMPILE, c->err, c->cap, "cannot lower %s (%u)", what, a);
    return NULL;
}

/* lw_fail for emitters that return 0 / -1. */
static int lw_error(jit_lower_ctx *c, const char *what, unsigned a) {
    lw_fail(c, what, a);
    return -1;
}

static LLVMValueRef lw_i64(jit_lower_ctx *c, uint64_t v) {
    return LLVMConstInt(c->ir.i64, v, 0);
}

/* Vector type of w lanes of `elem`, or elem itself when w == 1. */
static LLVMTypeRef lw_vt(LLVMTypeRef elem, unsigned w) {
    return w == 1 ? elem : LLVMVectorType(elem, w);
}

/* Loads a field of type ty at byte offset `off` of *args. */
static LLVMValueRef lw_field(jit_lower_ctx *c, size_t off, LLVMTypeRef ty) {
    LLVMValueRef idx = lw_i64(c, off);
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(c->ir.b, c->i8, c->args, &idx, 1, "");
    return LLVMBuildLoad2(c->ir.b, ty, ptr, "");
}

/* A shape value: the key's constant when specialized exactly, else read from args. */
static LLVMValueRef lw_shape(jit_lower_ctx *c, int exact, uint64_t v, size_t off) {
    return exact ? lw_i64(c, v) : lw_field(c, off, c->ir.i64);
}

/* A new entry-block variable of type ty, set to init at the current position. */
static LLVMValueRef lw_var(jit_lower_ctx *c, LLVMTypeRef ty, LLVMValueRef init) {
    LLVMValueRef v = LLVMBuildAlloca(c->alloca_b, ty, "");
    LLVMBuildStore(c->ir.b, init, v);
    return v;
}

static LLVMValueRef lw_get(jit_lower_ctx *c, LLVMValueRef var, LLVMTypeRef ty) {
    return LLVMBuildLoad2(c->ir.b, ty, var, "");
}

/* Opens `for (i = start; i < end; i += step)` (unsigned); returns i inside the body. */
static LLVMValueRef lw_loop_begin(jit_lower_ctx *c, jit_loop *l, LLVMValueRef start,
                                  LLVMValueRef end, LLVMValueRef step) {
    LLVMBuilderRef b = c->ir.b;
    l->var = lw_var(c, c->ir.i64, start);
    l->step = step;
    l->cond = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "done");
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->cond);
    LLVMValueRef i = lw_get(c, l->var, c->ir.i64);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, i, end, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(b, body);
    return i;
}

/* Closes a loop opened by lw_loop_begin; the builder continues after it. */
static void lw_loop_end(jit_lower_ctx *c, jit_loop *l) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef i = lw_get(c, l->var, c->ir.i64);
    LLVMBuildStore(b, LLVMBuildAdd(b, i, l->step, ""), l->var);
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->exit);
}

/* A run-time scalar broadcast to w lanes. */
static LLVMValueRef lw_splat(jit_lower_ctx *c, LLVMValueRef v, unsigned w) {
    if (w == 1)
        return v;
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), w);
    LLVMValueRef ins = LLVMBuildInsertElement(c->ir.b, LLVMGetPoison(vt), v,
                                              LLVMConstInt(c->ir.i32, 0, 0), "");
    return LLVMBuildShuffleVector(c->ir.b, ins, LLVMGetPoison(vt),
                                  LLVMConstNull(LLVMVectorType(c->ir.i32, w)), "");
}

/* Pointer to element `index` of float array `base`. */
static LLVMValueRef lw_elem(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(c->ir.b, c->ir.f32, base, &index, 1, "");
}

/* w floats (a vector when w > 1) at base[index]; only float alignment is assumed. */
static LLVMValueRef lw_load(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index,
                            unsigned w) {
    LLVMValueRef v = LLVMBuildLoad2(c->ir.b, lw_vt(c->ir.f32, w), lw_elem(c, base, index), "");
    LLVMSetAlignment(v, 4);
    return v;
}

static void lw_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index) {
    LLVMValueRef s = LLVMBuildStore(c->ir.b, v, lw_elem(c, base, index));
    LLVMSetAlignment(s, 4);
}

/* Binary float intrinsic (llvm.minimum, llvm.maximum) on a and b. */
static LLVMValueRef lw_bin_intrinsic(jit_lower_ctx *c, const char *name, LLVMValueRef a,
                                     LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return jit_intrinsic(&c->ir, name, LLVMTypeOf(a), args, 2);
}

/* The value of node `i` at point pt (memoized in c->memo). */
static LLVMValueRef lw_node(jit_lower_ctx *c, const jit_point *pt, uint32_t i) {
    if (i >= c->p->n_nodes)
        return lw_fail(c, "a node index out of range", i);
    if (c->memo[i])
        return c->memo[i];
    const canon_node *nd = &c->p->nodes[i];
    if (nd->kind >= CANON_KIND_COUNT || nd->arity > 3)
        return lw_fail(c, "an unknown node kind", nd->kind);
    LLVMValueRef x[3] = {NULL, NULL, NULL};
    for (unsigned k = 0; k < nd->arity; k++) {
        if (nd->op[k] >= i)
            return lw_fail(c, "a node whose operand is not earlier", i);
        if (!(x[k] = lw_node(c, pt, nd->op[k])))
            return NULL;
    }
    LLVMBuilderRef b = c->ir.b;
    unsigned w = pt->w;
    LLVMValueRef v;
    switch ((canon_kind)nd->kind) {
    case CANON_LOAD:
        if (nd->arg < CANON_MAX_SLOTS && pt->loaded[nd->arg])
            v = pt->loaded[nd->arg];
        else if (pt->index && nd->arg < c->p->n_slots)
            v = lw_load(c, c->slot[nd->arg], pt->index, w);
        else
            return lw_fail(c, "a LOAD of a slot this domain does not provide", nd->arg);
        break;
    case CANON_PARAM:
        if (nd->arg >= c->p->n_params || nd->arg >= CANON_MAX_PARAMS)
            return lw_fail(c, "a PARAM beyond the program's parameters", nd->arg);
        v = lw_splat(c, c->param[nd->arg], w);
        break;
    case CANON_CONST:
        v = jit_fconst(&c->ir, nd->value, w);
        break;
    case CANON_ACC:
        if (nd->arg >= CANON_MAX_STAGES || !c->acc[nd->arg])
            return lw_fail(c, "an ACC of a stage without an earlier scalar", nd->arg);
        v = lw_splat(c, c->acc[nd->arg], w);
        break;
    case CANON_LEN:
        if (!c->len_f)
            return lw_fail(c, "LEN outside a RANGE program", i);
        v = lw_splat(c, c->len_f, w);
        break;
    case CANON_NEG:
        v = LLVMBuildFNeg(b, x[0], "");
        break;
    case CANON_ABS:
        v = jit_intrinsic(&c->ir, "llvm.fabs", LLVMTypeOf(x[0]), x, 1);
        break;
    case CANON_EXP:
        v = jit_emit_exp(&c->ir, x[0]);
        break;
    case CANON_LOG:
        v = jit_emit_log(&c->ir, x[0]);
        break;
    case CANON_TANH:
        v = jit_emit_tanh(&c->ir, x[0]);
        break;
    case CANON_ADD:
        v = LLVMBuildFAdd(b, x[0], x[1], "");
        break;
    case CANON_MUL:
        v = LLVMBuildFMul(b, x[0], x[1], "");
        break;
    case CANON_DIV:
        v = LLVMBuildFDiv(b, x[0], x[1], "");
        break;
    case CANON_MIN:
        v = lw_bin_intrinsic(c, "llvm.minimum", x[0], x[1]);
        break;
    case CANON_MAX:
        v = lw_bin_intrinsic(c, "llvm.maximum", x[0], x[1]);
        break;
    default: /* sugar kinds never reach a normal form */
        return lw_fail(c, canon_kinds[nd->kind].name, nd->kind);
    }
    c->memo[i] = v;
    return v;
}

/* The value of expression `root` at point pt, or NULL (c->st set). */
static LLVMValueRef lw_eval(jit_lower_ctx *c, const jit_point *pt, uint32_t root) {
    memset(c->memo, 0, c->p->n_nodes * sizeof *c->memo);
    return lw_node(c, pt, root);
}

/* An fadd for a sum sink: reassociable (and contractable with a product feeding it). */
static LLVMValueRef lw_sum_add(jit_lower_ctx *c, LLVMValueRef a, LLVMValueRef v) {
    if (LLVMIsAInstruction(v) && LLVMGetInstructionOpcode(v) == LLVMFMul)
        LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    LLVMValueRef s = LLVMBuildFAdd(c->ir.b, a, v, "");
    LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return s;
}

/* Array slot `s` of a stage's store sink, or NULL after recording an error. */
static LLVMValueRef lw_store_slot(jit_lower_ctx *c, uint32_t s) {
    if (s >= c->p->n_slots || s >= CANON_MAX_SLOTS)
        return lw_fail(c, "a store to a slot the program does not have", s);
    return c->slot[s];
}

/* Element(s) of a RANGE stage at `index` over w lanes: evaluated and stored (if the stage
 * stores).  Returns the value, or NULL. */
static LLVMValueRef lw_range_point(jit_lower_ctx *c, const canon_stage *st,
                                   LLVMValueRef index, unsigned w) {
    jit_point pt = {.index = index, .w = w};
    LLVMValueRef v = lw_eval(c, &pt, st->root);
    if (v && st->store_slot != CANON_NONE) {
        LLVMValueRef dst = lw_store_slot(c, st->store_slot);
        if (!dst)
            return NULL;
        lw_store(c, v, dst, index);
    }
    return v;
}

/* min/max sink: combines a and v with llvm.minimum / llvm.maximum. */
static LLVMValueRef lw_minmax(jit_lower_ctx *c, canon_reduce r, LLVMValueRef a,
                              LLVMValueRef v) {
    return lw_bin_intrinsic(c, r == CANON_RED_MIN ? "llvm.minimum" : "llvm.maximum", a, v);
}

/* RANGE stage s: a vector loop over [0, nvec) and a scalar tail over [nvec, n). */
static int lw_range(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, JIT_VW);
    LLVMValueRef nvec = LLVMBuildAnd(b, c->n, lw_i64(c, ~(uint64_t)(JIT_VW - 1)), "nvec");
    LLVMValueRef zero = lw_i64(c, 0), one = lw_i64(c, 1), vw = lw_i64(c, JIT_VW);
    jit_loop lb, lv, lt;
    LLVMValueRef i, v;
    if (st->reduce == CANON_RED_NONE) {
        i = lw_loop_begin(c, &lv, zero, nvec, vw);
        if (!lw_range_point(c, st, i, JIT_VW))
            return -1;
        lw_loop_end(c, &lv);
        i = lw_loop_begin(c, &lt, nvec, c->n, one);
        if (!lw_range_point(c, st, i, 1))
            return -1;
        lw_loop_end(c, &lt);
        return 0;
    }
    if (st->reduce == CANON_RED_SUM) {
        LLVMValueRef dacc = lw_var(c, c->ir.f64, LLVMConstReal(c->ir.f64, 0.0));
        LLVMValueRef b0 = lw_loop_begin(c, &lb, zero, nvec, lw_i64(c, JIT_SUM_BLOCK));
        LLVMValueRef bend = LLVMBuildAdd(b, b0, lw_i64(c, JIT_SUM_BLOCK), "");
        LLVMValueRef lim[2] = {bend, nvec};
        bend = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
        LLVMValueRef vacc = lw_var(c, vt, jit_fconst(&c->ir, 0.0f, JIT_VW));
        i = lw_loop_begin(c, &lv, b0, bend, vw);
        if (!(v = lw_range_point(c, st, i, JIT_VW)))
            return -1;
        LLVMBuildStore(b, lw_sum_add(c, lw_get(c, vacc, vt), v), vacc);
        lw_loop_end(c, &lv);
        LLVMValueRef red[2] = {jit_fconst(&c->ir, -0.0f, 1), lw_get(c, vacc, vt)};
        LLVMValueRef bsum = jit_intrinsic(&c->ir, "llvm.vector.reduce.fadd", vt, red, 2);
        LLVMSetFastMathFlags(bsum, LLVMFastMathAllowReassoc);
        LLVMValueRef d = LLVMBuildFAdd(b, lw_get(c, dacc, c->ir.f64),
                                       LLVMBuildFPExt(b, bsum, c->ir.f64, ""), "");
        LLVMBuildStore(b, d, dacc);
        lw_loop_end(c, &lb);
        LLVMValueRef facc = lw_var(c, c->ir.f32, jit_fconst(&c->ir, 0.0f, 1));
        i = lw_loop_begin(c, &lt, nvec, c->n, one);
        if (!(v = lw_range_point(c, st, i, 1)))
            return -1;
        LLVMBuildStore(b, lw_sum_add(c, lw_get(c, facc, c->ir.f32), v), facc);
        lw_loop_end(c, &lt);
        d = LLVMBuildFAdd(b, lw_get(c, dacc, c->ir.f64),
                          LLVMBuildFPExt(b, lw_get(c, facc, c->ir.f32), c->ir.f64, ""), "");
        c->acc[s] = LLVMBuildFPTrunc(b, d, c->ir.f32, "sum");
        return 0;
    }
    if (st->reduce != CANON_RED_MIN && st->reduce != CANON_RED_MAX)
        return lw_error(c, "a reduction kind", st->reduce);
    float ident = st->reduce == CANON_RED_MIN ? INFINITY : -INFINITY;
    LLVMValueRef vacc = lw_var(c, vt, jit_fconst(&c->ir, ident, JIT_VW));
    i = lw_loop_begin(c, &lv, zero, nvec, vw);
    if (!(v = lw_range_point(c, st, i, JIT_VW)))
        return -1;
    LLVMBuildStore(b, lw_minmax(c, st->reduce, lw_get(c, vacc, vt), v), vacc);
    lw_loop_end(c, &lv);
    LLVMValueRef vred = lw_get(c, vacc, vt);
    LLVMValueRef sred = jit_intrinsic(&c->ir, st->reduce == CANON_RED_MIN
                                                  ? "llvm.vector.reduce.fminimum"
                                                  : "llvm.vector.reduce.fmaximum",
                                      vt, &vred, 1);
    LLVMValueRef sacc = lw_var(c, c->ir.f32, sred);
    i = lw_loop_begin(c, &lt, nvec, c->n, one);
    if (!(v = lw_range_point(c, st, i, 1)))
        return -1;
    LLVMBuildStore(b, lw_minmax(c, st->reduce, lw_get(c, sacc, c->ir.f32), v), sacc);
    lw_loop_end(c, &lt);
    c->acc[s] = lw_get(c, sacc, c->ir.f32);
    return 0;
}

/* Shape of a CONTRACT stage: constants or run-time values. */
typedef struct {
    LLVMValueRef a, bm, cm; /* A, B, C pointers */
    LLVMValueRef m, n, k, ars, acs, brs, bcs;
} jit_contract;

/* One register block over rows [i0, i0 + R) and columns [0, nvec) (B's column stride is
 * 1): R vector accumulators of JIT_GEMM_W lanes, summed in p order. */
static int lw_contract_block(jit_lower_ctx *c, const jit_contract *g, uint32_t root,
                             LLVMValueRef i0, unsigned R, LLVMValueRef nvec) {
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, JIT_GEMM_W);
    LLVMValueRef accv[JIT_GEMM_MR], rowa[JIT_GEMM_MR];
    jit_loop lj, lp;
    LLVMValueRef j0 = lw_loop_begin(c, &lj, lw_i64(c, 0), nvec, lw_i64(c, JIT_GEMM_W));
    for (unsigned r = 0; r < R; r++) {
        accv[r] = lw_var(c, vt, jit_fconst(&c->ir, 0.0f, JIT_GEMM_W));
        rowa[r] = LLVMBuildMul(b, LLVMBuildAdd(b, i0, lw_i64(c, r), ""), g->ars, "");
    }
    LLVMValueRef p = lw_loop_begin(c, &lp, lw_i64(c, 0), g->k, lw_i64(c, 1));
    LLVMValueRef boff = LLVMBuildAdd(b, LLVMBuildMul(b, p, g->brs, ""), j0, "");
    LLVMValueRef bv = lw_load(c, g->bm, boff, JIT_GEMM_W);
    LLVMValueRef pa = LLVMBuildMul(b, p, g->acs, "");
    for (unsigned r = 0; r < R; r++) {
        LLVMValueRef a = lw_load(c, g->a, LLVMBuildAdd(b, rowa[r], pa, ""), 1);
        jit_point pt = {.w = JIT_GEMM_W, .loaded = {lw_splat(c, a, JIT_GEMM_W), bv}};
        LLVMValueRef v = lw_eval(c, &pt, root);
        if (!v)
            return -1;
        LLVMBuildStore(b, lw_sum_add(c, lw_get(c, accv[r], vt), v), accv[r]);
    }
    lw_loop_end(c, &lp);
    for (unsigned r = 0; r < R; r++) {
        LLVMValueRef crow = LLVMBuildMul(b, LLVMBuildAdd(b, i0, lw_i64(c, r), ""), g->n, "");
        lw_store(c, lw_get(c, accv[r], vt), g->cm, LLVMBuildAdd(b, crow, j0, ""));
    }
    lw_loop_end(c, &lj);
    return 0;
}

/* Scalar loops over rows [0, m), columns [j_start, n), any strides. */
static int lw_contract_scalar(jit_lower_ctx *c, const jit_contract *g, uint32_t root,
                              LLVMValueRef j_start) {
    LLVMBuilderRef b = c->ir.b;
    jit_loop li, lj, lp;
    LLVMValueRef i = lw_loop_begin(c, &li, lw_i64(c, 0), g->m, lw_i64(c, 1));
    LLVMValueRef rowa = LLVMBuildMul(b, i, g->ars, "");
    LLVMValueRef j = lw_loop_begin(c, &lj, j_start, g->n, lw_i64(c, 1));
    LLVMValueRef colb = LLVMBuildMul(b, j, g->bcs, "");
    LLVMValueRef acc = lw_var(c, c->ir.f32, jit_fconst(&c->ir, 0.0f, 1));
    LLVMValueRef p = lw_loop_begin(c, &lp, lw_i64(c, 0), g->k, lw_i64(c, 1));
    LLVMValueRef a = lw_load(c, g->a, LLVMBuildAdd(b, rowa, LLVMBuildMul(b, p, g->acs, ""), ""), 1);
    LLVMValueRef bb = lw_load(c, g->bm, LLVMBuildAdd(b, LLVMBuildMul(b, p, g->brs, ""), colb, ""), 1);
    jit_point pt = {.w = 1, .loaded = {a, bb}};
    LLVMValueRef v = lw_eval(c, &pt, root);
    if (!v)
        return -1;
    LLVMBuildStore(b, lw_sum_add(c, lw_get(c, acc, c->ir.f32), v), acc);
    lw_loop_end(c, &lp);
    LLVMValueRef ci = LLVMBuildAdd(b, LLVMBuildMul(b, i, g->n, ""), j, "");
    lw_store(c, lw_get(c, acc, c->ir.f32), g->cm, ci);
    lw_loop_end(c, &lj);
    lw_loop_end(c, &li);
    return 0;
}

/* CONTRACT stage s: C[i*n + j] = sum_p root(A[i*a_rs + p*a_cs], B[p*b_rs + j*b_cs]). */
static int lw_contract(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    if (st->reduce != CANON_RED_SUM || c->p->n_slots < 3)
        return lw_error(c, "a contraction that is not a sum over two inputs", st->reduce);
    LLVMBuilderRef b = c->ir.b;
    int exact = c->key->spec == JIT_SPEC_CONTRACT_EXACT;
    const uint64_t *v = c->key->v;
    jit_contract g = {.a = c->slot[0], .bm = c->slot[1], .cm = lw_store_slot(c, st->store_slot)};
    if (!g.cm)
        return -1;
    size_t base = offsetof(canon_args, contract);
    g.m = lw_shape(c, exact, v[0], base + offsetof(canon_contract_shape, m));
    g.n = lw_shape(c, exact, v[1], base + offsetof(canon_contract_shape, n));
    g.k = lw_shape(c, exact, v[2], base + offsetof(canon_contract_shape, k));
    g.ars = lw_shape(c, exact, v[3], base + offsetof(canon_contract_shape, a_rs));
    g.acs = lw_shape(c, exact, v[4], base + offsetof(canon_contract_shape, a_cs));
    g.brs = lw_shape(c, exact, v[5], base + offsetof(canon_contract_shape, b_rs));
    g.bcs = lw_shape(c, exact, v[6], base + offsetof(canon_contract_shape, b_cs));

    LLVMValueRef nvec = LLVMBuildAnd(b, g.n, lw_i64(c, ~(uint64_t)(JIT_GEMM_W - 1)), "");
    LLVMValueRef unit = LLVMBuildICmp(b, LLVMIntEQ, g.bcs, lw_i64(c, 1), "unit");
    LLVMValueRef j_start = LLVMBuildSelect(b, unit, nvec, lw_i64(c, 0), "");
    LLVMBasicBlockRef blocked = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "blocked");
    LLVMBasicBlockRef rest = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "rest");
    LLVMBuildCondBr(b, unit, blocked, rest);
    LLVMPositionBuilderAtEnd(b, blocked);
    LLVMValueRef m_blk = LLVMBuildAnd(b, g.m, lw_i64(c, ~(uint64_t)(JIT_GEMM_MR - 1)), "");
    jit_loop li;
    LLVMValueRef i0 = lw_loop_begin(c, &li, lw_i64(c, 0), m_blk, lw_i64(c, JIT_GEMM_MR));
    if (lw_contract_block(c, &g, st->root, i0, JIT_GEMM_MR, nvec))
        return -1;
    lw_loop_end(c, &li);
    i0 = lw_loop_begin(c, &li, m_blk, g.m, lw_i64(c, 1));
    if (lw_contract_block(c, &g, st->root, i0, 1, nvec))
        return -1;
    lw_loop_end(c, &li);
    LLVMBuildBr(b, rest);
    LLVMPositionBuilderAtEnd(b, rest);
    return lw_contract_scalar(c, &g, st->root, j_start);
}

/* Dimension d of a STRIDED stage at source offset `off`; innermost stores dst[flat++]. */
static int lw_strided_dim(jit_lower_ctx *c, const canon_stage *st, uint32_t d, uint32_t ndim,
                          LLVMValueRef off, LLVMValueRef flat, LLVMValueRef dst) {
    LLVMBuilderRef b = c->ir.b;
    int exact = c->key->spec == JIT_SPEC_STRIDED_EXACT;
    const uint64_t *v = c->key->v;
    size_t base = offsetof(canon_args, strided);
    LLVMValueRef extent = lw_shape(c, exact, v[1 + d],
                                   base + offsetof(canon_strided_shape, shape) + 8 * d);
    LLVMValueRef stride = lw_shape(c, exact, v[1 + ndim + d],
                                   base + offsetof(canon_strided_shape, stride) + 8 * d);
    jit_loop l;
    LLVMValueRef idx = lw_loop_begin(c, &l, lw_i64(c, 0), extent, lw_i64(c, 1));
    LLVMValueRef o = LLVMBuildAdd(b, off, LLVMBuildMul(b, idx, stride, ""), "");
    if (d + 1 < ndim) {
        if (lw_strided_dim(c, st, d + 1, ndim, o, flat, dst))
            return -1;
    } else {
        jit_point pt = {.w = 1, .loaded = {lw_load(c, c->slot[0], o, 1)}};
        LLVMValueRef val = lw_eval(c, &pt, st->root);
        if (!val)
            return -1;
        LLVMValueRef f = lw_get(c, flat, c->ir.i64);
        lw_store(c, val, dst, f);
        LLVMBuildStore(b, LLVMBuildAdd(b, f, lw_i64(c, 1), ""), flat);
    }
    lw_loop_end(c, &l);
    return 0;
}

/* STRIDED stage s: dst[flat] = root(src[sum_d idx_d * stride_d]) in row-major order. */
static int lw_strided(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    uint32_t ndim = (uint32_t)c->key->v[0];
    LLVMValueRef dst = lw_store_slot(c, st->store_slot);
    if (!dst || c->p->n_slots < 1)
        return -1;
    if (ndim == 0) {
        jit_point pt = {.w = 1, .loaded = {lw_load(c, c->slot[0], lw_i64(c, 0), 1)}};
        LLVMValueRef val = lw_eval(c, &pt, st->root);
        if (!val)
            return -1;
        lw_store(c, val, dst, lw_i64(c, 0));
        return 0;
    }
    LLVMValueRef flat = lw_var(c, c->ir.i64, lw_i64(c, 0));
    return lw_strided_dim(c, st, 0, ndim, lw_i64(c, 0), flat, dst);
}

/* SCALAR stage s: the expression once, as the stage's scalar. */
static int lw_scalar(jit_lower_ctx *c, uint32_t s) {
    jit_point pt = {.w = 1};
    c->acc[s] = lw_eval(c, &pt, c->p->stages[s].root);
    return c->acc[s] ? 0 : -1;
}

/* Entry block contents: slots, parameters and the RANGE length from args. */
static void lw_prologue(jit_lower_ctx *c) {
    for (uint32_t s = 0; s < c->p->n_slots && s < CANON_MAX_SLOTS; s++)
        c->slot[s] = lw_field(c, offsetof(canon_args, slot) + s * sizeof(float *), c->ir.ptr);
    for (uint32_t s = 0; s < c->p->n_params && s < CANON_MAX_PARAMS; s++)
        c->param[s] = lw_field(c, offsetof(canon_args, param) + s * sizeof(float), c->ir.f32);
    if (c->key->spec == JIT_SPEC_RANGE_EXACT || c->key->spec == JIT_SPEC_RANGE_ANY) {
        c->n = lw_shape(c, c->key->spec == JIT_SPEC_RANGE_EXACT, c->key->v[0],
                        offsetof(canon_args, n));
        c->len_f = LLVMBuildUIToFP(c->ir.b, c->n, c->ir.f32, "len");
    }
}

/* Emits the whole kernel body after the prologue; 0 or -1 (c->st set). */
static int lw_body(jit_lower_ctx *c) {
    const canon_program *p = c->p;
    if (p->n_stages > CANON_MAX_STAGES || p->n_slots > CANON_MAX_SLOTS ||
        p->n_params > CANON_MAX_PARAMS)
        return lw_error(c, "a program beyond the layout limits", p->n_stages);
    for (uint32_t s = 0; s < p->n_stages; s++) {
        int rc;
        switch (p->stages[s].domain) {
        case CANON_DOM_RANGE:
            rc = c->n ? lw_range(c, s) : lw_error(c, "a RANGE stage in this program", s);
            break;
        case CANON_DOM_SCALAR:
            rc = lw_scalar(c, s);
            break;
        case CANON_DOM_CONTRACT:
            rc = c->key->spec == JIT_SPEC_CONTRACT_EXACT || c->key->spec == JIT_SPEC_CONTRACT_ANY
                     ? lw_contract(c, s)
                     : lw_error(c, "a CONTRACT stage in this program", s);
            break;
        case CANON_DOM_STRIDED:
            rc = c->key->spec == JIT_SPEC_STRIDED_EXACT || c->key->spec == JIT_SPEC_STRIDED_ANY
                     ? lw_strided(c, s)
                     : lw_error(c, "a STRIDED stage in this program", s);
            break;
        default:
            rc = lw_error(c, "a stage domain", p->stages[s].domain);
        }
        if (rc)
            return -1;
    }
    if (p->result_stage != CANON_NONE) {
        if (p->result_stage >= CANON_MAX_STAGES || !c->acc[p->result_stage])
            return lw_error(c, "a result stage without a scalar", p->result_stage);
        LLVMBuildStore(c->ir.b, c->acc[p->result_stage], c->result);
    }
    LLVMBuildRetVoid(c->ir.b);
    return 0;
}

hg_status jit_lower(const canon_program *p, const jit_key *key, const char *name, int broken,
                    LLVMContextRef ctx, LLVMModuleRef *out_mod, char *err, size_t cap) {
    jit_lower_ctx c = {.p = p, .key = key, .err = err, .cap = cap, .st = HG_OK};
    c.memo = calloc(p->n_nodes ? p->n_nodes : 1, sizeof *c.memo);
    if (!c.memo)
        return jit_fail(HG_ERR_NO_MEMORY, err, cap, "no memory to lower %s", name);
    jit_ir *ir = &c.ir;
    ir->ctx = ctx;
    ir->mod = LLVMModuleCreateWithNameInContext(name, ctx);
    jit_session_prepare(ir->mod);
    ir->b = LLVMCreateBuilderInContext(ctx);
    ir->f32 = LLVMFloatTypeInContext(ctx);
    ir->f64 = LLVMDoubleTypeInContext(ctx);
    ir->i1 = LLVMInt1TypeInContext(ctx);
    ir->i32 = LLVMInt32TypeInContext(ctx);
    ir->i64 = LLVMInt64TypeInContext(ctx);
    ir->ptr = LLVMPointerTypeInContext(ctx, 0);
    c.i8 = LLVMInt8TypeInContext(ctx);

    LLVMTypeRef params[2] = {ir->ptr, ir->ptr};
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 2, 0);
    c.fn = LLVMAddFunction(ir->mod, name, fty);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(c.fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(ctx, nounwind, 0));
    c.args = LLVMGetParam(c.fn, 0);
    c.result = LLVMGetParam(c.fn, 1);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, c.fn, "entry");
    LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(ctx, c.fn, "start");
    c.alloca_b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(c.alloca_b, entry);
    LLVMPositionBuilderAtEnd(ir->b, start);
    lw_prologue(&c);
    int rc = lw_body(&c);
    LLVMBuildBr(c.alloca_b, start);
    if (broken) /* HOLOGRAM_JIT_FAIL: a block without terminator, for the verifier */
        LLVMAppendBasicBlockInContext(ctx, c.fn, "broken");
    LLVMDisposeBuilder(c.alloca_b);
    LLVMDisposeBuilder(ir->b);
    free(c.memo);
    if (rc || c.st != HG_OK) {
        LLVMDisposeModule(ir->mod);
        return c.st != HG_OK ? c.st : jit_fail(HG_ERR_COMPILE, err, cap, "cannot lower %s", name);
    }
    *out_mod = ir->mod;
    return HG_OK;
}
