/*
 * runtime/grid.c — GRID programs on N-d strided operands (tensors, NumPy arrays).
 *
 *   rt_grid_exec(program, inputs, axes, output)
 *     → the index space S: the inputs' shapes (and a map's output) broadcast by NumPy's
 *       rules, each input's strides over S (0 where it broadcasts)
 *     → rows: the kept dimensions of S index the rows, the axes (a reduction's, a softmax's;
 *       a map: none) the elements of a row, as canon_grid describes
 *     → normalize (rt_grid_plan): drop extent-1 dimensions, order the kept ones by the
 *       output's strides (memory order) and the row's by the first input's, merge
 *       neighbours that are one run for every operand; a map's innermost dimension becomes
 *       the row's elements.  So views that differ only in what they never read (strides of
 *       extent-1 dimensions, how a contiguous block is split) run one kernel.
 *     → checks: the output's shape, its elements distinct, no partial overlap with an input
 *     → canon_args with args.grid → rt_exec (JIT or interpreter)
 */
#include <string.h>

#include "rt.h"

/* The text of shape[0..n) for messages. */
typedef struct {
    char text[200];
} rt_shape_text;

static rt_shape_text rt_shape_str(const uint64_t *shape, uint32_t n) {
    rt_shape_text t;
    rt_json_dims_text(t.text, sizeof t.text, shape, n);
    return t;
}

hg_status rt_broadcast(const rt_view *v, uint32_t n, uint64_t *shape, uint32_t *ndim,
                              const char *what) {
    uint32_t nd = 0, setter[CANON_MAX_DIMS];
    for (uint32_t i = 0; i < n; i++)
        nd = v[i].ndim > nd ? v[i].ndim : nd;
    for (uint32_t d = 0; d < nd; d++) {
        shape[d] = 1;
        setter[d] = 0;
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < v[i].ndim; d++) {
            const uint32_t at = nd - v[i].ndim + d;
            const uint64_t e = v[i].shape[d];
            if (e == 1 || e == shape[at])
                continue;
            if (shape[at] != 1) {
                const rt_view *w = &v[setter[at]];
                return rt_error(HG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast "
                                "(dimension %d: %llu against %llu)", what,
                                rt_shape_str(w->shape, w->ndim).text,
                                rt_shape_str(v[i].shape, v[i].ndim).text, (int)at - (int)nd,
                                (unsigned long long)shape[at], (unsigned long long)e);
            }
            shape[at] = e;
            setter[at] = i;
        }
    *ndim = nd;
    return HG_OK;
}

/* Strides of view v over the broadcast shape S (rank nd): 0 where v broadcasts. */
static void rt_strides_over(const rt_view *v, const uint64_t *shape, uint32_t nd, int64_t *out) {
    for (uint32_t d = 0; d < nd; d++) {
        int vd = (int)d - (int)(nd - v->ndim);
        out[d] = vd < 0 || (v->shape[vd] == 1 && shape[d] != 1) ? 0 : v->stride[vd];
    }
}

/* The lowest and highest element offsets of view v over its own shape (0 and 0 for no
 * element). */
static void rt_reach(const rt_view *v, int64_t *lo, int64_t *hi) {
    *lo = *hi = 0;
    for (uint32_t d = 0; d < v->ndim; d++)
        if (v->shape[d] == 0) {
            *lo = *hi = 0;
            return;
        }
    for (uint32_t d = 0; d < v->ndim; d++) {
        const int64_t span = (int64_t)(v->shape[d] - 1) * v->stride[d];
        *(span < 0 ? lo : hi) += span;
    }
}

/* |x| of a stride. */
static int64_t rt_abs(int64_t x) { return x < 0 ? -x : x; }

/* 1 when no two indexes of v (over its shape) name the same element. */
static int rt_distinct(const rt_view *v) {
    uint32_t order[CANON_MAX_DIMS], n = 0;
    for (uint32_t d = 0; d < v->ndim; d++) {
        if (v->shape[d] == 0)
            return 1;
        if (v->shape[d] > 1)
            order[n++] = d;
    }
    for (uint32_t i = 1; i < n; i++) /* by |stride|, ascending */
        for (uint32_t j = i; j > 0 && rt_abs(v->stride[order[j]]) < rt_abs(v->stride[order[j - 1]]);
             j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int64_t span = 1; /* elements covered by the dimensions so far */
    for (uint32_t i = 0; i < n; i++) {
        if (rt_abs(v->stride[order[i]]) < span)
            return 0;
        span = rt_abs(v->stride[order[i]]) * (int64_t)v->shape[order[i]];
    }
    return 1;
}

/* The dimensions of a grid being planned: per slot strides (slots 0..n-1), the result's
 * strides, and for each dimension whether it is one of the row's elements. */
typedef struct {
    uint32_t nd, n_slots;
    uint64_t shape[CANON_MAX_DIMS];
    int64_t stride[CANON_MAX_SLOTS + 1][CANON_MAX_DIMS]; /* [n_slots]: the result */
    int elem[CANON_MAX_DIMS];
} rt_plan;

/* Moves dimension `from` of pl to position `to` (to <= from), shifting the others. */
static void rt_plan_move(rt_plan *pl, uint32_t from, uint32_t to) {
    for (uint32_t d = from; d > to; d--) {
        uint64_t sh = pl->shape[d];
        pl->shape[d] = pl->shape[d - 1];
        pl->shape[d - 1] = sh;
        int e = pl->elem[d];
        pl->elem[d] = pl->elem[d - 1];
        pl->elem[d - 1] = e;
        for (uint32_t k = 0; k <= pl->n_slots; k++) {
            int64_t s = pl->stride[k][d];
            pl->stride[k][d] = pl->stride[k][d - 1];
            pl->stride[k][d - 1] = s;
        }
    }
}

/* Normalizes pl (see the top): drops extent-1 dimensions, puts the kept ones first in
 * descending order of slot `key_kept`'s |strides| and the row's after them in descending
 * order of slot `key_elem`'s, merges neighbours of one group that are one run in every
 * slot.  Leaves at least one dimension.  Returns the number of kept dimensions. */
static uint32_t rt_grid_plan(rt_plan *pl, uint32_t key_kept, uint32_t key_elem) {
    uint32_t nd = 0;
    for (uint32_t d = 0; d < pl->nd; d++) /* drop extent-1 dimensions */
        if (pl->shape[d] != 1) {
            pl->shape[nd] = pl->shape[d];
            pl->elem[nd] = pl->elem[d];
            for (uint32_t k = 0; k <= pl->n_slots; k++)
                pl->stride[k][nd] = pl->stride[k][d];
            nd++;
        }
    pl->nd = nd;
    for (uint32_t i = 1; i < nd; i++) { /* kept before elements, each by descending key */
        const uint32_t key = pl->elem[i] ? key_elem : key_kept;
        uint32_t j = i; /* dimension i goes before the ones that sort after it */
        for (; j > 0; j--) {
            const uint32_t a = j - 1;
            if (pl->elem[a] < pl->elem[i] ||
                (pl->elem[a] == pl->elem[i] &&
                 rt_abs(pl->stride[key][a]) >= rt_abs(pl->stride[key][i])))
                break;
        }
        rt_plan_move(pl, i, j);
    }
    uint32_t out = 0;
    for (uint32_t d = 0; d < nd; d++) { /* merge d into out when they are one run */
        int merge = out > 0 && pl->elem[out - 1] == pl->elem[d];
        for (uint32_t k = 0; merge && k <= pl->n_slots; k++)
            merge = pl->stride[k][out - 1] == pl->stride[k][d] * (int64_t)pl->shape[d];
        if (merge) {
            pl->shape[out - 1] *= pl->shape[d];
            for (uint32_t k = 0; k <= pl->n_slots; k++)
                pl->stride[k][out - 1] = pl->stride[k][d];
            continue;
        }
        pl->shape[out] = pl->shape[d];
        pl->elem[out] = pl->elem[d];
        for (uint32_t k = 0; k <= pl->n_slots; k++)
            pl->stride[k][out] = pl->stride[k][d];
        out++;
    }
    pl->nd = out;
    uint32_t kept = 0;
    while (kept < out && !pl->elem[kept])
        kept++;
    if (out == 0) { /* a single element */
        pl->nd = 1;
        pl->shape[0] = 1;
        pl->elem[0] = 1;
        for (uint32_t k = 0; k <= pl->n_slots; k++)
            pl->stride[k][0] = 0;
    }
    return kept;
}

/* 1 when views a and b name the same elements index for index over S (strides given
 * over S), i.e. an in-place operation; 0 when they are apart; -1 when they partly overlap. */
static int rt_overlap(const rt_view *a, const rt_view *b, const int64_t *sa, const int64_t *sb,
                      const uint64_t *shape, uint32_t nd) {
    int64_t alo, ahi, blo, bhi;
    rt_reach(a, &alo, &ahi);
    rt_reach(b, &blo, &bhi);
    if (a->data + ahi < b->data + blo || b->data + bhi < a->data + alo)
        return 0;
    if (a->data != b->data)
        return -1;
    for (uint32_t d = 0; d < nd; d++)
        if (shape[d] > 1 && sa[d] != sb[d])
            return -1;
    return 1;
}

hg_status rt_grid_exec(const canon_program *p, const rt_view *in, uint32_t n_in,
                       const float *params, uint32_t n_params, uint32_t axes,
                       const rt_view *out, int bclass, const char *what) {
    const int stores = p->n_slots > n_in, result = p->result_stage != CANON_NONE;
    if (n_in + (uint32_t)stores != p->n_slots || n_params != p->n_params || n_in > CANON_MAX_INPUTS)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s takes %u arrays and %u scalars, got %u "
                        "and %u", what, p->n_slots - (uint32_t)stores, p->n_params, n_in,
                        n_params);
    rt_view all[CANON_MAX_INPUTS + 1];
    memcpy(all, in, n_in * sizeof *in);
    uint32_t n_all = n_in;
    if (stores)
        all[n_all++] = *out; /* a map's output takes part in the broadcast (NumPy's out=) */
    rt_plan pl = {.n_slots = p->n_slots};
    hg_status st = rt_broadcast(all, n_all, pl.shape, &pl.nd, what);
    if (st != HG_OK)
        return st;
    if (axes >> pl.nd)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: an axis beyond the %u dimensions of %s",
                        what, pl.nd, rt_shape_str(pl.shape, pl.nd).text);
    if (stores && (out->ndim != pl.nd ||
                   memcmp(out->shape, pl.shape, pl.nd * sizeof *pl.shape) != 0))
        return rt_error(HG_ERR_SHAPE, "%s: the output has shape %s; the operands broadcast to "
                        "%s", what, rt_shape_str(out->shape, out->ndim).text,
                        rt_shape_str(pl.shape, pl.nd).text);
    if (stores && !rt_distinct(out))
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: the output names some elements twice "
                        "(a broadcast or overlapping view cannot be written)", what);
    for (uint32_t d = 0; d < pl.nd; d++)
        pl.elem[d] = (int)(axes >> d & 1);
    for (uint32_t k = 0; k < n_all; k++)
        rt_strides_over(&all[k], pl.shape, pl.nd, pl.stride[k]);
    if (result) { /* out: the kept dimensions of S, or all of them with extent 1 on axes */
        uint32_t kept = 0;
        for (uint32_t d = 0; d < pl.nd; d++)
            kept += !pl.elem[d];
        int keepdims = out->ndim == pl.nd && kept != pl.nd;
        if (out->ndim != (keepdims ? pl.nd : kept))
            return rt_error(HG_ERR_SHAPE, "%s: the result has %u dimensions; reducing %s "
                            "gives %u", what, out->ndim, rt_shape_str(pl.shape, pl.nd).text,
                            kept);
        for (uint32_t d = 0, o = 0; d < pl.nd; d++) {
            if (pl.elem[d] && !keepdims) {
                pl.stride[n_all][d] = 0;
                continue;
            }
            if (out->shape[o] != (pl.elem[d] ? 1 : pl.shape[d]))
                return rt_error(HG_ERR_SHAPE, "%s: the result has shape %s, not the reduced "
                                "shape of %s", what, rt_shape_str(out->shape, out->ndim).text,
                                rt_shape_str(pl.shape, pl.nd).text);
            pl.stride[n_all][d] = pl.elem[d] ? 0 : out->stride[o];
            o++;
        }
        if (!rt_distinct(out))
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: the result names some elements twice",
                            what);
    }
    if (stores || result) {
        const int64_t *so = stores ? pl.stride[n_in] : pl.stride[n_all];
        for (uint32_t k = 0; k < n_in; k++) {
            int ov = rt_overlap(out, &in[k], so, pl.stride[k], pl.shape, pl.nd);
            if (ov < 0 || (ov > 0 && result))
                return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: the output overlaps input %u "
                                "without being the same elements (write to another array)",
                                what, k + 1);
        }
    }
    uint64_t rows = 1, elems = 1;
    for (uint32_t d = 0; d < pl.nd; d++)
        *(pl.elem[d] ? &elems : &rows) *= pl.shape[d];
    for (uint32_t s = 0; result && rows > 0 && elems == 0 && s < p->n_stages; s++)
        if (p->stages[s].reduce == CANON_RED_MIN || p->stages[s].reduce == CANON_RED_MAX)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: %s over no elements (the reduced "
                            "axes of %s have extent 0) has no value", what,
                            p->stages[s].reduce == CANON_RED_MIN ? "min" : "max",
                            rt_shape_str(pl.shape, pl.nd).text);
    /* a map: every dimension kept, then the innermost one a row's elements */
    const int map = !result && !axes;
    uint32_t outer = rt_grid_plan(&pl, stores ? n_in : n_all, 0);
    if (map && outer == pl.nd) {
        pl.elem[pl.nd - 1] = 1;
        outer = pl.nd - 1;
    }
    canon_grid grid = {.ndim = pl.nd, .outer = outer};
    memcpy(grid.shape, pl.shape, sizeof grid.shape);
    for (uint32_t k = 0; k < p->n_slots; k++)
        memcpy(grid.stride[k], pl.stride[k], sizeof grid.stride[k]);
    canon_args args = {.grid = &grid, .n = 1};
    for (uint32_t d = outer; d < pl.nd; d++)
        args.n *= pl.shape[d];
    for (uint32_t k = 0; k < n_in; k++)
        args.slot[k] = in[k].data;
    if (stores)
        args.slot[n_in] = out->data;
    if (result) {
        grid.result = out->data;
        memcpy(grid.result_stride, pl.stride[n_all], sizeof grid.result_stride);
    }
    for (uint32_t j = 0; j < n_params; j++)
        args.param[j] = params[j];
    return rt_exec(p, &args, bclass, NULL);
}
