/* canon/env.c — the HOLOGRAM_* knob parsers (see env.h). */
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of `name`, or NULL when it is unset or empty. */
static const char *canon_env_value(const char *name) {
    const char *s = getenv(name);
    return s && *s ? s : NULL;
}

/* Writes ", ".join(words) to buf. */
static void canon_env_list(const char *const *words, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; words[i] && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", words[i]);
}

int canon_env_int(const char *name, long long min, long long max, long long *out, char *msg,
                  size_t cap) {
    const char *s = canon_env_value(name);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    const int digits = (s[0] >= '0' && s[0] <= '9') ||
                       ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9');
    if (!digits || *end != '\0' || errno == ERANGE || v < min || v > max) {
        snprintf(msg, cap, "%s=\"%.64s\" is not an integer from %lld to %lld", name, s, min,
                 max);
        return -1;
    }
    *out = v;
    return 1;
}

/* The index of s among words (NULL-terminated), or -1. */
static int canon_env_index(const char *s, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    return -1;
}

int canon_env_word(const char *name, const char *const *words, int *out, char *msg,
                   size_t cap) {
    const char *s = canon_env_value(name);
    if (!s)
        return 0;
    const int i = canon_env_index(s, words);
    if (i >= 0) {
        *out = i;
        return 1;
    }
    char list[256];
    canon_env_list(words, list, sizeof list);
    snprintf(msg, cap, "%s=\"%.64s\" is not one of: %s", name, s, list);
    return -1;
}

int canon_env_words(const char *name, const char *const *words, unsigned *out, char *msg,
                    size_t cap) {
    const char *s = canon_env_value(name);
    if (!s)
        return 0;
    unsigned bits = 0;
    for (const char *item = s; *item;) {
        size_t len = strcspn(item, ",");
        int found = len == 0; /* "a,,b" and a trailing comma: nothing named */
        for (int i = 0; words[i] && i < 32 && !found; i++)
            if (strlen(words[i]) == len && strncmp(item, words[i], len) == 0) {
                bits |= 1u << i;
                found = 1;
            }
        if (!found) {
            char list[256];
            canon_env_list(words, list, sizeof list);
            snprintf(msg, cap, "%s=\"%.64s\" has \"%.*s\", which is not one of: %s", name, s,
                     (int)(len > 64 ? 64 : len), item, list);
            return -1;
        }
        item += len + (item[len] == ',');
    }
    *out = bits;
    return 1;
}

int canon_env_path(const char *name, const char *const *words, size_t max_len, int *out_word,
                   const char **out_path, char *msg, size_t cap) {
    const char *s = canon_env_value(name);
    if (!s)
        return 0;
    const int i = canon_env_index(s, words);
    if (i >= 0) {
        *out_word = i;
        *out_path = NULL;
        return 1;
    }
    if (s[0] == '/' && strlen(s) < max_len) {
        *out_word = -1;
        *out_path = s;
        return 1;
    }
    char list[256];
    canon_env_list(words, list, sizeof list);
    snprintf(msg, cap,
             "%s=\"%.64s%s\" is neither an absolute path shorter than %zu bytes nor one of: %s",
             name, s, strlen(s) > 64 ? "..." : "", max_len, list);
    return -1;
}
