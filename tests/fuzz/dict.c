/*
 * tests/fuzz/dict.c — writes the libFuzzer dictionary of fuzz_expr: `dict FIXED OUT` copies
 * the fixed tokens of FIXED (tests/fuzz/expr.dict: what prims.def does not list) to OUT,
 * then appends the tokens of the primitive table, so that they are never listed by hand:
 *   every spelling of canon_kinds[] (operators, and functions also with their '('),
 *   every kind name as a JSON string (program documents' "op"), and every stage domain and
 *   reduction name as a JSON string (canon_domain_name, canon_reduce_name).
 * Exit status 0, or 1 (with a message) when a file cannot be read or written.
 */
#include <stdio.h>
#include <string.h>

#include "canon/canon.h"

/* Writes the entry name_tag="before value after", escaping '"' and '\'. */
static void dict_entry(FILE *out, const char *name, const char *tag, const char *before,
                       const char *value, const char *after) {
    fprintf(out, "%s_%s=\"", name, tag);
    const char *parts[] = {before, value, after};
    for (unsigned p = 0; p < 3; p++)
        for (const char *c = parts[p]; *c; c++) {
            if (*c == '"' || *c == '\\')
                fputc('\\', out);
            fputc(*c, out);
        }
    fprintf(out, "\"\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FIXED.dict OUT.dict\n", argv[0]);
        return 1;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = in ? fopen(argv[2], "wb") : NULL;
    if (!in || !out) {
        perror(in ? argv[2] : argv[1]);
        if (in)
            fclose(in);
        return 1;
    }
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, in)) > 0;)
        fwrite(buf, 1, got, out);
    const int read_failed = ferror(in);
    fclose(in);
    fprintf(out, "\n# derived from canon/prims.def by tests/fuzz/dict.c\n");
    for (unsigned k = 0; k < CANON_KIND_COUNT; k++) {
        const canon_kind_info *ki = &canon_kinds[k];
        if (ki->syntax != CANON_SYN_NONE)
            dict_entry(out, "spelling", ki->name, "", ki->spelling, "");
        if (ki->syntax == CANON_SYN_CALL)
            dict_entry(out, "call", ki->name, "", ki->spelling, "(");
        dict_entry(out, "op", ki->name, "\"", ki->name, "\"");
    }
    for (int d = 0; canon_domain_name((canon_domain)d); d++)
        dict_entry(out, "domain", canon_domain_name((canon_domain)d), "\"",
                   canon_domain_name((canon_domain)d), "\"");
    for (int r = 0; canon_reduce_name((canon_reduce)r); r++)
        dict_entry(out, "reduce", canon_reduce_name((canon_reduce)r), "\"",
                   canon_reduce_name((canon_reduce)r), "\"");
    const int write_failed = ferror(out) | (fclose(out) != 0);
    if (read_failed || write_failed) {
        fprintf(stderr, "%s: %s failed\n", read_failed ? argv[1] : argv[2],
                read_failed ? "reading" : "writing");
        return 1;
    }
    return 0;
}
