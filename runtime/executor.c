/*
 * runtime/executor.c — executors, linear and boundary buffers, buffer properties and
 * transfer, process-wide cleanup, version and string freeing.
 *
 * Ownership: an executor owns its buffers and lists them and the tensors over them, so
 * its cleanup costs O(what it owns); tensors own nothing but a view count on their
 * buffer, and the boundary pool (HG_BOUNDARY_CLASSES regions of HG_BOUNDARY_CLASS_BYTES)
 * belongs to the executor and is made on its first boundary allocation.  A boundary buffer
 * is a window onto the start of its class's region, so boundary buffers of one class share
 * memory.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define RT_POOL_FLOATS ((uint64_t)HG_BOUNDARY_CLASSES * HG_BOUNDARY_CLASS_BYTES / sizeof(float))

/* ---- utilities ------------------------------------------------------------------------- */

/* Frees a string the library returned through `char **`; NULL is harmless. */
void hg_free_string(char *s) { free(s); }

/* *out_version = HOLOGRAM_VERSION_STRING (static). */
hg_status hg_get_version(const char **out_version) {
    rt_error_clear();
    if (!out_version)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "get_version: out_version is NULL");
    *out_version = HOLOGRAM_VERSION_STRING;
    return HG_OK;
}

/* ---- object release -------------------------------------------------------------------- */

/* Unregisters and frees buffer `b` (exclusive lock held; no tensor views it any more).
 * Boundary buffers leave the pool's memory to the executor. */
void rt_buffer_release(rt_buffer *b) {
    rt_list_remove(&b->link);
    rt_unregister(b->handle);
    if (b->boundary_class < 0)
        rt_mem_free(b->data, b->length);
    free(b);
}

/* The object of type `type` whose member `link` is l. */
#define RT_OWNER(l, type) ((type *)(void *)((char *)(l) - offsetof(type, link)))

/* Frees executor `e` with its tensors, buffers and boundary pool (exclusive lock held):
 * O(what it owns). */
static void rt_executor_release(rt_executor *e) {
    while (e->tensors.next != &e->tensors)
        rt_tensor_release(RT_OWNER(e->tensors.next, rt_tensor));
    while (e->buffers.next != &e->buffers)
        rt_buffer_release(RT_OWNER(e->buffers.next, rt_buffer));
    rt_mem_free(e->boundary_pool, RT_POOL_FLOATS);
    rt_unregister(e->handle);
    free(e);
}

/* rt_for_each callback: releases every executor. */
static void rt_release_executor(void *obj, void *ctx) {
    (void)ctx;
    rt_executor_release(obj);
}

/* rt_for_each callback: releases an expression. */
static void rt_release_expr(void *obj, void *ctx) {
    (void)ctx;
    rt_expr_release(obj);
}

/* rt_for_each callback: adds an executor's pins to *(uint64_t *)ctx. */
static void rt_count_pins(void *obj, void *ctx) {
    *(uint64_t *)ctx += ((rt_executor *)obj)->pins;
}

/* BUSY (recorded) when executor e has pinned buffers. */
static hg_status rt_executor_pinned(const rt_executor *e) {
    if (!e->pins)
        return HG_OK;
    return rt_error(HG_ERR_BUSY, "executor 0x%016llx has %llu pin%s on its buffers' memory "
                    "(arrays over it, hg_buffer_pin): nothing freed",
                    (unsigned long long)e->handle, (unsigned long long)e->pins,
                    e->pins == 1 ? "" : "s");
}

/* Frees every expression, tensor, buffer and executor, then the memory cache; BUSY while
 * any buffer is pinned. */
hg_status hg_clear_all_registries(void) {
    rt_enter(1);
    uint64_t pins = 0;
    rt_for_each(RT_KIND_EXECUTOR, rt_count_pins, &pins);
    hg_status st = HG_OK;
    if (pins) {
        st = rt_error(HG_ERR_BUSY, "clear_all_registries: %llu pin%s on buffers' memory "
                      "(arrays over it, hg_buffer_pin): nothing freed",
                      (unsigned long long)pins, pins == 1 ? "" : "s");
    } else {
        rt_for_each(RT_KIND_EXPR, rt_release_expr, NULL);
        rt_for_each(RT_KIND_EXECUTOR, rt_release_executor, NULL);
    }
    rt_leave();
    if (st == HG_OK)
        rt_mem_trim();
    return st;
}

/* ---- executors ------------------------------------------------------------------------- */

/* Creates and registers an empty executor (its boundary pool comes on first use). */
hg_status hg_new_executor(uint64_t *out_executor) {
    rt_enter(1);
    hg_status st = HG_OK;
    rt_executor *e = NULL;
    if (!out_executor) {
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "new_executor: out_executor is NULL");
    } else if (!(e = calloc(1, sizeof *e))) {
        st = rt_error(HG_ERR_NO_MEMORY, "new_executor: cannot allocate %zu bytes", sizeof *e);
    } else if (!(e->handle = rt_register(RT_KIND_EXECUTOR, e))) {
        free(e);
        st = HG_ERR_NO_MEMORY;
    } else {
        rt_list_init(&e->buffers);
        rt_list_init(&e->tensors);
        *out_executor = e->handle;
    }
    rt_leave();
    return st;
}

/* Frees the executor and everything made from it; BUSY while a buffer of it is pinned. */
hg_status hg_executor_cleanup(uint64_t executor) {
    rt_enter(1);
    rt_executor *e;
    hg_status st = rt_get_executor(executor, &e);
    if (st == HG_OK)
        st = rt_executor_pinned(e);
    if (st == HG_OK)
        rt_executor_release(e);
    rt_leave();
    return st;
}

/* ---- buffers --------------------------------------------------------------------------- */

/* Allocates and registers a zero-filled linear buffer of `exec` (exclusive lock held). */
hg_status rt_buffer_create(rt_executor *exec, uint64_t length, rt_buffer **out) {
    if (length > HG_MAX_BUFFER_LENGTH)
        return rt_error(HG_ERR_NO_MEMORY, "length %llu exceeds the maximum %u floats",
                        (unsigned long long)length, HG_MAX_BUFFER_LENGTH);
    rt_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return rt_error(HG_ERR_NO_MEMORY, "cannot allocate %zu bytes for a buffer", sizeof *b);
    b->data = rt_mem_alloc(length);
    if (!b->data) {
        free(b);
        return rt_error(HG_ERR_NO_MEMORY, "cannot allocate %llu bytes for %llu floats",
                        (unsigned long long)length * sizeof(float), (unsigned long long)length);
    }
    b->exec = exec;
    b->length = length;
    b->boundary_class = -1;
    b->handle = rt_register(RT_KIND_BUFFER, b);
    if (!b->handle) {
        rt_mem_free(b->data, length);
        free(b);
        return HG_ERR_NO_MEMORY;
    }
    rt_list_push(&exec->buffers, &b->link);
    *out = b;
    return HG_OK;
}

/* A zero-filled linear buffer of `length` floats owned by `executor`. */
hg_status hg_executor_allocate_buffer(uint64_t executor, uint64_t length, uint64_t *out_buffer) {
    rt_enter(1);
    rt_executor *e;
    rt_buffer *b;
    hg_status st = out_buffer ? rt_get_executor(executor, &e)
                              : rt_error(HG_ERR_INVALID_ARGUMENT,
                                         "allocate_buffer: out_buffer is NULL");
    if (st == HG_OK)
        st = rt_buffer_create(e, length, &b);
    if (st == HG_OK)
        *out_buffer = b->handle;
    rt_leave();
    return st;
}

/* Checks a boundary geometry against the Atlas model; INVALID_ARGUMENT naming the value. */
static hg_status rt_boundary_check(uint64_t cls, uint64_t width, uint64_t height) {
    if (cls >= HG_BOUNDARY_CLASSES)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "boundary class %llu is not in 0..%u",
                        (unsigned long long)cls, HG_BOUNDARY_CLASSES - 1);
    if (width < 1 || width > HG_BOUNDARY_PAGES)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "boundary width %llu is not in 1..%u pages",
                        (unsigned long long)width, HG_BOUNDARY_PAGES);
    if (height < 1 || height > HG_BOUNDARY_PAGE_BYTES)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "boundary height %llu is not in 1..%u bytes",
                        (unsigned long long)height, HG_BOUNDARY_PAGE_BYTES);
    if (width * height % sizeof(float))
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "boundary width*height = %llu bytes is not a multiple of 4 (float32)",
                        (unsigned long long)(width * height));
    return HG_OK;
}

/* A window of width*height bytes at the start of class `class_index` of the executor's
 * boundary pool, zero-filled (which also clears the start of that class for every other
 * buffer of the class: they share memory). */
hg_status hg_executor_allocate_boundary_buffer(uint64_t executor, uint64_t class_index,
                                               uint64_t width, uint64_t height,
                                               uint64_t *out_buffer) {
    rt_enter(1);
    rt_executor *e;
    rt_buffer *b = NULL;
    hg_status st = out_buffer ? rt_get_executor(executor, &e)
                              : rt_error(HG_ERR_INVALID_ARGUMENT,
                                         "allocate_boundary_buffer: out_buffer is NULL");
    if (st == HG_OK)
        st = rt_boundary_check(class_index, width, height);
    if (st == HG_OK && !e->boundary_pool && !(e->boundary_pool = rt_mem_alloc(RT_POOL_FLOATS)))
        st = rt_error(HG_ERR_NO_MEMORY, "cannot allocate the %llu-byte boundary pool",
                      (unsigned long long)RT_POOL_FLOATS * sizeof(float));
    if (st == HG_OK && !(b = calloc(1, sizeof *b)))
        st = rt_error(HG_ERR_NO_MEMORY, "cannot allocate %zu bytes for a buffer", sizeof *b);
    if (st == HG_OK) {
        b->exec = e;
        b->length = width * height / sizeof(float);
        b->boundary_class = (int)class_index;
        b->data = e->boundary_pool + class_index * (HG_BOUNDARY_CLASS_BYTES / sizeof(float));
        b->handle = rt_register(RT_KIND_BUFFER, b);
        if (!b->handle) {
            free(b);
            st = HG_ERR_NO_MEMORY;
        } else {
            rt_list_push(&e->buffers, &b->link);
            memset(b->data, 0, b->length * sizeof(float));
            *out_buffer = b->handle;
        }
    }
    rt_leave();
    return st;
}

/* Frees a buffer nobody views; BUSY while tensors view it or it is pinned. */
hg_status hg_buffer_cleanup(uint64_t buffer) {
    rt_enter(1);
    rt_buffer *b;
    hg_status st = rt_get_buffer(buffer, &b);
    if (st == HG_OK && b->views > 0)
        st = rt_error(HG_ERR_BUSY, "buffer 0x%016llx is viewed by %u tensor%s",
                      (unsigned long long)buffer, (unsigned)b->views, b->views == 1 ? "" : "s");
    if (st == HG_OK && b->pins > 0)
        st = rt_error(HG_ERR_BUSY, "buffer 0x%016llx has %llu pin%s on its memory (arrays "
                      "over it, hg_buffer_pin)", (unsigned long long)buffer,
                      (unsigned long long)b->pins, b->pins == 1 ? "" : "s");
    if (st == HG_OK)
        rt_buffer_release(b);
    rt_leave();
    return st;
}

/* ---- buffer properties: one definition per property ---------------------------------- */

/* Defines hg_buffer_<prop>(buffer, TYPE *out): validates the handle, *out = EXPR(b). */
#define RT_BUFFER_PROPERTY(prop, type, expr)                                               \
    hg_status hg_buffer_##prop(uint64_t buffer, type *out) {                               \
        rt_enter(0);                                                                       \
        rt_buffer *b;                                                                      \
        hg_status st = out ? rt_get_buffer(buffer, &b)                                     \
                           : rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_" #prop             \
                                                               ": out pointer is NULL");   \
        if (st == HG_OK)                                                                   \
            *out = (expr);                                                                 \
        rt_leave();                                                                        \
        return st;                                                                         \
    }

RT_BUFFER_PROPERTY(length, uint32_t, (uint32_t)b->length)
RT_BUFFER_PROPERTY(is_empty, uint8_t, b->length == 0)
RT_BUFFER_PROPERTY(is_linear, uint8_t, b->boundary_class < 0)
RT_BUFFER_PROPERTY(is_boundary, uint8_t, b->boundary_class >= 0)
RT_BUFFER_PROPERTY(pool, const char *, b->boundary_class < 0 ? "Linear" : "Boundary")
RT_BUFFER_PROPERTY(element_size, uint32_t, (uint32_t)sizeof(float))
RT_BUFFER_PROPERTY(size_bytes, uint32_t, (uint32_t)(b->length * sizeof(float)))
RT_BUFFER_PROPERTY(class_index, uint8_t, (uint8_t)(b->boundary_class < 0 ? 0 : b->boundary_class))

#undef RT_BUFFER_PROPERTY

/* ---- transfer -------------------------------------------------------------------------- */

/* Looks up `buffer` of `executor` and checks that n floats fit (shared lock held). */
static hg_status rt_transfer_target(uint64_t executor, uint64_t buffer, uint64_t n,
                                    rt_buffer **out) {
    rt_executor *e;
    hg_status st = rt_get_executor(executor, &e);
    if (st == HG_OK)
        st = rt_get_buffer_of(e, buffer, out);
    if (st == HG_OK && n > (*out)->length)
        st = rt_error(HG_ERR_OUT_OF_BOUNDS, "n = %llu exceeds buffer 0x%016llx length %llu",
                      (unsigned long long)n, (unsigned long long)buffer,
                      (unsigned long long)(*out)->length);
    return st;
}

/* Copies n floats from `src` (borrowed) into the buffer's first elements. */
hg_status hg_buffer_write(uint64_t executor, uint64_t buffer, const float *src, uint64_t n) {
    rt_enter(0);
    rt_buffer *b;
    hg_status st = rt_transfer_target(executor, buffer, n, &b);
    if (st == HG_OK && n > 0 && !src)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_write: src is NULL with n = %llu",
                      (unsigned long long)n);
    if (st == HG_OK && n > 0)
        memcpy(b->data, src, n * sizeof(float));
    rt_leave();
    return st;
}

/* Copies the buffer's first n floats into `dst`. */
hg_status hg_buffer_read(uint64_t executor, uint64_t buffer, float *dst, uint64_t n) {
    rt_enter(0);
    rt_buffer *b;
    hg_status st = rt_transfer_target(executor, buffer, n, &b);
    if (st == HG_OK && n > 0 && !dst)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_read: dst is NULL with n = %llu",
                      (unsigned long long)n);
    if (st == HG_OK && n > 0)
        memcpy(dst, b->data, n * sizeof(float));
    rt_leave();
    return st;
}

/* Pins the buffer and gives its memory (exclusive lock: pins change only under it). */
hg_status hg_buffer_pin(uint64_t executor, uint64_t buffer, float **out_data,
                        uint64_t *out_length) {
    rt_enter(1);
    rt_buffer *b;
    hg_status st = out_data && out_length
                       ? rt_transfer_target(executor, buffer, 0, &b)
                       : rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_pin: an out pointer is NULL");
    if (st == HG_OK) {
        b->pins++;
        b->exec->pins++;
        *out_data = b->data; /* never NULL: rt_mem_alloc(0) gives a block too */
        *out_length = b->length;
    }
    rt_leave();
    return st;
}

/* Drops one pin. */
hg_status hg_buffer_unpin(uint64_t executor, uint64_t buffer) {
    rt_enter(1);
    rt_buffer *b;
    hg_status st = rt_transfer_target(executor, buffer, 0, &b);
    if (st == HG_OK && b->pins == 0)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_unpin: buffer 0x%016llx is not pinned",
                      (unsigned long long)buffer);
    if (st == HG_OK) {
        b->pins--;
        b->exec->pins--;
    }
    rt_leave();
    return st;
}

/* Parses `json` completely, then copies it into the buffer's first elements; on any error
 * the buffer is untouched. */
hg_status hg_buffer_copy_from_slice(uint64_t executor, uint64_t buffer, const char *json) {
    rt_enter(0);
    rt_buffer *b;
    float *values = NULL;
    uint64_t count = 0;
    hg_status st = rt_transfer_target(executor, buffer, 0, &b);
    if (st == HG_OK && !json)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "buffer_copy_from_slice: json is NULL");
    if (st == HG_OK)
        st = rt_json_parse_floats(json, &values, &count);
    if (st == HG_OK && count > b->length)
        st = rt_error(HG_ERR_OUT_OF_BOUNDS, "JSON array has %llu elements, buffer 0x%016llx "
                      "holds %llu", (unsigned long long)count, (unsigned long long)buffer,
                      (unsigned long long)b->length);
    if (st == HG_OK && count > 0)
        memcpy(b->data, values, count * sizeof(float));
    free(values);
    rt_leave();
    return st;
}

/* *out_json = all buffer_length elements as a JSON array (caller frees). */
hg_status hg_buffer_to_vec(uint64_t executor, uint64_t buffer, char **out_json) {
    rt_enter(0);
    rt_buffer *b;
    char *text = NULL;
    hg_status st = out_json ? rt_transfer_target(executor, buffer, 0, &b)
                            : rt_error(HG_ERR_INVALID_ARGUMENT,
                                       "buffer_to_vec: out_json is NULL");
    if (st == HG_OK)
        st = rt_json_format_floats(b->data, b->length, &text);
    if (st == HG_OK)
        *out_json = text;
    rt_leave();
    return st;
}
