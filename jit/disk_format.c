/*
 * jit/disk_format.c — encoding and checking object files (see disk_format.h).  Pure: no
 * file system, no LLVM.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "disk_format.h"

/* 1 when name[0..len) is a symbol name the JIT writes: 1..JIT_DISK_MAX_NAME bytes of
 * [A-Za-z0-9_]. */
static int jit_disk_name_ok(const char *name, size_t len) {
    if (len == 0 || len > JIT_DISK_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

/* The digest of header h (up to its digest field) and the three parts. */
static void jit_disk_digest(const jit_disk_header *h, const char *name, const uint8_t *form,
                            const void *object, uint8_t out[JIT_SHA256_BYTES]) {
    jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_update(&s, h, offsetof(jit_disk_header, digest));
    jit_sha256_update(&s, name, h->name_len);
    jit_sha256_update(&s, form, h->form_len);
    jit_sha256_update(&s, object, h->size);
    jit_sha256_final(&s, out);
}

int jit_disk_encode(const uint8_t content[JIT_SHA256_BYTES], const char *name,
                    const uint8_t *form, size_t form_len, const void *object, size_t size,
                    uint8_t **out, size_t *out_len) {
    size_t name_len = strnlen(name, JIT_DISK_MAX_NAME + 1);
    if (!jit_disk_name_ok(name, name_len) || form_len > JIT_DISK_MAX_FORM || size == 0 ||
        size > JIT_DISK_MAX_OBJECT)
        return -1;
    jit_disk_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, JIT_DISK_MAGIC, sizeof h.magic);
    memcpy(h.content, content, JIT_SHA256_BYTES);
    h.name_len = name_len;
    h.form_len = form_len;
    h.size = size;
    jit_disk_digest(&h, name, form, object, h.digest);
    size_t len = sizeof h + name_len + form_len + size;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -1;
    uint8_t *p = buf;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, name, name_len);
    p += name_len;
    if (form_len) /* form may be NULL then */
        memcpy(p, form, form_len);
    p += form_len;
    memcpy(p, object, size);
    *out = buf;
    *out_len = len;
    return 0;
}

int jit_disk_decode(const uint8_t *data, size_t len, const uint8_t content[JIT_SHA256_BYTES],
                    const uint8_t *form, size_t form_len, jit_disk_parts *out) {
    jit_disk_header h;
    if (len < sizeof h)
        return -1;
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, JIT_DISK_MAGIC, sizeof h.magic) != 0 ||
        memcmp(h.content, content, JIT_SHA256_BYTES) != 0 || h.form_len != form_len ||
        h.name_len == 0 || h.name_len > JIT_DISK_MAX_NAME || h.form_len > JIT_DISK_MAX_FORM ||
        h.size == 0 || h.size > JIT_DISK_MAX_OBJECT ||
        len - sizeof h != h.name_len + h.form_len + h.size)
        return -1;
    const char *name = (const char *)data + sizeof h;
    const uint8_t *stored_form = data + sizeof h + h.name_len;
    const uint8_t *object = stored_form + h.form_len;
    if (!jit_disk_name_ok(name, h.name_len) ||
        (form_len && memcmp(stored_form, form, form_len) != 0))
        return -1;
    uint8_t digest[JIT_SHA256_BYTES];
    jit_disk_digest(&h, name, stored_form, object, digest);
    if (memcmp(digest, h.digest, JIT_SHA256_BYTES) != 0)
        return -1;
    out->name = name;
    out->name_len = h.name_len;
    out->object = object;
    out->size = h.size;
    return 0;
}
