/*
 * jit/lower_contract.c — the CONTRACT domain:
 *   C[i*n + j] = sum_p root(A[i*a_rs + p*a_cs], B[p*b_rs + j*b_cs])
 *
 *   m == 0 or n == 0           nothing;  k == 0: C = 0
 *   exact shape, b_cs == 1     direct tiles read straight from A and B: column blocks of
 *                              up to LC_MAX_NV vectors (one masked block for the rest),
 *                              rows split evenly (lc_pick_mr, clamped to m - 1)
 *   n == 1, a_cs == b_rs == 1  matvec (exact shapes too): LC_DOT_ROWS rows at a time (rows of LC_DOT_LONG or
 *                              more one at a time), vector loads of A's rows and x, two
 *                              accumulators per row, a masked tail, horizontal sums
 *   m <= LC_VEC_MAXM, b_cs == 1  few rows: each of C's rows accumulates LC_VEC_ROWS rows
 *                              of B per sweep (B read sequentially, once per row)
 *   b_cs == 1, k*n small       direct LC_MR x LC_NR tiles at run time (B stays in L2);
 *     or m <= LC_MR            also (one stripe of rows: B is streamed once, unpacked)
 *   otherwise (any strides)    packed, cache-blocked (loops jc → pc → ir → jq):
 *                              jc: LC_NC-column panels; pc: LC_KC-deep slices;
 *                              B(slice, panel) packed into LC_NR-wide micro-panels (masked
 *                              loads, or gathers when b_cs != 1; zero columns at the edge)
 *                              at args->scratch (512 KiB); ir: LC_MR-row stripes of A
 *                              packed p-major after them (12 KiB, stays in L1); jq:
 *                              LC_MR x LC_NR register tiles (LC_MR x LC_VL for the last
 *                              <= 16 columns), which prefetch their C rows and the next
 *                              stripe of A; slices after the first add into C.
 *
 * Tiles evaluate the stage's expression on (broadcast a, vector b) and add it with a
 * contractable reassoc fadd, so MUL becomes one FMA.  Padded rows and columns are computed
 * and never stored.  Kernels keep small frames: the packing space is canon_args.scratch
 * (CANON_CONTRACT_SCRATCH_FLOATS, 64-byte aligned; jit_run refuses a CONTRACT call
 * without it), which the runtime keeps per thread and reuses.
 */
#include <stddef.h>

#include "jit_internal.h"

#define LC_VL 16          /* lanes of one AVX-512 register */
#define LC_MR 12          /* rows of the packed micro-kernel */
#define LC_NV 2           /* vectors per row of the packed micro-kernel */
#define LC_NR (LC_NV * LC_VL)
#define LC_KC 256         /* depth of a packed slice */
#define LC_NC 512         /* columns of a packed B panel: LC_KC * LC_NC * 4 = 512 KiB */
#define LC_BPACK_FLOATS (LC_KC * LC_NC) /* scratch: packed B, then packed A (64-aligned) */
#define LC_MAX_MR 16      /* rows of a direct tile */
#define LC_MAX_NV 4       /* vectors per row of a direct tile */
#define LC_MAX_ACC 24     /* accumulator registers of a tile */
#define LC_DOT_ROWS 4     /* rows of a matvec step */
#define LC_DOT_LONG 512   /* matvec rows at least this long go one at a time */
#define LC_VEC_ROWS 4     /* rows of B per sweep of the few-rows path */
#define LC_VEC_MAXM 4     /* rows of C the few-rows path takes (1x1024x1024: 0.98x OpenBLAS
                             at one thread, m = 2: direct tiles were 0.32x, m = 8: 1.06x) */
#define LC_DIRECT_MAX_B (128u * 1024) /* B elements (512 KiB) read unpacked at run time */

_Static_assert(LC_BPACK_FLOATS + LC_KC * LC_MR <= CANON_CONTRACT_SCRATCH_FLOATS,
               "the packed gemm needs more scratch than canon_args provides");

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

/* The i64 vector <0, 1, ..., LC_VL - 1>. */
static LLVMValueRef lc_iota(jit_lower_ctx *c) {
    LLVMValueRef lanes[LC_VL];
    for (unsigned l = 0; l < LC_VL; l++)
        lanes[l] = jit_i64(c, l);
    return LLVMConstVector(lanes, LC_VL);
}

/* Lanes [0, LC_VL) below `count` (i64, any value) as a mask. */
static LLVMValueRef lc_lane_mask(jit_lower_ctx *c, LLVMValueRef count) {
    return LLVMBuildICmp(c->ir.b, LLVMIntULT, lc_iota(c), jit_splat(c, count, LC_VL), "");
}

/* B(p, j .. j + LC_VL) with column stride bcs where mask is set, zeros elsewhere. */
static LLVMValueRef lc_gather(jit_lower_ctx *c, LLVMValueRef ptr, LLVMValueRef bcs,
                              LLVMValueRef mask) {
    LLVMValueRef idx = LLVMBuildMul(c->ir.b, lc_iota(c), jit_splat(c, bcs, LC_VL), "");
    LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(c->ir.b, c->ir.f32, ptr, &idx, 1, "");
    LLVMValueRef args[4] = {ptrs, LLVMConstInt(c->ir.i32, 4, 0), mask,
                            jit_fconst(&c->ir, 0.0f, LC_VL)};
    return jit_mem_call(c, "llvm.masked.gather", LLVMVectorType(c->ir.f32, LC_VL),
                        LLVMVectorType(c->ir.ptr, LC_VL), args, 4);
}

/* The tile's sums into acc[r * nv + v] (entry-block variables); 0 or -1. */
static int lc_tile_sum(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                       LLVMValueRef *acc) {
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, LC_VL);
    for (unsigned i = 0; i < t->mr * t->nv; i++)
        acc[i] = jit_var(c, vt, jit_fconst(&c->ir, 0.0f, LC_VL));
    jit_loop lp;
    LLVMValueRef p = jit_loop_begin(c, &lp, jit_i64(c, 0), t->kk, jit_i64(c, 1));
    LLVMValueRef brow = jit_elem(c, t->bp, lc_mul(c, p, t->b_ps));
    LLVMValueRef bv[LC_MAX_NV];
    for (unsigned v = 0; v < t->nv; v++)
        bv[v] = jit_masked_load(c, jit_elem(c, brow, jit_i64(c, v * LC_VL)), LC_VL, t->mask[v],
                                t->b_align);
    LLVMValueRef pa = lc_mul(c, p, t->a_ps);
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef a = jit_splat(c, jit_load(c, jit_elem(c, t->arow[r], pa), 1, 4), LC_VL);
        for (unsigned v = 0; v < t->nv; v++) {
            jit_point pt = {.w = LC_VL, .loaded = {a, bv[v]}};
            LLVMValueRef x = jit_lower_eval(c, &pt, g->root);
            if (!x)
                return -1;
            LLVMValueRef *av = &acc[r * t->nv + v];
            LLVMBuildStore(b, jit_sum_add(c, jit_get(c, *av, vt), x), *av);
        }
    }
    jit_loop_end(c, &lp);
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
            join = lc_if(c, LLVMBuildICmp(c->ir.b, LLVMIntULT, jit_i64(c, r), rows, ""));
        LLVMValueRef cr = jit_elem(c, crow, lc_mul(c, jit_i64(c, r), g->n));
        for (unsigned v = 0; v < t->nv; v++) {
            LLVMValueRef ptr = jit_elem(c, cr, jit_i64(c, v * LC_VL));
            LLVMValueRef x = jit_get(c, acc[r * t->nv + v], vt);
            if (add) {
                LLVMValueRef old = jit_masked_load(c, ptr, LC_VL, t->mask[v], 4);
                LLVMValueRef sum = LLVMBuildFAdd(c->ir.b, old, x, "");
                x = LLVMBuildSelect(c->ir.b, add, sum, x, "");
            }
            jit_masked_store(c, x, ptr, t->mask[v], 4);
        }
        if (join)
            lc_if_end(c, join);
    }
}

/* Column masks of a tile whose first column is `left` columns before the edge. */
static void lc_tile_masks(jit_lower_ctx *c, lc_tile *t, LLVMValueRef left) {
    for (unsigned v = 0; v < t->nv; v++) {
        LLVMValueRef rem = LLVMBuildSub(c->ir.b, left, jit_i64(c, v * LC_VL), "");
        LLVMValueRef neg = LLVMBuildICmp(c->ir.b, LLVMIntSLT, rem, jit_i64(c, 0), "");
        t->mask[v] = lc_lane_mask(c, LLVMBuildSelect(c->ir.b, neg, jit_i64(c, 0), rem, ""));
    }
}

/* Points arow[r] at row min(i0 + r, m - 1) of A, column p0. */
static void lc_tile_rows(jit_lower_ctx *c, const lc_shape_t *g, lc_tile *t, LLVMValueRef i0,
                         LLVMValueRef p0) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, g->m, jit_i64(c, 1), "");
    LLVMValueRef pofs = lc_mul(c, p0, g->acs);
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef i = lc_umin(c, lc_add(c, i0, jit_i64(c, r)), last);
        t->arow[r] = jit_elem(c, g->a, lc_add(c, lc_mul(c, i, g->ars), pofs));
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
    jit_loop li;
    LLVMValueRef i0 = jit_loop_begin(c, &li, jit_i64(c, 0), g->m, jit_i64(c, t.mr));
    lc_tile_rows(c, g, &t, i0, jit_i64(c, 0));
    if (edge)
        lc_tile_masks(c, &t, LLVMBuildSub(c->ir.b, g->n, j0, ""));
    t.bp = jit_elem(c, g->bm, j0);
    if (lc_tile_sum(c, g, &t, acc))
        return -1;
    LLVMValueRef crow = jit_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), j0));
    lc_tile_store(c, g, &t, acc, LLVMBuildSub(c->ir.b, g->m, i0, ""), crow, NULL);
    jit_loop_end(c, &li);
    return 0;
}

/* Exact shapes with b_cs == 1: column blocks of up to LC_MAX_NV vectors, then one
 * narrower block for the remaining columns. */
static int lc_direct(jit_lower_ctx *c, const lc_shape_t *g, uint64_t m, uint64_t n) {
    unsigned nv = n >= LC_MAX_NV * LC_VL ? LC_MAX_NV : n >= LC_VL ? (unsigned)(n / LC_VL) : 1;
    uint64_t full = n / (nv * LC_VL) * (nv * LC_VL);
    if (full == nv * LC_VL) {
        if (lc_direct_cols(c, g, m, jit_i64(c, 0), nv, 0))
            return -1;
    } else if (full) {
        jit_loop lj;
        LLVMValueRef j0 = jit_loop_begin(c, &lj, jit_i64(c, 0), jit_i64(c, full),
                                        jit_i64(c, nv * LC_VL));
        if (lc_direct_cols(c, g, m, j0, nv, 0))
            return -1;
        jit_loop_end(c, &lj);
    }
    if (full == n)
        return 0;
    return lc_direct_cols(c, g, m, jit_i64(c, full), (unsigned)((n - full + LC_VL - 1) / LC_VL),
                          1);
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

/* Prefetches (for writing) the C rows a tile will store, so that their cache misses
 * overlap the tile's sums; rows past the edge are clamped to the last one. */
static void lc_tile_prefetch(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                             LLVMValueRef rows, LLVMValueRef crow) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, rows, jit_i64(c, 1), "");
    for (unsigned r = 0; r < t->mr; r++) {
        LLVMValueRef row = lc_umin(c, jit_i64(c, r), last);
        LLVMValueRef at = lc_mul(c, row, g->n);
        for (unsigned v = 0; v < t->nv; v++)
            lc_prefetch(c, crow, lc_add(c, at, jit_i64(c, v * LC_VL)), 1);
    }
}

/* One tile of t->nv vectors whose first column is `left` columns before the edge: sums,
 * then stores (adding to C when `add`).  `packed`: B is a packed panel (unmasked loads,
 * C rows prefetched); else B is read in place (masked like C's columns). */
static int lc_edge_tile(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                        LLVMValueRef left, LLVMValueRef rows, LLVMValueRef crow,
                        LLVMValueRef add, int packed) {
    LLVMValueRef acc[LC_MAX_ACC];
    lc_tile edge = *t;
    lc_tile_masks(c, &edge, left);
    if (packed)
        lc_tile_prefetch(c, g, t, rows, crow);
    if (lc_tile_sum(c, g, packed ? t : &edge, acc))
        return -1;
    lc_tile_store(c, g, &edge, acc, rows, crow, add);
    return 0;
}

/* One column step of a stripe (lc_edge_tile): LC_NV vectors wide when more than LC_VL
 * columns are left, else one vector wide. */
static int lc_col_step(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                       LLVMValueRef left, LLVMValueRef rows, LLVMValueRef crow,
                       LLVMValueRef add, int packed) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef wide = LLVMBuildICmp(b, LLVMIntUGT, left, jit_i64(c, LC_VL), "");
    LLVMBasicBlockRef narrow = lc_if(c, wide);
    LLVMBasicBlockRef next = NULL;
    lc_tile u = *t;
    for (u.nv = LC_NV;; u.nv = 1) {
        if (lc_edge_tile(c, g, &u, left, rows, crow, add, packed))
            return -1;
        if (!next)
            next = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "next");
        LLVMBuildBr(b, next);
        if (u.nv == 1)
            break;
        LLVMPositionBuilderAtEnd(b, narrow);
    }
    LLVMPositionBuilderAtEnd(b, next);
    return 0;
}

/* Run-time shapes with b_cs == 1 and a B that stays in L2: LC_MR x LC_NR tiles read
 * straight from A and B (LC_MR x LC_VL for the last <= 16 columns). */
static int lc_direct_any(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    lc_tile t = {.nv = LC_NV, .mr = LC_MR, .a_ps = g->acs, .b_ps = g->brs, .b_align = 4,
                 .kk = g->k};
    jit_loop li, lj;
    LLVMValueRef i0 = jit_loop_begin(c, &li, jit_i64(c, 0), g->m, jit_i64(c, LC_MR));
    lc_tile_rows(c, g, &t, i0, jit_i64(c, 0));
    LLVMValueRef rows = LLVMBuildSub(b, g->m, i0, "");
    LLVMValueRef j0 = jit_loop_begin(c, &lj, jit_i64(c, 0), g->n, jit_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, g->n, j0, "");
    LLVMValueRef crow = jit_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), j0));
    t.bp = jit_elem(c, g->bm, j0);
    if (lc_col_step(c, g, &t, left, rows, crow, NULL, 0))
        return -1;
    jit_loop_end(c, &lj);
    jit_loop_end(c, &li);
    return 0;
}

/* Packs B(pc .. pc + kcb, jc .. jc + ncb) into LC_NR-wide micro-panels at bpack:
 * panel q holds kcb rows of LC_NR floats at bpack + q * LC_NR * kcb. */
static void lc_pack_b(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef bpack,
                      LLVMValueRef pc, LLVMValueRef kcb, LLVMValueRef jc, LLVMValueRef ncb) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef unit = LLVMBuildICmp(b, LLVMIntEQ, g->bcs, jit_i64(c, 1), "");
    jit_loop lq, lp;
    LLVMValueRef jq = jit_loop_begin(c, &lq, jit_i64(c, 0), ncb, jit_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, ncb, jq, "");
    lc_tile t = {.nv = LC_NV};
    lc_tile_masks(c, &t, left);
    LLVMValueRef panel = jit_elem(c, bpack, lc_mul(c, jq, kcb));
    LLVMValueRef col = lc_mul(c, lc_add(c, jc, jq), g->bcs);
    LLVMValueRef p = jit_loop_begin(c, &lp, jit_i64(c, 0), kcb, jit_i64(c, 1));
    LLVMValueRef src = jit_elem(c, g->bm, lc_add(c, lc_mul(c, lc_add(c, pc, p), g->brs), col));
    LLVMValueRef dst = jit_elem(c, panel, lc_mul(c, p, jit_i64(c, LC_NR)));
    for (unsigned v = 0; v < LC_NV; v++) {
        LLVMValueRef s = jit_elem(c, src, lc_mul(c, jit_i64(c, v * LC_VL), g->bcs));
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "contig");
        LLVMBasicBlockRef other = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "gather");
        LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "packed");
        LLVMBuildCondBr(b, unit, then, other);
        LLVMPositionBuilderAtEnd(b, then);
        LLVMValueRef x0 = jit_masked_load(c, s, LC_VL, t.mask[v], 4);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, other);
        LLVMValueRef x1 = lc_gather(c, s, g->bcs, t.mask[v]);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, join);
        LLVMValueRef x = LLVMBuildPhi(b, LLVMVectorType(c->ir.f32, LC_VL), "");
        LLVMValueRef in[2] = {x0, x1};
        LLVMBasicBlockRef from[2] = {then, other};
        LLVMAddIncoming(x, in, from, 2);
        jit_store(c, x, jit_elem(c, dst, jit_i64(c, v * LC_VL)), 64);
    }
    jit_loop_end(c, &lp);
    jit_loop_end(c, &lq);
}

/* Packs A(rows of t->arow, p in [0, kcb)) p-major into apack: apack[p * LC_MR + r]. */
static void lc_pack_a(jit_lower_ctx *c, const lc_shape_t *g, const lc_tile *t,
                      LLVMValueRef apack, LLVMValueRef kcb) {
    jit_loop lp;
    LLVMValueRef p = jit_loop_begin(c, &lp, jit_i64(c, 0), kcb, jit_i64(c, 1));
    LLVMValueRef pa = lc_mul(c, p, g->acs);
    LLVMValueRef dst = jit_elem(c, apack, lc_mul(c, p, jit_i64(c, LC_MR)));
    for (unsigned r = 0; r < LC_MR; r++) {
        LLVMValueRef x = jit_load(c, jit_elem(c, t->arow[r], pa), 1, 4);
        jit_store(c, x, jit_elem(c, dst, jit_i64(c, r)), 4);
    }
    jit_loop_end(c, &lp);
}

/* Prefetches two cache lines, from column p0 on, of each row of the next LC_MR-row stripe
 * of A: spread over a stripe's tiles, the next A pack finds its data in cache. */
static void lc_prefetch_next_a(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef i0,
                               LLVMValueRef p0) {
    LLVMValueRef last = LLVMBuildSub(c->ir.b, g->m, jit_i64(c, 1), "");
    for (unsigned r = 0; r < LC_MR; r++) {
        LLVMValueRef i = lc_umin(c, lc_add(c, i0, jit_i64(c, LC_MR + r)), last);
        LLVMValueRef at = lc_add(c, lc_mul(c, i, g->ars), lc_mul(c, p0, g->acs));
        for (unsigned h = 0; h < 2; h++)
            lc_prefetch(c, g->a, lc_add(c, at, lc_mul(c, jit_i64(c, h * LC_VL), g->acs)), 0);
    }
}

/* The packed, cache-blocked product for any strides (m, n, k >= 1 at run time). */
static int lc_packed(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef bpack = jit_field(c, offsetof(canon_args, scratch), c->ir.ptr);
    LLVMValueRef apack = jit_elem(c, bpack, jit_i64(c, LC_BPACK_FLOATS));
    jit_loop lj, lk, li, lq;
    LLVMValueRef jc = jit_loop_begin(c, &lj, jit_i64(c, 0), g->n, jit_i64(c, LC_NC));
    LLVMValueRef ncb = lc_umin(c, LLVMBuildSub(b, g->n, jc, ""), jit_i64(c, LC_NC));
    LLVMValueRef pc = jit_loop_begin(c, &lk, jit_i64(c, 0), g->k, jit_i64(c, LC_KC));
    LLVMValueRef kcb = lc_umin(c, LLVMBuildSub(b, g->k, pc, ""), jit_i64(c, LC_KC));
    LLVMValueRef add = LLVMBuildICmp(b, LLVMIntNE, pc, jit_i64(c, 0), "");
    lc_pack_b(c, g, bpack, pc, kcb, jc, ncb);
    LLVMValueRef i0 = jit_loop_begin(c, &li, jit_i64(c, 0), g->m, jit_i64(c, LC_MR));
    lc_tile t = {.mr = LC_MR, .nv = LC_NV, .a_ps = jit_i64(c, LC_MR), .b_ps = jit_i64(c, LC_NR),
                 .b_align = 64, .kk = kcb};
    lc_tile_rows(c, g, &t, i0, pc);
    lc_pack_a(c, g, &t, apack, kcb);
    for (unsigned r = 0; r < LC_MR; r++)
        t.arow[r] = jit_elem(c, apack, jit_i64(c, r));
    LLVMValueRef rows = LLVMBuildSub(b, g->m, i0, "");
    LLVMValueRef jq = jit_loop_begin(c, &lq, jit_i64(c, 0), ncb, jit_i64(c, LC_NR));
    LLVMValueRef left = LLVMBuildSub(b, ncb, jq, "");
    LLVMValueRef crow = jit_elem(c, g->cm, lc_add(c, lc_mul(c, i0, g->n), lc_add(c, jc, jq)));
    t.bp = jit_elem(c, bpack, lc_mul(c, jq, kcb));
    LLVMValueRef pf = LLVMBuildUDiv(b, lc_mul(c, jq, jit_i64(c, LC_KC)), jit_i64(c, LC_NC), "");
    lc_prefetch_next_a(c, g, i0, lc_add(c, pc, pf)); /* tiles spread over the slice */
    if (lc_col_step(c, g, &t, left, rows, crow, add, 1))
        return -1;
    jit_loop_end(c, &lq);
    jit_loop_end(c, &li);
    jit_loop_end(c, &lk);
    jit_loop_end(c, &lj);
    return 0;
}

/* Rows [i0, i0 + rows) of a matvec (n == 1, a_cs == b_rs == 1):
 * C[i] = sum_p root(A[i*a_rs + p], x[p]). */
static int lc_dot(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef i0, unsigned rows) {
    LLVMBuilderRef b = c->ir.b;
    LLVMTypeRef vt = LLVMVectorType(c->ir.f32, LC_VL);
    LLVMValueRef acc[LC_DOT_ROWS][2], arow[LC_DOT_ROWS];
    for (unsigned r = 0; r < rows; r++) {
        arow[r] = jit_elem(c, g->a, lc_mul(c, lc_add(c, i0, jit_i64(c, r)), g->ars));
        for (unsigned u = 0; u < 2; u++)
            acc[r][u] = jit_var(c, vt, jit_fconst(&c->ir, 0.0f, LC_VL));
    }
    LLVMValueRef kvec = LLVMBuildAnd(b, g->k, jit_i64(c, ~(uint64_t)(2 * LC_VL - 1)), "");
    jit_loop lp;
    LLVMValueRef p = jit_loop_begin(c, &lp, jit_i64(c, 0), kvec, jit_i64(c, 2 * LC_VL));
    for (unsigned u = 0; u < 2; u++) {
        LLVMValueRef pu = lc_add(c, p, jit_i64(c, u * LC_VL));
        LLVMValueRef xv = jit_load(c, jit_elem(c, g->bm, pu), LC_VL, 4);
        for (unsigned r = 0; r < rows; r++) {
            jit_point pt = {.w = LC_VL,
                            .loaded = {jit_load(c, jit_elem(c, arow[r], pu), LC_VL, 4), xv}};
            LLVMValueRef v = jit_lower_eval(c, &pt, g->root);
            if (!v)
                return -1;
            LLVMBuildStore(b, jit_sum_add(c, jit_get(c, acc[r][u], vt), v), acc[r][u]);
        }
    }
    jit_loop_end(c, &lp);
    for (unsigned u = 0; u < 2; u++) { /* the tail: up to two masked steps */
        LLVMValueRef pu = lc_add(c, kvec, jit_i64(c, u * LC_VL));
        LLVMValueRef left = LLVMBuildSub(b, g->k, pu, "");
        LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, left, jit_i64(c, 0), "");
        LLVMValueRef mask = lc_lane_mask(c, LLVMBuildSelect(b, neg, jit_i64(c, 0), left, ""));
        LLVMValueRef xv = jit_masked_load(c, jit_elem(c, g->bm, pu), LC_VL, mask, 4);
        for (unsigned r = 0; r < rows; r++) {
            LLVMValueRef av = jit_masked_load(c, jit_elem(c, arow[r], pu), LC_VL, mask, 4);
            jit_point pt = {.w = LC_VL, .loaded = {av, xv}};
            LLVMValueRef v = jit_lower_eval(c, &pt, g->root);
            if (!v)
                return -1;
            v = LLVMBuildSelect(b, mask, v, jit_fconst(&c->ir, -0.0f, LC_VL), "");
            LLVMBuildStore(b, jit_sum_add(c, jit_get(c, acc[r][u], vt), v), acc[r][u]);
        }
    }
    for (unsigned r = 0; r < rows; r++) {
        LLVMValueRef s = jit_sum_add(c, jit_get(c, acc[r][0], vt), jit_get(c, acc[r][1], vt));
        LLVMValueRef red[2] = {jit_fconst(&c->ir, -0.0f, 1), s};
        LLVMValueRef sum = jit_intrinsic(&c->ir, "llvm.vector.reduce.fadd", vt, red, 2);
        LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
        jit_store(c, sum, jit_elem(c, g->cm, lc_add(c, i0, jit_i64(c, r))), 4);
    }
    return 0;
}

/* The matvec path: groups of LC_DOT_ROWS rows, then single rows; rows of at least
 * LC_DOT_LONG elements all singly (one stream at a time prefetches best). */
static int lc_matvec(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef mblk = LLVMBuildAnd(b, g->m, jit_i64(c, ~(uint64_t)(LC_DOT_ROWS - 1)), "");
    LLVMValueRef lng = LLVMBuildICmp(b, LLVMIntUGE, g->k, jit_i64(c, LC_DOT_LONG), "");
    mblk = LLVMBuildSelect(b, lng, jit_i64(c, 0), mblk, "");
    jit_loop l;
    LLVMValueRef i0 = jit_loop_begin(c, &l, jit_i64(c, 0), mblk, jit_i64(c, LC_DOT_ROWS));
    if (lc_dot(c, g, i0, LC_DOT_ROWS))
        return -1;
    jit_loop_end(c, &l);
    i0 = jit_loop_begin(c, &l, mblk, g->m, jit_i64(c, 1));
    if (lc_dot(c, g, i0, 1))
        return -1;
    jit_loop_end(c, &l);
    return 0;
}

/* One step of the few-rows path for row i: C[i, j..) += sum over the `rows` rows p0.. of
 * B of root(A[i, p], B[p, j..]) for every vector of columns (a masked one for the last). */
static int lc_vecmat_step(jit_lower_ctx *c, const lc_shape_t *g, LLVMValueRef arow,
                          LLVMValueRef crow, LLVMValueRef p0, unsigned rows) {
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef a[LC_VEC_ROWS], brow[LC_VEC_ROWS];
    for (unsigned u = 0; u < rows; u++) {
        LLVMValueRef p = lc_add(c, p0, jit_i64(c, u));
        a[u] = jit_splat(c, jit_load(c, jit_elem(c, arow, lc_mul(c, p, g->acs)), 1, 4), LC_VL);
        brow[u] = jit_elem(c, g->bm, lc_mul(c, p, g->brs));
    }
    LLVMValueRef nvec = LLVMBuildAnd(b, g->n, jit_i64(c, ~(uint64_t)(LC_VL - 1)), "");
    for (int tail = 0; tail < 2; tail++) {
        jit_loop lj;
        LLVMValueRef j = tail ? nvec
                              : jit_loop_begin(c, &lj, jit_i64(c, 0), nvec, jit_i64(c, LC_VL));
        LLVMBasicBlockRef join = NULL;
        LLVMValueRef mask = NULL;
        if (tail) {
            join = lc_if(c, LLVMBuildICmp(b, LLVMIntULT, nvec, g->n, ""));
            mask = lc_lane_mask(c, LLVMBuildSub(b, g->n, nvec, ""));
        }
        LLVMValueRef cp = jit_elem(c, crow, j);
        LLVMValueRef acc = jit_masked_load(c, cp, LC_VL, mask, 4);
        for (unsigned u = 0; u < rows; u++) {
            LLVMValueRef bv = jit_masked_load(c, jit_elem(c, brow[u], j), LC_VL, mask, 4);
            jit_point pt = {.w = LC_VL, .loaded = {a[u], bv}};
            LLVMValueRef x = jit_lower_eval(c, &pt, g->root);
            if (!x)
                return -1;
            acc = jit_sum_add(c, acc, x);
        }
        jit_masked_store(c, acc, cp, mask, 4);
        if (tail)
            lc_if_end(c, join);
        else
            jit_loop_end(c, &lj);
    }
    return 0;
}

/* m <= LC_VEC_MAXM with b_cs == 1 (a few rows times a row-major matrix), row by row: C's
 * row is the accumulator, B read row after row, LC_VEC_ROWS rows per sweep, so that every
 * load of B is sequential (column tiles would read B in 4 KiB strides, which the
 * prefetchers do not follow across pages).  Sums run over p in order, as in the tiles. */
static int lc_vecmat(jit_lower_ctx *c, const lc_shape_t *g) {
    LLVMBuilderRef b = c->ir.b;
    jit_loop li, l;
    LLVMValueRef i = jit_loop_begin(c, &li, jit_i64(c, 0), g->m, jit_i64(c, 1));
    LLVMValueRef arow = jit_elem(c, g->a, lc_mul(c, i, g->ars));
    LLVMValueRef crow = jit_elem(c, g->cm, lc_mul(c, i, g->n));
    LLVMValueRef j = jit_loop_begin(c, &l, jit_i64(c, 0), g->n, jit_i64(c, 1));
    jit_store(c, jit_fconst(&c->ir, 0.0f, 1), jit_elem(c, crow, j), 4);
    jit_loop_end(c, &l);
    LLVMValueRef kblk = LLVMBuildAnd(b, g->k, jit_i64(c, ~(uint64_t)(LC_VEC_ROWS - 1)), "");
    LLVMValueRef p0 = jit_loop_begin(c, &l, jit_i64(c, 0), kblk, jit_i64(c, LC_VEC_ROWS));
    if (lc_vecmat_step(c, g, arow, crow, p0, LC_VEC_ROWS))
        return -1;
    jit_loop_end(c, &l);
    p0 = jit_loop_begin(c, &l, kblk, g->k, jit_i64(c, 1));
    if (lc_vecmat_step(c, g, arow, crow, p0, 1))
        return -1;
    jit_loop_end(c, &l);
    jit_loop_end(c, &li);
    return 0;
}

/* C = 0 (k == 0). */
static void lc_zero(jit_lower_ctx *c, const lc_shape_t *g) {
    jit_loop l;
    LLVMValueRef i = jit_loop_begin(c, &l, jit_i64(c, 0), lc_mul(c, g->m, g->n), jit_i64(c, 1));
    jit_store(c, jit_fconst(&c->ir, 0.0f, 1), jit_elem(c, g->cm, i), 4);
    jit_loop_end(c, &l);
}

int jit_lower_contract(jit_lower_ctx *c, uint32_t s) {
    const canon_stage *st = &c->p->stages[s];
    if (st->reduce != CANON_RED_SUM || c->p->n_slots < 3)
        return jit_lower_error(c, "a contraction that is not a sum over two inputs", st->reduce);
    if (st->store_slot >= c->p->n_slots || st->store_slot >= CANON_MAX_SLOTS)
        return jit_lower_error(c, "a store to a slot the program does not have", st->store_slot);
    LLVMBuilderRef b = c->ir.b;
    int exact = c->key->spec == JIT_SPEC_CONTRACT_EXACT;
    const uint64_t *v = c->key->v;
    lc_shape_t g = {.a = c->slot[0], .bm = c->slot[1], .cm = c->slot[st->store_slot],
                    .root = st->root};
    size_t base = offsetof(canon_args, contract);
    g.m = jit_shape(c, exact, v[0], base + offsetof(canon_contract_shape, m));
    g.n = jit_shape(c, exact, v[1], base + offsetof(canon_contract_shape, n));
    g.k = jit_shape(c, exact, v[2], base + offsetof(canon_contract_shape, k));
    g.ars = jit_shape(c, exact, v[3], base + offsetof(canon_contract_shape, a_rs));
    g.acs = jit_shape(c, exact, v[4], base + offsetof(canon_contract_shape, a_cs));
    g.brs = jit_shape(c, exact, v[5], base + offsetof(canon_contract_shape, b_rs));
    g.bcs = jit_shape(c, exact, v[6], base + offsetof(canon_contract_shape, b_cs));
    if (exact && (v[0] == 0 || v[1] == 0))
        return 0;
    if (exact && v[2] == 0) {
        lc_zero(c, &g);
        return 0;
    }
    if (exact && v[1] == 1 && v[4] == 1 && v[5] == 1)
        return lc_matvec(c, &g);
    if (exact && v[6] == 1)
        return lc_direct(c, &g, v[0], v[1]);
    /* run-time choice: nothing, zeros, matvec, direct, packed */
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "contracted");
    LLVMValueRef empty = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntEQ, g.m, jit_i64(c, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntEQ, g.n, jit_i64(c, 0), ""), "");
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(c->ir.ctx, c->fn, "work");
    LLVMBuildCondBr(b, empty, done, work);
    LLVMPositionBuilderAtEnd(b, work);
    LLVMBasicBlockRef join = lc_if(c, LLVMBuildICmp(b, LLVMIntEQ, g.k, jit_i64(c, 0), ""));
    lc_zero(c, &g);
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef dot = LLVMBuildICmp(b, LLVMIntEQ, g.n, jit_i64(c, 1), "");
    dot = LLVMBuildAnd(b, dot, LLVMBuildICmp(b, LLVMIntEQ, g.acs, jit_i64(c, 1), ""), "");
    dot = LLVMBuildAnd(b, dot, LLVMBuildICmp(b, LLVMIntEQ, g.brs, jit_i64(c, 1), ""), "");
    join = lc_if(c, dot);
    if (lc_matvec(c, &g))
        return -1;
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef row = LLVMBuildICmp(b, LLVMIntULE, g.m, jit_i64(c, LC_VEC_MAXM), "");
    row = LLVMBuildAnd(b, row, LLVMBuildICmp(b, LLVMIntEQ, g.bcs, jit_i64(c, 1), ""), "");
    join = lc_if(c, row);
    if (lc_vecmat(c, &g))
        return -1;
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, join);
    LLVMValueRef small = LLVMBuildICmp(b, LLVMIntULE, lc_mul(c, g.k, g.n),
                                       jit_i64(c, LC_DIRECT_MAX_B), "");
    small = LLVMBuildOr(b, small, LLVMBuildICmp(b, LLVMIntULE, g.m, jit_i64(c, LC_MR), ""), "");
    small = LLVMBuildAnd(b, small, LLVMBuildICmp(b, LLVMIntEQ, g.bcs, jit_i64(c, 1), ""), "");
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
