/*
 * canon/canon.h — canonical forms: the one description of every operation that both
 * engines (runtime/interp.c and jit/) execute.  Pure C, no dependency but libc.
 *
 *   ops.def row --canon_form_build--> pre-rewrite program (sugar allowed)
 *               --canon_rewrite-----> normal form (sugar gone, commutative operands ordered,
 *                                     constants folded, nodes renumbered) + 64-bit hash
 *   canon_form(op) returns the normal form, built once per process and immutable.
 *
 * A program is a list of stages over one hash-consed node array (a DAG in topological
 * order: every operand index is smaller than its node's index).  Each stage has a domain,
 * a root node, and a sink: store the root to an array slot, reduce it into a scalar (that
 * later stages read with ACC), or both.
 */
#ifndef CANON_H
#define CANON_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#define CANON_MAX_INPUTS 32               /* input array slots of a program */
#define CANON_MAX_SLOTS (CANON_MAX_INPUTS + 1) /* plus its array result */
#define CANON_MAX_PARAMS 32               /* float32 scalar parameters */
#define CANON_MAX_STAGES 4
#define CANON_MAX_DIMS 8
#define CANON_NONE 0xFFFFFFFFu /* "no node" / "no slot" */

/* ---- the op table as an enum ------------------------------------------------------ */
typedef enum {
#define HG_OP(name, ...) CANON_OP_##name,
#include "ops.def"
#undef HG_OP
    CANON_OP_COUNT
} canon_op;

typedef enum {
    CANON_FAM_MAP,      /* one RANGE stage, store */
    CANON_FAM_REDUCE,   /* one RANGE stage, reduce; result = ACC0 */
    CANON_FAM_LOSS,     /* RANGE stage reduce-sum, then a SCALAR stage; result = its value */
    CANON_FAM_SOFTMAX,  /* RANGE max; RANGE exp, store + sum; RANGE scale, store */
    CANON_FAM_CONTRACT  /* one CONTRACT stage: store sum over p */
} canon_family;

/* A reducing sink's scalar is the default NaN (0x7fc00000) whenever it is a NaN, in every
 * engine: which NaN a sum or an IEEE minimum propagates depends on the order of its
 * operations, which the engines choose differently. */
typedef enum {
    CANON_RED_NONE = 0, CANON_RED_SUM = 1, CANON_RED_MIN = 2, CANON_RED_MAX = 3
} canon_reduce; /* stable codes (see canon_domain) */

/* Static description of an op (one row of ops.def). */
typedef struct {
    canon_op op;
    const char *name;  /* "vector_add_f32" */
    canon_family family;
    uint8_t n_in;      /* input array slots */
    uint8_t n_par;     /* scalar parameters */
    canon_reduce reduce;
    uint8_t min_n;     /* smallest accepted n */
    const char *math;  /* the semantics comment */
} canon_op_info;

/* Row `op` of the table; NULL when op is out of range. */
const canon_op_info *canon_op_get(canon_op op);

/* ---- node kinds: views of prims.def ------------------------------------------------- */
enum { CANON_LEAF = 1, CANON_COMM = 2, CANON_SUGAR = 4 };

typedef enum {
#define CANON_PRIM(NAME, ...) CANON_##NAME,
#include "prims.def"
#undef CANON_PRIM
    CANON_KIND_COUNT
} canon_kind;

typedef enum { CANON_COST_CHEAP, CANON_COST_COSTLY } canon_cost;

/* How the expression language writes a kind (canon/expr.c); the binary operators in order
 * of binding, loosest first. */
typedef enum {
    CANON_SYN_NONE, CANON_SYN_CALL, CANON_SYN_PREFIX,
    CANON_SYN_CMP, CANON_SYN_OR, CANON_SYN_AND, CANON_SYN_ADD, CANON_SYN_MUL, CANON_SYN_POW
} canon_syntax;

typedef struct {
    const char *name;     /* "ADD" */
    uint16_t code;        /* stable code (serialized identity) */
    uint8_t arity;
    uint8_t flags;        /* CANON_LEAF | CANON_COMM | CANON_SUGAR */
    uint8_t cost;         /* canon_cost */
    uint8_t syntax;       /* canon_syntax */
    const char *spelling; /* "+", "exp"; "" when syntax is NONE */
    float test_lo, test_hi; /* operand range of the accuracy tests */
    const char *sem;      /* the semantics comment */
} canon_kind_info;

extern const canon_kind_info canon_kinds[CANON_KIND_COUNT];

typedef struct {
    uint8_t kind;       /* canon_kind */
    uint8_t arity;
    uint16_t pad_;      /* zero */
    uint32_t arg;       /* LOAD: slot, PARAM: index, ACC: stage; else 0 */
    float value;        /* CONST: the constant; else 0 */
    uint32_t op[3];     /* operand node indices (< own index); unused ones CANON_NONE */
} canon_node;

/* ---- stages and programs ---------------------------------------------------------------- */
/* Stage domains and reductions.  Their values are stable codes: they are serialized into
 * the identity of forms (kernel-cache keys, on-disk objects), so never renumber them. */
typedef enum {
    CANON_DOM_RANGE = 0,    /* i in [0, n): loads slot[s][i], stores slot[store][i] */
    CANON_DOM_SCALAR = 1,   /* evaluated once (per row, in a GRID program); no loads;
                               reduce must be NONE; ACC-able */
    CANON_DOM_CONTRACT = 2, /* (i, j) in m x n, reduce over p < k: LOAD(0) = A[i,p],
                               LOAD(1) = B[p,j] (strided), store slot[store][i*n + j] */
    /* 3: retired (a one-source strided copy, now a GRID map) */
    CANON_DOM_GRID = 4      /* rows of an N-d index space with strided operands (canon_grid):
                               per row, what RANGE is over [0, n) */
} canon_domain;
#define CANON_DOM_LAST CANON_DOM_GRID

typedef struct {
    canon_domain domain;
    uint32_t root;         /* node index */
    uint32_t store_slot;   /* slot stored into, or CANON_NONE */
    canon_reduce reduce;   /* reduction sink, or CANON_RED_NONE */
} canon_stage;

typedef struct canon_program {
    canon_node *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *index;         /* hash-consing index (open addressing, CANON_NONE = empty),
                                built once a program outgrows a linear scan; may be NULL */
    uint32_t cap_index;
    canon_stage stages[CANON_MAX_STAGES];
    uint32_t n_stages;
    uint32_t n_slots;        /* array slots bound at run time */
    uint32_t n_params;
    uint32_t result_stage;   /* stage whose scalar is the program's result, or CANON_NONE */
    uint32_t nodes_before;   /* node count of the pre-rewrite form (0 if not rewritten) */
    /* Identity (set by canon_rewrite through canon_identify): `ident` is the serialized
     * form, in stable codes (prims.def codes, canon_domain / canon_reduce values, explicit
     * little-endian fields); two programs are the same kernel exactly when their idents
     * are equal.  `hash` is a 64-bit hash of it that finds candidates, never decides. */
    uint8_t *ident;          /* owned; NULL before canon_identify */
    uint32_t ident_len;
    uint64_t hash;           /* never 0 once identified */
    canon_op op;             /* the op the form was built for (not part of the identity) */
    int oom;                 /* set when an allocation failed; the program is unusable */
    /* canon_stage_form's programs, built on first use and freed with this one */
    struct canon_program *_Atomic staged[CANON_MAX_STAGES];
} canon_program;

/* ---- building (hash-consed: adding an existing node returns its index) ------------------- */
/* New empty program; NULL on allocation failure. */
canon_program *canon_program_new(uint32_t n_slots, uint32_t n_params);
void canon_program_free(canon_program *p); /* NULL is harmless */
/* Each returns the node index, or CANON_NONE (and sets p->oom) on allocation failure or
 * when an operand is CANON_NONE. */
uint32_t canon_node_add(canon_program *p, canon_kind kind, uint32_t a, uint32_t b, uint32_t c);
uint32_t canon_leaf(canon_program *p, canon_kind kind, uint32_t arg);
uint32_t canon_const(canon_program *p, float value);
/* Appends a stage; returns its index, or CANON_NONE when there are already
 * CANON_MAX_STAGES or root is CANON_NONE. */
uint32_t canon_stage_add(canon_program *p, canon_domain domain, uint32_t root,
                         uint32_t store_slot, canon_reduce reduce);

/* ---- forms, rewriting, identity ---------------------------------------------------------- */
/* The pre-rewrite form of `op` (caller frees); NULL on allocation failure. */
canon_program *canon_form_build(canon_op op);
/* A new program: the normal form of `p` (p unchanged), with nodes_before and hash set.
 * NULL on allocation failure. */
canon_program *canon_rewrite(const canon_program *p);
/* The normal form of `op`, built on first use (thread-safe) and kept for the process;
 * NULL only if that first build ran out of memory. */
const canon_program *canon_form(canon_op op);
/* Stage s of identified program p (RANGE and SCALAR stages only) as a program of its own,
 * for running the stages one after another (runtime/parallel.c): one stage, s's root and
 * sink, its scalar the result when s reduces or is SCALAR; what s read of earlier stages
 * (ACC j) and LEN become the parameters p->n_params + j and p->n_params + p->n_stages, set
 * by the caller.  A normal form, built on first use and kept with p (thread-safe); NULL
 * when p has other domains, too many parameters, or memory runs out. */
const canon_program *canon_stage_form(const canon_program *p, uint32_t s);
/* The GRID twin of a program of RANGE and SCALAR stages: a new normal form (caller frees)
 * with every RANGE stage a GRID stage, so that it runs row by row over strided N-d
 * operands; NULL when p has another domain or memory runs out. */
canon_program *canon_grid_twin(const canon_program *p);
/* canon_grid_twin of canon_form(op), built with it and kept for the process; NULL for an
 * op whose form is not RANGE/SCALAR (the contractions). */
const canon_program *canon_grid_form(canon_op op);
/* Serializes p's identity into p->ident / p->ident_len and sets p->hash (see
 * canon_program): slot, parameter and stage layout, sinks, every node; not `op` nor
 * nodes_before.  0, or -1 when memory runs out (p unchanged). */
int canon_identify(canon_program *p);
/* The hash canon_identify gives p (computed on a temporary serialization); 0 when memory
 * runs out. */
uint64_t canon_hash(const canon_program *p);
/* 1 when a and b are identified and their identities are equal. */
int canon_same_form(const canon_program *a, const canon_program *b);
/* Checks that p is a well-formed program, whatever built it: counts within the limits, kinds
 * within the table and not sugar unless `allow_sugar`, arities, operands earlier than their
 * node, LOAD slots and PARAM indices within the program's counts, every ACC naming an
 * earlier stage that has a scalar (a SCALAR stage or a reducing RANGE stage), stage roots
 * and sinks (a RANGE or GRID stage stores or reduces; a SCALAR stage loads nothing and has
 * no sink; a CONTRACT stage stores and sums), a program with a GRID stage having only GRID
 * and SCALAR stages, the result stage.  `work`: NULL, or room for p->n_nodes entries
 * (saves an allocation).
 * 0, or -1 with a message in msg[0..cap) naming the first fault, or -2 (with a message)
 * when p ran out of memory while it was built or there is none to check it. */
int canon_check(const canon_program *p, int allow_sugar, uint32_t *work, char *msg,
                size_t cap);
/* "RANGE", "SCALAR", "CONTRACT", "GRID" / "none", "sum", "min", "max"; NULL for other
 * values (the retired domain 3 included). */
const char *canon_domain_name(canon_domain d);
const char *canon_reduce_name(canon_reduce r);
/* Writes a readable listing ("%3 = ADD %1 %2" lines, stages, hash) like snprintf:
 * returns the length it needed, writes at most cap-1 characters plus NUL. */
size_t canon_print(const canon_program *p, char *buf, size_t cap);

/* ---- the expression language (canon/expr.c) ------------------------------------------
 * numexpr's syntax, parsed into a program with the same builder, rewrite rules and
 * hash-consing as the built-in ops (so `a + b` is vector_add_f32's form):
 *   expr     := sum( e [, axis=k] ) | mean(...) | min(...) | max(...) | e   (at the top)
 *   e        := binary operators of prims.def by syntax class, loosest first:
 *               CMP (< <= > >= == != : at most one per level, no chains), OR (|), AND (&),
 *               ADD (+ -), MUL (* /); then unary (- + ~), then POW (**: right-associative,
 *               binds tighter than a unary minus on its left: -x**2 is -(x**2))
 *   primary  := number | name | function( e, ... ) | ( e )
 * A reduction may name one axis, `sum(e, axis=1)` (numexpr's spelling; negative counts from
 * the last): on N-d operands it reduces that axis only.
 * Numbers are Python float or int literals (digits, '.', exponent), read as double and
 * rounded once to float32 (as NumPy casts a Python float); one beyond the float32 range is
 * an error.  Functions are prims.def's CALL spellings with their arity.  A name is a
 * scalar parameter when listed as one, else an array input; arrays take slots and
 * scalars parameters in order of first appearance.  Maps store into slot n_arrays;
 * sum/min/max reduce into the result (min and max need n >= 1), mean is the sum over LEN.
 */
#define CANON_EXPR_MAX_TEXT (1u << 20) /* bytes of expression text */
#define CANON_EXPR_MAX_DEPTH 64        /* nesting of parentheses, calls, unary ops and ** */
#define CANON_EXPR_MAX_NODES 4096      /* nodes of a form, before and after rewriting */
#define CANON_EXPR_MAX_NAME 64         /* bytes of a name */

typedef struct canon_expr {
    canon_program *pre;   /* the program as written (sugar kept) */
    canon_program *form;  /* its normal form: what the engines run on 1-D arrays */
    canon_program *grid;  /* its GRID twin: what they run on N-d strided operands */
    uint32_t n_arrays;    /* input slots 0..n_arrays-1 */
    uint32_t n_scalars;   /* parameters 0..n_scalars-1 */
    char **names;         /* n_arrays + n_scalars names: the arrays', then the scalars' */
    int has_output;       /* a stage stores into slot n_arrays (the output array) */
    int has_result;       /* the program yields a scalar (result_stage) */
    const char *kind;     /* "map", "sum", "mean", "min", "max" or "program" (static) */
    int has_axis;         /* a reduction over one axis (axis=k), not over everything */
    int32_t axis;         /* that axis; negative counts from the last */
} canon_expr;

typedef struct {
    uint32_t column;      /* 1-based column of the fault in the text, 0 when none */
    int no_memory;        /* the fault is an allocation that failed (not the input) */
    char msg[320];        /* what is wrong, naming the offending token, name or limit */
} canon_expr_error;

/* Parses `text` (NUL-terminated) into a new expression (*out; canon_expr_free).  `scalars`
 * lists n_scalars names that are scalar parameters (each must appear in the text).  0, or
 * -1 with *err set: a syntax error, an unknown function or wrong arity, a reduction that
 * is not the whole expression, a declared scalar that does not appear, a limit exceeded
 * (text, depth, nodes, names, inputs, parameters), or no memory. */
int canon_expr_parse(const char *text, const char *const *scalars, uint32_t n_scalars,
                     canon_expr **out, canon_expr_error *err);
/* Makes an expression of a program built elsewhere (an embedder's JSON form): takes `pre`
 * and `names` (n_arrays + n_scalars malloc'd strings, freed here on failure too) and
 * checks them: canon_check with sugar allowed; slots are the arrays plus, when a stage
 * stores, the output slot n_arrays; parameters are the scalars; stages are RANGE or
 * SCALAR; only the output slot is stored, and loaded only after a stage stored it; at
 * most CANON_EXPR_MAX_NODES nodes before and after rewriting.  0, or -1 with *err. */
int canon_expr_from_program(canon_program *pre, char **names, uint32_t n_arrays,
                            uint32_t n_scalars, const char *kind, canon_expr **out,
                            canon_expr_error *err);
void canon_expr_free(canon_expr *e); /* NULL is harmless */

/* ---- run-time arguments, shared by the interpreter and JIT kernels ----------------------
 * Kernel ABI: both engines take a `const canon_args *` and write the program's scalar
 * result (if any) to *result.  The JIT reads this struct by field offset: keep it POD and
 * change jit/ when changing it. */
typedef struct {
    uint64_t m, n, k;              /* C[m x n] = sum_p A[m x k] B[k x n] */
    int64_t a_rs, a_cs, b_rs, b_cs;/* element strides of A (row, col) and B (row, col) */
} canon_contract_shape;           /* C is contiguous: C[i*n + j] */

/* The index space of a GRID program (CANON_DOM_GRID): for each row, an index over dims
 * [0, outer) in row-major order, the program's stages run in order over the row's
 * elements, an index over dims [outer, ndim) in row-major order, exactly as RANGE stages
 * run over [0, n): LOAD(k) reads slot[k][sum_d idx_d * stride[k][d]] over all ndim dims, a
 * store writes its slot the same way, a reduction reduces over the row's elements into
 * the row's scalar (the ACC that later stages of the row read), a SCALAR stage is
 * evaluated once per row, LEN is the number of elements of a row, and the result stage's
 * scalar of each row goes to result[sum_{d < outer} idx_d * result_stride[d]].  Strides
 * are in elements and non-negative; 0 broadcasts.  A store's elements must be distinct
 * (no zero stride along a dimension of extent > 1) and disjoint from the elements loaded
 * from other slots, or be exactly the same elements (in place). */
typedef struct canon_grid {
    uint32_t ndim;                                  /* 1..CANON_MAX_DIMS */
    uint32_t outer;                                 /* 0..ndim */
    uint64_t shape[CANON_MAX_DIMS];
    int64_t stride[CANON_MAX_SLOTS][CANON_MAX_DIMS]; /* slot k along dim d */
    float *result;                                  /* NULL when the program has none */
    int64_t result_stride[CANON_MAX_DIMS];          /* along the outer dims */
} canon_grid;

/* Floats of canon_args.scratch a CONTRACT kernel may use (the JIT's packed gemm: a
 * 256 x 512 panel of B and a 256 x 12 stripe of A, 524 KiB + 12 KiB). */
#define CANON_CONTRACT_SCRATCH_FLOATS (256u * 512u + 256u * 12u)

typedef struct canon_args {
    float *slot[CANON_MAX_SLOTS];       /* RANGE: n elements each; may alias each other */
    float param[CANON_MAX_PARAMS];
    uint64_t n;                         /* RANGE length */
    canon_contract_shape contract;      /* CONTRACT stages */
    const canon_grid *grid;             /* GRID stages (NULL otherwise); borrowed */
    /* CONTRACT and GRID: working space for kernels, at least CANON_CONTRACT_SCRATCH_FLOATS
     * floats, 64-byte aligned, used by one call at a time; engines that need none ignore
     * it. */
    float *scratch;
    uint64_t scratch_floats;
    /* RANGE programs that only store (maps): 1 when the op's stores are streams, i.e. its
     * output is well past the last-level cache and is none of its inputs (set by the
     * runtime from the whole op, so every chunk of a split op agrees); engines may then
     * store past the caches (the JIT: non-temporal stores).  0 otherwise. */
    uint64_t stream;
} canon_args;

#endif /* CANON_H */
