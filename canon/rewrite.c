/*
 * canon/rewrite.c — normal forms, their hash, and the per-process form cache.
 *
 *   input program (any node order, sugar allowed)
 *     1. rebuild bottom-up (topological order) into a work program; every node goes
 *        through rw_make, which applies the rules below until none fires, so each node
 *        of the work program is already in normal form
 *     2. collect the nodes reachable from the stage roots in post-order (operands in
 *        their canonical order), which both drops garbage and renumbers canonically
 *     3. hash the result (canon_hash)
 *
 *     3. serialize it in stable codes and hash that (canon_identify)
 *
 * Rules (all bit-exact in IEEE float32; sugar as prims.def describes it):
 *   SUB(a,b) -> ADD(a, NEG(b))       GT(a,b) -> LT(b,a)       GE(a,b) -> LE(b,a)
 *   AND(a,b) -> MUL(NE(a,0), NE(b,0))     OR(a,b) -> MAX(NE(a,0), NE(b,0))
 *   NOT(a) -> EQ(a, 0)               RELU(x) -> MAX(x, 0)     CLIP(x,lo,hi) -> MIN(MAX(x,lo),hi)
 *   SIGMOID(x) -> DIV(1, ADD(1, EXP(NEG(x))))
 *   GELU(x) -> MUL(MAX(x, -FLT_MAX), SIGMOID(MUL(c, ADD(x, MUL(0.044715, MUL(x, MUL(x, x)))))))
 *   NEG(NEG(x)) -> x                 MUL(x,1) -> x            DIV(x,1) -> x
 *   DIV(x, c) -> MUL(x, 1/c) when c = +-2^e and 1/c is a normal float
 *   POW(x, 2) -> MUL(x, x)   POW(x, 1) -> x   POW(x, 0) -> 1   POW(x, -1) -> DIV(1, x)
 *   POW(x, 0.5) -> SQRT(x)   (the language's definition of x**0.5, as numexpr and NumPy's
 *                             fast path: unlike powf, sqrt(-0) = -0 and sqrt(-Inf) = NaN)
 *   NE(f, 0) -> f and WHERE(NE(c, 0), a, b) -> WHERE(c, a, b), f a comparison (0 or 1)
 *   WHERE(c, a, a) -> a              WHERE(CONST c, a, b) -> c != 0 ? a : b
 *   all operands CONST -> CONST, evaluated with canon/scalar.h (NaN and -0 included)
 *   commutative operands ordered by a structural hash of their subtrees (stable codes)
 * Deliberately absent: x+0 -> x (-0), x*0 -> 0 (NaN, Inf), x-x -> 0, reassociation.
 */
#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "scalar.h"

/* The work program plus a structural hash for each of its nodes. */
typedef struct {
    canon_program *q;
    uint64_t *sh;   /* sh[i]: hash of the subtree rooted at node i (numbering-free) */
    uint32_t n_sh;  /* nodes of q whose sh is known */
    uint32_t cap_sh;
    int oom;
} rw_ctx;

#define RW_FNV_OFFSET 0xcbf29ce484222325ull
#define RW_FNV_PRIME 0x100000001b3ull

/* Folds the `len` bytes of `v` (little-endian) into FNV-1a state h. */
static uint64_t rw_fnv(uint64_t h, uint64_t v, unsigned len) {
    for (unsigned i = 0; i < len; i++) {
        h ^= (v >> (8 * i)) & 0xffu;
        h *= RW_FNV_PRIME;
    }
    return h;
}

/* Brings ctx->sh up to date with the nodes of ctx->q; -1 when memory runs out. */
static int rw_sync_hashes(rw_ctx *ctx) {
    const canon_program *q = ctx->q;
    if (q->n_nodes > ctx->cap_sh) {
        uint32_t cap = q->cap_nodes;
        uint64_t *sh = realloc(ctx->sh, (size_t)cap * sizeof *sh);
        if (!sh)
            return -1;
        ctx->sh = sh;
        ctx->cap_sh = cap;
    }
    for (; ctx->n_sh < q->n_nodes; ctx->n_sh++) {
        const canon_node *n = &q->nodes[ctx->n_sh];
        uint64_t h = rw_fnv(RW_FNV_OFFSET, canon_kinds[n->kind].code, 2);
        h = rw_fnv(h, n->arg, 4);
        h = rw_fnv(h, canon_f2u(n->value), 4);
        for (unsigned k = 0; k < n->arity; k++)
            h = rw_fnv(h, ctx->sh[n->op[k]], 8);
        ctx->sh[ctx->n_sh] = h;
    }
    return 0;
}

/* Operand pairs rw_cmp follows on 64-bit structural-hash collisions before it settles for
 * node numbering (which is deterministic, only not independent of the input's order). */
#define RW_CMP_DEPTH 32

/* Total order on subtrees of q, independent of node numbering: by structural hash, then
 * (only on a 64-bit collision) by kind, arg, constant bits and operands, recursively to
 * depth RW_CMP_DEPTH. */
static int rw_cmp(const rw_ctx *ctx, uint32_t a, uint32_t b, unsigned depth) {
    if (a == b)
        return 0;
    if (ctx->sh[a] != ctx->sh[b])
        return ctx->sh[a] < ctx->sh[b] ? -1 : 1;
    if (depth >= RW_CMP_DEPTH)
        return a < b ? -1 : 1;
    const canon_node *x = &ctx->q->nodes[a], *y = &ctx->q->nodes[b];
    uint16_t cx = canon_kinds[x->kind].code, cy = canon_kinds[y->kind].code;
    if (cx != cy)
        return cx < cy ? -1 : 1;
    if (x->arg != y->arg)
        return x->arg < y->arg ? -1 : 1;
    if (canon_f2u(x->value) != canon_f2u(y->value))
        return canon_f2u(x->value) < canon_f2u(y->value) ? -1 : 1;
    for (unsigned k = 0; k < x->arity; k++) {
        int c = rw_cmp(ctx, x->op[k], y->op[k], depth + 1);
        if (c)
            return c;
    }
    return 0; /* unreachable for distinct hash-consed nodes */
}

/* True when node i of q is the constant with bit pattern `bits`. */
static int rw_is_const(const canon_program *q, uint32_t i, uint32_t bits) {
    return q->nodes[i].kind == CANON_CONST && canon_f2u(q->nodes[i].value) == bits;
}

/* True when node i of q is a constant +-2^e whose reciprocal is a normal float. */
static int rw_is_pow2(const canon_program *q, uint32_t i) {
    uint32_t u = canon_f2u(q->nodes[i].value), e = (u >> 23) & 0xffu;
    return q->nodes[i].kind == CANON_CONST && (u & 0x007fffffu) == 0 && e >= 1 && e <= 253;
}

/* True when node i of q is a comparison (its value is 0 or 1): a computed kind that the
 * language writes as a comparison operator (prims.def). */
static int rw_is_flag(const canon_program *q, uint32_t i) {
    const canon_kind_info *k = &canon_kinds[q->nodes[i].kind];
    return k->syntax == CANON_SYN_CMP && !(k->flags & (CANON_SUGAR | CANON_LEAF));
}

static uint32_t rw_make(rw_ctx *ctx, canon_kind kind, uint32_t a, uint32_t b, uint32_t c);

/* Shorthands for rw_make inside the rules. */
#define RW1(kind, x) rw_make(ctx, CANON_##kind, (x), CANON_NONE, CANON_NONE)
#define RW2(kind, x, y) rw_make(ctx, CANON_##kind, (x), (y), CANON_NONE)
#define RWK(v) canon_const(ctx->q, (v))
#define RW_ONE 0x3f800000u

/* The normal form of kind(a, b, c) over normal-form operands, added to the work program:
 * applies the first rule that fires, recursively, and interns the node when none does.
 * CANON_NONE once anything failed (ctx->q->oom or ctx->oom set). */
static uint32_t rw_make(rw_ctx *ctx, canon_kind kind, uint32_t a, uint32_t b, uint32_t c) {
    canon_program *q = ctx->q;
    if (q->oom || ctx->oom)
        return CANON_NONE;
    switch (kind) {
    case CANON_SUB: return RW2(ADD, a, RW1(NEG, b));
    case CANON_GT: return RW2(LT, b, a);
    case CANON_GE: return RW2(LE, b, a);
    case CANON_AND: return RW2(MUL, RW2(NE, a, RWK(0.0f)), RW2(NE, b, RWK(0.0f)));
    case CANON_OR: return RW2(MAX, RW2(NE, a, RWK(0.0f)), RW2(NE, b, RWK(0.0f)));
    case CANON_NOT: return RW2(EQ, a, RWK(0.0f));
    case CANON_RELU: return RW2(MAX, a, RWK(0.0f));
    case CANON_CLIP: return RW2(MIN, RW2(MAX, a, b), c);
    case CANON_SIGMOID: return RW2(DIV, RWK(1.0f), RW2(ADD, RWK(1.0f), RW1(EXP, RW1(NEG, a))));
    case CANON_GELU: {
        uint32_t cube = RW2(MUL, a, RW2(MUL, a, a));
        uint32_t u = RW2(MUL, RWK(1.5957691216f), RW2(ADD, a, RW2(MUL, RWK(0.044715f), cube)));
        return RW2(MUL, RW2(MAX, a, RWK(-FLT_MAX)), RW1(SIGMOID, u));
    }
    case CANON_NEG:
        if (q->nodes[a].kind == CANON_NEG)
            return q->nodes[a].op[0];
        break;
    case CANON_MUL:
        if (rw_is_const(q, b, RW_ONE)) /* x * 1 */
            return a;
        if (rw_is_const(q, a, RW_ONE))
            return b;
        break;
    case CANON_DIV:
        if (rw_is_const(q, b, RW_ONE)) /* x / 1 */
            return a;
        if (rw_is_pow2(q, b) && q->nodes[a].kind != CANON_CONST)
            return RW2(MUL, a, RWK(1.0f / q->nodes[b].value));
        break;
    case CANON_POW:
        if (rw_is_const(q, b, 0x40000000u)) /* 2 */
            return RW2(MUL, a, a);
        if (rw_is_const(q, b, 0x3f000000u)) /* 0.5 */
            return RW1(SQRT, a);
        if (rw_is_const(q, b, RW_ONE))
            return a;
        if (rw_is_const(q, b, 0xbf800000u)) /* -1 */
            return RW2(DIV, RWK(1.0f), a);
        if (rw_is_const(q, b, 0u) || rw_is_const(q, b, 0x80000000u)) /* +-0 */
            return RWK(1.0f);
        break;
    case CANON_NE:
        if (rw_is_flag(q, a) && rw_is_const(q, b, 0u))
            return a;
        if (rw_is_flag(q, b) && rw_is_const(q, a, 0u))
            return b;
        break;
    case CANON_WHERE:
        if (b == c)
            return b;
        if (q->nodes[a].kind == CANON_CONST)
            return canon_where_f32(q->nodes[a].value, 1.0f, 0.0f) != 0.0f ? b : c;
        if (q->nodes[a].kind == CANON_NE) { /* operands in canonical order: either is 0 */
            const uint32_t *o = q->nodes[a].op;
            if (rw_is_const(q, o[1], 0u))
                return rw_make(ctx, CANON_WHERE, o[0], b, c);
            if (rw_is_const(q, o[0], 0u))
                return rw_make(ctx, CANON_WHERE, o[1], b, c);
        }
        break;
    default:
        break;
    }
    const unsigned arity = canon_kinds[kind].arity;
    int all_const = arity >= 1;
    const uint32_t in[3] = {a, b, c};
    float v[3] = {0.0f, 0.0f, 0.0f};
    for (unsigned k = 0; k < arity; k++) {
        all_const &= q->nodes[in[k]].kind == CANON_CONST;
        v[k] = q->nodes[in[k]].value;
    }
    if (all_const)
        return RWK(canon_apply_f32(kind, v[0], v[1], v[2]));
    if (canon_kinds[kind].flags & CANON_COMM) {
        if (rw_sync_hashes(ctx) != 0) {
            ctx->oom = 1;
            return CANON_NONE;
        }
        if (rw_cmp(ctx, a, b, 0) > 0) {
            uint32_t t = a;
            a = b;
            b = t;
        }
    }
    return canon_node_add(q, kind, a, b, c);
}

#undef RW1
#undef RW2
#undef RWK
#undef RW_ONE

/* Rebuilds p's nodes into ctx->q in normal form; map[i] receives the image of node i.
 * -1 on allocation failure or a malformed program (bad kind, operand >= own index). */
static int rw_rebuild(rw_ctx *ctx, const canon_program *p, uint32_t *map) {
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        const canon_node *n = &p->nodes[i];
        if (n->kind >= CANON_KIND_COUNT)
            return -1;
        uint32_t op[3] = {CANON_NONE, CANON_NONE, CANON_NONE};
        for (unsigned k = 0; k < canon_kinds[n->kind].arity; k++) {
            if (n->op[k] >= i)
                return -1;
            op[k] = map[n->op[k]];
        }
        if (n->kind == CANON_CONST)
            map[i] = canon_const(ctx->q, n->value);
        else if (canon_kinds[n->kind].flags & CANON_LEAF)
            map[i] = canon_leaf(ctx->q, (canon_kind)n->kind, n->arg);
        else
            map[i] = rw_make(ctx, (canon_kind)n->kind, op[0], op[1], op[2]);
        if (map[i] == CANON_NONE)
            return -1;
    }
    return 0;
}

/* Copies the nodes of q reachable from `root` into r in post-order (operands first, in
 * operand order), recording images in map (CANON_NONE = not copied yet).  `stack` has
 * room for q->n_nodes entries.  -1 when r runs out of memory. */
static int rw_collect(const canon_program *q, uint32_t root, canon_program *r,
                      uint32_t *map, uint32_t *stack) {
    uint32_t depth = 0;
    if (map[root] == CANON_NONE)
        stack[depth++] = root;
    while (depth > 0) {
        uint32_t i = stack[depth - 1];
        const canon_node *n = &q->nodes[i];
        unsigned k = 0;
        while (k < n->arity && map[n->op[k]] != CANON_NONE)
            k++;
        if (k < n->arity) { /* the stack is a path of the DAG, so it never repeats a node */
            stack[depth++] = n->op[k];
            continue;
        }
        depth--;
        if (n->kind == CANON_CONST)
            map[i] = canon_const(r, n->value);
        else if (canon_kinds[n->kind].flags & CANON_LEAF)
            map[i] = canon_leaf(r, (canon_kind)n->kind, n->arg);
        else
            map[i] = canon_node_add(r, (canon_kind)n->kind, map[n->op[0]],
                                    n->arity > 1 ? map[n->op[1]] : CANON_NONE,
                                    n->arity > 2 ? map[n->op[2]] : CANON_NONE);
        if (map[i] == CANON_NONE)
            return -1;
    }
    return 0;
}

/* A new program: the normal form of `p` (p unchanged), with nodes_before and its identity
 * set.
 * NULL when memory runs out, or when p is unusable (p->oom) or malformed. */
canon_program *canon_rewrite(const canon_program *p) {
    if (!p || p->oom || p->n_stages > CANON_MAX_STAGES)
        return NULL;
    rw_ctx ctx = {.q = canon_program_new(p->n_slots, p->n_params)};
    canon_program *r = canon_program_new(p->n_slots, p->n_params);
    uint32_t *map = malloc(((size_t)p->n_nodes + 1) * sizeof *map);
    uint32_t *stack = NULL, *map2 = NULL;
    int ok = ctx.q && r && map && rw_rebuild(&ctx, p, map) == 0;
    if (ok) {
        map2 = malloc(((size_t)ctx.q->n_nodes + 1) * sizeof *map2);
        stack = malloc(((size_t)ctx.q->n_nodes + 1) * sizeof *stack);
        ok = map2 && stack;
    }
    if (ok) {
        for (uint32_t i = 0; i < ctx.q->n_nodes; i++)
            map2[i] = CANON_NONE;
        for (uint32_t s = 0; ok && s < p->n_stages; s++) {
            const canon_stage *st = &p->stages[s];
            ok = st->root < p->n_nodes &&
                 rw_collect(ctx.q, map[st->root], r, map2, stack) == 0 &&
                 canon_stage_add(r, st->domain, map2[map[st->root]], st->store_slot,
                                 st->reduce) != CANON_NONE;
        }
    }
    free(stack);
    free(map2);
    free(map);
    free(ctx.sh);
    canon_program_free(ctx.q);
    if (!ok || r->oom) {
        canon_program_free(r);
        return NULL;
    }
    r->result_stage = p->result_stage;
    r->op = p->op;
    r->nodes_before = p->n_nodes;
    if (canon_identify(r) != 0) {
        canon_program_free(r);
        return NULL;
    }
    return r;
}

/* ---- identity ----------------------------------------------------------------------- *
 * The serialized form (version RW_IDENT_VERSION), little-endian:
 *   "HGF" version | u32 n_slots, n_params, result_stage, n_stages, n_nodes
 *   per stage: u8 domain, u8 reduce, u32 root, u32 store_slot   (canon_domain / reduce codes)
 *   per node:  u16 prims.def code, then CONST: u32 value bits; other leaves: u32 arg;
 *              computed kinds: u32 operand per arity (a code fixes its kind's arity)
 * Node order is the normal form's canonical numbering, so equal forms serialize equally. */
#define RW_IDENT_VERSION 1

/* Bytes rw_serialize may write for p. */
static size_t rw_ident_bound(const canon_program *p) {
    return 4 + 5 * 4 + (size_t)CANON_MAX_STAGES * 10 + (size_t)p->n_nodes * (2 + 3 * 4);
}

/* Writes the `len` low bytes of v at *at, little-endian, and advances it. */
static void rw_put(uint8_t **at, uint64_t v, unsigned len) {
    for (unsigned i = 0; i < len; i++)
        *(*at)++ = (uint8_t)(v >> (8 * i));
}

/* Serializes p into out (rw_ident_bound(p) bytes of room); returns the length. */
static size_t rw_serialize(const canon_program *p, uint8_t *out) {
    uint8_t *at = out;
    const uint32_t n_stages = p->n_stages < CANON_MAX_STAGES ? p->n_stages : CANON_MAX_STAGES;
    rw_put(&at, 'H' | 'G' << 8 | 'F' << 16 | (uint32_t)RW_IDENT_VERSION << 24, 4);
    rw_put(&at, p->n_slots, 4);
    rw_put(&at, p->n_params, 4);
    rw_put(&at, p->result_stage, 4);
    rw_put(&at, n_stages, 4);
    rw_put(&at, p->n_nodes, 4);
    for (uint32_t s = 0; s < n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        rw_put(&at, (uint32_t)st->domain, 1);
        rw_put(&at, (uint32_t)st->reduce, 1);
        rw_put(&at, st->root, 4);
        rw_put(&at, st->store_slot, 4);
    }
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        const canon_node *n = &p->nodes[i];
        const canon_kind_info *k = &canon_kinds[n->kind < CANON_KIND_COUNT ? n->kind : 0];
        rw_put(&at, n->kind < CANON_KIND_COUNT ? k->code : 0xffffu, 2);
        if (n->kind == CANON_CONST)
            rw_put(&at, canon_f2u(n->value), 4);
        else if (k->flags & CANON_LEAF)
            rw_put(&at, n->arg, 4);
        else
            for (unsigned o = 0; o < k->arity && o < 3; o++)
                rw_put(&at, n->op[o], 4);
    }
    return (size_t)(at - out);
}

/* FNV-1a of len bytes; never 0. */
static uint64_t rw_bytes_hash(const uint8_t *b, size_t len) {
    uint64_t h = RW_FNV_OFFSET;
    for (size_t i = 0; i < len; i++)
        h = rw_fnv(h, b[i], 1);
    return h ? h : 1;
}

int canon_identify(canon_program *p) {
    uint8_t *b = malloc(rw_ident_bound(p));
    if (!b)
        return -1;
    size_t len = rw_serialize(p, b);
    free(p->ident);
    p->ident = b;
    p->ident_len = (uint32_t)len;
    p->hash = rw_bytes_hash(b, len);
    return 0;
}

uint64_t canon_hash(const canon_program *p) {
    uint8_t *b = malloc(rw_ident_bound(p));
    if (!b)
        return 0;
    uint64_t h = rw_bytes_hash(b, rw_serialize(p, b));
    free(b);
    return h;
}

int canon_same_form(const canon_program *a, const canon_program *b) {
    return a->ident && b->ident && a->ident_len == b->ident_len &&
           memcmp(a->ident, b->ident, a->ident_len) == 0;
}

/* ---- GRID twins ------------------------------------------------------------------- */

canon_program *canon_grid_twin(const canon_program *p) {
    if (!p || !p->ident)
        return NULL;
    for (uint32_t s = 0; s < p->n_stages; s++)
        if (p->stages[s].domain != CANON_DOM_RANGE && p->stages[s].domain != CANON_DOM_SCALAR)
            return NULL;
    canon_program *q = canon_program_new(p->n_slots, p->n_params);
    if (!q)
        return NULL;
    q->nodes_before = p->nodes_before;
    q->op = p->op;
    q->result_stage = p->result_stage;
    for (uint32_t i = 0; i < p->n_nodes && !q->oom; i++) { /* a normal form: copy as is */
        const canon_node *n = &p->nodes[i];
        if (n->kind == CANON_CONST)
            canon_const(q, n->value);
        else if (canon_kinds[n->kind].flags & CANON_LEAF)
            canon_leaf(q, (canon_kind)n->kind, n->arg);
        else
            canon_node_add(q, (canon_kind)n->kind, n->op[0], n->op[1], n->op[2]);
    }
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        canon_stage_add(q, st->domain == CANON_DOM_RANGE ? CANON_DOM_GRID : st->domain, st->root,
                        st->store_slot, st->reduce);
    }
    if (q->oom || q->n_nodes != p->n_nodes || q->n_stages != p->n_stages ||
        canon_identify(q) != 0) {
        canon_program_free(q);
        return NULL;
    }
    return q;
}

/* Builds canon_stage_form's program of stage s (see canon.h); NULL when it cannot. */
static canon_program *rw_stage_build(const canon_program *p, uint32_t s) {
    const uint32_t len_param = p->n_params + p->n_stages;
    const canon_stage *st = &p->stages[s];
    if (s >= p->n_stages || len_param >= CANON_MAX_PARAMS ||
        (st->domain != CANON_DOM_RANGE && st->domain != CANON_DOM_SCALAR))
        return NULL;
    canon_program *q = canon_program_new(p->n_slots, len_param + 1);
    uint32_t *map = malloc((p->n_nodes ? p->n_nodes : 1) * sizeof *map);
    if (!q || !map) {
        canon_program_free(q);
        free(map);
        return NULL;
    }
    q->op = p->op;
    for (uint32_t i = 0; i <= st->root && i < p->n_nodes && !q->oom; i++) {
        const canon_node *n = &p->nodes[i];
        if (n->kind == CANON_CONST)
            map[i] = canon_const(q, n->value);
        else if (n->kind == CANON_ACC)
            map[i] = canon_leaf(q, CANON_PARAM, p->n_params + n->arg);
        else if (n->kind == CANON_LEN)
            map[i] = canon_leaf(q, CANON_PARAM, len_param);
        else if (canon_kinds[n->kind].flags & CANON_LEAF)
            map[i] = canon_leaf(q, (canon_kind)n->kind, n->arg);
        else
            map[i] = canon_node_add(q, (canon_kind)n->kind, map[n->op[0]],
                                    canon_kinds[n->kind].arity > 1 ? map[n->op[1]] : 0,
                                    canon_kinds[n->kind].arity > 2 ? map[n->op[2]] : 0);
    }
    int has_scalar = st->domain == CANON_DOM_SCALAR || st->reduce != CANON_RED_NONE;
    if (!q->oom && st->root < p->n_nodes)
        canon_stage_add(q, st->domain, map[st->root], st->store_slot, st->reduce);
    q->result_stage = has_scalar ? 0 : CANON_NONE;
    free(map);
    canon_program *r = q->oom || q->n_stages != 1 ? NULL : canon_rewrite(q);
    canon_program_free(q);
    if (r && r->oom) {
        canon_program_free(r);
        r = NULL;
    }
    return r;
}

const canon_program *canon_stage_form(const canon_program *p, uint32_t s) {
    if (!p || !p->ident || s >= p->n_stages || s >= CANON_MAX_STAGES)
        return NULL;
    canon_program *mine = atomic_load(&((canon_program *)p)->staged[s]);
    if (mine)
        return mine;
    canon_program *built = rw_stage_build(p, s), *none = NULL;
    if (!built)
        return NULL;
    if (!atomic_compare_exchange_strong(&((canon_program *)p)->staged[s], &none, built)) {
        canon_program_free(built); /* another thread's build won */
        return none;
    }
    return built;
}

/* ---- the per-process cache of normal forms ---------------------------------------- */
static pthread_once_t rw_forms_once = PTHREAD_ONCE_INIT;
static canon_program *rw_forms[CANON_OP_COUNT];
static canon_program *rw_grid_forms[CANON_OP_COUNT];

/* Builds the normal form of every op and its GRID twin; an op whose build runs out of
 * memory stays NULL. */
static void rw_forms_init(void) {
    for (unsigned op = 0; op < CANON_OP_COUNT; op++) {
        canon_program *p = canon_form_build((canon_op)op);
        rw_forms[op] = canon_rewrite(p);
        canon_program_free(p);
        rw_grid_forms[op] = canon_grid_twin(rw_forms[op]);
    }
}

/* The normal form of `op`, built with all others on first use and kept for the process
 * (thread-safe, immutable); NULL for an unknown op or if its first build ran out of
 * memory. */
const canon_program *canon_form(canon_op op) {
    if ((unsigned)op >= (unsigned)CANON_OP_COUNT)
        return NULL;
    if (pthread_once(&rw_forms_once, rw_forms_init) != 0)
        return NULL;
    return rw_forms[op];
}

const canon_program *canon_grid_form(canon_op op) {
    if ((unsigned)op >= (unsigned)CANON_OP_COUNT)
        return NULL;
    if (pthread_once(&rw_forms_once, rw_forms_init) != 0)
        return NULL;
    return rw_grid_forms[op];
}
