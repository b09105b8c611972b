/*
 * jit/lower_contract.c — the CONTRACT domain:
 *   C[i*n + j] = sum_p root(A[i*a_rs + p*a_cs], B[p*b_rs + j*b_cs])
 *
 *   m == 0 or n == 0           nothing;  k == 0: C = 0
 *   exact shape, b_cs == 1     direct tiles read straight from A and B: column blocks of
 *                              up to LC_MAX_NV vectors (one masked block for the rest),
 *                              rows split evenly (lc_pick_mr, clamped to m - 1)
 *   n == 1, a_cs == b_rs == 1  matvec: LC_DOT_ROWS rows at a time (rows of LC_DOT_LONG or
 *                              more one at a time), vector loads of A's rows and x, two
 *                              accumulators per row, a masked tail, horizontal sums
 *   b_cs == 1, k*n small       direct LC_MR x LC_NR tiles at run time (B stays in L2)
 *   otherwise (any strides)    packed, cache-blocked (loops jc → pc → ir → jq):
 *                              jc: LC_NC-column panels; pc: LC_KC-deep slices;
 *                              B(slice, panel) packed into LC_NR-wide micro-panels (masked
 *                              loads, or gathers when b_cs != 1; zero columns at the edge)
 *                              in a 512 KiB entry-block array; ir: LC_MR-row stripes of A
 *                              packed p-major (12 KiB, stays in L1); jq: LC_MR x LC_NR
 *                              register tiles (LC_MR x LC_VL for the last <= 16 columns),
 *                              which prefetch their C rows and the next stripe of A;
 *                              slices after the first add into C.
 *
 * Tiles evaluate the stage's expression on (broadcast a, vector b) and add it with a
 * contractable reassoc fadd, so MUL becomes one FMA.  Padded rows and columns are computed
 * and never stored.  The stack array is touched once per thread and reused after; the
 * packed kernel probes its frame page by page, so it needs ~0.5 MiB of free stack (glibc
 * threads have 8 MiB) and a shorter stack faults at once instead of skipping its guard page.
 */
#include <stddef.h>
#include <string.h>

#include "jit_internal.h"

#define LC_VL 16          /* lanes of one AVX-512 register */
#define LC_MR 12          /* rows of the packed micro-kernel */
#define LC_NV 2           /* vectors per row of the packed micro-kernel */
#define LC_NR (LC_NV * LC_VL)
#define LC_KC 256         /* depth of a packed slice */
#define LC_NC 512         /* columns of a packed B panel: LC_KC * LC_NC * 4 = 512 KiB */
#define LC_MAX_MR 16      /* rows of a direct tile */
#define LC_MAX_NV 4       /* vectors per row of a direct tile */
#define LC_MAX_ACC 24     /* accumulator registers of a tile */
#define LC_DOT_ROWS 4     /* rows of a matvec step */
#define LC_DOT_LONG 512   /* matvec rows at least this long go one at a time */
#define LC_DIRECT_MAX_B (128u * 1024) /* B elements (512 KiB) read unpacked at run time */

/* Shape of a CONTRACT stage: constants (exact key) or values read from args. */
typedef struct {
    LLVMValueRef a, bm, cm; /* A, B, C pointers */
    LLVMValueRef m, n, k, ars, acs, brs, bcs;
    uint32_t root;
} lc_shape_t;

/* A register tile: rows [0, mr) x vectors [0, nv) over p in [0, kk). */
typedef struct {
    unsigned mr, nv;
    LLVMValueRef arow[LC_MAX_MR]; /* &A(row r, p = 0) */
    LLVMValueRef a_ps;            /* p stride of A (elements) */
    LLVMValueRef bp, b_ps;        /* &B(p = 0, first column), p stride */
    LLVMValueRef mask[LC_MAX_NV]; /* per vector: columns present (NULL: all) */
    unsigned b_align;             /* alignment of B's vector loads (bytes) */
    LLVMValueRef kk;
} lc_tile;

typedef struct {
    LLVMValueRef var, step;
    LLVMBasicBlockRef cond, exit;
} lc_loop;

/* Records a lowering error (first one wins); returns -1. */
static int lc_error(jit_lower_ctx *c, const char *what, unsigned a) {
    if (c->st == HG_OK)
        c->st = jit_fail(HG_ERR_COMPILE, c->err, c->cap, "cannot lower %s (%u)", what, a);
    return -1;
}

static LLVMValueRef lc_i64(jit_lower_ctx *c, uint64_t v) {
    return LLVMConstInt(c->ir.i64, v, 0);
}

/* Field at byte offset `off` of *args as i64, or the key's constant when exact. */
static LLVMValueRef lc_arg(jit_lower_ctx *c, int exact, uint64_t v, size_t off) {
    if (exact)
        return lc_i64(c, v);
    LLVMValueRef idx = lc_i64(c, off);
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(c->ir.b, c->i8, c->args, &idx, 1, "");
    return LLVMBuildLoad2(c->ir.b, c->ir.i64, ptr, "");
}

/* A new entry-block variable of type ty, set to init here. */
static LLVMValueRef lc_var(jit_lower_ctx *c, LLVMTypeRef ty, LLVMValueRef init) {
    LLVMValueRef v = LLVMBuildAlloca(c->alloca_b, ty, "");
    LLVMBuildStore(c->ir.b, init, v);
    return v;
}

static LLVMValueRef lc_get(jit_lower_ctx *c, LLVMValueRef var, LLVMTypeRef ty) {
    return LLVMBuildLoad2(c->ir.b, ty, var, "");
}

/* Opens `for (i = start; i < end; i += step)` (unsigned); returns i inside the body. */
static LLVMValueRef lc_loop_begin(jit_lower_ctx *c, lc_loop *l, LLVMValueRef start,
                                  LLVMValueRef end, LLVMValueRef step) {
    LLVMBuilderRef b = c->ir.b;
    l->var = lc_var(c, c->ir.i64, start);
    l->step = step;
    l->cond = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "done");
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->cond);
    LLVMValueRef i = lc_get(c, l->var, c->ir.i64);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, i, end, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(b, body);
    return i;
}

/* Closes a loop from lc_loop_begin; the builder continues after it. */
static void lc_loop_end(jit_lower_ctx *c, lc_loop *l) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef i = lc_get(c, l->var, c->ir.i64);
    LLVMBuildStore(b, LLVMBuildAdd(b, i, l->step, ""), l->var);
    LLVMBuildBr(b, l->cond);
    LLVMPositionBuilderAtEnd(b, l->exit);
}

/* Opens `if (cond)`; returns the join block for lc_if_end. */
static LLVMBasicBlockRef lc_if(jit_lower_ctx *c, LLVMValueRef cond) {
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "then");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "join");
    LLVMBuildCondBr(c->ir.b, cond, then, join);
    LLVMPositionBuilderAtEnd(c->ir.b, then);
    return join;
}

static void lc_if_end(jit_lower_ctx *c, LLVMBasicBlockRef join) {
    LLVMBuildBr(c->ir.b, join);
    LLVMPositionBuilderAtEnd(c->ir.b, join);
}

static LLVMValueRef lc_umin(jit_lower_ctx *c, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef x[2] = {a, b};
    return jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, x, 2);
}

static LLVMValueRef lc_add(jit_lower_ctx *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildAdd(c->ir.b, a, b, "");
}

static LLVMValueRef lc_mul(jit_lower_ctx *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildMul(c->ir.b, a, b, "");
}

/* &base[index] for a float pointer. */
static LLVMValueRef lc_elem(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(c->ir.b, c->ir.f32, base, &index, 1, "");
}

/* w floats at ptr (a vector when w > 1), `align` bytes aligned. */
static LLVMValueRef lc_load(jit_lower_ctx *c, LLVMValueRef ptr, unsigned w, unsigned align) {
    LLVMTypeRef ty = w == 1 ? c->ir.f32 : LLVMVectorType(c->ir.f32, w);
    LLVMValueRef v = LLVMBuildLoad2(c->ir.b, ty, ptr, "");
    LLVMSetAlignment(v, align);
    return v;
}

static void lc_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr, unsigned align) {
    LLVMSetAlignment(LLVMBuildStore(c->ir.b, v, ptr), align);
}

/* A scalar broadcast to LC_VL lanes. */
static LLVMValueRef lc_splat(jit_lower_ctx *c, LLVMValueRef v) {
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), LC_VL);
    LLVMValueRef ins = LLVMBuildInsertElement(c->ir.b, LLVMGetPoison(vt), v,
                                              LLVMConstInt(c->ir.i32, 0, 0), "");
    return LLVMBuildShuffleVector(c->ir.b, ins, LLVMGetPoison(vt),
                                  LLVMConstNull(LLVMVectorType(c->ir.i32, LC_VL)), "");
}

/* The i64 vector <0, 1, ..., LC_VL - 1>. */
static LLVMValueRef lc_iota(jit_lower_ctx *c) {
    LLVMValueRef lanes[LC_VL];
    for (unsigned l = 0; l < LC_VL; l++)
        lanes[l] = lc_i64(c, l);
    return LLVMConstVector(lanes, LC_VL);
}

/* Lanes [0, LC_VL) below `count` (i64, any value) as a mask. */
static LLVMValueRef lc_lane_mask(jit_lower_ctx *c, LLVMValueRef count) {
    return LLVMBuildICmp(c->ir.b, LLVMIntULT, lc_iota(c), lc_splat(c, count), "");
}

/* Calls memory intrinsic `name` overloaded on (vector type, pointer-ish type `pty`). */
static LLVMValueRef lc_mem_intrinsic(jit_lower_ctx *c, const char *name, LLVMTypeRef pty,
                                     LLVMValueRef *args, unsigned n) {
    LLVMTypeRef ty[2] = {LLVMVectorType(c->ir.f32, LC_VL), pty};
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->ir.mod, id, ty, 2);
    return LLVMBuildCall2(c->ir.b, LLVMIntrinsicGetType(c->ir.ctx, id, ty, 2), fn, args, n, "");
}

/* LC_VL floats at ptr where mask is set (NULL: all), zeros elsewhere. */
static LLVMValueRef lc_load_masked(jit_lower_ctx *c, LLVMValueRef ptr, LLVMValueRef mask,
                                   unsigned align) {
    if (!mask)
        return lc_load(c, ptr, LC_VL, align);
    LLVMValueRef args[4] = {ptr, LLVMConstInt(c->ir.i32, align, 0), mask,
                            jit_fconst(&c->ir, 0.0f, LC_VL)};
    return lc_mem_intrinsic(c, "llvm.masked.load", c->ir.ptr, args, 4);
}

static void lc_store_masked(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr,
                            LLVMValueRef mask) {
    if (!mask) {
        lc_store(c, v, ptr, 4);
        return;
    }
    LLVMValueRef args[4] = {v, ptr, LLVMConstInt(c->ir.i32, 4, 0), mask};
    lc_mem_intrinsic(c, "llvm.masked.store", c->ir.ptr, args, 4);
}

/* B(p, j .. j + LC_VL) with column stride bcs where mask is set, zeros elsewhere. */
static LLVMValueRef lc_gather(jit_lower_ctx *c, LLVMValueRef ptr, LLVMValueRef bcs,
                              LLVMValueRef mask) {
    LLVMValueRef idx = LLVMBuildMul(c->ir.b, lc_iota(c), lc_splat(c, bcs), "");
    LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(c->ir.b, c->ir.f32, ptr, &idx, 1, "");
    LLVMValueRef args[4] = {ptrs, LLVMConstInt(c->ir.i32, 4, 0), mask,
                            jit_fconst(&c->ir, 0.0f, LC_VL)};
    return lc_mem_intrinsic(c, "llvm.masked.gather", LLVMVectorType(c->ir.ptr, LC_VL), args, 4);
}

/* acc + v for a sum sink: reassociable, and contractable with a product feeding it. */
static LLVMValueRef lc_sum_add(jit_lower_ctx *c, LLVMValueRef acc, LLVMValueRef v) {
    if (LLVMIsAInstruction(v) && LLVMGetInstructionOpcode(v) == LLVMFMul)
        LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    LLVMValueRef s = LLVMBuildFAdd(c->ir.b, acc, v, "");
    LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return s;
}

/* The tile's sums into acc[r * nv + v] (entry-block variables); 0 or -1. */
static int lc_tile_sum(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                       LLVMValueRef *acc) {
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, LC_VL);
    for (unsigned i = 0; i < t->mr * t->nv; i++)
        acc[i] = lc_var(c, vt, jit_fconst(&c->ir, 0.0f, LC_VL));
    lc_loop lp;
    LLVMValueRef p = lc_loop_begin(c, &lp, lc_i64(c, 0), t->kk, lc_i64(c, 1));
    LLVMValueRef brow = lc_elem(c, t->bp, lc_mul(c, p, t->b_ps));
    LLVMValueRef bv[LC_MAX_NV];
    for (unsigned v = 0; v < t->nv; v++)
        bv[v] = lc_load_masked(c, lc_elem(c, brow, lc_i64(c, v * LC_VL)), t->mask[v],
                               t->b_align);
    LLVMValueRef pa = lc_mul(c, p, t->a_ps);
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef a = lc_splat(c, lc_load(c, lc_elem(c, t->arow[r], pa), 1, 4));
        for (unsigned v = 0; v < t->nv; v++) {
            jit_point pt = {.w = LC_VL, .loaded = {a, bv[v]}};
            LLVMValueRef x = jit_lower_eval(c, &pt, g->root);
            if (!x)
                return -1;
            LLVMValueRef *av = &acc[r * t->nv + v];
            LLVMBuildStore(b, lc_sum_add(c, lc_get(c, *av, vt), x), *av);
        }
    }
    lc_loop_end(c, &lp);
    return 0;
}

/* Stores the tile's rows r < rows to crow + r * n (masked columns); adds to what C holds
 * when `add` (an i1, or NULL for never). */
static void lc_tile_store(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                          LLVMValueRef *acc, LLVMValueRef rows, LLVMValueRef crow,
                          LLVMValueRef add) {
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, LC_VL);
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMBasicBlockRef join = NULL;
        if (r > 0)
            join = lc_if(c, LLVMBuildICmp(c->ir.b, LLVMIntULT, lc_i64(c, r), rows, ""));
        LLVMValueRef cr = lc_elem(c, crow, lc_mul(c, lc_i64(c, r), g->n));
        for (unsigned v = 0; v < t->nv; v++) {
            LLVMValueRef ptr = lc_elem(c, cr, lc_i64(c, v * LC_VL));
            LLVMValueRef x = lc_get(c, acc[r * t->nv + v], vt);
            if (add) {
                LLVMValueRef old = lc_load_masked(c, ptr, t->mask[v], 4);
                LLVMValueRef sum = LLVMBuildFAdd(c->ir.b, old, x, "");
                x = LLVMBuildSelect(c->ir.b, add, sum, x, "");
            }
            lc_store_masked(c, x, ptr, t->mask[v]);
        }
        if (join)
            lc_if_end(c, join);
    }
}

/* Column masks of a tile whose first column is `left` columns before the edge. */
static void lc_tile_masks(jit_lower_ctx *c, lc_tile *t, LLVMValueRef left) {
    for (unsigned v = 0; v < t->nv; v++) {
        LLVMValueRef rem = LLVMBuildSub(c->ir.b, left, lc_i64(c, v * LC_VL), "");
        LLVMValueRef neg = LLVMBuildICmp(c->ir.b, LLVMIntSLT, rem, lc_i64(c, 0), "");
        t->mask[v] = lc_lane_mask(c, LLVMBuildSelect(c->ir.b, neg, lc_i64(c, 0), rem, ""));
    }
}

/* Points arow[r] at row min(i0 + r, m - 1) of A, column p0. */
static void lc_tile_rows(jit_lower_ctx *c, const lc_shape_t *g, lc_tile *t, LLVMValueRef i0,
                         LLVMValueRef p0) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, g->m, lc_i64(c, 1), "");
    LLVMValueRef pofs = lc_mul(c, p0, g->acs);
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef i = lc_umin(c, lc_add(c, i0, lc_i64(c, r)), last);
        t->arow[r] = lc_elem(c, g->a, lc_add(c, lc_mul(c, i, g->ars), pofs));
    }
}

/* Rows of a tile for m rows and at most `cap` per tile: the fewest computed rows
 * (blocks * mr), then the largest mr; never below cap / 2 unless m is. */
static unsigned lc_pick_mr(uint64_t m, unsigned cap) {
    unsigned best = cap;
    uint64_t best_rows = (m + cap - 1) / cap * cap;
    for (unsigned mr = cap - 1; mr >= (cap + 1) / 2 && mr > 0; mr--) {
        uint64_t rows = (m + mr - 1) / mr * mr;
        if (rows < best_rows) {
            best = mr;
            best_rows = rows;
        }
    }
    return m < best ? (unsigned)m : best;
}

/* Columns [j0, j0 + 16 nv) of every row: tiles of mr rows read straight from A and B
 * (b_cs == 1, exact m and n); `edge`: the block reaches past column n (masked). */
static int lc_direct_cols(jit_lower_ctx *c, const lc_shape_t *g, uint64_t m, LLVMValueRef j0,
                          unsigned nv, int edge) {
    lc_tile t = {.nv = nv, .mr = lc_pick_mr(m, nv == 1 ? LC_MAX_MR : LC_MAX_ACC / nv),
                 .a_ps = g->acs, .b_ps = g->brs, .b_align = 4, .kk = g->k};
    LLVMValueRef acc[LC_MAX_ACC];
    lc_loop li;
    LLVMValueRef i0 = lc_loop_begin(c, &li, lc_i64(c, 0), g->m, lc_i64(c, t.mr));
    lc_tile_rows(c, g, &t, i0, lc_i64(c, 0));
    if (edge)
        lc_tile_masks(c, &t, LLVMBuildSub(c->ir.b, g->n, j0, ""));
    t.bp = lc_elem(c, g->bm, j0);
    if (lc_tile_sum(c, g, &t, acc))
        return -1;
    LLVMValueRef crow = lc_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), j0));
    lc_tile_store(c, g, &t, acc, LLVMBuildSub(c->ir.b, g->m, i0, ""), crow, NULL);
    lc_loop_end(c, &li);
    return 0;
}

/* Exact shapes with b_cs == 1: column blocks of up to LC_MAX_NV vectors, then one
 * narrower block for the remaining columns. */
static int lc_direct(jit_lower_ctx *c, const lc_shape_t *g, uint64_t m, uint64_t n) {
    unsigned nv = n >= LC_MAX_NV * LC_VL ? LC_MAX_NV : n >= LC_VL ? (unsigned)(n / LC_VL) : 1;
    uint64_t full = n / (nv * LC_VL) * (nv * LC_VL);
    if (full == nv * LC_VL) {
        if (lc_direct_cols(c, g, m, lc_i64(c, 0), nv, 0))
            return -1;
    } else if (full) {
        lc_loop lj;
        LLVMValueRef j0 = lc_loop_begin(c, &lj, lc_i64(c, 0), lc_i64(c, full),
                                        lc_i64(c, nv * LC_VL));
        if (lc_direct_cols(c, g, m, j0, nv, 0))
            return -1;
        lc_loop_end(c, &lj);
    }
    if (full == n)
        return 0;
    return lc_direct_cols(c, g, m, lc_i64(c, full), (unsigned)((n - full + LC_VL - 1) / LC_VL),
                          1);
}

/* Columns [j0, j0 + 16 t->nv) of a run-time direct stripe, `left` columns before the edge
 * (B's loads and C's stores masked). */
static int lc_direct_tile(jit_lower_ctx *c, const lc_shape_t *g, lc_tile *t, LLVMValueRef j0,
                          LLVMValueRef left, LLVMValueRef rows, LLVMValueRef crow) {
    LLVMValueRef acc[LC_MAX_ACC];
    lc_tile_masks(c, t, left);
    t->bp = lc_elem(c, g->bm, j0);
    if (lc_tile_sum(c, g, t, acc))
        return -1;
    lc_tile_store(c, g, t, acc, rows, crow, NULL);
    return 0;
}

/* Run-time shapes with b_cs == 1 and a B that stays in L2: LC_MR x LC_NR tiles read
 * straight from A and B (LC_MR x LC_VL for the last <= 16 columns). */
static int lc_direct_any(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    lc_tile t = {.nv = LC_NV, .mr = LC_MR, .a_ps = g->acs, .b_ps = g->brs, .b_align = 4,
                 .kk = g->k};
    lc_loop li, lj;
    LLVMValueRef i0 = lc_loop_begin(c, &li, lc_i64(c, 0), g->m, lc_i64(c, LC_MR));
    lc_tile_rows(c, g, &t, i0, lc_i64(c, 0));
    LLVMValueRef rows = LLVMBuildSub(b, g->m, i0, "");
    LLVMValueRef j0 = lc_loop_begin(c, &lj, lc_i64(c, 0), g->n, lc_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, g->n, j0, "");
    LLVMValueRef crow = lc_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), j0));
    LLVMValueRef wide = LLVMBuildICmp(b, LLVMIntUGT, left, lc_i64(c, LC_VL), "");
    LLVMBasicBlockRef narrow = lc_if(c, wide);
    if (lc_direct_tile(c, g, &t, j0, left, rows, crow))
        return -1;
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "next");
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, narrow);
    t.nv = 1;
    if (lc_direct_tile(c, g, &t, j0, left, rows, crow))
        return -1;
    t.nv = LC_NV;
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
    lc_loop_end(c, &lj);
    lc_loop_end(c, &li);
    return 0;
}

/* Packs B(pc .. pc + kcb, jc .. jc + ncb) into LC_NR-wide micro-panels at bpack:
 * panel q holds kcb rows of LC_NR floats at bpack + q * LC_NR * kcb. */
static void lc_pack_b(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef bpack,
                      LLVMValueRef pc, LLVMValueRef kcb, LLVMValueRef jc, LLVMValueRef ncb) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef unit = LLVMBuildICmp(b, LLVMIntEQ, g->bcs, lc_i64(c, 1), "");
    lc_loop lq, lp;
    LLVMValueRef jq = lc_loop_begin(c, &lq, lc_i64(c, 0), ncb, lc_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, ncb, jq, "");
    lc_tile t = {.nv = LC_NV};
    lc_tile_masks(c, &t, left);
    LLVMValueRef panel = lc_elem(c, bpack, lc_mul(c, jq, kcb));
    LLVMValueRef col = lc_mul(c, lc_add(c, jc, jq), g->bcs);
    LLVMValueRef p = lc_loop_begin(c, &lp, lc_i64(c, 0), kcb, lc_i64(c, 1));
    LLVMValueRef src = lc_elem(c, g->bm, lc_add(c, lc_mul(c, lc_add(c, pc, p), g->brs), col));
    LLVMValueRef dst = lc_elem(c, panel, lc_mul(c, p, lc_i64(c, LC_NR)));
    for (unsigned v = 0; v < LC_NV; v++) {
        LLVMValueRef s = lc_elem(c, src, lc_mul(c, lc_i64(c, v * LC_VL), g->bcs));
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "contig");
        LLVMBasicBlockRef other = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "gather");
        LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "packed");
        LLVMBuildCondBr(b, unit, then, other);
        LLVMPositionBuilderAtEnd(b, then);
        LLVMValueRef x0 = lc_load_masked(c, s, t.mask[v], 4);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, other);
        LLVMValueRef x1 = lc_gather(c, s, g->bcs, t.mask[v]);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, join);
        LLVMValueRef x = LLVMBuildPhi(b, LLVMVectorType(c->ir.f32, LC_VL), "");
        LLVMValueRef in[2] = {x0, x1};
        LLVMBasicBlockRef from[2] = {then, other};
        LLVMAddIncoming(x, in, from, 2);
        lc_store(c, x, lc_elem(c, dst, lc_i64(c, v * LC_VL)), 64);
    }
    lc_loop_end(c, &lp);
    lc_loop_end(c, &lq);
}

/* Packs A(rows of t->arow, p in [0, kcb)) p-major into apack: apack[p * LC_MR + r]. */
static void lc_pack_a(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                      LLVMValueRef apack, LLVMValueRef kcb) {
    lc_loop lp;
    LLVMValueRef p = lc_loop_begin(c, &lp, lc_i64(c, 0), kcb, lc_i64(c, 1));
    LLVMValueRef pa = lc_mul(c, p, g->acs);
    LLVMValueRef dst = lc_elem(c, apack, lc_mul(c, p, lc_i64(c, LC_MR)));
    for (unsigned r = 0; r < LC_MR; r++) {
        LLVMValueRef x = lc_load(c, lc_elem(c, t->arow[r], pa), 1, 4);
        lc_store(c, x, lc_elem(c, dst, lc_i64(c, r)), 4);
    }
    lc_loop_end(c, &lp);
}

/* Prefetches the cache line of base[index] into L1, for reading or (write = 1) writing;
 * the address may lie outside any object (a plain GEP: prefetches never fault). */
static void lc_prefetch(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index,
                        unsigned write) {
    LLVMValueRef ptr = LLVMBuildGEP2(c->ir.b, c->ir.f32, base, &index, 1, "");
    LLVMValueRef args[4] = {ptr, LLVMConstInt(c->ir.i32, write, 0),
                            LLVMConstInt(c->ir.i32, 3, 0), LLVMConstInt(c->ir.i32, 1, 0)};
    jit_intrinsic(&c->ir, "llvm.prefetch", c->ir.ptr, args, 4);
}

/* Prefetches two cache lines, from column p0 on, of each row of the next LC_MR-row stripe
 * of A: spread over a stripe's tiles, the next A pack finds its data in cache. */
static void lc_prefetch_next_a(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef i0,
                               LLVMValueRef p0) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, g->m, lc_i64(c, 1), "");
    for (unsigned r = 0; r < LC_MR; r++) {
        LLVMValueRef i = lc_umin(c, lc_add(c, i0, lc_i64(c, LC_MR + r)), last);
        LLVMValueRef at = lc_add(c, lc_mul(c, i, g->ars), lc_mul(c, p0, g->acs));
        for (unsigned h = 0; h < 2; h++)
            lc_prefetch(c, g->a, lc_add(c, at, lc_mul(c, lc_i64(c, h * LC_VL), g->acs)), 0);
    }
}

/* Prefetches (for writing) the C rows a tile will store, so that their cache misses
 * overlap the tile's sums; rows past the edge are clamped to the last one. */
static void lc_tile_prefetch(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                             LLVMValueRef rows, LLVMValueRef crow) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, rows, lc_i64(c, 1), "");
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef row = lc_umin(c, lc_i64(c, r), last);
        LLVMValueRef at = lc_mul(c, row, g->n);
        for (unsigned v = 0; v < t->nv; v++)
            lc_prefetch(c, crow, lc_add(c, at, lc_i64(c, v * LC_VL)), 1);
    }
}

/* One packed tile (t->nv vectors wide) whose first column is `left` columns before the
 * panel's edge: sums, then stores (adding to C when `add`). */
static int lc_packed_tile(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                          LLVMValueRef left, LLVMValueRef rows, LLVMValueRef crow,
                          LLVMValueRef add) {
    LLVMValueRef acc[LC_MAX_ACC];
    lc_tile_prefetch(c, g, t, rows, crow);
    if (lc_tile_sum(c, g, t, acc))
        return -1;
    lc_tile edge = *t; /* packed B needs no masks; C's columns do */
    lc_tile_masks(c, &edge, left);
    lc_tile_store(c, g, &edge, acc, rows, crow, add);
    return 0;
}

/* The packed, cache-blocked product for any strides (m, n, k >= 1 at run time). */
static int lc_packed(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef bpack =
        LLVMBuildAlloca(c->alloca_b, LLVMArrayType2(c->ir.f32, LC_KC * LC_NC), "bpack");
    LLVMSetAlignment(bpack, 64);
    LLVMValueRef apack =
        LLVMBuildAlloca(c->alloca_b, LLVMArrayType2(c->ir.f32, LC_KC * LC_MR), "apack");
    LLVMSetAlignment(apack, 64);
    /* a large frame: probe it page by page, so a short stack faults instead of skipping
     * its guard page */
    LLVMAddAttributeAtIndex(c->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(c->ir.ctx, "probe-stack", 11,
                                                      "inline-asm", 10));
    lc_loop lj, lk, li, lq;
    LLVMValueRef jc = lc_loop_begin(c, &lj, lc_i64(c, 0), g->n, lc_i64(c, LC_NC));
    LLVMValueRef ncb = lc_umin(c, LLVMBuildSub(b, g->n, jc, ""), lc_i64(c, LC_NC));
    LLVMValueRef pc = lc_loop_begin(c, &lk, lc_i64(c, 0), g->k, lc_i64(c, LC_KC));
    LLVMValueRef kcb = lc_umin(c, LLVMBuildSub(b, g->k, pc, ""), lc_i64(c, LC_KC));
    LLVMValueRef add = LLVMBuildICmp(b, LLVMIntNE, pc, lc_i64(c, 0), "");
    lc_pack_b(c, g, bpack, pc, kcb, jc, ncb);
    LLVMValueRef i0 = lc_loop_begin(c, &li, lc_i64(c, 0), g->m, lc_i64(c, LC_MR));
    lc_tile t = {.mr = LC_MR, .nv = LC_NV, .a_ps = lc_i64(c, LC_MR), .b_ps = lc_i64(c, LC_NR),
                 .b_align = 64, .kk = kcb};
    lc_tile_rows(c, g, &t, i0, pc);
    lc_pack_a(c, g, &t, apack, kcb);
    for (unsigned r = 0; r < LC_MR; r++)
        t.arow[r] = lc_elem(c, apack, lc_i64(c, r));
    LLVMValueRef rows = LLVMBuildSub(b, g->m, i0, "");
    LLVMValueRef jq = lc_loop_begin(c, &lq, lc_i64(c, 0), ncb, lc_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, ncb, jq, "");
    LLVMValueRef crow = lc_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), lc_add(c, jc, jq)));
    t.bp = lc_elem(c, bpack, lc_mul(c, jq, kcb));
    LLVMValueRef pf = LLVMBuildUDiv(b, lc_mul(c, jq, lc_i64(c, LC_KC)), lc_i64(c, LC_NC), "");
    lc_prefetch_next_a(c, g, i0, lc_add(c, pc, pf)); /* tiles spread over the slice */
    LLVMValueRef wide = LLVMBuildICmp(b, LLVMIntUGT, left, lc_i64(c, LC_VL), "");
    LLVMBasicBlockRef narrow = lc_if(c, wide);
    if (lc_packed_tile(c, g, &t, left, rows, crow, add))
        return -1;
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "next");
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, narrow);
    t.nv = 1; /* the last <= LC_VL columns: one vector per row */
    if (lc_packed_tile(c, g, &t, left, rows, crow, add))
        return -1;
    t.nv = LC_NV;
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
    lc_loop_end(c, &lq);
    lc_loop_end(c, &li);
    lc_loop_end(c, &lk);
    lc_loop_end(c, &lj);
    return 0;
}

/* Rows [i0, i0 + rows) of a matvec (n == 1, a_cs == b_rs == 1):
 * C[i] = sum_p root(A[i*a_rs + p], x[p]). */
static int lc_dot(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef i0, unsigned rows) {
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, LC_VL);
    LLVMValueRef acc[LC_DOT_ROWS][2], arow[LC_DOT_ROWS];
    for (unsigned r = 0; r < rows; r++) {
        arow[r] = lc_elem(c, g->a, lc_mul(c, lc_add(c, i0, lc_i64(c, r)), g->ars));
        for (unsigned u = 0; u < 2; u++)
            acc[r][u] = lc_var(c, vt, jit_fconst(&c->ir, 0.0f, LC_VL));
    }
    LLVMValueRef kvec = LLVMBuildAnd(b, g->k, lc_i64(c, ~(uint64_t)(2 * LC_VL - 1)), "");
    lc_loop lp;
    LLVMValueRef p = lc_loop_begin(c, &lp, lc_i64(c, 0), kvec, lc_i64(c, 2 * LC_VL));
    for (unsigned u = 0; u < 2; u++) {
        LLVMValueRef pu = lc_add(c, p, lc_i64(c, u * LC_VL));
        LLVMValueRef xv = lc_load(c, lc_elem(c, g->bm, pu), LC_VL, 4);
        for (unsigned r = 0; r < rows; r++) {
            jit_point pt = {.w = LC_VL,
                            .loaded = {lc_load(c, lc_elem(c, arow[r], pu), LC_VL, 4), xv}};
            LLVMValueRef v = jit_lower_eval(c, &pt, g->root);
            if (!v)
                return -1;
            LLVMBuildStore(b, lc_sum_add(c, lc_get(c, acc[r][u], vt), v), acc[r][u]);
        }
    }
    lc_loop_end(c, &lp);
    for (unsigned u = 0; u < 2; u++) { /* the tail: up to two masked steps */
        LLVMValueRef pu = lc_add(c, kvec, lc_i64(c, u * LC_VL));
        LLVMValueRef left = LLVMBuildSub(b, g->k, pu, "");
        LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, left, lc_i64(c, 0), "");
        LLVMValueRef mask = lc_lane_mask(c, LLVMBuildSelect(b, neg, lc_i64(c, 0), left, ""));
        LLVMValueRef xv = lc_load_masked(c, lc_elem(c, g->bm, pu), mask, 4);
        for (unsigned r = 0; r < rows; r++) {
            LLVMValueRef av = lc_load_masked(c, lc_elem(c, arow[r], pu), mask, 4);
            jit_point pt = {.w = LC_VL, .loaded = {av, xv}};
            LLVMValueRef v = jit_lower_eval(c, &pt, g->root);
            if (!v)
                return -1;
            v = LLVMBuildSelect(b, mask, v, jit_fconst(&c->ir, -0.0f, LC_VL), "");
            LLVMBuildStore(b, lc_sum_add(c, lc_get(c, acc[r][u], vt), v), acc[r][u]);
        }
    }
    for (unsigned r = 0; r < rows; r++) {
        LLVMValueRef s = lc_sum_add(c, lc_get(c, acc[r][0], vt), lc_get(c, acc[r][1], vt));
        LLVMValueRef red[2] = {jit_fconst(&c->ir, -0.0f, 1), s};
        LLVMValueRef sum = jit_intrinsic(&c->ir, "llvm.vector.reduce.fadd", vt, red, 2);
        LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
        lc_store(c, sum, lc_elem(c, g->cm, lc_add(c, i0, lc_i64(c, r))), 4);
    }
    return 0;
}

/* The matvec path: groups of LC_DOT_ROWS rows, then single rows; rows of at least
 * LC_DOT_LONG elements all singly (one stream at a time prefetches best). */
static int lc_matvec(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef mblk = LLVMBuildAnd(b, g->m, lc_i64(c, ~(uint64_t)(LC_DOT_ROWS - 1)), "");
    LLVMValueRef lng = LLVMBuildICmp(b, LLVMIntUGE, g->k, lc_i64(c, LC_DOT_LONG), "");
    mblk = LLVMBuildSelect(b, lng, lc_i64(c, 0), mblk, "");
    lc_loop l;
    LLVMValueRef i0 = lc_loop_begin(c, &l, lc_i64(c, 0), mblk, lc_i64(c, LC_DOT_ROWS));
    if (lc_dot(c, g, i0, LC_DOT_ROWS))
        return -1;
    lc_loop_end(c, &l);
    i0 = lc_loop_begin(c, &l, mblk, g->m, lc_i64(c, 1));
    if (lc_dot(c, g, i0, 1))
        return -1;
    lc_loop_end(c, &l);
    return 0;
}

/* C = 0 (k == 0). */
static void lc_zero(jit_lower_ctx *c, const lc_shape_t *g) {
    lc_loop l;
    LLVMValueRef i = lc_loop_begin(c, &l, lc_i64(c, 0), lc_mul(c, g->m, g->n), lc_i64(c, 1));
    lc_store(c, jit_fconst(&c->ir, 0.0f, 1), lc_elem(c, g->cm, i), 4);
    lc_loop_end(c, &l);
}

int jit_lower_contract(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    if (st->reduce != CANON_RED_SUM || c->p->n_slots < 3)
        return lc_error(c, "a contraction that is not a sum over two inputs", st->reduce);
    if (st->store_slot >= c->p->n_slots || st->store_slot >= CANON_MAX_SLOTS)
        return lc_error(c, "a store to a slot the program does not have", st->store_slot);
    LLVMBuilderRef b = c->ir.b;
    int exact = c->key->spec == JIT_SPEC_CONTRACT_EXACT;
    const uint64_t *v = c->key->v;
    lc_shape_t g = {.a = c->slot[0], .bm = c->slot[1], .cm = c->slot[st->store_slot],
                    .root = st->root};
    size_t base = offsetof(canon_args, contract);
    g.m = lc_arg(c, exact, v[0], base + offsetof(canon_contract_shape, m));
    g.n = lc_arg(c, exact, v[1], base + offsetof(canon_contract_shape, n));
    g.k = lc_arg(c, exact, v[2], base + offsetof(canon_contract_shape, k));
    g.ars = lc_arg(c, exact, v[3], base + offsetof(canon_contract_shape, a_rs));
    g.acs = lc_arg(c, exact, v[4], base + offsetof(canon_contract_shape, a_cs));
    g.brs = lc_arg(c, exact, v[5], base + offsetof(canon_contract_shape, b_rs));
    g.bcs = lc_arg(c, exact, v[6], base + offsetof(canon_contract_shape, b_cs));
    if (exact && (v[0] == 0 || v[1] == 0))
        return 0;
    if (exact && v[2] == 0) {
        lc_zero(c, &g);
        return 0;
    }
    if (exact && v[6] == 1)
        return lc_direct(c, &g, v[0], v[1]);
    /* run-time choice: nothing, zeros, matvec, direct, packed */
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "contracted");
    LLVMValueRef empty = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntEQ, g.m, lc_i64(c, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntEQ, g.n, lc_i64(c, 0), ""), "");
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "work");
    LLVMBuildCondBr(b, empty, done, work);
    LLVMPositionBuilderAtEnd(b, work);
    LLVMBasicBlockRef join = lc_if(c, LLVMBuildICmp(b, LLVMIntEQ, g.k, lc_i64(c, 0), ""));
    lc_zero(c, &g);
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef dot = LLVMBuildICmp(b, LLVMIntEQ, g.n, lc_i64(c, 1), "");
    dot = LLVMBuildAnd(b, dot, LLVMBuildICmp(b, LLVMIntEQ, g.acs, lc_i64(c, 1), ""), "");
    dot = LLVMBuildAnd(b, dot, LLVMBuildICmp(b, LLVMIntEQ, g.brs, lc_i64(c, 1), ""), "");
    join = lc_if(c, dot);
    if (lc_matvec(c, &g))
        return -1;
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef small = LLVMBuildICmp(b, LLVMIntULE, lc_mul(c, g.k, g.n),
                                       lc_i64(c, LC_DIRECT_MAX_B), "");
    small = LLVMBuildAnd(b, small, LLVMBuildICmp(b, LLVMIntEQ, g.bcs, lc_i64(c, 1), ""), "");
    join = lc_if(c, small);
    if (lc_direct_any(c, &g))
        return -1;
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    if (lc_packed(c, &g))
        return -1;
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, done);
    return 0;
}
