/*
 * canon/ops.c — the op table (ops.def) and the node-kind table (prims.def) as data.
 * Both are X-macro views of their .def files, so their rows cannot drift out of order.
 */
#include "canon.h"

static const canon_op_info canon_op_table[] = {
#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    {CANON_OP_##name, #name, CANON_FAM_##family, n_in, n_par, CANON_RED_##reduce, min_n, math},
#include "ops.def"
#undef HG_OP
};

_Static_assert(sizeof canon_op_table / sizeof canon_op_table[0] == CANON_OP_COUNT,
               "canon_op_table must have one row per ops.def entry");

/* Row `op` of the table (row i describes op i); NULL when op is out of range. */
const canon_op_info *canon_op_get(canon_op op) {
    if ((unsigned)op >= (unsigned)CANON_OP_COUNT)
        return NULL;
    return &canon_op_table[op];
}

/* prims.def's role column as flag bits. */
#define CANON_ROLE_LEAF CANON_LEAF
#define CANON_ROLE_MAP 0
#define CANON_ROLE_SUGAR CANON_SUGAR

const canon_kind_info canon_kinds[CANON_KIND_COUNT] = {
#define CANON_PRIM(NAME, code, role, arity, flags, cost, syntax, spelling, lo, hi, sem)      \
    [CANON_##NAME] = {#NAME, code, arity, CANON_ROLE_##role | (flags), CANON_COST_##cost,     \
                      CANON_SYN_##syntax, spelling, (float)(lo), (float)(hi), sem},
#include "prims.def"
#undef CANON_PRIM
};

