/*
 * tests/grid_cases.h — GRID index spaces for the engine tests (test_interp, test_jit):
 * shapes with row/element splits that reach every path of both engines (rows of one
 * element, rows of several element dimensions, empty rows, no rows, long rows, short exact
 * rows), and operand layouts over them (row-major, reversed dimension order, stepped,
 * broadcast along one dimension).  Header-only: each test includes it once.
 */
#ifndef HG_TEST_GRID_CASES_H
#define HG_TEST_GRID_CASES_H

#include <stdint.h>
#include <string.h>

#include "canon/canon.h"

typedef struct {
    uint32_t ndim, outer;
    uint64_t shape[4];
} grid_case;

static const grid_case grid_cases[] = {
    {1, 0, {37}},          {1, 1, {5}},           {2, 1, {5, 7}},      {2, 1, {3, 1000}},
    {2, 0, {4, 6}},        {3, 1, {3, 4, 5}},     {3, 2, {2, 3, 17}},  {4, 2, {2, 3, 4, 5}},
    {2, 1, {0, 5}},        {2, 1, {4, 0}},        {3, 0, {2, 3, 4}},   {2, 1, {40, 33}},
    {2, 1, {2, 2100}},     {3, 2, {17, 3, 2}},    {2, 1, {64, 64}},    {1, 0, {1}},
};
#define N_GRID_CASES (sizeof grid_cases / sizeof grid_cases[0])

enum { GRID_ROW_MAJOR, GRID_REVERSED, GRID_STEPPED, GRID_BROADCAST, GRID_LAYOUTS };

/* Strides over case gc in layout `layout` (broadcast: along dimension `bdim`); returns the
 * largest offset reached plus one (the floats the operand needs). */
static uint64_t grid_layout(const grid_case *gc, int layout, uint32_t bdim, int64_t *stride) {
    int64_t run = 1;
    for (uint32_t i = 0; i < gc->ndim; i++) {
        const uint32_t d = layout == GRID_REVERSED ? i : gc->ndim - 1 - i;
        stride[d] = run * (layout == GRID_STEPPED ? 2 : 1);
        run *= (int64_t)gc->shape[d];
    }
    if (layout == GRID_BROADCAST)
        stride[bdim % gc->ndim] = 0;
    uint64_t reach = 1;
    for (uint32_t d = 0; d < gc->ndim; d++)
        reach += gc->shape[d] ? (gc->shape[d] - 1) * (uint64_t)stride[d] : 0;
    return reach;
}

/* The offset of flat element e (row-major over dims [from, to) of gc) with strides st. */
static int64_t grid_offset(const grid_case *gc, const int64_t *st, uint32_t from, uint32_t to,
                           uint64_t e) {
    int64_t off = 0;
    for (uint32_t d = to; d-- > from;) {
        off += (int64_t)(e % gc->shape[d]) * st[d];
        e /= gc->shape[d];
    }
    return off;
}

/* The number of elements over dims [from, to) of gc. */
static uint64_t grid_count(const grid_case *gc, uint32_t from, uint32_t to) {
    uint64_t n = 1;
    for (uint32_t d = from; d < to; d++)
        n *= gc->shape[d];
    return n;
}

/* Fills g from gc: shape, outer, and strides of slots 0..n_slots-1 from st[k]; a result
 * array (when `result` is given) row-major over the rows. */
static void grid_fill(canon_grid *g, const grid_case *gc, uint32_t n_slots,
                      int64_t (*st)[CANON_MAX_DIMS], float *result) {
    memset(g, 0, sizeof *g);
    g->ndim = gc->ndim;
    g->outer = gc->outer;
    memcpy(g->shape, gc->shape, gc->ndim * sizeof *gc->shape);
    for (uint32_t k = 0; k < n_slots; k++)
        memcpy(g->stride[k], st[k], sizeof g->stride[k]);
    g->result = result;
    int64_t run = 1;
    for (uint32_t d = gc->outer; d-- > 0;) {
        g->result_stride[d] = run;
        run *= (int64_t)gc->shape[d];
    }
}

#endif /* HG_TEST_GRID_CASES_H */
