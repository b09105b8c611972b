/*
 * tests/fuzz/replay.c — runs a fuzz target without libFuzzer: every argument is an input
 * file, or a directory whose regular files (in name order) are the inputs, and each goes
 * once through the LLVMFuzzerTestOneInput it is linked with (tests/fuzz/fuzz_<name>.c),
 * which aborts on a broken invariant.  The CTest tests fuzz_<name>_replay run the seed
 * corpora this way; they also reproduce a libFuzzer crash file with the normal (gcc) build.
 * Prints "N passed, N failed" (an input that breaks an invariant aborts the process);
 * exit status 0 when every input was read and at least one was found, else 1.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the file at path through the target; 0, or -1 when it cannot be read. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, size = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            uint8_t *bigger = realloc(data, cap *= 2);
            if (!bigger)
                free(data);
            data = bigger;
        }
    }
    const int bad = !data || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read it\n", path);
        free(data);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of directory dir (in name order), counting into *passed and
 * *failed (an unreadable file, or the listing itself). */
static void replay_dir(const char *dir, long *passed, long *failed) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        ++*failed;
        return;
    }
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    for (struct dirent *ent; !bad && (ent = readdir(d));) {
        char path[4096];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >= (int)sizeof path ||
            stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            char **bigger = realloc(paths, (cap = cap ? 2 * cap : 64) * sizeof *paths);
            bad = !bigger;
            paths = bigger ? bigger : paths;
        }
        if (!bad)
            bad = !(paths[n++] = strdup(path));
    }
    closedir(d);
    if (bad) {
        fprintf(stderr, "%s: no memory to list it\n", dir);
        ++*failed;
    } else {
        qsort(paths, n, sizeof *paths, by_name);
        for (size_t i = 0; i < n; i++)
            ++*(replay_file(paths[i]) == 0 ? passed : failed);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    long passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            replay_dir(argv[i], &passed, &failed);
        else
            ++*(replay_file(argv[i]) == 0 ? &passed : &failed);
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed || passed == 0;
}
