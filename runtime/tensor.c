/*
 * runtime/tensor.c — tensors: strided views (buffer, shape, strides, offset; in elements).
 *
 *   hg_tensor_* ─→ rt_enter (exclusive to create or free, shared to read)
 *               ─→ rt_get_tensor / rt_get_buffer (/ executor ownership check)
 *               ─→ views: new shape/strides/offset over the same buffer (buffer->views++)
 *                  copies: rt_buffer_create + rt_grid_exec(buffer_copy) | rt_run_op(gemm_f32)
 *               ─→ rt_leave
 *
 * Invariants of every live tensor: ndim <= HG_MAX_DIMS, numel <= UINT32_MAX, offset <=
 * buffer length, and when numel > 0 every reachable element (offset + sum (shape_d - 1) *
 * stride_d) lies inside the buffer.  Views made from a tensor keep these by construction.
 */
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

/* Row-major strides of `shape`. */
static void tensor_row_major(const uint64_t *shape, uint32_t ndim, uint64_t *stride) {
    uint64_t s = 1;
    for (uint32_t d = ndim; d-- > 0;) {
        stride[d] = s;
        s *= shape[d] ? shape[d] : 1; /* no overflow: checked by tensor_numel_of */
    }
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
    *out = t;
    return HG_OK;
}

void rt_tensor_release(rt_tensor *t) {
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
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS], numel;
    uint32_t ndim;
    rt_tensor *t;
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
    tensor_row_major(shape, ndim, stride);
    st = rt_tensor_create(b, ndim, shape, stride, 0, &t);
    if (st == HG_OK)
        *out_tensor = t->handle;
    return st;
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
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS], numel;
    uint32_t ndim, nstride;
    rt_tensor *t;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = rt_get_buffer(buffer, &b);
    if (st == HG_OK)
        st = tensor_parse_shape(shape_json, shape, &ndim, &numel);
    if (st == HG_OK)
        st = rt_json_parse_dims(strides_json, "strides", stride, &nstride, HG_MAX_DIMS);
    if (st != HG_OK)
        return st;
    if (nstride != ndim)
        return rt_error(HG_ERR_SHAPE, "shape %s has %u dimensions, strides %s has %u",
                        tensor_dims_str(shape, ndim).text, ndim,
                        tensor_dims_str(stride, nstride).text, nstride);
    if (numel > 0) {
        uint64_t last = 0, term;
        int overflow = 0;
        for (uint32_t d = 0; d < ndim; d++) {
            overflow |= __builtin_mul_overflow(shape[d] - 1, stride[d], &term);
            overflow |= __builtin_add_overflow(last, term, &last);
        }
        if (overflow || last >= b->length)
            return rt_error(HG_ERR_OUT_OF_BOUNDS,
                            "shape %s with strides %s reaches element %s%llu, buffer 0x%016llx "
                            "holds %llu",
                            tensor_dims_str(shape, ndim).text, tensor_dims_str(stride, ndim).text,
                            overflow ? "beyond " : "",
                            overflow ? (unsigned long long)UINT64_MAX : (unsigned long long)last,
                            (unsigned long long)buffer, (unsigned long long)b->length);
    }
    st = rt_tensor_create(b, ndim, shape, stride, 0, &t);
    if (st == HG_OK)
        *out_tensor = t->handle;
    return st;
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

/* ---- views ----------------------------------------------------------------------------- */
static hg_status tensor_transpose(uint64_t tensor, uint64_t *out_tensor) {
    rt_tensor *t, *v;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = rt_get_tensor(tensor, &t);
    if (st != HG_OK)
        return st;
    if (t->ndim != 2)
        return rt_error(HG_ERR_SHAPE,
                        "transpose needs a 2-D tensor, tensor 0x%016llx has shape %s "
                        "(%u dimensions)",
                        (unsigned long long)tensor, tensor_dims_str(t->shape, t->ndim).text,
                        t->ndim);
    const uint64_t shape[2] = {t->shape[1], t->shape[0]};
    const uint64_t stride[2] = {t->stride[1], t->stride[0]};
    st = rt_tensor_create(t->buf, 2, shape, stride, t->offset, &v);
    if (st == HG_OK)
        *out_tensor = v->handle;
    return st;
}

hg_status hg_tensor_transpose(uint64_t tensor, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_transpose(tensor, out_tensor);
    rt_leave();
    return st;
}

static hg_status tensor_select(uint64_t tensor, uint64_t dim, uint64_t index,
                               uint64_t *out_tensor) {
    rt_tensor *t, *v;
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS], offset, step;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = rt_get_tensor(tensor, &t);
    if (st != HG_OK)
        return st;
    if (dim >= t->ndim)
        return rt_error(HG_ERR_OUT_OF_BOUNDS, "dim %llu is out of range for a %u-D tensor",
                        (unsigned long long)dim, t->ndim);
    if (index >= t->shape[dim])
        return rt_error(
            HG_ERR_OUT_OF_BOUNDS, "index %llu is out of range for dimension %llu of size %llu",
            (unsigned long long)index, (unsigned long long)dim, (unsigned long long)t->shape[dim]);
    /* in range when numel > 0; a view with nothing reachable must still keep its offset
     * inside the buffer */
    if (__builtin_mul_overflow(index, t->stride[dim], &step) ||
        __builtin_add_overflow(t->offset, step, &offset) || offset > t->buf->length)
        return rt_error(HG_ERR_OUT_OF_BOUNDS,
                        "index %llu with stride %llu moves the offset past the end of buffer "
                        "0x%016llx (%llu elements)",
                        (unsigned long long)index, (unsigned long long)t->stride[dim],
                        (unsigned long long)t->buf->handle, (unsigned long long)t->buf->length);
    uint32_t n = 0;
    for (uint32_t d = 0; d < t->ndim; d++)
        if (d != dim) {
            shape[n] = t->shape[d];
            stride[n] = t->stride[d];
            n++;
        }
    st = rt_tensor_create(t->buf, n, shape, stride, offset, &v);
    if (st == HG_OK)
        *out_tensor = v->handle;
    return st;
}

hg_status hg_tensor_select(uint64_t tensor, uint64_t dim, uint64_t index, uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_select(tensor, dim, index, out_tensor);
    rt_leave();
    return st;
}

/* ---- copies ---------------------------------------------------------------------------- */
/* The view of tensor t's elements. */
static rt_view tensor_view(const rt_tensor *t) {
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
        rt_view src = tensor_view(t), dst = {.data = nb->data, .ndim = t->ndim};
        uint64_t stride[HG_MAX_DIMS];
        tensor_row_major(t->shape, t->ndim, stride);
        for (uint32_t d = 0; d < t->ndim; d++) {
            dst.shape[d] = t->shape[d];
            dst.stride[d] = (int64_t)stride[d];
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
    uint64_t stride[HG_MAX_DIMS];
    rt_buffer *nb;
    rt_tensor *v;
    hg_status st = tensor_copy(t, &nb);
    if (st != HG_OK)
        return st;
    tensor_row_major(shape, ndim, stride);
    st = rt_tensor_create(nb, ndim, shape, stride, 0, &v);
    if (st != HG_OK) {
        rt_buffer_release(nb);
        return st;
    }
    *out_tensor = v->handle;
    return HG_OK;
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
    rt_tensor *t, *v;
    uint64_t shape[HG_MAX_DIMS], stride[HG_MAX_DIMS], numel;
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
    tensor_row_major(shape, ndim, stride);
    st = rt_tensor_create(t->buf, ndim, shape, stride, t->offset, &v);
    if (st == HG_OK)
        *out_tensor = v->handle;
    return st;
}

hg_status hg_tensor_reshape(uint64_t executor, uint64_t tensor, const char *shape_json,
                            uint64_t *out_tensor) {
    rt_enter(1);
    hg_status st = tensor_reshape(executor, tensor, shape_json, out_tensor);
    rt_leave();
    return st;
}

static hg_status tensor_matmul(uint64_t executor, uint64_t a, uint64_t b, uint64_t *out_tensor) {
    rt_executor *e;
    rt_tensor *ta, *tb, *tc;
    rt_buffer *nb;
    uint64_t numel;
    if (out_tensor == NULL)
        return tensor_null_out("out_tensor");
    hg_status st = tensor_get_owned(executor, a, &e, &ta);
    if (st == HG_OK)
        st = tensor_get_owned(executor, b, &e, &tb);
    if (st != HG_OK)
        return st;
    if (ta->ndim != 2 || tb->ndim != 2 || ta->shape[1] != tb->shape[0])
        return rt_error(HG_ERR_SHAPE, "matmul %s x %s: %s",
                        tensor_dims_str(ta->shape, ta->ndim).text,
                        tensor_dims_str(tb->shape, tb->ndim).text,
                        ta->ndim != 2 || tb->ndim != 2 ? "both tensors must be 2-D"
                                                       : "inner dimensions differ");
    const uint64_t shape[2] = {ta->shape[0], tb->shape[1]};
    st = tensor_numel_of(shape, 2, &numel);
    if (st == HG_OK)
        st = rt_buffer_create(e, numel, &nb);
    if (st != HG_OK)
        return st;
    if (numel > 0 && ta->shape[1] > 0) { /* k = 0 leaves the zero-filled buffer */
        canon_args args;
        memset(&args, 0, sizeof args);
        args.slot[0] = ta->buf->data + ta->offset;
        args.slot[1] = tb->buf->data + tb->offset;
        args.slot[2] = nb->data;
        args.contract.m = shape[0];
        args.contract.n = shape[1];
        args.contract.k = ta->shape[1];
        args.contract.a_rs = (int64_t)ta->stride[0];
        args.contract.a_cs = (int64_t)ta->stride[1];
        args.contract.b_rs = (int64_t)tb->stride[0];
        args.contract.b_cs = (int64_t)tb->stride[1];
        float unused;
        st = rt_run_op(CANON_OP_gemm_f32, &args, -1, &unused);
    }
    if (st == HG_OK) {
        const uint64_t stride[2] = {shape[1], 1};
        st = rt_tensor_create(nb, 2, shape, stride, 0, &tc);
    }
    if (st != HG_OK) {
        rt_buffer_release(nb);
        return st;
    }
    *out_tensor = tc->handle;
    return HG_OK;
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
