/*
 * runtime/expr.c — the expression API (hg_expr_*): compile, inspect, run, free.
 *
 *   hg_expr_compile: scalars_json (cJSON) → canon_expr_parse (text) or rt_json_program
 *     (a JSON program) → rt_expr (+ which inputs a later stage rereads) → HOLOGRAM_DUMP →
 *     register (exclusive lock)
 *   hg_expr_run / hg_expr_run_raw: rt_enter(shared) → the expression (and executor and
 *     buffers) → rt_expr_exec: counts, lengths, aliasing, n rules → canon_args →
 *     rt_exec(form) → the scalar to *out_result (and output[0]) → rt_leave
 *   N-d operands (hg_expr_run_arrays, hg_tensor_evaluate): runtime/compute.c
 *
 * Parsing and rewriting happen before the lock is taken; the expression object is never
 * modified after registration, so any number of threads may run it at once.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* Into *mask, bit i for each array i that a stage after one that stored the output loads
 * (only JSON programs have such stages).  -1 when memory runs out. */
static int rt_expr_rereads(const canon_expr *e, uint64_t *mask) {
    const canon_program *p = e->form;
    *mask = 0;
    uint8_t *seen = p->n_stages > 1 ? malloc(p->n_nodes) : NULL;
    if (p->n_stages > 1 && !seen)
        return -1;
    int stored = 0;
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const uint32_t root = p->stages[s].root;
        if (stored) {
            memset(seen, 0, root + 1);
            seen[root] = 1;
            for (uint32_t i = root + 1; i-- > 0;) {
                const canon_node *n = &p->nodes[i];
                for (unsigned k = 0; seen[i] && k < n->arity; k++)
                    seen[n->op[k]] = 1;
                if (seen[i] && n->kind == CANON_LOAD && n->arg < e->n_arrays)
                    *mask |= 1ull << n->arg;
            }
        }
        stored |= p->stages[s].store_slot != CANON_NONE;
    }
    free(seen);
    return 0;
}

void rt_expr_release(rt_expr *x) {
    rt_unregister(x->handle);
    canon_expr_free(x->e);
    free(x->source);
    free(x);
}

/* 1 when text, after blanks, starts a JSON object. */
static int rt_is_json(const char *text) {
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    return *text == '{';
}

hg_status hg_expr_compile(const char *source, const char *scalars_json, uint64_t *out_expr) {
    rt_error_clear();
    if (!source || !out_expr)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "expr_compile: %s is NULL",
                        source ? "out_expr" : "source");
    char **names = NULL;
    uint32_t n_names = 0;
    hg_status st = rt_json_names(scalars_json, &names, &n_names);
    if (st != HG_OK)
        return st;
    canon_expr *e = NULL;
    const int json = rt_is_json(source);
    if (json && n_names) {
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "expr_compile: a JSON program names its own "
                      "scalars; scalars_json must be NULL or empty");
    } else if (json) {
        st = rt_json_program(source, &e);
    } else {
        canon_expr_error err;
        if (canon_expr_parse(source, (const char *const *)names, n_names, &e, &err) != 0)
            st = rt_error(err.no_memory ? HG_ERR_NO_MEMORY : HG_ERR_EXPRESSION,
                          "expression \"%.80s%s\": %s", source,
                          strlen(source) > 80 ? "..." : "", err.msg);
    }
    for (uint32_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (st != HG_OK)
        return st;
    rt_expr *x = calloc(1, sizeof *x);
    if (x && !json && !(x->source = strdup(source))) {
        free(x);
        x = NULL;
    }
    if (!x) {
        canon_expr_free(e);
        return rt_error(HG_ERR_NO_MEMORY, "expr_compile: no memory for the expression");
    }
    x->e = e;
    if (rt_expr_rereads(e, &x->reread) != 0) {
        canon_expr_free(e);
        free(x->source);
        free(x);
        return rt_error(HG_ERR_NO_MEMORY, "expr_compile: no memory to check the program");
    }
    rt_dump_expr(x->source, e);
    rt_enter(1);
    x->handle = rt_register(RT_KIND_EXPR, x);
    if (x->handle)
        *out_expr = x->handle;
    else
        st = HG_ERR_NO_MEMORY;
    rt_leave();
    if (st != HG_OK) {
        canon_expr_free(x->e);
        free(x->source);
        free(x);
    }
    return st;
}

hg_status hg_expr_cleanup(uint64_t expr) {
    rt_enter(1);
    rt_expr *x;
    hg_status st = rt_get_expr(expr, &x);
    if (st == HG_OK)
        rt_expr_release(x);
    rt_leave();
    return st;
}

/* The document `fmt` (variables or describe) of an expression. */
static hg_status rt_expr_document(uint64_t expr, char **out_json,
                                  hg_status (*fmt)(const rt_expr *, char **), const char *fn) {
    rt_enter(0);
    rt_expr *x;
    hg_status st = out_json ? rt_get_expr(expr, &x)
                            : rt_error(HG_ERR_INVALID_ARGUMENT, "%s: out_json is NULL", fn);
    if (st == HG_OK)
        st = fmt(x, out_json);
    rt_leave();
    return st;
}

hg_status hg_expr_variables(uint64_t expr, char **out_json) {
    return rt_expr_document(expr, out_json, rt_json_variables, "expr_variables");
}

hg_status hg_expr_describe(uint64_t expr, char **out_json) {
    return rt_expr_document(expr, out_json, rt_json_describe, "expr_describe");
}

/* The name of array i of x, for messages. */
static const char *rt_array_name(const rt_expr *x, uint32_t i) { return x->e->names[i]; }

/* 1 when [a, a+n) and [b, b+n) partly overlap (neither disjoint nor the same). */
static int rt_partly_overlap(const float *a, const float *b, uint64_t n) {
    return a != b && n > 0 && a < b + n && b < a + n;
}

/* 1 when n floats from p stay within the address space. */
static int rt_range_ok(const float *p, uint64_t n) {
    return n <= (UINTPTR_MAX - (uintptr_t)p) / sizeof(float);
}

/* Runs x over n elements of the given arrays (shared lock held, the caller validated the
 * handles): the checks common to both entry points, then rt_exec.  `output` may be NULL
 * for a reduction; *out_result (when not NULL) gets a reduction's value. */
static hg_status rt_expr_exec(const rt_expr *x, float *const *inputs, uint64_t n_inputs,
                              const float *params, uint64_t n_params, float *output,
                              uint64_t n, int bclass, float *out_result) {
    const canon_expr *e = x->e;
    if (n_inputs != e->n_arrays || n_params != e->n_scalars)
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "expression 0x%016llx takes %u array%s and %u scalar%s, got %llu and "
                        "%llu", (unsigned long long)x->handle, e->n_arrays,
                        e->n_arrays == 1 ? "" : "s", e->n_scalars, e->n_scalars == 1 ? "" : "s",
                        (unsigned long long)n_inputs, (unsigned long long)n_params);
    if (n_params && !params)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "expression 0x%016llx: params is NULL",
                        (unsigned long long)x->handle);
    if (e->has_axis && e->axis != 0 && e->axis != -1)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "expression 0x%016llx: axis %d is out of "
                        "range for 1 dimension (N-d operands: hg_expr_run_arrays, "
                        "hg_tensor_evaluate)", (unsigned long long)x->handle, e->axis);
    for (uint32_t i = 0; i < e->n_arrays; i++) {
        if (!inputs[i] && n > 0)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "array '%s' (input %u) is NULL",
                            rt_array_name(x, i), i);
        if (inputs[i] && !rt_range_ok(inputs[i], n))
            return rt_error(HG_ERR_INVALID_ARGUMENT, "array '%s': %llu elements at %p run "
                            "past the address space", rt_array_name(x, i),
                            (unsigned long long)n, (const void *)inputs[i]);
    }
    if (e->has_output && !output && n > 0)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "expression 0x%016llx writes an output array, "
                        "and output is NULL", (unsigned long long)x->handle);
    if (e->has_output && output) {
        if (!rt_range_ok(output, n))
            return rt_error(HG_ERR_INVALID_ARGUMENT, "output: %llu elements run past the "
                            "address space", (unsigned long long)n);
        for (uint32_t i = 0; i < e->n_arrays; i++) {
            if (rt_partly_overlap(output, inputs[i], n))
                return rt_error(HG_ERR_INVALID_ARGUMENT, "the output partly overlaps array "
                                "'%s' (it must be the same memory or apart)",
                                rt_array_name(x, i));
            if (output == inputs[i] && (x->reread >> i & 1))
                return rt_error(HG_ERR_INVALID_ARGUMENT, "the output is array '%s', which a "
                                "later stage reads after the output was written",
                                rt_array_name(x, i));
        }
    }
    for (uint32_t s = 0; n == 0 && s < e->form->n_stages; s++) {
        canon_reduce red = e->form->stages[s].reduce;
        if (red == CANON_RED_MIN || red == CANON_RED_MAX)
            return rt_error(HG_ERR_INVALID_ARGUMENT, "%s of no elements (n = 0) has no value",
                            red == CANON_RED_MIN ? "min()" : "max()");
    }
    canon_args args = {.n = n};
    for (uint32_t i = 0; i < e->n_arrays; i++)
        args.slot[i] = inputs[i];
    if (e->has_output)
        args.slot[e->n_arrays] = output;
    for (uint32_t j = 0; j < e->n_scalars; j++)
        args.param[j] = params[j];
    float value = 0.0f;
    hg_status st = rt_exec(e->form, &args, bclass, &value);
    if (st == HG_OK && e->has_result && out_result)
        *out_result = value;
    return st;
}

hg_status hg_expr_run(uint64_t executor, uint64_t expr, const uint64_t *inputs,
                      uint64_t n_inputs, const float *params, uint64_t n_params,
                      uint64_t output, uint64_t n, float *out_result) {
    rt_enter(0);
    rt_executor *ex;
    rt_expr *x;
    rt_buffer *out = NULL;
    float *slot[CANON_MAX_INPUTS];
    hg_status st = rt_get_executor(executor, &ex);
    if (st == HG_OK)
        st = rt_get_expr(expr, &x);
    if (st == HG_OK && n_inputs && !inputs)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "expr_run: inputs is NULL");
    if (st == HG_OK && n_inputs > CANON_MAX_INPUTS)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "expr_run: %llu inputs (at most %u)",
                      (unsigned long long)n_inputs, CANON_MAX_INPUTS);
    for (uint64_t i = 0; st == HG_OK && i < n_inputs; i++) {
        rt_buffer *b;
        st = rt_get_buffer_of(ex, inputs[i], &b);
        if (st == HG_OK && i < x->e->n_arrays && b->length < n)
            st = rt_error(HG_ERR_OUT_OF_BOUNDS, "n = %llu exceeds array '%s' (buffer "
                          "0x%016llx) of length %llu", (unsigned long long)n,
                          rt_array_name(x, (uint32_t)i), (unsigned long long)inputs[i],
                          (unsigned long long)b->length);
        if (st == HG_OK)
            slot[i] = b->data;
    }
    if (st == HG_OK && (output || x->e->has_output)) {
        st = rt_get_buffer_of(ex, output, &out);
        uint64_t need = x->e->has_output ? n : 1;
        if (st == HG_OK && out->length < need)
            st = rt_error(HG_ERR_OUT_OF_BOUNDS, "the output buffer 0x%016llx holds %llu "
                          "elements, needs %llu", (unsigned long long)output,
                          (unsigned long long)out->length, (unsigned long long)need);
    }
    float value = 0.0f;
    if (st == HG_OK)
        st = rt_expr_exec(x, slot, n_inputs, params, n_params,
                          x->e->has_output ? out->data : NULL, n,
                          out ? out->boundary_class : -1, &value);
    if (st == HG_OK && x->e->has_result) {
        if (out && !x->e->has_output)
            out->data[0] = value;
        if (out_result)
            *out_result = value;
    }
    rt_leave();
    return st;
}

hg_status hg_expr_run_raw(uint64_t expr, const float *const *inputs, uint64_t n_inputs,
                          const float *params, uint64_t n_params, float *output, uint64_t n,
                          float *out_result) {
    rt_enter(0);
    rt_expr *x;
    hg_status st = rt_get_expr(expr, &x);
    if (st == HG_OK && n_inputs && !inputs)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "expr_run_raw: inputs is NULL");
    if (st == HG_OK && n_inputs > CANON_MAX_INPUTS)
        st = rt_error(HG_ERR_INVALID_ARGUMENT, "expr_run_raw: %llu inputs (at most %u)",
                      (unsigned long long)n_inputs, CANON_MAX_INPUTS);
    if (st == HG_OK)
        st = rt_expr_exec(x, (float *const *)inputs, n_inputs, params, n_params,
                          x->e->has_output ? output : NULL, n, -1, out_result);
    rt_leave();
    return st;
}
