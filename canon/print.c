/*
 * canon/print.c — a readable listing of a program, for tests and debug dumps.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "canon.h"

/* An snprintf-style sink: counts every character, stores what fits. */
typedef struct {
    char *buf;
    size_t cap, len;
} print_out;

/* Appends formatted text to o, truncating at o->cap - 1 characters. */
static void print_f(print_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void print_f(print_out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *dst = o->len < o->cap ? o->buf + o->len : NULL;
    int n = vsnprintf(dst, dst ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static const char *const print_domains[] = {
    [CANON_DOM_RANGE] = "RANGE", [CANON_DOM_SCALAR] = "SCALAR",
    [CANON_DOM_CONTRACT] = "CONTRACT", [CANON_DOM_GRID] = "GRID"};
static const char *const print_reduces[] = {[CANON_RED_NONE] = "none", [CANON_RED_SUM] = "sum",
                                            [CANON_RED_MIN] = "min", [CANON_RED_MAX] = "max"};
#define PRINT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *canon_domain_name(canon_domain d) {
    return (unsigned)d < PRINT_COUNT(print_domains) ? print_domains[d] : NULL;
}

const char *canon_reduce_name(canon_reduce r) {
    return (unsigned)r < PRINT_COUNT(print_reduces) ? print_reduces[r] : NULL;
}

/* Appends "%i = KIND operands" for node i. */
static void print_node(print_out *o, const canon_program *p, uint32_t i) {
    const canon_node *n = &p->nodes[i];
    const char *name = n->kind < CANON_KIND_COUNT ? canon_kinds[n->kind].name : "?";
    print_f(o, "%%%" PRIu32 " = %s", i, name);
    switch (n->kind) {
    case CANON_LOAD: print_f(o, " s%" PRIu32, n->arg); break;
    case CANON_PARAM: print_f(o, " p%" PRIu32, n->arg); break;
    case CANON_ACC: print_f(o, " stage%" PRIu32, n->arg); break;
    case CANON_CONST: print_f(o, " %.9g", (double)n->value); break;
    default:
        for (unsigned k = 0; k < n->arity && k < 3; k++)
            print_f(o, " %%%" PRIu32, n->op[k]);
        break;
    }
    print_f(o, "\n");
}

/* Appends "stage s DOMAIN: sinks <- %root". */
static void print_stage(print_out *o, uint32_t s, const canon_stage *st) {
    const char *dom = canon_domain_name(st->domain), *red = canon_reduce_name(st->reduce);
    dom = dom ? dom : "?";
    red = red ? red : "?";
    print_f(o, "stage %" PRIu32 " %s: ", s, dom);
    if (st->store_slot != CANON_NONE) {
        print_f(o, "store s%" PRIu32 " <- %%%" PRIu32, st->store_slot, st->root);
        if (st->reduce != CANON_RED_NONE)
            print_f(o, ", reduce %s", red);
    } else if (st->reduce != CANON_RED_NONE) {
        print_f(o, "reduce %s <- %%%" PRIu32, red, st->root);
    } else {
        print_f(o, "value <- %%%" PRIu32, st->root);
    }
    print_f(o, "\n");
}

/* Writes p's listing into buf like snprintf: returns the length it needed and writes at
 * most cap-1 characters plus a NUL (nothing when cap is 0). */
size_t canon_print(const canon_program *p, char *buf, size_t cap) {
    print_out o = {buf, cap, 0};
    const canon_op_info *info = canon_op_get(p->op);
    print_f(&o, "form %s: %" PRIu32 " slots, %" PRIu32 " params\n",
            info ? info->name : "expression", p->n_slots, p->n_params);
    for (uint32_t i = 0; i < p->n_nodes; i++)
        print_node(&o, p, i);
    for (uint32_t s = 0; s < p->n_stages && s < CANON_MAX_STAGES; s++)
        print_stage(&o, s, &p->stages[s]);
    if (p->result_stage != CANON_NONE)
        print_f(&o, "result stage %" PRIu32 "\n", p->result_stage);
    print_f(&o, "nodes %" PRIu32 " (before rewrite %" PRIu32 ")\n", p->n_nodes,
            p->nodes_before);
    print_f(&o, "hash %016" PRIx64 "\n", p->hash);
    return o.len;
}
