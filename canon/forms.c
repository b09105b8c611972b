/*
 * canon/forms.c — the pre-rewrite form of every op: one builder per family, fed by the
 * `body` and `final` columns of ops.def expanded into builder calls.
 */
#include <math.h>

#include "canon.h"

/* The expression vocabulary of ops.def's body/final columns, as builder calls on `p`.
 * Argument evaluation order is unspecified in C, so node numbering here is arbitrary;
 * canon_rewrite renumbers canonically. */
#define X0 canon_leaf(p, CANON_LOAD, 0)
#define X1 canon_leaf(p, CANON_LOAD, 1)
#define P0 canon_leaf(p, CANON_PARAM, 0)
#define P1 canon_leaf(p, CANON_PARAM, 1)
#define K(c) canon_const(p, (c))
#define ACC0 canon_leaf(p, CANON_ACC, 0)
#define LEN canon_leaf(p, CANON_LEN, 0)
#define NONE CANON_NONE
#define FORMS_UN(kind, x) canon_node_add(p, CANON_##kind, (x), CANON_NONE, CANON_NONE)
#define FORMS_BIN(kind, x, y) canon_node_add(p, CANON_##kind, (x), (y), CANON_NONE)
#define NEG(x) FORMS_UN(NEG, x)
#define ABS(x) FORMS_UN(ABS, x)
#define EXP(x) FORMS_UN(EXP, x)
#define LOG(x) FORMS_UN(LOG, x)
#define TANH(x) FORMS_UN(TANH, x)
#define RELU(x) FORMS_UN(RELU, x)
#define SIGMOID(x) FORMS_UN(SIGMOID, x)
#define GELU(x) FORMS_UN(GELU, x)
#define ADD(x, y) FORMS_BIN(ADD, x, y)
#define SUB(x, y) FORMS_BIN(SUB, x, y)
#define MUL(x, y) FORMS_BIN(MUL, x, y)
#define DIV(x, y) FORMS_BIN(DIV, x, y)
#define MIN(x, y) FORMS_BIN(MIN, x, y)
#define MAX(x, y) FORMS_BIN(MAX, x, y)
#define CLIP(x, lo, hi) canon_node_add(p, CANON_CLIP, (x), (lo), (hi))

/* Root of op's per-element `body` expression, added to p (CANON_NONE on failure). */
static uint32_t forms_body(canon_program *p, canon_op op) {
    switch (op) {
#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    case CANON_OP_##name:                                                                   \
        return body;
#include "ops.def"
#undef HG_OP
    default:
        return CANON_NONE;
    }
}

/* Root of op's scalar `final` expression (LOSS rows), or CANON_NONE when it has none. */
static uint32_t forms_final(canon_program *p, canon_op op) {
    switch (op) {
#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    case CANON_OP_##name:                                                                   \
        return final;
#include "ops.def"
#undef HG_OP
    default:
        return CANON_NONE;
    }
}

/* Adds the stages of `info`'s family to p, which already has its slots and parameters.
 * Returns 0 on success, -1 when a node or stage could not be added. */
static int forms_stages(canon_program *p, const canon_op_info *info) {
    const uint32_t out = info->n_in; /* array result slot of MAP/SOFTMAX/CONTRACT */
    uint32_t root, s;
    switch (info->family) {
    case CANON_FAM_MAP:
        s = canon_stage_add(p, CANON_DOM_RANGE, forms_body(p, info->op), out, CANON_RED_NONE);
        break;
    case CANON_FAM_REDUCE:
        s = canon_stage_add(p, CANON_DOM_RANGE, forms_body(p, info->op), CANON_NONE,
                            info->reduce);
        p->result_stage = s;
        break;
    case CANON_FAM_LOSS:
        s = canon_stage_add(p, CANON_DOM_RANGE, forms_body(p, info->op), CANON_NONE,
                            info->reduce);
        if (s == CANON_NONE)
            return -1;
        s = canon_stage_add(p, CANON_DOM_SCALAR, forms_final(p, info->op), CANON_NONE,
                            CANON_RED_NONE);
        p->result_stage = s;
        break;
    case CANON_FAM_SOFTMAX: /* max x; y = exp(x - max), sum y; y = y / sum */
        s = canon_stage_add(p, CANON_DOM_RANGE, forms_body(p, info->op), CANON_NONE,
                            CANON_RED_MAX);
        if (s == CANON_NONE)
            return -1;
        root = EXP(SUB(X0, canon_leaf(p, CANON_ACC, 0)));
        s = canon_stage_add(p, CANON_DOM_RANGE, root, out, CANON_RED_SUM);
        if (s == CANON_NONE)
            return -1;
        /* a NaN output is the default NaN: which of two NaN operands an instruction
         * propagates is the engine's choice, so the value of y / sum is not, for NaNs */
        root = DIV(canon_leaf(p, CANON_LOAD, out), canon_leaf(p, CANON_ACC, 1));
        root = canon_node_add(p, CANON_WHERE, canon_node_add(p, CANON_NE, root, root, CANON_NONE),
                              K(NAN), root);
        s = canon_stage_add(p, CANON_DOM_RANGE, root, out, CANON_RED_NONE);
        break;
    case CANON_FAM_CONTRACT:
        s = canon_stage_add(p, CANON_DOM_CONTRACT, forms_body(p, info->op), out,
                            info->reduce);
        break;
    default:
        return -1;
    }
    return s == CANON_NONE || p->oom ? -1 : 0;
}

/* The pre-rewrite form of `op` (caller frees); NULL for an unknown op or when memory runs
 * out. */
canon_program *canon_form_build(canon_op op) {
    const canon_op_info *info = canon_op_get(op);
    if (!info)
        return NULL;
    uint32_t n_slots = info->n_in;
    if (info->family != CANON_FAM_REDUCE && info->family != CANON_FAM_LOSS)
        n_slots++; /* the array result */
    canon_program *p = canon_program_new(n_slots, info->n_par);
    if (!p)
        return NULL;
    p->op = op;
    if (forms_stages(p, info) != 0) {
        canon_program_free(p);
        return NULL;
    }
    return p;
}
