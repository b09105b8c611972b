/*
 * jit/disk.c — the on-disk object cache, which loads only what this user's hologram wrote.
 *
 * Directory: HOLOGRAM_CACHE_DIR ("off" disables; else an absolute path: anything else
 * fails every op, see jit_env_check), else $XDG_CACHE_HOME/hologram, else
 * ~/.cache/hologram.  The cache root is HOLOGRAM_CACHE_DIR itself, else $XDG_CACHE_HOME,
 * else ~/.cache.  On first use (once per process):
 *   - missing directories are created 0700;
 *   - the path is resolved (realpath); every directory from the cache directory up to the
 *     cache root must be owned by the effective uid and not writable by group or others,
 *     and every directory above the root must be owned by root or the euid and not
 *     writable by group or others unless it is sticky (/tmp);
 *   - the directory is opened O_NOFOLLOW and checked again through that descriptor, which
 *     every later operation goes through (openat, renameat, unlinkat), so nothing can
 *     swap the path afterwards;
 *   - its count file (JIT_DISK_COUNT) is opened O_NOFOLLOW and must pass the checks of an
 *     object (below); without one, the directory is scanned once to make it.
 * Every scan (that one and the trims') checks each entry: an object or temporary name that
 * is not a regular file owned by the euid and not writable by group or others refuses the
 * cache.  So a first op costs the same whatever the number of stored objects.
 * Each load opens its object O_NOFOLLOW and checks it with fstat the same way.  Anything
 * else refuses the cache for the process: from then on it loads, writes and deletes
 * nothing, and jit_disk_refusal gives the one message saying why (hg_cache_stats's
 * disk_error).  Only files that passed those checks are ever deleted.
 *
 * Files (format: disk_format.h, SHA-256 content key and digest) are named by the hex of
 * their content key.  Each is written to a temporary name created O_EXCL in the same
 * directory and renamed into place, so readers never see a partial file.  A file of ours
 * that does not check (truncated, corrupted, another form) is deleted and the kernel
 * recompiled.
 *
 * Bound: HOLOGRAM_CACHE_DISK_FILES objects (1..JIT_DISK_MAX_FILES, default
 * JIT_DISK_DEFAULT_FILES), kept while running.  A load refreshes its file's modification
 * time.  The count file holds the number of objects, shared by the processes using the
 * directory: each write adds one and each deletion of an invalid object takes one off,
 * under flock.  When opening finds the count past the bound, or a write takes it past, the
 * process trims: one scan (holding the count's lock) that deletes the least recently used
 * objects down to three quarters of the bound (at least one) and writes the count of what
 * is left, so a trim's scan is paid once per bound/4 writes.  Files deleted or added by
 * hand are seen at the next scan (a count file deleted by hand: at the next open).  Slack:
 * right after any write of this process the directory holds at most the bound plus the
 * number of this process's threads writing at that moment (plus files added by hand).
 * Temporary files older than an hour (a writer that died) are deleted by each scan.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../canon/env.h"
#include "disk_format.h"
#include "jit_internal.h"

#define JIT_DISK_DEFAULT_FILES 16384u
#define JIT_DISK_MAX_FILES (1ll << 30)
#define JIT_DISK_COUNT "objects.count" /* the object count: decimal, JIT_DISK_COUNT_WIDTH */
#define JIT_DISK_COUNT_WIDTH 20        /* digits, then '\n' (rewritten in place) */
#define JIT_DISK_STALE_TMP_SECONDS 3600
#define JIT_DISK_SUFFIX ".hgo"
#define JIT_DISK_TMP ".hgo.tmp."

enum { JIT_DISK_OFF, JIT_DISK_ON, JIT_DISK_REFUSED };

static struct {
    pthread_once_t once, env_once;
    atomic_int state;
    int dirfd;
    int countfd;                 /* JIT_DISK_COUNT, read-write */
    uid_t euid;
    char dir[PATH_MAX];          /* resolved */
    size_t limit;                /* HOLOGRAM_CACHE_DISK_FILES */
    char env_dir[PATH_MAX];      /* HOLOGRAM_CACHE_DIR's path, "": unset or "off" */
    int env_off;                 /* HOLOGRAM_CACHE_DIR=off */
    char env_bad[320];           /* a bad value of either, "" when both are good */
    atomic_uint serial;          /* temporary file names */
    pthread_mutex_t trim_lock;
    pthread_mutex_t msg_lock;
    char refusal[sizeof(((hg_cache_stats *)0)->disk_error)];
} jit_d = {.once = PTHREAD_ONCE_INIT,
           .env_once = PTHREAD_ONCE_INIT,
           .dirfd = -1,
           .countfd = -1,
           .trim_lock = PTHREAD_MUTEX_INITIALIZER,
           .msg_lock = PTHREAD_MUTEX_INITIALIZER};

/* Refuses the disk cache for the process; the first message is kept.  Returns -1. */
__attribute__((format(printf, 1, 2))) static int jit_disk_refuse(const char *fmt, ...) {
    pthread_mutex_lock(&jit_d.msg_lock);
    if (atomic_load(&jit_d.state) != JIT_DISK_REFUSED) {
        int n = snprintf(jit_d.refusal, sizeof jit_d.refusal, "disk cache not used: ");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(jit_d.refusal + n, sizeof jit_d.refusal - (size_t)n, fmt, ap);
        va_end(ap);
        atomic_store(&jit_d.state, JIT_DISK_REFUSED);
    }
    pthread_mutex_unlock(&jit_d.msg_lock);
    return -1;
}

void jit_disk_refusal(char *buf, size_t cap) {
    pthread_mutex_lock(&jit_d.msg_lock);
    snprintf(buf, cap, "%s", jit_d.refusal);
    pthread_mutex_unlock(&jit_d.msg_lock);
}

/* 0 when sb (of `what` `name` in the cache directory) is a regular file owned by the euid
 * and not writable by group or others; else refuses. */
static int jit_disk_trusted(const struct stat *sb, const char *what, const char *name) {
    if (S_ISLNK(sb->st_mode))
        return jit_disk_refuse("%s %s/%s is a symbolic link", what, jit_d.dir, name);
    if (!S_ISREG(sb->st_mode))
        return jit_disk_refuse("%s %s/%s is not a regular file", what, jit_d.dir, name);
    if (sb->st_uid != jit_d.euid)
        return jit_disk_refuse("%s %s/%s is owned by uid %lu, not by this process's uid %lu",
                               what, jit_d.dir, name, (unsigned long)sb->st_uid,
                               (unsigned long)jit_d.euid);
    if (sb->st_mode & (S_IWGRP | S_IWOTH))
        return jit_disk_refuse("%s %s/%s is writable by group or others (mode %04o)", what,
                               jit_d.dir, name, (unsigned)(sb->st_mode & 07777));
    return 0;
}

/* Deletes file `name` if it is still the trusted file sb describes; 1 when it did. */
static int jit_disk_unlink(const char *name, const struct stat *sb) {
    struct stat now;
    return fstatat(jit_d.dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(now.st_mode) && now.st_dev == sb->st_dev && now.st_ino == sb->st_ino &&
           now.st_uid == jit_d.euid && unlinkat(jit_d.dirfd, name, 0) == 0;
}

/* mkdir -p, 0700 for what it creates; 0 when `path` is (now) there, else refuses. */
static int jit_mkdirs(char *path) {
    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        int rc = mkdir(path, 0700);
        int e = errno;
        *s = c;
        if (rc != 0 && e != EEXIST)
            return jit_disk_refuse("cannot create %s: %s", path, strerror(e));
        if (c == '\0')
            return 0;
    }
}

/* Checks resolved directory `dir` and every parent up to "/" (see the top): those from dir
 * up to the resolved cache root `root` (and dir itself) strictly, the others as system
 * directories.  Sets *out to dir's own stat.  0, or refuses. */
static int jit_disk_check_path(const char *dir, const char *root, struct stat *out) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    size_t root_len = strlen(root);
    int under_root = strncmp(dir, root, root_len) == 0 &&
                     (dir[root_len] == '/' || dir[root_len] == '\0' || root_len == 1);
    for (int first = 1;; first = 0) {
        struct stat sb;
        if (lstat(path, &sb) != 0)
            return jit_disk_refuse("cannot stat %s: %s", path, strerror(errno));
        if (!S_ISDIR(sb.st_mode))
            return jit_disk_refuse("%s is not a directory", path);
        unsigned long uid = (unsigned long)sb.st_uid, me = (unsigned long)jit_d.euid;
        unsigned mode = (unsigned)(sb.st_mode & 07777);
        if (first || (under_root && strlen(path) >= root_len)) {
            if (sb.st_uid != jit_d.euid)
                return jit_disk_refuse("%s is owned by uid %lu, not by this process's uid %lu",
                                       path, uid, me);
            if (sb.st_mode & (S_IWGRP | S_IWOTH))
                return jit_disk_refuse("%s is writable by group or others (mode %04o)", path,
                                       mode);
        } else {
            if (sb.st_uid != 0 && sb.st_uid != jit_d.euid)
                return jit_disk_refuse("%s, a parent of the cache, is owned by uid %lu, "
                                       "neither root nor this process's uid %lu", path, uid,
                                       me);
            if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX))
                return jit_disk_refuse("%s, a parent of the cache, is writable by group or "
                                       "others and not sticky (mode %04o)", path, mode);
        }
        if (first)
            *out = sb;
        char *slash = strrchr(path, '/');
        if (!slash || strcmp(path, "/") == 0)
            return 0;
        if (slash == path)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

typedef struct {
    struct timespec mtime;
    struct stat sb;
    char name[64];
} jit_disk_file;

static int jit_disk_older(const void *a, const void *b) {
    const struct timespec *x = &((const jit_disk_file *)a)->mtime,
                          *y = &((const jit_disk_file *)b)->mtime;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* The count file's number (trim_lock and its flock held); -1 when it holds none. */
static long long jit_disk_count_get(void) {
    char buf[JIT_DISK_COUNT_WIDTH + 2];
    ssize_t r = pread(jit_d.countfd, buf, sizeof buf - 1, 0);
    if (r <= 0)
        return -1;
    buf[r] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return end == buf || *end != '\n' || errno != 0 || v < 0 ? -1 : v;
}

/* Writes the count file's number in place (trim_lock and its flock held); a failed or
 * short write empties the file, so that the next count or open scans instead of reading a
 * mix of two numbers. */
static void jit_disk_count_put(long long v) {
    char buf[JIT_DISK_COUNT_WIDTH + 2];
    int len = snprintf(buf, sizeof buf, "%0*lld\n", JIT_DISK_COUNT_WIDTH, v < 0 ? 0 : v);
    if (pwrite(jit_d.countfd, buf, (size_t)len, 0) != len && ftruncate(jit_d.countfd, 0) != 0)
        jit_disk_refuse("cannot write %s/%s: %s", jit_d.dir, JIT_DISK_COUNT, strerror(errno));
}

/* Scans the directory (trim_lock and the count's flock held): refuses on an untrusted
 * object or temporary file, deletes dead temporary files and, over the bound, the least
 * recently used objects down to 3/4 of it; writes the count.  0, or -1 when refused. */
static int jit_disk_scan(void) {
    int fd = openat(jit_d.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return jit_disk_refuse("cannot read %s: %s", jit_d.dir, strerror(errno));
    }
    size_t n = 0, cap = 0;
    jit_disk_file *files = NULL;
    time_t now = time(NULL);
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        int tmp = strstr(de->d_name, JIT_DISK_TMP) != NULL;
        int obj = !tmp && len > 4 && strcmp(de->d_name + len - 4, JIT_DISK_SUFFIX) == 0;
        if (!tmp && !obj)
            continue;
        struct stat sb;
        if (fstatat(jit_d.dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile */
        if (jit_disk_trusted(&sb, tmp ? "temporary file" : "object", de->d_name) != 0) {
            rc = -1;
            break;
        }
        if (tmp) {
            if (now - sb.st_mtime > JIT_DISK_STALE_TMP_SECONDS)
                jit_disk_unlink(de->d_name, &sb);
            continue;
        }
        if (len >= sizeof files->name)
            continue; /* not a name we write */
        if (n == cap) {
            size_t grown_cap = cap ? 2 * cap : 256;
            jit_disk_file *grown = realloc(files, grown_cap * sizeof *files);
            if (!grown)
                break; /* trims what it has seen */
            files = grown;
            cap = grown_cap;
        }
        files[n].mtime = sb.st_mtim;
        files[n].sb = sb;
        memcpy(files[n].name, de->d_name, len + 1);
        n++;
    }
    closedir(d);
    if (rc == 0 && n > jit_d.limit) {
        size_t keep = jit_d.limit * 3 / 4 ? jit_d.limit * 3 / 4 : 1;
        qsort(files, n, sizeof *files, jit_disk_older);
        for (size_t i = 0; i < n - keep; i++)
            jit_disk_unlink(files[i].name, &files[i].sb);
        n = keep;
    }
    if (rc == 0)
        jit_disk_count_put((long long)n);
    free(files);
    return rc;
}

/* Reads HOLOGRAM_CACHE_DIR and HOLOGRAM_CACHE_DISK_FILES (once); a bad value keeps the
 * default and its message. */
static void jit_disk_env_read(void) {
    static const char *const words[] = {"off", NULL};
    int word;
    const char *path;
    if (canon_env_path("HOLOGRAM_CACHE_DIR", words, sizeof jit_d.env_dir - 16, &word, &path,
                       jit_d.env_bad, sizeof jit_d.env_bad) == 1) {
        jit_d.env_off = word == 0;
        if (path)
            snprintf(jit_d.env_dir, sizeof jit_d.env_dir, "%s", path);
    }
    jit_d.limit = JIT_DISK_DEFAULT_FILES;
    long long v;
    char bad[sizeof jit_d.env_bad] = "";
    if (canon_env_int("HOLOGRAM_CACHE_DISK_FILES", 1, JIT_DISK_MAX_FILES, &v, bad,
                      sizeof bad) == 1)
        jit_d.limit = (size_t)v;
    if (!jit_d.env_bad[0])
        memcpy(jit_d.env_bad, bad, sizeof bad);
}

hg_status jit_disk_env_check(char *err, size_t cap) {
    pthread_once(&jit_d.env_once, jit_disk_env_read);
    if (jit_d.env_bad[0])
        return jit_fail(HG_ERR_INVALID_ARGUMENT, err, cap, "%s", jit_d.env_bad);
    return HG_OK;
}

/* Opens (creating) and checks the count file; scans when it holds no count or one past
 * the bound.  Refuses the cache when the file cannot be trusted. */
static void jit_disk_open_count(void) {
    int fd = openat(jit_d.dirfd, JIT_DISK_COUNT,
                    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    struct stat sb;
    if (fd < 0) {
        if (errno == ELOOP)
            jit_disk_refuse("count file %s/%s is a symbolic link", jit_d.dir, JIT_DISK_COUNT);
        else
            jit_disk_refuse("cannot open %s/%s: %s", jit_d.dir, JIT_DISK_COUNT,
                            strerror(errno));
        return;
    }
    if (fstat(fd, &sb) != 0 || jit_disk_trusted(&sb, "count file", JIT_DISK_COUNT) != 0) {
        close(fd);
        return;
    }
    jit_d.countfd = fd;
    pthread_mutex_lock(&jit_d.trim_lock);
    flock(fd, LOCK_EX);
    long long n = jit_disk_count_get();
    if (n < 0 || (unsigned long long)n > jit_d.limit)
        jit_disk_scan();
    flock(fd, LOCK_UN);
    pthread_mutex_unlock(&jit_d.trim_lock);
}

/* Resolves, creates and checks the directory once, then opens its count file (see the
 * top). */
static void jit_disk_init(void) {
    pthread_once(&jit_d.env_once, jit_disk_env_read);
    const char *s = jit_d.env_dir;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX], root[PATH_MAX];
    int n;
    if (jit_d.env_off)
        return;
    if (jit_d.env_bad[0]) { /* jit_env_check fails every op with it */
        jit_disk_refuse("%s", jit_d.env_bad);
        return;
    }
    if (*s)
        n = snprintf(root, sizeof root, "%s", s);
    else if (xdg && *xdg)
        n = snprintf(root, sizeof root, "%s", xdg);
    else if (home && *home)
        n = snprintf(root, sizeof root, "%s/.cache", home);
    else
        return;
    jit_d.euid = geteuid();
    if (n <= 0 || (size_t)n >= sizeof root - 16) {
        jit_disk_refuse("the cache directory's name is longer than %zu bytes",
                        sizeof root - 16);
        return;
    }
    if (snprintf(dir, sizeof dir, "%s%s", root, *s ? "" : "/hologram") >= (int)sizeof dir)
        return; /* cannot happen: root leaves room */
    if (root[0] != '/') {
        jit_disk_refuse("the cache directory %s is not an absolute path", dir);
        return;
    }
    char real_root[PATH_MAX];
    struct stat sb = {0}, fsb;
    if (jit_mkdirs(dir) != 0)
        return;
    if (!realpath(dir, jit_d.dir) || !realpath(root, real_root)) {
        jit_disk_refuse("cannot resolve %s: %s", dir, strerror(errno));
        return;
    }
    if (jit_disk_check_path(jit_d.dir, real_root, &sb) != 0)
        return;
    int fd = open(jit_d.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &fsb) != 0 || fsb.st_dev != sb.st_dev || fsb.st_ino != sb.st_ino ||
        fsb.st_uid != jit_d.euid || (fsb.st_mode & (S_IWGRP | S_IWOTH))) {
        if (fd >= 0)
            close(fd);
        jit_disk_refuse("%s changed while it was checked", jit_d.dir);
        return;
    }
    jit_d.dirfd = fd;
    atomic_store(&jit_d.state, JIT_DISK_ON);
    jit_disk_open_count();
}

/* Content key of k on this target (SHA-256 of the key and jit_session_target()). */
static void jit_disk_content(const jit_key *k, uint8_t out[JIT_SHA256_BYTES]) {
    const char *target = jit_session_target();
    jit_sha256 s;
    jit_sha256_init(&s);
    jit_sha256_update(&s, k, sizeof *k);
    jit_sha256_update(&s, target, strlen(target));
    jit_sha256_final(&s, out);
}

/* Content key and file name of k; 0, or -1 when the disk cache is not in use. */
static int jit_disk_name(const jit_key *k, uint8_t content[JIT_SHA256_BYTES], char name[64]) {
    pthread_once(&jit_d.once, jit_disk_init);
    if (atomic_load(&jit_d.state) != JIT_DISK_ON)
        return -1;
    jit_disk_content(k, content);
    for (int i = 0; i < 16; i++)
        snprintf(name + 2 * i, 3, "%02x", content[i]);
    memcpy(name + 32, JIT_DISK_SUFFIX, sizeof JIT_DISK_SUFFIX);
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

/* Adds delta to the count file's number; past the bound, or when the file holds no number,
 * scans (see the top). */
static void jit_disk_count_add(long long delta) {
    pthread_mutex_lock(&jit_d.trim_lock);
    if (atomic_load(&jit_d.state) == JIT_DISK_ON) {
        flock(jit_d.countfd, LOCK_EX);
        long long n = jit_disk_count_get();
        if (n < 0 || (unsigned long long)(n + delta) > jit_d.limit)
            jit_disk_scan();
        else
            jit_disk_count_put(n + delta);
        flock(jit_d.countfd, LOCK_UN);
    }
    pthread_mutex_unlock(&jit_d.trim_lock);
}

int jit_disk_read(const jit_key *key, const canon_program *p, LLVMMemoryBufferRef *out_obj,
                  char *name, size_t name_cap) {
    uint8_t content[JIT_SHA256_BYTES];
    char file[64];
    if (jit_disk_name(key, content, file) != 0)
        return -1;
    int fd = openat(jit_d.dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            jit_disk_refuse("object %s/%s is a symbolic link", jit_d.dir, file);
        else if (errno != ENOENT)
            jit_disk_refuse("cannot open object %s/%s: %s", jit_d.dir, file, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || jit_disk_trusted(&sb, "object", file) != 0) {
        close(fd);
        return -1;
    }
    uint8_t *data = NULL;
    jit_disk_parts parts;
    int rc = -1, invalid = 1;
    if ((uint64_t)sb.st_size <= JIT_DISK_MAX_FILE) {
        data = malloc((size_t)sb.st_size + 1);
        invalid = data && (jit_read_all(fd, data, (size_t)sb.st_size) != 0 ||
                           jit_disk_decode(data, (size_t)sb.st_size, content, p->ident,
                                           p->ident_len, &parts) != 0 ||
                           parts.name_len >= name_cap);
    }
    if (data && !invalid) {
        memcpy(name, parts.name, parts.name_len);
        name[parts.name_len] = '\0';
        *out_obj = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)parts.object,
                                                             parts.size, name);
        rc = *out_obj ? 0 : -1;
        if (rc == 0)
            futimens(fd, NULL); /* recently used: kept by a trim */
    } else if (invalid && jit_disk_unlink(file, &sb)) {
        jit_disk_count_add(-1); /* ours and not valid: recompiled and written anew */
    }
    free(data);
    close(fd);
    return rc;
}

void jit_disk_write(const jit_key *key, const canon_program *p, const char *name,
                    const void *obj, size_t size) {
    uint8_t content[JIT_SHA256_BYTES], *data;
    char file[64], tmp[128];
    size_t len;
    if (jit_disk_name(key, content, file) != 0 ||
        jit_disk_encode(content, name, p->ident, p->ident_len, obj, size, &data, &len) != 0)
        return;
    snprintf(tmp, sizeof tmp, "%.32s" JIT_DISK_TMP "%ld.%u", file, (long)getpid(),
             atomic_fetch_add(&jit_d.serial, 1u)); /* <hex>.hgo.tmp.<pid>.<serial> */
    int fd = openat(jit_d.dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    if (fd >= 0) {
        int bad = jit_write_all(fd, data, len);
        bad = close(fd) != 0 || bad;
        if (bad || renameat(jit_d.dirfd, tmp, jit_d.dirfd, file) != 0)
            unlinkat(jit_d.dirfd, tmp, 0);
        else
            jit_disk_count_add(1);
    }
    free(data);
}

void jit_disk_forget(const jit_key *key) {
    uint8_t content[JIT_SHA256_BYTES];
    char file[64];
    struct stat sb;
    if (jit_disk_name(key, content, file) == 0 &&
        fstatat(jit_d.dirfd, file, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
        jit_disk_trusted(&sb, "object", file) == 0 && jit_disk_unlink(file, &sb))
        jit_disk_count_add(-1);
}
