/*
 * tests/fuzz/fuzz_disk.c — libFuzzer target for the on-disk cache's object reader
 * (jit_disk_decode, jit/disk_format.c) over mutated object files.
 *
 * Input: byte 0 selects the mode, the rest is the file.
 *   bit 0  1: repair the digest first (when the header's lengths add up), so that the
 *          checks behind it (name, form) are reached by mutations of the payload
 * The expected content key and form are fixed (fz_content, fz_form); the seeds in
 * corpus/disk/ are valid files for them (tests/fuzz/make_disk_seeds.py writes them).
 *
 * Invariants: the reader never reads outside the file (the file is an exact-size copy,
 * under ASan); a file it accepts has parts inside the file, a name of [A-Za-z0-9_] only,
 * is exactly what jit_disk_encode writes for those parts, and is refused for another
 * form or another content key.
 */
#include <stdint.h>

#include "jit/disk_format.h"

#define FZ_TARGET "fuzz_disk"
#include "fuzz.h"

static const char fz_form[] = "fuzz_disk form \x01\x02\x03";
#define FZ_FORM_LEN (sizeof fz_form - 1)

/* SHA-256 of "fuzz_disk content". */
static void fz_content(uint8_t out[JIT_SHA256_BYTES]) {
    static const char what[] = "fuzz_disk content";
    jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_update(&s, what, sizeof what - 1);
    jit_sha256_final(&s, out);
}

/* Rewrites the digest of file f[0..len) over its header and parts, when its lengths add
 * up to len. */
static void fz_repair(uint8_t *f, size_t len) {
    jit_disk_header h;
    if (len < sizeof h)
        return;
    memcpy(&h, f, sizeof h);
    if (h.name_len > len || h.form_len > len || h.size > len ||
        h.name_len + h.form_len + h.size != len - sizeof h)
        return;
    jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_update(&s, f, offsetof(jit_disk_header, digest));
    jit_sha256_update(&s, f + sizeof h, len - sizeof h);
    jit_sha256_final(&s, h.digest);
    memcpy(f, &h, sizeof h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *f = fz_alloc(len), content[JIT_SHA256_BYTES];
    memcpy(f, data + 1, len);
    if (data[0] & 1)
        fz_repair(f, len);
    fz_content(content);
    const uint8_t *form = (const uint8_t *)fz_form;
    jit_disk_parts parts;
    if (jit_disk_decode(f, len, content, form, FZ_FORM_LEN, &parts) == 0) {
        const uint8_t *end = f + len, *name = (const uint8_t *)parts.name;
        FZ_CHECK(name >= f && name + parts.name_len <= end && parts.object >= f &&
                     parts.object + parts.size <= end,
                 "accepted parts outside the file");
        char *name_z = fz_alloc(parts.name_len + 1);
        memcpy(name_z, parts.name, parts.name_len);
        name_z[parts.name_len] = '\0';
        for (size_t i = 0; i < parts.name_len; i++)
            FZ_CHECK(name_z[i] == '_' || (name_z[i] >= '0' && name_z[i] <= '9') ||
                         (name_z[i] >= 'a' && name_z[i] <= 'z') ||
                         (name_z[i] >= 'A' && name_z[i] <= 'Z'),
                     "accepted a name with byte 0x%02x", (unsigned char)name_z[i]);
        uint8_t *again;
        size_t again_len;
        FZ_CHECK(jit_disk_encode(content, name_z, form, FZ_FORM_LEN, parts.object, parts.size,
                                 &again, &again_len) == 0,
                 "an accepted file's parts do not encode");
        FZ_CHECK(again_len == len && memcmp(again, f, len) == 0,
                 "an accepted file is not what encode writes for its parts");
        free(again);
        free(name_z);
        uint8_t other_form[FZ_FORM_LEN], other_content[JIT_SHA256_BYTES];
        memcpy(other_form, form, FZ_FORM_LEN);
        other_form[FZ_FORM_LEN - 1] ^= 1;
        memcpy(other_content, content, sizeof content);
        other_content[7] ^= 0x80;
        FZ_CHECK(jit_disk_decode(f, len, content, other_form, FZ_FORM_LEN, &parts) != 0,
                 "accepted for another form");
        FZ_CHECK(jit_disk_decode(f, len, other_content, form, FZ_FORM_LEN, &parts) != 0,
                 "accepted for another content key");
        FZ_CHECK(jit_disk_decode(f, len - 1, content, form, FZ_FORM_LEN, &parts) != 0,
                 "accepted with its last byte cut");
    }
    free(f);
    return 0;
}
