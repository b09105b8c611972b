/*
 * tests/test_disk.c — the on-disk object cache under attack (jit/disk.c, disk_format.c,
 * sha256.c; JIT builds only).
 *
 * The weapon: an object file for vector_add_f32 (n = 16) whose content key, form and
 * digest are all right but whose code and symbol are vector_mul_f32's, built with
 * jit_disk_encode from two objects the library wrote.  Owned by the user who runs the
 * op, it is loaded and add returns products (the control: the attack works when nothing
 * refuses it).  Planted by another user, behind a symbolic link, in a directory another
 * user owns or anyone may write, or under an XDG_CACHE_HOME another user owns, it must be
 * refused: the op compiles and returns sums, hg_cache_stats.disk_error says why, and the
 * planted files are left where they are.  So must a count file (objects.count) behind a
 * symbolic link or planted by another user.
 *
 * Every case runs as the test's own user and, when the test runs as root, again as
 * nobody (a child that drops to uid/gid 65534 before it runs the op); the other user is
 * then root.  Child processes are this binary re-run with "run OP" and their own
 * environment; they print one report line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jit/disk_format.h"
#include "ref.h"

#define N 16
#define NOBODY 65534u

/* ---- SHA-256 against FIPS 180-4's examples ------------------------------------------------ */

static void hex(const uint8_t *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha(const char *msg, size_t len, size_t repeat, const char *want) {
    jit_sha256 s;
    uint8_t d[JIT_SHA256_BYTES];
    char got[65];
    jit_sha256_init(&s);
    for (size_t i = 0; i < repeat; i++) /* odd piece sizes cross block borders */
        jit_sha256_update(&s, msg, len);
    jit_sha256_final(&s, d);
    hex(d, sizeof d, got);
    assert_string_equal(got, want);
}

static void test_sha256(void **state) {
    (void)state;
    check_sha("", 0, 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha("abc", 3, 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), 1,
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_sha("a", 1, 1000000, /* a million a's, one byte at a time */
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    check_sha("aaaaaaa", 7, 1000000 / 7, /* 999999 a's in pieces of 7 */
              "6c7aaf9baa56d59e3651f608e2fb587688382cbc78c8b39abbdb916a00a52098");
}

/* ---- the format: what encode writes, decode accepts, and nothing else --------------------- */

static void test_format(void **state) {
    (void)state;
    uint8_t content[JIT_SHA256_BYTES] = {1, 2, 3}, form[5] = {9, 8, 7, 6, 5}, *f;
    const char object[] = "\x7f" "ELF object bytes";
    size_t len;
    assert_int_equal(jit_disk_encode(content, "hg_k_1", form, sizeof form, object,
                                     sizeof object, &f, &len), 0);
    jit_disk_parts parts;
    assert_int_equal(jit_disk_decode(f, len, content, form, sizeof form, &parts), 0);
    assert_int_equal(parts.name_len, 6);
    assert_memory_equal(parts.name, "hg_k_1", 6);
    assert_int_equal(parts.size, sizeof object);
    assert_memory_equal(parts.object, object, sizeof object);
    for (size_t i = 0; i < len; i++) { /* every single flipped bit is refused */
        for (int b = 0; b < 8; b++) {
            f[i] ^= (uint8_t)(1u << b);
            assert_int_equal(jit_disk_decode(f, len, content, form, sizeof form, &parts), -1);
            f[i] ^= (uint8_t)(1u << b);
        }
    }
    for (size_t cut = 0; cut < len; cut++) /* and every truncation */
        assert_int_equal(jit_disk_decode(f, cut, content, form, sizeof form, &parts), -1);
    uint8_t other[5] = {9, 8, 7, 6, 4}, key2[JIT_SHA256_BYTES] = {1, 2, 4};
    assert_int_equal(jit_disk_decode(f, len, content, other, sizeof other, &parts), -1);
    assert_int_equal(jit_disk_decode(f, len, key2, form, sizeof form, &parts), -1);
    assert_int_equal(jit_disk_decode(f, len, content, form, 4, &parts), -1);
    free(f);
    assert_int_equal(jit_disk_encode(content, "bad name", form, 5, object, 3, &f, &len), -1);
    assert_int_equal(jit_disk_encode(content, "", form, 5, object, 3, &f, &len), -1);
    assert_int_equal(jit_disk_encode(content, "k", form, 5, object, 0, &f, &len), -1);
}

/* ---- child: run one op, report -------------------------------------------------------------- */

/* Runs OP ("add" or "mul") on n = 16 into *wrong (elements not as expected); 0 or 3. */
static int run_op(const char *op, int *wrong) {
    int mul = strcmp(op, "mul") == 0;
    float x[N], y[N], z[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i + 2);
        y[i] = (float)(3 * i + 1);
    }
    uint64_t e, a, b, c;
    if (hg_new_executor(&e) || hg_executor_allocate_buffer(e, N, &a) ||
        hg_executor_allocate_buffer(e, N, &b) || hg_executor_allocate_buffer(e, N, &c) ||
        hg_buffer_write(e, a, x, N) || hg_buffer_write(e, b, y, N) ||
        (mul ? hg_vector_mul_f32(e, a, b, c, N) : hg_vector_add_f32(e, a, b, c, N)) ||
        hg_buffer_read(e, c, z, N) || hg_executor_cleanup(e))
        return 3;
    for (int i = 0; i < N; i++)
        *wrong += z[i] != (mul ? x[i] * y[i] : x[i] + y[i]);
    return 0;
}

/* Child: runs OP and prints what it got.  `late`: first runs the other op (the cache
 * directory is opened and checked then), says "ready" and waits for a byte on stdin (the
 * parent plants meanwhile), so that OP's load meets what was planted after the checks. */
static int child_run(const char *op, int late) {
    int wrong = 0;
    if (late) {
        char go;
        if (run_op(strcmp(op, "mul") ? "mul" : "add", &wrong) || wrong)
            return 4;
        printf("ready\n");
        fflush(stdout);
        if (read(0, &go, 1) != 1)
            return 5;
    }
    if (run_op(op, &wrong))
        return 3;
    hg_cache_stats s;
    hg_cache_stats_get(&s);
    printf("uid=%lu compiles=%llu disk_loads=%llu wrong=%d error=%s\n",
           (unsigned long)geteuid(), (unsigned long long)s.compiles - late,
           (unsigned long long)s.disk_loads, wrong, s.disk_error);
    return 0;
}

typedef struct {
    unsigned long uid;
    unsigned long long compiles, disk_loads;
    int wrong;
    char error[600];
} report;

static char g_exe[PATH_MAX]; /* this binary (resolved before any child drops privileges) */
static char g_base[PATH_MAX]; /* a private scratch directory, traversable by nobody */

/* Runs "run op" as uid (NOBODY: after dropping to uid and gid 65534) with the cache
 * environment `env` (NULL-terminated "NAME=value"; HOLOGRAM_CACHE_DIR and XDG_CACHE_HOME
 * are cleared first); parses its report.  `late` given: the child runs "late op" and the
 * parent calls late() when the child is ready (see child_run). */
static void run_late(unsigned uid, const char *op, const char *const *env, void (*late)(void),
                     report *r) {
    int out_fd[2], in_fd[2];
    assert_int_equal(pipe(out_fd), 0);
    assert_int_equal(pipe(in_fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out_fd[1], 1);
        dup2(in_fd[0], 0);
        close(out_fd[0]);
        close(in_fd[1]);
        unsetenv("HOLOGRAM_CACHE_DIR");
        unsetenv("XDG_CACHE_HOME");
        setenv("HOME", g_base, 1);
        for (; *env; env++) {
            char buf[PATH_MAX + 64];
            snprintf(buf, sizeof buf, "%s", *env);
            char *eq = strchr(buf, '=');
            *eq = '\0';
            setenv(buf, eq + 1, 1);
        }
        if (uid != geteuid() &&
            (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
            _exit(125);
        char *argv[] = {"test_disk", late ? "late" : "run", (char *)op, NULL};
        execv(g_exe, argv);
        _exit(127);
    }
    close(out_fd[1]);
    close(in_fd[0]);
    char out[1024];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof out - 1 && (got = read(out_fd[0], out + len, sizeof out - 1 - len)) > 0) {
        len += (size_t)got;
        out[len] = '\0';
        if (late && strstr(out, "ready\n")) {
            late();
            late = NULL;
            len = 0;
            assert_int_equal(write(in_fd[1], "g", 1), 1);
        }
    }
    out[len] = '\0';
    close(out_fd[0]);
    close(in_fd[1]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child %s as uid %u failed (status %d): %s", op, uid, status, out);
    memset(r, 0, sizeof *r);
    if (sscanf(out, "uid=%lu compiles=%llu disk_loads=%llu wrong=%d", &r->uid, &r->compiles,
               &r->disk_loads, &r->wrong) != 4)
        fail_msg("child: unreadable report: %s", out);
    const char *err = strstr(out, "error=");
    snprintf(r->error, sizeof r->error, "%s", err + 6);
    r->error[strcspn(r->error, "\n")] = '\0';
    assert_int_equal(r->uid, uid);
}

static void run_as(unsigned uid, const char *op, const char *const *env, report *r) {
    run_late(uid, op, env, NULL, r);
}

/* ---- scenario files ------------------------------------------------------------------------- */

static void path_of(char *out, const char *dir, const char *name) {
    if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
        fail_msg("path too long: %s/%s", dir, name);
}

/* Creates directory dir owned by uid with `mode`. */
static void make_dir(const char *dir, unsigned uid, mode_t mode) {
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chown(dir, uid, uid), 0);
    assert_int_equal(chmod(dir, mode), 0);
}

/* The only .hgo file of dir into name (64 bytes). */
static void only_object(const char *dir, char *name) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".hgo")) {
            assert_true(strlen(de->d_name) < 64);
            memcpy(name, de->d_name, strlen(de->d_name) + 1);
            n++;
        }
    closedir(d);
    assert_int_equal(n, 1);
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *d = malloc(*len);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, *len, f), *len);
    fclose(f);
    return d;
}

/* Writes data to path, owned by uid with `mode`. */
static void plant(const char *path, const uint8_t *data, size_t len, unsigned uid,
                  mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chown(path, uid, uid), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static uint8_t *g_weapon; /* add's content key and form, mul's symbol and code */
static size_t g_weapon_len;
static char g_add_name[64]; /* the file name of add's object */

/* The weapon, from the objects a child wrote for add and for mul in fresh directories. */
static void forge(void) {
    char add_dir[PATH_MAX], mul_dir[PATH_MAX], env_dir[PATH_MAX + 32], p[PATH_MAX];
    const char *env[] = {env_dir, NULL};
    report r;
    path_of(add_dir, g_base, "forge-add");
    path_of(mul_dir, g_base, "forge-mul");
    snprintf(env_dir, sizeof env_dir, "HOLOGRAM_CACHE_DIR=%s", add_dir);
    run_as(geteuid(), "add", env, &r);
    assert_int_equal(r.compiles, 1);
    snprintf(env_dir, sizeof env_dir, "HOLOGRAM_CACHE_DIR=%s", mul_dir);
    run_as(geteuid(), "mul", env, &r);
    char mul_name[64];
    only_object(add_dir, g_add_name);
    only_object(mul_dir, mul_name);
    size_t alen, mlen;
    path_of(p, add_dir, g_add_name);
    uint8_t *a = slurp(p, &alen);
    path_of(p, mul_dir, mul_name);
    uint8_t *m = slurp(p, &mlen);
    jit_disk_header ah, mh;
    memcpy(&ah, a, sizeof ah);
    memcpy(&mh, m, sizeof mh);
    char name[JIT_DISK_MAX_NAME + 1];
    memcpy(name, m + sizeof mh, mh.name_len);
    name[mh.name_len] = '\0';
    assert_int_equal(jit_disk_encode(ah.content, name, a + sizeof ah + ah.name_len,
                                     ah.form_len, m + sizeof mh + mh.name_len + mh.form_len,
                                     mh.size, &g_weapon, &g_weapon_len), 0);
    free(a);
    free(m);
}

/* A fresh case directory g_base/<name> holding the weapon as add's object: the directory
 * owned by dir_uid with dir_mode, the object by obj_uid with obj_mode.  Writes the
 * directory's and the object's paths. */
static void stage(const char *name, unsigned dir_uid, mode_t dir_mode, unsigned obj_uid,
                  mode_t obj_mode, char *dir, char *obj) {
    path_of(dir, g_base, name);
    make_dir(dir, dir_uid, dir_mode);
    path_of(obj, dir, g_add_name);
    plant(obj, g_weapon, g_weapon_len, obj_uid, obj_mode);
}

/* Runs add as uid with the cache in dir (or, xdg set, XDG_CACHE_HOME=xdg; late: see
 * run_late) and checks that the cache refused with a message containing `why`, the sum
 * is right by compiling, and `keep` (a planted file) is still there. */
static void expect_refused(unsigned uid, const char *dir, const char *xdg, void (*late)(void),
                           const char *why, const char *keep) {
    char env_dir[PATH_MAX + 32];
    snprintf(env_dir, sizeof env_dir, xdg ? "XDG_CACHE_HOME=%s" : "HOLOGRAM_CACHE_DIR=%s",
             xdg ? xdg : dir);
    const char *env[] = {env_dir, NULL};
    report r;
    struct stat before, after;
    run_late(uid, "add", env, late, &r);
    assert_int_equal(lstat(keep, &before), 0);
    if (r.wrong || r.disk_loads || r.compiles != 1 || !strstr(r.error, why))
        fail_msg("uid %u, %s: wrong=%d disk_loads=%llu compiles=%llu error=\"%s\" (wanted "
                 "\"%s\")", uid, dir, r.wrong, r.disk_loads, r.compiles, r.error, why);
    run_as(uid, "add", env, &r); /* a second process, refused again: nothing was deleted */
    assert_true(strstr(r.error, why) != NULL);
    assert_int_equal(lstat(keep, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
}

/* What the late cases plant (set before run_late). */
static char g_late_obj[PATH_MAX], g_late_target[PATH_MAX];
static unsigned g_late_uid;

/* readable by all, so that the victim's open succeeds and its fstat is what refuses */
static void plant_late(void) { plant(g_late_obj, g_weapon, g_weapon_len, g_late_uid, 0644); }

static void link_late(void) {
    plant(g_late_target, g_weapon, g_weapon_len, g_late_uid, 0600);
    assert_int_equal(symlink(g_late_target, g_late_obj), 0);
    assert_int_equal(lchown(g_late_obj, g_late_uid, g_late_uid), 0);
}

/* The attacks of the top, as `me`, with `other` as the attacker. */
static void attacks(unsigned me, unsigned other) {
    char tag[32], dir[PATH_MAX], obj[PATH_MAX], name[64];
    report r;
#define CASE(what) (snprintf(name, sizeof name, "%s-%u", what, me), name)
    /* control: our own file with the weapon is loaded, and add multiplies */
    stage(CASE("control"), me, 0700, me, 0600, dir, obj);
    char env_dir[PATH_MAX + 32];
    snprintf(env_dir, sizeof env_dir, "HOLOGRAM_CACHE_DIR=%s", dir);
    const char *env[] = {env_dir, NULL};
    run_as(me, "add", env, &r);
    assert_int_equal(r.disk_loads, 1);
    assert_int_equal(r.wrong, N);
    assert_string_equal(r.error, "");

    /* planted (the object another user's), a group-writable object, a directory another
     * user owns, a world- or group-writable directory */
    snprintf(tag, sizeof tag, "owned by uid %u,", other);
    static const struct {
        const char *name;
        int dir_other, obj_other;
        mode_t dir_mode, obj_mode;
        const char *why; /* NULL: the owner tag */
    } staged[] = {
        {"planted", 0, 1, 0700, 0600, NULL},
        {"group-writable-object", 0, 0, 0700, 0620, "writable by group or others (mode 0620)"},
        {"foreign-dir", 1, 0, 0755, 0600, NULL},
        {"world-writable-dir", 0, 0, 0777, 0600, "writable by group or others (mode 0777)"},
        {"group-writable-dir", 0, 0, 0770, 0600, "writable by group or others (mode 0770)"},
    };
    for (size_t i = 0; i < sizeof staged / sizeof staged[0]; i++) {
        stage(CASE(staged[i].name), staged[i].dir_other ? other : me, staged[i].dir_mode,
              staged[i].obj_other ? other : me, staged[i].obj_mode, dir, obj);
        expect_refused(me, dir, NULL, NULL, staged[i].why ? staged[i].why : tag, obj);
    }

    /* a symbolic link (ours) to a file of ours holding the weapon */
    char target[PATH_MAX];
    path_of(dir, g_base, CASE("symlink"));
    make_dir(dir, me, 0700);
    path_of(target, dir, "elsewhere");
    plant(target, g_weapon, g_weapon_len, me, 0600);
    path_of(obj, dir, g_add_name);
    assert_int_equal(symlink(target, obj), 0);
    assert_int_equal(lchown(obj, me, me), 0);
    expect_refused(me, dir, NULL, NULL, "is a symbolic link", obj);
    expect_refused(me, dir, NULL, NULL, "is a symbolic link", target);

    /* the count file (jit/disk.c) as a symbolic link (ours) to a file of ours, or planted:
     * refused, and neither it nor its target written */
    static const uint8_t zero_count[] = "00000000000000000000\n";
    path_of(dir, g_base, CASE("count-symlink"));
    make_dir(dir, me, 0700);
    path_of(target, dir, "elsewhere");
    plant(target, zero_count, sizeof zero_count - 1, me, 0600);
    path_of(obj, dir, "objects.count");
    assert_int_equal(symlink(target, obj), 0);
    assert_int_equal(lchown(obj, me, me), 0);
    expect_refused(me, dir, NULL, NULL, "count file", obj);
    expect_refused(me, dir, NULL, NULL, "is a symbolic link", target);
    path_of(dir, g_base, CASE("count-planted"));
    make_dir(dir, me, 0700);
    path_of(obj, dir, "objects.count");
    plant(obj, zero_count, sizeof zero_count - 1, other, 0600);
    expect_refused(me, dir, NULL, NULL, me == 0 ? tag : "objects.count: Permission denied",
                   obj); /* nobody cannot open root's file; root can, and checks its owner */

    /* XDG_CACHE_HOME owned by the attacker, its hologram/ ours */
    char xdg[PATH_MAX];
    path_of(xdg, g_base, CASE("xdg"));
    make_dir(xdg, other, 0755);
    path_of(dir, xdg, "hologram");
    make_dir(dir, me, 0700);
    path_of(obj, dir, g_add_name);
    plant(obj, g_weapon, g_weapon_len, me, 0600);
    expect_refused(me, dir, xdg, NULL, tag, obj);

    /* planted after the directory was checked: refused by the load's O_NOFOLLOW open and
     * fstat (the child ran mul first, in a clean directory of ours) */
    path_of(dir, g_base, CASE("late-planted"));
    make_dir(dir, me, 0700);
    path_of(g_late_obj, dir, g_add_name);
    g_late_uid = other;
    expect_refused(me, dir, NULL, plant_late, tag, g_late_obj);
    path_of(dir, g_base, CASE("late-symlink"));
    make_dir(dir, me, 0700);
    path_of(g_late_obj, dir, g_add_name);
    path_of(g_late_target, dir, "elsewhere");
    g_late_uid = me;
    expect_refused(me, dir, NULL, link_late, "is a symbolic link", g_late_obj);

    /* a directory the library creates is 0700, and the cache then works for this user */
    path_of(dir, g_base, CASE("fresh"));
    snprintf(env_dir, sizeof env_dir, "HOLOGRAM_CACHE_DIR=%s/a/b", dir);
    make_dir(dir, me, 0700);
    run_as(me, "add", env, &r);
    assert_int_equal(r.compiles, 1);
    assert_string_equal(r.error, "");
    for (const char *sub = "/a"; sub; sub = strcmp(sub, "/a") ? NULL : "/a/b") {
        struct stat sb;
        char p[PATH_MAX + 8];
        snprintf(p, sizeof p, "%s%s", dir, sub);
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0700);
        assert_int_equal(sb.st_uid, me);
    }
    run_as(me, "add", env, &r);
    assert_int_equal(r.disk_loads, 1);
    assert_int_equal(r.wrong, 0);
#undef CASE
}

static void test_attacks_as_self(void **state) {
    (void)state;
    if (geteuid() != 0) /* planting a file of another user needs root */
        skip();
    attacks(0, NOBODY);
}

static void test_attacks_as_nobody(void **state) {
    (void)state;
    if (geteuid() != 0) /* dropping to nobody needs root */
        skip();
    attacks(NOBODY, 0);
}

static int setup(void **state) {
    (void)state;
    ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    if (n <= 0)
        return -1;
    g_exe[n] = '\0';
    snprintf(g_base, sizeof g_base, "/tmp/hg-test-disk-XXXXXX");
    if (!mkdtemp(g_base) || chmod(g_base, 0755) != 0)
        return -1;
    forge();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(g_weapon);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc == 3 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "late") == 0))
        return child_run(argv[2], strcmp(argv[1], "late") == 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_attacks_as_self),
        cmocka_unit_test(test_attacks_as_nobody),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
