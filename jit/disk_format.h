/*
 * jit/disk_format.h — the on-disk object file format and its hash, without LLVM (so the
 * tests and the fuzz target of the reader build it alone).
 *
 *   header { magic "HGJITOB3", content key (32 bytes), name length, form length, object
 *            size (u64 each, host order), digest (32 bytes) } name form object
 *
 * content key: SHA-256 of the cache key and the target (jit_disk_content in disk.c); the
 *   file is named by the hex of its first 16 bytes.
 * form: the program's canonical identity (canon_program.ident), compared in full on load.
 * digest: SHA-256 of the header up to the digest, the name, the form and the object.
 *
 * The digest detects truncation and corruption; it is no proof of origin (anyone can
 * compute it).  Trust comes from the file's owner and mode, checked by disk.c.
 */
#ifndef HG_JIT_DISK_FORMAT_H
#define HG_JIT_DISK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JIT_SHA256_BYTES 32u

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
} jit_sha256;

void jit_sha256_init(jit_sha256 *s);
void jit_sha256_update(jit_sha256 *s, const void *data, size_t len);
/* Writes the digest of everything updated so far; s must be initialized again for reuse. */
void jit_sha256_final(jit_sha256 *s, uint8_t out[JIT_SHA256_BYTES]);

#define JIT_DISK_MAGIC "HGJITOB3"
#define JIT_DISK_MAX_NAME 255u
#define JIT_DISK_MAX_FORM (16u << 20)
#define JIT_DISK_MAX_OBJECT (64u << 20)

typedef struct {
    char magic[8];
    uint8_t content[JIT_SHA256_BYTES];
    uint64_t name_len;
    uint64_t form_len;
    uint64_t size;
    uint8_t digest[JIT_SHA256_BYTES];
} jit_disk_header;

/* The parts of an object file, pointing into the file's bytes. */
typedef struct {
    const char *name; /* not NUL-terminated: name_len bytes of [A-Za-z0-9_] */
    size_t name_len;
    const uint8_t *object;
    size_t size;
} jit_disk_parts;

/* Largest file the format allows (header + the three maxima). */
#define JIT_DISK_MAX_FILE \
    (sizeof(jit_disk_header) + JIT_DISK_MAX_NAME + JIT_DISK_MAX_FORM + JIT_DISK_MAX_OBJECT)

/* The file of content key `content` holding symbol `name` (1..JIT_DISK_MAX_NAME bytes of
 * [A-Za-z0-9_]), form[0..form_len) and object[0..size) (1..JIT_DISK_MAX_OBJECT): a new
 * malloc'd buffer (*out, *out_len; the caller frees it).  0, or -1 for parts out of those
 * bounds or no memory (nothing allocated). */
int jit_disk_encode(const uint8_t content[JIT_SHA256_BYTES], const char *name,
                    const uint8_t *form, size_t form_len, const void *object, size_t size,
                    uint8_t **out, size_t *out_len);

/* Checks file bytes data[0..len) (borrowed) against content key `content` and the form
 * form[0..form_len): 0 and *out set (pointing into data) when the file is exactly what
 * jit_disk_encode would write for them; else -1. */
int jit_disk_decode(const uint8_t *data, size_t len, const uint8_t content[JIT_SHA256_BYTES],
                    const uint8_t *form, size_t form_len, jit_disk_parts *out);

#endif /* HG_JIT_DISK_FORMAT_H */
