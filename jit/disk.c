/*
 * jit/disk.c — the on-disk object cache.
 *
 * Directory: HOLOGRAM_CACHE_DIR ("off" disables), else $XDG_CACHE_HOME/hologram, else
 * ~/.cache/hologram; created on first use (failure: no disk cache).  One file per kernel,
 * named by the hex of a content key over the cache key and the target (CPU name,
 * features, LLVM version, library version):
 *
 *   header { magic, content key, cache key, name length, object size, FNV-1a checksum of
 *            name + object } name object
 *
 * A file that is short, foreign, for another key or fails the checksum is deleted and the
 * kernel recompiled.  Files are written to a temporary name and renamed into place, so
 * readers never see a partial file.
 *
 * Bound: a load refreshes its file's modification time; when a process first opens the
 * directory and finds more than HOLOGRAM_CACHE_DISK_FILES objects (default
 * JIT_DISK_DEFAULT_FILES), it deletes the least recently used down to three quarters of
 * that, so objects of old library versions and unused shapes do not pile up.  Temporary
 * files older than an hour (a writer that died) go too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jit_internal.h"

#define JIT_DISK_MAGIC "HGJITOB2"
#define JIT_DISK_MAX_FORM (16u << 20)
#define JIT_DISK_MAX_NAME 255u
#define JIT_DISK_MAX_OBJECT (64u << 20)
#define JIT_DISK_DEFAULT_FILES 16384u
#define JIT_DISK_STALE_TMP_SECONDS 3600

typedef struct {
    char magic[8];
    uint64_t content;
    jit_key key;
    uint64_t name_len;
    uint64_t form_len;
    uint64_t size;
    uint64_t checksum;
} jit_disk_header;

static struct {
    pthread_once_t once;
    int enabled;
    char dir[4096];
    atomic_uint serial; /* temporary file names */
} jit_d = {.once = PTHREAD_ONCE_INIT};

/* mkdir -p; 0 when `path` is (now) a directory. */
static int jit_mkdirs(char *path) {
    for (char *s = path + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        int rc = mkdir(path, 0755);
        *s = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    struct stat sb;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

typedef struct {
    time_t mtime;
    char name[64];
} jit_disk_file;

static int jit_disk_older(const void *a, const void *b) {
    time_t x = ((const jit_disk_file *)a)->mtime, y = ((const jit_disk_file *)b)->mtime;
    return x < y ? -1 : x > y;
}

/* The object-count bound: HOLOGRAM_CACHE_DISK_FILES when a positive integer, else the
 * default. */
static size_t jit_disk_limit(void) {
    const char *s = getenv("HOLOGRAM_CACHE_DISK_FILES");
    if (s && *s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end == '\0' && v > 0)
            return (size_t)v;
    }
    return JIT_DISK_DEFAULT_FILES;
}

/* Deletes dead temporary files and, over the bound, the least recently used objects (see
 * the top).  Best effort: any failure leaves the directory as it is. */
static void jit_disk_trim(void) {
    DIR *d = opendir(jit_d.dir);
    if (!d)
        return;
    size_t limit = jit_disk_limit(), n = 0, cap = 0;
    jit_disk_file *files = NULL;
    time_t now = time(NULL);
    char path[4096 + 320];
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        size_t len = strlen(de->d_name);
        snprintf(path, sizeof path, "%s/%s", jit_d.dir, de->d_name);
        if (len >= sizeof files->name || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (strstr(de->d_name, ".hgo.tmp.")) {
            if (now - sb.st_mtime > JIT_DISK_STALE_TMP_SECONDS)
                unlink(path);
            continue;
        }
        if (len < 4 || strcmp(de->d_name + len - 4, ".hgo") != 0)
            continue;
        if (n == cap) {
            jit_disk_file *grown = realloc(files, (cap ? 2 * cap : 256) * sizeof *files);
            if (!grown)
                break;
            files = grown;
            cap = cap ? 2 * cap : 256;
        }
        files[n].mtime = sb.st_mtime;
        memcpy(files[n].name, de->d_name, len + 1);
        n++;
    }
    closedir(d);
    if (n > limit) {
        qsort(files, n, sizeof *files, jit_disk_older);
        for (size_t i = 0; i < n - limit * 3 / 4; i++) {
            snprintf(path, sizeof path, "%s/%s", jit_d.dir, files[i].name);
            unlink(path);
        }
    }
    free(files);
}

/* Resolves and creates the directory once, then bounds it. */
static void jit_disk_init(void) {
    const char *s = getenv("HOLOGRAM_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (s && strcmp(s, "off") == 0)
        return;
    if (s && *s)
        n = snprintf(jit_d.dir, sizeof jit_d.dir, "%s", s);
    else if (xdg && *xdg)
        n = snprintf(jit_d.dir, sizeof jit_d.dir, "%s/hologram", xdg);
    else if (home && *home)
        n = snprintf(jit_d.dir, sizeof jit_d.dir, "%s/.cache/hologram", home);
    else
        return;
    if (n <= 0 || (size_t)n >= sizeof jit_d.dir - 64)
        return;
    jit_d.enabled = jit_mkdirs(jit_d.dir) == 0;
    if (jit_d.enabled)
        jit_disk_trim();
}

/* Content key of k on this target. */
static uint64_t jit_disk_content(const jit_key *k) {
    const char *target = jit_session_target();
    uint64_t h = jit_fnv(JIT_FNV_OFFSET, k, sizeof *k);
    return jit_fnv(h, target, strlen(target));
}

/* Path of k's file into buf (the directory is known to fit); 0, or -1 when disabled. */
static int jit_disk_path(const jit_key *k, char *buf, size_t cap) {
    pthread_once(&jit_d.once, jit_disk_init);
    if (!jit_d.enabled)
        return -1;
    snprintf(buf, cap, "%s/%016llx.hgo", jit_d.dir,
             (unsigned long long)jit_disk_content(k));
    return 0;
}

/* Reads exactly len bytes; 0 or -1. */
static int jit_read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Writes exactly len bytes; 0 or -1. */
static int jit_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Validates an open file against k and the form of p; on success *out_data (malloc'd:
 * name, form, object) and *out_h are set.  0 or -1. */
static int jit_disk_check(int fd, const jit_key *k, const canon_program *p,
                          jit_disk_header *out_h, char **out_data) {
    struct stat sb;
    jit_disk_header h;
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof h || jit_read_all(fd, &h, sizeof h))
        return -1;
    if (memcmp(h.magic, JIT_DISK_MAGIC, 8) != 0 || h.content != jit_disk_content(k) ||
        memcmp(&h.key, k, sizeof *k) != 0 || h.name_len == 0 ||
        h.name_len > JIT_DISK_MAX_NAME || h.form_len != p->ident_len ||
        h.form_len > JIT_DISK_MAX_FORM || h.size == 0 || h.size > JIT_DISK_MAX_OBJECT ||
        (uint64_t)sb.st_size != sizeof h + h.name_len + h.form_len + h.size)
        return -1;
    const size_t len = h.name_len + h.form_len + h.size;
    char *data = malloc(len);
    if (!data)
        return -1;
    if (jit_read_all(fd, data, len) || jit_fnv(JIT_FNV_OFFSET, data, len) != h.checksum ||
        memcmp(data + h.name_len, p->ident, p->ident_len) != 0) {
        free(data);
        return -1;
    }
    for (uint64_t i = 0; i < h.name_len; i++) {
        char ch = data[i];
        if (!(ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z'))) {
            free(data);
            return -1;
        }
    }
    *out_h = h;
    *out_data = data;
    return 0;
}

int jit_disk_read(const jit_key *key, const canon_program *p, LLVMMemoryBufferRef *out_obj,
                  char *name, size_t name_cap) {
    char path[4096 + 64];
    if (jit_disk_path(key, path, sizeof path) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    jit_disk_header h;
    char *data = NULL;
    int rc = jit_disk_check(fd, key, p, &h, &data);
    if (rc == 0)
        futimens(fd, NULL); /* recently used: kept by jit_disk_trim */
    close(fd);
    if (rc != 0 || h.name_len >= name_cap) {
        free(data);
        unlink(path);
        return -1;
    }
    memcpy(name, data, h.name_len);
    name[h.name_len] = '\0';
    *out_obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(data + h.name_len + h.form_len, h.size,
                                                         name);
    free(data);
    return *out_obj ? 0 : -1;
}

void jit_disk_write(const jit_key *key, const canon_program *p, const char *name,
                    const void *obj, size_t size) {
    char path[4096 + 64], tmp[4096 + 128];
    size_t name_len = strlen(name);
    if (jit_disk_path(key, path, sizeof path) != 0 || name_len == 0 ||
        name_len > JIT_DISK_MAX_NAME || p->ident_len > JIT_DISK_MAX_FORM || size == 0 ||
        size > JIT_DISK_MAX_OBJECT)
        return;
    jit_disk_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, JIT_DISK_MAGIC, 8);
    h.content = jit_disk_content(key);
    h.key = *key;
    h.name_len = name_len;
    h.form_len = p->ident_len;
    h.size = size;
    h.checksum =
        jit_fnv(jit_fnv(jit_fnv(JIT_FNV_OFFSET, name, name_len), p->ident, p->ident_len), obj,
                size);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
             atomic_fetch_add(&jit_d.serial, 1u));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int bad = jit_write_all(fd, &h, sizeof h) || jit_write_all(fd, name, name_len) ||
              jit_write_all(fd, p->ident, p->ident_len) || jit_write_all(fd, obj, size);
    bad = close(fd) != 0 || bad;
    if (bad || rename(tmp, path) != 0)
        unlink(tmp);
}

void jit_disk_forget(const jit_key *key) {
    char path[4096 + 64];
    if (jit_disk_path(key, path, sizeof path) == 0)
        unlink(path);
}
