/*
 * runtime/expr_json.c — structured JSON documents of expressions, through cJSON: the
 * scalar-name list of hg_expr_compile, the program documents it accepts, and the
 * documents of hg_expr_variables and hg_expr_describe (formats in hologram.h).
 *
 *   text --cJSON_ParseWithLengthOpts (under rt_cjson_lock)--> tree --rt_program_of:
 *   fields checked one by one, nodes rebuilt through the canon builder (so a document
 *   with repeated nodes is hash-consed like any form)--> canon_expr_from_program
 *
 * cJSON writes a process-global error pointer on every parse, so every parse, and the
 * reading of that pointer, runs under rt_cjson_lock: concurrent compiles stay race-free.
 * Building and printing documents touch no global state.  cJSON allocates through the
 * library's allocator (cJSON_InitHooks, once): its strings are freed with hg_free_string.  Bulk float arrays do not come here: runtime/json.c has its own codec.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rt.h"

static pthread_mutex_t rt_cjson_lock = PTHREAD_MUTEX_INITIALIZER;

void rt_cjson_fork(rt_fork_phase phase) {
    if (phase == RT_FORK_PREPARE)
        pthread_mutex_lock(&rt_cjson_lock);
    else
        pthread_mutex_unlock(&rt_cjson_lock);
}

/* cJSON allocates through the library's allocator (canon/alloc.h), set once before the
 * first use; a failure is remembered per thread, so that a parse that ran out of memory
 * says so instead of "malformed". */
static pthread_once_t rt_cjson_once = PTHREAD_ONCE_INIT;
static _Thread_local int rt_cjson_oom;

static void *rt_cjson_malloc(size_t n) {
    void *p = malloc(n);
    rt_cjson_oom |= p == NULL;
    return p;
}

static void rt_cjson_free(void *p) { free(p); }

static void rt_cjson_hooks(void) {
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = rt_cjson_malloc, .free_fn = rt_cjson_free});
}

/* Called by every entry point of this file before it touches cJSON. */
static void rt_cjson_ready(void) {
    pthread_once(&rt_cjson_once, rt_cjson_hooks);
    rt_cjson_oom = 0;
}

/* Parses text with cJSON; on malformed JSON records "what: malformed JSON at byte N" and
 * returns NULL with *st = HG_ERR_JSON, or HG_ERR_NO_MEMORY when one of cJSON's allocations
 * failed. */
static cJSON *rt_cjson_parse(const char *text, const char *what, hg_status *st) {
    const char *end = NULL;
    size_t len = strlen(text);
    pthread_mutex_lock(&rt_cjson_lock);
    /* the length counts the NUL: cJSON's null-termination check looks at text[len] */
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    pthread_mutex_unlock(&rt_cjson_lock);
    if (!doc && rt_cjson_oom) {
        *st = rt_error(HG_ERR_NO_MEMORY, "%s: no memory to parse %zu bytes of JSON", what, len);
    } else if (!doc) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        *st = rt_error(HG_ERR_JSON, "%s: malformed JSON at byte %zu (near \"%.20s\")", what, at,
                       text + at);
    }
    return doc;
}

/* ---- names -------------------------------------------------------------------------------- */

/* The strings of JSON array `arr` into *out (n malloc'd copies); `what` names it, and
 * `bad` is the status of a value that is not an array of strings. */
static hg_status rt_names_of(const cJSON *arr, const char *what, hg_status bad, char ***out,
                             uint32_t *out_n) {
    *out = NULL;
    *out_n = 0;
    if (!cJSON_IsArray(arr))
        return rt_error(bad, "%s must be a JSON array of names", what);
    int n = cJSON_GetArraySize(arr);
    if (n > CANON_MAX_INPUTS + CANON_MAX_PARAMS)
        return rt_error(HG_ERR_EXPRESSION, "%s lists %d names (at most %u)", what, n,
                        CANON_MAX_INPUTS + CANON_MAX_PARAMS);
    char **names = calloc(n ? (size_t)n : 1, sizeof *names);
    if (!names)
        return rt_error(HG_ERR_NO_MEMORY, "no memory for %d names", n);
    int i = 0;
    hg_status st = HG_OK;
    for (const cJSON *it = arr->child; it && st == HG_OK; it = it->next, i++) {
        if (!cJSON_IsString(it))
            st = rt_error(bad, "%s[%d] is not a string", what, i);
        else if (!(names[i] = strdup(it->valuestring)))
            st = rt_error(HG_ERR_NO_MEMORY, "no memory for a name");
    }
    if (st != HG_OK) {
        for (int j = 0; j < n; j++)
            free(names[j]);
        free(names);
        return st;
    }
    *out = names;
    *out_n = (uint32_t)n;
    return HG_OK;
}

hg_status rt_json_names(const char *text, char ***out_names, uint32_t *out_n) {
    rt_cjson_ready();
    *out_names = NULL;
    *out_n = 0;
    if (!text || !*text)
        return HG_OK;
    hg_status st = HG_OK;
    cJSON *doc = rt_cjson_parse(text, "scalars_json", &st);
    if (!doc)
        return st;
    st = rt_names_of(doc, "scalars_json", HG_ERR_JSON, out_names, out_n);
    cJSON_Delete(doc);
    return st;
}

/* ---- axes ------------------------------------------------------------------------------- */

/* Axis `item` of a JSON axes document into bit (axis mod ndim) of *mask; `what` names the
 * call.  Errors: JSON (not an integer), INVALID_ARGUMENT (out of range, repeated). */
static hg_status rt_axis_of(const cJSON *item, uint32_t ndim, uint32_t *mask, const char *what) {
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        fabs(item->valuedouble) > 1e15)
        return rt_error(HG_ERR_JSON, "%s: an axis must be an integer", what);
    const double v = item->valuedouble;
    if (v < -(double)ndim || v >= (double)ndim)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: axis %.0f is out of range for %u "
                        "dimension%s (-%u..%d)", what, v, ndim, ndim == 1 ? "" : "s", ndim,
                        (int)ndim - 1);
    const uint32_t axis = (uint32_t)(v < 0 ? v + ndim : v);
    if (*mask >> axis & 1)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s: axis %.0f is named twice", what, v);
    *mask |= 1u << axis;
    return HG_OK;
}

hg_status rt_json_axes(const char *text, uint32_t ndim, uint32_t *out_mask, int *out_given,
                       const char *what) {
    *out_given = text && *text;
    *out_mask = 0;
    if (!*out_given)
        return HG_OK;
    hg_status st = HG_OK;
    cJSON *doc = rt_cjson_parse(text, what, &st);
    if (!doc)
        return st;
    uint32_t mask = 0;
    if (cJSON_IsNull(doc)) {
        mask = ndim ? (uint32_t)((1ull << ndim) - 1) : 0;
    } else if (cJSON_IsArray(doc)) {
        for (const cJSON *it = doc->child; it && st == HG_OK; it = it->next)
            st = rt_axis_of(it, ndim, &mask, what);
    } else {
        st = rt_axis_of(doc, ndim, &mask, what);
    }
    cJSON_Delete(doc);
    if (st == HG_OK)
        *out_mask = mask;
    return st;
}

/* ---- program documents → forms ----------------------------------------------------------- */

/* The non-negative integer of `item` below `limit` into *out; 0, or -1 (not one). */
static int rt_index_of(const cJSON *item, double limit, uint32_t *out) {
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= 0 && v < limit) || v != floor(v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The kind named `name` in prims.def, or CANON_KIND_COUNT. */
static canon_kind rt_kind_named(const char *name) {
    for (unsigned k = 0; k < CANON_KIND_COUNT; k++)
        if (strcmp(canon_kinds[k].name, name) == 0)
            return (canon_kind)k;
    return CANON_KIND_COUNT;
}

/* A CONST node's float: "bits" ("0x3f800000") if present, else "value" (a number within
 * float32 range, or "NaN", "Infinity", "-Infinity").  0 or -1. */
static int rt_const_of(const cJSON *node, float *out) {
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(node, "bits");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(node, "value");
    if (cJSON_IsString(bits)) {
        char *end;
        unsigned long long u = strtoull(bits->valuestring, &end, 16);
        if (*end || u > 0xffffffffull || strncmp(bits->valuestring, "0x", 2) != 0)
            return -1;
        uint32_t w = (uint32_t)u;
        memcpy(out, &w, sizeof w);
        return 0;
    }
    if (cJSON_IsNumber(value)) { /* finite in JSON; beyond the float32 range it is refused */
        *out = (float)value->valuedouble;
        return isfinite(*out) ? 0 : -1;
    }
    if (cJSON_IsString(value)) {
        const char *s = value->valuestring;
        *out = strcmp(s, "NaN") == 0 ? NAN : strcmp(s, "Infinity") == 0 ? INFINITY
               : strcmp(s, "-Infinity") == 0 ? -INFINITY : 0.0f;
        return strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
                       strcmp(s, "-Infinity") == 0 ? 0 : -1;
    }
    return -1;
}

/* Adds node i of the document to p (map: document index → node of p). */
static hg_status rt_node_of(const cJSON *node, int i, canon_program *p, const uint32_t *map,
                            uint32_t *out) {
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(node, "op");
    if (!cJSON_IsObject(node) || !cJSON_IsString(op))
        return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d] needs an \"op\" string", i);
    canon_kind kind = rt_kind_named(op->valuestring);
    if (kind == CANON_KIND_COUNT)
        return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d].op \"%.32s\" is not a kind of "
                        "canon/prims.def", i, op->valuestring);
    const canon_kind_info *k = &canon_kinds[kind];
    uint32_t arg = 0, v = CANON_NONE;
    if (kind == CANON_CONST) {
        float value;
        if (rt_const_of(node, &value) != 0)
            return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d] (CONST) needs \"bits\" "
                            "(\"0x...\") or a float32 \"value\"", i);
        v = canon_const(p, value);
    } else if (k->flags & CANON_LEAF) {
        static const struct {
            canon_kind kind;
            const char *field;
        } fields[] = {{CANON_LOAD, "slot"}, {CANON_PARAM, "index"}, {CANON_ACC, "stage"}};
        for (unsigned f = 0; f < sizeof fields / sizeof fields[0]; f++)
            if (fields[f].kind == kind &&
                rt_index_of(cJSON_GetObjectItemCaseSensitive(node, fields[f].field), 1e6, &arg))
                return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d] (%s) needs \"%s\", a "
                                "non-negative integer", i, k->name, fields[f].field);
        v = canon_leaf(p, kind, arg);
    } else {
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(node, "args");
        uint32_t in[3] = {CANON_NONE, CANON_NONE, CANON_NONE};
        if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) != k->arity)
            return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d] (%s) needs \"args\" of %u "
                            "node indices", i, k->name, k->arity);
        int j = 0;
        for (const cJSON *a = args->child; a; a = a->next, j++) {
            uint32_t o;
            if (rt_index_of(a, i, &o))
                return rt_error(HG_ERR_EXPRESSION, "program: nodes[%d].args[%d] is not the "
                                "index of an earlier node", i, j);
            in[j] = map[o];
        }
        v = canon_node_add(p, kind, in[0], in[1], in[2]);
    }
    if (v == CANON_NONE)
        return rt_error(HG_ERR_NO_MEMORY, "program: no memory for nodes[%d]", i);
    *out = v;
    return HG_OK;
}

/* Adds stage s of the document to p. */
static hg_status rt_stage_of(const cJSON *stage, int s, canon_program *p, const uint32_t *map,
                             uint32_t n_nodes) {
    const cJSON *dom = cJSON_GetObjectItemCaseSensitive(stage, "domain");
    const cJSON *red = cJSON_GetObjectItemCaseSensitive(stage, "reduce");
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(stage, "store");
    uint32_t root, slot = CANON_NONE;
    int d = -1, r = red ? -1 : CANON_RED_NONE;
    for (int i = 0; cJSON_IsString(dom) && i <= CANON_DOM_LAST; i++)
        if (canon_domain_name((canon_domain)i) &&
            strcmp(canon_domain_name((canon_domain)i), dom->valuestring) == 0)
            d = i;
    for (int i = 0; cJSON_IsString(red) && canon_reduce_name((canon_reduce)i); i++)
        if (strcmp(canon_reduce_name((canon_reduce)i), red->valuestring) == 0)
            r = i;
    if (!cJSON_IsObject(stage) || d < 0 || r < 0 ||
        rt_index_of(cJSON_GetObjectItemCaseSensitive(stage, "root"), n_nodes, &root) ||
        (store && !cJSON_IsNull(store) && rt_index_of(store, CANON_MAX_SLOTS, &slot)))
        return rt_error(HG_ERR_EXPRESSION, "program: stages[%d] needs \"domain\" (RANGE, "
                        "SCALAR, ...), \"root\" (a node index), \"store\" (a slot or null) and "
                        "\"reduce\" (none, sum, min, max)", s);
    if (canon_stage_add(p, (canon_domain)d, map[root], slot, (canon_reduce)r) == CANON_NONE)
        return rt_error(HG_ERR_EXPRESSION, "program: more than %u stages", CANON_MAX_STAGES);
    return HG_OK;
}

/* The expression of program object `prog`. */
static hg_status rt_program_of(const cJSON *prog, canon_expr **out) {
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(prog, "nodes");
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(prog, "stages");
    const cJSON *scalars = cJSON_GetObjectItemCaseSensitive(prog, "scalars");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(prog, "result");
    if (!cJSON_IsArray(nodes) || !cJSON_IsArray(stages))
        return rt_error(HG_ERR_EXPRESSION, "program: needs \"nodes\" and \"stages\" arrays");
    int n_nodes = cJSON_GetArraySize(nodes);
    if (n_nodes > (int)CANON_EXPR_MAX_NODES)
        return rt_error(HG_ERR_EXPRESSION, "program: %d nodes (at most %u)", n_nodes,
                        CANON_EXPR_MAX_NODES);
    char **arrays = NULL, **scal = NULL, **names = NULL;
    uint32_t n_arrays = 0, n_scalars = 0;
    hg_status st = rt_names_of(cJSON_GetObjectItemCaseSensitive(prog, "arrays"),
                               "program: \"arrays\"", HG_ERR_EXPRESSION, &arrays, &n_arrays);
    if (st == HG_OK && scalars)
        st = rt_names_of(scalars, "program: \"scalars\"", HG_ERR_EXPRESSION, &scal,
                         &n_scalars);
    if (st == HG_OK && (n_arrays > CANON_MAX_INPUTS || n_scalars > CANON_MAX_PARAMS))
        st = rt_error(HG_ERR_EXPRESSION, "program: %u arrays and %u scalars (at most %u and "
                      "%u)", n_arrays, n_scalars, CANON_MAX_INPUTS, CANON_MAX_PARAMS);
    if (st == HG_OK && !(names = calloc(n_arrays + n_scalars + 1, sizeof *names)))
        st = rt_error(HG_ERR_NO_MEMORY, "program: no memory for its names");
    if (names) {
        if (n_arrays) /* memcpy's source may not be NULL, even for 0 bytes */
            memcpy(names, arrays, n_arrays * sizeof *names);
        if (n_scalars)
            memcpy(names + n_arrays, scal, n_scalars * sizeof *names);
        free(arrays);
        free(scal);
        arrays = scal = NULL;
    }
    int stores = 0;
    for (const cJSON *s = stages->child; s; s = s->next) {
        const cJSON *store = cJSON_GetObjectItemCaseSensitive(s, "store");
        stores |= store && !cJSON_IsNull(store);
    }
    canon_program *p = st == HG_OK ? canon_program_new(n_arrays + (uint32_t)stores, n_scalars)
                                   : NULL;
    uint32_t *map = st == HG_OK ? malloc(((size_t)n_nodes + 1) * sizeof *map) : NULL;
    if (st == HG_OK && (!p || !map))
        st = rt_error(HG_ERR_NO_MEMORY, "program: no memory for %d nodes", n_nodes);
    int i = 0;
    for (const cJSON *n = nodes->child; st == HG_OK && n; n = n->next, i++)
        st = rt_node_of(n, i, p, map, &map[i]);
    i = 0;
    for (const cJSON *s = stages->child; st == HG_OK && s; s = s->next, i++)
        st = rt_stage_of(s, i, p, map, (uint32_t)n_nodes);
    if (st == HG_OK && result && !cJSON_IsNull(result) &&
        rt_index_of(result, CANON_MAX_STAGES, &p->result_stage))
        st = rt_error(HG_ERR_EXPRESSION, "program: \"result\" must be a stage index or null");
    free(map);
    if (st != HG_OK) {
        for (uint32_t j = 0; arrays && j < n_arrays; j++)
            free(arrays[j]);
        for (uint32_t j = 0; scal && j < n_scalars; j++)
            free(scal[j]);
        for (uint32_t j = 0; names && j < n_arrays + n_scalars; j++)
            free(names[j]);
        free(arrays);
        free(scal);
        free(names);
        canon_program_free(p);
        return st;
    }
    canon_expr_error err = {0};
    if (canon_expr_from_program(p, names, n_arrays, n_scalars, "program", out, &err) != 0)
        return rt_error(err.no_memory ? HG_ERR_NO_MEMORY : HG_ERR_EXPRESSION, "program: %s",
                        err.msg);
    return HG_OK;
}

hg_status rt_json_program(const char *text, canon_expr **out) {
    rt_cjson_ready();
    hg_status st = HG_OK;
    cJSON *doc = rt_cjson_parse(text, "program", &st);
    if (!doc)
        return st;
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(doc, "after");
    st = rt_program_of(cJSON_IsObject(after) ? after : doc, out);
    cJSON_Delete(doc);
    return st;
}

/* ---- documents ---------------------------------------------------------------------------- */

/* Adds array `key` of names[0..n) to obj; 0 or -1. */
static int rt_add_names(cJSON *obj, const char *key, char *const *names, uint32_t n) {
    cJSON *arr = cJSON_AddArrayToObject(obj, key);
    for (uint32_t i = 0; arr && i < n; i++)
        if (!cJSON_AddItemToArray(arr, cJSON_CreateString(names[i])))
            return -1;
    return arr ? 0 : -1;
}

/* Adds item (taken: deleted when it cannot be added, e.g. no memory for the key's copy)
 * to obj as `key`; 0 or -1. */
static int rt_add_item(cJSON *obj, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, key, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

/* The JSON number of n, or null for CANON_NONE. */
static cJSON *rt_index_item(uint32_t n) {
    return n == CANON_NONE ? cJSON_CreateNull() : cJSON_CreateNumber(n);
}

/* The program document of p with x's names. */
static cJSON *rt_program_doc(const canon_program *p, const canon_expr *e) {
    cJSON *doc = cJSON_CreateObject();
    int bad = !doc || rt_add_names(doc, "arrays", e->names, e->n_arrays) ||
              rt_add_names(doc, "scalars", e->names + e->n_arrays, e->n_scalars);
    cJSON *nodes = bad ? NULL : cJSON_AddArrayToObject(doc, "nodes");
    bad |= !nodes;
    for (uint32_t i = 0; !bad && i < p->n_nodes; i++) {
        const canon_node *n = &p->nodes[i];
        cJSON *node = cJSON_CreateObject();
        bad = !cJSON_AddItemToArray(nodes, node) ||
              !cJSON_AddStringToObject(node, "op", canon_kinds[n->kind].name);
        switch ((canon_kind)n->kind) {
        case CANON_LOAD: bad |= !cJSON_AddNumberToObject(node, "slot", n->arg); break;
        case CANON_PARAM: bad |= !cJSON_AddNumberToObject(node, "index", n->arg); break;
        case CANON_ACC: bad |= !cJSON_AddNumberToObject(node, "stage", n->arg); break;
        case CANON_LEN: break;
        case CANON_CONST: {
            char bits[16];
            uint32_t u;
            memcpy(&u, &n->value, sizeof u);
            snprintf(bits, sizeof bits, "0x%08" PRIx32, u);
            if (isfinite(n->value))
                bad |= !cJSON_AddNumberToObject(node, "value", n->value);
            else
                bad |= !cJSON_AddStringToObject(node, "value", isnan(n->value) ? "NaN"
                                                : n->value > 0 ? "Infinity" : "-Infinity");
            bad |= !cJSON_AddStringToObject(node, "bits", bits);
            break;
        }
        default: {
            cJSON *args = cJSON_AddArrayToObject(node, "args");
            bad |= !args;
            for (unsigned k = 0; !bad && k < n->arity; k++)
                bad = !cJSON_AddItemToArray(args, cJSON_CreateNumber(n->op[k]));
        }
        }
    }
    cJSON *stages = bad ? NULL : cJSON_AddArrayToObject(doc, "stages");
    bad |= !stages;
    for (uint32_t s = 0; !bad && s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        cJSON *stage = cJSON_CreateObject();
        bad = !cJSON_AddItemToArray(stages, stage) ||
              !cJSON_AddStringToObject(stage, "domain", canon_domain_name(st->domain)) ||
              !cJSON_AddNumberToObject(stage, "root", st->root) ||
              rt_add_item(stage, "store", rt_index_item(st->store_slot)) ||
              !cJSON_AddStringToObject(stage, "reduce", canon_reduce_name(st->reduce));
    }
    bad = bad || rt_add_item(doc, "result", rt_index_item(p->result_stage));
    if (bad) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* Prints doc (deleted here) into *out_text. */
static hg_status rt_print_doc(cJSON *doc, char **out_text, const char *what) {
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text)
        return rt_error(HG_ERR_NO_MEMORY, "%s: no memory for the document", what);
    /* cJSON allocates with the library's malloc: hg_free_string frees it */
    *out_text = text;
    return HG_OK;
}

hg_status rt_json_variables(const rt_expr *x, char **out_text) {
    rt_cjson_ready();
    const canon_expr *e = x->e;
    cJSON *doc = cJSON_CreateObject();
    if (doc && (rt_add_names(doc, "arrays", e->names, e->n_arrays) ||
                rt_add_names(doc, "scalars", e->names + e->n_arrays, e->n_scalars) ||
                !cJSON_AddStringToObject(doc, "kind", e->kind) ||
                !cJSON_AddBoolToObject(doc, "output", e->has_output) ||
                !cJSON_AddBoolToObject(doc, "result", e->has_result) ||
                rt_add_item(doc, "axis", e->has_axis ? cJSON_CreateNumber(e->axis)
                                                     : cJSON_CreateNull()))) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    return rt_print_doc(doc, out_text, "expr_variables");
}

hg_status rt_json_describe(const rt_expr *x, char **out_text) {
    rt_cjson_ready();
    const canon_expr *e = x->e;
    char hash[24];
    snprintf(hash, sizeof hash, "%016" PRIx64, e->form->hash);
    cJSON *doc = cJSON_CreateObject();
    cJSON *before = rt_program_doc(e->pre, e), *after = rt_program_doc(e->form, e);
    int bad = !doc || !before || !after;
    if (!bad) {
        bad = rt_add_item(doc, "source",
                          x->source ? cJSON_CreateString(x->source) : cJSON_CreateNull()) ||
              !cJSON_AddStringToObject(doc, "kind", e->kind) ||
              !cJSON_AddNumberToObject(doc, "nodes_before", e->pre->n_nodes) ||
              !cJSON_AddNumberToObject(doc, "nodes_after", e->form->n_nodes) ||
              !cJSON_AddStringToObject(doc, "hash", hash);
        if (!bad && cJSON_AddItemToObject(doc, "before", before))
            before = NULL;
        if (!bad && cJSON_AddItemToObject(doc, "after", after))
            after = NULL;
        bad |= before || after;
    }
    cJSON_Delete(before);
    cJSON_Delete(after);
    if (bad) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    return rt_print_doc(doc, out_text, "expr_describe");
}

hg_status rt_json_op(const canon_op_info *info, char **out_text) {
    static const char *const family[] = {
        [CANON_FAM_MAP] = "map", [CANON_FAM_REDUCE] = "reduce", [CANON_FAM_LOSS] = "loss",
        [CANON_FAM_SOFTMAX] = "softmax", [CANON_FAM_CONTRACT] = "contract"};
    cJSON *doc = cJSON_CreateObject();
    if (doc && (!cJSON_AddStringToObject(doc, "name", info->name) ||
                !cJSON_AddStringToObject(doc, "family", family[info->family]) ||
                !cJSON_AddNumberToObject(doc, "arrays", info->n_in) ||
                !cJSON_AddNumberToObject(doc, "scalars", info->n_par) ||
                !cJSON_AddStringToObject(doc, "reduce", canon_reduce_name(info->reduce)) ||
                !cJSON_AddNumberToObject(doc, "min_n", info->min_n) ||
                !cJSON_AddStringToObject(doc, "math", info->math))) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    return rt_print_doc(doc, out_text, "op_describe");
}
