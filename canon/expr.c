/*
 * canon/expr.c — the expression language (grammar and semantics in canon.h).
 *
 *   text --ex_next (lexer: numbers, names, the operator spellings of prims.def)-->
 *   tokens --recursive descent, one level per syntax class, depth-counted--> pre-rewrite
 *   program (hash-consed: a repeated subexpression is one node) --canon_expr_from_program:
 *   stages, checks, canon_rewrite--> canon_expr
 *
 * The parser recurses only where the text nests (parentheses, calls, unary operators,
 * **), and refuses nesting beyond CANON_EXPR_MAX_DEPTH, so its stack use is bounded
 * whatever the input; chains of binary operators are loops.  Every error names its column
 * and the offending token, name or limit.
 */
#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"

/* ---- errors ----------------------------------------------------------------------------- */

/* Records the first error: "column C: message" (or the message alone for column 0). */
static void ex_error_set(canon_expr_error *err, uint32_t column, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ex_error_set(canon_expr_error *err, uint32_t column, const char *fmt, ...) {
    if (!err || err->msg[0])
        return;
    char what[sizeof err->msg - 32]; /* room for "column N: " */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err->column = column;
    if (column)
        snprintf(err->msg, sizeof err->msg, "column %u: %s", column, what);
    else
        snprintf(err->msg, sizeof err->msg, "%s", what);
}

/* Records that an allocation failed: message `what`, err->no_memory set. */
static void ex_no_memory(canon_expr_error *err, const char *what) {
    if (err && !err->msg[0])
        err->no_memory = 1;
    ex_error_set(err, 0, "%s", what);
}

/* ---- lexer ------------------------------------------------------------------------------ */

typedef enum {
    EX_END, EX_NUM, EX_NAME, EX_OP, EX_LPAREN, EX_RPAREN, EX_COMMA, EX_ASSIGN /* axis=k */
} ex_tok_kind;

typedef struct {
    ex_tok_kind kind;
    const char *start;  /* in the text */
    uint32_t len;
    uint32_t column;    /* 1-based */
    double num;         /* EX_NUM */
} ex_token;

/* Longest number literal accepted (digits, point, exponent). */
#define EX_MAX_LITERAL 128

typedef struct {
    const char *text;
    size_t pos;
    ex_token tok;         /* the current token */
    canon_program *p;
    canon_expr_error *err;
    unsigned depth;
    char **names;         /* arrays then scalars, in order of first appearance */
    uint32_t n_arrays, n_scalars;
    const char *const *declared; /* the scalar names given by the caller */
    uint32_t n_declared;
    int has_axis;                /* the reduction names an axis */
    int32_t axis;
    int failed;
} ex_parser;

static pthread_once_t ex_locale_once = PTHREAD_ONCE_INIT;
static locale_t ex_c_locale;

static void ex_locale_init(void) { ex_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static int ex_is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int ex_is_digit(char c) { return c >= '0' && c <= '9'; }

/* 1 when spelling s is an operator of prims.def (PREFIX or a binary syntax class). */
static int ex_is_operator(const canon_kind_info *k) {
    return k->syntax == CANON_SYN_PREFIX || k->syntax >= CANON_SYN_CMP;
}

/* Fails the parse at the current token with a message. */
#define EX_FAIL(x, ...) (ex_error_set((x)->err, (x)->tok.column, __VA_ARGS__), (x)->failed = 1)
/* EX_FAIL for an allocation that failed. */
#define EX_NO_MEMORY(x, ...)                                                                 \
    ((x)->err->no_memory = !(x)->err->msg[0] || (x)->err->no_memory, EX_FAIL(x, __VA_ARGS__))

/* The current token's text as "'...'" (truncated), or "the end of the expression". */
static const char *ex_tok_text(const ex_parser *x, char *buf, size_t cap) {
    if (x->tok.kind == EX_END)
        return "the end of the expression";
    snprintf(buf, cap, "'%.*s'", (int)(x->tok.len < 40 ? x->tok.len : 40), x->tok.start);
    return buf;
}

/* Reads a number literal at x->pos into x->tok (Python's float/int syntax). */
static void ex_number(ex_parser *x) {
    const char *s = x->text + x->pos;
    size_t i = 0;
    while (ex_is_digit(s[i]))
        i++;
    if (s[i] == '.') {
        i++;
        while (ex_is_digit(s[i]))
            i++;
    }
    if ((s[i] == 'e' || s[i] == 'E') &&
        (ex_is_digit(s[i + 1]) || ((s[i + 1] == '+' || s[i + 1] == '-') && ex_is_digit(s[i + 2])))) {
        i += 2;
        while (ex_is_digit(s[i]))
            i++;
    }
    size_t end = i;
    while (ex_is_alpha(s[end]) || ex_is_digit(s[end]) || s[end] == '.')
        end++;
    x->tok.kind = EX_NUM;
    x->tok.len = (uint32_t)end;
    if (end != i) {
        EX_FAIL(x, "'%.*s' is not a number", (int)(end < 40 ? end : 40), s);
        return;
    }
    if (i > EX_MAX_LITERAL) {
        EX_FAIL(x, "a number literal of %zu characters (at most %u)", i, EX_MAX_LITERAL);
        return;
    }
    char buf[EX_MAX_LITERAL + 1];
    memcpy(buf, s, i);
    buf[i] = '\0';
    pthread_once(&ex_locale_once, ex_locale_init);
    if (ex_c_locale == (locale_t)0) {
        EX_NO_MEMORY(x, "no memory for the C locale to read '%s'", buf);
        return;
    }
    double v = strtod_l(buf, NULL, ex_c_locale);
    if ((float)v > FLT_MAX) {
        EX_FAIL(x, "the number %s is beyond the float32 range (largest %g)", buf, (double)FLT_MAX);
        return;
    }
    x->tok.num = v;
}

/* Advances x->tok to the next token; on a lexical error sets x->failed. */
static void ex_next(ex_parser *x) {
    const char *t = x->text;
    while (t[x->pos] == ' ' || t[x->pos] == '\t' || t[x->pos] == '\n' || t[x->pos] == '\r')
        x->pos++;
    x->tok = (ex_token){.start = t + x->pos, .column = (uint32_t)x->pos + 1, .len = 1};
    char c = t[x->pos];
    if (c == '\0') {
        x->tok.kind = EX_END;
        x->tok.len = 0;
        return;
    }
    if (ex_is_digit(c) || (c == '.' && ex_is_digit(t[x->pos + 1]))) {
        ex_number(x);
    } else if (ex_is_alpha(c)) {
        uint32_t len = 0;
        while (ex_is_alpha(t[x->pos + len]) || ex_is_digit(t[x->pos + len]))
            len++;
        x->tok.kind = EX_NAME;
        x->tok.len = len;
        if (len > CANON_EXPR_MAX_NAME)
            EX_FAIL(x, "a name of %u characters (at most %u)", len, CANON_EXPR_MAX_NAME);
    } else if (c == '(' || c == ')' || c == ',') {
        x->tok.kind = c == '(' ? EX_LPAREN : c == ')' ? EX_RPAREN : EX_COMMA;
    } else if (c == '=' && t[x->pos + 1] != '=') {
        x->tok.kind = EX_ASSIGN;
    } else {
        uint32_t best = 0; /* the longest operator spelling of prims.def here */
        for (unsigned k = 0; k < CANON_KIND_COUNT; k++) {
            const canon_kind_info *ki = &canon_kinds[k];
            size_t len = strlen(ki->spelling);
            if (ex_is_operator(ki) && len > best && strncmp(t + x->pos, ki->spelling, len) == 0)
                best = (uint32_t)len;
        }
        if (!best && c == '+')
            best = 1; /* unary plus: no kind of its own */
        x->tok.kind = EX_OP;
        x->tok.len = best ? best : 1;
        if (!best) {
            if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                EX_FAIL(x, "unexpected byte 0x%02x", (unsigned char)c);
            else
                EX_FAIL(x, "unexpected character '%c'", c);
        }
    }
    x->pos += x->tok.len;
}

/* 1 when the current token is the operator `s`. */
static int ex_is_op(const ex_parser *x, const char *s) {
    return x->tok.kind == EX_OP && strlen(s) == x->tok.len &&
           strncmp(x->tok.start, s, x->tok.len) == 0;
}

/* 1 when the current token is the name `s`. */
static int ex_is_name(const ex_parser *x, const char *s) {
    return x->tok.kind == EX_NAME && strlen(s) == x->tok.len &&
           strncmp(x->tok.start, s, x->tok.len) == 0;
}

/* The kind whose syntax is `syn` and spelling the current token, or CANON_KIND_COUNT. */
static canon_kind ex_kind_of(const ex_parser *x, canon_syntax syn) {
    if (x->tok.kind != EX_OP && x->tok.kind != EX_NAME)
        return CANON_KIND_COUNT;
    for (unsigned k = 0; k < CANON_KIND_COUNT; k++)
        if (canon_kinds[k].syntax == syn && strlen(canon_kinds[k].spelling) == x->tok.len &&
            strncmp(canon_kinds[k].spelling, x->tok.start, x->tok.len) == 0)
            return (canon_kind)k;
    return CANON_KIND_COUNT;
}

/* ---- parser ----------------------------------------------------------------------------- */

static const char *const ex_reductions[] = {"sum", "mean", "min", "max"};
#define EX_N_REDUCTIONS (sizeof ex_reductions / sizeof ex_reductions[0])

static int ex_valid_name(const char *s);

/* The reduction named by the current token (index into ex_reductions), or -1. */
static int ex_reduction_of(const ex_parser *x) {
    for (unsigned r = 0; r < EX_N_REDUCTIONS; r++)
        if (ex_is_name(x, ex_reductions[r]))
            return (int)r;
    return -1;
}

/* Node count check after adding nodes; returns `node` or CANON_NONE (failed). */
static uint32_t ex_node(ex_parser *x, uint32_t node, uint32_t column) {
    if (x->failed)
        return CANON_NONE;
    if (node == CANON_NONE || x->p->oom) {
        ex_no_memory(x->err, "no memory for the expression's nodes");
        x->failed = 1;
        return CANON_NONE;
    }
    if (x->p->n_nodes > CANON_EXPR_MAX_NODES) {
        ex_error_set(x->err, column, "the expression has more than %u nodes (the limit)",
                     CANON_EXPR_MAX_NODES);
        x->failed = 1;
        return CANON_NONE;
    }
    return node;
}

/* Enters one level of nesting at the current token; 0, or -1 past the limit. */
static int ex_enter(ex_parser *x) {
    if (++x->depth > CANON_EXPR_MAX_DEPTH) {
        EX_FAIL(x, "nesting deeper than %u levels (the limit)", CANON_EXPR_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static uint32_t ex_binary(ex_parser *x, canon_syntax level);

/* The leaf for variable name tok: a PARAM when declared a scalar, else a LOAD; new names
 * take the next slot or parameter. */
static uint32_t ex_variable(ex_parser *x) {
    const ex_token *t = &x->tok;
    int scalar = 0;
    for (uint32_t d = 0; d < x->n_declared; d++)
        if (strlen(x->declared[d]) == t->len && strncmp(x->declared[d], t->start, t->len) == 0)
            scalar = 1;
    const uint32_t first = scalar ? x->n_arrays : 0, count = scalar ? x->n_scalars : x->n_arrays;
    uint32_t i = 0;
    while (i < count && !(strlen(x->names[first + i]) == t->len &&
                          strncmp(x->names[first + i], t->start, t->len) == 0))
        i++;
    if (i == count) { /* a new name */
        const uint32_t limit = scalar ? CANON_MAX_PARAMS : CANON_MAX_INPUTS;
        if (count == limit) {
            EX_FAIL(x, "'%.*s' would be %s number %u (at most %u)", (int)t->len, t->start,
                    scalar ? "scalar" : "array input", limit + 1, limit);
            return CANON_NONE;
        }
        char *name = malloc(t->len + 1);
        if (!name) {
            EX_NO_MEMORY(x, "no memory for the name '%.*s'", (int)t->len, t->start);
            return CANON_NONE;
        }
        memcpy(name, t->start, t->len);
        name[t->len] = '\0';
        if (!scalar) /* arrays come first: move the scalars up one */
            memmove(&x->names[x->n_arrays + 1], &x->names[x->n_arrays],
                    x->n_scalars * sizeof *x->names);
        x->names[first + i] = name;
        if (scalar)
            x->n_scalars++;
        else
            x->n_arrays++;
    }
    return ex_node(x, canon_leaf(x->p, scalar ? CANON_PARAM : CANON_LOAD, i), t->column);
}

/* A call `name(args)` at the current token (a name followed by '('). */
static uint32_t ex_call(ex_parser *x) {
    const ex_token name = x->tok;
    char shown[48];
    snprintf(shown, sizeof shown, "%.*s", (int)(name.len < 40 ? name.len : 40), name.start);
    if (ex_reduction_of(x) >= 0) {
        EX_FAIL(x, "the reduction %s() is inside an expression: a reduction must enclose "
                   "the whole expression", shown);
        return CANON_NONE;
    }
    canon_kind kind = ex_kind_of(x, CANON_SYN_CALL);
    if (kind == CANON_KIND_COUNT) {
        EX_FAIL(x, "unknown function '%s'", shown);
        return CANON_NONE;
    }
    const unsigned arity = canon_kinds[kind].arity;
    uint32_t arg[3] = {CANON_NONE, CANON_NONE, CANON_NONE};
    unsigned n = 0;
    ex_next(x); /* '(' */
    ex_next(x);
    if (x->tok.kind != EX_RPAREN)
        for (;;) {
            uint32_t a = ex_binary(x, CANON_SYN_CMP);
            if (x->failed)
                return CANON_NONE;
            if (n < 3)
                arg[n] = a;
            n++;
            if (x->tok.kind != EX_COMMA)
                break;
            ex_next(x);
        }
    if (!x->failed && x->tok.kind != EX_RPAREN) {
        char buf[64];
        EX_FAIL(x, "expected ',' or ')' in the call of %s() at column %u, found %s", shown,
                name.column, ex_tok_text(x, buf, sizeof buf));
        return CANON_NONE;
    }
    if (x->failed)
        return CANON_NONE;
    if (n != arity) {
        ex_error_set(x->err, name.column, "%s() takes %u argument%s, got %u", shown, arity,
                     arity == 1 ? "" : "s", n);
        x->failed = 1;
        return CANON_NONE;
    }
    ex_next(x);
    return ex_node(x, canon_node_add(x->p, kind, arg[0], arg[1], arg[2]), name.column);
}

/* Python's and / or / not at the current token: fails with the operator to use instead and
 * returns 1; else 0. */
static int ex_keyword(ex_parser *x) {
    static const char *const keywords[][2] = {{"and", "&"}, {"or", "|"}, {"not", "~"}};
    for (unsigned k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
        if (ex_is_name(x, keywords[k][0])) {
            EX_FAIL(x, "'%s' is not supported: use %s (with parentheses around comparisons)",
                    keywords[k][0], keywords[k][1]);
            return 1;
        }
    return 0;
}

/* primary := number | name | name(args) | ( e ) */
static uint32_t ex_primary(ex_parser *x) {
    char buf[64];
    if (x->failed)
        return CANON_NONE;
    switch (x->tok.kind) {
    case EX_NUM: {
        uint32_t c = ex_node(x, canon_const(x->p, (float)x->tok.num), x->tok.column);
        ex_next(x);
        return c;
    }
    case EX_NAME: {
        if (ex_keyword(x))
            return CANON_NONE;
        const size_t save = x->pos;
        const ex_token name = x->tok;
        ex_next(x);
        if (x->failed)
            return CANON_NONE;
        if (x->tok.kind == EX_LPAREN) {
            x->pos = save; /* back to the name: ex_call reads it again */
            x->tok = name;
            if (ex_enter(x))
                return CANON_NONE;
            uint32_t v = ex_call(x);
            x->depth--;
            return v;
        }
        const size_t after = x->pos;
        const ex_token next = x->tok;
        x->pos = save;
        x->tok = name;
        char shown[48];
        snprintf(shown, sizeof shown, "%.*s", (int)(name.len < 40 ? name.len : 40), name.start);
        if (ex_reduction_of(x) >= 0) {
            EX_FAIL(x, "'%s' is a reduction: write %s(...) around the whole expression", shown,
                    shown);
            return CANON_NONE;
        }
        if (ex_kind_of(x, CANON_SYN_CALL) != CANON_KIND_COUNT) {
            EX_FAIL(x, "'%s' is a function: call it as %s(...)", shown, shown);
            return CANON_NONE;
        }
        uint32_t v = ex_variable(x);
        x->pos = after;
        x->tok = next;
        return v;
    }
    case EX_LPAREN: {
        const uint32_t col = x->tok.column;
        if (ex_enter(x))
            return CANON_NONE;
        ex_next(x);
        uint32_t v = ex_binary(x, CANON_SYN_CMP);
        if (!x->failed && x->tok.kind != EX_RPAREN)
            EX_FAIL(x, "expected ')' to close the '(' at column %u, found %s", col,
                    ex_tok_text(x, buf, sizeof buf));
        if (x->failed)
            return CANON_NONE;
        x->depth--;
        ex_next(x);
        return v;
    }
    default:
        EX_FAIL(x, "expected a number, a name, a call or '(', found %s",
                ex_tok_text(x, buf, sizeof buf));
        return CANON_NONE;
    }
}

static uint32_t ex_unary(ex_parser *x);

/* power := primary [ ** unary ] */
static uint32_t ex_power(ex_parser *x) {
    uint32_t base = ex_primary(x);
    canon_kind pow = ex_kind_of(x, CANON_SYN_POW);
    if (x->failed || pow == CANON_KIND_COUNT)
        return base;
    const uint32_t col = x->tok.column;
    if (ex_enter(x))
        return CANON_NONE;
    ex_next(x);
    uint32_t e = ex_unary(x);
    x->depth--;
    return ex_node(x, canon_node_add(x->p, pow, base, e, CANON_NONE), col);
}

/* unary := ( - | + | ~ ) unary | power */
static uint32_t ex_unary(ex_parser *x) {
    if (x->failed)
        return CANON_NONE;
    canon_kind prefix = ex_kind_of(x, CANON_SYN_PREFIX);
    const int plus = ex_is_op(x, "+");
    if (prefix == CANON_KIND_COUNT && !plus)
        return ex_power(x);
    const uint32_t col = x->tok.column;
    if (ex_enter(x))
        return CANON_NONE;
    ex_next(x);
    uint32_t v = ex_unary(x);
    x->depth--;
    if (plus || x->failed)
        return v;
    return ex_node(x, canon_node_add(x->p, prefix, v, CANON_NONE, CANON_NONE), col);
}

/* The binary operators of syntax class `level` and tighter, left-associative; one
 * comparison per level. */
static uint32_t ex_binary(ex_parser *x, canon_syntax level) {
    if (level > CANON_SYN_MUL)
        return ex_unary(x);
    uint32_t lhs = ex_binary(x, (canon_syntax)(level + 1));
    int compared = 0;
    for (;;) {
        canon_kind kind = ex_kind_of(x, level);
        if (x->failed || kind == CANON_KIND_COUNT)
            return lhs;
        if (compared) {
            EX_FAIL(x, "chained comparison '%s': write (a %s b) & (b %s c) instead",
                    canon_kinds[kind].spelling, canon_kinds[kind].spelling,
                    canon_kinds[kind].spelling);
            return CANON_NONE;
        }
        compared = level == CANON_SYN_CMP;
        const uint32_t col = x->tok.column;
        ex_next(x);
        uint32_t rhs = ex_binary(x, (canon_syntax)(level + 1));
        lhs = ex_node(x, canon_node_add(x->p, kind, lhs, rhs, CANON_NONE), col);
    }
}

/* `, axis=k` after a reduction's operand (the current token is the comma): an integer
 * literal, possibly negative (counting from the last axis), below HG_MAX_DIMS in
 * magnitude.  0, or -1 with the error set. */
static int ex_axis(ex_parser *x, const char *reduction) {
    char buf[64];
    ex_next(x);
    int neg = 0;
    if (ex_is_name(x, "axis")) {
        ex_next(x);
        if (x->tok.kind == EX_ASSIGN) {
            ex_next(x);
            if ((neg = ex_is_op(x, "-")))
                ex_next(x);
            int digits = x->tok.kind == EX_NUM;
            for (uint32_t i = 0; digits && i < x->tok.len; i++)
                digits = ex_is_digit(x->tok.start[i]);
            if (digits && x->tok.num < CANON_MAX_DIMS) {
                x->has_axis = 1;
                x->axis = (int32_t)x->tok.num * (neg ? -1 : 1);
                ex_next(x);
                return x->failed ? -1 : 0;
            }
            if (digits) {
                EX_FAIL(x, "%s(): axis %s%.*s is beyond the %u dimensions a tensor has at "
                           "most", reduction, neg ? "-" : "", (int)x->tok.len, x->tok.start,
                        CANON_MAX_DIMS);
                return -1;
            }
        }
    }
    if (!x->failed)
        EX_FAIL(x, "%s(): after the operand, only axis=<integer> may follow, found %s",
                reduction, ex_tok_text(x, buf, sizeof buf));
    return -1;
}

/* expr := reduction( e [, axis=k] ) | e, then the end of the text. */
static uint32_t ex_top(ex_parser *x, int *reduction) {
    char buf[64];
    *reduction = -1;
    ex_next(x);
    if (x->tok.kind == EX_END && !x->failed) {
        EX_FAIL(x, "the expression is empty");
        return CANON_NONE;
    }
    int r = ex_reduction_of(x);
    uint32_t v;
    if (r >= 0) {
        const ex_token name = x->tok;
        ex_next(x);
        if (x->tok.kind != EX_LPAREN) {
            x->tok = name;
            EX_FAIL(x, "'%s' is a reduction: write %s(...) around the whole expression",
                    ex_reductions[r], ex_reductions[r]);
            return CANON_NONE;
        }
        ex_next(x);
        v = ex_binary(x, CANON_SYN_CMP);
        if (!x->failed && x->tok.kind == EX_COMMA && ex_axis(x, ex_reductions[r]))
            return CANON_NONE;
        if (!x->failed && x->tok.kind != EX_RPAREN)
            EX_FAIL(x, "expected ')' to close %s( at column %u, found %s", ex_reductions[r],
                    name.column, ex_tok_text(x, buf, sizeof buf));
        if (x->failed)
            return CANON_NONE;
        ex_next(x);
        if (!x->failed && x->tok.kind != EX_END) {
            EX_FAIL(x, "%s() must enclose the whole expression, found %s after it",
                    ex_reductions[r], ex_tok_text(x, buf, sizeof buf));
            return CANON_NONE;
        }
        *reduction = r;
    } else {
        v = ex_binary(x, CANON_SYN_CMP);
    }
    if (!x->failed && x->tok.kind != EX_END && !ex_keyword(x)) {
        if (x->tok.kind == EX_RPAREN)
            EX_FAIL(x, "')' without a matching '('");
        else if (x->tok.kind == EX_ASSIGN)
            EX_FAIL(x, "unexpected '=' (compare with ==)");
        else
            EX_FAIL(x, "expected an operator, found %s", ex_tok_text(x, buf, sizeof buf));
    }
    return x->failed ? CANON_NONE : v;
}

/* Adds the stages of a map (store into slot n_arrays) or of reduction r to x->p. */
static int ex_stages(ex_parser *x, uint32_t root, int r) {
    canon_program *p = x->p;
    if (r < 0)
        return canon_stage_add(p, CANON_DOM_RANGE, root, x->n_arrays, CANON_RED_NONE) ==
               CANON_NONE;
    static const canon_reduce reds[] = {CANON_RED_SUM, CANON_RED_SUM, CANON_RED_MIN,
                                        CANON_RED_MAX};
    uint32_t s = canon_stage_add(p, CANON_DOM_RANGE, root, CANON_NONE, reds[r]);
    if (s != CANON_NONE && r == 1) /* mean: the sum over LEN */
        s = canon_stage_add(p, CANON_DOM_SCALAR,
                            canon_node_add(p, CANON_DIV, canon_leaf(p, CANON_ACC, 0),
                                           canon_leaf(p, CANON_LEN, 0), CANON_NONE),
                            CANON_NONE, CANON_RED_NONE);
    p->result_stage = s;
    return s == CANON_NONE || p->oom;
}

int canon_expr_parse(const char *text, const char *const *scalars, uint32_t n_scalars,
                     canon_expr **out, canon_expr_error *err) {
    memset(err, 0, sizeof *err);
    *out = NULL;
    if (!text || (n_scalars && !scalars)) {
        ex_error_set(err, 0, "no expression text");
        return -1;
    }
    size_t len = strnlen(text, CANON_EXPR_MAX_TEXT + 1);
    if (len > CANON_EXPR_MAX_TEXT) {
        ex_error_set(err, 0, "the expression is longer than %u bytes (the limit)",
                     CANON_EXPR_MAX_TEXT);
        return -1;
    }
    if (n_scalars > CANON_MAX_PARAMS) {
        ex_error_set(err, 0, "%u scalars declared (at most %u)", n_scalars, CANON_MAX_PARAMS);
        return -1;
    }
    for (uint32_t i = 0; i < n_scalars; i++) {
        int ok = ex_valid_name(scalars[i]);
        for (uint32_t j = 0; ok && j < i; j++)
            ok = strcmp(scalars[j], scalars[i]) != 0;
        if (!ok) {
            ex_error_set(err, 0, "scalar %u (\"%.64s\") is not a name, is reserved, or "
                         "repeats another", i + 1, scalars[i] ? scalars[i] : "");
            return -1;
        }
    }
    ex_parser x = {.text = text, .err = err, .declared = scalars, .n_declared = n_scalars,
                   .names = calloc(CANON_MAX_INPUTS + CANON_MAX_PARAMS, sizeof(char *))};
    /* the output slot is n_arrays, known only at the end: allocate room for all */
    x.p = canon_program_new(CANON_MAX_SLOTS, CANON_MAX_PARAMS);
    int r = -1;
    uint32_t root = CANON_NONE;
    if (!x.names || !x.p) {
        ex_no_memory(err, "no memory to parse the expression");
        x.failed = 1;
    } else {
        root = ex_top(&x, &r);
    }
    for (uint32_t d = 0; !x.failed && d < n_scalars; d++) {
        uint32_t j = 0;
        while (j < x.n_scalars && strcmp(x.names[x.n_arrays + j], scalars[d]) != 0)
            j++;
        if (j == x.n_scalars) {
            ex_error_set(err, 0, "the scalar \"%s\" does not appear in the expression",
                         scalars[d]);
            x.failed = 1;
        }
    }
    if (!x.failed) {
        x.p->n_slots = x.n_arrays + (r < 0);
        x.p->n_params = x.n_scalars;
        if (ex_stages(&x, root, r)) {
            ex_no_memory(err, "no memory for the expression's stages");
            x.failed = 1;
        }
    }
    if (x.failed) {
        for (uint32_t i = 0; x.names && i < x.n_arrays + x.n_scalars; i++)
            free(x.names[i]);
        free(x.names);
        canon_program_free(x.p);
        return -1;
    }
    if (canon_expr_from_program(x.p, x.names, x.n_arrays, x.n_scalars,
                                r < 0 ? "map" : ex_reductions[r], out, err) != 0)
        return -1;
    (*out)->has_axis = x.has_axis;
    (*out)->axis = x.axis;
    return 0;
}

/* ---- checked expressions ------------------------------------------------------------------ */

void canon_expr_free(canon_expr *e) {
    if (!e)
        return;
    for (uint32_t i = 0; e->names && i < e->n_arrays + e->n_scalars; i++)
        free(e->names[i]);
    free(e->names);
    canon_program_free(e->pre);
    canon_program_free(e->form);
    canon_program_free(e->grid);
    free(e);
}

/* 1 when s is a name of the language: [A-Za-z_][A-Za-z0-9_]*, at most
 * CANON_EXPR_MAX_NAME bytes, and not a function, reduction or keyword. */
static int ex_valid_name(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CANON_EXPR_MAX_NAME || !ex_is_alpha(s[0]))
        return 0;
    for (size_t j = 0; j < n; j++)
        if (!ex_is_alpha(s[j]) && !ex_is_digit(s[j]))
            return 0;
    for (unsigned k = 0; k < CANON_KIND_COUNT; k++)
        if (canon_kinds[k].syntax == CANON_SYN_CALL && strcmp(canon_kinds[k].spelling, s) == 0)
            return 0;
    for (unsigned r = 0; r < EX_N_REDUCTIONS; r++)
        if (strcmp(ex_reductions[r], s) == 0)
            return 0;
    return strcmp(s, "and") != 0 && strcmp(s, "or") != 0 && strcmp(s, "not") != 0;
}

/* The expression rules of canon_expr_from_program beyond canon_check; 0 or -1 (err set). */
static int ex_check_layout(const canon_program *p, char *const *names, uint32_t n_arrays,
                           uint32_t n_scalars, int *has_output, canon_expr_error *err) {
    char why[256];
    for (uint32_t i = 0; i < n_arrays + n_scalars; i++) {
        int ok = ex_valid_name(names[i]);
        for (uint32_t j = 0; ok && j < i; j++)
            ok = strcmp(names[i], names[j]) != 0;
        if (!ok) {
            ex_error_set(err, 0, "%s %u (\"%.64s\") is not a name, is reserved, or repeats "
                         "another", i < n_arrays ? "array" : "scalar",
                         i < n_arrays ? i + 1 : i - n_arrays + 1, names[i] ? names[i] : "");
            return -1;
        }
    }
    if (p->n_nodes > CANON_EXPR_MAX_NODES) {
        ex_error_set(err, 0, "the program has %u nodes (at most %u)", p->n_nodes,
                     CANON_EXPR_MAX_NODES);
        return -1;
    }
    int bad = canon_check(p, 1, NULL, why, sizeof why);
    if (bad == -2)
        ex_no_memory(err, why);
    if (bad) {
        ex_error_set(err, 0, "malformed program: %s", why);
        return -1;
    }
    *has_output = 0;
    for (uint32_t s = 0; s < p->n_stages; s++)
        *has_output |= p->stages[s].store_slot != CANON_NONE;
    if (n_arrays > CANON_MAX_INPUTS || n_scalars > CANON_MAX_PARAMS ||
        p->n_slots != n_arrays + (uint32_t)*has_output || p->n_params != n_scalars) {
        ex_error_set(err, 0, "the program has %u slots and %u parameters; %u arrays%s and %u "
                     "scalars need %u and %u", p->n_slots, p->n_params, n_arrays,
                     *has_output ? " plus the output" : "", n_scalars,
                     n_arrays + (uint32_t)*has_output, n_scalars);
        return -1;
    }
    int loads_output = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        loads_output |= p->nodes[i].kind == CANON_LOAD && p->nodes[i].arg == n_arrays;
    uint8_t *seen = loads_output ? malloc(p->n_nodes) : NULL;
    if (loads_output && !seen) {
        ex_no_memory(err, "no memory to check the program");
        return -1;
    }
    int stored = 0, rc = 0; /* stored: a stage before this one stored the output */
    for (uint32_t s = 0; rc == 0 && s < p->n_stages; s++) {
        const canon_stage *st = &p->stages[s];
        if (st->domain != CANON_DOM_RANGE && st->domain != CANON_DOM_SCALAR) {
            ex_error_set(err, 0, "stage %u is not RANGE or SCALAR (expressions are "
                         "elementwise)", s);
            rc = -1;
        } else if (st->store_slot != CANON_NONE && st->store_slot != n_arrays) {
            ex_error_set(err, 0, "stage %u stores to input slot %u (only the output slot %u "
                         "may be stored)", s, st->store_slot, n_arrays);
            rc = -1;
        } else if (seen && !stored) {
            memset(seen, 0, st->root + 1);
            seen[st->root] = 1;
            for (uint32_t j = st->root + 1; j-- > 0;) {
                const canon_node *n = &p->nodes[j];
                for (unsigned k = 0; seen[j] && k < n->arity; k++)
                    seen[n->op[k]] = 1;
                if (seen[j] && n->kind == CANON_LOAD && n->arg == n_arrays) {
                    ex_error_set(err, 0, "stage %u loads the output slot %u before a stage "
                                 "stored it", s, n_arrays);
                    rc = -1;
                    break;
                }
            }
        }
        stored |= st->store_slot != CANON_NONE;
    }
    free(seen);
    return rc;
}

int canon_expr_from_program(canon_program *pre, char **names, uint32_t n_arrays,
                            uint32_t n_scalars, const char *kind, canon_expr **out,
                            canon_expr_error *err) {
    *out = NULL;
    canon_expr *e = calloc(1, sizeof *e);
    if (!e) {
        for (uint32_t i = 0; names && i < n_arrays + n_scalars; i++)
            free(names[i]);
        free(names);
        canon_program_free(pre);
        ex_no_memory(err, "no memory for the expression");
        return -1;
    }
    e->pre = pre;
    e->names = names;
    e->n_arrays = n_arrays;
    e->n_scalars = n_scalars;
    e->kind = kind;
    if (!pre || ex_check_layout(pre, names, n_arrays, n_scalars, &e->has_output, err) != 0) {
        if (!pre)
            ex_error_set(err, 0, "no program");
        canon_expr_free(e);
        return -1;
    }
    e->has_result = pre->result_stage != CANON_NONE;
    e->form = canon_rewrite(pre);
    if (!e->form) {
        ex_no_memory(err, "no memory to rewrite the expression");
        canon_expr_free(e);
        return -1;
    }
    if (e->form->n_nodes > CANON_EXPR_MAX_NODES) {
        ex_error_set(err, 0, "the expression has %u nodes after rewriting (at most %u)",
                     e->form->n_nodes, CANON_EXPR_MAX_NODES);
        canon_expr_free(e);
        return -1;
    }
    if (!(e->grid = canon_grid_twin(e->form))) {
        ex_no_memory(err, "no memory for the expression's GRID form");
        canon_expr_free(e);
        return -1;
    }
    *out = e;
    return 0;
}
