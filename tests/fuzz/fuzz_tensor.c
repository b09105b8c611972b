/*
 * tests/fuzz/fuzz_tensor.c — libFuzzer target for tensor shapes, strides and views
 * (runtime/tensor.c), checked against a shadow of each tensor's geometry.
 *
 * Input: byte 0 gives the buffer's length (0..63; element i holds the value i, so a
 * gathered value names its index); then a stream of calls, one byte for the call and
 * bytes for its arguments: from_buffer, from_buffer_with_strides, transpose, select,
 * narrow, permute, slice, unsqueeze, squeeze, view_1d, broadcast_to, tensor_cleanup.
 *
 * The shadow computes the documented result of from_buffer(_with_strides), transpose,
 * select, narrow, permute, slice, unsqueeze and squeeze: the status (SHAPE, OUT_OF_BOUNDS,
 * INVALID_ARGUMENT, or HG_OK) and the shape, strides and offset, which the library must
 * match exactly.  For view_1d and broadcast_to the library's own geometry is read back.
 * Every tensor made must keep the invariants of hologram.h (ndim <= 8, offset <= length,
 * every reachable element inside the buffer), and its values through tensor_contiguous
 * must be the elements its geometry names.  A failed call has a message and makes nothing.
 */
#include <stdint.h>

#include <hologram/hologram.h>

#include "runtime/rt.h"

#define FZ_TARGET "fuzz_tensor"
#include "fuzz.h"

#define FZ_TENSORS 6
#define FZ_CALLS 12

typedef struct {
    uint64_t h; /* 0: free slot */
    uint32_t ndim;
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS], offset;
} fz_geom;

static struct {
    uint64_t e, b, len;
    fz_geom t[FZ_TENSORS];
    int step;
} T;

static uint64_t fz_numel(const fz_geom *g) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < g->ndim; d++)
        n *= g->shape[d];
    return n;
}

/* Reads the library's geometry of tensor h into g. */
static void fz_read_geom(uint64_t h, fz_geom *g) {
    char *shape = NULL, *strides = NULL;
    uint32_t off = 0, n1 = 0, n2 = 0;
    FZ_CHECK(hg_tensor_shape(h, &shape) == HG_OK && hg_tensor_strides(h, &strides) == HG_OK &&
                 hg_tensor_offset(h, &off) == HG_OK,
             "step %d: geometry of a live tensor: %s", T.step, hg_last_error());
    g->h = h;
    FZ_CHECK(rt_json_parse_dims(shape, "shape", g->shape, &n1, HG_MAX_DIMS) == HG_OK &&
                 rt_json_parse_dims(strides, "strides", g->stride, &n2, HG_MAX_DIMS) == HG_OK &&
                 n1 == n2,
             "step %d: shape %s and strides %s do not read back", T.step, shape, strides);
    g->ndim = n1;
    g->offset = off;
    hg_free_string(shape);
    hg_free_string(strides);
}

/* The invariants and values of live tensor g, made by call `what` (see the top). */
static void fz_check_tensor(const fz_geom *g, const char *what) {
    fz_geom got;
    fz_read_geom(g->h, &got);
    if (got.ndim != g->ndim || got.offset != g->offset ||
        memcmp(got.shape, g->shape, g->ndim * sizeof *g->shape) != 0 ||
        memcmp(got.stride, g->stride, g->ndim * sizeof *g->stride) != 0) {
        char a[4][200];
        rt_json_dims_text(a[0], sizeof a[0], got.shape, got.ndim);
        rt_json_dims_text(a[1], sizeof a[1], got.stride, got.ndim);
        rt_json_dims_text(a[2], sizeof a[2], g->shape, g->ndim);
        rt_json_dims_text(a[3], sizeof a[3], g->stride, g->ndim);
        fz_fail("step %d (%s): shape %s strides %s offset %llu; the shadow's %s %s %llu",
                T.step, what, a[0], a[1], (unsigned long long)got.offset, a[2], a[3],
                (unsigned long long)g->offset);
    }
    uint64_t numel = fz_numel(g), last = g->offset;
    FZ_CHECK(g->offset <= T.len, "step %d: offset %llu past the buffer (%llu)", T.step,
             (unsigned long long)g->offset, (unsigned long long)T.len);
    if (numel == 0)
        return;
    for (uint32_t d = 0; d < g->ndim; d++)
        last += (g->shape[d] - 1) * g->stride[d];
    FZ_CHECK(last < T.len, "step %d: element %llu reachable in a buffer of %llu", T.step,
             (unsigned long long)last, (unsigned long long)T.len);
    uint64_t c = 0, cb = 0;
    FZ_CHECK(hg_tensor_contiguous(T.e, g->h, &c) == HG_OK && hg_tensor_buffer(c, &cb) == HG_OK,
             "step %d: tensor_contiguous: %s", T.step, hg_last_error());
    float *v = fz_alloc(numel * sizeof *v);
    FZ_CHECK(hg_buffer_read(T.e, cb, v, numel) == HG_OK, "step %d: read: %s", T.step,
             hg_last_error());
    uint64_t idx[HG_MAX_DIMS] = {0};
    for (uint64_t k = 0; k < numel; k++) {
        uint64_t at = g->offset;
        for (uint32_t d = 0; d < g->ndim; d++)
            at += idx[d] * g->stride[d];
        FZ_CHECK(v[k] == (float)at, "step %d: element %llu is %g, its geometry names %llu",
                 T.step, (unsigned long long)k, (double)v[k], (unsigned long long)at);
        for (uint32_t d = g->ndim; d-- > 0;) { /* row-major: the last index runs fastest */
            if (++idx[d] < g->shape[d])
                break;
            idx[d] = 0;
        }
    }
    free(v);
    FZ_CHECK(hg_tensor_cleanup(c) == HG_OK && hg_buffer_cleanup(cb) == HG_OK,
             "step %d: freeing the contiguous copy: %s", T.step, hg_last_error());
}

/* Checks a call's status against `want` (or, want < 0, any failure of the listed kind or
 * success) and on success records the new tensor *h (read after the call) in slot `slot`
 * with geometry *g (read from the library when `read`). */
static void fz_result(hg_status st, int want, const uint64_t *h, fz_geom *g, int slot,
                      int read, const char *call) {
    if (want >= 0)
        FZ_CHECK(st == (hg_status)want, "step %d: %s returned %s, the shadow %s (%s)", T.step,
                 call, hg_status_string(st), hg_status_string((hg_status)want),
                 hg_last_error());
    else
        FZ_CHECK(st == HG_OK || st == HG_ERR_SHAPE || st == HG_ERR_OUT_OF_BOUNDS,
                 "step %d: %s returned %s (%s)", T.step, call, hg_status_string(st),
                 hg_last_error());
    if (st != HG_OK) {
        FZ_CHECK(hg_last_error()[0], "step %d: %s failed without a message", T.step, call);
        return;
    }
    if (read)
        fz_read_geom(*h, g);
    g->h = *h;
    FZ_CHECK(g->ndim <= HG_MAX_DIMS, "step %d: %s made %u dimensions", T.step, call, g->ndim);
    T.t[slot] = *g;
    fz_check_tensor(&T.t[slot], call);
}

/* Dimensions from the input: ndim in [lo, hi], each extent in [0, 4]. */
static uint32_t fz_dims(fz_bytes *in, uint64_t *dims, uint32_t lo, uint32_t hi) {
    uint32_t n = lo + fz_pick(in, hi - lo + 1);
    for (uint32_t d = 0; d < n; d++)
        dims[d] = fz_pick(in, 5);
    return n;
}

static void fz_call(fz_bytes *in) {
    int call = (int)fz_pick(in, FZ_CALLS), si = (int)fz_pick(in, FZ_TENSORS);
    int slot = 0;
    while (slot < FZ_TENSORS && T.t[slot].h)
        slot++;
    const fz_geom *s = &T.t[si];
    fz_geom g = s->h ? *s : (fz_geom){0};
    uint64_t h = 0;
    char text[256], text2[256];
    int want = HG_OK;
    if (slot == FZ_TENSORS && call != 11) /* full: free one instead */
        call = 11;
    if (call >= 2 && call <= 10 && !s->h)
        return; /* views need a live tensor */
    switch (call) {
    case 0: /* from_buffer: row-major over the buffer's first numel elements */
    case 1: { /* with strides */
        g = (fz_geom){0};
        g.ndim = fz_dims(in, g.shape, 1, 4);
        uint64_t st = 1, last = 0;
        for (uint32_t d = g.ndim; d-- > 0;) {
            g.stride[d] = call == 0 ? st : fz_pick(in, 8);
            st *= g.shape[d] ? g.shape[d] : 1; /* extents of 0 count as 1 */
            last += g.shape[d] ? (g.shape[d] - 1) * g.stride[d] : 0;
        }
        uint64_t numel = fz_numel(&g);
        want = call == 0 ? (numel > T.len ? HG_ERR_OUT_OF_BOUNDS : HG_OK)
                         : (numel > 0 && last >= T.len ? HG_ERR_OUT_OF_BOUNDS : HG_OK);
        rt_json_dims_text(text, sizeof text, g.shape, g.ndim);
        rt_json_dims_text(text2, sizeof text2, g.stride, g.ndim);
        hg_status r = call == 0 ? hg_tensor_from_buffer(T.b, text, &h)
                                : hg_tensor_from_buffer_with_strides(T.b, text, text2, &h);
        fz_result(r, want, &h, &g, slot, 0, call == 0 ? "from_buffer" : "with_strides");
        break;
    }
    case 2: /* transpose */
        if (g.ndim == 2) {
            uint64_t a = g.shape[0], b = g.stride[0];
            g.shape[0] = g.shape[1], g.stride[0] = g.stride[1];
            g.shape[1] = a, g.stride[1] = b;
        }
        fz_result(hg_tensor_transpose(s->h, &h), g.ndim == 2 ? HG_OK : HG_ERR_SHAPE, &h, &g,
                  slot, 0, "transpose");
        break;
    case 3: { /* select */
        uint64_t dim = fz_pick(in, 5), index = fz_pick(in, 5);
        if (dim < g.ndim && index < g.shape[dim]) {
            g.offset += index * g.stride[dim];
            for (uint32_t d = (uint32_t)dim; d + 1 < g.ndim; d++)
                g.shape[d] = g.shape[d + 1], g.stride[d] = g.stride[d + 1];
            g.ndim--;
            want = g.offset > T.len ? HG_ERR_OUT_OF_BOUNDS : HG_OK; /* possible without elements */
        } else {
            want = HG_ERR_OUT_OF_BOUNDS;
        }
        fz_result(hg_tensor_select(s->h, dim, index, &h), want, &h, &g, slot, 0, "select");
        break;
    }
    case 4: { /* narrow */
        uint64_t dim = fz_pick(in, 5), start = fz_pick(in, 6), len = fz_pick(in, 6);
        if (dim < g.ndim && start + len <= g.shape[dim]) {
            g.shape[dim] = len;
            if (len > 0)
                g.offset += start * g.stride[dim];
            want = g.offset > T.len ? HG_ERR_OUT_OF_BOUNDS : HG_OK;
        } else {
            want = HG_ERR_OUT_OF_BOUNDS;
        }
        fz_result(hg_tensor_narrow(s->h, dim, start, len, &h), want, &h, &g, slot, 0, "narrow");
        break;
    }
    case 5: { /* permute: a permutation, or (odd byte) one with an entry broken */
        uint64_t perm[HG_MAX_DIMS];
        for (uint32_t d = 0; d < g.ndim; d++)
            perm[d] = d;
        for (uint32_t d = g.ndim; d > 1; d--) {
            uint32_t j = fz_pick(in, d);
            uint64_t x = perm[d - 1];
            perm[d - 1] = perm[j], perm[j] = x;
        }
        unsigned broken = fz_u8(in) & 1;
        if (broken && g.ndim > 0)
            perm[0] = g.ndim > 1 ? perm[1] : 1; /* repeated or out of range */
        fz_geom p = g;
        for (uint32_t d = 0; d < g.ndim; d++)
            p.shape[d] = g.shape[perm[d]], p.stride[d] = g.stride[perm[d]];
        rt_json_dims_text(text, sizeof text, perm, g.ndim);
        fz_result(hg_tensor_permute(s->h, text, &h),
                  broken && g.ndim > 0 ? HG_ERR_SHAPE : HG_OK, &h, &p, slot, 0, "permute");
        break;
    }
    case 6: { /* slice */
        uint64_t dim = fz_pick(in, 5);
        int64_t start = (int64_t)fz_pick(in, 6), end = (int64_t)fz_pick(in, 7) - 1;
        int64_t step = (int64_t)fz_pick(in, 4);
        if (step == 0)
            want = HG_ERR_INVALID_ARGUMENT;
        else if (dim >= g.ndim || (uint64_t)start > g.shape[dim] ||
                 (end != -1 && (uint64_t)end > g.shape[dim]))
            want = HG_ERR_OUT_OF_BOUNDS;
        if (want == HG_OK) {
            int64_t stop = end == -1 ? (int64_t)g.shape[dim] : end;
            uint64_t n = start >= stop ? 0 : (uint64_t)((stop - start + step - 1) / step);
            if (n > 0)
                g.offset += (uint64_t)start * g.stride[dim];
            if (n > 1)
                g.stride[dim] *= (uint64_t)step;
            g.shape[dim] = n;
            want = g.offset > T.len ? HG_ERR_OUT_OF_BOUNDS : HG_OK;
        }
        fz_result(hg_tensor_slice(s->h, dim, start, end, step, &h), want, &h, &g, slot, 0,
                  "slice");
        break;
    }
    case 7: { /* unsqueeze */
        uint64_t dim = fz_pick(in, 6);
        if (dim > g.ndim) {
            want = HG_ERR_OUT_OF_BOUNDS;
        } else if (g.ndim == HG_MAX_DIMS) {
            want = HG_ERR_SHAPE;
        } else {
            uint64_t st = dim < g.ndim ? g.shape[dim] * g.stride[dim] : 1;
            for (uint32_t d = g.ndim; d > dim; d--)
                g.shape[d] = g.shape[d - 1], g.stride[d] = g.stride[d - 1];
            g.shape[dim] = 1, g.stride[dim] = st;
            g.ndim++;
        }
        fz_result(hg_tensor_unsqueeze(s->h, dim, &h), want, &h, &g, slot, 0, "unsqueeze");
        break;
    }
    case 8: { /* squeeze */
        uint64_t dim = fz_pick(in, 5);
        if (dim >= g.ndim) {
            want = HG_ERR_OUT_OF_BOUNDS;
        } else if (g.shape[dim] != 1) {
            want = HG_ERR_SHAPE;
        } else {
            for (uint32_t d = (uint32_t)dim; d + 1 < g.ndim; d++)
                g.shape[d] = g.shape[d + 1], g.stride[d] = g.stride[d + 1];
            g.ndim--;
        }
        fz_result(hg_tensor_squeeze(s->h, dim, &h), want, &h, &g, slot, 0, "squeeze");
        break;
    }
    case 9: /* view_1d: the library's geometry, checked against the values */
        fz_result(hg_tensor_view_1d(s->h, &h), -1, &h, &g, slot, 1, "view_1d");
        break;
    case 10: { /* broadcast_to */
        uint64_t dims[HG_MAX_DIMS];
        uint32_t n = fz_dims(in, dims, 0, 5);
        rt_json_dims_text(text, sizeof text, dims, n);
        fz_result(hg_tensor_broadcast_to(s->h, text, &h), -1, &h, &g, slot, 1, "broadcast_to");
        break;
    }
    case 11: /* tensor_cleanup */
        if (s->h) {
            FZ_CHECK(hg_tensor_cleanup(s->h) == HG_OK, "step %d: tensor_cleanup: %s", T.step,
                     hg_last_error());
            T.t[si].h = 0;
        }
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_use_interpreter();
    if (size == 0)
        return 0;
    memset(&T, 0, sizeof T);
    T.len = data[0] % 64;
    FZ_CHECK(hg_new_executor(&T.e) == HG_OK &&
                 hg_executor_allocate_buffer(T.e, T.len, &T.b) == HG_OK,
             "setup: %s", hg_last_error());
    float v[64];
    for (uint64_t i = 0; i < T.len; i++)
        v[i] = (float)i;
    FZ_CHECK(hg_buffer_write(T.e, T.b, v, T.len) == HG_OK, "write: %s", hg_last_error());
    fz_bytes in = {data + 1, size - 1, 0};
    for (T.step = 0; fz_more(&in) && T.step < 128; T.step++)
        fz_call(&in);
    FZ_CHECK(hg_executor_cleanup(T.e) == HG_OK, "executor_cleanup: %s", hg_last_error());
    return 0;
}
