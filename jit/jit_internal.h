/*
 * jit/jit_internal.h — the JIT layer's internal interface (prefix jit_).  LLVM types stay
 * inside jit/: only jit/jit.h is seen by the runtime.
 *
 *   cache.c       jit_run: key → LRU table → hit: call; miss: disk.c or lower + session
 *   lower.c       canonical form + key → LLVM module (one emitter per stage domain), the
 *                 RANGE loops and sinks the GRID emitter reuses
 *   lower_grid.c  the GRID domain: row nests, lanes along elements or across rows
 *   lower_contract.c  the CONTRACT domain: direct tiles, matvec, packed cache-blocked gemm
 *   lower_math.c  exp / log / tanh as IR, the operation sequences of canon/scalar.h
 *   session.c     one LLJIT + host TargetMachine; verify, optimize, emit object, load, unload
 *   disk.c        on-disk object cache (HOLOGRAM_CACHE_DIR): trust checks, bound
 *   disk_format.c the object file format; sha256.c its hash (no LLVM in either)
 *
 * Test switches:
 *   HOLOGRAM_JIT_FAIL=1 (read at every miss) skips the disk cache and makes the lowering
 *   leave a block without terminator, so LLVMVerifyModule rejects the module and jit_run
 *   returns HG_ERR_COMPILE: the real error path, forced.
 *   HOLOGRAM_JIT_HASH_BITS=N (1..63, read once; anything else fails ops) keeps only the
 *   low N bits of the form hash in cache keys, so that different forms share key hashes
 *   and disk files: what the full comparison of identities (cache.c, disk.c) must survive.
 */
#ifndef HG_JIT_INTERNAL_H
#define HG_JIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>

#include "jit.h"

/* Exact (constant trip count) RANGE kernels up to this length; one shared kernel above. */
#define JIT_EXACT_MAX_N 256u
/* Exact CONTRACT kernels when m*n*k is at most this. */
#define JIT_EXACT_MAX_CONTRACT 262144u
/* GRID kernels: the innermost extent is a constant up to this (a short row unrolled). */
#define JIT_EXACT_MAX_INNER 64u
/* Sums: float partials over blocks of this many elements, block sums added in double. */
#define JIT_SUM_BLOCK 1024u

/* What a kernel was specialized for. */
typedef enum {
    JIT_SPEC_RANGE_EXACT = 1, /* v[0] = n */
    JIT_SPEC_RANGE_ANY,       /* n read at run time; v[1]: 1 for non-temporal stores */
    JIT_SPEC_CONTRACT_EXACT,  /* v[0..6] = m, n, k, a_rs, a_cs, b_rs, b_cs */
    JIT_SPEC_CONTRACT_ANY,
    /* 5, 6: retired (STRIDED copies) */
    JIT_SPEC_GRID = 7         /* v[0] = ndim | outer << 8, v[1] = 1 + the innermost extent
                                 when at most JIT_EXACT_MAX_INNER (else 0), v[2..] = stride
                                 classes (jit_grid_class), 2 bits per dimension, 16 bits per
                                 slot, 4 slots per word; the result's after the slots' */
} jit_spec_kind;

/* The class of a GRID stride, from which the kernel's code follows: a broadcast (hoisted,
 * one splat), a contiguous run (vector loads and stores), anything else (gathers and
 * scatters; the stride itself is read at run time). */
typedef enum { JIT_STRIDE_ZERO = 0, JIT_STRIDE_UNIT = 1, JIT_STRIDE_OTHER = 2 } jit_stride_class;
/* The class-word index of the grid's result strides (after the CANON_MAX_SLOTS slots'). */
#define JIT_GRID_RESULT CANON_MAX_SLOTS
#define JIT_GRID_CLASS_WORDS ((CANON_MAX_SLOTS + 1 + 3) / 4)

/* Cache key: all 64-bit fields, no padding, so it is hashed and compared as bytes.  It
 * holds only the form's hash; an entry also keeps the form's identity, which decides. */
typedef struct {
    uint64_t form;   /* canon_program.hash (HOLOGRAM_JIT_HASH_BITS may mask it) */
    int64_t bclass;  /* boundary class of the output, or -1 */
    uint64_t spec;   /* jit_spec_kind */
    uint64_t v[1 + 2 * CANON_MAX_DIMS];
} jit_key;
_Static_assert(2 + JIT_GRID_CLASS_WORDS <= 1 + 2 * CANON_MAX_DIMS, "GRID classes fit a key");

/* The class of slot k (JIT_GRID_RESULT: the result) along dimension d of a GRID key. */
static inline jit_stride_class jit_grid_class(const jit_key *key, uint32_t k, uint32_t d) {
    return (jit_stride_class)(key->v[2 + k / 4] >> (16 * (k % 4) + 2 * d) & 3);
}

typedef void (*jit_kernel_fn)(const canon_args *args, float *result);

/* ---- errors (session.c) --------------------------------------------------------------- */
/* Writes a printf-style message to err[0..cap) and returns `status`. */
hg_status jit_fail(hg_status status, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The one place an LLVMErrorRef becomes a status: consumes `e`, writes "what: message"
 * (plus any background error of the session) to err, returns HG_ERR_COMPILE. */
hg_status jit_error(LLVMErrorRef e, const char *what, char *err, size_t cap);

/* ---- session (session.c) -------------------------------------------------------------- */
/* Creates the process's LLJIT and TargetMachine on first use (thread-safe). */
hg_status jit_session_get(char *err, size_t cap);
/* "cpu\nfeatures\nllvm-version\nlibrary-version\ncode-hash": the target part of
 * persistent keys (code-hash: JIT_CODE_HASH, see jit/CMakeLists.txt). */
const char *jit_session_target(void);
/* 1 when the host CPU has AVX-512F. */
int jit_session_avx512(void);
/* Sets triple and data layout of a module about to be lowered. */
void jit_session_prepare(LLVMModuleRef m);
/* Verifies, optimizes (JIT_PIPELINE, host TM) and emits module `m` (borrowed) as an object;
 * *out_obj is owned by the caller. */
hg_status jit_session_compile(LLVMModuleRef m, LLVMMemoryBufferRef *out_obj, char *err,
                              size_t cap);
/* 1 when HOLOGRAM_DUMP asks for "ir" or "opt-ir". */
int jit_session_dumping(void);
/* HOLOGRAM_DUMP for a kernel loaded from the disk cache: module m (borrowed), lowered again
 * by the code that lowered the object (JIT_CODE_HASH is part of the object's key), is
 * verified, optimized and printed as jit_session_compile prints, and nothing is emitted.
 * m NULL (or a failure there): prints a heading saying the IR could not be regenerated and
 * why (err when m is NULL). */
void jit_session_dump_loaded(LLVMModuleRef m, const char *err);
/* Loads object `obj` (taken, also on error) under a new resource tracker and looks up
 * `name`.  *out_tracker identifies the code for jit_session_unload. */
hg_status jit_session_load(LLVMMemoryBufferRef obj, const char *name, jit_kernel_fn *out_fn,
                           void **out_tracker, char *err, size_t cap);
/* Unloads the code of a tracker from jit_session_load. */
void jit_session_unload(void *tracker);

/* ---- lowering (lower.c, lower_math.c) ----------------------------------------------------- */
/* IR-building state shared by the emitters. */
typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, f64, i1, i32, i64, ptr;
    int avx512; /* the host has AVX-512F (x86 vector intrinsics may be used) */
} jit_ir;

/* The kernel of program `p` specialized for `key`, as function `name` in a new module of
 * context `ctx` (*out_mod owned by the caller).  `broken` leaves a block unterminated
 * (HOLOGRAM_JIT_FAIL).  Errors: HG_ERR_COMPILE for a form it cannot lower,
 * HG_ERR_NO_MEMORY. */
hg_status jit_lower(const canon_program *p, const jit_key *key, const char *name, int broken,
                    LLVMContextRef ctx, LLVMModuleRef *out_mod, char *err, size_t cap);

/* Lowering state of one kernel (lower.c); the domain emitters share it. */
typedef struct {
    jit_ir ir;
    LLVMTypeRef i8;
    const canon_program *p;
    const jit_key *key;
    LLVMValueRef fn, args, result;
    LLVMBuilderRef alloca_b;            /* positioned in the entry block */
    LLVMValueRef slot[CANON_MAX_SLOTS]; /* float pointers */
    /* How a loop's lanes reach slot k: from base[k] (float pointer), with stride
     * JIT_STRIDE_UNIT, _ZERO (every lane the element at base) or _OTHER (lane i at
     * base + i * step[k], i64).  RANGE: the slots, unit. */
    LLVMValueRef base[CANON_MAX_SLOTS], step[CANON_MAX_SLOTS];
    uint8_t cls[CANON_MAX_SLOTS];
    /* A broadcast operand's element (cls JIT_STRIDE_ZERO), loaded once before a loop over
     * the lanes (GRID rows), or NULL: then each access loads it. */
    LLVMValueRef hoist[CANON_MAX_SLOTS];
    LLVMValueRef param[CANON_MAX_PARAMS];
    LLVMValueRef acc[CANON_MAX_STAGES]; /* float scalar of each reducing / SCALAR stage */
    LLVMValueRef n, len_f;              /* lanes' extent (RANGE length, a GRID row's innermost
                                           extent; i64) and LEN (elements per row) as float */
    LLVMValueRef *memo;                 /* per expression evaluation, one per node */
    uint8_t *mark;                      /* per evaluation: node reachable from its root */
    int nt;                             /* unmasked unit-stride stores now are non-temporal
                                           (a RANGE_ANY key's v[1], in its main loops) */
    hg_status st;
    char *err;
    size_t cap;
} jit_lower_ctx;

/* A point of a stage's domain: the lanes' index (RANGE, GRID: into base/step of the
 * context) and lane count, or the values of LOAD leaves supplied by the domain's emitter
 * (CONTRACT). */
typedef struct {
    LLVMValueRef index;
    unsigned w;
    LLVMValueRef mask; /* RANGE tail: <w x i1> lanes that exist, or NULL for all */
    LLVMValueRef loaded[CANON_MAX_SLOTS];
} jit_point;

/* The value of expression `root` at point pt (memoized per call), or NULL (c->st set). */
LLVMValueRef jit_lower_eval(jit_lower_ctx *c, const jit_point *pt, uint32_t root);
/* Emits CONTRACT stage s of c->p (lower_contract.c); 0, or -1 with c->st set. */
int jit_lower_contract(jit_lower_ctx *c, uint32_t s);
/* Emits the whole body of a GRID program (lower_grid.c); 0, or -1 with c->st set. */
int jit_lower_grid(jit_lower_ctx *c);

/* ---- RANGE loops and sinks (lower.c), shared with the GRID emitter ---------------------- */
/* What a loop does with each vector it evaluates (besides a store sink's store): per
 * accumulator u, a float partial (SUM) or, `lanes` set, a double per lane; for MIN/MAX the
 * ordered running extreme (never NaN), whether a NaN was seen, and the OR (min) / AND
 * (max) of the elements' bits. */
#define JIT_VW 16    /* lanes of vector loops (one AVX-512 register) */
#define JIT_UNROLL 4 /* vectors per main-loop iteration of cheap expressions */
typedef struct {
    canon_reduce red;
    int lanes;              /* one result per lane (GRID rows across lanes), not one in all */
    unsigned U;             /* accumulators */
    LLVMTypeRef vt, mt, it; /* <JIT_VW x float / i1 / i32> */
    LLVMValueRef dacc;      /* SUM: double (or <JIT_VW x double> when lanes) */
    LLVMValueRef sum[JIT_UNROLL];
    LLVMValueRef ext[JIT_UNROLL], nan[JIT_UNROLL], bits[JIT_UNROLL];
} jit_sink;

/* Sets up sink k for stage st at the current position (its accumulators' start values):
 * U accumulators (JIT_UNROLL for cheap expressions, else 1) or, `lanes`, 1.  The
 * accumulators are entry-block variables or, `lanes` and mem (a pointer) given, block
 * `block` (an i64) of the accumulator arrays at mem (jit_sink_at), so that a loop keeps
 * many in memory.  0 or -1. */
int jit_sink_begin(jit_lower_ctx *c, const canon_stage *st, jit_sink *k, int lanes,
                   LLVMValueRef mem, LLVMValueRef block);
/* Points the accumulators of a `lanes` sink from jit_sink_begin at block b (an i64: lanes
 * b*JIT_VW..) of the arrays at mem, each array contiguous over JIT_SINK_LANES lanes (a
 * loop over blocks then walks each one with no two blocks a multiple of 4 KiB apart): the
 * doubles of sums, the floats of sums' partials and of extremes, the bits of min/max,
 * their NaN flags; JIT_SINK_BYTES in all.  Their values are what is there.  A sum in
 * memory adds into its float partial, which jit_sink_flush adds into the double: the
 * caller flushes at least every JIT_SUM_LANES_RUN steps (the partial's error stays within
 * the sum bound). */
#define JIT_SINK_LANES 2048u
#define JIT_SINK_BYTES (JIT_SINK_LANES * 16u + JIT_SINK_LANES / 8u)
void jit_sink_at(jit_lower_ctx *c, jit_sink *k, LLVMValueRef mem, LLVMValueRef b);
#define JIT_SUM_LANES_RUN 32u
void jit_sink_flush(jit_lower_ctx *c, jit_sink *k);
/* Stage st over lanes [0, c->n) (the context's base/step/cls) into sink k: a main loop of
 * k->U unmasked vectors, a masked loop over the rest; sums in blocks of JIT_SUM_BLOCK.
 * 0 or -1. */
int jit_sink_run(jit_lower_ctx *c, const canon_stage *st, jit_sink *k);
/* The value of stage st at lanes `index`.. of the context (mask: the lanes that exist, or
 * NULL): evaluated and stored (if the stage stores).  Returns the value, or NULL. */
LLVMValueRef jit_stage_point(jit_lower_ctx *c, const canon_stage *st, LLVMValueRef index,
                             unsigned w, LLVMValueRef mask);
/* Folds vector v (the lanes of mask only, when given) into accumulator u of k. */
void jit_sink_step(jit_lower_ctx *c, jit_sink *k, unsigned u, LLVMValueRef v, LLVMValueRef mask);
/* The sink's scalar (or, `lanes`, <JIT_VW x float> of per-lane scalars): a NaN is the
 * default NaN. */
LLVMValueRef jit_sink_end(jit_lower_ctx *c, jit_sink *k);
/* Mask of the lanes at i.. below `end`: <JIT_VW x i1>. */
LLVMValueRef jit_tail_mask(jit_lower_ctx *c, LLVMValueRef i, LLVMValueRef end);
/* Reads (value NULL) or writes `value` at the w lanes index.. of an array reached from
 * float pointer `base` with stride class `cls` (and i64 `step` for JIT_STRIDE_OTHER), the
 * lanes of mask only (NULL: all).  Returns the value read or written. */
LLVMValueRef jit_access(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef step,
                        jit_stride_class cls, LLVMValueRef index, unsigned w, LLVMValueRef mask,
                        LLVMValueRef value);

/* IR helpers of the emitters (lower.c).  Loop-carried values are entry-block variables. */
typedef struct {
    LLVMValueRef var, step;
    LLVMBasicBlockRef cond, exit;
} jit_loop;

/* Records "cannot lower what (a)" as c->st (the first error wins); returns -1. */
int jit_lower_error(jit_lower_ctx *c, const char *what, unsigned a);
/* The i64 constant v. */
LLVMValueRef jit_i64(jit_lower_ctx *c, uint64_t v);
/* The field of type ty at byte offset `off` of *args, loaded at the current position. */
LLVMValueRef jit_field(jit_lower_ctx *c, size_t off, LLVMTypeRef ty);
/* A shape value: constant v when `exact`, else the i64 field at offset `off` of *args. */
LLVMValueRef jit_shape(jit_lower_ctx *c, int exact, uint64_t v, size_t off);
/* A new entry-block variable of type ty, set to init at the current position. */
LLVMValueRef jit_var(jit_lower_ctx *c, LLVMTypeRef ty, LLVMValueRef init);
/* The value of variable `var` (of type ty) at the current position. */
LLVMValueRef jit_get(jit_lower_ctx *c, LLVMValueRef var, LLVMTypeRef ty);
/* Opens `for (i = start; i < end; i += step)` (unsigned i64); returns i inside the body. */
LLVMValueRef jit_loop_begin(jit_lower_ctx *c, jit_loop *l, LLVMValueRef start,
                            LLVMValueRef end, LLVMValueRef step);
/* Closes a loop opened by jit_loop_begin; the builder continues after it. */
void jit_loop_end(jit_lower_ctx *c, jit_loop *l);
/* Run-time scalar v broadcast to w lanes (v itself when w == 1 or v is a vector). */
LLVMValueRef jit_splat(jit_lower_ctx *c, LLVMValueRef v, unsigned w);
/* &base[index] for a float pointer base. */
LLVMValueRef jit_elem(jit_lower_ctx *c, LLVMValueRef base, LLVMValueRef index);
/* w floats at ptr (a vector when w > 1), `align` bytes aligned. */
LLVMValueRef jit_load(jit_lower_ctx *c, LLVMValueRef ptr, unsigned w, unsigned align);
/* Stores v (float or float vector) to ptr, `align` bytes aligned. */
void jit_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr, unsigned align);
/* Calls memory intrinsic `name` overloaded on (vector type vt, pointer(s) type pty). */
LLVMValueRef jit_mem_call(jit_lower_ctx *c, const char *name, LLVMTypeRef vt, LLVMTypeRef pty,
                          LLVMValueRef *args, unsigned n);
/* The w floats at ptr where `mask` (<w x i1>) is set, zeros elsewhere; memory of lanes
 * masked off is never touched.  mask NULL: a plain load of all w. */
LLVMValueRef jit_masked_load(jit_lower_ctx *c, LLVMValueRef ptr, unsigned w, LLVMValueRef mask,
                             unsigned align);
/* Stores the lanes of v where `mask` is set (NULL: all) to ptr. */
void jit_masked_store(jit_lower_ctx *c, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask,
                      unsigned align);
/* acc + v for a sum sink: reassociable, and contractable with a product feeding it. */
LLVMValueRef jit_sum_add(jit_lower_ctx *c, LLVMValueRef acc, LLVMValueRef v);

/* Element count of `v` (1 for a scalar). */
unsigned jit_width(LLVMValueRef v);
/* The float32 constant c, or a vector of w copies of it. */
LLVMValueRef jit_fconst(jit_ir *ir, float c, unsigned w);
/* The i32 constant c, or a vector of w copies of it. */
LLVMValueRef jit_iconst(jit_ir *ir, uint32_t c, unsigned w);
/* Calls overloaded intrinsic `name` (overload type `ty`) on args[0..n). */
LLVMValueRef jit_intrinsic(jit_ir *ir, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
                           unsigned n);
/* canon_exp_f32 / canon_log_f32 / canon_tanh_f32 / canon_pow_f32 on a float or float
 * vector. */
LLVMValueRef jit_emit_exp(jit_ir *ir, LLVMValueRef x);
LLVMValueRef jit_emit_log(jit_ir *ir, LLVMValueRef x);
LLVMValueRef jit_emit_tanh(jit_ir *ir, LLVMValueRef x);
LLVMValueRef jit_emit_pow(jit_ir *ir, LLVMValueRef x, LLVMValueRef y);

/* ---- on-disk object cache (disk.c; file format: disk_format.h) ------------------------- */
/* Reads the object of `key` for the form of p into a new buffer (*out_obj) and its symbol
 * name into name[0..cap).  Returns 0 on success, -1 when there is none, the disk cache is
 * not in use or refused (see disk.c), or the file is ours but not valid or holds another
 * form (such a file is deleted). */
int jit_disk_read(const jit_key *key, const canon_program *p, LLVMMemoryBufferRef *out_obj,
                  char *name, size_t name_cap);
/* Stores the object of `key` and p's form atomically (O_EXCL temporary file + rename),
 * trimming the directory when it passes its bound; failures are ignored. */
void jit_disk_write(const jit_key *key, const canon_program *p, const char *name,
                    const void *obj, size_t size);
/* Deletes the file of `key`, if it is ours (an object that failed to load). */
void jit_disk_forget(const jit_key *key);
/* Why the disk cache was refused for this process ("" when it was not) into buf[0..cap). */
void jit_disk_refusal(char *buf, size_t cap);
/* jit_env_check's part for HOLOGRAM_CACHE_DIR and HOLOGRAM_CACHE_DISK_FILES. */
hg_status jit_disk_env_check(char *err, size_t cap);

#endif /* HG_JIT_INTERNAL_H */
