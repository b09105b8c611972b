/*
 * hologram — a JIT-compiling float32 array runtime.  Public C API.
 *
 * Conventions (every function below follows them):
 *  - Every function returns an hg_status; results go through out-parameters, which are
 *    written only on HG_OK.  On any other status, hg_last_error() gives a message for the
 *    calling thread that names the offending value and the limit it broke.
 *  - Handles are nonzero uint64_t values.  0, a made-up value, a freed handle or a handle of
 *    the wrong kind gives HG_ERR_INVALID_HANDLE.  Handles are never reused.
 *  - Integer arguments are uint64_t so that nothing is silently truncated; a value beyond
 *    what the API can represent gives an error naming it.  Positions that may be negative
 *    (hg_tensor_slice's start, end and step) are int64_t.
 *  - Strings passed in are borrowed (read during the call only).  Strings returned through
 *    `char **` are owned by the caller and freed with hg_free_string().  Strings returned
 *    through `const char **` are static and must not be freed.
 *  - The library never prints (except the HOLOGRAM_DUMP debug switch), exits or aborts,
 *    and may be called from several threads at once.
 *  - Elementwise operations work on the first n elements; n must be <= the length of every
 *    buffer read or written (HG_ERR_OUT_OF_BOUNDS otherwise, nothing written).  The output
 *    may alias an input.  On error no buffer is modified.
 */
#ifndef HOLOGRAM_H
#define HOLOGRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HOLOGRAM_BUILDING) && defined(__GNUC__)
#define HG_API __attribute__((visibility("default")))
#else
#define HG_API
#endif

#define HOLOGRAM_VERSION_MAJOR 0
#define HOLOGRAM_VERSION_MINOR 1
#define HOLOGRAM_VERSION_PATCH 0
#define HOLOGRAM_VERSION_STRING "0.1.0"

/* Status codes: X(name, value, description).  Python maps each to an exception class. */
#define HG_STATUS_MAP(X)                                                       \
    X(HG_OK, 0, "ok")                                                          \
    X(HG_ERR_INVALID_HANDLE, 1, "invalid handle")                              \
    X(HG_ERR_INVALID_ARGUMENT, 2, "invalid argument")                          \
    X(HG_ERR_SHAPE, 3, "shape mismatch")                                       \
    X(HG_ERR_OUT_OF_BOUNDS, 4, "out of bounds")                                \
    X(HG_ERR_JSON, 5, "malformed JSON")                                        \
    X(HG_ERR_BUSY, 6, "buffer in use")                                         \
    X(HG_ERR_NO_MEMORY, 7, "out of memory")                                    \
    X(HG_ERR_COMPILE, 8, "kernel compilation failed")                          \
    X(HG_ERR_INTERNAL, 9, "internal error")                                    \
    X(HG_ERR_EXPRESSION, 10, "malformed expression")

typedef enum {
#define HG_STATUS_ENUM_(name, value, text) name = value,
    HG_STATUS_MAP(HG_STATUS_ENUM_)
#undef HG_STATUS_ENUM_
} hg_status;

/* Largest buffer, in float32 elements: buffer_size_bytes must fit the seed's u32. */
#define HG_MAX_BUFFER_LENGTH 1073741823u
/* Boundary pool geometry (the Atlas model): 96 classes of 48 pages x 256 bytes. */
#define HG_BOUNDARY_CLASSES 96u
#define HG_BOUNDARY_PAGES 48u
#define HG_BOUNDARY_PAGE_BYTES 256u
#define HG_BOUNDARY_CLASS_BYTES 12288u
/* Largest tensor rank. */
#define HG_MAX_DIMS 8u

/* ---- utilities -------------------------------------------------------------------- */

/* Static text for a status ("invalid handle"); "unknown status" for other values. */
HG_API const char *hg_status_string(hg_status status);
/* The calling thread's message for its last failed call ("" if none).  Valid until the
 * thread's next hologram call; never NULL. */
HG_API const char *hg_last_error(void);
/* Frees a string returned through `char **`.  NULL is harmless. */
HG_API void hg_free_string(char *s);
/* *out_version = HOLOGRAM_VERSION_STRING (static).  Errors: INVALID_ARGUMENT (NULL out). */
HG_API hg_status hg_get_version(const char **out_version);
/* Frees every executor, buffer, tensor and expression of the process; their handles become
 * invalid.  Errors: BUSY while a buffer is pinned (hg_buffer_pin), and then nothing is
 * freed. */
HG_API hg_status hg_clear_all_registries(void);

/* ---- executors -------------------------------------------------------------------- */

/* Creates an executor (it owns buffers, tensors and a 96-class boundary pool).
 * Errors: NO_MEMORY. */
HG_API hg_status hg_new_executor(uint64_t *out_executor);
/* Frees the executor and every buffer and tensor made from it.
 * Errors: INVALID_HANDLE (including a second cleanup); BUSY while one of its buffers is
 * pinned (hg_buffer_pin), and then nothing is freed. */
HG_API hg_status hg_executor_cleanup(uint64_t executor);

/* ---- buffers ---------------------------------------------------------------------- */

/* A zero-filled linear buffer of `length` floats (0 allowed), owned by the executor.
 * Errors: INVALID_HANDLE; NO_MEMORY when length > HG_MAX_BUFFER_LENGTH or the memory
 * cannot be had. */
HG_API hg_status hg_executor_allocate_buffer(uint64_t executor, uint64_t length,
                                             uint64_t *out_buffer);
/* A window of width*height bytes (width*height/4 floats) onto the start of boundary class
 * `class_index` of the executor's boundary pool; buffers of one class share memory.
 * Zero-filled.  Errors: INVALID_HANDLE; INVALID_ARGUMENT when class_index > 95,
 * width not in 1..48, height not in 1..256 or width*height not a multiple of 4. */
HG_API hg_status hg_executor_allocate_boundary_buffer(uint64_t executor, uint64_t class_index,
                                                      uint64_t width, uint64_t height,
                                                      uint64_t *out_buffer);
/* Properties.  Errors: INVALID_HANDLE, INVALID_ARGUMENT (NULL out). */
HG_API hg_status hg_buffer_length(uint64_t buffer, uint32_t *out_length);
HG_API hg_status hg_buffer_is_empty(uint64_t buffer, uint8_t *out_flag);
HG_API hg_status hg_buffer_is_linear(uint64_t buffer, uint8_t *out_flag);
HG_API hg_status hg_buffer_is_boundary(uint64_t buffer, uint8_t *out_flag);
/* *out_pool = "Linear" or "Boundary" (static). */
HG_API hg_status hg_buffer_pool(uint64_t buffer, const char **out_pool);
/* Always 4 (float32). */
HG_API hg_status hg_buffer_element_size(uint64_t buffer, uint32_t *out_size);
HG_API hg_status hg_buffer_size_bytes(uint64_t buffer, uint32_t *out_size);
/* 0 for linear buffers, the class (0..95) for boundary buffers. */
HG_API hg_status hg_buffer_class_index(uint64_t buffer, uint8_t *out_class);

/* Copies a JSON array of numbers (NaN, Infinity, -Infinity accepted, as Python's json
 * writes them) into the buffer's first elements; the rest is unchanged.  `json` is
 * borrowed.  Errors: INVALID_HANDLE; JSON (malformed text, non-array, non-number element:
 * the message gives the byte position); OUT_OF_BOUNDS (more elements than the buffer).
 * On error the buffer is unchanged. */
HG_API hg_status hg_buffer_copy_from_slice(uint64_t executor, uint64_t buffer,
                                           const char *json);
/* *out_json = a JSON array of all buffer_length elements, each the shortest decimal that
 * reads back as the same float32, integral values with ".0", NaN/Infinity/-Infinity as
 * Python's json writes them.  Free with hg_free_string().  Errors: INVALID_HANDLE,
 * NO_MEMORY. */
HG_API hg_status hg_buffer_to_vec(uint64_t executor, uint64_t buffer, char **out_json);
/* buffer[i] = value for i < n.  Errors: INVALID_HANDLE, OUT_OF_BOUNDS. */
HG_API hg_status hg_buffer_fill(uint64_t executor, uint64_t buffer, float value, uint64_t n);
/* dst[i] = src[i] for i < n (overlap-safe).  Errors: INVALID_HANDLE, OUT_OF_BOUNDS. */
HG_API hg_status hg_buffer_copy(uint64_t executor, uint64_t src, uint64_t dst, uint64_t n);
/* Frees a buffer.  Errors: INVALID_HANDLE (also when already freed); BUSY while tensors
 * view it or it is pinned (hg_buffer_pin; the message says how many). */
HG_API hg_status hg_buffer_cleanup(uint64_t buffer);

/* Beyond the seed: raw transfer for zero-copy bindings (NumPy).  Copies n floats from
 * `src` (borrowed) into the buffer's first n elements / from the buffer into `dst`.
 * Errors: INVALID_HANDLE, OUT_OF_BOUNDS, INVALID_ARGUMENT (NULL pointer with n > 0). */
HG_API hg_status hg_buffer_write(uint64_t executor, uint64_t buffer, const float *src,
                                 uint64_t n);
HG_API hg_status hg_buffer_read(uint64_t executor, uint64_t buffer, float *dst, uint64_t n);

/* Beyond the seed: the buffer's memory itself, for views without copies (NumPy's
 * buffer_as_numpy).  Pins the buffer and gives *out_data = its first float (64-byte
 * aligned; borrowed, writable, non-NULL even for length 0) and *out_length = its length.
 * Pins count: each hg_buffer_pin needs one hg_buffer_unpin.  While the buffer has pins its
 * memory stays where it is: hg_buffer_cleanup of it, hg_executor_cleanup of its executor
 * and hg_clear_all_registries return BUSY (naming the pins) and free nothing.  Ops may
 * write the memory meanwhile; the caller orders its own reads and writes against them.
 * Thread-safe.  Errors: INVALID_HANDLE (executor, buffer, a buffer of another executor),
 * INVALID_ARGUMENT (a NULL out pointer). */
HG_API hg_status hg_buffer_pin(uint64_t executor, uint64_t buffer, float **out_data,
                               uint64_t *out_length);
/* Drops one pin of hg_buffer_pin.  Errors: INVALID_HANDLE; INVALID_ARGUMENT when the
 * buffer has no pin. */
HG_API hg_status hg_buffer_unpin(uint64_t executor, uint64_t buffer);

/* ---- operations (float32, first n elements) ----------------------------------------
 * Common errors: INVALID_HANDLE (executor or buffer; a buffer of another executor),
 * OUT_OF_BOUNDS (n past a buffer's end), COMPILE is never returned: a kernel that fails to
 * compile falls back to the interpreter. */

/* c[i] = a[i] (+ - * /) b[i]; x/0 = +-Inf, 0/0 = NaN. */
HG_API hg_status hg_vector_add_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
HG_API hg_status hg_vector_sub_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
HG_API hg_status hg_vector_mul_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
HG_API hg_status hg_vector_div_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
/* c[i] = minimum/maximum(a[i], b[i]): NaN if either is NaN, -0 < +0 (IEEE 754-2019). */
HG_API hg_status hg_vector_min_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
HG_API hg_status hg_vector_max_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c,
                                   uint64_t n);
/* c[i] = |a[i]|, -a[i], max(a[i], 0) (NaN stays NaN). */
HG_API hg_status hg_vector_abs_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n);
HG_API hg_status hg_vector_neg_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n);
HG_API hg_status hg_vector_relu_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n);
/* c[i] = min(max(a[i], lo), hi).  Extra error: INVALID_ARGUMENT when lo > hi or a bound
 * is NaN. */
HG_API hg_status hg_vector_clip_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n,
                                    float lo, float hi);
/* c[i] = a[i] + s, a[i] * s. */
HG_API hg_status hg_scalar_add_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n,
                                   float s);
HG_API hg_status hg_scalar_mul_f32(uint64_t executor, uint64_t a, uint64_t c, uint64_t n,
                                   float s);

/* Reductions over x[0..n): *out_result and out[0] get the result (out needs >= 1 element).
 * sum of n = 0 is 0; min/max of n = 0 is INVALID_ARGUMENT; min/max propagate NaN.  The sum
 * is blocked (error <= 1e-6*log2(n)*sum|x|). */
HG_API hg_status hg_reduce_sum_f32(uint64_t executor, uint64_t x, uint64_t out, uint64_t n,
                                   float *out_result);
HG_API hg_status hg_reduce_min_f32(uint64_t executor, uint64_t x, uint64_t out, uint64_t n,
                                   float *out_result);
HG_API hg_status hg_reduce_max_f32(uint64_t executor, uint64_t x, uint64_t out, uint64_t n,
                                   float *out_result);

/* Activations: y = 1/(1+exp(-x)), tanh(x), tanh-form GELU
 * 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))); within 2 ulp*|y| + 1e-7 of exact. */
HG_API hg_status hg_sigmoid_f32(uint64_t executor, uint64_t x, uint64_t y, uint64_t n);
HG_API hg_status hg_tanh_f32(uint64_t executor, uint64_t x, uint64_t y, uint64_t n);
HG_API hg_status hg_gelu_f32(uint64_t executor, uint64_t x, uint64_t y, uint64_t n);
/* y[i] = exp(x[i]-max)/sum exp(x[j]-max); n = 0 is INVALID_ARGUMENT. */
HG_API hg_status hg_softmax_f32(uint64_t executor, uint64_t x, uint64_t y, uint64_t n);

/* Losses: *out_result and out[0] get the loss (out needs >= 1 element); n = 0 is
 * INVALID_ARGUMENT.
 * mse = mean((p-t)^2); cross_entropy = -(1/n)*sum t*log(max(p, 1e-7));
 * binary_cross_entropy = -mean(t*log(q) + (1-t)*log(1-q)), q = clamp(p, 1e-7, 1-1e-7). */
HG_API hg_status hg_mse_loss_f32(uint64_t executor, uint64_t p, uint64_t t, uint64_t out,
                                 uint64_t n, float *out_result);
HG_API hg_status hg_cross_entropy_loss_f32(uint64_t executor, uint64_t p, uint64_t t,
                                           uint64_t out, uint64_t n, float *out_result);
HG_API hg_status hg_binary_cross_entropy_loss_f32(uint64_t executor, uint64_t p, uint64_t t,
                                                  uint64_t out, uint64_t n,
                                                  float *out_result);

/* Row-major C[m x n] = A[m x k] * B[k x n] (C overwritten; C must not alias A or B).
 * Errors: OUT_OF_BOUNDS when a buffer is shorter than its matrix; INVALID_ARGUMENT when
 * C aliases A or B, or m*n*k overflows. */
HG_API hg_status hg_gemm_f32(uint64_t executor, uint64_t a, uint64_t b, uint64_t c, uint64_t m,
                             uint64_t n, uint64_t k);
/* Row-major y[m] = A[m x n] * x[n] (y must not alias A or x). */
HG_API hg_status hg_matvec_f32(uint64_t executor, uint64_t a, uint64_t x, uint64_t y,
                               uint64_t m, uint64_t n);

/* ---- tensors (views: buffer, shape, strides, offset; all in elements) ---------------
 * A tensor keeps its buffer alive: hg_buffer_cleanup gives BUSY while tensors view it.
 * Shapes and strides are JSON arrays of non-negative integer literals (digits only: "2.0",
 * "1e3" and "-0" are refused), at most HG_MAX_DIMS long.
 * Every tensor keeps: ndim <= HG_MAX_DIMS, numel <= UINT32_MAX, offset <= buffer length,
 * every reachable element inside its buffer; a view that would break them is refused. */

/* Row-major view of the buffer's first numel elements; ndim >= 1.  Errors:
 * INVALID_HANDLE; JSON (not an array of non-negative integers); SHAPE (ndim 0 or >
 * HG_MAX_DIMS, numel overflow); OUT_OF_BOUNDS (numel > buffer length). */
HG_API hg_status hg_tensor_from_buffer(uint64_t buffer, const char *shape_json,
                                       uint64_t *out_tensor);
/* View with the caller's strides; the largest reachable index must be < buffer length.
 * Errors as above, plus SHAPE when shape and strides differ in length. */
HG_API hg_status hg_tensor_from_buffer_with_strides(uint64_t buffer, const char *shape_json,
                                                    const char *strides_json,
                                                    uint64_t *out_tensor);
/* JSON arrays; free with hg_free_string(). */
HG_API hg_status hg_tensor_shape(uint64_t tensor, char **out_json);
HG_API hg_status hg_tensor_strides(uint64_t tensor, char **out_json);
HG_API hg_status hg_tensor_offset(uint64_t tensor, uint32_t *out_offset);
HG_API hg_status hg_tensor_ndim(uint64_t tensor, uint32_t *out_ndim);
HG_API hg_status hg_tensor_numel(uint64_t tensor, uint32_t *out_numel);
/* 1 when the view is row-major contiguous (dimensions of size 1 ignored). */
HG_API hg_status hg_tensor_is_contiguous(uint64_t tensor, uint8_t *out_flag);
/* The buffer the tensor views (borrowed handle: not freed by tensor_cleanup). */
HG_API hg_status hg_tensor_buffer(uint64_t tensor, uint64_t *out_buffer);
/* A new tensor over a new contiguous buffer of `executor` (the tensor's own) holding the
 * same values.  The new buffer is freed by hg_buffer_cleanup (after the tensor) or
 * hg_executor_cleanup.  Errors: INVALID_HANDLE, NO_MEMORY. */
HG_API hg_status hg_tensor_contiguous(uint64_t executor, uint64_t tensor, uint64_t *out_tensor);
/* 2-D only: a view with shape and strides swapped.  Errors: INVALID_HANDLE, SHAPE. */
HG_API hg_status hg_tensor_transpose(uint64_t tensor, uint64_t *out_tensor);
/* Same numel, new shape: a view when the tensor is contiguous, else over a contiguous copy
 * (a new buffer, as hg_tensor_contiguous).  Errors: INVALID_HANDLE, JSON, SHAPE. */
HG_API hg_status hg_tensor_reshape(uint64_t executor, uint64_t tensor, const char *shape_json,
                                   uint64_t *out_tensor);
/* A view with dimension `dim` removed at `index` (1-D gives a 0-D tensor of numel 1).
 * Errors: INVALID_HANDLE, OUT_OF_BOUNDS (dim >= ndim or index >= shape[dim]). */
HG_API hg_status hg_tensor_select(uint64_t tensor, uint64_t dim, uint64_t index,
                                  uint64_t *out_tensor);
/* np.matmul of a [..., m, k] and b [..., k, n] (borrowed, both of `executor`): a new
 * row-major [..., m, n] tensor over a new buffer of the executor (freed as
 * hg_tensor_contiguous's), C[..., i, j] = sum_p A[..., i, p] * B[..., p, j] within the gemm
 * bound.  Ranks 2..HG_MAX_DIMS: the dimensions before the last two are batch dimensions,
 * broadcast by NumPy's rules (aligned at the right; a missing or extent-1 one takes the
 * other's extent), so [b, m, k] . [b, k, n], [1, m, k] . [b, k, n], [m, k] . [b, k, n] and
 * [b, m, k] . [k, n] all give [b, m, n].  A 1-D operand is refused, not promoted (unsqueeze
 * it).  Any strides (stride 0 included) and offsets: A and B are read in place, never
 * copied; each batch item is one contraction.  Zero extents give an empty result, or zeros
 * when only k is 0.  Errors (nothing created): INVALID_HANDLE (a tensor of another
 * executor too); INVALID_ARGUMENT (NULL out_tensor); SHAPE ("matmul A x B: ..." naming both
 * shapes: a rank below 2, inner dimensions that differ or batch dimensions that do not
 * broadcast, naming the dimensions, or a result of more than UINT32_MAX elements);
 * NO_MEMORY (a result longer than HG_MAX_BUFFER_LENGTH). */
HG_API hg_status hg_tensor_matmul(uint64_t executor, uint64_t a, uint64_t b,
                                  uint64_t *out_tensor);

/* Views (the original Hologram's): each makes a new tensor over the same buffer with no copy
 * (borrowing the input tensor, which stays valid and unchanged).  The view counts as one more
 * tensor viewing the buffer: hg_buffer_cleanup gives BUSY until hg_tensor_cleanup of the view
 * (or hg_executor_cleanup, which frees it with the buffer).  Zero-size dimensions are allowed.
 * A narrow or slice that selects nothing along its dimension keeps the tensor's offset and
 * stride there (NumPy's a[s:s]).  Every function gives INVALID_HANDLE for a bad tensor,
 * INVALID_ARGUMENT for a NULL out-parameter, and OUT_OF_BOUNDS for a view whose offset
 * would pass the end of the buffer (possible only for a tensor without elements, whose
 * strides may be anything); *out_tensor is written only on HG_OK. */

/* Dimensions reordered: view dimension i is the tensor's dims[i] (np.transpose(t, dims));
 * `dims_json` (borrowed) is a permutation of 0..ndim-1 ("[]" for a 0-D tensor).
 * Errors: JSON (not an array of non-negative integers); SHAPE (a length other than ndim, a
 * repeated or out-of-range entry: the dims and the tensor's ndim named). */
HG_API hg_status hg_tensor_permute(uint64_t tensor, const char *dims_json,
                                   uint64_t *out_tensor);
/* Dimension `dim` becomes [start, start + length): offset += start * stride[dim] when
 * length > 0 (t[s:s+n]).
 * Errors: OUT_OF_BOUNDS (dim >= ndim, so always for a 0-D tensor; start + length >
 * shape[dim], computed without overflow). */
HG_API hg_status hg_tensor_narrow(uint64_t tensor, uint64_t dim, uint64_t start,
                                  uint64_t length, uint64_t *out_tensor);
/* Dimension `dim` keeps elements start, start + step, ... below end (t[start:end:step]);
 * end = -1 means the end of the dimension (shape[dim]), not "all but the last" as in Python.
 * start >= end gives an empty dimension.  stride[dim] *= step (kept when 0 or 1 elements
 * remain).  Errors: INVALID_ARGUMENT (step 0; a negative step: negative steps are not
 * supported, strides are non-negative here); OUT_OF_BOUNDS (dim >= ndim; start outside
 * [0, shape[dim]]; end outside [0, shape[dim]] and not -1: refused, never clamped;
 * step * stride[dim] beyond 2^64, possible only without elements). */
HG_API hg_status hg_tensor_slice(uint64_t tensor, uint64_t dim, int64_t start, int64_t end,
                                 int64_t step, uint64_t *out_tensor);
/* A 1-D view of all numel elements in row-major order (t.reshape(-1) without a copy; a 0-D
 * tensor gives shape [1]).  Errors: SHAPE when the tensor is not row-major contiguous
 * (make it so with hg_tensor_contiguous). */
HG_API hg_status hg_tensor_view_1d(uint64_t tensor, uint64_t *out_tensor);
/* A view of shape `shape_json` (borrowed) by NumPy's rules (np.broadcast_to): shapes aligned
 * at the right; a new leading dimension, or an extent-1 dimension given another extent, gets
 * stride 0; every other extent must be equal.  Errors: JSON; SHAPE (the shapes do not
 * broadcast that way: both named; more than HG_MAX_DIMS dimensions; more than UINT32_MAX
 * elements). */
HG_API hg_status hg_tensor_broadcast_to(uint64_t tensor, const char *shape_json,
                                        uint64_t *out_tensor);
/* A new extent-1 dimension at position dim (0..ndim; np.expand_dims), with stride
 * shape[dim] * stride[dim] (1 at the end; it never reaches an element).  Errors: OUT_OF_BOUNDS (dim > ndim); SHAPE when
 * the tensor already has HG_MAX_DIMS dimensions. */
HG_API hg_status hg_tensor_unsqueeze(uint64_t tensor, uint64_t dim, uint64_t *out_tensor);
/* Dimension dim removed (np.squeeze(t, dim)); a 1-D [1] tensor gives a 0-D one.
 * Errors: OUT_OF_BOUNDS (dim >= ndim); SHAPE (shape[dim] is not 1). */
HG_API hg_status hg_tensor_squeeze(uint64_t tensor, uint64_t dim, uint64_t *out_tensor);
/* The broadcast shape of the two tensors' shapes as a JSON array (np.broadcast_shapes:
 * aligned at the right, a missing or extent-1 dimension takes the other's extent); free with
 * hg_free_string().  Only shapes are compared: the tensors may belong to different
 * executors, and the result may hold more elements than one tensor can.  Errors:
 * INVALID_HANDLE; SHAPE when the shapes do not broadcast (both named); NO_MEMORY. */
HG_API hg_status hg_tensor_broadcast_shapes(uint64_t a, uint64_t b, char **out_json);
/* *out_flag = 1 when hg_tensor_broadcast_shapes(a, b) would succeed, else 0 (incompatible
 * shapes are not an error).  Errors: INVALID_HANDLE. */
HG_API hg_status hg_tensor_is_broadcast_compatible_with(uint64_t a, uint64_t b,
                                                        uint8_t *out_flag);
/* Frees the view (never its buffer).  Errors: INVALID_HANDLE (also when already freed). */
HG_API hg_status hg_tensor_cleanup(uint64_t tensor);

/* ---- expressions: any elementwise formula, fused into one kernel ---------------------
 * The language is numexpr's:
 *   numbers (Python float/int literals, rounded once to float32; one beyond the float32
 *   range is an error), names, + - * / (IEEE float32), unary - + ~, ** (x**2 is x*x,
 *   x**0.5 is sqrt(x), x**1 is x, x**-1 is 1/x, x**0 is 1; other exponents: pow, within
 *   1 ulp, C99 powf's special cases), comparisons < <= > >= == != (1.0 or 0.0; at most
 *   one per level: no chains), & | (1.0 where both / either operand is nonzero), ~ (1.0
 *   where the operand is 0), parentheses, and the functions
 *     exp log sqrt abs tanh sigmoid gelu relu  minimum(x, y) maximum(x, y)
 *     clip(x, lo, hi) = minimum(maximum(x, lo), hi)   where(c, a, b) = c != 0 ? a : b
 *   with the semantics of the ops of the same names (minimum/maximum: NaN if either is,
 *   -0 < +0).  Precedence is Python's: comparisons, |, &, + -, * /, unary, ** (which binds
 *   tighter than a unary minus on its left: -x**2 is -(x**2)).
 *   A reduction may enclose the whole expression: sum(e), mean(e) (sum / n; NaN for n = 0),
 *   min(e), max(e) (NaN propagates; n = 0 is INVALID_ARGUMENT).  It may name one axis,
 *   numexpr's sum(e, axis=1) (negative counts from the last), for N-d operands (see
 *   "N-d compute"); on 1-D buffers only axis 0 or -1 (the whole) is in range.
 * Exact operations (+ - * /, minimum, maximum, abs, negation, comparisons, where, clip,
 * relu, sqrt, **2) give exactly what NumPy float32 gives evaluating the same tree (no FMA
 * contraction, no reassociation; a sum reassociates, within the reduce_sum bound);
 * exp/log/tanh/sigmoid/gelu/pow keep the accuracy of the ops.  NaN results are NaN; their
 * sign and payload are not specified (as in NumPy, they depend on the instruction).
 * The expression becomes a canonical form with the same rewrite rules as the built-in ops:
 * `a + b` runs vector_add_f32's kernel, a repeated subexpression is computed once, and
 * scalars are run-time parameters (a new value never recompiles).
 * Limits: 1 MiB of text, nesting 64 deep, 4096 nodes, names of 64 bytes, 32 arrays, 32
 * scalars.  Expressions are process-wide (not owned by an executor) and immutable; any
 * thread may run one while others run it too. */

/* Compiles `source` into an expression handle.  `source` is either expression text, or a
 * program document as JSON (an object with "nodes" and "stages", as the "before" and
 * "after" members of hg_expr_describe's document; or such a document itself, whose
 * "after" is used), for embedders that generate programs.  `scalars_json`: NULL, "" or a
 * JSON array of the names that are scalar parameters (["w", "b"]); every other name is an
 * array input.  A JSON program names its own "arrays" and "scalars" (then scalars_json
 * must be NULL or "").  Borrowed strings.
 * Errors: EXPRESSION (syntax error, unknown function, wrong number of arguments, a
 * reduction that is not the whole expression, a declared scalar that does not appear, a
 * malformed program, a limit: the message names the column and token, name or limit);
 * JSON (scalars_json or a JSON program that is not well-formed JSON); INVALID_ARGUMENT
 * (NULL source or out_expr); NO_MEMORY. */
HG_API hg_status hg_expr_compile(const char *source, const char *scalars_json,
                                 uint64_t *out_expr);
/* The expression's variables in binding order and what it produces, as JSON:
 * {"arrays": ["a", "b"], "scalars": ["w"], "kind": "map", "output": true, "result": false,
 * "axis": null} (kind: "map", "sum", "mean", "min", "max", or "program" for a JSON
 * program; output: it writes an output array; result: it yields a scalar; axis: the k of
 * a reduction's axis=k, else null).  Free with hg_free_string().
 * Errors: INVALID_HANDLE, NO_MEMORY. */
HG_API hg_status hg_expr_variables(uint64_t expr, char **out_json);
/* The canonical form before and after rewriting, as JSON: {"source": text or null,
 * "kind": ..., "nodes_before": N, "nodes_after": M, "hash": "16 hex digits", "before":
 * program, "after": program}, each program {"arrays": [...], "scalars": [...], "nodes":
 * [{"op": "LOAD", "slot": 0}, {"op": "PARAM", "index": 0}, {"op": "CONST", "value": 2.0,
 * "bits": "0x40000000"}, {"op": "ACC", "stage": 0}, {"op": "LEN"}, {"op": "ADD", "args":
 * [0, 2]}, ...], "stages": [{"domain": "RANGE", "root": 3, "store": 1, "reduce": "none"}],
 * "result": stage or null}; node indices are positions in "nodes", operands come first.
 * Free with hg_free_string().  Errors: INVALID_HANDLE, NO_MEMORY. */
HG_API hg_status hg_expr_describe(uint64_t expr, char **out_json);
/* Runs the expression over the first n elements of buffers of `executor`: inputs[i] is
 * array i and params[j] scalar j in binding order (n_inputs and n_params must be the
 * expression's counts; the pointers may be NULL when the count is 0).  A map writes
 * `output` (required, may be one of the inputs: in place); a reduction writes its value
 * to *out_result (when not NULL) and to output[0] when output is not 0.  Borrowed arrays.
 * Errors: INVALID_HANDLE (executor, expression, a buffer of another executor);
 * INVALID_ARGUMENT (wrong counts, NULL arrays, n = 0 for min/max, an output that a later
 * stage of a JSON program would read as an input); OUT_OF_BOUNDS (a buffer shorter than n,
 * naming its variable; a reduction's output of no element).  Nothing is written on error. */
HG_API hg_status hg_expr_run(uint64_t executor, uint64_t expr, const uint64_t *inputs,
                             uint64_t n_inputs, const float *params, uint64_t n_params,
                             uint64_t output, uint64_t n, float *out_result);
/* hg_expr_run on raw memory, with no executor and no copy (embedders, NumPy): inputs[i]
 * points to n floats of array i, output to n floats (maps; NULL allowed for a reduction,
 * whose value then goes only to *out_result).  The output must be one of the inputs or
 * overlap none of them.  Errors: INVALID_HANDLE, INVALID_ARGUMENT (counts, NULL pointers,
 * an output that partly overlaps an input, n = 0 for min/max, a range past the address
 * space). */
HG_API hg_status hg_expr_run_raw(uint64_t expr, const float *const *inputs, uint64_t n_inputs,
                                 const float *params, uint64_t n_params, float *output,
                                 uint64_t n, float *out_result);
/* Frees the expression.  Errors: INVALID_HANDLE (also when already freed). */
HG_API hg_status hg_expr_cleanup(uint64_t expr);

/* ---- N-d compute: expressions and ops on tensors and strided arrays ------------------
 * Every expression and every built-in op except the contractions runs on N-d operands
 * with NumPy's rules, as one kernel specialized on the operands' shape and stride classes:
 *  - Broadcasting: shapes are aligned at the right; an extent 1 or a missing dimension
 *    stretches (stride 0).  Shapes that do not broadcast are SHAPE, naming both.
 *  - Maps (every map op, every expression without a reduction) write the broadcast shape.
 *    The output may be an input (in place: the same elements, index for index); any
 *    other overlap with an input, or an output that names an element twice (a broadcast
 *    view), is INVALID_ARGUMENT.
 *  - Reductions reduce the axes: an expression's own `sum(e, axis=k)`, or the call's
 *    axes_json (NULL, "" or "null": all axes; an integer; or a JSON array of them,
 *    negative counting from the last), and give the shape without them, or with extent 1
 *    there when keepdims.  sum, mean (mean of no elements: NaN), min, max (no elements:
 *    INVALID_ARGUMENT); the reduce ops likewise; a loss (no elements: INVALID_ARGUMENT, as
 *    for n = 0 in 1-D) over axes is the op's loss of
 *    each row (a batch of rows: axes "-1" gives one loss per row).
 *  - softmax_f32 normalizes over its axes (default: the last), writing the input's shape.
 *  - Accuracy is the 1-D ops' and expressions' (bit-exact maps; sums within the reduce_sum
 *    bound).  Ranks up to HG_MAX_DIMS; an axis out of range is INVALID_ARGUMENT naming it.
 * Nothing is written on error. */

/* An N-d float32 array in the caller's memory (a NumPy array): element [i0, i1, ...] is
 * data[sum_d i_d * strides[d]], strides in elements of any sign (0 broadcasts); ndim 0
 * is one element at data. */
typedef struct {
    float *data;
    uint64_t ndim;
    uint64_t shape[HG_MAX_DIMS];
    int64_t strides[HG_MAX_DIMS];
} hg_array;

/* Runs the expression on arrays: inputs[i] is array i and params[j] scalar j in binding
 * order.  A map writes `output` (the broadcast shape); a reduction writes its values to
 * `output` (the reduced shape, or keepdims' when output has the inputs' rank; a full
 * reduction: ndim 0 or all extents 1).  Errors: INVALID_HANDLE; INVALID_ARGUMENT (counts,
 * NULL pointers, aliasing, axis); SHAPE (no broadcast, an output of the wrong shape, rank
 * above HG_MAX_DIMS, a shape or reach that overflows). */
HG_API hg_status hg_expr_run_arrays(uint64_t expr, const hg_array *inputs, uint64_t n_inputs,
                                    const float *params, uint64_t n_params,
                                    const hg_array *output);
/* Runs op `op` (a name of ops.def: "vector_add_f32", "reduce_max_f32", "softmax_f32",
 * "mse_loss_f32", ...; not gemm_f32 or matvec_f32, nor buffer_fill, which reads no array)
 * on arrays over axes_json (see above).  Errors as hg_expr_run_arrays, and
 * INVALID_ARGUMENT for an unknown op or axes given to a map. */
HG_API hg_status hg_op_run_arrays(const char *op, const hg_array *inputs, uint64_t n_inputs,
                                  const float *params, uint64_t n_params,
                                  const char *axes_json, const hg_array *output);

/* The row of ops.def named `op` as JSON: {"name": ..., "family": "map" | "reduce" | "loss" |
 * "softmax" | "contract", "arrays": n, "scalars": n, "reduce": "none" | "sum" | "min" |
 * "max", "min_n": n, "math": its semantics}.  Free with hg_free_string().  Errors:
 * INVALID_ARGUMENT (unknown op, NULL), NO_MEMORY. */
HG_API hg_status hg_op_describe(const char *op, char **out_json);
/* The expression on tensors of `executor` (any views: broadcast, transposed, sliced,
 * offset) into a new row-major tensor over a new buffer of the executor: the broadcast
 * shape, or the reduced one.  Errors as hg_expr_run_arrays, plus INVALID_HANDLE (a tensor
 * of another executor), NO_MEMORY. */
HG_API hg_status hg_tensor_evaluate(uint64_t executor, uint64_t expr, const uint64_t *tensors,
                                    uint64_t n_tensors, const float *params, uint64_t n_params,
                                    uint64_t *out_tensor);
/* The expression on tensors written into tensor `out` (any view of a buffer of the
 * executor; for a map of the broadcast shape, for a reduction of the reduced shape, or
 * keepdims' when out has the inputs' rank). */
HG_API hg_status hg_tensor_evaluate_into(uint64_t executor, uint64_t expr,
                                         const uint64_t *tensors, uint64_t n_tensors,
                                         const float *params, uint64_t n_params, uint64_t out);
/* Op `op` (as hg_op_run_arrays) on tensors over axes_json, into a new row-major tensor:
 * the generic form of every map, reduction, loss and softmax on tensors
 * (tensor_apply(e, "vector_add_f32", [a, b]) is a + b with broadcasting). */
HG_API hg_status hg_tensor_apply(uint64_t executor, const char *op, const uint64_t *tensors,
                                 uint64_t n_tensors, const float *params, uint64_t n_params,
                                 const char *axes_json, uint8_t keepdims, uint64_t *out_tensor);
/* `kind` ("sum", "mean", "min", "max") of a tensor over axes_json into a new tensor. */
HG_API hg_status hg_tensor_reduce(uint64_t executor, uint64_t tensor, const char *kind,
                                  const char *axes_json, uint8_t keepdims,
                                  uint64_t *out_tensor);

/* ---- engine: backend choice and kernel cache ----------------------------------------- */

/* "jit" (default; environment HOLOGRAM_BACKEND) or "interp", process-wide.
 * Errors: INVALID_ARGUMENT for any other name (named in the message). */
HG_API hg_status hg_set_backend(const char *name);
/* *out_name = "jit" or "interp" (static). */
HG_API hg_status hg_get_backend(const char **out_name);

/* Threads a large op may use, process-wide, from now on (calls in flight keep theirs):
 * 1..256.  The start value is HOLOGRAM_THREADS, else the CPUs of the process's affinity
 * mask capped by its cgroup CPU quota.  The calling thread always works on its own op and
 * never waits for a thread that has not started; results of maps and reductions are the
 * same for every thread count.  A forked child may call hologram at once (its threads are
 * started anew).  Errors: INVALID_ARGUMENT (threads outside 1..256, named). */
HG_API hg_status hg_set_num_threads(int64_t threads);
/* *out_threads = the thread count ops use now.  Errors: INVALID_ARGUMENT (NULL, or
 * HOLOGRAM_THREADS set to something that is not an integer from 1 to 256 while
 * hg_set_num_threads was never called: named; every op fails the same way). */
HG_API hg_status hg_get_num_threads(uint64_t *out_threads);

typedef struct hg_cache_stats {
    uint64_t hits;           /* kernel found in memory */
    uint64_t misses;         /* kernel not in memory */
    uint64_t compiles;       /* kernels compiled by LLVM */
    uint64_t disk_loads;     /* kernels loaded from the on-disk object cache */
    uint64_t evictions;      /* kernels unloaded by the LRU bound */
    uint64_t entries;        /* kernels resident now */
    uint64_t capacity;       /* the LRU bound (HOLOGRAM_CACHE_ENTRIES) */
    uint64_t fallbacks;      /* calls run by the interpreter because a compile failed */
    double compile_seconds;  /* total time spent compiling (lowering + LLVM) */
    double disk_load_seconds;/* total time spent loading objects from disk */
    char disk_error[512];    /* "" while the on-disk cache is in use or off; else why this
                                process refused it (a directory or object not owned by the
                                effective uid, writable by group or others, a symbolic
                                link, ...): it then loads, writes and deletes nothing there */
} hg_cache_stats;

/* Copies the process's kernel-cache counters and the disk cache's refusal, if any.
 * Errors: INVALID_ARGUMENT (NULL). */
HG_API hg_status hg_cache_stats_get(hg_cache_stats *out_stats);
/* Unloads every compiled kernel and zeroes the counters (the disk cache is kept). */
HG_API hg_status hg_cache_reset(void);

#ifdef __cplusplus
}
#endif
#endif /* HOLOGRAM_H */
