/*
 * runtime/api_ops.c — every public operation, defined from canon/ops.def.
 *
 * Each ops.def row expands through the macro named by its `sig` column (RT_SIG_BIN,
 * RT_SIG_UN, ...) into hg_<name>, which only packs its arguments into an rt_request;
 * rt_request_run does the common work:
 *
 *   rt_enter(shared) → executor → each operand buffer (owned by it, long enough)
 *     → op checks (min_n, clip bounds, output aliasing) → canon_args → rt_run_op
 *     → scalar result to *out_result and out[0] → rt_leave
 *
 * Operands are the op's array slots in canon order (inputs, then the array output), then
 * for RED/LOSS the buffer that receives the scalar.  The last operand is the output (its
 * boundary class goes to the kernel cache key).
 *
 * Aliasing: elementwise outputs may alias inputs — whole buffers either are the same
 * memory or do not overlap (boundary buffers of one class all start at their class's
 * region, so they coincide exactly); the engines handle exact aliasing.  Contractions
 * refuse any overlap between the output and an input.
 */
#include <math.h>

#include "rt.h"

typedef struct {
    uint64_t handle;
    uint64_t need;      /* elements the op touches */
    const char *role;   /* NULL: a length-n operand; else what `need` is, for messages */
} rt_operand;

typedef struct {
    canon_op op;
    uint64_t executor;
    rt_operand operand[CANON_MAX_SLOTS];
    uint32_t n_operands;
    uint32_t n_slots;   /* the first n_slots operands are bound to canon slots */
    uint64_t n;
    float param[CANON_MAX_PARAMS];
    int bounds;         /* param = (lo, hi): both numbers, lo <= hi */
    int no_alias;       /* the output may not overlap any input */
    int has_result;     /* RED/LOSS: the scalar goes to *result and out[0] */
    float *result;
    canon_contract_shape contract;
} rt_request;

/* Validates the operands of `r` (shared lock held): each must be a buffer of the executor
 * holding at least `need` elements.  Fills bufs[]. */
static hg_status rt_request_buffers(const rt_request *r, const char *name, rt_buffer **bufs) {
    rt_executor *e;
    hg_status st = rt_get_executor(r->executor, &e);
    for (uint32_t i = 0; st == HG_OK && i < r->n_operands; i++) {
        const rt_operand *o = &r->operand[i];
        st = rt_get_buffer_of(e, o->handle, &bufs[i]);
        if (st != HG_OK || o->need <= bufs[i]->length)
            continue;
        if (o->role)
            st = rt_error(HG_ERR_OUT_OF_BOUNDS,
                          "%s: buffer 0x%016llx (%s) holds %llu elements, needs %llu", name,
                          (unsigned long long)o->handle, o->role,
                          (unsigned long long)bufs[i]->length, (unsigned long long)o->need);
        else
            st = rt_error(HG_ERR_OUT_OF_BOUNDS, "n = %llu exceeds buffer 0x%016llx length %llu",
                          (unsigned long long)o->need, (unsigned long long)o->handle,
                          (unsigned long long)bufs[i]->length);
    }
    return st;
}

/* Checks the op-specific rules of `r` against its validated buffers. */
static hg_status rt_request_check(const rt_request *r, const canon_op_info *info,
                                  rt_buffer *const *bufs) {
    if (r->n < info->min_n)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s needs n >= %u, got %llu", info->name,
                        (unsigned)info->min_n, (unsigned long long)r->n);
    if (r->bounds && !(r->param[0] <= r->param[1]))
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "%s: bounds lo = %g, hi = %g must be numbers with lo <= hi", info->name,
                        (double)r->param[0], (double)r->param[1]);
    uint32_t out = r->n_operands - 1;
    for (uint32_t i = 0; r->no_alias && i < out; i++) {
        const float *o0 = bufs[out]->data, *o1 = o0 + r->operand[out].need;
        const float *i0 = bufs[i]->data, *i1 = i0 + r->operand[i].need;
        if (o0 < i1 && i0 < o1)
            return rt_error(HG_ERR_INVALID_ARGUMENT,
                            "%s: output buffer 0x%016llx overlaps input buffer 0x%016llx",
                            info->name, (unsigned long long)r->operand[out].handle,
                            (unsigned long long)r->operand[i].handle);
    }
    return HG_OK;
}

/* Runs request `r`: validation, then the op on the chosen backend (see the top). */
static hg_status rt_request_run(const rt_request *r) {
    const canon_op_info *info = canon_op_get(r->op);
    rt_buffer *bufs[CANON_MAX_SLOTS];
    rt_enter(0);
    hg_status st = HG_OK;
    if (r->has_result && !r->result)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "%s: out_result is NULL", info->name);
    if (st == HG_OK)
        st = rt_request_buffers(r, info->name, bufs);
    if (st == HG_OK)
        st = rt_request_check(r, info, bufs);
    if (st == HG_OK) {
        canon_args args = {.n = r->n, .contract = r->contract};
        for (uint32_t i = 0; i < r->n_slots; i++)
            args.slot[i] = bufs[i]->data;
        for (uint32_t i = 0; i < CANON_MAX_PARAMS; i++)
            args.param[i] = r->param[i];
        float value = 0.0f;
        st = rt_run_op(r->op, &args, bufs[r->n_operands - 1]->boundary_class, &value);
        if (st == HG_OK && r->has_result) {
            bufs[r->n_operands - 1]->data[0] = value;
            *r->result = value;
        }
    }
    rt_leave();
    return st;
}

/* Contractions: C[m x n] = A[m x k] . B[k x n] with B's strides (b_rs, b_cs); `roles`
 * names the three operands' sizes for messages.  Sizes are overflow-checked. */
static hg_status rt_contract(canon_op op, uint64_t executor, const uint64_t handle[3],
                             const char *const roles[3], uint64_t m, uint64_t n, uint64_t k,
                             int64_t b_rs, int64_t b_cs) {
    uint64_t mk, kn, mn, mnk;
    if (__builtin_mul_overflow(m, k, &mk) || __builtin_mul_overflow(k, n, &kn) ||
        __builtin_mul_overflow(m, n, &mn) || __builtin_mul_overflow(mn, k, &mnk) ||
        n > INT64_MAX || k > INT64_MAX) {
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "%s: the sizes m = %llu, n = %llu, k = %llu overflow 64 bits",
                        canon_op_get(op)->name, (unsigned long long)m, (unsigned long long)n,
                        (unsigned long long)k);
    }
    rt_request r = {.op = op, .executor = executor,
                    .operand = {{handle[0], mk, roles[0]}, {handle[1], kn, roles[1]},
                                {handle[2], mn, roles[2]}},
                    .n_operands = 3, .n_slots = 3, .n = mn, .no_alias = 1,
                    .contract = {.m = m, .n = n, .k = k, .a_rs = (int64_t)k, .a_cs = 1,
                                 .b_rs = b_rs, .b_cs = b_cs}};
    return rt_request_run(&r);
}

/* ---- one definition per signature shape (the sig column of ops.def) -------------------- */

#define RT_SIG_BIN(name)                                                                   \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t b, uint64_t c, uint64_t n) { \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{a, n, NULL}, {b, n, NULL}, {c, n, NULL}},              \
                        .n_operands = 3, .n_slots = 3, .n = n};                             \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_UN(name)                                                                    \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t c, uint64_t n) {           \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{a, n, NULL}, {c, n, NULL}},                            \
                        .n_operands = 2, .n_slots = 2, .n = n};                             \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_UN1(name)                                                                   \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t c, uint64_t n, float s) {  \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{a, n, NULL}, {c, n, NULL}},                            \
                        .n_operands = 2, .n_slots = 2, .n = n, .param = {s}};               \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_UN2(name)                                                                   \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t c, uint64_t n, float lo,   \
                        float hi) {                                                        \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{a, n, NULL}, {c, n, NULL}},                            \
                        .n_operands = 2, .n_slots = 2, .n = n, .param = {lo, hi},           \
                        .bounds = 1};                                                      \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_FILL(name)                                                                  \
    hg_status hg_##name(uint64_t executor, uint64_t buffer, float value, uint64_t n) {     \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{buffer, n, NULL}},                                    \
                        .n_operands = 1, .n_slots = 1, .n = n, .param = {value}};           \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_COPY(name)                                                                  \
    hg_status hg_##name(uint64_t executor, uint64_t src, uint64_t dst, uint64_t n) {       \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{src, n, NULL}, {dst, n, NULL}},                        \
                        .n_operands = 2, .n_slots = 2, .n = n};                             \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_RED(name)                                                                   \
    hg_status hg_##name(uint64_t executor, uint64_t x, uint64_t out, uint64_t n,           \
                        float *out_result) {                                               \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{x, n, NULL}, {out, 1, "out"}},                         \
                        .n_operands = 2, .n_slots = 1, .n = n, .has_result = 1,             \
                        .result = out_result};                                             \
        return rt_request_run(&r);                                                         \
    }

#define RT_SIG_LOSS(name)                                                                  \
    hg_status hg_##name(uint64_t executor, uint64_t p, uint64_t t, uint64_t out,           \
                        uint64_t n, float *out_result) {                                   \
        rt_request r = {.op = CANON_OP_##name, .executor = executor,                        \
                        .operand = {{p, n, NULL}, {t, n, NULL}, {out, 1, "out"}},           \
                        .n_operands = 3, .n_slots = 2, .n = n, .has_result = 1,             \
                        .result = out_result};                                             \
        return rt_request_run(&r);                                                         \
    }

/* B row stride n, column stride 1. */
#define RT_SIG_GEMM(name)                                                                  \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t b, uint64_t c, uint64_t m, \
                        uint64_t n, uint64_t k) {                                          \
        static const char *const roles[3] = {"A, m*k", "B, k*n", "C, m*n"};                \
        const uint64_t handle[3] = {a, b, c};                                              \
        return rt_contract(CANON_OP_##name, executor, handle, roles, m, n, k, (int64_t)n, 1); \
    }

/* The gemm form with one output column: x is B[n x 1] (row stride 1, column stride 0). */
#define RT_SIG_MATVEC(name)                                                                \
    hg_status hg_##name(uint64_t executor, uint64_t a, uint64_t x, uint64_t y, uint64_t m, \
                        uint64_t n) {                                                      \
        static const char *const roles[3] = {"A, m*n", "x, n", "y, m"};                    \
        const uint64_t handle[3] = {a, x, y};                                              \
        return rt_contract(CANON_OP_##name, executor, handle, roles, m, 1, n, 1, 0);       \
    }

#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    RT_SIG_##sig(name)
#include "../canon/ops.def"
#undef HG_OP
