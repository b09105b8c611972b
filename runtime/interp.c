/*
 * runtime/interp.c — the block interpreter over canonical forms (see interp.h).
 *
 *   interp_run: per-thread scratch → check the whole program (canon_check plus the
 *   CONTRACT slot rules; nothing is written when it is malformed) → each stage by domain:
 *     RANGE     one row of n contiguous elements (interp_row_stage)
 *     GRID      row by row (an odometer over the outer dimensions), each stage of the row
 *               in turn over its elements (interp_row_stage), a row's ACC its own
 *     row stage plan: reachable nodes, uniform (scalar) values, one scratch row per
 *               varying node (rows recycled after their last reader); then per block of
 *               INTERP_BLOCK elements: each LOAD read in place (one contiguous run) or
 *               gathered, one kernel call per varying node, then the sinks (the store in
 *               place or scattered, the reduction)
 *     SCALAR    the plan's uniform value of the root (per row in GRID programs)
 *     CONTRACT  MUL(LOAD 0, LOAD 1): C = 0, then C[i, j..] += A[i,p] * B[p, j..] over
 *               panels of rows; any other expression: per element of C, A's row and B's
 *               column gathered in blocks, the expression planned as a row, summed
 *
 * Kernels run over a multiple of INTERP_VEC elements on restrict-qualified rows: that is
 * what gcc's vectorizer needs to vectorize them without an epilogue.  A partial last
 * block therefore reads its loads from zero-padded copies.  The kernels are one loop per
 * computed kind of canon/prims.def and per shape of its operands (row or uniform scalar),
 * all over canon_apply_f32.
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

/* The hot loops (block kernels, block reductions, the contraction's axpy) are compiled for
 * AVX-512, AVX2 and the build's baseline, and the loader picks one by the CPU's features
 * (function multiversioning: an ifunc resolver), so the portable library (HG_NATIVE=OFF,
 * baseline x86-64) keeps wide vectors where the CPU has them.  Every clone computes the
 * same bits: no FMA contraction (-ffp-contract=off), the same operation order.  Not under
 * TSan: an ifunc resolver runs before the TSan runtime is set up and crashes the process
 * (any target_clones function does, with gcc and clang alike); TSan builds get the
 * baseline loops. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define INTERP_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define INTERP_TSAN 1
#endif
#if defined(__x86_64__) && !defined(INTERP_TSAN)
#define INTERP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* A multiversioned function is called through its resolver, never inlined (and clang
 * refuses noinline beside target_clones). */
#define INTERP_CLONES_NOINLINE INTERP_CLONES
#else
#define INTERP_CLONES
#define INTERP_CLONES_NOINLINE __attribute__((noinline))
#endif

/* ---- reductions --------------------------------------------------------------------------- */

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

/* The reduction of x[0..len) by `red`: INTERP_VEC independent lanes (float), folded
 * pairwise, then the remainder; the identity when len = 0. */
INTERP_CLONES
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

/* ---- block kernels ---------------------------------------------------------------------- */

/* d[i] = kind(x_i, y_i, z_i) for i < len (a multiple of INTERP_VEC), over the kind's
 * arity: operand k is row[k][i], or the uniform val[k] when row[k] is NULL (not all of
 * them NULL).  d overlaps no row. */
INTERP_CLONES
static void interp_kernel(canon_kind kind, float *restrict d, const float *restrict a,
                          const float *restrict b, const float *restrict c, const float val[3],
                          size_t len) {
    len &= ~(size_t)(INTERP_VEC - 1); /* states the contract to the vectorizer */
    const float as = val[0], bs = val[1], cs = val[2];
    const unsigned rows = (a != NULL) | (b != NULL) << 1 | (c != NULL) << 2;
#define INTERP_LOOP(K, X, Y, Z)                                                           \
    for (size_t i = 0; i < len; i++)                                                      \
        d[i] = canon_apply_f32(CANON_##K, X, Y, Z);                                       \
    return;
#define INTERP_K1(K)                                                                      \
    case CANON_##K:                                                                       \
        INTERP_LOOP(K, a[i], 0.0f, 0.0f)
#define INTERP_K2(K)                                                                      \
    case CANON_##K:                                                                       \
        switch (rows) {                                                                   \
        case 1: INTERP_LOOP(K, a[i], bs, 0.0f)                                            \
        case 2: INTERP_LOOP(K, as, b[i], 0.0f)                                            \
        default: INTERP_LOOP(K, a[i], b[i], 0.0f)                                         \
        }
#define INTERP_K3(K)                                                                      \
    case CANON_##K:                                                                       \
        switch (rows) {                                                                   \
        case 1: INTERP_LOOP(K, a[i], bs, cs)                                              \
        case 2: INTERP_LOOP(K, as, b[i], cs)                                              \
        case 3: INTERP_LOOP(K, a[i], b[i], cs)                                            \
        case 4: INTERP_LOOP(K, as, bs, c[i])                                              \
        case 5: INTERP_LOOP(K, a[i], bs, c[i])                                            \
        case 6: INTERP_LOOP(K, as, b[i], c[i])                                            \
        default: INTERP_LOOP(K, a[i], b[i], c[i])                                         \
        }
/* prims.def rows by role and arity: MAP kinds get a case, leaves and sugar none. */
#define INTERP_ROLE_LEAF(K, arity)
#define INTERP_ROLE_SUGAR(K, arity)
#define INTERP_ROLE_MAP(K, arity) INTERP_K##arity(K)
    switch (kind) {
#define CANON_PRIM(NAME, code, role, arity, ...) INTERP_ROLE_##role(NAME, arity)
#include "../canon/prims.def"
#undef CANON_PRIM
    default:
        return; /* interp_check admits no other kind */
    }
#undef INTERP_LOOP
#undef INTERP_K1
#undef INTERP_K2
#undef INTERP_K3
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

/* Rows 0..CANON_MAX_SLOTS-1 hold zero-padded (or gathered) loads of a block, row
 * INTERP_ROW_BCAST a uniform root broadcast, and the rows after it the varying nodes. */
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

/* Marks (s->nodes[].used) the nodes reachable from `root`. */
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

/* 1 when node i is the MUL of LOAD 0 and LOAD 1 (the contraction's fast path). */
static int interp_is_product(const canon_program *p, uint32_t i) {
    const canon_node *n = &p->nodes[i];
    if (n->kind != CANON_MUL)
        return 0;
    const canon_node *x = &p->nodes[n->op[0]], *y = &p->nodes[n->op[1]];
    return x->kind == CANON_LOAD && y->kind == CANON_LOAD &&
           ((x->arg == 0 && y->arg == 1) || (x->arg == 1 && y->arg == 0));
}

/* Checks p against the interpreter's contract (see interp.h): canon_check, then the slot
 * rules of CONTRACT stages (loads of A and B only, C another slot) and the shape of a GRID
 * program.  0 or -1 (malformed). */
static int interp_check(const canon_program *p, const canon_args *args, interp_scratch *s) {
    if (canon_check(p, 0, s->exec, NULL, 0) != 0)
        return -1;
    for (uint32_t si = 0; si < p->n_stages; si++) {
        const canon_stage *st = &p->stages[si];
        if (st->domain == CANON_DOM_GRID &&
            (!args->grid || args->grid->ndim < 1 || args->grid->ndim > CANON_MAX_DIMS ||
             args->grid->outer > args->grid->ndim ||
             (p->result_stage != CANON_NONE && !args->grid->result)))
            return -1;
        if (st->domain != CANON_DOM_CONTRACT)
            continue;
        if (st->store_slot <= 1)
            return -1;
        interp_mark(p, st->root, s);
        for (uint32_t i = 0; i <= st->root; i++)
            if (s->nodes[i].used && p->nodes[i].kind == CANON_LOAD && p->nodes[i].arg > 1)
                return -1;
    }
    return 0;
}

/* ---- planned evaluation (rows of RANGE and GRID stages, the general CONTRACT path) ------- */

/* 1 when operand k of nd is its first operand naming that node. */
static int interp_first_use(const canon_node *nd, unsigned k) {
    for (unsigned j = 0; j < k; j++)
        if (nd->op[j] == nd->op[k])
            return 0;
    return 1;
}

/* Plans the evaluation of `root` into s: marks reachable nodes, computes uniform values
 * (leaves other than LOAD, and nodes with only uniform operands), lists the varying
 * compute nodes in s->exec and gives each a row, recycling a row after its last reader.
 * `n` is the value of LEN.  Returns the number of nodes in s->exec. */
static uint32_t interp_plan(const canon_program *p, uint32_t root, const canon_args *args,
                            uint64_t n, const float *acc, interp_scratch *s) {
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
            x->val = (float)n;
            continue;
        default:
            break;
        }
        float v[3] = {0.0f, 0.0f, 0.0f};
        for (unsigned k = 0; k < nd->arity; k++) {
            x->varying |= s->nodes[nd->op[k]].varying;
            v[k] = s->nodes[nd->op[k]].val;
        }
        if (!x->varying) {
            x->val = canon_apply_f32((canon_kind)nd->kind, v[0], v[1], v[2]);
            continue;
        }
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
            if (computed && s->nodes[o].last == i && interp_first_use(nd, k))
                s->free_rows[n_free++] = s->nodes[o].row;
        }
    }
    return n_exec;
}

/* Evaluates a planned root (n_exec compute nodes) over one block of len elements, whose
 * LOAD of slot j reads src[j][0..len) (a row of s itself, when gathered there); returns
 * the root's values (len of them, valid until the next block). */
static const float *interp_block(const canon_program *p, uint32_t root, uint32_t n_exec,
                                 interp_scratch *s, float *const *src, size_t len) {
    const size_t len_vec = (len + INTERP_VEC - 1) & ~(size_t)(INTERP_VEC - 1);
    if (!s->nodes[root].varying) { /* uniform root: a broadcast row, filled once */
        if (!s->nodes[root].in) {
            float *b = interp_row(s, INTERP_ROW_BCAST);
            for (size_t i = 0; i < INTERP_BLOCK; i++)
                b[i] = s->nodes[root].val;
            s->nodes[root].in = b;
        }
        return s->nodes[root].in;
    }
    for (uint32_t i = 0; i <= root; i++) { /* this block's loads */
        const canon_node *nd = &p->nodes[i];
        if (!s->nodes[i].used || nd->kind != CANON_LOAD)
            continue;
        const float *in = src[nd->arg];
        float *pad = interp_row(s, nd->arg);
        if (len != len_vec) { /* zero-padded to a whole vector */
            if (in != pad)
                memcpy(pad, in, len * sizeof *pad);
            memset(pad + len, 0, (len_vec - len) * sizeof *pad);
            in = pad;
        }
        s->nodes[i].in = in;
    }
    for (uint32_t e = 0; e < n_exec; e++) {
        const canon_node *nd = &p->nodes[s->exec[e]];
        const float *row[3] = {NULL, NULL, NULL};
        float val[3] = {0.0f, 0.0f, 0.0f};
        for (unsigned k = 0; k < nd->arity; k++) {
            const interp_node *o = &s->nodes[nd->op[k]];
            row[k] = o->varying ? o->in : NULL;
            val[k] = o->val;
        }
        interp_kernel((canon_kind)nd->kind, interp_row(s, s->nodes[s->exec[e]].row), row[0],
                      row[1], row[2], val, len_vec);
    }
    return s->nodes[root].in;
}

/* One row of a stage: count elements over the element dimensions (row-major); slot k's
 * elements start at base[k] and step by stride[k][stride_at + d] along dimension d, or
 * (stride NULL: a RANGE row) are count contiguous floats. */
typedef struct {
    uint32_t nd;                                     /* element dimensions, 1.. */
    uint64_t shape[CANON_MAX_DIMS];
    const int64_t (*stride)[CANON_MAX_DIMS];         /* per slot, or NULL */
    uint32_t stride_at;                              /* index of element dim 0 in stride[k] */
    float *base[CANON_MAX_SLOTS];
    uint64_t count;
} interp_span;

/* 1 when slot k's elements of row r are one contiguous run. */
static int interp_contiguous(const interp_span *r, uint32_t k) {
    return !r->stride || (r->nd == 1 && r->stride[k][r->stride_at] == 1);
}

/* The element offset of flat element e of row r in slot k. */
static int64_t interp_offset(const interp_span *r, uint32_t k, uint64_t e) {
    int64_t off = 0;
    for (uint32_t d = r->nd; d-- > 0;) {
        off += (int64_t)(e % r->shape[d]) * r->stride[k][r->stride_at + d];
        e /= r->shape[d];
    }
    return off;
}

/* Copies len elements of slot k of row r, from flat element e0 on, into dst (to_row) or
 * from src back into the slot (!to_row). */
static void interp_walk(const interp_span *r, uint32_t k, uint64_t e0, size_t len, float *buf,
                        int to_row) {
    float *base = r->base[k];
    if (r->nd == 1) {
        const int64_t st = r->stride[k][r->stride_at];
        float *at = base + (int64_t)e0 * st;
        for (size_t i = 0; i < len; i++) {
            if (to_row)
                buf[i] = at[(int64_t)i * st];
            else
                at[(int64_t)i * st] = buf[i];
        }
        return;
    }
    uint64_t idx[CANON_MAX_DIMS];
    uint64_t e = e0;
    for (uint32_t d = r->nd; d-- > 0;) {
        idx[d] = e % r->shape[d];
        e /= r->shape[d];
    }
    int64_t off = interp_offset(r, k, e0);
    const int64_t *st = &r->stride[k][r->stride_at];
    for (size_t i = 0; i < len; i++) {
        if (to_row)
            buf[i] = base[off];
        else
            base[off] = buf[i];
        for (uint32_t d = r->nd; d-- > 0;) { /* odometer */
            off += st[d];
            if (++idx[d] < r->shape[d])
                break;
            off -= st[d] * (int64_t)r->shape[d];
            idx[d] = 0;
        }
    }
}

/* Runs stage `st` over row r: stores its root and/or reduces it; *out_acc gets the
 * reduced value (if any).  Loads read in place when contiguous, else are gathered into
 * their padding rows; a store writes in place (memmove: y may be the store's own slot) or
 * is scattered. */
static void interp_row_stage(const canon_program *p, const canon_stage *st, const interp_span *r,
                             const canon_args *args, const float *acc, interp_scratch *s,
                             float *out_acc) {
    const uint64_t n = r->count;
    const uint32_t root = st->root, out = st->store_slot;
    float *dst = out != CANON_NONE ? r->base[out] : NULL;
    const int dst_run = dst && interp_contiguous(r, out);
    if (p->nodes[root].kind == CANON_LOAD && dst_run && st->reduce == CANON_RED_NONE &&
        interp_contiguous(r, p->nodes[root].arg)) {
        const float *src = r->base[p->nodes[root].arg]; /* a copy: memmove */
        if (dst != src && n > 0)
            memmove(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    const uint32_t n_exec = interp_plan(p, root, args, n, acc, s);
    double sum = 0.0;
    float red = interp_identity(st->reduce);
    float *src[CANON_MAX_SLOTS];
    int gathered[CANON_MAX_SLOTS];
    for (uint32_t j = 0; j < p->n_slots; j++)
        gathered[j] = !interp_contiguous(r, j);
    for (uint64_t off = 0; off < n; off += INTERP_BLOCK) {
        const size_t len = n - off < INTERP_BLOCK ? (size_t)(n - off) : INTERP_BLOCK;
        for (uint32_t i = 0; i <= root; i++) { /* this block's loads, each slot once */
            const canon_node *nd = &p->nodes[i];
            if (!s->nodes[i].used || nd->kind != CANON_LOAD)
                continue;
            const uint32_t k = nd->arg;
            if (gathered[k]) {
                src[k] = interp_row(s, k);
                interp_walk(r, k, off, len, src[k], 1);
            } else {
                src[k] = r->base[k] + off;
            }
        }
        const float *y = interp_block(p, root, n_exec, s, src, len);
        if (dst_run)
            memmove(dst + off, y, len * sizeof *dst);
        else if (dst)
            interp_walk(r, out, off, len, (float *)y, 0);
        if (st->reduce == CANON_RED_SUM)
            sum += interp_reduce_block(CANON_RED_SUM, y, len);
        else if (st->reduce != CANON_RED_NONE)
            red = interp_combine(st->reduce, red, interp_reduce_block(st->reduce, y, len));
    }
    red = st->reduce == CANON_RED_SUM ? (float)sum : red;
    *out_acc = red != red ? NAN : red; /* the default NaN, as in the JIT (canon_reduce) */
}

/* A GRID program (every stage GRID or SCALAR) row by row; the result stage's scalar of
 * each row to grid->result. */
static void interp_grid(const canon_program *p, const canon_args *args, interp_scratch *s) {
    const canon_grid *g = args->grid;
    interp_span r = {.nd = g->ndim - g->outer, .stride = g->stride, .stride_at = g->outer,
                    .count = 1};
    if (r.nd == 0) { /* every dimension indexes rows: rows of one element at base */
        r.nd = 1;
        r.shape[0] = 1;
        r.stride = NULL;
    }
    for (uint32_t d = 0; d < g->ndim - g->outer; d++) {
        r.shape[d] = g->shape[g->outer + d];
        r.count *= r.shape[d];
    }
    uint64_t rows = 1, idx[CANON_MAX_DIMS] = {0};
    for (uint32_t d = 0; d < g->outer; d++)
        rows *= g->shape[d];
    canon_args row_args = *args;
    row_args.n = r.count;
    for (uint64_t row = 0; row < rows; row++) {
        int64_t res = 0;
        for (uint32_t k = 0; k < p->n_slots; k++) {
            int64_t off = 0;
            for (uint32_t d = 0; d < g->outer; d++)
                off += (int64_t)idx[d] * g->stride[k][d];
            r.base[k] = args->slot[k] ? args->slot[k] + off : NULL;
        }
        for (uint32_t d = 0; d < g->outer; d++)
            res += (int64_t)idx[d] * g->result_stride[d];
        float acc[CANON_MAX_STAGES] = {0};
        for (uint32_t si = 0; si < p->n_stages; si++) {
            const canon_stage *st = &p->stages[si];
            if (st->domain == CANON_DOM_SCALAR) {
                interp_plan(p, st->root, &row_args, r.count, acc, s);
                acc[si] = s->nodes[st->root].val;
            } else if (r.count > 0 || st->reduce != CANON_RED_NONE) {
                interp_row_stage(p, st, &r, &row_args, acc, s, &acc[si]);
            }
        }
        if (p->result_stage != CANON_NONE)
            g->result[res] = acc[p->result_stage];
        for (uint32_t d = g->outer; d-- > 0;) { /* odometer over the rows */
            if (++idx[d] < g->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

/* ---- CONTRACT stages --------------------------------------------------------------------- */

/* c_r[j] += a[r] * b[j] for the 4 rows r and j < len: one pass over b for four rows.
 * The axpy kernels stay out of line: inlined, gcc -O2 drops their restrict qualifiers
 * and no longer vectorizes them. */
INTERP_CLONES_NOINLINE static void interp_axpy4(float *restrict c0, float *restrict c1,
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
INTERP_CLONES_NOINLINE static void interp_axpy1(float *restrict c, float a,
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
static void interp_product(const canon_contract_shape *sh, const float *a, const float *b,
                           float *c) {
    const uint64_t m = sh->m, n = sh->n, k = sh->k;
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

/* n elements at src with stride `stride` into dst (contiguous). */
static void interp_gather(float *restrict dst, const float *src, int64_t stride, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = src[(int64_t)i * stride];
}

/* CONTRACT stage st: C[i*n + j] = sum over p < k of root(A[i,p], B[p,j]); the product
 * MUL(LOAD 0, LOAD 1) takes interp_product, any other expression is planned once and run
 * per element of C over blocks of p (A's row in row 0, B's column in row 1), summed like a
 * RANGE sum (float per block, blocks in double).  C must not overlap A or B. */
static void interp_contract(const canon_program *p, const canon_stage *st,
                            const canon_args *args, const float *acc, interp_scratch *s) {
    const canon_contract_shape *sh = &args->contract;
    float *c = args->slot[st->store_slot];
    if (sh->m == 0 || sh->n == 0)
        return;
    if (interp_is_product(p, st->root)) {
        interp_product(sh, args->slot[0], args->slot[1], c);
        return;
    }
    const uint32_t n_exec = interp_plan(p, st->root, args, sh->k, acc, s);
    float *src[2] = {interp_row(s, 0), interp_row(s, 1)};
    for (uint64_t i = 0; i < sh->m; i++)
        for (uint64_t j = 0; j < sh->n; j++) {
            double sum = 0.0;
            for (uint64_t q0 = 0; q0 < sh->k; q0 += INTERP_BLOCK) {
                const size_t len = sh->k - q0 < INTERP_BLOCK ? (size_t)(sh->k - q0) : INTERP_BLOCK;
                interp_gather(src[0], args->slot[0] + (int64_t)i * sh->a_rs + (int64_t)q0 * sh->a_cs,
                              sh->a_cs, len);
                interp_gather(src[1], args->slot[1] + (int64_t)q0 * sh->b_rs + (int64_t)j * sh->b_cs,
                              sh->b_rs, len);
                sum += interp_reduce_block(CANON_RED_SUM,
                                           interp_block(p, st->root, n_exec, s, src, len), len);
            }
            c[i * sh->n + j] = (float)sum;
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
    for (uint32_t si = 0; si < p->n_stages; si++)
        if (p->stages[si].domain == CANON_DOM_GRID) {
            interp_grid(p, args, s);
            return HG_OK;
        }
    interp_span range = {.nd = 1, .shape = {args->n}, .count = args->n};
    for (uint32_t k = 0; k < p->n_slots; k++)
        range.base[k] = args->slot[k];
    float acc[CANON_MAX_STAGES] = {0};
    for (uint32_t si = 0; si < p->n_stages; si++) {
        const canon_stage *st = &p->stages[si];
        switch (st->domain) {
        case CANON_DOM_RANGE:
            interp_row_stage(p, st, &range, args, acc, s, &acc[si]);
            break;
        case CANON_DOM_SCALAR:
            interp_plan(p, st->root, args, args->n, acc, s);
            acc[si] = s->nodes[st->root].val;
            break;
        default: /* CANON_DOM_CONTRACT; canon_check admits nothing else */
            interp_contract(p, st, args, acc, s);
            break;
        }
    }
    if (result && p->result_stage != CANON_NONE)
        *result = acc[p->result_stage];
    return HG_OK;
}
