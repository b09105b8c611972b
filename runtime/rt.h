/*
 * runtime/rt.h — the runtime layer's internal interface (prefix rt_).
 *
 *   hg_* API call ─→ rt_enter (clears the thread's error, takes the registry lock)
 *                 ─→ rt_get_* (validate handles: kind, generation, owner)
 *                 ─→ checks (lengths, arguments) ─→ rt_exec(canon_form(op), args)
 *                 ─→ rt_leave
 *
 * Locking: one process-wide reader/writer lock guards the registry and every object in it.
 * Calls that only read objects or compute into existing buffers hold it shared (so they run
 * in parallel); calls that create or free objects hold it exclusive.  Objects are only
 * reachable through handles, so holding the lock for the whole call makes every pointer
 * obtained from rt_get_* valid until rt_leave.
 */
#ifndef HG_RT_H
#define HG_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../canon/canon.h"
#include <hologram/hologram.h>

/* ---- errors (runtime/error.c) ----------------------------------------------------------- */
/* Records a printf-style message for the calling thread. */
void rt_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records the message and evaluates to `status` (so `return rt_error(...)` works).  A macro,
 * so the compiler sees which status each error path returns. */
#define rt_error(status, ...) (rt_error_set(__VA_ARGS__), (status))
/* Clears the calling thread's message (done by rt_enter). */
void rt_error_clear(void);

/* ---- handles and objects (runtime/registry.c) -------------------------------------------
 * A handle is  kind (bits 56..63) | generation (bits 32..55) | slot + 1 (bits 0..31);
 * 0 is never valid.  Freeing a slot bumps its generation, so old handles go stale and
 * are never reused. */
typedef enum {
    RT_KIND_EXECUTOR = 1, RT_KIND_BUFFER = 2, RT_KIND_TENSOR = 3, RT_KIND_EXPR = 4
} rt_kind;

/* A link of a circular list with a sentinel head: an executor's buffers and its tensors,
 * so that freeing an executor costs O(what it owns), not O(every handle ever made). */
typedef struct rt_link {
    struct rt_link *prev, *next;
} rt_link;

/* Makes `head` an empty list. */
static inline void rt_list_init(rt_link *head) { head->prev = head->next = head; }
/* Adds l at the front of the list of `head`. */
static inline void rt_list_push(rt_link *head, rt_link *l) {
    l->prev = head;
    l->next = head->next;
    head->next->prev = l;
    head->next = l;
}
/* Removes l from its list. */
static inline void rt_list_remove(rt_link *l) {
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

typedef struct rt_executor {
    uint64_t handle;
    float *boundary_pool;    /* HG_BOUNDARY_CLASSES * HG_BOUNDARY_CLASS_BYTES, made on first use */
    rt_link buffers;         /* its live buffers (rt_buffer.link) */
    rt_link tensors;         /* the live tensors over its buffers (rt_tensor.link) */
    uint64_t pins;           /* the sum of its buffers' pins */
} rt_executor;

typedef struct rt_buffer {
    uint64_t handle;
    rt_link link;            /* in exec->buffers */
    rt_executor *exec;       /* owner */
    float *data;             /* 64-byte aligned; boundary buffers point into the pool */
    uint64_t length;         /* elements */
    int boundary_class;      /* -1 for linear buffers, else 0..95 */
    uint32_t views;          /* live tensors viewing this buffer */
    uint64_t pins;           /* hg_buffer_pin calls not yet unpinned */
} rt_buffer;

typedef struct rt_tensor {
    uint64_t handle;
    rt_link link;            /* in buf->exec->tensors */
    rt_buffer *buf;          /* viewed buffer (its `views` counts this tensor) */
    uint32_t ndim;           /* 0..HG_MAX_DIMS */
    uint64_t shape[HG_MAX_DIMS];
    uint64_t stride[HG_MAX_DIMS]; /* elements */
    uint64_t offset;         /* elements */
} rt_tensor;

typedef struct rt_expr {
    uint64_t handle;
    canon_expr *e;           /* owned; immutable once registered */
    char *source;            /* the text it was compiled from (NULL for a JSON program) */
    uint64_t reread;         /* bit i: a stage after one that stored the output loads array
                                i, so the output may not alias it */
} rt_expr;

/* Takes the registry lock (shared or exclusive) after clearing the thread's error. */
void rt_enter(int exclusive);
void rt_leave(void);
/* fork() (runtime/parallel.c's pthread_atfork handlers): PREPARE takes the registry lock
 * exclusive and the cJSON lock, waiting for every hologram call in flight; PARENT and
 * CHILD release them (the child's records of the parent's other threads are left unused). */
typedef enum { RT_FORK_PREPARE, RT_FORK_PARENT, RT_FORK_CHILD } rt_fork_phase;
void rt_lock_fork(rt_fork_phase phase);
/* The cJSON lock's part of rt_lock_fork (runtime/expr_json.c). */
void rt_cjson_fork(rt_fork_phase phase);

/* Lookups (lock held).  Each returns HG_OK with *out set, or HG_ERR_INVALID_HANDLE with a
 * message naming the handle in hex and what is wrong (zero, unknown, freed, wrong kind:
 * "handle 0x... is a tensor, not a buffer").  rt_get_buffer_of also requires the buffer to
 * belong to `exec` (HG_ERR_INVALID_HANDLE naming both otherwise). */
hg_status rt_get_executor(uint64_t handle, rt_executor **out);
hg_status rt_get_buffer(uint64_t handle, rt_buffer **out);
hg_status rt_get_buffer_of(const rt_executor *exec, uint64_t handle, rt_buffer **out);
hg_status rt_get_tensor(uint64_t handle, rt_tensor **out);
hg_status rt_get_expr(uint64_t handle, rt_expr **out);

/* Registers `obj` (exclusive lock held) and returns its new handle, or 0 with
 * HG_ERR_NO_MEMORY recorded when the table cannot grow. */
uint64_t rt_register(rt_kind kind, void *obj);
/* Removes a live handle from the table (exclusive lock held); the object is not freed. */
void rt_unregister(uint64_t handle);
/* Calls fn(obj, ctx) for every live object of `kind` (exclusive lock held); fn may
 * unregister and free the object it is given. */
void rt_for_each(rt_kind kind, void (*fn)(void *obj, void *ctx), void *ctx);

/* ---- memory (runtime/memory.c) ----------------------------------------------------------
 * 64-byte aligned, zero-filled float storage.  Freed blocks are kept in a bounded cache and
 * reused (re-zeroed) so that repeated allocate/free does not page-fault fresh memory. */
/* Returns NULL when the memory cannot be had. */
float *rt_mem_alloc(uint64_t n_floats);
void rt_mem_free(float *p, uint64_t n_floats); /* NULL is harmless */
/* Releases every cached block (hg_clear_all_registries and tests). */
void rt_mem_trim(void);

/* ---- object lifetimes (runtime/executor.c, runtime/tensor.c) -----------------------------
 * Frees a buffer / tensor object and unregisters it (exclusive lock held).  A tensor
 * release decrements its buffer's `views`. */
void rt_buffer_release(rt_buffer *b);
void rt_tensor_release(rt_tensor *t);
/* Allocates and registers a zero-filled linear buffer of `exec` (exclusive lock held). */
hg_status rt_buffer_create(rt_executor *exec, uint64_t length, rt_buffer **out);
/* Creates and registers a tensor over `buf` (exclusive lock held); buf->views += 1. */
hg_status rt_tensor_create(rt_buffer *buf, uint32_t ndim, const uint64_t *shape,
                           const uint64_t *stride, uint64_t offset, rt_tensor **out);
/* Unregisters and frees an expression (exclusive lock held; runtime/expr.c). */
void rt_expr_release(rt_expr *x);

/* ---- execution (runtime/exec.c) ----------------------------------------------------------
 * Runs a normal form on the chosen backend: the JIT (default; HOLOGRAM_BACKEND or
 * hg_set_backend) or the interpreter.  A JIT failure falls back to the interpreter and is
 * counted.  HOLOGRAM_DUMP=canon prints each op's form, before and after rewriting, once. */
hg_status rt_exec(const canon_program *p, const canon_args *args, int boundary_class,
                  float *result);
/* An N-d strided operand: the element at index 0 and, per dimension, extent and stride
 * (in elements, any sign; 0 broadcasts). */
typedef struct {
    float *data;
    uint32_t ndim;
    uint64_t shape[CANON_MAX_DIMS];
    int64_t stride[CANON_MAX_DIMS];
} rt_view;

/* The broadcast of n views' shapes by NumPy's rules (aligned at the right, an extent 1 or
 * a missing dimension stretches) into shape[0..*ndim).  Errors: SHAPE naming both shapes
 * and the dimension. */
hg_status rt_broadcast(const rt_view *v, uint32_t n, uint64_t *shape, uint32_t *ndim,
                       const char *what);
/* Runs GRID program p (canon_grid_twin of a RANGE form: slots 0..n_in-1 its inputs, slot
 * n_in its output when it stores) on views (runtime/grid.c): the inputs broadcast with a
 * storing program's output by NumPy's rules to the index space S; `axes` (a bit per
 * dimension of S) are a row's elements, the other dimensions index the rows (a map: no
 * axes).  `out` is the stored array (shape S) or, for a program with a result, the array
 * of per-row results (S without the axes, or with extent 1 on them: keepdims).  Checks
 * counts, shapes, that out names distinct elements and does not partly overlap an input
 * (in place is allowed for a stored output), that a result's min/max has elements in
 * every row,
 * then runs rt_exec.  `what` names the call
 * in messages.  Errors: SHAPE, INVALID_ARGUMENT, and rt_exec's. */
hg_status rt_grid_exec(const canon_program *p, const rt_view *in, uint32_t n_in,
                       const float *params, uint32_t n_params, uint32_t axes,
                       const rt_view *out, int bclass, const char *what);

/* ---- N-d compute (runtime/compute.c) ---------------------------------------------------
 * What an N-d call runs: a GRID program with its counts, whether it yields a scalar per
 * row, the axes it reduces (or normalizes, softmax) when the call names none, an
 * expression's own axis=k, and `what` for messages. */
typedef enum { RT_AXES_NONE, RT_AXES_ALL, RT_AXES_LAST } rt_axes_default;
typedef struct {
    const canon_program *p;
    uint32_t n_in, n_params;
    int bounds; /* params are (lo, hi): numbers, lo <= hi */
    int result;
    uint32_t min_row; /* elements each row needs (an op's min_n, for results) */
    rt_axes_default dflt;
    int has_axis;
    int32_t axis;
    uint64_t reread; /* rt_expr.reread */
    char what[96];
} rt_task;

/* The task of an expression (its GRID twin: every expression has one), of op `name` of
 * ops.def (no contraction, at least one array), of reduction kind "sum" | "mean" | "min" |
 * "max".  Errors: INVALID_ARGUMENT naming what is unknown or unsupported; NO_MEMORY. */
void rt_task_expr(const rt_expr *x, rt_task *t);
/* The row of ops.def named `name`, or NULL. */
const canon_op_info *rt_op_named(const char *name);
hg_status rt_task_op(const char *name, rt_task *t);
hg_status rt_task_reduce(const char *kind, rt_task *t);
/* INVALID_ARGUMENT unless the call passes t's counts of arrays and scalars, with non-NULL
 * lists where they are not empty, and bounds lo <= hi where t's scalars are bounds. */
hg_status rt_task_counts(const rt_task *t, uint64_t n_in, const void *inputs, uint64_t n_params,
                         const float *params);
/* The axes mask of t at rank ndim (the broadcast inputs'): axes_json (rt_json_axes), else
 * the expression's axis, else t's default.  Errors: a map given axes, an expression's axis
 * and axes_json both, an axis out of range; rt_json_axes's. */
hg_status rt_task_axes(const rt_task *t, const char *axes_json, uint32_t ndim, uint32_t *mask);
/* The shape of t's output for inputs in[0..t->n_in): their broadcast, without the axes
 * for a result (extent 1 there with keepdims).  Errors: SHAPE (no broadcast). */
hg_status rt_task_shape(const rt_task *t, const rt_view *in, uint32_t axes, int keepdims,
                        uint64_t *shape, uint32_t *ndim);
/* Runs t on views (rt_grid_exec), refusing an output that is an input a later stage
 * rereads. */
hg_status rt_task_run(const rt_task *t, const rt_view *in, const float *params, uint32_t axes,
                      const rt_view *out);

/* Runs op `op` with slots bound to buffers already validated by the caller. */
hg_status rt_run_op(canon_op op, canon_args *args, int boundary_class, float *result);
/* HOLOGRAM_DUMP=canon: prints an expression's form before and after rewriting (stderr). */
void rt_dump_expr(const char *source, const canon_expr *e);

/* ---- threads (runtime/parallel.c) -----------------------------------------------------
 * A work-sharing pool in which the caller always works and never waits for a thread that
 * has not started (see the top of parallel.c).  Split RANGE programs give results
 * identical for every thread count; contractions are blocked over rows of C. */
#define RT_PAR_MIN_WORK (UINT64_C(1) << 17) /* n * (computed nodes, 1..4) to split */
#define RT_PAR_ALIGN 1024u               /* chunk boundaries: multiples of this many elements */
#define RT_PAR_CHUNKS 16u                /* a split op has at most this many chunks */
#define RT_PAR_CHUNK_MIN 8192u           /* elements of a RANGE chunk, at least */
#define RT_PAR_ROWS 16u                  /* rows of C per contraction chunk: a multiple */
#define RT_PAR_COLS 256u                 /* columns of a one-row C per chunk: a multiple */
#define RT_PAR_CONTRACT_MIN (UINT64_C(1) << 20) /* multiply-adds of a contraction chunk */
#define RT_PAR_MAX_THREADS 256
/* Output bytes from which maps stream their stores, at most: measured on Zen 4 and 5 VMs
 * (one thread, c = a + b), non-temporal stores tie normal ones at 8 MiB of output and are
 * 1.4-1.5x faster at 16-64 MiB (a VM's sysconf reports the whole socket's L3, 384 MiB, of
 * which a process sees a slice). */
#define RT_PAR_STREAM_BYTES (UINT64_C(16) << 20)

/* Runs program p (the op's, or one of its stages': canon_stage_form) on one piece: backend
 * in ctx, args already offset to the piece.  Called on
 * pool workers: it must not record errors (rt_error), only write its message to
 * err[0..err_cap) and return its status. */
typedef hg_status (*rt_piece_fn)(void *ctx, const canon_program *p, const canon_args *args,
                                 float *result, char *err, size_t err_cap);
/* One chunk of a job of rt_par_for; must not record errors (rt_error). */
typedef void (*rt_chunk_fn)(void *ctx, uint32_t chunk);
/* Runs fn(ctx, c) once for each c in [0, n_chunks), on the calling thread and on up to
 * threads - 1 pool workers, which claim chunks one at a time; returns when all have run.
 * With one thread, one chunk, or the pool held by another caller (one job at a time), the
 * chunks run on the calling thread in order.  Called from a chunk, it runs inline. */
void rt_par_for(uint32_t n_chunks, int threads, rt_chunk_fn fn, void *ctx);
/* The smallest n at which p is split: RT_PAR_MIN_WORK / w, w = p's non-leaf nodes (a
 * COSTLY kind of prims.def counting 4) clamped to 1..4 (measured with both cores idle: 2
 * threads win for add from ~64 Ki elements, for sum from ~128 Ki, for sigmoid from ~16-32
 * Ki). */
uint64_t rt_par_min_n(const canon_program *p);
/* Elements of each chunk of a split range of n (the last may be shorter): n / RT_PAR_CHUNKS
 * rounded up to RT_PAR_ALIGN, at least RT_PAR_CHUNK_MIN.  A function of n only. */
uint64_t rt_par_chunk(uint64_t n);
/* If p on args is worth splitting (n >= rt_par_min_n(p), slots identical or disjoint, a
 * map or a single reduction, or stages that canon_stage_form splits), runs it in chunks of
 * rt_par_chunk(n) through fn on rt_par_threads() threads (one included), sets *out_status
 * (and *result, err on failure) and returns 1; else returns 0, doing nothing. */
int rt_par_try(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
               float *result, hg_status *out_status, char *err, size_t err_cap);
/* 1 when p on args is a map whose stores should be streams (canon_args.stream): it only
 * stores, every stored slot is distinct from every other slot (not in place), and its
 * output is at least rt_par_stream_bytes().  */
int rt_par_stream(const canon_program *p, const canon_args *args);
/* Output bytes from which a map's stores are streamed: RT_PAR_STREAM_BYTES, or the
 * last-level cache's size (sysconf) when that is smaller. */
uint64_t rt_par_stream_bytes(void);
/* A GRID program (args->grid) of at least rt_par_min_n(p) elements in all, whose
 * dimension 0 has extent >= 2 and is an outer (row) dimension, or any dimension of a map:
 * runs fn over blocks of dimension 0 (balanced, about RT_PAR_CHUNKS, each of
 * RT_PAR_CHUNK_MIN elements at least: a function of the shape only), each with its own grid
 * and pointers; sets *out_status (err on failure) and returns 1; else returns 0. */
int rt_par_grid(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
                hg_status *out_status, char *err, size_t err_cap);
/* A one-row contraction over a column-major B (m = 1, n > 1, a_cs = b_rs = 1,
 * commutative root) rewritten in place as the n-row, one-column contraction of the
 * swapped operands, C^T = B^T A^T: the matvec kernel's shape, reading B's columns as
 * contiguous rows (C's n elements are contiguous either way).  A row-major B stays (the
 * JIT streams it once through direct tiles); other shapes are unchanged. */
void rt_par_contract_shape(const canon_program *p, canon_args *args);
/* A CONTRACT program of at least 2 * RT_PAR_CONTRACT_MIN multiply-adds and 2 * RT_PAR_ROWS
 * rows (or one row), with more than one thread: runs fn over blocks of rows of C (about 2
 * per thread, a multiple of RT_PAR_ROWS, each of RT_PAR_CONTRACT_MIN multiply-adds at
 * least; one row: blocks of RT_PAR_COLS columns), sets *out_status (err on failure) and
 * returns 1; else returns 0, doing nothing. */
int rt_par_contract(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
                    hg_status *out_status, char *err, size_t err_cap);
/* Threads an op may use: hg_set_num_threads's value, else HOLOGRAM_THREADS, else
 * rt_par_default_threads(). */
int rt_par_threads(void);
/* The CPUs in the process's affinity mask, capped by a cgroup v2 CPU quota
 * (/sys/fs/cgroup/cpu.max, rounded up), in 1..RT_PAR_MAX_THREADS. */
int rt_par_default_threads(void);
/* HG_OK, or INVALID_ARGUMENT (message recorded) when HOLOGRAM_THREADS is set to something
 * that is not an integer in 1..RT_PAR_MAX_THREADS and hg_set_num_threads was not called:
 * every op then fails, naming the value. */
hg_status rt_par_check(void);
/* Sets the thread count (clamped to 1..RT_PAR_MAX_THREADS); 0 returns to the
 * environment's value (tests). */
void rt_par_set_threads(int threads);

/* ---- JSON (runtime/json.c) ---------------------------------------------------------------
 * Numbers follow Python's json module: NaN, Infinity and -Infinity are accepted and
 * written; floats are written as the shortest decimal that reads back as the same float32,
 * integral values with ".0" (3.0), so json.loads gives floats. */
/* Parses a JSON array of numbers into a new malloc'd array (*out_values, *out_count; NULL
 * and 0 for "[]").  HG_ERR_JSON with the byte position and what was found otherwise;
 * HG_ERR_NO_MEMORY.  Nothing is allocated on error. */
hg_status rt_json_parse_floats(const char *text, float **out_values, uint64_t *out_count);
/* Formats n floats as a JSON array into a new malloc'd string. */
hg_status rt_json_format_floats(const float *values, uint64_t n, char **out_text);
/* Parses a JSON array of at most `max` non-negative integer literals (< 2^53): shapes,
 * strides.  `what` ("shape", "strides") names the argument in messages.  HG_ERR_JSON /
 * HG_ERR_SHAPE (too many dimensions). */
hg_status rt_json_parse_dims(const char *text, const char *what, uint64_t *out_dims,
                             uint32_t *out_ndim, uint32_t max);
/* Formats n integers as a JSON array into a new malloc'd string. */
hg_status rt_json_format_dims(const uint64_t *dims, uint32_t n, char **out_text);

/* ---- structured JSON through cJSON (runtime/expr_json.c) ---------------------------------
 * Documents of expressions; each records its error (rt_error) and returns its status. */
/* Parses a JSON array of names (scalars_json) into *out_names (n malloc'd strings, the
 * array malloc'd; NULL and 0 for NULL, "" or []).  JSON: malformed text or an element
 * that is not a string; NO_MEMORY. */
hg_status rt_json_names(const char *text, char ***out_names, uint32_t *out_n);
/* Axes of an N-d call (rank ndim) into a bit mask: `text` is NULL or "" (*out_given = 0,
 * mask 0), "null" (every axis), an integer or a JSON array of integers, each in
 * [-ndim, ndim) (negative counts from the last).  JSON: malformed, not integers;
 * INVALID_ARGUMENT: out of range or named twice (the message names the axis). */
hg_status rt_json_axes(const char *text, uint32_t ndim, uint32_t *out_mask, int *out_given,
                       const char *what);
/* A program document (see hg_expr_compile) into a checked expression.  JSON: malformed
 * JSON; EXPRESSION: a document that is not a valid program; NO_MEMORY. */
hg_status rt_json_program(const char *text, canon_expr **out);
/* The document of hg_op_describe for one op, as a new malloc'd string. */
hg_status rt_json_op(const canon_op_info *info, char **out_text);
/* The documents of hg_expr_variables and hg_expr_describe, as new malloc'd strings. */
hg_status rt_json_variables(const rt_expr *x, char **out_text);
hg_status rt_json_describe(const rt_expr *x, char **out_text);
/* Writes the same text as rt_json_format_dims into buf[0..cap) like snprintf (for error
 * messages); returns the length it needed. */
size_t rt_json_dims_text(char *buf, size_t cap, const uint64_t *dims, uint32_t n);

#endif /* HG_RT_H */
