/*
 * jit/lower_grid.c — the GRID domain: a program's stages run row by row over N-d strided
 * operands (canon_grid), specialized on the key's stride classes (jit_grid_class) and,
 * when small, the innermost extent.
 *
 *   entry: canon_args.grid → extents and the strides of class OTHER (0 and 1 are
 *          constants), read once
 *   lanes: where the vectors run, chosen from the classes:
 *     along the elements (the innermost dimension): per row, each stage is a RANGE loop
 *       over the innermost dimension (jit_sink_run: unrolled vectors, a masked tail, sums
 *       in blocks), nested in loops over the row's other element dimensions; a row's
 *       scalars are scalars
 *     across rows (the innermost row dimension), when that dimension is unit or
 *       broadcast for more operands than the innermost one (a column sum, a reduction of
 *       a transposed view): JIT_VW rows at once, one per lane, the elements in scalar
 *       loops; every stage, the row's scalars (one per lane) and the results are vectors,
 *       sums one double per lane
 *     two layouts reorder the loops: a map that gathers (a transposed operand) runs in
 *       tiles of rows (lg_tiles); a reduction across rows whose operands are contiguous
 *       along the lanes (a column sum) streams the elements outermost with the rows'
 *       accumulators in canon_args.scratch (lg_stream_rows)
 *   each operand through jit_access by its class along the lanes: unit → vector (masked)
 *   loads and stores, zero → one element splat (loaded once per row, before its lane loop,
 *   when lanes run along the elements), other → gathers and scatters
 *   rows: one loop per row dimension, offsets added per operand; the result stage's
 *   scalar stored per row (a vector of rows: a vector store or a scatter)
 */
#include <stddef.h>
#include <string.h>

#include "jit_internal.h"

/* The grid as the kernel sees it: extents and strides as i64 values (constants where the
 * key fixes them), operands 0..n_slots-1 and the result (index JIT_GRID_RESULT). */
typedef struct {
    uint32_t nd, outer;
    uint32_t lane_dim;  /* the dimension the lanes run along */
    int across_rows;    /* lanes are rows (lane_dim < outer) */
    LLVMValueRef shape[CANON_MAX_DIMS];
    LLVMValueRef stride[JIT_GRID_RESULT + 1][CANON_MAX_DIMS];
    LLVMValueRef result; /* float pointer, or NULL */
    LLVMValueRef scratch; /* canon_args.scratch (a streamed reduction's accumulators) */
} lg_grid;

/* The operands of the grid: slots 0..n_slots-1, then the result when there is one. */
static int lg_used(const jit_lower_ctx *c, const lg_grid *g, uint32_t k) {
    return k < c->p->n_slots || (k == JIT_GRID_RESULT && g->result);
}

/* The field of type ty at byte offset off of the canon_grid at gp. */
static LLVMValueRef lg_field(jit_lower_ctx *c, LLVMValueRef gp, size_t off, LLVMTypeRef ty) {
    LLVMValueRef idx = jit_i64(c, off);
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(c->ir.b, c->i8, gp, &idx, 1, "");
    return LLVMBuildLoad2(c->ir.b, ty, ptr, "");
}

/* How many operands have class OTHER along dimension d (they would gather there). */
static unsigned lg_others(const jit_lower_ctx *c, const lg_grid *g, uint32_t d) {
    unsigned n = 0;
    for (uint32_t k = 0; k <= JIT_GRID_RESULT; k++)
        if (lg_used(c, g, k) && (k < JIT_GRID_RESULT || d < g->outer))
            n += jit_grid_class(c->key, k, d) == JIT_STRIDE_OTHER;
    return n;
}

/* Reads the grid (extents, the strides the key does not fix) and picks the lanes. */
static void lg_read(jit_lower_ctx *c, lg_grid *g) {
    const jit_key *key = c->key;
    LLVMValueRef gp = jit_field(c, offsetof(canon_args, grid), c->ir.ptr);
    g->nd = (uint32_t)(key->v[0] & 0xff);
    g->outer = (uint32_t)(key->v[0] >> 8 & 0xff);
    g->result = c->p->result_stage != CANON_NONE
                    ? lg_field(c, gp, offsetof(canon_grid, result), c->ir.ptr)
                    : NULL;
    for (uint32_t d = 0; d < g->nd; d++)
        g->shape[d] = d == g->nd - 1 && key->v[1]
                          ? jit_i64(c, key->v[1] - 1)
                          : lg_field(c, gp, offsetof(canon_grid, shape) + 8 * d, c->ir.i64);
    for (uint32_t k = 0; k <= JIT_GRID_RESULT; k++) {
        if (!lg_used(c, g, k))
            continue;
        const uint32_t nd = k < JIT_GRID_RESULT ? g->nd : g->outer;
        for (uint32_t d = 0; d < nd; d++) {
            const jit_stride_class cl = jit_grid_class(key, k, d);
            const size_t off = k < JIT_GRID_RESULT
                                   ? offsetof(canon_grid, stride) + 8 * (CANON_MAX_DIMS * k + d)
                                   : offsetof(canon_grid, result_stride) + 8 * d;
            g->stride[k][d] = cl == JIT_STRIDE_OTHER ? lg_field(c, gp, off, c->ir.i64)
                                                     : jit_i64(c, cl == JIT_STRIDE_UNIT);
        }
    }
    g->lane_dim = g->nd - 1;
    g->across_rows = 0;
    if (g->outer > 0 && g->outer < g->nd &&
        lg_others(c, g, g->outer - 1) < lg_others(c, g, g->nd - 1)) {
        g->lane_dim = g->outer - 1;
        g->across_rows = 1;
    }
    c->len_f = LLVMBuildUIToFP(c->ir.b, jit_field(c, offsetof(canon_args, n), c->ir.i64),
                               c->ir.f32, "len");
    g->scratch = jit_field(c, offsetof(canon_args, scratch), c->ir.ptr);
}

/* What runs at the innermost point of a loop nest, with the element offsets of every
 * operand there; 0 or -1. */
typedef int (*lg_body_fn)(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg);

/* Loops over dimensions [d, end) except g->lane_dim, offsets off[k] advanced by index *
 * stride; then fn.  off is the operands' offsets at the start (updated copies inside). */
static int lg_nest(jit_lower_ctx *c, const lg_grid *g, uint32_t d, uint32_t end,
                   const LLVMValueRef *off, lg_body_fn fn, void *arg) {
    LLVMValueRef here[JIT_GRID_RESULT + 1];
    for (uint32_t k = 0; k <= JIT_GRID_RESULT; k++)
        here[k] = off[k];
    while (d < end && d == g->lane_dim)
        d++;
    if (d >= end)
        return fn(c, g, here, arg);
    jit_loop l;
    LLVMValueRef i = jit_loop_begin(c, &l, jit_i64(c, 0), g->shape[d], jit_i64(c, 1));
    for (uint32_t k = 0; k <= JIT_GRID_RESULT; k++)
        if (lg_used(c, g, k) && (k < JIT_GRID_RESULT || d < g->outer))
            here[k] = LLVMBuildAdd(c->ir.b, off[k], LLVMBuildMul(c->ir.b, i, g->stride[k][d], ""),
                                   "");
    if (lg_nest(c, g, d + 1, end, here, fn, arg))
        return -1;
    jit_loop_end(c, &l);
    return 0;
}

/* Points the context's lanes (base, step, class of every slot) at offsets off along the
 * lane dimension. */
static void lg_aim(jit_lower_ctx *c, const lg_grid *g, const LLVMValueRef *off) {
    for (uint32_t k = 0; k < c->p->n_slots; k++) {
        c->base[k] = jit_elem(c, c->slot[k], off[k]);
        if (g->lane_dim < g->nd) {
            c->cls[k] = (uint8_t)jit_grid_class(c->key, k, g->lane_dim);
            c->step[k] = g->stride[k][g->lane_dim];
        }
    }
}

/* lg_aim before a loop over the lanes [0, c->n): each broadcast operand's element loaded
 * once, here (from the scratch when the row is empty: a load that cannot fault). */
static void lg_aim_hoisting(jit_lower_ctx *c, const lg_grid *g, const LLVMValueRef *off) {
    lg_aim(c, g, off);
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef any = LLVMBuildICmp(b, LLVMIntNE, c->n, jit_i64(c, 0), "");
    for (uint32_t k = 0; k < c->p->n_slots; k++)
        if (c->cls[k] == JIT_STRIDE_ZERO)
            c->hoist[k] = jit_load(c, LLVMBuildSelect(b, any, c->base[k], g->scratch, ""), 1, 4);
}

/* SCALAR stage s evaluated at width w (once per row, or per lane of rows): its scalar. */
static int lg_scalar(jit_lower_ctx *c, uint32_t s, unsigned w) {
    jit_point pt = {.w = w};
    return (c->acc[s] = jit_lower_eval(c, &pt, c->p->stages[s].root)) ? 0 : -1;
}

/* The result stage's scalar (or vector of them), or NULL after recording an error. */
static LLVMValueRef lg_result(jit_lower_ctx *c) {
    const uint32_t r = c->p->result_stage;
    if (!c->acc[r])
        jit_lower_error(c, "a result stage without a scalar", r);
    return c->acc[r];
}

/* The results of JIT_VW rows at lane index i (mask: those that exist) of the rows at off,
 * stored along the lane dimension (a vector store or a scatter). */
static int lg_store_rows(jit_lower_ctx *c, const lg_grid *g, const LLVMValueRef *off,
                         LLVMValueRef i, LLVMValueRef mask) {
    LLVMValueRef v = lg_result(c);
    if (!v)
        return -1;
    const uint32_t L = g->lane_dim;
    jit_access(c, jit_elem(c, g->result, off[JIT_GRID_RESULT]), g->stride[JIT_GRID_RESULT][L],
               jit_grid_class(c->key, JIT_GRID_RESULT, L), i, JIT_VW, mask,
               jit_splat(c, v, JIT_VW));
    return 0;
}

/* ---- lanes along the elements --------------------------------------------------------- */

/* A stage's element nest (lanes along the elements) and its sink. */
typedef struct {
    jit_sink sink;
    uint32_t stage;
} lg_stage_run;

/* Innermost point of a stage's element nest: the stage's loop over the lane dimension. */
static int lg_stage_body(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    lg_stage_run *r = arg;
    lg_aim_hoisting(c, g, off);
    int rc = jit_sink_run(c, &c->p->stages[r->stage], &r->sink);
    memset(c->hoist, 0, sizeof c->hoist);
    return rc;
}

/* One row (lanes along the elements): each stage in turn, a SCALAR stage once, the
 * result stored. */
static int lg_row(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    (void)arg;
    const canon_program *p = c->p;
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        if (st->domain == CANON_DOM_SCALAR) {
            if (lg_scalar(c, s, 1))
                return -1;
            continue;
        }
        lg_stage_run r = {.stage = s};
        if (jit_sink_begin(c, st, &r.sink, 0, NULL, NULL) ||
            lg_nest(c, g, g->outer, g->nd, off, lg_stage_body, &r))
            return -1;
        c->acc[s] = jit_sink_end(c, &r.sink);
    }
    if (p->result_stage != CANON_NONE) {
        LLVMValueRef v = lg_result(c);
        if (!v)
            return -1;
        jit_store(c, v, jit_elem(c, g->result, off[JIT_GRID_RESULT]), 4);
    }
    return 0;
}

/* ---- lanes across rows ---------------------------------------------------------------- */

/* JIT_VW rows at lane index i (mask: the rows that exist, or NULL) of the rows at off. */
typedef struct {
    LLVMValueRef i, mask;
    jit_sink sink;
    uint32_t stage;
} lg_lanes;

/* Innermost point of a stage's element nest, lanes across rows: one vector of the stage. */
static int lg_lanes_point(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    lg_lanes *r = arg;
    lg_aim(c, g, off);
    LLVMValueRef v = jit_stage_point(c, &c->p->stages[r->stage], r->i, JIT_VW, r->mask);
    if (!v)
        return -1;
    jit_sink_step(c, &r->sink, 0, v, NULL);
    return 0;
}

/* JIT_VW rows at once: every stage over the elements, one lane per row. */
static int lg_rows_vector(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, lg_lanes *r) {
    const canon_program *p = c->p;
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        if (st->domain == CANON_DOM_SCALAR) {
            if (lg_scalar(c, s, JIT_VW))
                return -1;
            continue;
        }
        r->stage = s;
        if (jit_sink_begin(c, st, &r->sink, 1, NULL, NULL) ||
            lg_nest(c, g, g->outer, g->nd, off, lg_lanes_point, r))
            return -1;
        c->acc[s] = jit_sink_end(c, &r->sink);
    }
    return p->result_stage != CANON_NONE ? lg_store_rows(c, g, off, r->i, r->mask) : 0;
}

/* The rows along the lane dimension at off: full vectors of rows, then a masked one. */
static int lg_rows_across(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    (void)arg;
    LLVMValueRef n = g->shape[g->lane_dim];
    LLVMValueRef nmain = LLVMBuildAnd(c->ir.b, n, jit_i64(c, ~(uint64_t)(JIT_VW - 1)), "");
    for (int masked = 0; masked < 2; masked++) {
        jit_loop l;
        lg_lanes r = {0};
        r.i = jit_loop_begin(c, &l, masked ? nmain : jit_i64(c, 0), masked ? n : nmain,
                             jit_i64(c, JIT_VW));
        r.mask = masked ? jit_tail_mask(c, r.i, n) : NULL;
        if (lg_rows_vector(c, g, off, &r))
            return -1;
        jit_loop_end(c, &l);
    }
    return 0;
}

/* ---- tiles of rows: maps that gather ---------------------------------------------------- */
/* A map whose lanes gather an operand (a transposed view) runs in tiles of LG_TILE_ROWS rows
 * by JIT_VW lanes: the cache lines a tile's gathers bring in serve the tile's other rows
 * before they are evicted, instead of one row's sweep evicting them. */
#define LG_TILE_ROWS 16u

static int lg_tiled(const jit_lower_ctx *c, const lg_grid *g) {
    const canon_program *p = c->p;
    return !g->across_rows && g->outer >= 1 && g->outer == g->nd - 1 && p->n_stages == 1 &&
           p->stages[0].reduce == CANON_RED_NONE && p->stages[0].store_slot != CANON_NONE &&
           lg_others(c, g, g->nd - 1) > 0;
}

/* Rows [r0, r1) of the innermost row dimension at off: the vector at lanes j (mask). */
static int lg_tile(jit_lower_ctx *c, const lg_grid *g, const LLVMValueRef *off, LLVMValueRef r0,
                   LLVMValueRef r1, LLVMValueRef j, LLVMValueRef mask) {
    const uint32_t R = g->outer - 1;
    jit_loop l;
    LLVMValueRef r = jit_loop_begin(c, &l, r0, r1, jit_i64(c, 1));
    LLVMValueRef here[JIT_GRID_RESULT + 1];
    for (uint32_t k = 0; k < c->p->n_slots; k++)
        here[k] = LLVMBuildAdd(c->ir.b, off[k], LLVMBuildMul(c->ir.b, r, g->stride[k][R], ""), "");
    lg_aim(c, g, here);
    if (!jit_stage_point(c, &c->p->stages[0], j, JIT_VW, mask))
        return -1;
    jit_loop_end(c, &l);
    return 0;
}

/* The rows along the innermost row dimension at off, in tiles. */
static int lg_tiles(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    (void)arg;
    LLVMBuilderRef b = c->ir.b;
    LLVMValueRef rows = g->shape[g->outer - 1];
    jit_loop lt;
    LLVMValueRef r0 = jit_loop_begin(c, &lt, jit_i64(c, 0), rows, jit_i64(c, LG_TILE_ROWS));
    LLVMValueRef lim[2] = {LLVMBuildAdd(b, r0, jit_i64(c, LG_TILE_ROWS), ""), rows};
    LLVMValueRef r1 = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
    LLVMValueRef nmain = LLVMBuildAnd(b, c->n, jit_i64(c, ~(uint64_t)(JIT_VW - 1)), "");
    for (int masked = 0; masked < 2; masked++) {
        jit_loop l;
        LLVMValueRef j = jit_loop_begin(c, &l, masked ? nmain : jit_i64(c, 0),
                                        masked ? c->n : nmain, jit_i64(c, JIT_VW));
        if (lg_tile(c, g, off, r0, r1, j, masked ? jit_tail_mask(c, j, c->n) : NULL))
            return -1;
        jit_loop_end(c, &l);
    }
    jit_loop_end(c, &lt);
    return 0;
}

/* ---- streamed reductions: rows across lanes, elements in memory order --------------------- */
/* A reduction whose rows lie along a contiguous dimension (a column sum of a row-major
 * matrix) keeps the accumulators of LG_STREAM_LANES rows in canon_args.scratch and walks
 * the elements outermost, each a contiguous run of those rows: the loads stream through
 * memory as NumPy's do, where lanes across rows with the elements innermost would walk a
 * column (a page per element). */
#define LG_STREAM_LANES JIT_SINK_LANES
_Static_assert(JIT_SINK_BYTES <= CANON_CONTRACT_SCRATCH_FLOATS * 4,
               "a tile's accumulators fit the scratch");

static int lg_streamed(const jit_lower_ctx *c, const lg_grid *g) {
    const canon_program *p = c->p;
    if (!g->across_rows || p->n_stages < 1 || p->stages[0].domain != CANON_DOM_GRID ||
        p->stages[0].reduce == CANON_RED_NONE || p->stages[0].store_slot != CANON_NONE)
        return 0;
    for (uint32_t s = 1; s < p->n_stages; s++)
        if (p->stages[s].domain != CANON_DOM_SCALAR)
            return 0;
    for (uint32_t k = 0; k < p->n_slots; k++)
        if (jit_grid_class(c->key, k, g->lane_dim) == JIT_STRIDE_OTHER)
            return 0;
    return 1;
}

/* A streamed tile of rows: its first lane, its lane count, the sink over its blocks. */
typedef struct {
    LLVMValueRef t0, tn; /* the tile's first lane and lane count */
    jit_sink sink;
} lg_stream;

/* Elements folded per pass over a tile's blocks: a sum adds their vectors first, so its
 * accumulators are loaded and stored once per LG_STREAM_STEP elements. */
#define LG_STREAM_STEP 8u

/* `count` consecutive elements of the innermost element dimension from offsets off: every
 * block of the tile folds their vectors. */
static int lg_stream_point(jit_lower_ctx *c, const lg_grid *g, const LLVMValueRef *off,
                           unsigned count, lg_stream *t) {
    LLVMBuilderRef bld = c->ir.b;
    const uint32_t E = g->nd - 1;
    LLVMValueRef full = LLVMBuildUDiv(bld, t->tn, jit_i64(c, JIT_VW), "");
    LLVMValueRef blocks = LLVMBuildUDiv(bld, LLVMBuildAdd(bld, t->tn, jit_i64(c, JIT_VW - 1), ""),
                                        jit_i64(c, JIT_VW), "");
    LLVMValueRef end = LLVMBuildAdd(bld, t->t0, t->tn, "");
    for (int masked = 0; masked < 2; masked++) { /* the full blocks, then the partial one */
        jit_loop l;
        LLVMValueRef b = jit_loop_begin(c, &l, masked ? full : jit_i64(c, 0),
                                        masked ? blocks : full, jit_i64(c, 1));
        LLVMValueRef j = LLVMBuildAdd(bld, t->t0, LLVMBuildMul(bld, b, jit_i64(c, JIT_VW), ""), "");
        LLVMValueRef mask = masked ? jit_tail_mask(c, j, end) : NULL, sum = NULL;
        jit_sink_at(c, &t->sink, g->scratch, b);
        for (unsigned r = 0; r < count; r++) {
            LLVMValueRef here[JIT_GRID_RESULT + 1];
            for (uint32_t k = 0; k < c->p->n_slots; k++)
                here[k] = LLVMBuildAdd(bld, off[k], LLVMBuildMul(bld, jit_i64(c, r),
                                                                 g->stride[k][E], ""), "");
            lg_aim(c, g, here);
            LLVMValueRef v = jit_stage_point(c, &c->p->stages[0], j, JIT_VW, mask);
            if (!v)
                return -1;
            if (t->sink.red != CANON_RED_SUM)
                jit_sink_step(c, &t->sink, 0, v, NULL);
            else
                sum = sum ? LLVMBuildFAdd(bld, sum, v, "") : v;
        }
        if (sum)
            jit_sink_step(c, &t->sink, 0, sum, NULL);
        jit_loop_end(c, &l);
    }
    return 0;
}

/* The innermost element dimension at off in runs of JIT_SUM_LANES_RUN elements (a multiple
 * of LG_STREAM_STEP), each run followed by a flush of every block's float partials. */
static int lg_stream_run(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    lg_stream *t = arg;
    LLVMBuilderRef bld = c->ir.b;
    const uint32_t E = g->nd - 1;
    LLVMValueRef n = g->shape[E];
    jit_loop lr;
    LLVMValueRef e0 = jit_loop_begin(c, &lr, jit_i64(c, 0), n, jit_i64(c, JIT_SUM_LANES_RUN));
    LLVMValueRef lim[2] = {LLVMBuildAdd(bld, e0, jit_i64(c, JIT_SUM_LANES_RUN), ""), n};
    LLVMValueRef e1 = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
    LLVMValueRef e_main = LLVMBuildAdd(
        bld, e0,
        LLVMBuildAnd(bld, LLVMBuildSub(bld, e1, e0, ""), jit_i64(c, ~(uint64_t)(LG_STREAM_STEP - 1)), ""),
        "");
    for (int rest = 0; rest < 2; rest++) { /* LG_STREAM_STEP elements a pass, then singles */
        const unsigned count = rest ? 1 : LG_STREAM_STEP;
        jit_loop le;
        LLVMValueRef e = jit_loop_begin(c, &le, rest ? e_main : e0, rest ? e1 : e_main,
                                        jit_i64(c, count));
        LLVMValueRef here[JIT_GRID_RESULT + 1];
        for (uint32_t k = 0; k < c->p->n_slots; k++)
            here[k] = LLVMBuildAdd(bld, off[k], LLVMBuildMul(bld, e, g->stride[k][E], ""), "");
        if (lg_stream_point(c, g, here, count, t))
            return -1;
        jit_loop_end(c, &le);
    }
    if (t->sink.red == CANON_RED_SUM) {
        LLVMValueRef blocks = LLVMBuildUDiv(bld, LLVMBuildAdd(bld, t->tn, jit_i64(c, JIT_VW - 1), ""),
                                            jit_i64(c, JIT_VW), "");
        jit_loop lf;
        LLVMValueRef b = jit_loop_begin(c, &lf, jit_i64(c, 0), blocks, jit_i64(c, 1));
        jit_sink_at(c, &t->sink, g->scratch, b);
        jit_sink_flush(c, &t->sink);
        jit_loop_end(c, &lf);
    }
    jit_loop_end(c, &lr);
    return 0;
}
_Static_assert(JIT_SUM_LANES_RUN % LG_STREAM_STEP == 0, "runs are whole steps");

/* The rows along the lane dimension at off, LG_STREAM_LANES at a time: accumulators set,
 * the elements streamed, then per block the sink's value, the SCALAR stages, the result. */
static int lg_stream_rows(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    (void)arg;
    LLVMBuilderRef bld = c->ir.b;
    const canon_program *p = c->p;
    const uint32_t L = g->lane_dim;
    LLVMValueRef n = g->shape[L];
    jit_loop lt;
    lg_stream t;
    t.t0 = jit_loop_begin(c, &lt, jit_i64(c, 0), n, jit_i64(c, LG_STREAM_LANES));
    LLVMValueRef lim[2] = {LLVMBuildSub(bld, n, t.t0, ""), jit_i64(c, LG_STREAM_LANES)};
    t.tn = jit_intrinsic(&c->ir, "llvm.umin", c->ir.i64, lim, 2);
    LLVMValueRef blocks = LLVMBuildUDiv(bld, LLVMBuildAdd(bld, t.tn, jit_i64(c, JIT_VW - 1), ""),
                                        jit_i64(c, JIT_VW), "");
    jit_loop l0;
    LLVMValueRef b = jit_loop_begin(c, &l0, jit_i64(c, 0), blocks, jit_i64(c, 1));
    if (jit_sink_begin(c, &p->stages[0], &t.sink, 1, g->scratch, b))
        return -1;
    jit_loop_end(c, &l0);
    if (lg_nest(c, g, g->outer, g->nd - 1, off, lg_stream_run, &t))
        return -1;
    jit_loop l1;
    b = jit_loop_begin(c, &l1, jit_i64(c, 0), blocks, jit_i64(c, 1));
    LLVMValueRef j = LLVMBuildAdd(bld, t.t0, LLVMBuildMul(bld, b, jit_i64(c, JIT_VW), ""), "");
    LLVMValueRef mask = jit_tail_mask(c, j, LLVMBuildAdd(bld, t.t0, t.tn, ""));
    jit_sink_at(c, &t.sink, g->scratch, b);
    c->acc[0] = jit_sink_end(c, &t.sink);
    for (uint32_t s = 1; s < p->n_stages; s++)
        if (lg_scalar(c, s, JIT_VW))
            return -1;
    if (p->result_stage != CANON_NONE && lg_store_rows(c, g, off, j, mask))
        return -1;
    jit_loop_end(c, &l1);
    jit_loop_end(c, &lt);
    return 0;
}

int jit_lower_grid(jit_lower_ctx *c) {
    const canon_program *p = c->p;
    for (uint32_t s = 0; s < p->n_stages; s++)
        if (p->stages[s].domain != CANON_DOM_GRID && p->stages[s].domain != CANON_DOM_SCALAR)
            return jit_lower_error(c, "a stage outside GRID and SCALAR in a GRID program", s);
    if (p->result_stage != CANON_NONE && p->result_stage >= CANON_MAX_STAGES)
        return jit_lower_error(c, "a result stage", p->result_stage);
    lg_grid g;
    lg_read(c, &g);
    if (g.nd < 1 || g.nd > CANON_MAX_DIMS || g.outer > g.nd)
        return jit_lower_error(c, "a grid shape", g.nd);
    LLVMValueRef off[JIT_GRID_RESULT + 1];
    for (uint32_t k = 0; k <= JIT_GRID_RESULT; k++)
        off[k] = jit_i64(c, 0);
    if (lg_streamed(c, &g))
        return lg_nest(c, &g, 0, g.outer, off, lg_stream_rows, NULL);
    if (g.across_rows) /* c->n unused: the lanes' loop is lg_rows_across's */
        return lg_nest(c, &g, 0, g.outer, off, lg_rows_across, NULL);
    if (g.outer == g.nd) { /* rows of one element: lanes over a dimension of extent 1 */
        g.lane_dim = g.nd;
        c->n = jit_i64(c, 1);
        for (uint32_t k = 0; k < p->n_slots; k++)
            c->cls[k] = JIT_STRIDE_UNIT;
    } else {
        c->n = g.shape[g.nd - 1];
    }
    if (lg_tiled(c, &g))
        return lg_nest(c, &g, 0, g.outer - 1, off, lg_tiles, NULL);
    return lg_nest(c, &g, 0, g.outer, off, lg_row, NULL);
}
