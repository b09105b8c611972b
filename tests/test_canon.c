/*
 * tests/test_canon.c — the canon layer alone: op table, builder, canonical forms, rewrite
 * rules, hashing, printer, and the float32 scalar semantics against libm in double.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canon/canon.h"
#include "canon/env.h"
#include "canon/scalar.h"

/* The identity of vector_add_f32's normal form, byte for byte (canon/rewrite.c): it keys
 * the kernel caches, the on-disk one included, so a change here must be deliberate (it
 * retires every stored kernel).  "HGF" v1; 3 slots, 0 params, no result stage, 1 stage,
 * 3 nodes; stage RANGE, no reduction, root 2, store slot 2; LOAD(code 1) s0, LOAD s1,
 * ADD(code 32) %0 %1. */
static const uint8_t golden_vector_add[] = {
    'H', 'G', 'F', 1, 3, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 3, 0, 0, 0,
    0, 0, 2, 0, 0, 0, 2, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 32, 0, 0, 0, 0, 0, 1, 0, 0, 0};

/* ---- helpers -------------------------------------------------------------------------- */
static uint32_t ld(canon_program *p, uint32_t slot) { return canon_leaf(p, CANON_LOAD, slot); }
static uint32_t kc(canon_program *p, float v) { return canon_const(p, v); }
static uint32_t un(canon_program *p, canon_kind k, uint32_t x) {
    return canon_node_add(p, k, x, CANON_NONE, CANON_NONE);
}
static uint32_t bin(canon_program *p, canon_kind k, uint32_t x, uint32_t y) {
    return canon_node_add(p, k, x, y, CANON_NONE);
}

/* A one-stage MAP program over `n_in` inputs whose root the caller adds next. */
static canon_program *map_new(uint32_t n_in, uint32_t n_par) {
    canon_program *p = canon_program_new(n_in + 1, n_par);
    assert_non_null(p);
    return p;
}

/* Finishes a MAP program with `root`, rewrites it, frees the input; returns the form. */
static canon_program *map_done(canon_program *p, uint32_t root) {
    assert_int_not_equal(root, CANON_NONE);
    assert_int_equal(canon_stage_add(p, CANON_DOM_RANGE, root, p->n_slots - 1, CANON_RED_NONE),
                     0);
    assert_false(p->oom);
    canon_program *r = canon_rewrite(p);
    assert_non_null(r);
    assert_int_equal(r->nodes_before, p->n_nodes);
    canon_program_free(p);
    return r;
}

/* Asserts the structural invariants of a normal form. */
static void check_normal(const canon_program *r) {
    assert_false(r->oom);
    assert_int_not_equal(r->hash, 0);
    assert_int_equal(r->hash, canon_hash(r));
    assert_true(r->n_stages >= 1 && r->n_stages <= CANON_MAX_STAGES);
    for (uint32_t i = 0; i < r->n_nodes; i++) {
        const canon_node *n = &r->nodes[i];
        assert_true(n->kind < CANON_KIND_COUNT);
        assert_false(canon_kinds[n->kind].flags & CANON_SUGAR);
        assert_int_equal(n->arity, canon_kinds[n->kind].arity);
        assert_int_equal(n->pad_, 0);
        for (unsigned k = 0; k < 3; k++) {
            if (k < n->arity)
                assert_true(n->op[k] < i);
            else
                assert_int_equal(n->op[k], CANON_NONE);
        }
        if (n->kind == CANON_LOAD)
            assert_true(n->arg < r->n_slots);
        if (n->kind == CANON_PARAM)
            assert_true(n->arg < r->n_params);
        if (n->kind == CANON_ACC)
            assert_true(n->arg < r->n_stages);
    }
    for (uint32_t s = 0; s < r->n_stages; s++) {
        assert_true(r->stages[s].root < r->n_nodes);
        if (r->stages[s].store_slot != CANON_NONE)
            assert_true(r->stages[s].store_slot < r->n_slots);
    }
    /* every node is reachable from a stage root: renumbering dropped the garbage */
    uint8_t live[256] = {0};
    assert_true(r->n_nodes <= 256);
    for (uint32_t s = 0; s < r->n_stages; s++)
        live[r->stages[s].root] = 1;
    for (uint32_t i = r->n_nodes; i-- > 0;)
        for (unsigned k = 0; live[i] && k < r->nodes[i].arity; k++)
            live[r->nodes[i].op[k]] = 1;
    for (uint32_t i = 0; i < r->n_nodes; i++)
        assert_true(live[i]);
}

/* Counts the nodes of kind k in r. */
static unsigned count_kind(const canon_program *r, canon_kind k) {
    unsigned c = 0;
    for (uint32_t i = 0; i < r->n_nodes; i++)
        c += r->nodes[i].kind == k;
    return c;
}

/* True when r has a CONST node with exactly the bits of v. */
static int has_const(const canon_program *r, float v) {
    for (uint32_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].kind == CANON_CONST && canon_f2u(r->nodes[i].value) == canon_f2u(v))
            return 1;
    return 0;
}

static const canon_node *root_node(const canon_program *r, uint32_t stage) {
    return &r->nodes[r->stages[stage].root];
}

/* ---- tables --------------------------------------------------------------------------- */
static void test_op_table(void **state) {
    (void)state;
    for (unsigned op = 0; op < CANON_OP_COUNT; op++) {
        const canon_op_info *info = canon_op_get((canon_op)op);
        assert_non_null(info);
        assert_int_equal(info->op, op);
        assert_non_null(info->name);
        assert_non_null(info->math);
        assert_true(info->n_in <= 2 && info->n_par <= CANON_MAX_PARAMS);
    }
    assert_null(canon_op_get(CANON_OP_COUNT));
    assert_null(canon_op_get((canon_op)-1));
    assert_string_equal(canon_op_get(CANON_OP_vector_add_f32)->name, "vector_add_f32");
    assert_int_equal(canon_op_get(CANON_OP_reduce_max_f32)->reduce, CANON_RED_MAX);
    assert_int_equal(canon_op_get(CANON_OP_gemm_f32)->family, CANON_FAM_CONTRACT);
    assert_int_equal(canon_op_get(CANON_OP_vector_clip_f32)->n_par, 2);
    assert_int_equal(canon_op_get(CANON_OP_softmax_f32)->min_n, 1);
}

static void test_kind_table(void **state) {
    (void)state;
    for (unsigned k = 0; k < CANON_KIND_COUNT; k++) {
        assert_non_null(canon_kinds[k].name);
        if (canon_kinds[k].flags & CANON_LEAF)
            assert_int_equal(canon_kinds[k].arity, 0);
        else
            assert_true(canon_kinds[k].arity >= 1 && canon_kinds[k].arity <= 3);
        if (canon_kinds[k].flags & CANON_COMM)
            assert_int_equal(canon_kinds[k].arity, 2);
        /* stable codes: nonzero and distinct */
        assert_int_not_equal(canon_kinds[k].code, 0);
        for (unsigned j = 0; j < k; j++)
            if (canon_kinds[j].code == canon_kinds[k].code)
                fail_msg("%s and %s share code %u", canon_kinds[j].name, canon_kinds[k].name,
                         canon_kinds[k].code);
        /* the expression language: a spelling exactly for writable kinds, one kind per
         * (syntax, spelling), unary prefixes and binary operators of the right arity */
        const canon_kind_info *ki = &canon_kinds[k];
        assert_true((ki->syntax == CANON_SYN_NONE) == (ki->spelling[0] == '\0'));
        assert_true(ki->syntax == CANON_SYN_NONE || !(ki->flags & CANON_LEAF));
        if (ki->syntax == CANON_SYN_PREFIX)
            assert_int_equal(ki->arity, 1);
        if (ki->syntax >= CANON_SYN_CMP)
            assert_int_equal(ki->arity, 2);
        for (unsigned j = 0; j < k; j++)
            if (ki->syntax != CANON_SYN_NONE && canon_kinds[j].syntax == ki->syntax &&
                strcmp(canon_kinds[j].spelling, ki->spelling) == 0)
                fail_msg("%s and %s are both spelled %s", canon_kinds[j].name, ki->name,
                         ki->spelling);
        assert_true(ki->test_lo <= ki->test_hi);
    }
    assert_string_equal(canon_kinds[CANON_ADD].name, "ADD");
    assert_int_equal(canon_kinds[CANON_CLIP].arity, 3);
    assert_true(canon_kinds[CANON_SIGMOID].flags & CANON_SUGAR);
}

/* ---- builder ---------------------------------------------------------------------------- */
static void test_builder(void **state) {
    (void)state;
    canon_program *p = canon_program_new(3, 1);
    assert_non_null(p);
    uint32_t a = ld(p, 0), b = ld(p, 1);
    assert_int_equal(ld(p, 0), a); /* hash-consed leaves */
    assert_int_not_equal(a, b);
    uint32_t s = bin(p, CANON_ADD, a, b);
    assert_int_equal(bin(p, CANON_ADD, a, b), s);
    assert_int_not_equal(bin(p, CANON_ADD, b, a), s); /* ordering is the rewriter's job */
    assert_int_not_equal(kc(p, 0.0f), kc(p, -0.0f));   /* constants by bit pattern */
    assert_int_equal(kc(p, NAN), kc(p, NAN));
    assert_int_equal(kc(p, 0.5f), kc(p, 0.5f));
    assert_int_equal(canon_leaf(p, CANON_PARAM, 0), canon_leaf(p, CANON_PARAM, 0));
    /* growth past the initial capacity keeps topological order and identity */
    uint32_t x = a;
    for (int i = 0; i < 100; i++)
        x = bin(p, CANON_MUL, x, kc(p, (float)i));
    assert_true(p->n_nodes > 200);
    assert_false(p->oom);
    for (uint32_t i = 0; i < p->n_nodes; i++)
        for (unsigned k = 0; k < p->nodes[i].arity; k++)
            assert_true(p->nodes[i].op[k] < i);
    for (unsigned st = 0; st < CANON_MAX_STAGES; st++)
        assert_int_equal(canon_stage_add(p, CANON_DOM_RANGE, x, 2, CANON_RED_NONE), st);
    assert_int_equal(canon_stage_add(p, CANON_DOM_RANGE, x, 2, CANON_RED_NONE), CANON_NONE);
    assert_false(p->oom);
    canon_program_free(p);
    canon_program_free(NULL);
}

static void test_builder_errors(void **state) {
    (void)state;
    canon_program *p = canon_program_new(2, 0);
    assert_non_null(p);
    assert_int_equal(canon_stage_add(p, CANON_DOM_RANGE, CANON_NONE, 1, CANON_RED_NONE),
                     CANON_NONE);
    assert_int_equal(p->n_stages, 0);
    assert_int_equal(un(p, CANON_NEG, CANON_NONE), CANON_NONE); /* propagation */
    assert_true(p->oom);
    canon_program *q = canon_program_new(2, 0);
    assert_non_null(q);
    assert_int_equal(bin(q, CANON_ADD, ld(q, 0), 7), CANON_NONE); /* not a node yet */
    assert_true(q->oom);
    assert_null(canon_rewrite(q)); /* an unusable program has no normal form */
    canon_program *l = canon_program_new(2, 0);
    assert_non_null(l);
    assert_int_equal(canon_leaf(l, CANON_ADD, 0), CANON_NONE);
    assert_true(l->oom);
    canon_program_free(l);
    canon_program_free(q);
    canon_program_free(p);
}

/* ---- every op ---------------------------------------------------------------------------- */
static void test_every_op(void **state) {
    (void)state;
    printf("%-32s %6s %6s  %s\n", "op", "before", "after", "hash");
    for (unsigned op = 0; op < CANON_OP_COUNT; op++) {
        const canon_op_info *info = canon_op_get((canon_op)op);
        canon_program *p = canon_form_build((canon_op)op);
        assert_non_null(p);
        assert_false(p->oom);
        assert_int_equal(p->op, op);
        assert_int_equal(p->hash, 0);
        canon_program *r = canon_rewrite(p);
        assert_non_null(r);
        check_normal(r);
        assert_int_equal(r->op, op);
        assert_int_equal(r->nodes_before, p->n_nodes);
        assert_int_equal(r->n_params, info->n_par);
        /* a second build and rewrite gives the very same node array and hash */
        canon_program *p2 = canon_form_build((canon_op)op);
        canon_program *r2 = canon_rewrite(p2);
        assert_non_null(r2);
        assert_int_equal(r2->hash, r->hash);
        assert_int_equal(r2->n_nodes, r->n_nodes);
        assert_memory_equal(r2->nodes, r->nodes, r->n_nodes * sizeof *r->nodes);
        /* rewriting a normal form is the identity */
        canon_program *r3 = canon_rewrite(r);
        assert_non_null(r3);
        assert_int_equal(r3->hash, r->hash);
        assert_memory_equal(r3->nodes, r->nodes, r->n_nodes * sizeof *r->nodes);
        /* the process cache holds the same form */
        const canon_program *f = canon_form((canon_op)op);
        assert_non_null(f);
        assert_int_equal(f->hash, r->hash);
        assert_int_equal(f->op, op);
        printf("%-32s %6u %6u  %016llx\n", info->name, (unsigned)r->nodes_before,
               (unsigned)r->n_nodes, (unsigned long long)r->hash);
        canon_program_free(r3);
        canon_program_free(r2);
        canon_program_free(p2);
        canon_program_free(r);
        canon_program_free(p);
    }
    assert_null(canon_form(CANON_OP_COUNT));
    assert_null(canon_form_build(CANON_OP_COUNT));
}

static void test_family_shapes(void **state) {
    (void)state;
    const canon_program *f = canon_form(CANON_OP_vector_add_f32);
    assert_int_equal(f->n_slots, 3);
    assert_int_equal(f->n_stages, 1);
    assert_int_equal(f->stages[0].store_slot, 2);
    assert_int_equal(f->result_stage, CANON_NONE);

    f = canon_form(CANON_OP_reduce_min_f32);
    assert_int_equal(f->n_slots, 1);
    assert_int_equal(f->stages[0].reduce, CANON_RED_MIN);
    assert_int_equal(f->stages[0].store_slot, CANON_NONE);
    assert_int_equal(f->result_stage, 0);

    f = canon_form(CANON_OP_mse_loss_f32);
    assert_int_equal(f->n_slots, 2);
    assert_int_equal(f->n_stages, 2);
    assert_int_equal(f->stages[0].reduce, CANON_RED_SUM);
    assert_int_equal(f->stages[1].domain, CANON_DOM_SCALAR);
    assert_int_equal(f->stages[1].reduce, CANON_RED_NONE);
    assert_int_equal(f->result_stage, 1);
    assert_int_equal(root_node(f, 1)->kind, CANON_DIV); /* ACC0 / LEN */

    f = canon_form(CANON_OP_softmax_f32);
    assert_int_equal(f->n_slots, 2);
    assert_int_equal(f->n_stages, 3);
    assert_int_equal(f->stages[0].reduce, CANON_RED_MAX);
    assert_int_equal(root_node(f, 0)->kind, CANON_LOAD);
    assert_int_equal(f->stages[1].store_slot, 1);
    assert_int_equal(f->stages[1].reduce, CANON_RED_SUM);
    assert_int_equal(root_node(f, 1)->kind, CANON_EXP);
    assert_int_equal(f->stages[2].store_slot, 1);
    assert_int_equal(root_node(f, 2)->kind, CANON_WHERE); /* NaN ? the default NaN : y/sum */
    assert_int_equal(f->nodes[root_node(f, 2)->op[0]].kind, CANON_NE);
    assert_int_equal(f->nodes[root_node(f, 2)->op[2]].kind, CANON_DIV);
    assert_int_equal(f->result_stage, CANON_NONE);

    f = canon_form(CANON_OP_gemm_f32);
    assert_int_equal(f->n_slots, 3);
    assert_int_equal(f->stages[0].domain, CANON_DOM_CONTRACT);
    assert_int_equal(f->stages[0].store_slot, 2);
    assert_int_equal(f->stages[0].reduce, CANON_RED_SUM);
    assert_int_equal(root_node(f, 0)->kind, CANON_MUL);

    /* the GRID twin of a copy: the same stage and root, over a grid */
    f = canon_grid_form(CANON_OP_buffer_copy);
    assert_non_null(f);
    assert_int_equal(f->n_slots, 2);
    assert_int_equal(f->stages[0].domain, CANON_DOM_GRID);
    assert_int_equal(f->stages[0].store_slot, 1);
    assert_int_equal(root_node(f, 0)->kind, CANON_LOAD);
    assert_false(canon_same_form(f, canon_form(CANON_OP_buffer_copy)));
    assert_null(canon_grid_form(CANON_OP_gemm_f32));
    /* a softmax twin keeps its three stages and SCALAR-free layout */
    f = canon_grid_form(CANON_OP_softmax_f32);
    assert_non_null(f);
    for (uint32_t s = 0; s < f->n_stages; s++)
        assert_int_equal(f->stages[s].domain, CANON_DOM_GRID);

    f = canon_form(CANON_OP_buffer_fill);
    assert_int_equal(f->n_slots, 1);
    assert_int_equal(f->stages[0].store_slot, 0);
    assert_int_equal(root_node(f, 0)->kind, CANON_PARAM);
}

/* ---- identities between forms ------------------------------------------------------------ */
static void test_sub_is_add_neg(void **state) {
    (void)state;
    canon_program *p = map_new(2, 0);
    canon_program *r = map_done(p, bin(p, CANON_ADD, ld(p, 0), un(p, CANON_NEG, ld(p, 1))));
    assert_int_equal(canon_form(CANON_OP_vector_sub_f32)->hash, r->hash);
    canon_program_free(r);
}

static void test_relu_is_max0(void **state) {
    (void)state;
    canon_program *p = map_new(1, 0);
    canon_program *r = map_done(p, bin(p, CANON_MAX, ld(p, 0), kc(p, 0.0f)));
    assert_int_equal(canon_form(CANON_OP_vector_relu_f32)->hash, r->hash);
    /* -0 is a different constant: max(x, -0) is a different function */
    p = map_new(1, 0);
    canon_program *rn = map_done(p, bin(p, CANON_MAX, ld(p, 0), kc(p, -0.0f)));
    assert_int_not_equal(rn->hash, r->hash);
    canon_program_free(rn);
    canon_program_free(r);
}

static void test_commutative_order(void **state) {
    (void)state;
    canon_program *p = map_new(2, 0);
    canon_program *r1 = map_done(p, bin(p, CANON_ADD, ld(p, 0), ld(p, 1)));
    p = map_new(2, 0);
    uint32_t b = ld(p, 1), a = ld(p, 0); /* other creation order too */
    canon_program *r2 = map_done(p, bin(p, CANON_ADD, b, a));
    assert_int_equal(r1->hash, r2->hash);
    assert_int_equal(r1->hash, canon_form(CANON_OP_vector_add_f32)->hash);
    assert_memory_equal(r1->nodes, r2->nodes, r1->n_nodes * sizeof *r1->nodes);

    /* nested: (x0*x1) + exp(x0) == exp(x0) + (x1*x0), with garbage and creation order
     * varied; the node arrays match after renumbering */
    p = map_new(2, 0);
    uint32_t m = bin(p, CANON_MUL, ld(p, 0), ld(p, 1));
    canon_program *r3 = map_done(p, bin(p, CANON_ADD, m, un(p, CANON_EXP, ld(p, 0))));
    p = map_new(2, 0);
    un(p, CANON_TANH, kc(p, 5.0f)); /* unreachable */
    uint32_t e = un(p, CANON_EXP, ld(p, 0));
    uint32_t m2 = bin(p, CANON_MUL, ld(p, 1), ld(p, 0));
    canon_program *r4 = map_done(p, bin(p, CANON_ADD, e, m2));
    assert_int_equal(r3->hash, r4->hash);
    assert_int_equal(r3->n_nodes, 5);
    assert_memory_equal(r3->nodes, r4->nodes, r3->n_nodes * sizeof *r3->nodes);

    /* non-commutative operands keep their order */
    p = map_new(2, 0);
    canon_program *d1 = map_done(p, bin(p, CANON_DIV, ld(p, 0), ld(p, 1)));
    p = map_new(2, 0);
    canon_program *d2 = map_done(p, bin(p, CANON_DIV, ld(p, 1), ld(p, 0)));
    assert_int_not_equal(d1->hash, d2->hash);
    canon_program_free(d2);
    canon_program_free(d1);
    canon_program_free(r4);
    canon_program_free(r3);
    canon_program_free(r2);
    canon_program_free(r1);
}

static void test_gemm_matvec_share(void **state) {
    (void)state;
    assert_int_equal(canon_form(CANON_OP_gemm_f32)->hash, canon_form(CANON_OP_matvec_f32)->hash);
}

/* Ops whose normal forms coincide on purpose (same kernel). */
static int expected_equal(unsigned a, unsigned b) {
    return (a == CANON_OP_gemm_f32 && b == CANON_OP_matvec_f32) ||
           (a == CANON_OP_matvec_f32 && b == CANON_OP_gemm_f32);
}

static void test_distinct_hashes(void **state) {
    (void)state;
    unsigned equal_pairs = 0;
    for (unsigned a = 0; a < CANON_OP_COUNT; a++)
        for (unsigned b = a + 1; b < CANON_OP_COUNT; b++) {
            int eq = canon_form((canon_op)a)->hash == canon_form((canon_op)b)->hash;
            if (eq != expected_equal(a, b))
                fail_msg("%s / %s: hashes %s", canon_op_get((canon_op)a)->name,
                         canon_op_get((canon_op)b)->name, eq ? "equal" : "differ");
            equal_pairs += (unsigned)eq;
        }
    assert_int_equal(equal_pairs, 1);
}

/* ---- rules -------------------------------------------------------------------------------- */
static void test_no_unsafe_simplification(void **state) {
    (void)state;
    canon_program *p = map_new(1, 0);
    canon_program *r = map_done(p, bin(p, CANON_ADD, ld(p, 0), kc(p, 0.0f)));
    assert_int_equal(root_node(r, 0)->kind, CANON_ADD);
    assert_true(has_const(r, 0.0f));
    canon_program_free(r);

    p = map_new(1, 0);
    r = map_done(p, bin(p, CANON_MUL, ld(p, 0), kc(p, 0.0f)));
    assert_int_equal(root_node(r, 0)->kind, CANON_MUL);
    assert_true(has_const(r, 0.0f));
    canon_program_free(r);

    p = map_new(1, 0); /* x - x stays (Inf - Inf is NaN) */
    r = map_done(p, bin(p, CANON_SUB, ld(p, 0), ld(p, 0)));
    assert_int_equal(root_node(r, 0)->kind, CANON_ADD);
    assert_int_equal(count_kind(r, CANON_NEG), 1);
    canon_program_free(r);

    p = map_new(1, 0); /* no reassociation: (x + 1) + 2 keeps both constants */
    r = map_done(p, bin(p, CANON_ADD, bin(p, CANON_ADD, ld(p, 0), kc(p, 1.0f)), kc(p, 2.0f)));
    assert_int_equal(count_kind(r, CANON_ADD), 2);
    assert_false(has_const(r, 3.0f));
    canon_program_free(r);
}

static void test_neg_neg(void **state) {
    (void)state;
    canon_program *p = map_new(1, 0);
    canon_program *r = map_done(p, un(p, CANON_NEG, un(p, CANON_NEG, ld(p, 0))));
    assert_int_equal(r->n_nodes, 1);
    assert_int_equal(root_node(r, 0)->kind, CANON_LOAD);
    assert_int_equal(r->nodes_before, 3);
    canon_program_free(r);

    p = map_new(2, 0); /* a - (-b) = a + b */
    r = map_done(p, bin(p, CANON_SUB, ld(p, 0), un(p, CANON_NEG, ld(p, 1))));
    assert_int_equal(r->hash, canon_form(CANON_OP_vector_add_f32)->hash);
    canon_program_free(r);
}

static void test_constant_folding(void **state) {
    (void)state;
    canon_program *p = map_new(0, 0);
    canon_program *r = map_done(p, bin(p, CANON_ADD, kc(p, 1.0f), kc(p, 2.0f)));
    assert_int_equal(r->n_nodes, 1);
    assert_int_equal(root_node(r, 0)->kind, CANON_CONST);
    assert_true(root_node(r, 0)->value == 3.0f);
    canon_program_free(r);

    p = map_new(0, 0);
    r = map_done(p, un(p, CANON_EXP, kc(p, 0.0f)));
    assert_int_equal(r->n_nodes, 1);
    assert_true(root_node(r, 0)->value == 1.0f);
    canon_program_free(r);

    /* results that are NaN or -0 fold too, bit-exactly */
    p = map_new(0, 0);
    r = map_done(p, un(p, CANON_NEG, kc(p, 0.0f)));
    assert_int_equal(canon_f2u(root_node(r, 0)->value), 0x80000000u);
    canon_program_free(r);
    p = map_new(0, 0);
    r = map_done(p, bin(p, CANON_DIV, kc(p, 0.0f), kc(p, 0.0f)));
    assert_int_equal(r->n_nodes, 1);
    assert_true(isnan(root_node(r, 0)->value));
    canon_program_free(r);

    /* nested: max(x, 2*3 - 1) folds the constant subtree only; sigmoid(0) = 0.5 */
    p = map_new(1, 0);
    uint32_t c = bin(p, CANON_SUB, bin(p, CANON_MUL, kc(p, 2.0f), kc(p, 3.0f)), kc(p, 1.0f));
    r = map_done(p, bin(p, CANON_MAX, ld(p, 0), c));
    assert_int_equal(r->n_nodes, 3);
    assert_true(has_const(r, 5.0f));
    canon_program_free(r);
    p = map_new(0, 0);
    r = map_done(p, un(p, CANON_SIGMOID, kc(p, 0.0f)));
    assert_int_equal(r->n_nodes, 1);
    assert_true(root_node(r, 0)->value == 0.5f);
    canon_program_free(r);
}

static void test_division_by_constants(void **state) {
    (void)state;
    canon_program *p = map_new(1, 0);
    canon_program *r = map_done(p, bin(p, CANON_DIV, ld(p, 0), kc(p, 4.0f)));
    assert_int_equal(root_node(r, 0)->kind, CANON_MUL);
    assert_true(has_const(r, 0.25f));
    assert_int_equal(count_kind(r, CANON_DIV), 0);
    /* equal to a hand-written x * 0.25 */
    p = map_new(1, 0);
    canon_program *m = map_done(p, bin(p, CANON_MUL, kc(p, 0.25f), ld(p, 0)));
    assert_int_equal(m->hash, r->hash);
    canon_program_free(m);
    canon_program_free(r);

    p = map_new(1, 0);
    r = map_done(p, bin(p, CANON_DIV, ld(p, 0), kc(p, -0.5f)));
    assert_int_equal(root_node(r, 0)->kind, CANON_MUL);
    assert_true(has_const(r, -2.0f));
    canon_program_free(r);

    const float keep[] = {3.0f, 0.0f, 0x1p127f /* 1/c subnormal */, 0x1p-127f /* subnormal */,
                          INFINITY, 0.1f};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        p = map_new(1, 0);
        r = map_done(p, bin(p, CANON_DIV, ld(p, 0), kc(p, keep[i])));
        assert_int_equal(root_node(r, 0)->kind, CANON_DIV);
        assert_true(has_const(r, keep[i]));
        canon_program_free(r);
    }

    /* x / 1 and x * 1 are x; 1 / x is not */
    p = map_new(1, 0);
    r = map_done(p, bin(p, CANON_DIV, bin(p, CANON_MUL, kc(p, 1.0f), ld(p, 0)), kc(p, 1.0f)));
    assert_int_equal(r->n_nodes, 1);
    assert_int_equal(root_node(r, 0)->kind, CANON_LOAD);
    canon_program_free(r);
    p = map_new(1, 0);
    r = map_done(p, bin(p, CANON_DIV, kc(p, 1.0f), ld(p, 0)));
    assert_int_equal(root_node(r, 0)->kind, CANON_DIV);
    canon_program_free(r);
}

static void test_sugar_expansions(void **state) {
    (void)state;
    /* clip(x, lo, hi) = min(max(x, lo), hi) */
    const canon_program *f = canon_form(CANON_OP_vector_clip_f32);
    const canon_node *n = root_node(f, 0);
    assert_int_equal(n->kind, CANON_MIN);
    assert_int_equal(f->n_nodes, 5);
    assert_int_equal(count_kind(f, CANON_MAX), 1);
    assert_int_equal(count_kind(f, CANON_PARAM), 2);
    const canon_node *mx = NULL, *hi = NULL;
    for (unsigned k = 0; k < 2; k++) {
        const canon_node *o = &f->nodes[n->op[k]];
        if (o->kind == CANON_MAX)
            mx = o;
        else
            hi = o;
    }
    assert_non_null(mx);
    assert_int_equal(hi->kind, CANON_PARAM);
    assert_int_equal(hi->arg, 1);
    unsigned seen = 0;
    for (unsigned k = 0; k < 2; k++) {
        const canon_node *o = &f->nodes[mx->op[k]];
        seen |= o->kind == CANON_LOAD ? 1u : (o->kind == CANON_PARAM && o->arg == 0) ? 2u : 4u;
    }
    assert_int_equal(seen, 3);

    /* sigmoid(x) = 1 / (1 + exp(-x)) */
    f = canon_form(CANON_OP_sigmoid_f32);
    n = root_node(f, 0);
    assert_int_equal(n->kind, CANON_DIV);
    assert_int_equal(f->nodes[n->op[0]].kind, CANON_CONST);
    assert_true(f->nodes[n->op[0]].value == 1.0f);
    const canon_node *add = &f->nodes[n->op[1]];
    assert_int_equal(add->kind, CANON_ADD);
    assert_int_equal(f->n_nodes, 6); /* x, -x, exp, 1, add, div: the 1 is shared */
    assert_int_equal(count_kind(f, CANON_EXP), 1);
    assert_int_equal(count_kind(f, CANON_NEG), 1);
    assert_int_equal(count_kind(f, CANON_CONST), 1);

    /* the whole sugar vocabulary is gone from every form (gelu, losses included) */
    for (unsigned op = 0; op < CANON_OP_COUNT; op++)
        for (unsigned k = 0; k < CANON_KIND_COUNT; k++)
            if (canon_kinds[k].flags & CANON_SUGAR)
                assert_int_equal(count_kind(canon_form((canon_op)op), (canon_kind)k), 0);

    /* binary cross entropy: the two clips are one shared node */
    f = canon_form(CANON_OP_binary_cross_entropy_loss_f32);
    assert_int_equal(count_kind(f, CANON_MIN), 1);
    assert_int_equal(count_kind(f, CANON_MAX), 1);
    assert_int_equal(count_kind(f, CANON_LOG), 2);
}

/* ---- hash and printer --------------------------------------------------------------------- */
static void test_golden_identity(void **state) {
    (void)state;
    const canon_program *f = canon_form(CANON_OP_vector_add_f32);
    assert_int_equal(f->ident_len, sizeof golden_vector_add);
    assert_memory_equal(f->ident, golden_vector_add, sizeof golden_vector_add);
}

static void test_hash_ignores_op(void **state) {
    (void)state;
    canon_program *p = canon_form_build(CANON_OP_vector_add_f32);
    canon_program *r = canon_rewrite(p);
    assert_non_null(r);
    uint64_t h = canon_hash(r);
    r->op = CANON_OP_vector_mul_f32;
    r->nodes_before = 99;
    assert_int_equal(canon_hash(r), h);
    r->stages[0].store_slot = 1; /* the sinks are part of the identity */
    assert_int_not_equal(canon_hash(r), h);
    canon_program_free(r);
    canon_program_free(p);
}

static void test_print(void **state) {
    (void)state;
    char buf[4096];
    const canon_program *f = canon_form(CANON_OP_vector_sub_f32);
    size_t len = canon_print(f, buf, sizeof buf);
    assert_true(len > 0 && len < sizeof buf);
    assert_int_equal(strlen(buf), len);
    printf("%s", buf);
    assert_non_null(strstr(buf, "form vector_sub_f32"));
    assert_non_null(strstr(buf, "= LOAD s0\n"));
    assert_non_null(strstr(buf, "= LOAD s1\n"));
    assert_non_null(strstr(buf, "%3 = ADD %"));
    assert_non_null(strstr(buf, "stage 0 RANGE: store s2 <- %3\n"));
    assert_non_null(strstr(buf, "nodes 4 (before rewrite 3)\n"));
    char hash[40];
    snprintf(hash, sizeof hash, "hash %016llx\n", (unsigned long long)f->hash);
    assert_non_null(strstr(buf, hash));

    f = canon_form(CANON_OP_mse_loss_f32);
    canon_print(f, buf, sizeof buf);
    printf("%s", buf);
    assert_non_null(strstr(buf, "stage 0 RANGE: reduce sum <- %"));
    assert_non_null(strstr(buf, "stage 1 SCALAR: value <- %"));
    assert_non_null(strstr(buf, " = ACC stage0\n"));
    assert_non_null(strstr(buf, " = LEN\n"));
    assert_non_null(strstr(buf, "result stage 1\n"));

    f = canon_form(CANON_OP_softmax_f32);
    canon_print(f, buf, sizeof buf);
    assert_non_null(strstr(buf, "stage 1 RANGE: store s1 <- %"));
    assert_non_null(strstr(buf, ", reduce sum\n"));

    f = canon_form(CANON_OP_gelu_f32);
    canon_print(f, buf, sizeof buf);
    assert_non_null(strstr(buf, " = CONST 0.0447149985\n"));

    /* snprintf contract: the needed length whatever the capacity, always terminated */
    len = canon_print(f, buf, sizeof buf);
    char small[16];
    memset(small, 'x', sizeof small);
    assert_int_equal(canon_print(f, small, sizeof small), len);
    assert_int_equal(small[sizeof small - 1], '\0');
    assert_memory_equal(small, buf, sizeof small - 1);
    assert_int_equal(canon_print(f, NULL, 0), len);
}

/* ---- thread safety of the form cache -------------------------------------------------- */
static void *form_thread(void *arg) {
    uint64_t *sum = arg;
    for (unsigned op = 0; op < CANON_OP_COUNT; op++)
        *sum += canon_form((canon_op)op)->hash;
    return NULL;
}

static void test_form_threads(void **state) {
    (void)state;
    pthread_t t[4];
    uint64_t sum[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, form_thread, &sum[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(sum[i], sum[0]);
    assert_ptr_equal(canon_form(CANON_OP_tanh_f32), canon_form(CANON_OP_tanh_f32));
}

/* ---- scalar semantics against libm (double) ----------------------------------------------- */
/* Distance in float32 steps between a and b (both non-NaN); +-Inf are one step past max. */
static uint64_t ulp_dist(float a, float b) {
    int64_t ia = canon_f2u(a) & 0x7fffffffu, ib = canon_f2u(b) & 0x7fffffffu;
    if (canon_f2u(a) >> 31)
        ia = -ia;
    if (canon_f2u(b) >> 31)
        ib = -ib;
    return (uint64_t)(ia > ib ? ia - ib : ib - ia);
}

typedef float (*f32_fn)(float);
typedef double (*f64_fn)(double);

/* Checks f against ref (rounded to float) on x: NaN exactly when ref is NaN, else within
 * `ulps` steps.  Returns 1 on a mismatch and prints it. */
static int check_point(const char *name, f32_fn f, f64_fn ref, float x, uint64_t ulps) {
    float got = f(x);
    float want = (float)ref((double)x);
    if (isnan(want) || isnan(got)) {
        if (isnan(want) != isnan(got)) {
            printf("%s(%a) = %a, want %a\n", name, (double)x, (double)got, (double)want);
            return 1;
        }
        return 0;
    }
    if (ulp_dist(got, want) > ulps) {
        printf("%s(%a) = %a, want %a (%llu ulp)\n", name, (double)x, (double)got,
               (double)want, (unsigned long long)ulp_dist(got, want));
        return 1;
    }
    return 0;
}

static float exp_f(float x) { return canon_exp_f32(x); }
static float log_f(float x) { return canon_log_f32(x); }
static float tanh_f(float x) { return canon_tanh_f32(x); }

/* Runs check_point over specials, a sweep of [lo, hi] and (for log) a geometric sweep. */
static int sweep(const char *name, f32_fn f, f64_fn ref, float lo, float hi, int geometric) {
    static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 0.625f, -0.625f,
                                     0x1p-149f, -0x1p-149f, 0x1p-127f, 0x1.fffffcp-127f,
                                     0x1p-126f, 88.7f, 88.72f, 88.8f, 89.0f, -87.3f, -100.0f,
                                     -103.9f, -104.0f, -110.0f, 1e30f, FLT_MAX, -FLT_MAX,
                                     INFINITY, -INFINITY, NAN, -NAN, 1e-7f, 0.99999988f};
    int bad = 0;
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        bad += check_point(name, f, ref, specials[i], 2);
    for (int i = 0; i <= 400; i++) {
        float x = geometric ? (float)(lo * pow((double)hi / lo, i / 400.0))
                            : (float)(lo + (hi - lo) * (i / 400.0));
        bad += check_point(name, f, ref, x, 2);
        bad += check_point(name, f, ref, nextafterf(x, INFINITY), 2);
    }
    return bad;
}

static void test_scalar_transcendentals(void **state) {
    (void)state;
    int bad = sweep("exp", exp_f, exp, -105.0f, 89.0f, 0);
    bad += sweep("exp", exp_f, exp, -1.0f, 1.0f, 0);
    bad += sweep("log", log_f, log, 0x1p-149f, FLT_MAX, 1);
    bad += sweep("log", log_f, log, 0.5f, 2.0f, 0);
    bad += sweep("tanh", tanh_f, tanh, -12.0f, 12.0f, 0);
    bad += sweep("tanh", tanh_f, tanh, 1e-30f, 1.0f, 1);
    assert_int_equal(bad, 0);
    /* exact special values */
    assert_true(canon_exp_f32(0.0f) == 1.0f && canon_exp_f32(-0.0f) == 1.0f);
    assert_true(canon_exp_f32(INFINITY) == INFINITY && canon_exp_f32(-INFINITY) == 0.0f);
    assert_true(isnan(canon_exp_f32(NAN)));
    assert_true(canon_log_f32(0.0f) == -INFINITY && canon_log_f32(-0.0f) == -INFINITY);
    assert_true(canon_log_f32(1.0f) == 0.0f && canon_log_f32(INFINITY) == INFINITY);
    assert_true(isnan(canon_log_f32(-1.0f)) && isnan(canon_log_f32(-INFINITY)));
    assert_true(isnan(canon_log_f32(NAN)));
    assert_true(canon_tanh_f32(INFINITY) == 1.0f && canon_tanh_f32(-INFINITY) == -1.0f);
    assert_true(isnan(canon_tanh_f32(NAN)));
}

/* tanh is odd, so tanh(-0) = -0 (as libm and NumPy give). */
/* The bounds canon/scalar.h states for tanh, measured over every float32 once (0.73 ulp
 * below CANON_TANH_SMALL, 1.33 above), checked here over every float32 of [0.001, 1], the
 * range around the switch where both maxima lie: error in ulps of the correctly rounded
 * result, against double tanh. */
static void test_scalar_tanh_bound(void **state) {
    (void)state;
    double worst[2] = {0, 0};
    for (uint32_t u = canon_f2u(0.001f); u <= canon_f2u(1.0f); u++) {
        float x = canon_u2f(u);
        double r = tanh((double)x);
        float rf = (float)r;
        double ulp = (double)nextafterf(rf, INFINITY) - (double)rf;
        double e = fabs((double)canon_tanh_f32(x) - r) / ulp;
        int large = x >= CANON_TANH_SMALL;
        worst[large] = e > worst[large] ? e : worst[large];
    }
    print_message("tanh over [0.001, 1]: %.3f ulp below %g, %.3f above\n", worst[0],
                  (double)CANON_TANH_SMALL, worst[1]);
    assert_true(worst[0] <= 0.74 && worst[1] <= 1.34);
}

static void test_scalar_tanh_signed_zero(void **state) {
    (void)state;
    assert_int_equal(canon_f2u(canon_tanh_f32(0.0f)), 0u);
    assert_int_equal(canon_f2u(canon_tanh_f32(-0.0f)), canon_f2u((float)tanh(-0.0)));
}

static void test_scalar_minmax(void **state) {
    (void)state;
    const float vals[] = {-INFINITY, -2.5f, -0.0f, 0.0f, 0x1p-149f, 1.0f, INFINITY};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float x = vals[i];
        assert_true(isnan(canon_min_f32(x, NAN)) && isnan(canon_min_f32(NAN, x)));
        assert_true(isnan(canon_max_f32(x, NAN)) && isnan(canon_max_f32(NAN, x)));
        for (size_t j = 0; j < sizeof vals / sizeof vals[0]; j++) {
            float y = vals[j];
            /* reference: the numerically smaller/larger, -0 ordered below +0 */
            double sx = signbit(x) ? -1.0 : 1.0, sy = signbit(y) ? -1.0 : 1.0;
            int x_lt = (double)x < (double)y || ((double)x == (double)y && sx < sy);
            float lo = x_lt ? x : y, hi = x_lt ? y : x;
            assert_int_equal(canon_f2u(canon_min_f32(x, y)), canon_f2u(lo));
            assert_int_equal(canon_f2u(canon_max_f32(x, y)), canon_f2u(hi));
        }
    }
    assert_int_equal(canon_f2u(canon_min_f32(0.0f, -0.0f)), 0x80000000u);
    assert_int_equal(canon_f2u(canon_max_f32(-0.0f, 0.0f)), 0u);
    assert_int_equal(canon_f2u(canon_neg_f32(0.0f)), 0x80000000u);
    assert_int_equal(canon_f2u(canon_abs_f32(-NAN)) >> 31, 0);
}

/* ---- environment knobs (canon/env.h) --------------------------------------------------- */

/* Every parser on the values a user gets wrong: each bad one is refused with the variable
 * and the value named and *out untouched; unset and "" leave the default. */
static void test_env_parsers(void **state) {
    (void)state;
    static const char *const words[] = {"jit", "interp", NULL};
    static const char *const dump[] = CANON_DUMP_WORDS;
    static const struct {
        const char *value;
        int want; /* canon_env_int on 1..100: 1, 0 or -1 */
        long long v;
    } ints[] = {
        {"0", -1, 0}, {"-5", -1, 0}, {"abc", -1, 0}, {"99999999999999999999999", -1, 0},
        {"101", -1, 0}, {" 5", -1, 0}, {"5 ", -1, 0}, {"5x", -1, 0}, {"0x10", -1, 0},
        {"-", -1, 0}, {"", 0, 0}, {"1", 1, 1}, {"100", 1, 100}, {"+7", 1, 7},
    };
    char msg[256];
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        setenv("HOLOGRAM_TEST_KNOB", ints[i].value, 1);
        long long v = -42;
        msg[0] = '\0';
        assert_int_equal(canon_env_int("HOLOGRAM_TEST_KNOB", 1, 100, &v, msg, sizeof msg),
                         ints[i].want);
        assert_int_equal(v, ints[i].want == 1 ? ints[i].v : -42);
        if (ints[i].want < 0) {
            char want[160];
            snprintf(want, sizeof want,
                     "HOLOGRAM_TEST_KNOB=\"%s\" is not an integer from 1 to 100", ints[i].value);
            assert_string_equal(msg, want);
        }
    }
    unsetenv("HOLOGRAM_TEST_KNOB");
    long long v = -42;
    assert_int_equal(canon_env_int("HOLOGRAM_TEST_KNOB", 1, 100, &v, msg, sizeof msg), 0);
    assert_int_equal(v, -42);

    int w = -42;
    setenv("HOLOGRAM_TEST_KNOB", "interp", 1);
    assert_int_equal(canon_env_word("HOLOGRAM_TEST_KNOB", words, &w, msg, sizeof msg), 1);
    assert_int_equal(w, 1);
    for (const char *const *bad = (const char *const[]){"jitt", "JIT", "0", " jit", NULL};
         *bad; bad++) {
        setenv("HOLOGRAM_TEST_KNOB", *bad, 1);
        w = -42;
        assert_int_equal(canon_env_word("HOLOGRAM_TEST_KNOB", words, &w, msg, sizeof msg), -1);
        assert_int_equal(w, -42);
        char want[160];
        snprintf(want, sizeof want, "HOLOGRAM_TEST_KNOB=\"%s\" is not one of: jit, interp",
                 *bad);
        assert_string_equal(msg, want);
    }

    unsigned bits = 99;
    setenv("HOLOGRAM_TEST_KNOB", "opt-ir,canon,", 1);
    assert_int_equal(canon_env_words("HOLOGRAM_TEST_KNOB", dump, &bits, msg, sizeof msg), 1);
    assert_int_equal(bits, CANON_DUMP_OPT_IR | CANON_DUMP_CANON);
    setenv("HOLOGRAM_TEST_KNOB", "ir,irr", 1);
    bits = 99;
    assert_int_equal(canon_env_words("HOLOGRAM_TEST_KNOB", dump, &bits, msg, sizeof msg), -1);
    assert_int_equal(bits, 99);
    assert_string_equal(msg, "HOLOGRAM_TEST_KNOB=\"ir,irr\" has \"irr\", which is not one "
                             "of: canon, ir, opt-ir");

    static const char *const off[] = {"off", NULL};
    const char *path = "unchanged";
    setenv("HOLOGRAM_TEST_KNOB", "/tmp/x", 1);
    assert_int_equal(canon_env_path("HOLOGRAM_TEST_KNOB", off, 16, &w, &path, msg, sizeof msg),
                     1);
    assert_int_equal(w, -1);
    assert_string_equal(path, "/tmp/x");
    setenv("HOLOGRAM_TEST_KNOB", "off", 1);
    assert_int_equal(canon_env_path("HOLOGRAM_TEST_KNOB", off, 16, &w, &path, msg, sizeof msg),
                     1);
    assert_int_equal(w, 0);
    assert_null(path);
    for (const char *const *bad = (const char *const[]){"rel/dir", "OFF", "/0123456789abcdef",
                                                         NULL};
         *bad; bad++) {
        setenv("HOLOGRAM_TEST_KNOB", *bad, 1);
        assert_int_equal(
            canon_env_path("HOLOGRAM_TEST_KNOB", off, 16, &w, &path, msg, sizeof msg), -1);
        char want[200];
        snprintf(want, sizeof want, "HOLOGRAM_TEST_KNOB=\"%s\" is neither an absolute path "
                 "shorter than 16 bytes nor one of: off", *bad);
        assert_string_equal(msg, want);
    }
    unsetenv("HOLOGRAM_TEST_KNOB");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_env_parsers),
        cmocka_unit_test(test_kind_table),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_every_op),
        cmocka_unit_test(test_family_shapes),
        cmocka_unit_test(test_sub_is_add_neg),
        cmocka_unit_test(test_relu_is_max0),
        cmocka_unit_test(test_commutative_order),
        cmocka_unit_test(test_gemm_matvec_share),
        cmocka_unit_test(test_distinct_hashes),
        cmocka_unit_test(test_no_unsafe_simplification),
        cmocka_unit_test(test_neg_neg),
        cmocka_unit_test(test_constant_folding),
        cmocka_unit_test(test_division_by_constants),
        cmocka_unit_test(test_sugar_expansions),
        cmocka_unit_test(test_golden_identity),
        cmocka_unit_test(test_hash_ignores_op),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_form_threads),
        cmocka_unit_test(test_scalar_transcendentals),
        cmocka_unit_test(test_scalar_tanh_bound),
        cmocka_unit_test(test_scalar_tanh_signed_zero),
        cmocka_unit_test(test_scalar_minmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
