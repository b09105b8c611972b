/*
 * jit/lower.c — canonical form + specialization key → one LLVM function
 *   void name(const canon_args *args, float *result)
 *
 *   entry: read slots, parameters and (unless specialized as constants) n / shapes from
 *          args by offsetof
 *   per stage, by domain (one emitter each):
 *     RANGE     vectors of JIT_VW lanes, JIT_UNROLL per iteration for cheap expressions,
 *               then a masked tail loop (AVX-512 masked loads/stores; no scalar
 *               remainder); sinks: store, sum (float vector partials per JIT_SUM_BLOCK,
 *               reassoc, block sums added in double), min/max (ordered compare + NaN and
 *               sign-bit flags, the IEEE minimum/maximum fixed up once at the end)
 *     SCALAR    the expression once (loss finals)
 *     CONTRACT  jit_lower_contract (lower_contract.c)
 *   or, for a GRID program, jit_lower_grid (lower_grid.c), which runs the same loops and
 *   sinks per row through jit_access (unit strides: vector loads and stores; broadcasts:
 *   one splat; other strides: gathers and scatters)
 *   result: the result stage's scalar → *result
 *
 * Expressions go through one switch over canon_kind (lw_node) that works on scalars and
 * vectors alike.  Loop-carried values live in entry-block allocas; SROA in the
 * pipeline (session.c) turns them into registers.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jit_internal.h"

#define JIT_UNROLL_MAX_NODES 8 /* "cheap": a root below this node index, no COSTLY kind */

/* Records a lowering error (first one wins); returns NULL for use in value emitters. */
static LLVMValueRef lw_fail(jit_lower_ctx *c, const char *what, unsigned a) {
    if (c->st == HG_OK)
        c->st = jit_fail(HG_ERR_COMPILE, c->err, c->cap, "cannot lower %s (%u)", what, a);
    return NULL;
}

int jit_lower_error(jit_lower_ctx *c, const char *what, unsigned a) {
    lw_fail(c, what, a);
    return -1;
}

LLVMValueRef jit_i64(jit_lower_ctx *c, uint64_t v) {
    return LLVMConstInt(c->ir.i64, v, 0);
}

/* Vector type of w lanes of `elem`, or elem itself when w == 1. */
static LLVMTypeRef lw_vt(LLVMTypeRef elem, unsigned w) {
    return w == 1 ? elem : LLVMVectorType(elem, w);
}

LLVMValueRef jit_field(jit_lower_ctx *c, size_t off, LLVMTypeRef ty) {
    LLVMValueRef idx = jit_i64(c, off);
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(c->ir.b, c->i8, c->args, &idx, 1, "");
    return LLVMBuildLoad2(c->ir.b, ty, ptr, "");
}

LLVMValueRef jit_shape(jit_lower_ctx *c, int exact, uint64_t v, size_t off) {
    return exact ? jit_i64(c, v) : jit_field(c, off, c->ir.i64);
}

LLVMValueRef jit_var(jit_lower_ctx *c, LLVMTypeRef ty, LLVMValueRef init) {
    LLVMValueRef v = LLVMBuildAlloca(c->alloca_b, ty, "");
    LLVMBuildStore(c->ir.b, init, v);
    return v;
}

LLVMValueRef jit_get(jit_lower_ctx *c, LLVMValueRef var, LLVMTypeRef ty) {
    return LLVMBuildLoad2(c->ir.b, ty, var, "");
}

LLVMValueRef jit_loop_begin(jit_lower_ctx *c, jit_loop *l, LLVMValueRef start,
                            LLVMValueRef end, LLVMValueRef step) {
    LLVMBuilderRef b = c->ir.b;
    l->var = jit_var(c, c->ir.i64, start);
    l->step = step;
    l->cond = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "done");
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->cond);
    LLVMValueRef i = jit_get(c, l->var, c->ir.i64);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, i, end, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(b, body);
    return i;
}

void jit_loop_end(jit_lower_ctx *c, jit_loop *l) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef i = jit_get(c, l->var, c->ir.i64);
    LLVMBuildStore(b, LLVMBuildAdd(b, i, l->step, ""), l->var);
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->exit);
}

LLVMValueRef jit_splat(jit_lower_ctx *c, LLVMValueRef v, unsigned w) {
    if (w == 1 || LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind)
        return v;
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), w);
    LLVMValueRef ins = LLVMBuildInsertElement(c->ir.b, LLVMGetPoison(vt), v,
                                              LLVMConstInt(c->ir.i32, 0, 0), "");
    return LLVMBuildShuffleVector(c->ir.b, ins, LLVMGetPoison(vt),
                                  LLVMConstNull(LLVMVectorType(c->ir.i32, w)), "");
}

LLVMValueRef jit_elem(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(c->ir.b, c->ir.f32, base, &index, 1, "");
}

LLVMValueRef jit_load(jit_lower_ctx *c, LLVMValueRef ptr, unsigned w, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(c->ir.b, lw_vt(c->ir.f32, w), ptr, "");
    LLVMSetAlignment(v, align);
    return v;
}

void jit_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr, unsigned align) {
    LLVMSetAlignment(LLVMBuildStore(c->ir.b, v, ptr), align);
}

LLVMValueRef jit_mem_call(jit_lower_ctx *c, const char *name, LLVMTypeRef vt, LLVMTypeRef pty,
                          LLVMValueRef *args, unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[2] = {vt, pty};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->ir.mod, id, tys, 2);
    return LLVMBuildCall2(c->ir.b, LLVMIntrinsicGetType(c->ir.ctx, id, tys, 2), fn, args, n,
                          "");
}

LLVMValueRef jit_masked_load(jit_lower_ctx *c, LLVMValueRef ptr, unsigned w, LLVMValueRef mask,
                             unsigned align) {
    if (!mask)
        return jit_load(c, ptr, w, align);
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, w);
    LLVMValueRef args[4] = {ptr, LLVMConstInt(c->ir.i32, align, 0), mask, LLVMConstNull(vt)};
    return jit_mem_call(c, "llvm.masked.load", vt, c->ir.ptr, args, 4);
}

void jit_masked_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask,
                      unsigned align) {
    if (!mask) {
        jit_store(c, v, ptr, align);
        return;
    }
    LLVMValueRef args[4] = {v, ptr, LLVMConstInt(c->ir.i32, align, 0), mask};
    jit_mem_call(c, "llvm.masked.store", LLVMTypeOf(v), c->ir.ptr, args, 4);
}

/* Binary float intrinsic (llvm.minimum, llvm.maximum) on a and b. */
static LLVMValueRef lw_bin_intrinsic(jit_lower_ctx *c, const char *name, LLVMValueRef a,
                                     LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return jit_intrinsic(&c->ir, name, LLVMTypeOf(a), args, 2);
}

/* 1.0 where the i1 (vector) `cond` holds, else 0.0, as floats of width w. */
static LLVMValueRef lw_flag(jit_lower_ctx *c, LLVMValueRef cond, unsigned w) {
    return LLVMBuildSelect(c->ir.b, cond, jit_fconst(&c->ir, 1.0f, w),
                           jit_fconst(&c->ir, 0.0f, w), "");
}

/* The value of node `i` at point pt, its operands already in c->memo. */
static LLVMValueRef lw_node(jit_lower_ctx *c, const jit_point *pt, uint32_t i) {
    const canon_node *nd = &c->p->nodes[i];
    LLVMValueRef x[3] = {NULL, NULL, NULL};
    for (unsigned k = 0; k < nd->arity; k++)
        x[k] = c->memo[nd->op[k]];
    LLVMBuilderRef b = c->ir.b;
    unsigned w = pt->w;
    switch ((canon_kind)nd->kind) {
    case CANON_LOAD:
        if (nd->arg < CANON_MAX_SLOTS && pt->loaded[nd->arg])
            return pt->loaded[nd->arg];
        if (pt->index && nd->arg < c->p->n_slots && c->hoist[nd->arg])
            return jit_splat(c, c->hoist[nd->arg], w);
        if (pt->index && nd->arg < c->p->n_slots)
            return jit_access(c, c->base[nd->arg], c->step[nd->arg], c->cls[nd->arg],
                              pt->index, w, pt->mask, NULL);
        return lw_fail(c, "a LOAD of a slot this domain does not provide", nd->arg);
    case CANON_PARAM:
        return jit_splat(c, c->param[nd->arg], w);
    case CANON_CONST:
        return jit_fconst(&c->ir, nd->value, w);
    case CANON_ACC:
        if (!c->acc[nd->arg])
            return lw_fail(c, "an ACC of a stage without an earlier scalar", nd->arg);
        return jit_splat(c, c->acc[nd->arg], w);
    case CANON_LEN:
        if (!c->len_f)
            return lw_fail(c, "LEN outside a RANGE or GRID program", i);
        return jit_splat(c, c->len_f, w);
    case CANON_NEG:
        return LLVMBuildFNeg(b, x[0], "");
    case CANON_ABS:
        return jit_intrinsic(&c->ir, "llvm.fabs", LLVMTypeOf(x[0]), x, 1);
    case CANON_EXP:
        return jit_emit_exp(&c->ir, x[0]);
    case CANON_LOG:
        return jit_emit_log(&c->ir, x[0]);
    case CANON_TANH:
        return jit_emit_tanh(&c->ir, x[0]);
    case CANON_SQRT:
        return jit_intrinsic(&c->ir, "llvm.sqrt", LLVMTypeOf(x[0]), x, 1);
    case CANON_ADD:
        return LLVMBuildFAdd(b, x[0], x[1], "");
    case CANON_MUL:
        return LLVMBuildFMul(b, x[0], x[1], "");
    case CANON_DIV:
        return LLVMBuildFDiv(b, x[0], x[1], "");
    case CANON_MIN:
        return lw_bin_intrinsic(c, "llvm.minimum", x[0], x[1]);
    case CANON_MAX:
        return lw_bin_intrinsic(c, "llvm.maximum", x[0], x[1]);
    case CANON_POW:
        return jit_emit_pow(&c->ir, x[0], x[1]);
    case CANON_LT:
        return lw_flag(c, LLVMBuildFCmp(b, LLVMRealOLT, x[0], x[1], ""), w);
    case CANON_LE:
        return lw_flag(c, LLVMBuildFCmp(b, LLVMRealOLE, x[0], x[1], ""), w);
    case CANON_EQ:
        return lw_flag(c, LLVMBuildFCmp(b, LLVMRealOEQ, x[0], x[1], ""), w);
    case CANON_NE:
        return lw_flag(c, LLVMBuildFCmp(b, LLVMRealUNE, x[0], x[1], ""), w);
    case CANON_WHERE:
        return LLVMBuildSelect(
            b, LLVMBuildFCmp(b, LLVMRealUNE, x[0], jit_fconst(&c->ir, 0.0f, w), ""), x[1],
            x[2], "");
    default: /* sugar kinds never reach a normal form (canon_check) */
        return lw_fail(c, canon_kinds[nd->kind].name, nd->kind);
    }
}

/* The value of expression `root` at point pt, or NULL (c->st set): the nodes reachable
 * from root, in index order (operands first), each emitted once. */
LLVMValueRef jit_lower_eval(jit_lower_ctx *c, const jit_point *pt, uint32_t root) {
    memset(c->memo, 0, c->p->n_nodes * sizeof *c->memo);
    memset(c->mark, 0, c->p->n_nodes);
    c->mark[root] = 1;
    for (uint32_t i = root + 1; i-- > 0;)
        for (unsigned k = 0; c->mark[i] && k < c->p->nodes[i].arity; k++)
            c->mark[c->p->nodes[i].op[k]] = 1;
    for (uint32_t i = 0; i <= root; i++)
        if (c->mark[i] && !(c->memo[i] = lw_node(c, pt, i)))
            return NULL;
    return c->memo[root];
}

LLVMValueRef jit_sum_add(jit_lower_ctx *c, LLVMValueRef a, LLVMValueRef v) {
    if (LLVMIsAInstruction(v) && LLVMGetInstructionOpcode(v) == LLVMFMul)
        LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    LLVMValueRef s = LLVMBuildFAdd(c->ir.b, a, v, "");
    LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return s;
}

/* The sum of the lanes of float vector v (reassociable), widened to double. */
static LLVMValueRef lw_fold_sum(jit_lower_ctx *c, LLVMValueRef v) {
    LLVMValueRef red[2] = {jit_fconst(&c->ir, -0.0f, 1), v};
    LLVMValueRef sum = jit_intrinsic(&c->ir, "llvm.vector.reduce.fadd", LLVMTypeOf(v), red, 2);
    LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
    return LLVMBuildFPExt(c->ir.b, sum, c->ir.f64, "");
}

/* A full-vector store past the caches (!nontemporal, 64-byte aligned: the main loop of a
 * streamed map, whose stored slots are 64-byte aligned, steps by whole vectors from 0). */
static void lw_store_nt(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr) {
    LLVMValueRef st = LLVMBuildStore(c->ir.b, v, ptr);
    LLVMSetAlignment(st, JIT_VW * 4);
    LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(c->ir.i32, 1, 0));
    LLVMSetMetadata(st, LLVMGetMDKindIDInContext(c->ir.ctx, "nontemporal", 11),
                    LLVMMetadataAsValue(c->ir.ctx, LLVMMDNodeInContext2(c->ir.ctx, &one, 1)));
}

/* Array slot `s` of a stage's store sink, or NULL after recording an error. */
static LLVMValueRef lw_store_slot(jit_lower_ctx *c, uint32_t s) {
    if (s >= c->p->n_slots || s >= CANON_MAX_SLOTS)
        return lw_fail(c, "a store to a slot the program does not have", s);
    return c->slot[s];
}

LLVMValueRef jit_access(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef step,
                        jit_stride_class cls, LLVMValueRef index, unsigned w, LLVMValueRef mask,
                        LLVMValueRef value) {
    LLVMBuilderRef b = c->ir.b;
    if (cls == JIT_STRIDE_UNIT) {
        LLVMValueRef at = jit_elem(c, base, index);
        if (!value)
            return jit_masked_load(c, at, w, mask, 4);
        if (c->nt && !mask && w == JIT_VW) {
            lw_store_nt(c, value, at);
            return value;
        }
        jit_masked_store(c, value, at, mask, 4);
        return value;
    }
    if (cls == JIT_STRIDE_ZERO && !value) /* a broadcast: one element for all lanes */
        return jit_splat(c, jit_load(c, base, 1, 4), w);
    if (w == 1) {
        LLVMValueRef at = jit_elem(c, base, LLVMBuildMul(b, index, step, ""));
        if (!value)
            return jit_load(c, at, 1, 4);
        jit_store(c, value, at, 4);
        return value;
    }
    LLVMValueRef lane[JIT_VW]; /* lanes index + i at stride step: a gather or a scatter */
    for (unsigned i = 0; i < w; i++)
        lane[i] = LLVMConstInt(c->ir.i64, i, 0);
    LLVMValueRef idx = LLVMBuildAdd(b, jit_splat(c, index, w), LLVMConstVector(lane, w), "");
    idx = LLVMBuildMul(b, idx, jit_splat(c, step, w), "");
    LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, c->ir.f32, base, &idx, 1, "");
    LLVMTypeRef pvt = LLVMVectorType(c->ir.ptr, w);
    LLVMValueRef all = mask ? mask : LLVMConstAllOnes(LLVMVectorType(c->ir.i1, w));
    LLVMValueRef align = LLVMConstInt(c->ir.i32, 4, 0);
    if (!value) {
        LLVMTypeRef vt = LLVMVectorType(c->ir.f32, w);
        LLVMValueRef args[4] = {ptrs, align, all, LLVMConstNull(vt)};
        return jit_mem_call(c, "llvm.masked.gather", vt, pvt, args, 4);
    }
    LLVMValueRef args[4] = {value, ptrs, align, all};
    jit_mem_call(c, "llvm.masked.scatter", LLVMTypeOf(value), pvt, args, 4);
    return value;
}

LLVMValueRef jit_stage_point(jit_lower_ctx *c, const canon_stage *st, LLVMValueRef index,
                             unsigned w, LLVMValueRef mask) {
    jit_point pt = {.index = index, .w = w, .mask = mask};
    LLVMValueRef v = jit_lower_eval(c, &pt, st->root);
    if (v && st->store_slot != CANON_NONE) {
        if (!lw_store_slot(c, st->store_slot))
            return NULL;
        const uint32_t k = st->store_slot;
        jit_access(c, c->base[k], c->step[k], c->cls[k], index, w, mask, v);
    }
    return v;
}

/* Vectors per main-loop iteration of stage st: JIT_UNROLL independent ones (own
 * accumulators, so a reduction is not one latency chain) when the expression is cheap,
 * else 1 (more copies of an expensive expression cost compile time, not run time). */
static unsigned lw_unroll(const jit_lower_ctx *c, const canon_stage *st) {
    if (st->root >= JIT_UNROLL_MAX_NODES)
        return 1;
    for (uint32_t i = 0; i <= st->root; i++)
        if (canon_kinds[c->p->nodes[i].kind].cost == CANON_COST_COSTLY)
            return 1;
    return JIT_UNROLL;
}

/* The low min(end - i, JIT_VW) bits of an integer as <JIT_VW x i1> (scalar work only, a
 * mask register on AVX-512). */
LLVMValueRef jit_tail_mask(jit_lower_ctx *c, LLVMValueRef i, LLVMValueRef end) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef lim[2] = {LLVMBuildSub(b, end, i, ""), jit_i64(c, JIT_VW)};
    LLVMValueRef rem = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
    LLVMValueRef bits = LLVMBuildShl(b, jit_i64(c, 1), rem, "");
    bits = LLVMBuildSub(b, bits, jit_i64(c, 1), "");
    bits = LLVMBuildTrunc(b, bits, LLVMIntTypeInContext(c->ir.ctx, JIT_VW), "");
    return LLVMBuildBitCast(b, bits, LLVMVectorType(c->ir.i1, JIT_VW), "tail");
}

/* mem + base + b * scale (bytes; b an i64 value). */
static LLVMValueRef lw_at(jit_lower_ctx *c, LLVMValueRef mem, uint64_t base, LLVMValueRef b,
                          uint64_t scale) {
    LLVMValueRef at = LLVMBuildAdd(c->ir.b, jit_i64(c, base),
                                   LLVMBuildMul(c->ir.b, b, jit_i64(c, scale), ""), "");
    return LLVMBuildInBoundsGEP2(c->ir.b, c->i8, mem, &at, 1, "");
}

void jit_sink_at(jit_lower_ctx *c, jit_sink *k, LLVMValueRef mem, LLVMValueRef b) {
    const uint64_t blocks = JIT_SINK_LANES / JIT_VW;
    k->dacc = lw_at(c, mem, 0, b, 8 * JIT_VW);
    k->ext[0] = k->sum[0] = lw_at(c, mem, blocks * 8 * JIT_VW, b, 4 * JIT_VW);
    k->bits[0] = lw_at(c, mem, blocks * 12 * JIT_VW, b, 4 * JIT_VW);
    k->nan[0] = lw_at(c, mem, blocks * 16 * JIT_VW, b, JIT_VW / 8);
}

void jit_sink_flush(jit_lower_ctx *c, jit_sink *k) {
    if (k->red != CANON_RED_SUM || !k->lanes || !k->sum[0])
        return;
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef dt = LLVMVectorType(c->ir.f64, JIT_VW);
    LLVMValueRef part = LLVMBuildFPExt(b, jit_get(c, k->sum[0], k->vt), dt, "");
    LLVMBuildStore(b, LLVMBuildFAdd(b, jit_get(c, k->dacc, dt), part, ""), k->dacc);
    LLVMBuildStore(b, LLVMConstNull(k->vt), k->sum[0]);
}

int jit_sink_begin(jit_lower_ctx *c, const canon_stage *st, jit_sink *k, int lanes,
                   LLVMValueRef mem, LLVMValueRef block) {
    if (st->reduce > CANON_RED_MAX)
        return jit_lower_error(c, "a reduction kind", st->reduce);
    *k = (jit_sink){.red = st->reduce,
                    .lanes = lanes,
                    .U = lanes ? 1 : lw_unroll(c, st),
                    .vt = LLVMVectorType(c->ir.f32, JIT_VW),
                    .mt = LLVMVectorType(c->ir.i1, JIT_VW),
                    .it = LLVMVectorType(c->ir.i32, JIT_VW)};
    LLVMBuilderRef b = c->ir.b;
    if (mem && lanes)
        jit_sink_at(c, k, mem, block);
    const int in_memory = mem && lanes;
    if (k->red == CANON_RED_SUM) {
        LLVMTypeRef dt = lanes ? LLVMVectorType(c->ir.f64, JIT_VW) : c->ir.f64;
        if (in_memory) {
            LLVMBuildStore(b, LLVMConstNull(dt), k->dacc);
            LLVMBuildStore(b, LLVMConstNull(k->vt), k->sum[0]);
        } else {
            k->dacc = jit_var(c, dt, LLVMConstNull(dt));
        }
        for (unsigned u = 0; !lanes && u < k->U; u++)
            k->sum[u] = jit_var(c, k->vt, LLVMConstNull(k->vt));
    } else if (k->red != CANON_RED_NONE) {
        const int is_min = k->red == CANON_RED_MIN;
        LLVMValueRef ext = jit_fconst(&c->ir, is_min ? INFINITY : -INFINITY, JIT_VW);
        LLVMValueRef bits = jit_iconst(&c->ir, is_min ? 0u : ~0u, JIT_VW);
        for (unsigned u = 0; u < k->U; u++) {
            if (in_memory) {
                LLVMBuildStore(b, ext, k->ext[u]);
                LLVMBuildStore(b, LLVMConstNull(k->mt), k->nan[u]);
                LLVMBuildStore(b, bits, k->bits[u]);
                continue;
            }
            k->ext[u] = jit_var(c, k->vt, ext);
            k->nan[u] = jit_var(c, k->mt, LLVMConstNull(k->mt));
            k->bits[u] = jit_var(c, k->it, bits);
        }
    }
    return 0;
}

/* MIN/MAX cost one ordered compare + select, one unordered compare and one OR/AND: no
 * IEEE minimum/maximum fix-ups in the loop (lw_minmax_result applies them once).  A SUM
 * with `lanes` adds each lane into its double, or (in memory) into its float partial. */
void jit_sink_step(jit_lower_ctx *c, jit_sink *k, unsigned u, LLVMValueRef v,
                   LLVMValueRef mask) {
    LLVMBuilderRef b = c->ir.b;
    if (k->red == CANON_RED_SUM) {
        if (mask)
            v = LLVMBuildSelect(b, mask, v, jit_fconst(&c->ir, 0.0f, JIT_VW), "");
        if (k->lanes && k->sum[0]) {
            LLVMBuildStore(b, LLVMBuildFAdd(b, jit_get(c, k->sum[0], k->vt), v, ""), k->sum[0]);
            return;
        }
        if (k->lanes) {
            LLVMTypeRef dt = LLVMVectorType(c->ir.f64, JIT_VW);
            LLVMValueRef d = LLVMBuildFPExt(b, v, dt, "");
            LLVMBuildStore(b, LLVMBuildFAdd(b, jit_get(c, k->dacc, dt), d, ""), k->dacc);
            return;
        }
        LLVMBuildStore(b, jit_sum_add(c, jit_get(c, k->sum[u], k->vt), v), k->sum[u]);
        return;
    }
    if (k->red != CANON_RED_MIN && k->red != CANON_RED_MAX)
        return;
    int is_min = k->red == CANON_RED_MIN;
    LLVMValueRef ext = jit_get(c, k->ext[u], k->vt);
    LLVMValueRef better = LLVMBuildFCmp(b, is_min ? LLVMRealOLT : LLVMRealOGT, v, ext, "");
    LLVMValueRef uno = LLVMBuildFCmp(b, LLVMRealUNO, v, v, "");
    LLVMValueRef bits = LLVMBuildBitCast(b, v, k->it, "");
    if (mask) {
        better = LLVMBuildAnd(b, better, mask, "");
        uno = LLVMBuildAnd(b, uno, mask, "");
        bits = LLVMBuildSelect(b, mask, bits, jit_iconst(&c->ir, is_min ? 0u : ~0u, JIT_VW),
                               "");
    }
    LLVMBuildStore(b, LLVMBuildSelect(b, better, v, ext, ""), k->ext[u]);
    LLVMBuildStore(b, LLVMBuildOr(b, jit_get(c, k->nan[u], k->mt), uno, ""), k->nan[u]);
    LLVMValueRef acc = jit_get(c, k->bits[u], k->it);
    LLVMBuildStore(b, is_min ? LLVMBuildOr(b, acc, bits, "") : LLVMBuildAnd(b, acc, bits, ""),
                   k->bits[u]);
}

/* The ordered min/max of float vectors x and y (neither holds a NaN). */
static LLVMValueRef lw_ordered(jit_lower_ctx *c, canon_reduce red, LLVMValueRef x,
                               LLVMValueRef y) {
    LLVMRealPredicate pred = red == CANON_RED_MIN ? LLVMRealOLT : LLVMRealOGT;
    return LLVMBuildSelect(c->ir.b, LLVMBuildFCmp(c->ir.b, pred, y, x, ""), y, x, "");
}

/* The result of a min/max sink over its U accumulators: a scalar or, `lanes`, one per
 * lane.  The ordered extreme differs from IEEE minimum/maximum only for NaN (any NaN seen:
 * NaN) and for a zero result: a zero minimum means no element was negative, so a set sign
 * bit in the OR of all bits came from a -0; a zero maximum means none was positive, so a
 * clear sign bit in the AND came from a +0.  Either way the zero's sign is that sign bit. */
static LLVMValueRef lw_minmax_result(jit_lower_ctx *c, jit_sink *k) {
    LLVMBuilderRef b = c->ir.b;
    int is_min = k->red == CANON_RED_MIN;
    LLVMValueRef ext = jit_get(c, k->ext[0], k->vt), nan = jit_get(c, k->nan[0], k->mt);
    LLVMValueRef bits = jit_get(c, k->bits[0], k->it);
    for (unsigned u = 1; u < k->U; u++) {
        ext = lw_ordered(c, k->red, ext, jit_get(c, k->ext[u], k->vt));
        nan = LLVMBuildOr(b, nan, jit_get(c, k->nan[u], k->mt), "");
        LLVMValueRef bu = jit_get(c, k->bits[u], k->it);
        bits = is_min ? LLVMBuildOr(b, bits, bu, "") : LLVMBuildAnd(b, bits, bu, "");
    }
    unsigned w = k->lanes ? JIT_VW : 1;
    if (!k->lanes) {
        for (unsigned h = JIT_VW / 2; h >= 1; h /= 2) { /* halving tree of ordered extremes */
            LLVMValueRef lo[JIT_VW], hi[JIT_VW];
            for (unsigned j = 0; j < h; j++) {
                lo[j] = LLVMConstInt(c->ir.i32, j, 0);
                hi[j] = LLVMConstInt(c->ir.i32, h + j, 0);
            }
            LLVMValueRef x = LLVMBuildShuffleVector(b, ext, ext, LLVMConstVector(lo, h), "");
            LLVMValueRef y = LLVMBuildShuffleVector(b, ext, ext, LLVMConstVector(hi, h), "");
            ext = lw_ordered(c, k->red, x, y);
        }
        ext = LLVMBuildExtractElement(b, ext, LLVMConstInt(c->ir.i32, 0, 0), "");
        nan = jit_intrinsic(&c->ir, "llvm.vector.reduce.or", k->mt, &nan, 1);
        bits = jit_intrinsic(&c->ir, is_min ? "llvm.vector.reduce.or" : "llvm.vector.reduce.and",
                             k->it, &bits, 1);
    }
    LLVMValueRef zero_sign = LLVMBuildBitCast(
        b, LLVMBuildAnd(b, bits, jit_iconst(&c->ir, 0x80000000u, w), ""),
        LLVMTypeOf(ext), "");
    LLVMValueRef is_zero = LLVMBuildFCmp(b, LLVMRealOEQ, ext, jit_fconst(&c->ir, 0.0f, w), "");
    ext = LLVMBuildSelect(b, is_zero, zero_sign, ext, "");
    return LLVMBuildSelect(b, nan, jit_fconst(&c->ir, NAN, w), ext, "minmax");
}

LLVMValueRef jit_sink_end(jit_lower_ctx *c, jit_sink *k) {
    LLVMBuilderRef b = c->ir.b;
    if (k->red == CANON_RED_SUM) {
        unsigned w = k->lanes ? JIT_VW : 1;
        LLVMTypeRef dt = k->lanes ? LLVMVectorType(c->ir.f64, JIT_VW) : c->ir.f64;
        LLVMValueRef d = jit_get(c, k->dacc, dt);
        if (k->lanes && k->sum[0])
            d = LLVMBuildFAdd(b, d, LLVMBuildFPExt(b, jit_get(c, k->sum[0], k->vt), dt, ""), "");
        LLVMValueRef sum = LLVMBuildFPTrunc(b, d, lw_vt(c->ir.f32, w), "");
        LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, sum, sum, "");
        return LLVMBuildSelect(b, nan, jit_fconst(&c->ir, NAN, w), sum, "sum");
    }
    return k->red == CANON_RED_NONE ? NULL : lw_minmax_result(c, k);
}

/* A hand-vectorized loop of stage st over lanes [start, end) into sink k: U vectors per
 * iteration (end - start a multiple of U*JIT_VW), or, when `masked`, one vector per
 * iteration with the lanes at or beyond c->n masked off.  0 or -1. */
static int lw_loop(jit_lower_ctx *c, const canon_stage *st, jit_sink *k, LLVMValueRef start,
                   LLVMValueRef end, unsigned U, int masked) {
    jit_loop l;
    LLVMValueRef i = jit_loop_begin(c, &l, start, end, jit_i64(c, (uint64_t)U * JIT_VW));
    LLVMValueRef mask = masked ? jit_tail_mask(c, i, c->n) : NULL;
    c->nt = !masked && c->key->spec == JIT_SPEC_RANGE_ANY && c->key->v[1];
    for (unsigned u = 0; u < U; u++) {
        LLVMValueRef at = u ? LLVMBuildAdd(c->ir.b, i, jit_i64(c, (uint64_t)u * JIT_VW), "") : i;
        LLVMValueRef v = jit_stage_point(c, st, at, JIT_VW, mask);
        if (!v)
            return -1;
        jit_sink_step(c, k, u, v, mask);
    }
    c->nt = 0;
    jit_loop_end(c, &l);
    return 0;
}

/* lw_loop for a sum sink, in blocks of JIT_SUM_BLOCK lanes: float partials per block,
 * block sums added into the double k->dacc. */
static int lw_sum_blocks(jit_lower_ctx *c, const canon_stage *st, jit_sink *k,
                         LLVMValueRef start, LLVMValueRef end, unsigned U, int masked) {
    LLVMBuilderRef b = c->ir.b;
    jit_loop lb;
    LLVMValueRef b0 = jit_loop_begin(c, &lb, start, end, jit_i64(c, JIT_SUM_BLOCK));
    LLVMValueRef lim[2] = {LLVMBuildAdd(b, b0, jit_i64(c, JIT_SUM_BLOCK), ""), end};
    LLVMValueRef bend = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
    for (unsigned u = 0; u < U; u++)
        LLVMBuildStore(b, jit_fconst(&c->ir, 0.0f, JIT_VW), k->sum[u]);
    if (lw_loop(c, st, k, b0, bend, U, masked))
        return -1;
    LLVMValueRef part = jit_get(c, k->sum[0], k->vt);
    for (unsigned u = 1; u < U; u++)
        part = jit_sum_add(c, part, jit_get(c, k->sum[u], k->vt));
    LLVMValueRef d = LLVMBuildFAdd(b, jit_get(c, k->dacc, c->ir.f64), lw_fold_sum(c, part), "");
    LLVMBuildStore(b, d, k->dacc);
    jit_loop_end(c, &lb);
    return 0;
}

/* A main loop of U unmasked vectors per iteration over [0, n & -(U*JIT_VW)), then a masked
 * loop over the rest (fewer than U vectors); no scalar remainder loop.  (A single masked
 * loop over [0, n) compiles faster but ran up to 20% slower.) */
int jit_sink_run(jit_lower_ctx *c, const canon_stage *st, jit_sink *k) {
    LLVMValueRef zero = jit_i64(c, 0);
    LLVMValueRef nmain =
        LLVMBuildAnd(c->ir.b, c->n, jit_i64(c, ~((uint64_t)k->U * JIT_VW - 1)), "nmain");
    if (k->red == CANON_RED_SUM && !k->lanes)
        return lw_sum_blocks(c, st, k, zero, nmain, k->U, 0) ||
                       lw_sum_blocks(c, st, k, nmain, c->n, 1, 1)
                   ? -1
                   : 0;
    return lw_loop(c, st, k, zero, nmain, k->U, 0) || lw_loop(c, st, k, nmain, c->n, 1, 1) ? -1
                                                                                           : 0;
}

/* RANGE stage s: its sink over [0, n). */
static int lw_range(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    jit_sink k;
    if (jit_sink_begin(c, st, &k, 0, NULL, NULL) || jit_sink_run(c, st, &k))
        return -1;
    c->acc[s] = jit_sink_end(c, &k);
    return 0;
}

/* SCALAR stage s: the expression once, as the stage's scalar. */
static int lw_scalar(jit_lower_ctx *c, uint32_t s) {
    jit_point pt = {.w = 1};
    c->acc[s] = jit_lower_eval(c, &pt, c->p->stages[s].root);
    return c->acc[s] ? 0 : -1;
}

/* Entry block contents: slots, parameters and the RANGE length from args. */
static void lw_prologue(jit_lower_ctx *c) {
    for (uint32_t s = 0; s < c->p->n_slots && s < CANON_MAX_SLOTS; s++) {
        c->slot[s] = jit_field(c, offsetof(canon_args, slot) + s * sizeof(float *), c->ir.ptr);
        c->base[s] = c->slot[s];
        c->step[s] = jit_i64(c, 1);
        c->cls[s] = JIT_STRIDE_UNIT;
    }
    for (uint32_t s = 0; s < c->p->n_params && s < CANON_MAX_PARAMS; s++)
        c->param[s] = jit_field(c, offsetof(canon_args, param) + s * sizeof(float), c->ir.f32);
    if (c->key->spec == JIT_SPEC_RANGE_EXACT || c->key->spec == JIT_SPEC_RANGE_ANY) {
        c->n = jit_shape(c, c->key->spec == JIT_SPEC_RANGE_EXACT, c->key->v[0],
                        offsetof(canon_args, n));
        c->len_f = LLVMBuildUIToFP(c->ir.b, c->n, c->ir.f32, "len");
    }
}

/* Emits the whole kernel body after the prologue; 0 or -1 (c->st set). */
static int lw_body(jit_lower_ctx *c) {
    const canon_program *p = c->p;
    if (p->n_stages > CANON_MAX_STAGES || p->n_slots > CANON_MAX_SLOTS ||
        p->n_params > CANON_MAX_PARAMS)
        return jit_lower_error(c, "a program beyond the layout limits", p->n_stages);
    if (c->key->spec == JIT_SPEC_GRID) {
        if (jit_lower_grid(c))
            return -1;
        LLVMBuildRetVoid(c->ir.b);
        return 0;
    }
    for (uint32_t s = 0; s < p->n_stages; s++) {
        int rc;
        switch (p->stages[s].domain) {
        case CANON_DOM_RANGE:
            rc = c->n ? lw_range(c, s) : jit_lower_error(c, "a RANGE stage in this program", s);
            break;
        case CANON_DOM_SCALAR:
            rc = lw_scalar(c, s);
            break;
        case CANON_DOM_CONTRACT:
            rc = c->key->spec == JIT_SPEC_CONTRACT_EXACT || c->key->spec == JIT_SPEC_CONTRACT_ANY
                     ? jit_lower_contract(c, s)
                     : jit_lower_error(c, "a CONTRACT stage in this program", s);
            break;
        default:
            rc = jit_lower_error(c, "a stage domain", p->stages[s].domain);
        }
        if (rc)
            return -1;
    }
    if (p->result_stage != CANON_NONE) {
        if (p->result_stage >= CANON_MAX_STAGES || !c->acc[p->result_stage])
            return jit_lower_error(c, "a result stage without a scalar", p->result_stage);
        LLVMBuildStore(c->ir.b, c->acc[p->result_stage], c->result);
    }
    if (c->key->spec == JIT_SPEC_RANGE_ANY && c->key->v[1]) /* streamed stores are weakly */
        LLVMBuildFence(c->ir.b, LLVMAtomicOrderingSequentiallyConsistent, 0, ""); /* ordered */
    LLVMBuildRetVoid(c->ir.b);
    return 0;
}

hg_status jit_lower(const canon_program *p, const jit_key *key, const char *name, int broken,
                    LLVMContextRef ctx, LLVMModuleRef *out_mod, char *err, size_t cap) {
    jit_lower_ctx c = {.p = p, .key = key, .err = err, .cap = cap, .st = HG_OK};
    char why[256];
    int bad = canon_check(p, 0, NULL, why, sizeof why);
    if (bad)
        return jit_fail(bad == -2 ? HG_ERR_NO_MEMORY : HG_ERR_COMPILE, err, cap,
                        "cannot lower %s: %s", name, why);
    c.memo = calloc(p->n_nodes ? p->n_nodes : 1, sizeof *c.memo);
    c.mark = malloc(p->n_nodes ? p->n_nodes : 1);
    if (!c.memo || !c.mark) {
        free(c.memo);
        free(c.mark);
        return jit_fail(HG_ERR_NO_MEMORY, err, cap, "no memory to lower %s", name);
    }
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
    ir->avx512 = jit_session_avx512();
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
    free(c.mark);
    if (rc || c.st != HG_OK) {
        LLVMDisposeModule(ir->mod);
        return c.st != HG_OK ? c.st : jit_fail(HG_ERR_COMPILE, err, cap, "cannot lower %s", name);
    }
    *out_mod = ir->mod;
    return HG_OK;
}
