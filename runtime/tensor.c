/*
 * runtime/tensor.c — tensors: strided views (buffer, shape, strides, offset; in elements).
 *
 *   hg_tensor_* ─→ rt_enter (exclusive to create or free, shared to read)
 *               ─→ rt_get_tensor / rt_get_buffer (/ executor ownership check)
 *               ─→ views: a geometry (shape, strides, offset) computed from the tensor's
 *                  (tensor_view + one geometry function per view), over the same buffer
 *                  copies: rt_buffer_create + rt_grid_exec(buffer_copy)
 *                  matmul: rt_buffer_create + rt_run_op(gemm_f32) per batch item
 *               ─→ tensor_emit: the invariants below checked for every new tensor,
 *                  rt_tensor_create (buffer->views++)
 *               ─→ rt_leave
 *
 * Invariants of every live tensor: ndim <= HG_MAX_DIMS, numel <= UINT32_MAX, offset <=
 * buffer length, and when numel > 0 every reachable element (offset + sum (shape_d - 1) *
 * stride_d) lies inside the buffer.  tensor_emit refuses any geometry that breaks them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* Room for "[d0, d1, ...]" of HG_MAX_DIMS 64-bit values in messages. */
#define TENSOR_DIMS_TEXT 200

typedef struct {
    char text[TENSOR_DIMS_TEXT];
} tensor_dims_text;

/* The JSON text of dims, for messages. */
static tensor_dims_text tensor_dims_str(const uint64_t *dims, uint32_t n) {
    tensor_dims_text t;
    rt_json_dims_text(t.text, sizeof t.text, dims, n);
    return t;
}

/* Product of the shape (0 when a dimension is 0).  HG_ERR_SHAPE when the product of the
 * nonzero dimensions overflows (so row-major strides always fit) or numel exceeds
 * UINT32_MAX (tensor_numel reports a u32). */
static hg_status tensor_numel_of(const uint64_t *shape, uint32_t ndim, uint64_t *out) {
    uint64_t prod = 1;
    int overflow = 0, zero = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        zero |= shape[d] == 0;
        overflow |= __builtin_mul_overflow(prod, shape[d] ? shape[d] : 1, &prod);
    }
    if (overflow)
        return rt_error(HG_ERR_SHAPE,
                        "shape %s is too large: its nonzero dimensions multiply "
                        "to more than 2^64",
                        tensor_dims_str(shape, ndim).text);
    uint64_t numel = zero ? 0 : prod;
    if (numel > UINT32_MAX)
        return rt_error(HG_ERR_SHAPE, "shape %s has %llu elements, at most %u",
                        tensor_dims_str(shape, ndim).text, (unsigned long long)numel, UINT32_MAX);
    *out = numel;
    return HG_OK;
}

static uint64_t tensor_numel(const rt_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* 1 when t is row-major contiguous from its offset (size-1 dimensions ignored; numel 0 is
 * contiguous). */
static int tensor_contiguous_p(const rt_tensor *t) {
    if (tensor_numel(t) == 0)
        return 1;
    uint64_t expected = 1;
    for (uint32_t d = t->ndim; d-- > 0;) {
        if (t->shape[d] == 1)
            continue;
        if (t->stride[d] != expected)
            return 0;
        expected *= t->shape[d];
    }
    return 1;
}

/* A tensor's geometry: everything but its buffer. */
typedef struct {
    uint32_t ndim;
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS]; /* elements */
    uint64_t offset;                                  /* elements */
} tensor_geom;

static tensor_geom tensor_geom_of(const rt_tensor *t) {
    tensor_geom g;
    memset(&g, 0, sizeof g);
    g.ndim = t->ndim;
    memcpy(g.shape, t->shape, sizeof g.shape);
    memcpy(g.stride, t->stride, sizeof g.stride);
    g.offset = t->offset;
    return g;
}

/* Row-major geometry of `shape` (numel already checked by tensor_numel_of) at `offset`. */
static tensor_geom tensor_geom_row_major(const uint64_t *shape, uint32_t ndim, uint64_t offset) {
    tensor_geom g;
    memset(&g, 0, sizeof g);
    g.ndim = ndim;
    memcpy(g.shape, shape, ndim * sizeof *shape);
    uint64_t s = 1;
    for (uint32_t d = ndim; d-- > 0;) {
        g.stride[d] = s;
        s *= shape[d] ? shape[d] : 1; /* no overflow: checked by tensor_numel_of */
    }
    g.offset = offset;
    return g;
}

/* The one check of every new tensor (the invariants at the top), then its registration over
 * b: SHAPE when numel > UINT32_MAX; OUT_OF_BOUNDS when the offset is past the buffer's end
 * or, numel > 0, the last reachable element is not inside it.  *out_tensor on HG_OK. */
static hg_status tensor_emit(rt_buffer *b, const tensor_geom *g, uint64_t *out_tensor) {
    uint64_t numel, last = g->offset, term;
    hg_status st = tensor_numel_of(g->shape, g->ndim, &numel);
    if (st != HG_OK)
        return st;
    if (g->offset > b->length)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "the view's offset %s%llu is past the end of buffer 0x%016llx "
                        "(%llu elements)",
                        g->offset == UINT64_MAX ? "beyond " : "", (unsigned long long)g->offset,
                        (unsigned long long)b->handle, (unsigned long long)b->length);
    if (numel > 0) {
        int overflow = 0;
        for (uint32_t d = 0; d < g->ndim; d++) {
            overflow |= __builtin_mul_overflow(g->shape[d] - 1, g->stride[d], &term);
            overflow |= __builtin_add_overflow(last, term, &last);
        }
        if (overflow || last >= b->length)
            return rt_error(HG_ERR_OUT_OF_BOUNDS,
                            "shape %s with strides %s from offset %llu reaches element %s%llu, "
                            "buffer 0x%016llx holds %llu",
                            tensor_dims_str(g->shape, g->ndim).text,
                            tensor_dims_str(g->stride, g->ndim).text, (unsigned long long)g->offset,
                            overflow ? "beyond " : "",
                            overflow ? (unsigned long long)UINT64_MAX : (unsigned long long)last,
                            (unsigned long long)b->handle, (unsigned long long)b->length);
    }
    rt_tensor *t;
    st = rt_tensor_create(b, g->ndim, g->shape, g->stride, g->offset, &t);
    if (st == HG_OK)
        *out_tensor = t->handle;
    return st;
}

hg_status rt_tensor_create(rt_buffer *buf, uint32_t ndim, const uint64_t *shape,
                           const uint64_t *stride, uint64_t offset, rt_tensor **out) {
    rt_tensor *t = calloc(1, sizeof *t);
    if (t == NULL)
        return rt_error(HG_ERR_NO_MEMORY, "cannot allocate %zu bytes for a tensor", sizeof *t);
    t->buf = buf;
    t->ndim = ndim;
    if (ndim > 0) {
        memcpy(t->shape, shape, ndim * sizeof *shape);
        memcpy(t->stride, stride, ndim * sizeof *stride);
    }
    t->offset = offset;
    t->handle = rt_register(RT_KIND_TENSOR, t);
    if (t->handle == 0) {
        free(t);
        return HG_ERR_NO_MEMORY;
    }
    buf->views++;
    rt_list_push(&buf->exec->tensors, &t->link);
    *out = t;
    return HG_OK;
}

void rt_tensor_release(rt_tensor *t) {
    rt_list_remove(&t->link);
    t->buf->views--;
    rt_unregister(t->handle);
    free(t);
}

/* Looks up `executor` and `tensor` and requires the tensor's buffer to belong to it. */
static hg_status tensor_get_owned(uint64_t executor, uint64_t tensor, rt_executor **out_exec,
                                  rt_tensor **out_t) {
    rt_executor *e;
    rt_tensor *t;
    hg_status st = rt_get_executor(executor, &e);
    if (st == HG_OK)
        st = rt_get_tensor(tensor, &t);
    if (st != HG_OK)
        return st;
    if (t->buf->exec != e)
        return rt_error(HG_ERR_INVALID_HANDLE,
                        "tensor 0x%016llx belongs to executor 0x%016llx, not 0x%016llx",
                        (unsigned long long)tensor, (unsigned long long)t->buf->exec->handle,
                        (unsigned long long)executor);
    *out_exec = e;
    *out_t = t;
    return HG_OK;
}

static hg_status tensor_null_out(const char *name) {
    return rt_error(HG_ERR_INVALID_ARGUMENT, "%s is NULL", name);
}

/* ---- creation from buffers --------------------------------------------------------------- */
/* Parses the shape and checks ndim >= 1 and numel. */
static hg_status tensor_parse_shape(const char *shape_json, uint64_t *shape, uint32_t *ndim,
                                    uint64_t *numel) {
    hg_status st = rt_json_parse_dims(shape_json, "shape", shape, ndim, HG_MAX_DIMS);
    if (st != HG_OK)
        return st;
    if (*ndim == 0)
        return rt_error(HG_ERR_SHAPE, "shape [] has no dimensions: a tensor needs at least 1");
    return tensor_numel_of(shape, *ndim, numel);
}

static hg_status tensor_from_buffer(uint64_t buffer, const char *shape_json, uint64_t *out_tensor) {
    rt_buffer *b;
    uint64_t shape[HG_MAX_DIMS], numel;
    uint32_t ndim;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = rt_get_buffer(buffer, &b);
    if (st == HG_OK)
        st = tensor_parse_shape(shape_json, shape, &ndim, &numel);
    if (st != HG_OK)
        return st;
    if (numel > b->length)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "shape %s has %llu elements, buffer 0x%016llx holds %llu",
                        tensor_dims_str(shape, ndim).text, (unsigned long long)numel,
                        (unsigned long long)buffer, (unsigned long long)b->length);
    const tensor_geom g = tensor_geom_row_major(shape, ndim, 0);
    return tensor_emit(b, &g, out_tensor);
}

hg_status hg_tensor_from_buffer(uint64_t buffer, const char *shape_json, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_from_buffer(buffer, shape_json, out_tensor);
    rt_leave();
    return st;
}

static hg_status tensor_from_buffer_with_strides(uint64_t buffer, const char *shape_json,
                                                 const char *strides_json, uint64_t *out_tensor) {
    rt_buffer *b;
    tensor_geom g;
    uint64_t numel;
    uint32_t nstride;
    memset(&g, 0, sizeof g);
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = rt_get_buffer(buffer, &b);
    if (st == HG_OK)
        st = tensor_parse_shape(shape_json, g.shape, &g.ndim, &numel);
    if (st == HG_OK)
        st = rt_json_parse_dims(strides_json, "strides", g.stride, &nstride, HG_MAX_DIMS);
    if (st != HG_OK)
        return st;
    if (nstride != g.ndim)
        return rt_error(HG_ERR_SHAPE, "shape %s has %u dimensions, strides %s has %u",
                        tensor_dims_str(g.shape, g.ndim).text, g.ndim,
                        tensor_dims_str(g.stride, nstride).text, nstride);
    return tensor_emit(b, &g, out_tensor);
}

hg_status hg_tensor_from_buffer_with_strides(uint64_t buffer, const char *shape_json,
                                             const char *strides_json, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_from_buffer_with_strides(buffer, shape_json, strides_json, out_tensor);
    rt_leave();
    return st;
}

/* ---- properties (shared lock) -------------------------------------------------------------- */
/* Which property tensor_property reads. */
typedef enum {
    TENSOR_SHAPE,
    TENSOR_STRIDES,
    TENSOR_OFFSET,
    TENSOR_NDIM,
    TENSOR_NUMEL,
    TENSOR_CONTIGUOUS,
    TENSOR_BUFFER
} tensor_prop;

/* Reads one property of `tensor` into the out-parameter of its type. */
static hg_status tensor_property(uint64_t tensor, tensor_prop prop, void *out) {
    rt_tensor *t;
    rt_enter(0);
    hg_status st = out == NULL ? tensor_null_out("output pointer") : rt_get_tensor(tensor, &t);
    if (st == HG_OK) {
        switch (prop) {
        case TENSOR_SHAPE: st = rt_json_format_dims(t->shape, t->ndim, out); break;
        case TENSOR_STRIDES: st = rt_json_format_dims(t->stride, t->ndim, out); break;
        case TENSOR_OFFSET: *(uint32_t *)out = (uint32_t)t->offset; break;
        case TENSOR_NDIM: *(uint32_t *)out = t->ndim; break;
        case TENSOR_NUMEL: *(uint32_t *)out = (uint32_t)tensor_numel(t); break;
        case TENSOR_CONTIGUOUS: *(uint8_t *)out = (uint8_t)tensor_contiguous_p(t); break;
        case TENSOR_BUFFER: *(uint64_t *)out = t->buf->handle; break;
        }
    }
    rt_leave();
    return st;
}

hg_status hg_tensor_shape(uint64_t tensor, char **out_json) {
    return tensor_property(tensor, TENSOR_SHAPE, out_json);
}

hg_status hg_tensor_strides(uint64_t tensor, char **out_json) {
    return tensor_property(tensor, TENSOR_STRIDES, out_json);
}

hg_status hg_tensor_offset(uint64_t tensor, uint32_t *out_offset) {
    return tensor_property(tensor, TENSOR_OFFSET, out_offset);
}

hg_status hg_tensor_ndim(uint64_t tensor, uint32_t *out_ndim) {
    return tensor_property(tensor, TENSOR_NDIM, out_ndim);
}

hg_status hg_tensor_numel(uint64_t tensor, uint32_t *out_numel) {
    return tensor_property(tensor, TENSOR_NUMEL, out_numel);
}

hg_status hg_tensor_is_contiguous(uint64_t tensor, uint8_t *out_flag) {
    return tensor_property(tensor, TENSOR_CONTIGUOUS, out_flag);
}

hg_status hg_tensor_buffer(uint64_t tensor, uint64_t *out_buffer) {
    return tensor_property(tensor, TENSOR_BUFFER, out_buffer);
}

/* ---- views ------------------------------------------------------------------------------
 * Every view is a geometry function run by one driver:
 *
 *   hg_tensor_<view>(tensor, ..., out) ─→ tensor_view: rt_enter(1), rt_get_tensor(tensor)
 *       ─→ geometry: the tensor's own, changed by the view's function (or its error)
 *       ─→ tensor_emit: the invariants (the check every tensor passes) ─→ same buffer
 *
 * A view shares its tensor's buffer (buffer->views++): hg_buffer_cleanup refuses with BUSY
 * while it lives, and hg_executor_cleanup frees it with the buffer.  Nothing is copied.
 * A narrow or slice that selects nothing along its dimension keeps the tensor's offset and
 * stride there, as NumPy does for a[s:s]; an empty view never moves past its buffer. */

/* A view's arguments (each view reads its own). */
typedef struct {
    uint64_t dim;             /* select, narrow, slice, squeeze, unsqueeze */
    uint64_t index, length;   /* select: index; narrow: start (index) and length */
    int64_t start, end, step; /* slice */
    const char *json;         /* permute: dims; broadcast_to: shape */
} tensor_view_args;

/* Changes g (the tensor's geometry on entry) into the view's, or records an error. */
typedef hg_status (*tensor_geom_fn)(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g);

static hg_status tensor_view(uint64_t tensor, tensor_geom_fn fn, const tensor_view_args *a,
                             uint64_t *out_tensor) {
    rt_tensor *t = NULL;
    tensor_geom g;
    rt_enter(1);
    hg_status st = out_tensor == NULL ? tensor_null_out("out_tensor") : rt_get_tensor(tensor, &t);
    if (st == HG_OK) {
        g = tensor_geom_of(t);
        st = fn(t, a, &g);
    }
    if (st == HG_OK)
        st = tensor_emit(t->buf, &g, out_tensor);
    rt_leave();
    return st;
}

/* OUT_OF_BOUNDS unless dim < count (count: ndim, or ndim + 1 where a dimension goes in). */
static hg_status tensor_check_dim(const rt_tensor *t, uint64_t dim, uint32_t count) {
    if (dim < count)
        return HG_OK;
    if (count == 0)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "dim %llu is out of range for a 0-D tensor (it has no dimensions)",
                        (unsigned long long)dim);
    return rt_error(HG_ERR_OUT_OF_BOUNDS, "dim %llu is out of range for a %u-D tensor (0..%u)",
                    (unsigned long long)dim, t->ndim, count - 1);
}

/* base + index * stride, saturated at UINT64_MAX (which tensor_emit refuses as past the
 * end: only a view of a tensor without elements can get there). */
static uint64_t tensor_advance(uint64_t base, uint64_t index, uint64_t stride) {
    uint64_t step, r;
    if (__builtin_mul_overflow(index, stride, &step) || __builtin_add_overflow(base, step, &r))
        return UINT64_MAX;
    return r;
}

static void tensor_geom_remove(tensor_geom *g, uint32_t d) {
    memmove(g->shape + d, g->shape + d + 1, (g->ndim - d - 1) * sizeof *g->shape);
    memmove(g->stride + d, g->stride + d + 1, (g->ndim - d - 1) * sizeof *g->stride);
    g->ndim--;
}

static void tensor_geom_insert(tensor_geom *g, uint32_t d, uint64_t extent, uint64_t stride) {
    memmove(g->shape + d + 1, g->shape + d, (g->ndim - d) * sizeof *g->shape);
    memmove(g->stride + d + 1, g->stride + d, (g->ndim - d) * sizeof *g->stride);
    g->shape[d] = extent;
    g->stride[d] = stride;
    g->ndim++;
}

/* Dimension d keeps `count` elements start, start + step, ... (narrow and slice).  With
 * none, offset and stride stay (NumPy's a[s:s]); with one, the stride stays (never used). */
static hg_status tensor_geom_range(tensor_geom *g, uint32_t d, uint64_t start, uint64_t count,
                                   uint64_t step) {
    uint64_t stride = g->stride[d];
    if (count > 1 && __builtin_mul_overflow(stride, step, &stride))
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "step %llu times stride %llu of dimension %u is beyond 2^64",
                        (unsigned long long)step, (unsigned long long)g->stride[d], d);
    if (count > 0)
        g->offset = tensor_advance(g->offset, start, g->stride[d]);
    g->shape[d] = count;
    g->stride[d] = stride;
    return HG_OK;
}

static hg_status geom_transpose(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    (void)a;
    if (t->ndim != 2)
        return rt_error(HG_ERR_SHAPE,
                        "transpose needs a 2-D tensor, tensor 0x%016llx has shape %s "
                        "(%u dimensions)",
                        (unsigned long long)t->handle, tensor_dims_str(t->shape, t->ndim).text,
                        t->ndim);
    g->shape[0] = t->shape[1];
    g->shape[1] = t->shape[0];
    g->stride[0] = t->stride[1];
    g->stride[1] = t->stride[0];
    return HG_OK;
}

hg_status hg_tensor_transpose(uint64_t tensor, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_transpose, &(tensor_view_args){0}, out_tensor);
}

static hg_status geom_select(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    hg_status st = tensor_check_dim(t, a->dim, t->ndim);
    if (st != HG_OK)
        return st;
    if (a->index >= t->shape[a->dim])
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "index %llu is out of range for dimension %llu of size %llu",
                        (unsigned long long)a->index, (unsigned long long)a->dim,
                        (unsigned long long)t->shape[a->dim]);
    g->offset = tensor_advance(g->offset, a->index, g->stride[a->dim]);
    tensor_geom_remove(g, (uint32_t)a->dim);
    return HG_OK;
}

hg_status hg_tensor_select(uint64_t tensor, uint64_t dim, uint64_t index, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_select, &(tensor_view_args){.dim = dim, .index = index},
                       out_tensor);
}

static hg_status geom_permute(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    uint64_t dims[HG_MAX_DIMS];
    uint32_t n, seen = 0;
    hg_status st = rt_json_parse_dims(a->json, "dims", dims, &n, HG_MAX_DIMS);
    if (st == HG_ERR_SHAPE) /* more than HG_MAX_DIMS entries */
        return rt_error(HG_ERR_SHAPE,
                        "dims %.60s%s has more than %u entries, tensor 0x%016llx has %u "
                        "dimensions",
                        a->json, strlen(a->json) > 60 ? "..." : "", HG_MAX_DIMS,
                        (unsigned long long)t->handle, t->ndim);
    if (st != HG_OK)
        return st;
    if (n != t->ndim)
        return rt_error(HG_ERR_SHAPE, "dims %s has %u entries, tensor 0x%016llx has %u dimensions",
                        tensor_dims_str(dims, n).text, n, (unsigned long long)t->handle, t->ndim);
    for (uint32_t i = 0; i < n; i++) {
        if (dims[i] >= n || (seen >> dims[i] & 1))
            return rt_error(HG_ERR_SHAPE,
                            "dims %s is not a permutation of the %u dimensions of tensor "
                            "0x%016llx: %llu %s",
                            tensor_dims_str(dims, n).text, n, (unsigned long long)t->handle,
                            (unsigned long long)dims[i],
                            dims[i] >= n ? "is out of range" : "appears twice");
        seen |= 1u << dims[i];
        g->shape[i] = t->shape[dims[i]];
        g->stride[i] = t->stride[dims[i]];
    }
    return HG_OK;
}

hg_status hg_tensor_permute(uint64_t tensor, const char *dims_json, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_permute, &(tensor_view_args){.json = dims_json}, out_tensor);
}

static hg_status geom_narrow(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    hg_status st = tensor_check_dim(t, a->dim, t->ndim);
    if (st != HG_OK)
        return st;
    uint64_t extent = t->shape[a->dim];
    if (a->index > extent || a->length > extent - a->index)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "narrow start %llu with length %llu goes past the end of dimension %llu "
                        "of size %llu",
                        (unsigned long long)a->index, (unsigned long long)a->length,
                        (unsigned long long)a->dim, (unsigned long long)extent);
    return tensor_geom_range(g, (uint32_t)a->dim, a->index, a->length, 1);
}

hg_status hg_tensor_narrow(uint64_t tensor, uint64_t dim, uint64_t start, uint64_t length,
                           uint64_t *out_tensor) {
    return tensor_view(tensor, geom_narrow,
                       &(tensor_view_args){.dim = dim, .index = start, .length = length},
                       out_tensor);
}

static hg_status geom_slice(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    if (a->step == 0)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "slice step 0: the step must be >= 1");
    if (a->step < 0)
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "slice step %lld is negative: negative steps are not supported "
                        "(strides are non-negative); the step must be >= 1",
                        (long long)a->step);
    hg_status st = tensor_check_dim(t, a->dim, t->ndim);
    if (st != HG_OK)
        return st;
    uint64_t extent = t->shape[a->dim];
    if (a->start < 0 || (uint64_t)a->start > extent)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "slice start %lld is outside [0, %llu] for dimension %llu of size %llu",
                        (long long)a->start, (unsigned long long)extent, (unsigned long long)a->dim,
                        (unsigned long long)extent);
    if (a->end < -1 || (a->end >= 0 && (uint64_t)a->end > extent))
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "slice end %lld is outside [0, %llu] (or -1, to the end) for dimension "
                        "%llu of size %llu",
                        (long long)a->end, (unsigned long long)extent, (unsigned long long)a->dim,
                        (unsigned long long)extent);
    uint64_t start = (uint64_t)a->start, end = a->end == -1 ? extent : (uint64_t)a->end;
    uint64_t count = start < end ? (end - start - 1) / (uint64_t)a->step + 1 : 0;
    return tensor_geom_range(g, (uint32_t)a->dim, start, count, (uint64_t)a->step);
}

hg_status hg_tensor_slice(uint64_t tensor, uint64_t dim, int64_t start, int64_t end, int64_t step,
                          uint64_t *out_tensor) {
    return tensor_view(tensor, geom_slice,
                       &(tensor_view_args){.dim = dim, .start = start, .end = end, .step = step},
                       out_tensor);
}

static hg_status geom_view_1d(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    (void)a;
    if (!tensor_contiguous_p(t))
        return rt_error(HG_ERR_SHAPE,
                        "tensor_view_1d needs a contiguous tensor; use tensor_contiguous "
                        "(tensor 0x%016llx has shape %s, strides %s)",
                        (unsigned long long)t->handle, tensor_dims_str(t->shape, t->ndim).text,
                        tensor_dims_str(t->stride, t->ndim).text);
    g->ndim = 1;
    g->shape[0] = tensor_numel(t);
    g->stride[0] = 1;
    return HG_OK;
}

hg_status hg_tensor_view_1d(uint64_t tensor, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_view_1d, &(tensor_view_args){0}, out_tensor);
}

/* NumPy's broadcasting of shapes a and b: aligned at the right, a missing or extent-1
 * dimension takes the other's extent, other extents must be equal.  *nout = max(na, nb);
 * writes the result and returns -1, or returns the result's dimension where the extents
 * differ. */
static int tensor_broadcast(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb,
                            uint64_t *out, uint32_t *nout) {
    uint32_t n = na > nb ? na : nb;
    *nout = n;
    for (uint32_t d = 0; d < n; d++) {
        uint64_t ea = d + na >= n ? a[d + na - n] : 1, eb = d + nb >= n ? b[d + nb - n] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            return (int)d;
        out[d] = ea == 1 ? eb : ea;
    }
    return -1;
}

static hg_status geom_broadcast_to(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    uint64_t target[HG_MAX_DIMS], result[HG_MAX_DIMS];
    uint32_t n, nresult;
    hg_status st = rt_json_parse_dims(a->json, "shape", target, &n, HG_MAX_DIMS);
    if (st != HG_OK)
        return st;
    if (tensor_broadcast(t->shape, t->ndim, target, n, result, &nresult) >= 0 || nresult != n ||
        memcmp(result, target, n * sizeof *target) != 0)
        return rt_error(HG_ERR_SHAPE,
                        "cannot broadcast shape %s to %s: aligned at the right, only a "
                        "dimension of extent 1 or a new leading one may change",
                        tensor_dims_str(t->shape, t->ndim).text, tensor_dims_str(target, n).text);
    uint32_t lead = n - t->ndim;
    for (uint32_t d = 0; d < n; d++) {
        int same = d >= lead && t->shape[d - lead] == target[d];
        g->stride[d] = same ? t->stride[d - lead] : 0;
        g->shape[d] = target[d];
    }
    g->ndim = n;
    return HG_OK;
}

hg_status hg_tensor_broadcast_to(uint64_t tensor, const char *shape_json, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_broadcast_to, &(tensor_view_args){.json = shape_json},
                       out_tensor);
}

static hg_status geom_unsqueeze(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    hg_status st = tensor_check_dim(t, a->dim, t->ndim + 1);
    if (st != HG_OK)
        return st;
    if (t->ndim == HG_MAX_DIMS)
        return rt_error(HG_ERR_SHAPE,
                        "unsqueeze of tensor 0x%016llx (shape %s) would give %u dimensions, at "
                        "most %u",
                        (unsigned long long)t->handle, tensor_dims_str(t->shape, t->ndim).text,
                        t->ndim + 1, HG_MAX_DIMS);
    /* the stride row-major order would give it (PyTorch's choice); never used to step */
    uint32_t d = (uint32_t)a->dim;
    uint64_t stride = 1;
    if (d < t->ndim && __builtin_mul_overflow(t->shape[d], t->stride[d], &stride))
        stride = t->stride[d];
    tensor_geom_insert(g, d, 1, stride);
    return HG_OK;
}

hg_status hg_tensor_unsqueeze(uint64_t tensor, uint64_t dim, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_unsqueeze, &(tensor_view_args){.dim = dim}, out_tensor);
}

static hg_status geom_squeeze(const rt_tensor *t, const tensor_view_args *a, tensor_geom *g) {
    hg_status st = tensor_check_dim(t, a->dim, t->ndim);
    if (st != HG_OK)
        return st;
    if (t->shape[a->dim] != 1)
        return rt_error(HG_ERR_SHAPE,
                        "squeeze of dimension %llu needs extent 1, shape %s has %llu there",
                        (unsigned long long)a->dim, tensor_dims_str(t->shape, t->ndim).text,
                        (unsigned long long)t->shape[a->dim]);
    tensor_geom_remove(g, (uint32_t)a->dim);
    return HG_OK;
}

hg_status hg_tensor_squeeze(uint64_t tensor, uint64_t dim, uint64_t *out_tensor) {
    return tensor_view(tensor, geom_squeeze, &(tensor_view_args){.dim = dim}, out_tensor);
}

/* broadcast_shapes (out_json) and is_broadcast_compatible_with (out_flag), shared lock. */
static hg_status tensor_broadcast_pair(uint64_t a, uint64_t b, char **out_json, uint8_t *out_flag) {
    rt_tensor *ta = NULL, *tb = NULL;
    uint64_t shape[HG_MAX_DIMS];
    uint32_t n;
    rt_enter(0);
    hg_status st = out_json == NULL && out_flag == NULL ? tensor_null_out("output pointer")
                                                        : rt_get_tensor(a, &ta);
    if (st == HG_OK)
        st = rt_get_tensor(b, &tb);
    if (st == HG_OK) {
        int bad = tensor_broadcast(ta->shape, ta->ndim, tb->shape, tb->ndim, shape, &n);
        if (out_flag != NULL)
            *out_flag = bad < 0;
        else if (bad < 0)
            st = rt_json_format_dims(shape, n, out_json);
        else
            st = rt_error(HG_ERR_SHAPE,
                          "shapes %s and %s do not broadcast: aligned at the right, extents "
                          "%llu and %llu differ (dimension %d of the result) and neither is 1",
                          tensor_dims_str(ta->shape, ta->ndim).text,
                          tensor_dims_str(tb->shape, tb->ndim).text,
                          (unsigned long long)ta->shape[(uint32_t)bad + ta->ndim - n],
                          (unsigned long long)tb->shape[(uint32_t)bad + tb->ndim - n], bad);
    }
    rt_leave();
    return st;
}

hg_status hg_tensor_broadcast_shapes(uint64_t a, uint64_t b, char **out_json) {
    return tensor_broadcast_pair(a, b, out_json, NULL);
}

hg_status hg_tensor_is_broadcast_compatible_with(uint64_t a, uint64_t b, uint8_t *out_flag) {
    return tensor_broadcast_pair(a, b, NULL, out_flag);
}

/* ---- copies ---------------------------------------------------------------------------- */
/* The view of tensor t's elements. */
static rt_view tensor_elements(const rt_tensor *t) {
    rt_view v = {.data = t->buf->data + t->offset, .ndim = t->ndim};
    for (uint32_t d = 0; d < t->ndim; d++) {
        v.shape[d] = t->shape[d];
        v.stride[d] = (int64_t)t->stride[d];
    }
    return v;
}

/* A new linear buffer of t's executor holding t's elements in row-major order, copied by
 * buffer_copy's GRID form (exclusive lock held). */
static hg_status tensor_copy(const rt_tensor *t, rt_buffer **out) {
    uint64_t numel = tensor_numel(t);
    rt_buffer *nb;
    hg_status st = rt_buffer_create(t->buf->exec, numel, &nb);
    if (st != HG_OK)
        return st;
    if (numel > 0) {
        rt_view src = tensor_elements(t), dst = {.data = nb->data, .ndim = t->ndim};
        const tensor_geom g = tensor_geom_row_major(t->shape, t->ndim, 0);
        for (uint32_t d = 0; d < t->ndim; d++) {
            dst.shape[d] = t->shape[d];
            dst.stride[d] = (int64_t)g.stride[d];
        }
        st = rt_grid_exec(canon_grid_form(CANON_OP_buffer_copy), &src, 1, NULL, 0, 0, &dst, -1,
                          "tensor_contiguous");
        if (st != HG_OK) {
            rt_buffer_release(nb);
            return st;
        }
    }
    *out = nb;
    return HG_OK;
}

/* A new tensor of the given shape over a row-major copy of t (exclusive lock held). */
static hg_status tensor_copy_as(const rt_tensor *t, uint32_t ndim, const uint64_t *shape,
                                uint64_t *out_tensor) {
    rt_buffer *nb;
    hg_status st = tensor_copy(t, &nb);
    if (st != HG_OK)
        return st;
    const tensor_geom g = tensor_geom_row_major(shape, ndim, 0);
    st = tensor_emit(nb, &g, out_tensor);
    if (st != HG_OK)
        rt_buffer_release(nb);
    return st;
}

static hg_status tensor_contiguous(uint64_t executor, uint64_t tensor, uint64_t *out_tensor) {
    rt_executor *e;
    rt_tensor *t;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = tensor_get_owned(executor, tensor, &e, &t);
    if (st != HG_OK)
        return st;
    return tensor_copy_as(t, t->ndim, t->shape, out_tensor);
}

hg_status hg_tensor_contiguous(uint64_t executor, uint64_t tensor, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_contiguous(executor, tensor, out_tensor);
    rt_leave();
    return st;
}

static hg_status tensor_reshape(uint64_t executor, uint64_t tensor, const char *shape_json,
                                uint64_t *out_tensor) {
    rt_executor *e;
    rt_tensor *t;
    uint64_t shape[HG_MAX_DIMS], numel;
    uint32_t ndim;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = tensor_get_owned(executor, tensor, &e, &t);
    if (st == HG_OK)
        st = rt_json_parse_dims(shape_json, "shape", shape, &ndim, HG_MAX_DIMS);
    if (st == HG_OK)
        st = tensor_numel_of(shape, ndim, &numel);
    if (st != HG_OK)
        return st;
    if (numel != tensor_numel(t))
        return rt_error(HG_ERR_SHAPE, "cannot reshape %s (%llu elements) to %s (%llu elements)",
                        tensor_dims_str(t->shape, t->ndim).text,
                        (unsigned long long)tensor_numel(t), tensor_dims_str(shape, ndim).text,
                        (unsigned long long)numel);
    if (!tensor_contiguous_p(t))
        return tensor_copy_as(t, ndim, shape, out_tensor);
    const tensor_geom g = tensor_geom_row_major(shape, ndim, t->offset);
    return tensor_emit(t->buf, &g, out_tensor);
}

hg_status hg_tensor_reshape(uint64_t executor, uint64_t tensor, const char *shape_json,
                            uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_reshape(executor, tensor, shape_json, out_tensor);
    rt_leave();
    return st;
}

/* ---- matmul ---------------------------------------------------------------------------
 * np.matmul on views of rank >= 2: A [..., m, k] . B [..., k, n] -> C [..., m, n], the batch
 * dimensions (all but the last two) broadcast; one CONTRACT run of gemm_f32 per batch item,
 * reading A and B through their strides from their offsets (no copy), into a new row-major
 * buffer. */

/* Records "matmul A x B: <detail>" (the shapes of ta and tb) and returns HG_ERR_SHAPE. */
__attribute__((format(printf, 3, 4))) static hg_status
tensor_matmul_refuse(const rt_tensor *ta, const rt_tensor *tb, const char *fmt, ...) {
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return rt_error(HG_ERR_SHAPE, "matmul %s x %s: %s", tensor_dims_str(ta->shape, ta->ndim).text,
                    tensor_dims_str(tb->shape, tb->ndim).text, detail);
}

/* C's shape (*nd = the larger rank): the broadcast batch dimensions, then [m, n].  SHAPE
 * naming both shapes and the offending dimension. */
static hg_status tensor_matmul_shape(const rt_tensor *ta, const rt_tensor *tb, uint64_t *shape,
                                     uint32_t *nd) {
    if (ta->ndim < 2 || tb->ndim < 2)
        return tensor_matmul_refuse(ta, tb,
                                    "A is %u-D and B %u-D: both need at least 2 dimensions "
                                    "(a 1-D operand is not promoted as NumPy does: unsqueeze "
                                    "it)",
                                    ta->ndim, tb->ndim);
    const uint32_t ba = ta->ndim - 2, bb = tb->ndim - 2;
    if (ta->shape[ba + 1] != tb->shape[bb])
        return tensor_matmul_refuse(ta, tb,
                                    "inner dimensions differ: dimension %u of A has %llu, "
                                    "dimension %u of B has %llu",
                                    ba + 1, (unsigned long long)ta->shape[ba + 1], bb,
                                    (unsigned long long)tb->shape[bb]);
    uint32_t nbatch;
    int bad = tensor_broadcast(ta->shape, ba, tb->shape, bb, shape, &nbatch);
    if (bad >= 0) {
        const uint32_t da = (uint32_t)bad + ba - nbatch, db = (uint32_t)bad + bb - nbatch;
        return tensor_matmul_refuse(ta, tb,
                                    "batch dimensions do not broadcast: dimension %u of A "
                                    "has %llu, dimension %u of B has %llu, and neither is 1",
                                    da, (unsigned long long)ta->shape[da], db,
                                    (unsigned long long)tb->shape[db]);
    }
    shape[nbatch] = ta->shape[ba];
    shape[nbatch + 1] = tb->shape[bb + 1];
    *nd = nbatch + 2;
    return HG_OK;
}

/* The step of t's pointer along dimension d of C's batch (nd: C's rank; shapes aligned at
 * the right): 0 where t lacks the dimension or has extent 1 there (broadcast). */
static uint64_t tensor_batch_step(const rt_tensor *t, uint32_t nd, uint32_t d) {
    if (d + t->ndim < nd)
        return 0;
    const uint32_t td = d + t->ndim - nd;
    return t->shape[td] == 1 ? 0 : t->stride[td];
}

/* Fills c (C row-major, shape[0..nd)) by one gemm_f32 run per batch item, in row-major
 * order: item i reads A and B from their offsets advanced by tensor_batch_step along
 * each batch dimension and writes C's i-th m x n block.  Every item has the same
 * contraction shape and strides (one kernel key); only its base pointers differ.
 * m, n, k > 0. */
static hg_status tensor_matmul_run(const rt_tensor *ta, const rt_tensor *tb, const uint64_t *shape,
                                   uint32_t nd, float *c) {
    const uint32_t nbatch = nd - 2, ra = ta->ndim - 2, rb = tb->ndim - 2;
    uint64_t step_a[HG_MAX_DIMS], step_b[HG_MAX_DIMS], idx[HG_MAX_DIMS] = {0}, items = 1;
    for (uint32_t d = 0; d < nbatch; d++) {
        step_a[d] = tensor_batch_step(ta, nd, d);
        step_b[d] = tensor_batch_step(tb, nd, d);
        items *= shape[d];
    }
    canon_args args;
    memset(&args, 0, sizeof args);
    args.contract = (canon_contract_shape){
        .m = shape[nbatch],
        .n = shape[nbatch + 1],
        .k = ta->shape[ra + 1],
        .a_rs = (int64_t)ta->stride[ra],
        .a_cs = (int64_t)ta->stride[ra + 1],
        .b_rs = (int64_t)tb->stride[rb],
        .b_cs = (int64_t)tb->stride[rb + 1],
    };
    const uint64_t block = shape[nbatch] * shape[nbatch + 1];
    uint64_t oa = ta->offset, ob = tb->offset;
    for (uint64_t i = 0; i < items; i++) {
        args.slot[0] = ta->buf->data + oa;
        args.slot[1] = tb->buf->data + ob;
        args.slot[2] = c + i * block;
        float unused;
        hg_status st = rt_run_op(CANON_OP_gemm_f32, &args, -1, &unused);
        if (st != HG_OK)
            return st;
        for (uint32_t d = nbatch; d-- > 0;) { /* the next item's offsets */
            oa += step_a[d];
            ob += step_b[d];
            if (++idx[d] < shape[d])
                break;
            oa -= step_a[d] * shape[d];
            ob -= step_b[d] * shape[d];
            idx[d] = 0;
        }
    }
    return HG_OK;
}

static hg_status tensor_matmul(uint64_t executor, uint64_t a, uint64_t b, uint64_t *out_tensor) {
    rt_executor *e;
    rt_tensor *ta, *tb;
    rt_buffer *nb;
    uint64_t shape[HG_MAX_DIMS], numel;
    uint32_t nd = 0;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = tensor_get_owned(executor, a, &e, &ta);
    if (st == HG_OK)
        st = tensor_get_owned(executor, b, &e, &tb);
    if (st == HG_OK)
        st = tensor_matmul_shape(ta, tb, shape, &nd);
    if (st == HG_OK && tensor_numel_of(shape, nd, &numel) != HG_OK)
        st = tensor_matmul_refuse(ta, tb, "the result's %s", hg_last_error());
    if (st == HG_OK)
        st = rt_buffer_create(e, numel, &nb);
    if (st != HG_OK)
        return st;
    if (numel > 0 && ta->shape[ta->ndim - 1] > 0) /* k = 0 leaves the zero-filled buffer */
        st = tensor_matmul_run(ta, tb, shape, nd, nb->data);
    if (st == HG_OK) {
        const tensor_geom g = tensor_geom_row_major(shape, nd, 0);
        st = tensor_emit(nb, &g, out_tensor);
    }
    if (st != HG_OK)
        rt_buffer_release(nb);
    return st;
}

hg_status hg_tensor_matmul(uint64_t executor, uint64_t a, uint64_t b, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_matmul(executor, a, b, out_tensor);
    rt_leave();
    return st;
}

static hg_status tensor_cleanup(uint64_t tensor) {
    rt_tensor *t;
    hg_status st = rt_get_tensor(tensor, &t);
    if (st == HG_OK)
        rt_tensor_release(t);
    return st;
}

hg_status hg_tensor_cleanup(uint64_t tensor) {
    rt_enter(1);
    hg_status st = tensor_cleanup(tensor);
    rt_leave();
    return st;
}

/* ---- N-d compute (runtime/compute.c's tasks on tensors) ------------------------------------ */

/* Task t on tensors of `executor` over axes_json: into tensor `into` when it is not 0,
 * else into a new row-major tensor (*out_tensor) over a new buffer.  The caller holds the
 * lock (exclusive when a tensor is made). */
static hg_status tensor_compute(uint64_t executor, const rt_task *t, const uint64_t *tensors,
                                uint64_t n_tensors, const float *params, uint64_t n_params,
                                const char *axes_json, int keepdims, uint64_t into,
                                uint64_t *out_tensor) {
    if (!into && !out_tensor)
        return tensor_null_out("out_tensor");
    hg_status st = rt_task_counts(t, n_tensors, tensors, n_params, params);
    rt_executor *e = NULL;
    rt_view in[CANON_MAX_INPUTS];
    uint32_t nd = 0, axes = 0;
    for (uint32_t i = 0; st == HG_OK && i < t->n_in; i++) {
        rt_tensor *ti;
        st = tensor_get_owned(executor, tensors[i], &e, &ti);
        if (st == HG_OK) {
            in[i] = tensor_elements(ti);
            nd = ti->ndim > nd ? ti->ndim : nd;
        }
    }
    if (st == HG_OK)
        st = rt_task_axes(t, axes_json, nd, &axes);
    if (st != HG_OK)
        return st;
    if (into) {
        rt_tensor *to;
        st = tensor_get_owned(executor, into, &e, &to);
        if (st != HG_OK)
            return st;
        const rt_view out = tensor_elements(to);
        return rt_task_run(t, in, params, axes, &out);
    }
    uint64_t shape[HG_MAX_DIMS], numel;
    uint32_t ndim;
    rt_buffer *nb;
    st = rt_task_shape(t, in, axes, keepdims, shape, &ndim);
    if (st == HG_OK)
        st = tensor_numel_of(shape, ndim, &numel);
    if (st == HG_OK && !e)
        st = rt_get_executor(executor, &e);
    if (st == HG_OK)
        st = rt_buffer_create(e, numel, &nb);
    if (st != HG_OK)
        return st;
    const tensor_geom g = tensor_geom_row_major(shape, ndim, 0);
    rt_view out = {.data = nb->data, .ndim = ndim};
    for (uint32_t d = 0; d < ndim; d++) {
        out.shape[d] = shape[d];
        out.stride[d] = (int64_t)g.stride[d];
    }
    st = rt_task_run(t, in, params, axes, &out);
    if (st == HG_OK)
        st = tensor_emit(nb, &g, out_tensor);
    if (st != HG_OK)
        rt_buffer_release(nb);
    return st;
}

/* hg_tensor_evaluate and _into: the expression's task on tensors. */
static hg_status tensor_evaluate(uint64_t executor, uint64_t expr, const uint64_t *tensors,
                                 uint64_t n_tensors, const float *params, uint64_t n_params,
                                 uint64_t into, uint64_t *out_tensor) {
    rt_expr *x;
    rt_task t;
    hg_status st = rt_get_expr(expr, &x);
    if (st != HG_OK)
        return st;
    rt_task_expr(x, &t);
    return tensor_compute(executor, &t, tensors, n_tensors, params, n_params, NULL, 0, into,
                          out_tensor);
}

hg_status hg_tensor_evaluate(uint64_t executor, uint64_t expr, const uint64_t *tensors,
                             uint64_t n_tensors, const float *params, uint64_t n_params,
                             uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_evaluate(executor, expr, tensors, n_tensors, params, n_params, 0,
                                   out_tensor);
    rt_leave();
    return st;
}

hg_status hg_tensor_evaluate_into(uint64_t executor, uint64_t expr, const uint64_t *tensors,
                                  uint64_t n_tensors, const float *params, uint64_t n_params,
                                  uint64_t out) {
    rt_enter(0);
    hg_status st = out ? tensor_evaluate(executor, expr, tensors, n_tensors, params, n_params,
                                         out, NULL)
                       : rt_error(HG_ERR_INVALID_HANDLE, "tensor_evaluate_into: out is 0");
    rt_leave();
    return st;
}

hg_status hg_tensor_apply(uint64_t executor, const char *op, const uint64_t *tensors,
                          uint64_t n_tensors, const float *params, uint64_t n_params,
                          const char *axes_json, uint8_t keepdims, uint64_t *out_tensor) {
    rt_enter(1);
    rt_task t;
    hg_status st = rt_task_op(op, &t);
    if (st == HG_OK)
        st = tensor_compute(executor, &t, tensors, n_tensors, params, n_params, axes_json,
                            keepdims, 0, out_tensor);
    rt_leave();
    return st;
}

hg_status hg_tensor_reduce(uint64_t executor, uint64_t tensor, const char *kind,
                           const char *axes_json, uint8_t keepdims, uint64_t *out_tensor) {
    rt_enter(1);
    rt_task t;
    hg_status st = rt_task_reduce(kind, &t);
    if (st == HG_OK)
        st = tensor_compute(executor, &t, &tensor, 1, NULL, 0, axes_json, keepdims, 0,
                            out_tensor);
    rt_leave();
    return st;
}
