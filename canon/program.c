/*
 * canon/program.c — the program builder: a growable, hash-consed node array plus stages.
 *
 * Hash-consing is a linear scan: canonical forms have tens of nodes, and a scan keeps the
 * program a plain array that the engines read directly.
 */
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "scalar.h"

#define CANON_INITIAL_NODES 16u

/* New empty program with `n_slots` array slots and `n_params` parameters; NULL on
 * allocation failure.  The caller frees it with canon_program_free. */
canon_program *canon_program_new(uint32_t n_slots, uint32_t n_params) {
    canon_program *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nodes = malloc(CANON_INITIAL_NODES * sizeof *p->nodes);
    if (!p->nodes) {
        free(p);
        return NULL;
    }
    p->cap_nodes = CANON_INITIAL_NODES;
    p->n_slots = n_slots;
    p->n_params = n_params;
    p->result_stage = CANON_NONE;
    p->op = CANON_OP_COUNT;
    return p;
}

/* Frees `p` and its nodes; NULL is harmless. */
void canon_program_free(canon_program *p) {
    if (!p)
        return;
    free(p->nodes);
    free(p);
}

/* Index of a node equal to `n` (kind, arg, constant bits, operands), or CANON_NONE. */
static uint32_t canon_find(const canon_program *p, const canon_node *n) {
    for (uint32_t i = p->n_nodes; i-- > 0;) {
        const canon_node *m = &p->nodes[i];
        if (m->kind == n->kind && m->arg == n->arg &&
            canon_f2u(m->value) == canon_f2u(n->value) && m->op[0] == n->op[0] &&
            m->op[1] == n->op[1] && m->op[2] == n->op[2])
            return i;
    }
    return CANON_NONE;
}

/* Returns the index of `n` in p, appending it if no equal node exists; CANON_NONE (and
 * p->oom set) when the array cannot grow. */
static uint32_t canon_intern(canon_program *p, const canon_node *n) {
    uint32_t i = canon_find(p, n);
    if (i != CANON_NONE)
        return i;
    if (p->n_nodes == p->cap_nodes) {
        if (p->cap_nodes > UINT32_MAX / 2 - 1) {
            p->oom = 1;
            return CANON_NONE;
        }
        uint32_t cap = p->cap_nodes * 2;
        canon_node *nodes = realloc(p->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            p->oom = 1;
            return CANON_NONE;
        }
        p->nodes = nodes;
        p->cap_nodes = cap;
    }
    p->nodes[p->n_nodes] = *n;
    return p->n_nodes++;
}

/* Adds (or finds) the non-leaf node kind(a, b, c); operands past the kind's arity are
 * ignored and stored as CANON_NONE.  CANON_NONE (p->oom set: the program is unusable)
 * when an operand is CANON_NONE or not an existing node, when `kind` is a leaf or out of
 * range, or when memory runs out. */
uint32_t canon_node_add(canon_program *p, canon_kind kind, uint32_t a, uint32_t b,
                        uint32_t c) {
    if ((unsigned)kind >= CANON_KIND_COUNT || (canon_kinds[kind].flags & CANON_LEAF)) {
        p->oom = 1;
        return CANON_NONE;
    }
    canon_node n = {.kind = (uint8_t)kind, .arity = canon_kinds[kind].arity,
                    .op = {CANON_NONE, CANON_NONE, CANON_NONE}};
    const uint32_t in[3] = {a, b, c};
    for (unsigned k = 0; k < n.arity; k++) {
        if (in[k] >= p->n_nodes) { /* CANON_NONE included */
            p->oom = 1;
            return CANON_NONE;
        }
        n.op[k] = in[k];
    }
    return canon_intern(p, &n);
}

/* Adds (or finds) the leaf `kind` with argument `arg` (LOAD slot, PARAM index, ACC stage;
 * 0 for LEN).  CONST leaves come from canon_const; a non-leaf kind sets p->oom. */
uint32_t canon_leaf(canon_program *p, canon_kind kind, uint32_t arg) {
    if ((unsigned)kind >= CANON_KIND_COUNT || !(canon_kinds[kind].flags & CANON_LEAF) ||
        kind == CANON_CONST) {
        p->oom = 1;
        return CANON_NONE;
    }
    canon_node n = {.kind = (uint8_t)kind, .arg = arg,
                    .op = {CANON_NONE, CANON_NONE, CANON_NONE}};
    return canon_intern(p, &n);
}

/* Adds (or finds, by bit pattern: -0 and 0, distinct NaNs stay apart) a constant. */
uint32_t canon_const(canon_program *p, float value) {
    canon_node n = {.kind = CANON_CONST, .value = value,
                    .op = {CANON_NONE, CANON_NONE, CANON_NONE}};
    return canon_intern(p, &n);
}

/* Appends a stage computing node `root` over `domain` into the given sinks; its index, or
 * CANON_NONE when the program already has CANON_MAX_STAGES stages or root is not a node. */
uint32_t canon_stage_add(canon_program *p, canon_domain domain, uint32_t root,
                         uint32_t store_slot, canon_reduce reduce) {
    if (p->n_stages == CANON_MAX_STAGES || root >= p->n_nodes)
        return CANON_NONE;
    p->stages[p->n_stages] =
        (canon_stage){.domain = domain, .root = root, .store_slot = store_slot,
                      .reduce = reduce};
    return p->n_stages++;
}
