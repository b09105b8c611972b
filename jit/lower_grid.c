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
 *   each operand through jit_access by its class along the lanes: unit → vector (masked)
 *   loads and stores, zero → one element splat, other → gathers and scatters
 *   rows: one loop per row dimension, offsets added per operand; the result stage's
 *   scalar stored per row (a vector of rows: a vector store or a scatter)
 */
#include <stddef.h>

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

/* ---- lanes along the elements --------------------------------------------------------- */

/* A stage's element nest (lanes along the elements) and its sink. */
typedef struct {
    jit_sink sink;
    uint32_t stage;
} lg_stage_run;

/* Innermost point of a stage's element nest: the stage's loop over the lane dimension. */
static int lg_stage_body(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    lg_stage_run *r = arg;
    lg_aim(c, g, off);
    return jit_sink_run(c, &c->p->stages[r->stage], &r->sink);
}

/* One row (lanes along the elements): each stage in turn, a SCALAR stage once, the
 * result stored. */
static int lg_row(jit_lower_ctx *c, const lg_grid *g, LLVMValueRef *off, void *arg) {
    (void)arg;
    const canon_program *p = c->p;
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        if (st->domain == CANON_DOM_SCALAR) {
            jit_point pt = {.w = 1};
            if (!(c->acc[s] = jit_lower_eval(c, &pt, st->root)))
                return -1;
            continue;
        }
        lg_stage_run r = {.stage = s};
        if (jit_sink_begin(c, st, &r.sink, 0) ||
            lg_nest(c, g, g->outer, g->nd, off, lg_stage_body, &r))
            return -1;
        c->acc[s] = jit_sink_end(c, &r.sink);
    }
    if (p->result_stage != CANON_NONE && !c->acc[p->result_stage])
        return jit_lower_error(c, "a result stage without a scalar", p->result_stage);
    if (p->result_stage != CANON_NONE)
        jit_store(c, c->acc[p->result_stage], jit_elem(c, g->result, off[JIT_GRID_RESULT]), 4);
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
            jit_point pt = {.w = JIT_VW};
            if (!(c->acc[s] = jit_lower_eval(c, &pt, st->root)))
                return -1;
            continue;
        }
        r->stage = s;
        if (jit_sink_begin(c, st, &r->sink, 1) ||
            lg_nest(c, g, g->outer, g->nd, off, lg_lanes_point, r))
            return -1;
        c->acc[s] = jit_sink_end(c, &r->sink);
    }
    if (p->result_stage != CANON_NONE && !c->acc[p->result_stage])
        return jit_lower_error(c, "a result stage without a scalar", p->result_stage);
    if (p->result_stage != CANON_NONE) {
        const uint32_t L = g->lane_dim;
        LLVMValueRef base = jit_elem(c, g->result, off[JIT_GRID_RESULT]);
        jit_access(c, base, g->stride[JIT_GRID_RESULT][L],
                   jit_grid_class(c->key, JIT_GRID_RESULT, L), r->i, JIT_VW, r->mask,
                   jit_splat(c, c->acc[p->result_stage], JIT_VW));
    }
    return 0;
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
    return lg_nest(c, &g, 0, g.outer, off, lg_row, NULL);
}
