/*
 * runtime/compute.c — N-d compute: expressions and built-in ops on strided operands, with
 * NumPy broadcasting.  The array entry points (hg_expr_run_arrays, hg_op_run_arrays) are
 * here; the tensor ones (runtime/tensor.c) use the same pieces.
 *
 *   what runs (rt_task): an expression's GRID twin (rt_task_expr), an op's of ops.def by
 *     name (rt_task_op), or a reduction kind's: "sum", "mean", "min", "max" are the
 *     forms of those expressions (rt_task_reduce)
 *   → its axes (rt_task_axes): the call's axes_json, or the expression's axis=k, or the
 *     kind's default: maps none, reductions and losses all, softmax the last
 *   → the output's shape (rt_task_shape): the inputs broadcast; a result without the axes
 *     (or with extent 1 there: keepdims)
 *   → rt_task_run: the aliasing rule of programs that reread an input, then rt_grid_exec
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

void rt_task_expr(const rt_expr *x, rt_task *t) {
    const canon_expr *e = x->e;
    *t = (rt_task){.p = e->grid, .n_in = e->n_arrays, .n_params = e->n_scalars,
                   .result = e->has_result, .dflt = e->has_result ? RT_AXES_ALL : RT_AXES_NONE,
                   .has_axis = e->has_axis, .axis = e->axis, .reread = x->reread};
    snprintf(t->what, sizeof t->what, "expression \"%.60s%s\"", x->source ? x->source : "(program)",
             x->source && strlen(x->source) > 60 ? "..." : "");
}

/* Ops whose scalars are bounds (lo, hi), as the public signature UN2 says (ops.def): the
 * N-d path refuses lo > hi and NaN bounds as the 1-D functions do. */
enum { RT_BOUNDS_BIN, RT_BOUNDS_UN = 0, RT_BOUNDS_UN1 = 0, RT_BOUNDS_UN2 = 1, RT_BOUNDS_FILL = 0,
       RT_BOUNDS_COPY = 0, RT_BOUNDS_RED = 0, RT_BOUNDS_LOSS = 0, RT_BOUNDS_GEMM = 0,
       RT_BOUNDS_MATVEC = 0 };
static const uint8_t rt_op_bounds[CANON_OP_COUNT] = {
#define HG_OP(name, family, sig, ...) [CANON_OP_##name] = RT_BOUNDS_##sig,
#include "../canon/ops.def"
#undef HG_OP
};

const canon_op_info *rt_op_named(const char *name) {
    for (int o = 0; name && o < CANON_OP_COUNT; o++)
        if (strcmp(canon_op_get((canon_op)o)->name, name) == 0)
            return canon_op_get((canon_op)o);
    return NULL;
}

/* INVALID_ARGUMENT for an op name that is not in ops.def (or NULL). */
static hg_status rt_unknown_op(const char *name) {
    return rt_error(HG_ERR_INVALID_ARGUMENT, name ? "unknown op '%.60s' (the names of ops.def: "
                    "vector_add_f32, softmax_f32, ...; hg_op_describe)" : "op is NULL", name);
}

hg_status rt_task_op(const char *name, rt_task *t) {
    const canon_op_info *info = rt_op_named(name);
    if (!info)
        return rt_unknown_op(name);
    if (info->family == CANON_FAM_CONTRACT)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "op %s is a contraction: use tensor_matmul",
                        name);
    if (info->n_in == 0)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "op %s reads no array, so it has no shape to "
                        "run on (it fills a buffer: hg_%s)", name, name);
    const canon_program *p = canon_grid_form(info->op);
    if (!p)
        return rt_error(HG_ERR_NO_MEMORY, "op %s: no memory for its N-d form", name);
    *t = (rt_task){.p = p, .n_in = info->n_in, .n_params = info->n_par,
                   .bounds = rt_op_bounds[info->op], .result = p->result_stage != CANON_NONE,
                   .min_row = p->result_stage != CANON_NONE ? info->min_n : 0,
                   .dflt = info->family == CANON_FAM_MAP       ? RT_AXES_NONE
                           : info->family == CANON_FAM_SOFTMAX ? RT_AXES_LAST
                                                               : RT_AXES_ALL};
    snprintf(t->what, sizeof t->what, "%s", name);
    return HG_OK;
}

hg_status hg_op_describe(const char *op, char **out_json) {
    rt_error_clear();
    const canon_op_info *info = rt_op_named(op);
    if (!out_json)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "op_describe: out_json is NULL");
    return info ? rt_json_op(info, out_json) : rt_unknown_op(op);
}

/* The reduction kinds and the expressions whose forms they run, parsed at first use and
 * kept for the process (a parse that ran out of memory is tried again next time). */
static const char *const rt_reduce_text[] = {"sum(x)", "mean(x)", "min(x)", "max(x)"};
#define RT_N_REDUCE (sizeof rt_reduce_text / sizeof rt_reduce_text[0])
static canon_expr *rt_reduce_expr[RT_N_REDUCE];
static pthread_mutex_t rt_reduce_lock = PTHREAD_MUTEX_INITIALIZER;

hg_status rt_task_reduce(const char *kind, rt_task *t) {
    for (size_t i = 0; kind && i < RT_N_REDUCE; i++) {
        const size_t len = strlen(kind);
        if (strncmp(rt_reduce_text[i], kind, len) != 0 || rt_reduce_text[i][len] != '(')
            continue;
        pthread_mutex_lock(&rt_reduce_lock);
        if (!rt_reduce_expr[i]) {
            canon_expr_error err;
            if (canon_expr_parse(rt_reduce_text[i], NULL, 0, &rt_reduce_expr[i], &err) != 0)
                rt_reduce_expr[i] = NULL; /* only memory can fail */
        }
        const canon_expr *e = rt_reduce_expr[i];
        pthread_mutex_unlock(&rt_reduce_lock);
        if (!e || !e->grid)
            return rt_error(HG_ERR_NO_MEMORY, "tensor_reduce: no memory for the form of %s",
                            kind);
        *t = (rt_task){.p = e->grid, .n_in = 1, .result = 1, .dflt = RT_AXES_ALL};
        snprintf(t->what, sizeof t->what, "tensor_reduce %s", kind);
        return HG_OK;
    }
    return rt_error(HG_ERR_INVALID_ARGUMENT, "tensor_reduce: kind '%.40s' is not one of sum, "
                    "mean, min, max", kind ? kind : "(NULL)");
}

hg_status rt_task_counts(const rt_task *t, uint64_t n_in, const void *inputs, uint64_t n_params,
                         const float *params) {
    if (n_in != t->n_in || n_params != t->n_params)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s takes %u array%s and %u scalar%s, got "
                        "%llu and %llu", t->what, t->n_in, t->n_in == 1 ? "" : "s",
                        t->n_params, t->n_params == 1 ? "" : "s", (unsigned long long)n_in,
                        (unsigned long long)n_params);
    if ((n_in && !inputs) || (n_params && !params))
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: %s is NULL", t->what,
                        n_in && !inputs ? "the array list" : "params");
    if (t->bounds && !(params[0] <= params[1]))
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: bounds lo = %g, hi = %g must be numbers "
                        "with lo <= hi", t->what, (double)params[0], (double)params[1]);
    return HG_OK;
}

hg_status rt_task_axes(const rt_task *t, const char *axes_json, uint32_t ndim, uint32_t *mask) {
    int given;
    hg_status st = rt_json_axes(axes_json, ndim, mask, &given, t->what);
    if (st != HG_OK)
        return st;
    const uint32_t all = (uint32_t)((1ull << ndim) - 1);
    if (given && t->dflt == RT_AXES_NONE)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: a map has no axes (axes_json \"%.40s\")",
                        t->what, axes_json);
    if (given && t->has_axis)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s names its axis; axes_json \"%.40s\" "
                        "would name another", t->what, axes_json);
    if (given)
        return HG_OK;
    if (t->has_axis) {
        if (t->axis < -(int32_t)ndim || t->axis >= (int32_t)ndim)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: axis %d is out of range for %u "
                            "dimension%s", t->what, t->axis, ndim, ndim == 1 ? "" : "s");
        *mask = 1u << (t->axis < 0 ? t->axis + (int32_t)ndim : t->axis);
    } else if (t->dflt == RT_AXES_ALL) {
        *mask = all;
    } else if (t->dflt == RT_AXES_LAST) {
        *mask = ndim ? 1u << (ndim - 1) : 0;
    }
    return HG_OK;
}

hg_status rt_task_shape(const rt_task *t, const rt_view *in, uint32_t axes, int keepdims,
                        uint64_t *shape, uint32_t *ndim) {
    uint64_t s[CANON_MAX_DIMS];
    uint32_t nd;
    hg_status st = rt_broadcast(in, t->n_in, s, &nd, t->what);
    if (st != HG_OK)
        return st;
    *ndim = 0;
    for (uint32_t d = 0; d < nd; d++) {
        if (t->result && (axes >> d & 1) && !keepdims)
            continue;
        shape[(*ndim)++] = t->result && (axes >> d & 1) ? 1 : s[d];
    }
    return HG_OK;
}

hg_status rt_task_run(const rt_task *t, const rt_view *in, const float *params, uint32_t axes,
                      const rt_view *out) {
    if (t->min_row) { /* a loss of no elements has no value, as for n = 0 in 1-D */
        uint64_t s[CANON_MAX_DIMS], rows = 1, elems = 1;
        uint32_t nd;
        hg_status st = rt_broadcast(in, t->n_in, s, &nd, t->what);
        if (st != HG_OK)
            return st;
        for (uint32_t d = 0; d < nd; d++)
            *(axes >> d & 1 ? &elems : &rows) *= s[d];
        if (rows > 0 && elems < t->min_row)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s of no elements (the reduced axes have "
                            "extent 0) has no value", t->what);
    }
    for (uint32_t i = 0; i < t->n_in && !t->result; i++)
        if ((t->reread >> i & 1) && in[i].data == out->data)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: the output is input %u, which a "
                            "later stage reads after the output was written", t->what, i + 1);
    return rt_grid_exec(t->p, in, t->n_in, params, t->n_params, axes, out, -1, t->what);
}

/* ---- arrays in the caller's memory ------------------------------------------------------ */

/* The views of n arrays (at most CANON_MAX_INPUTS + 1), checked: rank, data for any
 * element, numel and reach within the address space.  `what` names the call and `role`
 * the arrays ("input", "output") in messages. */
static hg_status rt_array_views(const hg_array *a, uint64_t n, rt_view *out, const char *what,
                                const char *role) {
    for (uint64_t i = 0; i < n; i++) {
        if (a[i].ndim > HG_MAX_DIMS)
            return rt_error(HG_ERR_SHAPE, "%s: %s %llu has %llu dimensions (at most %u)", what,
                            role, (unsigned long long)i + 1, (unsigned long long)a[i].ndim,
                            HG_MAX_DIMS);
        rt_view *v = &out[i];
        *v = (rt_view){.data = a[i].data, .ndim = (uint32_t)a[i].ndim};
        uint64_t numel = 1;
        int overflow = 0;
        /* offsets in bytes must stay within +-2^62: far beyond any real array */
        const uint64_t limit = (uint64_t)1 << 60;
        uint64_t reach = 0;
        for (uint32_t d = 0; d < v->ndim; d++) {
            v->shape[d] = a[i].shape[d];
            v->stride[d] = a[i].strides[d];
            overflow |= __builtin_mul_overflow(numel, v->shape[d], &numel);
            const uint64_t s = v->stride[d] < 0 ? (uint64_t)(-(v->stride[d] + 1)) + 1
                                                : (uint64_t)v->stride[d];
            uint64_t span;
            overflow |= s > limit || v->shape[d] > limit ||
                        __builtin_mul_overflow(s, v->shape[d], &span) ||
                        __builtin_add_overflow(reach, span, &reach) || reach > limit;
        }
        if (overflow)
            return rt_error(HG_ERR_SHAPE, "%s: %s %llu: its shape or strides overflow (numel "
                            "or reach beyond 2^60 elements)", what, role,
                            (unsigned long long)i + 1);
        if (numel > 0 && !v->data)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: %s %llu has %llu elements and data "
                            "NULL", what, role, (unsigned long long)i + 1,
                            (unsigned long long)numel);
    }
    return HG_OK;
}

/* The shared part of the array entry points: counts, views, axes, then rt_task_run. */
static hg_status rt_arrays_run(const rt_task *t, const hg_array *inputs, uint64_t n_inputs,
                               const float *params, uint64_t n_params, const char *axes_json,
                               const hg_array *output) {
    hg_status st = rt_task_counts(t, n_inputs, inputs, n_params, params);
    if (st == HG_OK && !output)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "%s: output is NULL", t->what);
    if (st != HG_OK)
        return st;
    rt_view in[CANON_MAX_INPUTS], out;
    st = rt_array_views(inputs, n_inputs, in, t->what, "input");
    if (st == HG_OK)
        st = rt_array_views(output, 1, &out, t->what, "output");
    uint32_t nd = 0, axes = 0;
    for (uint32_t i = 0; st == HG_OK && i < t->n_in; i++)
        nd = in[i].ndim > nd ? in[i].ndim : nd;
    if (st == HG_OK)
        st = rt_task_axes(t, axes_json, nd, &axes);
    return st == HG_OK ? rt_task_run(t, in, params, axes, &out) : st;
}

hg_status hg_expr_run_arrays(uint64_t expr, const hg_array *inputs, uint64_t n_inputs,
                             const float *params, uint64_t n_params, const hg_array *output) {
    rt_enter(0);
    rt_expr *x;
    rt_task t;
    hg_status st = rt_get_expr(expr, &x);
    if (st == HG_OK) {
        rt_task_expr(x, &t);
        st = rt_arrays_run(&t, inputs, n_inputs, params, n_params, NULL, output);
    }
    rt_leave();
    return st;
}

hg_status hg_op_run_arrays(const char *op, const hg_array *inputs, uint64_t n_inputs,
                           const float *params, uint64_t n_params, const char *axes_json,
                           const hg_array *output) {
    rt_enter(0);
    rt_task t;
    hg_status st = rt_task_op(op, &t);
    if (st == HG_OK)
        st = rt_arrays_run(&t, inputs, n_inputs, params, n_params, axes_json, output);
    rt_leave();
    return st;
}
