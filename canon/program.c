/*
 * canon/program.c — the program builder: a growable, hash-consed node array plus stages.
 *
 * Hash-consing is a linear scan while a program is small (built-in forms have tens of
 * nodes); past CANON_INDEX_MIN nodes an open-addressing index over the node array takes
 * over, so that user expressions of thousands of nodes build in linear time.  The node
 * array stays a plain array that the engines read directly.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "scalar.h"

#define CANON_INITIAL_NODES 16u
#define CANON_INDEX_MIN 32u /* nodes before the index is built */

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
    free(p->index);
    free(p->ident);
    for (uint32_t s = 0; s < CANON_MAX_STAGES; s++)
        canon_program_free(atomic_load(&p->staged[s]));
    free(p);
}

/* 1 when nodes m and n are equal (kind, arg, constant bits, operands). */
static int canon_node_equal(const canon_node *m, const canon_node *n) {
    return m->kind == n->kind && m->arg == n->arg &&
           canon_f2u(m->value) == canon_f2u(n->value) && m->op[0] == n->op[0] &&
           m->op[1] == n->op[1] && m->op[2] == n->op[2];
}

/* Hash of node n's content, for the index. */
static uint32_t canon_node_hash(const canon_node *n) {
    uint64_t h = n->kind * 0x9e3779b97f4a7c15ull;
    const uint64_t w[4] = {n->arg | (uint64_t)canon_f2u(n->value) << 32, n->op[0], n->op[1],
                           n->op[2]};
    for (unsigned i = 0; i < 4; i++) {
        h = (h ^ w[i]) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return (uint32_t)h;
}

/* Puts node i into the index, which has a free entry. */
static void canon_index_put(canon_program *p, uint32_t i) {
    uint32_t mask = p->cap_index - 1, at = canon_node_hash(&p->nodes[i]) & mask;
    while (p->index[at] != CANON_NONE)
        at = (at + 1) & mask;
    p->index[at] = i;
}

/* Keeps the index at most half full once the program has CANON_INDEX_MIN nodes, counting
 * a node about to be appended.  Without memory it is dropped: lookups scan instead. */
static void canon_index_grow(canon_program *p) {
    if (p->n_nodes + 1 < CANON_INDEX_MIN || 2 * (p->n_nodes + 1) <= p->cap_index)
        return;
    uint32_t cap = 2 * CANON_INDEX_MIN;
    while (cap < 4 * (p->n_nodes + 1) && cap < UINT32_MAX / 4)
        cap *= 2;
    free(p->index);
    p->index = malloc((size_t)cap * sizeof *p->index);
    p->cap_index = p->index ? cap : 0;
    if (!p->index)
        return;
    memset(p->index, 0xff, (size_t)cap * sizeof *p->index); /* CANON_NONE */
    for (uint32_t i = 0; i < p->n_nodes; i++)
        canon_index_put(p, i);
}

/* Index of a node equal to `n`, or CANON_NONE. */
static uint32_t canon_find(const canon_program *p, const canon_node *n) {
    if (p->index) {
        uint32_t mask = p->cap_index - 1, at = canon_node_hash(n) & mask;
        for (; p->index[at] != CANON_NONE; at = (at + 1) & mask)
            if (canon_node_equal(&p->nodes[p->index[at]], n))
                return p->index[at];
        return CANON_NONE;
    }
    for (uint32_t i = p->n_nodes; i-- > 0;)
        if (canon_node_equal(&p->nodes[i], n))
            return i;
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
    canon_index_grow(p);
    p->nodes[p->n_nodes] = *n;
    if (p->index)
        canon_index_put(p, p->n_nodes);
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

/* ---- checking ------------------------------------------------------------------------ */

/* Writes the message of a failed check to msg[0..cap); returns -1. */
static int canon_bad(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int canon_bad(char *msg, size_t cap, const char *fmt, ...) {
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Bits of canon_check's per-node summary: the subtree loads an array; the rest is one more
 * than the highest stage an ACC in the subtree reads (0: none). */
#define CANON_USES_LOAD 0x80000000u

/* 1 when stage st yields a scalar that later stages can read with ACC (per row in GRID). */
static int canon_has_scalar(const canon_stage *st) {
    return st->domain == CANON_DOM_SCALAR ||
           ((st->domain == CANON_DOM_RANGE || st->domain == CANON_DOM_GRID) &&
            st->reduce != CANON_RED_NONE);
}

int canon_check(const canon_program *p, int allow_sugar, uint32_t *work, char *msg,
                size_t cap) {
    if (!p || p->oom || !p->nodes)
        return canon_bad(msg, cap, "the program is incomplete (it ran out of memory)") - 1;
    if (p->n_slots > CANON_MAX_SLOTS || p->n_params > CANON_MAX_PARAMS)
        return canon_bad(msg, cap, "%u slots and %u parameters (at most %u and %u)",
                         p->n_slots, p->n_params, CANON_MAX_SLOTS, CANON_MAX_PARAMS);
    if (p->n_stages == 0 || p->n_stages > CANON_MAX_STAGES)
        return canon_bad(msg, cap, "%u stages (1 to %u)", p->n_stages, CANON_MAX_STAGES);
    uint32_t *uses = work ? work : malloc(((size_t)p->n_nodes + 1) * sizeof *uses);
    if (!uses)
        return canon_bad(msg, cap, "no memory to check a program of %u nodes", p->n_nodes) - 1;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < p->n_nodes; i++) {
        const canon_node *n = &p->nodes[i];
        if (n->kind >= CANON_KIND_COUNT) {
            rc = canon_bad(msg, cap, "node %u has an unknown kind %u", i, n->kind);
            break;
        }
        const canon_kind_info *k = &canon_kinds[n->kind];
        if (!allow_sugar && (k->flags & CANON_SUGAR)) {
            rc = canon_bad(msg, cap, "node %u is %s, which only a form before rewriting holds",
                           i, k->name);
            break;
        }
        if (n->arity != k->arity) {
            rc = canon_bad(msg, cap, "node %u (%s) has %u operands, not %u", i, k->name,
                           n->arity, k->arity);
            break;
        }
        uses[i] = 0;
        for (unsigned o = 0; o < 3; o++) {
            if (o >= n->arity) {
                if (n->op[o] != CANON_NONE)
                    rc = canon_bad(msg, cap, "node %u (%s) has a stray operand %u", i,
                                   k->name, o + 1);
                continue;
            }
            if (n->op[o] >= i) {
                rc = canon_bad(msg, cap, "node %u (%s): operand %u is node %u, not an earlier "
                               "one", i, k->name, o + 1, n->op[o]);
                break;
            }
            uint32_t u = uses[n->op[o]], mine = uses[i];
            uint32_t acc = u & ~CANON_USES_LOAD, acc_mine = mine & ~CANON_USES_LOAD;
            uses[i] = ((u | mine) & CANON_USES_LOAD) | (acc > acc_mine ? acc : acc_mine);
        }
        if (rc)
            break;
        switch ((canon_kind)n->kind) {
        case CANON_LOAD:
            if (n->arg >= p->n_slots)
                rc = canon_bad(msg, cap, "node %u loads slot %u of %u", i, n->arg, p->n_slots);
            uses[i] = CANON_USES_LOAD;
            break;
        case CANON_PARAM:
            if (n->arg >= p->n_params)
                rc = canon_bad(msg, cap, "node %u reads parameter %u of %u", i, n->arg,
                               p->n_params);
            break;
        case CANON_ACC:
            if (n->arg >= p->n_stages || !canon_has_scalar(&p->stages[n->arg]))
                rc = canon_bad(msg, cap, "node %u reads the scalar of stage %u, which has none",
                               i, n->arg);
            else
                uses[i] = n->arg + 1;
            break;
        default:
            break;
        }
    }
    int grid = 0, other = 0; /* GRID stages; RANGE or CONTRACT stages */
    for (uint32_t s = 0; rc == 0 && s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        const char *dom = canon_domain_name(st->domain);
        if (!dom || (unsigned)st->reduce > CANON_RED_MAX) {
            rc = canon_bad(msg, cap, "stage %u has an unknown domain or reduction", s);
            break;
        }
        grid |= st->domain == CANON_DOM_GRID;
        other |= st->domain == CANON_DOM_RANGE || st->domain == CANON_DOM_CONTRACT;
        int store = st->store_slot != CANON_NONE, red = st->reduce != CANON_RED_NONE;
        if (st->root >= p->n_nodes)
            rc = canon_bad(msg, cap, "stage %u (%s): root %u is not a node", s, dom, st->root);
        else if (store && st->store_slot >= p->n_slots)
            rc = canon_bad(msg, cap, "stage %u (%s) stores to slot %u of %u", s, dom,
                           st->store_slot, p->n_slots);
        else if ((uses[st->root] & ~CANON_USES_LOAD) > s)
            rc = canon_bad(msg, cap, "stage %u (%s) reads the scalar of stage %u, not an "
                           "earlier one", s, dom, (uses[st->root] & ~CANON_USES_LOAD) - 1);
        else if ((st->domain == CANON_DOM_RANGE || st->domain == CANON_DOM_GRID) && !store && !red)
            rc = canon_bad(msg, cap, "stage %u (%s) neither stores nor reduces", s, dom);
        else if (st->domain == CANON_DOM_SCALAR && (store || red))
            rc = canon_bad(msg, cap, "stage %u (SCALAR) has a sink: its value is its result", s);
        else if (st->domain == CANON_DOM_SCALAR && (uses[st->root] & CANON_USES_LOAD))
            rc = canon_bad(msg, cap, "stage %u (SCALAR) loads an array", s);
        else if (st->domain == CANON_DOM_CONTRACT && (!store || st->reduce != CANON_RED_SUM))
            rc = canon_bad(msg, cap, "stage %u (CONTRACT) must store a sum", s);
    }
    if (rc == 0 && grid && other)
        rc = canon_bad(msg, cap, "a program with GRID stages has RANGE or CONTRACT stages too");
    if (rc == 0 && p->result_stage != CANON_NONE &&
        (p->result_stage >= p->n_stages || !canon_has_scalar(&p->stages[p->result_stage])))
        rc = canon_bad(msg, cap, "the result is stage %u, which has no scalar",
                       p->result_stage);
    if (!work)
        free(uses);
    return rc;
}
