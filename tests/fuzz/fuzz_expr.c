/*
 * tests/fuzz/fuzz_expr.c — libFuzzer target for the expression language (canon/expr.c) and
 * the JSON program documents of the expression API (runtime/expr.c, runtime/expr_json.c).
 *
 * Input: byte 0 selects the mode, the rest is the text (copied and NUL-terminated, so an
 * embedded NUL ends it).
 *   bit 0      0: expression text, 1: a JSON program document
 *   bits 1-2   text mode: the declared scalars, fz_scalar_sets[] (none, w, w b, lo hi)
 *
 * Text mode: canon_expr_parse.  A failure has a non-empty message and a column within the
 * text, and hg_expr_compile fails the same way.  A success has well-formed programs
 * (canon_check), a hash that canon_hash recomputes, a rewrite that is deterministic and
 * idempotent (canon_same_form), a listing (canon_print, truncated and whole), and runs on the
 * interpreter (interp_run) at every length of fz_lengths(); through the API it compiles, its
 * variables are the parser's, the document of hg_expr_describe and its "before" program
 * each compile back to the same normal form (hash and "after" program), and
 * hg_expr_run_raw, out of place and in place, gives the interpreter's values.
 * JSON mode: hg_expr_compile(text, NULL) returns HG_OK or an error status with a message; a
 * compiled program passes the same describe round trip and runs with hg_expr_run_raw.
 *
 * A broken invariant prints what broke and aborts, so libFuzzer keeps the input; everything
 * allocated is freed (libFuzzer's leak check).  The engine is the interpreter ("interp",
 * set once): the fuzz build has no JIT, and the replay test of the normal build (replay.c)
 * runs the same engine.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hologram/hologram.h>

#include "canon/canon.h"
#include "runtime/interp.h"

#define FZ_TARGET "fuzz_expr"
#include "fuzz.h"

/* ---- inputs ------------------------------------------------------------------------------ */

/* The scalar names a text may declare: C arrays for canon_expr_parse, JSON for the API. */
static const struct {
    const char *names[2];
    uint32_t n;
    const char *json;
} fz_scalar_sets[4] = {
    {{NULL, NULL}, 0, NULL},
    {{"w", NULL}, 1, "[\"w\"]"},
    {{"w", "b"}, 2, "[\"w\", \"b\"]"},
    {{"lo", "hi"}, 2, "[\"lo\", \"hi\"]"},
};

/* Element values of every input array and parameter: the IEEE specials, both zeros, the
 * ends of the float32 range, a subnormal, and the edges of exp's range. */
static const float fz_values[] = {
    0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, -3.5f, 10.0f, 1e-3f, -88.0f, 89.0f, 1e30f,
    -1e-30f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, INFINITY, -INFINITY, NAN, 3.0f, -0.25f};
#define FZ_N_VALUES (sizeof fz_values / sizeof fz_values[0])

/* The lengths a program of n_nodes nodes runs at, into len[]; returns their count.  Past
 * one interpreter block only for forms of at most FZ_LONG_NODES nodes, to stay cheap. */
#define FZ_MAX_LENGTHS 4
#define FZ_LONG_NODES 32u
static unsigned fz_lengths(uint32_t n_nodes, uint64_t len[FZ_MAX_LENGTHS]) {
    static const uint64_t all[FZ_MAX_LENGTHS] = {0, 1, 17, INTERP_BLOCK + 1};
    memcpy(len, all, sizeof all);
    return n_nodes <= FZ_LONG_NODES ? FZ_MAX_LENGTHS : FZ_MAX_LENGTHS - 1;
}

/* The arrays of one run: n_arrays inputs of exactly n floats (so that ASan sees any access
 * past n), two outputs and the parameters. */
typedef struct {
    float *in[CANON_MAX_INPUTS];
    float *out, *out2;
    float param[CANON_MAX_PARAMS];
    uint32_t n_arrays, n_scalars;
    uint64_t n;
} fz_run;

static void fz_run_init(fz_run *r, uint32_t n_arrays, uint32_t n_scalars, uint64_t n) {
    memset(r, 0, sizeof *r);
    r->n_arrays = n_arrays;
    r->n_scalars = n_scalars;
    r->n = n;
    for (uint32_t i = 0; i < n_arrays; i++) {
        r->in[i] = fz_alloc(n * sizeof(float));
        for (uint64_t j = 0; j < n; j++)
            r->in[i][j] = fz_values[(j + 7 * i) % FZ_N_VALUES];
    }
    r->out = fz_alloc(n * sizeof(float));
    r->out2 = fz_alloc(n * sizeof(float));
    for (uint64_t j = 0; j < n; j++)
        r->out[j] = r->out2[j] = 42.0f; /* overwritten by a map */
    for (uint32_t j = 0; j < n_scalars; j++)
        r->param[j] = fz_values[(5 * j + 2) % FZ_N_VALUES];
}

static void fz_run_free(fz_run *r) {
    for (uint32_t i = 0; i < r->n_arrays; i++)
        free(r->in[i]);
    free(r->out);
    free(r->out2);
}

/* 1 when a and b are the same float32 (bit for bit), or both NaN (whose sign and payload
 * are unspecified). */
static int fz_same(float a, float b) {
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return ua == ub || (isnan(a) && isnan(b));
}

/* Checks out2[0..n) against out[0..n). */
static void fz_same_arrays(const fz_run *r, const char *what) {
    for (uint64_t j = 0; j < r->n; j++)
        FZ_CHECK(fz_same(r->out[j], r->out2[j]), "%s: element %" PRIu64 " of n = %" PRIu64
                 " is %a, the interpreter gave %a", what, j, r->n, (double)r->out2[j],
                 (double)r->out[j]);
}

/* ---- the API ------------------------------------------------------------------------------ */

/* Checks a failed call: an error status among `allowed` (HG_OK-terminated) and a message. */
static void fz_check_error(hg_status st, const hg_status *allowed, const char *what) {
    int ok = 0;
    for (unsigned i = 0; allowed[i] != HG_OK; i++)
        ok |= st == allowed[i];
    FZ_CHECK(ok, "%s returned status %d (%s)", what, (int)st, hg_status_string(st));
    const char *msg = hg_last_error();
    FZ_CHECK(msg && msg[0], "%s returned %s with no message", what, hg_status_string(st));
}

/* The parsed document of hg_expr_describe or hg_expr_variables (fn) of h. */
static cJSON *fz_document(uint64_t h, hg_status (*fn)(uint64_t, char **), const char *what) {
    char *text = NULL;
    hg_status st = fn(h, &text);
    FZ_CHECK(st == HG_OK, "%s: %s (%s)", what, hg_status_string(st), hg_last_error());
    cJSON *doc = cJSON_Parse(text);
    FZ_CHECK(doc && cJSON_IsObject(doc), "%s is not a JSON object: %.200s", what, text);
    hg_free_string(text);
    return doc;
}

/* The size of array member `key` of obj (which must be an array). */
static uint32_t fz_array_size(const cJSON *obj, const char *key) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    FZ_CHECK(cJSON_IsArray(arr), "document member \"%s\" is not an array", key);
    return (uint32_t)cJSON_GetArraySize(arr);
}

/* Compiles program document `text` (what) and returns the describe document of the
 * expression it gives. */
static cJSON *fz_recompile(const char *text, const char *what) {
    uint64_t h = 0;
    hg_status st = hg_expr_compile(text, NULL, &h);
    FZ_CHECK(st == HG_OK, "%s does not compile: %s (%s); document %.300s", what,
             hg_status_string(st), hg_last_error(), text);
    cJSON *doc = fz_document(h, hg_expr_describe, what);
    st = hg_expr_cleanup(h);
    FZ_CHECK(st == HG_OK, "hg_expr_cleanup of %s: %s", what, hg_status_string(st));
    return doc;
}

/* Checks that describe document doc2 (deleted here) has the normal form of doc: the same
 * hash and "after" program. */
static void fz_same_normal_form(const cJSON *doc, cJSON *doc2, const char *what) {
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(doc, "hash");
    const cJSON *hash2 = cJSON_GetObjectItemCaseSensitive(doc2, "hash");
    FZ_CHECK(cJSON_IsString(hash) && cJSON_IsString(hash2) &&
             strcmp(hash->valuestring, hash2->valuestring) == 0,
             "%s compiles to another hash (%s, then %s)", what,
             cJSON_IsString(hash) ? hash->valuestring : "?",
             cJSON_IsString(hash2) ? hash2->valuestring : "?");
    FZ_CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(doc, "after"),
                           cJSON_GetObjectItemCaseSensitive(doc2, "after"), 1),
             "%s compiles to another \"after\" program", what);
    cJSON_Delete(doc2);
}

/* Compiles the describe document of h, and its "before" program alone: each must give h's
 * normal form (the rewrite is idempotent, and program documents keep every node and
 * stage).  Returns h's describe document (caller deletes). */
static cJSON *fz_round_trip(uint64_t h) {
    char *text = NULL;
    hg_status st = hg_expr_describe(h, &text);
    FZ_CHECK(st == HG_OK, "hg_expr_describe: %s (%s)", hg_status_string(st), hg_last_error());
    cJSON *doc = cJSON_Parse(text);
    FZ_CHECK(doc, "the describe document is not JSON: %.300s", text);
    fz_same_normal_form(doc, fz_recompile(text, "the describe document"),
                        "the describe document");
    hg_free_string(text);
    char *before = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "before"));
    FZ_CHECK(before, "the describe document has no \"before\" program");
    fz_same_normal_form(doc, fz_recompile(before, "the \"before\" program"),
                        "the \"before\" program");
    cJSON_free(before);
    return doc;
}

/* 1 when a stage of program document `prog` reduces with min or max (n = 0 is refused). */
static int fz_reduces_min_max(const cJSON *prog) {
    const cJSON *stage;
    cJSON_ArrayForEach(stage, cJSON_GetObjectItemCaseSensitive(prog, "stages")) {
        const cJSON *red = cJSON_GetObjectItemCaseSensitive(stage, "reduce");
        if (cJSON_IsString(red) && (strcmp(red->valuestring, "min") == 0 ||
                                    strcmp(red->valuestring, "max") == 0))
            return 1;
    }
    return 0;
}

/* hg_expr_run_raw of h on r into r->out2 (or in place into r->in[0], in_place), with the
 * scalar into *result.  HG_OK is required, except that min_max_empty (n = 0 and a min or
 * max reduction) requires HG_ERR_INVALID_ARGUMENT; returns 1 when it ran. */
static int fz_run_raw(uint64_t h, fz_run *r, int has_output, int in_place, int min_max_empty,
                      float *result) {
    float *out = !has_output ? NULL : in_place ? r->in[0] : r->out2;
    hg_status st = hg_expr_run_raw(h, (const float *const *)r->in, r->n_arrays, r->param,
                                   r->n_scalars, out, r->n, result);
    if (min_max_empty) {
        static const hg_status allowed[] = {HG_ERR_INVALID_ARGUMENT, HG_OK};
        fz_check_error(st, allowed, "hg_expr_run_raw of min/max at n = 0");
        return 0;
    }
    FZ_CHECK(st == HG_OK, "hg_expr_run_raw at n = %" PRIu64 "%s: %s (%s)", r->n,
             in_place ? " in place" : "", hg_status_string(st), hg_last_error());
    return 1;
}

/* ---- text mode ---------------------------------------------------------------------------- */

/* Checks canon_print of p: the length it needs, truncation, and the whole listing. */
static void fz_check_print(const canon_program *p, const char *what) {
    char small[32];
    size_t need = canon_print(p, small, sizeof small);
    FZ_CHECK(need > 0 && strlen(small) == (need < sizeof small ? need : sizeof small - 1),
             "canon_print of %s into %zu bytes: needs %zu, wrote %zu", what, sizeof small,
             need, strlen(small));
    char *full = fz_alloc(need + 1);
    FZ_CHECK(canon_print(p, full, need + 1) == need && strlen(full) == need &&
             strncmp(full, small, strlen(small)) == 0,
             "canon_print of %s: a second listing differs from the first", what);
    free(full);
}

/* The invariants of a parsed expression's programs. */
static void fz_check_programs(const canon_expr *e) {
    char msg[256];
    FZ_CHECK(canon_check(e->pre, 1, NULL, msg, sizeof msg) == 0,
             "canon_check of the pre-rewrite program: %s", msg);
    FZ_CHECK(canon_check(e->form, 0, NULL, msg, sizeof msg) == 0,
             "canon_check of the normal form: %s", msg);
    FZ_CHECK(e->form->hash != 0 && canon_hash(e->form) == e->form->hash,
             "the form's hash %016" PRIx64 " is not canon_hash's", e->form->hash);
    canon_program *again = canon_rewrite(e->form);
    FZ_CHECK(again, "canon_rewrite of the normal form ran out of memory");
    FZ_CHECK(canon_same_form(again, e->form) && again->hash == e->form->hash,
             "rewriting the normal form again changes it (hash %016" PRIx64 " to %016" PRIx64
             ")", e->form->hash, again->hash);
    canon_program_free(again);
    again = canon_rewrite(e->pre);
    FZ_CHECK(again && canon_same_form(again, e->form),
             "rewriting the pre-rewrite program twice gives two forms");
    canon_program_free(again);
    fz_check_print(e->pre, "the pre-rewrite program");
    fz_check_print(e->form, "the normal form");
}

/* Checks hg_expr_variables of h against the parser's e. */
static void fz_check_variables(uint64_t h, const canon_expr *e) {
    cJSON *doc = fz_document(h, hg_expr_variables, "hg_expr_variables");
    const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
    const cJSON *scalars = cJSON_GetObjectItemCaseSensitive(doc, "scalars");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    FZ_CHECK(fz_array_size(doc, "arrays") == e->n_arrays &&
             fz_array_size(doc, "scalars") == e->n_scalars,
             "hg_expr_variables lists other counts than the parser's %u arrays, %u scalars",
             e->n_arrays, e->n_scalars);
    for (uint32_t i = 0; i < e->n_arrays + e->n_scalars; i++) {
        const cJSON *name = i < e->n_arrays ? cJSON_GetArrayItem(arrays, (int)i)
                                            : cJSON_GetArrayItem(scalars, (int)(i - e->n_arrays));
        FZ_CHECK(cJSON_IsString(name) && strcmp(name->valuestring, e->names[i]) == 0,
                 "hg_expr_variables: variable %u is not \"%s\"", i, e->names[i]);
    }
    FZ_CHECK(cJSON_IsString(kind) && strcmp(kind->valuestring, e->kind) == 0 &&
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "output")) == e->has_output &&
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "result")) == e->has_result,
             "hg_expr_variables: kind, output or result differ from the parser's");
    cJSON_Delete(doc);
}

/* Runs e's normal form on the interpreter (into r->out and *result), then h (the same
 * expression through the API) out of place and in place: the same values. */
static void fz_run_text(const canon_expr *e, uint64_t h, uint64_t n) {
    fz_run r;
    fz_run_init(&r, e->n_arrays, e->n_scalars, n);
    canon_args args = {.n = n};
    for (uint32_t i = 0; i < e->n_arrays; i++)
        args.slot[i] = r.in[i];
    if (e->has_output)
        args.slot[e->n_arrays] = r.out;
    memcpy(args.param, r.param, sizeof args.param);
    float result = NAN, result2 = NAN;
    hg_status st = interp_run(e->form, &args, &result);
    FZ_CHECK(st == HG_OK, "interp_run at n = %" PRIu64 ": %s", n, hg_status_string(st));
    int min_max_empty = 0;
    for (uint32_t s = 0; s < e->form->n_stages; s++)
        min_max_empty |= n == 0 && (e->form->stages[s].reduce == CANON_RED_MIN ||
                                    e->form->stages[s].reduce == CANON_RED_MAX);
    if (fz_run_raw(h, &r, e->has_output, 0, min_max_empty, &result2)) {
        fz_same_arrays(&r, "hg_expr_run_raw");
        FZ_CHECK(!e->has_result || fz_same(result, result2), "hg_expr_run_raw at n = %" PRIu64
                 " gives %a, the interpreter %a", n, (double)result2, (double)result);
    }
    if (e->has_output && e->n_arrays > 0 && fz_run_raw(h, &r, 1, 1, 0, &result2)) {
        memcpy(r.out2, r.in[0], n * sizeof(float));
        fz_same_arrays(&r, "hg_expr_run_raw in place");
    }
    fz_run_free(&r);
}

/* 1 when text, after blanks, starts a JSON object (as hg_expr_compile decides). */
static int fz_is_json(const char *text) {
    text += strspn(text, " \t\n\r");
    return *text == '{';
}

/* Text mode (see the top of the file), with the scalars of fz_scalar_sets[set]. */
static void fz_text_mode(const char *text, unsigned set) {
    const uint32_t n_scalars = fz_scalar_sets[set].n;
    canon_expr *e = NULL;
    canon_expr_error err;
    const int rc = canon_expr_parse(text, fz_scalar_sets[set].names, n_scalars, &e, &err);
    uint64_t h = 0;
    const hg_status st = hg_expr_compile(text, fz_scalar_sets[set].json, &h);
    if (rc != 0) {
        FZ_CHECK(!e, "canon_expr_parse failed and set *out");
        FZ_CHECK(memchr(err.msg, '\0', sizeof err.msg) && err.msg[0],
                 "canon_expr_parse failed with an empty or unterminated message");
        FZ_CHECK(err.column <= strlen(text) + 1, "canon_expr_parse: column %u of a text of "
                 "%zu bytes (%s)", err.column, strlen(text), err.msg);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "column %u: ", err.column);
        FZ_CHECK(!err.column || strncmp(err.msg, prefix, strlen(prefix)) == 0,
                 "canon_expr_parse: the message of column %u does not name it: %s",
                 err.column, err.msg);
        static const hg_status text_errors[] = {HG_ERR_EXPRESSION, HG_ERR_NO_MEMORY, HG_OK};
        static const hg_status json_errors[] = {HG_ERR_JSON, HG_ERR_EXPRESSION,
                                                HG_ERR_INVALID_ARGUMENT, HG_ERR_NO_MEMORY,
                                                HG_OK};
        if (fz_is_json(text)) { /* the API reads it as a JSON program */
            if (st == HG_OK)
                hg_expr_cleanup(h);
            else
                fz_check_error(st, json_errors, "hg_expr_compile of '{' text");
        } else {
            FZ_CHECK(st != HG_OK, "hg_expr_compile accepts what canon_expr_parse refuses "
                     "(%s)", err.msg);
            fz_check_error(st, text_errors, "hg_expr_compile of text");
        }
        return;
    }
    FZ_CHECK(e && e->pre && e->form && e->names, "canon_expr_parse succeeded without a form");
    FZ_CHECK(st == HG_OK, "canon_expr_parse accepts what hg_expr_compile refuses: %s (%s)",
             hg_status_string(st), hg_last_error());
    fz_check_programs(e);
    fz_check_variables(h, e);
    cJSON *doc = fz_round_trip(h);
    char hash[24];
    snprintf(hash, sizeof hash, "%016" PRIx64, e->form->hash);
    const cJSON *dh = cJSON_GetObjectItemCaseSensitive(doc, "hash");
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(doc, "nodes_before");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(doc, "nodes_after");
    FZ_CHECK(cJSON_IsString(dh) && strcmp(dh->valuestring, hash) == 0 &&
             cJSON_IsNumber(before) && before->valuedouble == e->pre->n_nodes &&
             cJSON_IsNumber(after) && after->valuedouble == e->form->n_nodes,
             "hg_expr_describe's hash or node counts are not the parser's (%s, %u, %u)",
             hash, e->pre->n_nodes, e->form->n_nodes);
    cJSON_Delete(doc);
    uint64_t len[FZ_MAX_LENGTHS];
    for (unsigned i = 0, count = fz_lengths(e->form->n_nodes, len); i < count; i++)
        fz_run_text(e, h, len[i]);
    FZ_CHECK(hg_expr_cleanup(h) == HG_OK, "hg_expr_cleanup: %s", hg_last_error());
    canon_expr_free(e);
}

/* ---- JSON mode ---------------------------------------------------------------------------- */

/* JSON mode (see the top of the file). */
static void fz_json_mode(const char *text) {
    uint64_t h = 0;
    hg_status st = hg_expr_compile(text, NULL, &h);
    if (st != HG_OK) {
        static const hg_status allowed[] = {HG_ERR_JSON, HG_ERR_EXPRESSION,
                                            HG_ERR_INVALID_ARGUMENT, HG_ERR_NO_MEMORY, HG_OK};
        fz_check_error(st, allowed, "hg_expr_compile of a document");
        return;
    }
    cJSON *vars = fz_document(h, hg_expr_variables, "hg_expr_variables");
    const uint32_t n_arrays = fz_array_size(vars, "arrays");
    const uint32_t n_scalars = fz_array_size(vars, "scalars");
    const int has_output = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(vars, "output"));
    cJSON_Delete(vars);
    FZ_CHECK(n_arrays <= CANON_MAX_INPUTS && n_scalars <= CANON_MAX_PARAMS,
             "a compiled program has %u arrays and %u scalars", n_arrays, n_scalars);
    cJSON *doc = fz_round_trip(h);
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(doc, "after");
    const int min_max = fz_reduces_min_max(after);
    uint64_t len[FZ_MAX_LENGTHS];
    const unsigned count = fz_lengths(fz_array_size(after, "nodes"), len);
    cJSON_Delete(doc);
    for (unsigned i = 0; i < count; i++) {
        fz_run r;
        fz_run_init(&r, n_arrays, n_scalars, len[i]);
        float result = 0.0f;
        fz_run_raw(h, &r, has_output, 0, min_max && len[i] == 0, &result);
        fz_run_free(&r);
    }
    FZ_CHECK(hg_expr_cleanup(h) == HG_OK, "hg_expr_cleanup: %s", hg_last_error());
}

/* ---- entry point ---------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_use_interpreter();
    if (size == 0)
        return 0;
    char *text = fz_alloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    fz_text = text;
    if (data[0] & 1)
        fz_json_mode(text);
    else
        fz_text_mode(text, (data[0] >> 1) & 3u);
    fz_text = "";
    free(text);
    return 0;
}
