/*
 * canon/env.h — the HOLOGRAM_* environment knobs: one parser and one message format.
 *
 * Every knob is read through these functions, so a bad value is named the same way
 * whichever layer reads it:
 *     HOLOGRAM_CACHE_ENTRIES="-5" is not an integer from 1 to 16777216
 *     HOLOGRAM_BACKEND="jitt" is not one of: jit, interp
 *     HOLOGRAM_DUMP="canon,irr" has "irr", which is not one of: canon, ir, opt-ir
 * A knob that is unset or set to "" takes its default (so `NAME= cmd` clears it).  Whoever
 * owns a knob reads it once per process, keeps the message of a bad value, and makes every
 * op fail with HG_ERR_INVALID_ARGUMENT carrying it (runtime/exec.c rt_env_check gathers
 * them), so a typo is never silently replaced by a default.
 *
 * Each function returns 1 (set and valid: *out written), 0 (unset or empty: *out
 * untouched), or -1 (bad: the message written to msg[0..cap), *out untouched).
 */
#ifndef CANON_ENV_H
#define CANON_ENV_H

#include <stddef.h>

/* A decimal integer in [min, max]: optional sign and digits only (no spaces, no suffix);
 * overflow is out of range. */
int canon_env_int(const char *name, long long min, long long max, long long *out, char *msg,
                  size_t cap);
/* One of `words` (NULL-terminated): *out = its index. */
int canon_env_word(const char *name, const char *const *words, int *out, char *msg,
                   size_t cap);
/* A comma-separated list of `words` (NULL-terminated, at most 32; empty items skipped):
 * *out = bit i set for each words[i] listed. */
int canon_env_words(const char *name, const char *const *words, unsigned *out, char *msg,
                    size_t cap);
/* One of `words` (NULL-terminated; *out_word = its index, *out_path = NULL) or an absolute
 * path shorter than max_len bytes (*out_word = -1, *out_path = the value). */
int canon_env_path(const char *name, const char *const *words, size_t max_len, int *out_word,
                   const char **out_path, char *msg, size_t cap);

/* HOLOGRAM_DUMP's words (runtime/exec.c prints canon, jit/session.c ir and opt-ir); the
 * bits canon_env_words gives for them. */
#define CANON_DUMP_WORDS {"canon", "ir", "opt-ir", NULL}
enum { CANON_DUMP_CANON = 1u << 0, CANON_DUMP_IR = 1u << 1, CANON_DUMP_OPT_IR = 1u << 2 };

#endif /* CANON_ENV_H */
