/*
 * runtime/interp.c — the block interpreter over canonical forms (see interp.h).
 *
 *   interp_run: per-thread scratch → check the whole program (nothing is written when it
 *   is malformed) → each stage by domain:
 *     RANGE     plan: reachable nodes, uniform (scalar) values, one scratch row per varying
 *               node (rows recycled after their last reader); then per block of
 *               INTERP_BLOCK: one kernel call per varying node, then the sinks
 *     SCALAR    the plan's uniform value of the root
 *     CONTRACT  C = 0, then C[i, j..] += A[i,p] * B[p, j..] over panels of rows
 *     STRIDED   odometer over the outer dimensions, the innermost one as a tight loop
 *
 * Kernels run over a multiple of INTERP_VEC elements on restrict-qualified rows: that is
 * what gcc's -O2 ("very cheap") vectorizer needs to vectorize them without an epilogue.
 * A partial last block therefore reads its loads from zero-padded copies.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../canon/scalar.h"
#include "interp.h"

#define INTERP_VEC 16   /* floats per 64-byte vector; kernel lengths are multiples of it */
#define INTERP_ALIGN 64
#define INTERP_PANEL_COLS 256 /* CONTRACT: columns of C per panel (4 rows stay in L1) */

_Static_assert(INTERP_BLOCK % INTERP_VEC == 0, "INTERP_BLOCK must be a multiple of INTERP_VEC");

/* The compute kinds the interpreter runs, by arity (one list for kernels and checks). */
#define INTERP_UNARY(X) X(NEG) X(ABS) X(EXP) X(LOG) X(TANH)
#define INTERP_BINARY(X) X(ADD) X(MUL) X(DIV) X(MIN) X(MAX)

/* ---- float32 semantics ------------------------------------------------------------------ */

/* acc combined with x by a reduction sink (SUM, MIN or MAX). */
static inline float interp_combine(canon_reduce red, float acc, float x) {
    switch (red) {
    case CANON_RED_MIN:
        return canon_min_f32(acc, x);
    case CANON_RED_MAX:
        return canon_max_f32(acc, x);
    default:
        return acc + x;
    }
}

/* The identity of a reduction sink: SUM 0, MIN +Inf, MAX -Inf. */
static float interp_identity(canon_reduce red) {
    return red == CANON_RED_MIN ? INFINITY : red == CANON_RED_MAX ? -INFINITY : 0.0f;
}

/* ---- block kernels ---------------------------------------------------------------------- */

/* d[i] = kind(a[i]) for i < len; len is a multiple of INTERP_VEC, d does not overlap a. */
static void interp_unary(canon_kind kind, float *restrict d, const float *restrict a,
                         size_t len) {
    len &= ~(size_t)(INTERP_VEC - 1); /* states the contract to the vectorizer */
    switch (kind) {
#define INTERP_U(K)                                                                       \
    case CANON_##K:                                                                       \
        for (size_t i = 0; i < len; i++)                                                  \
            d[i] = canon_apply_f32(CANON_##K, a[i], 0.0f);                                \
        break;
        INTERP_UNARY(INTERP_U)
#undef INTERP_U
    default:
        break;
    }
}

/* d[i] = kind(x_i, y_i) for i < len (a multiple of INTERP_VEC): x_i is a[i], or the scalar
 * as when a is NULL; likewise y_i from b / bs (not both NULL).  d overlaps neither row. */
static void interp_binary(canon_kind kind, float *restrict d, const float *restrict a,
                          float as, const float *restrict b, float bs, size_t len) {
    len &= ~(size_t)(INTERP_VEC - 1);
    switch (kind) {
#define INTERP_B(K)                                                                       \
    case CANON_##K:                                                                       \
        if (a && b)                                                                       \
            for (size_t i = 0; i < len; i++)                                              \
                d[i] = canon_apply_f32(CANON_##K, a[i], b[i]);                            \
        else if (a)                                                                       \
            for (size_t i = 0; i < len; i++)                                              \
                d[i] = canon_apply_f32(CANON_##K, a[i], bs);                              \
        else                                                                              \
            for (size_t i = 0; i < len; i++)                                              \
                d[i] = canon_apply_f32(CANON_##K, as, b[i]);                              \
        break;
        INTERP_BINARY(INTERP_B)
#undef INTERP_B
    default:
        break;
    }
}

/* The reduction of x[0..len) by `red`: INTERP_VEC independent lanes (float), folded
 * pairwise, then the remainder; the identity when len = 0. */
static float interp_reduce_block(canon_reduce red, const float *restrict x, size_t len) {
    float lane[INTERP_VEC];
    const size_t body = len & ~(size_t)(INTERP_VEC - 1);
    const float id = interp_identity(red);
    for (unsigned j = 0; j < INTERP_VEC; j++)
        lane[j] = id;
    switch (red) {
#define INTERP_R(R)                                                                       \
    case R:                                                                               \
        for (size_t i = 0; i < body; i += INTERP_VEC)                                     \
            for (unsigned j = 0; j < INTERP_VEC; j++)                                     \
                lane[j] = interp_combine(R, lane[j], x[i + j]);                           \
        break;
        INTERP_R(CANON_RED_SUM)
        INTERP_R(CANON_RED_MIN)
        INTERP_R(CANON_RED_MAX)
#undef INTERP_R
    default:
        break;
    }
    for (unsigned w = INTERP_VEC / 2; w > 0; w /= 2)
        for (unsigned j = 0; j < w; j++)
            lane[j] = interp_combine(red, lane[j], lane[j + w]);
    float r = lane[0];
    for (size_t i = body; i < len; i++)
        r = interp_combine(red, r, x[i]);
    return r;
}

/* ---- per-thread scratch ----------------------------------------------------------------- */

/* Per-node state of the stage being run. */
typedef struct {
    const float *in;  /* varying node: its values in the current block */
    float val;        /* uniform node: its value */
    uint32_t row;     /* varying compute node: its scratch row */
    uint32_t last;    /* index of the last node of the stage that reads it */
    uint8_t used;     /* reachable from the current stage's root */
    uint8_t varying;  /* depends on a LOAD (else uniform: one value for the stage) */
} interp_node;

/* Rows 0..CANON_MAX_SLOTS-1 hold zero-padded loads of a partial block, row INTERP_ROW_BCAST
 * a uniform root broadcast, and the rows after it the varying nodes. */
#define INTERP_ROW_BCAST CANON_MAX_SLOTS
#define INTERP_ROW_FIRST (CANON_MAX_SLOTS + 1)

typedef struct {
    float *rows;         /* INTERP_ROW_FIRST + cap rows of INTERP_BLOCK floats */
    interp_node *nodes;  /* cap entries; exec and free_rows live in the same allocation */
    uint32_t *exec;      /* cap entries: the varying compute nodes of a stage, in order */
    uint32_t *free_rows; /* cap entries: a stack of unused row numbers */
    uint32_t cap;        /* node capacity */
} interp_scratch;

static pthread_key_t interp_key;
static pthread_once_t interp_key_once = PTHREAD_ONCE_INIT;
static int interp_key_ok;

/* Frees a thread's scratch (the pthread key's destructor, run at thread exit). */
static void interp_scratch_free(void *ptr) {
    interp_scratch *s = ptr;
    free(s->rows);
    free(s->nodes);
    free(s);
}

static void interp_key_init(void) {
    interp_key_ok = pthread_key_create(&interp_key, interp_scratch_free) == 0;
}

/* The calling thread's scratch, grown to hold n_nodes nodes; NULL when memory (or a
 * thread key) cannot be had.  Kept for the thread's life and freed at its exit. */
static interp_scratch *interp_scratch_get(uint32_t n_nodes) {
    pthread_once(&interp_key_once, interp_key_init);
    if (!interp_key_ok)
        return NULL;
    interp_scratch *s = pthread_getspecific(interp_key);
    if (s && s->cap >= n_nodes)
        return s;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(interp_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    const uint32_t cap = n_nodes < 32 ? 32 : n_nodes;
    float *rows = aligned_alloc(INTERP_ALIGN, (size_t)(INTERP_ROW_FIRST + cap) *
                                                  INTERP_BLOCK * sizeof(float));
    interp_node *nodes = malloc(cap * (sizeof *nodes + 2 * sizeof(uint32_t)));
    if (!rows || !nodes) {
        free(rows);
        free(nodes);
        return NULL; /* the old, smaller scratch stays usable */
    }
    free(s->rows);
    free(s->nodes);
    s->rows = rows;
    s->nodes = nodes;
    s->exec = (uint32_t *)(nodes + cap);
    s->free_rows = s->exec + cap;
    s->cap = cap;
    return s;
}

/* The first element of scratch row number `row`. */
static float *interp_row(const interp_scratch *s, uint32_t row) {
    return s->rows + (size_t)row * INTERP_BLOCK;
}

/* ---- program checks --------------------------------------------------------------------- */

/* 1 when the kind is one the interpreter evaluates (leaves and compute kinds). */
static int interp_kind_ok(unsigned kind) {
    switch (kind) {
    case CANON_LOAD:
    case CANON_PARAM:
    case CANON_CONST:
    case CANON_ACC:
    case CANON_LEN:
#define INTERP_K(K) case CANON_##K:
        INTERP_UNARY(INTERP_K)
        INTERP_BINARY(INTERP_K)
#undef INTERP_K
        return 1;
    default:
        return 0;
    }
}

/* 1 when stage st of p yields a scalar that later stages can read with ACC. */
static int interp_has_scalar(const canon_stage *st) {
    return st->domain == CANON_DOM_SCALAR ||
           (st->domain == CANON_DOM_RANGE && st->reduce != CANON_RED_NONE);
}

/* 1 when `slot` is an array slot of p (CANON_NONE is not). */
static int interp_slot_ok(const canon_program *p, uint32_t slot) {
    return slot < p->n_slots;
}

/* Marks (s->nodes[].used) the nodes reachable from `root`; p's operands are checked. */
static void interp_mark(const canon_program *p, uint32_t root, interp_scratch *s) {
    for (uint32_t i = 0; i <= root; i++)
        s->nodes[i].used = 0;
    s->nodes[root].used = 1;
    for (uint32_t i = root + 1; i-- > 0;) {
        const canon_node *nd = &p->nodes[i];
        if (s->nodes[i].used)
            for (unsigned k = 0; k < nd->arity; k++)
                s->nodes[nd->op[k]].used = 1;
    }
}

/* 1 when node i is LOAD of `slot`. */
static int interp_is_load(const canon_program *p, uint32_t i, uint32_t slot) {
    return p->nodes[i].kind == CANON_LOAD && p->nodes[i].arg == slot;
}

/* Checks stage `si` of p (nodes already checked); 0 if runnable, -1 if malformed. */
static int interp_check_stage(const canon_program *p, uint32_t si, const canon_args *args,
                              interp_scratch *s) {
    const canon_stage *st = &p->stages[si];
    if (st->root >= p->n_nodes || st->reduce > CANON_RED_MAX)
        return -1;
    interp_mark(p, st->root, s);
    for (uint32_t i = 0; i <= st->root; i++) {
        const canon_node *nd = &p->nodes[i];
        if (!s->nodes[i].used)
            continue;
        if (nd->kind == CANON_ACC &&
            (nd->arg >= si || !interp_has_scalar(&p->stages[nd->arg])))
            return -1;
        if (nd->kind == CANON_LOAD && st->domain == CANON_DOM_SCALAR)
            return -1;
    }
    const canon_node *root = &p->nodes[st->root];
    int store_ok = interp_slot_ok(p, st->store_slot);
    switch (st->domain) {
    case CANON_DOM_RANGE:
        return store_ok || st->store_slot == CANON_NONE ? 0 : -1;
    case CANON_DOM_SCALAR:
        return st->store_slot == CANON_NONE && st->reduce == CANON_RED_NONE ? 0 : -1;
    case CANON_DOM_CONTRACT: /* MUL(LOAD(0), LOAD(1)) in either operand order, sum, store */
        if (root->kind != CANON_MUL || st->reduce != CANON_RED_SUM || !store_ok ||
            st->store_slot < 2)
            return -1;
        return (interp_is_load(p, root->op[0], 0) && interp_is_load(p, root->op[1], 1)) ||
                       (interp_is_load(p, root->op[0], 1) && interp_is_load(p, root->op[1], 0))
                   ? 0
                   : -1;
    case CANON_DOM_STRIDED:
        return root->kind == CANON_LOAD && st->reduce == CANON_RED_NONE && store_ok &&
                       st->store_slot != root->arg && args->strided.ndim <= CANON_MAX_DIMS
                   ? 0
                   : -1;
    default:
        return -1;
    }
}

/* Checks the whole program against the interpreter's contract; 0 or -1 (malformed). */
static int interp_check(const canon_program *p, const canon_args *args, interp_scratch *s) {
    if (p->oom || !p->nodes || p->n_stages > CANON_MAX_STAGES ||
        p->n_slots > CANON_MAX_SLOTS || p->n_params > CANON_MAX_PARAMS)
        return -1;
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        const canon_node *nd = &p->nodes[i];
        if (!interp_kind_ok(nd->kind) || nd->arity != canon_kinds[nd->kind].arity)
            return -1;
        for (unsigned k = 0; k < nd->arity; k++)
            if (nd->op[k] >= i)
                return -1;
        if ((nd->kind == CANON_LOAD && nd->arg >= p->n_slots) ||
            (nd->kind == CANON_PARAM && nd->arg >= p->n_params))
            return -1;
    }
    for (uint32_t si = 0; si < p->n_stages; si++)
        if (interp_check_stage(p, si, args, s) != 0)
            return -1;
    if (p->result_stage != CANON_NONE &&
        (p->result_stage >= p->n_stages || !interp_has_scalar(&p->stages[p->result_stage])))
        return -1;
    return 0;
}

/* ---- RANGE and SCALAR stages ------------------------------------------------------------- */

/* Plans stage `st` into s: marks reachable nodes, computes uniform values (leaves other
 * than LOAD, and nodes with only uniform operands), lists the varying compute nodes in
 * s->exec and gives each a row, recycling a row after its last reader.  Returns the
 * number of nodes in s->exec. */
static uint32_t interp_plan(const canon_program *p, const canon_stage *st,
                            const canon_args *args, const float *acc, interp_scratch *s) {
    const uint32_t root = st->root;
    uint32_t n_exec = 0;
    interp_mark(p, root, s);
    for (uint32_t i = 0; i <= root; i++) {
        const canon_node *nd = &p->nodes[i];
        interp_node *x = &s->nodes[i];
        if (!x->used)
            continue;
        x->in = NULL;
        x->varying = 0;
        x->last = i;
        switch (nd->kind) {
        case CANON_LOAD: /* its rows are set per block */
            x->varying = 1;
            continue;
        case CANON_PARAM:
            x->val = args->param[nd->arg];
            continue;
        case CANON_CONST:
            x->val = nd->value;
            continue;
        case CANON_ACC:
            x->val = acc[nd->arg];
            continue;
        case CANON_LEN:
            x->val = (float)args->n;
            continue;
        default:
            break;
        }
        const interp_node *a = &s->nodes[nd->op[0]];
        const interp_node *b = nd->arity > 1 ? &s->nodes[nd->op[1]] : NULL;
        if (!a->varying && !(b && b->varying)) {
            x->val = canon_apply_f32((canon_kind)nd->kind, a->val, b ? b->val : 0.0f);
            continue;
        }
        x->varying = 1;
        for (unsigned k = 0; k < nd->arity; k++)
            s->nodes[nd->op[k]].last = i;
        s->exec[n_exec++] = i;
    }
    uint32_t n_free = 0;
    for (uint32_t r = n_exec; r-- > 0;)
        s->free_rows[n_free++] = INTERP_ROW_FIRST + r;
    for (uint32_t e = 0; e < n_exec; e++) {
        const uint32_t i = s->exec[e];
        const canon_node *nd = &p->nodes[i];
        s->nodes[i].row = s->free_rows[--n_free];
        s->nodes[i].in = interp_row(s, s->nodes[i].row);
        for (unsigned k = 0; k < nd->arity; k++) {
            const uint32_t o = nd->op[k];
            const int computed = p->nodes[o].kind != CANON_LOAD && s->nodes[o].varying;
            if (computed && s->nodes[o].last == i && (k == 0 || o != nd->op[0]))
                s->free_rows[n_free++] = s->nodes[o].row;
        }
    }
    return n_exec;
}

/* Runs the RANGE stage `st` (planned into s, n_exec compute nodes) over [0, args->n):
 * stores its root and/or reduces it; *out_acc gets the reduced value (if any). */
static void interp_range(const canon_program *p, const canon_stage *st,
                         const canon_args *args, uint32_t n_exec, interp_scratch *s,
                         float *out_acc) {
    const uint64_t n = args->n;
    const uint32_t root = st->root;
    float *dst = st->store_slot != CANON_NONE ? args->slot[st->store_slot] : NULL;
    const int root_load = p->nodes[root].kind == CANON_LOAD;
    if (!s->nodes[root].varying) { /* uniform root: broadcast it once */
        float *b = interp_row(s, INTERP_ROW_BCAST);
        const size_t len = n < INTERP_BLOCK ? (size_t)n : INTERP_BLOCK;
        for (size_t i = 0; i < len; i++)
            b[i] = s->nodes[root].val;
        s->nodes[root].in = b;
    } else if (root_load && dst && st->reduce == CANON_RED_NONE) { /* a copy: memmove */
        const float *src = args->slot[p->nodes[root].arg];
        if (dst != src && n > 0)
            memmove(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    double sum = 0.0;
    float red = interp_identity(st->reduce);
    for (uint64_t off = 0; off < n; off += INTERP_BLOCK) {
        const size_t len = n - off < INTERP_BLOCK ? (size_t)(n - off) : INTERP_BLOCK;
        const size_t len_vec = (len + INTERP_VEC - 1) & ~(size_t)(INTERP_VEC - 1);
        for (uint32_t i = 0; i <= root; i++) { /* this block's loads */
            const canon_node *nd = &p->nodes[i];
            if (!s->nodes[i].used || nd->kind != CANON_LOAD)
                continue;
            const float *src = args->slot[nd->arg] + off;
            if (len == len_vec) {
                s->nodes[i].in = src;
            } else {
                float *pad = interp_row(s, nd->arg);
                memcpy(pad, src, len * sizeof *pad);
                memset(pad + len, 0, (len_vec - len) * sizeof *pad);
                s->nodes[i].in = pad;
            }
        }
        for (uint32_t e = 0; e < n_exec; e++) {
            const canon_node *nd = &p->nodes[s->exec[e]];
            const interp_node *x = &s->nodes[s->exec[e]];
            const interp_node *a = &s->nodes[nd->op[0]];
            float *d = interp_row(s, x->row);
            if (nd->arity == 1) {
                interp_unary((canon_kind)nd->kind, d, a->in, len_vec);
            } else {
                const interp_node *b = &s->nodes[nd->op[1]];
                interp_binary((canon_kind)nd->kind, d, a->varying ? a->in : NULL, a->val,
                              b->varying ? b->in : NULL, b->val, len_vec);
            }
        }
        const float *y = s->nodes[root].in;
        if (dst)
            memmove(dst + off, y, len * sizeof *dst); /* y may be dst's own slot (in place) */
        if (st->reduce == CANON_RED_SUM)
            sum += interp_reduce_block(CANON_RED_SUM, y, len);
        else if (st->reduce != CANON_RED_NONE)
            red = interp_combine(st->reduce, red, interp_reduce_block(st->reduce, y, len));
    }
    *out_acc = st->reduce == CANON_RED_SUM ? (float)sum : red;
}

/* ---- CONTRACT stages --------------------------------------------------------------------- */

/* c_r[j] += a[r] * b[j] for the 4 rows r and j < len: one pass over b for four rows.
 * The axpy kernels stay out of line: inlined, gcc -O2 drops their restrict qualifiers
 * and no longer vectorizes them. */
__attribute__((noinline)) static void interp_axpy4(float *restrict c0, float *restrict c1,
                                                   float *restrict c2, float *restrict c3,
                                                   const float a[4], const float *restrict b,
                                                   size_t len) {
    const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const size_t body = len & ~(size_t)(INTERP_VEC - 1);
    for (size_t j = 0; j < body; j++) {
        c0[j] += a0 * b[j];
        c1[j] += a1 * b[j];
        c2[j] += a2 * b[j];
        c3[j] += a3 * b[j];
    }
    for (size_t j = body; j < len; j++) {
        c0[j] += a0 * b[j];
        c1[j] += a1 * b[j];
        c2[j] += a2 * b[j];
        c3[j] += a3 * b[j];
    }
}

/* c[j] += a * b[j] for j < len. */
__attribute__((noinline)) static void interp_axpy1(float *restrict c, float a,
                                                   const float *restrict b, size_t len) {
    const size_t body = len & ~(size_t)(INTERP_VEC - 1);
    for (size_t j = 0; j < body; j++)
        c[j] += a * b[j];
    for (size_t j = body; j < len; j++)
        c[j] += a * b[j];
}

/* C[i*n + j] = sum over p < k of A[i*a_rs + p*a_cs] * B[p*b_rs + j*b_cs], accumulated in
 * float in order p = 0, 1, ... (both paths below sum in that same order).  C must not
 * overlap A or B. */
static void interp_contract(const canon_contract_shape *sh, const float *a, const float *b,
                            float *c) {
    const uint64_t m = sh->m, n = sh->n, k = sh->k;
    if (m == 0 || n == 0)
        return;
    memset(c, 0, (size_t)(m * n) * sizeof *c);
    if (k == 0)
        return;
    if (sh->b_cs != 1) { /* general strides: one dot product per element */
        for (uint64_t i = 0; i < m; i++)
            for (uint64_t j = 0; j < n; j++) {
                const float *ai = a + (int64_t)i * sh->a_rs;
                const float *bj = b + (int64_t)j * sh->b_cs;
                float acc = 0.0f;
                for (uint64_t q = 0; q < k; q++)
                    acc += ai[(int64_t)q * sh->a_cs] * bj[(int64_t)q * sh->b_rs];
                c[i * n + j] = acc;
            }
        return;
    }
    for (uint64_t i0 = 0; i0 < m; i0 += 4) {
        const unsigned nr = m - i0 < 4 ? (unsigned)(m - i0) : 4;
        for (uint64_t j0 = 0; j0 < n; j0 += INTERP_PANEL_COLS) {
            const size_t len = n - j0 < INTERP_PANEL_COLS ? (size_t)(n - j0) : INTERP_PANEL_COLS;
            float *ci = c + i0 * n + j0;
            for (uint64_t q = 0; q < k; q++) {
                const float *bq = b + (int64_t)q * sh->b_rs + (int64_t)j0;
                float ar[4];
                for (unsigned r = 0; r < nr; r++)
                    ar[r] = a[(int64_t)(i0 + r) * sh->a_rs + (int64_t)q * sh->a_cs];
                if (nr == 4)
                    interp_axpy4(ci, ci + n, ci + 2 * n, ci + 3 * n, ar, bq, len);
                else
                    for (unsigned r = 0; r < nr; r++)
                        interp_axpy1(ci + r * n, ar[r], bq, len);
            }
        }
    }
}

/* ---- STRIDED stages ---------------------------------------------------------------------- */

/* dst[flat] = src[sum_d idx_d * stride_d] over the row-major shape (ndim 0: one element;
 * a zero dimension: nothing).  Adjacent dimensions that are one run in memory are merged
 * first.  dst must not overlap the elements read from src. */
static void interp_strided(const canon_strided_shape *sh, const float *src, float *dst) {
    uint64_t shape[CANON_MAX_DIMS];
    int64_t stride[CANON_MAX_DIMS];
    unsigned nd = 0;
    for (unsigned d = 0; d < sh->ndim; d++) {
        if (sh->shape[d] == 0)
            return;
        if (sh->shape[d] == 1)
            continue;
        if (nd > 0 && stride[nd - 1] == sh->stride[d] * (int64_t)sh->shape[d]) {
            shape[nd - 1] *= sh->shape[d]; /* outer dim continues this one */
            stride[nd - 1] = sh->stride[d];
            continue;
        }
        shape[nd] = sh->shape[d];
        stride[nd] = sh->stride[d];
        nd++;
    }
    if (nd == 0) {
        dst[0] = src[0];
        return;
    }
    const uint64_t inner = shape[nd - 1];
    const int64_t is = stride[nd - 1];
    uint64_t idx[CANON_MAX_DIMS] = {0};
    int64_t off = 0;
    for (;;) {
        const float *s = src + off;
        if (is == 1)
            memcpy(dst, s, (size_t)inner * sizeof *dst);
        else
            for (uint64_t j = 0; j < inner; j++)
                dst[j] = s[(int64_t)j * is];
        dst += inner;
        unsigned d = nd - 1;
        for (;;) { /* odometer over the outer dimensions */
            if (d == 0)
                return;
            d--;
            off += stride[d];
            if (++idx[d] < shape[d])
                break;
            off -= stride[d] * (int64_t)shape[d];
            idx[d] = 0;
        }
    }
}

/* ---- entry ------------------------------------------------------------------------------ */

hg_status interp_run(const canon_program *p, const canon_args *args, float *result) {
    if (!p || !args)
        return HG_ERR_INTERNAL;
    interp_scratch *s = interp_scratch_get(p->n_nodes);
    if (!s)
        return HG_ERR_NO_MEMORY;
    if (interp_check(p, args, s) != 0)
        return HG_ERR_INTERNAL;
    float acc[CANON_MAX_STAGES] = {0};
    for (uint32_t si = 0; si < p->n_stages; si++) {
        const canon_stage *st = &p->stages[si];
        const canon_node *root = &p->nodes[st->root];
        switch (st->domain) {
        case CANON_DOM_RANGE:
            interp_range(p, st, args, interp_plan(p, st, args, acc, s), s, &acc[si]);
            break;
        case CANON_DOM_SCALAR:
            interp_plan(p, st, args, acc, s);
            acc[si] = s->nodes[st->root].val;
            break;
        case CANON_DOM_CONTRACT: /* interp_check: the loads are A = slot 0, B = slot 1 */
            interp_contract(&args->contract, args->slot[0], args->slot[1],
                            args->slot[st->store_slot]);
            break;
        default: /* CANON_DOM_STRIDED; interp_check admits nothing else */
            interp_strided(&args->strided, args->slot[root->arg], args->slot[st->store_slot]);
            break;
        }
    }
    if (result && p->result_stage != CANON_NONE)
        *result = acc[p->result_stage];
    return HG_OK;
}
