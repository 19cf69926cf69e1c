/* replay_main.c - runs a libFuzzer target's LLVMFuzzerTestOneInput over corpus files without
 * libFuzzer, so every corpus is a regression test in ctest (gcc build, sanitizers optional).
 * Arguments are directories (every regular file inside, sorted by name) or single files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest input replayed; libFuzzer's default -max_len is far below this. */
#define REPLAY_MAX_INPUT (16u * 1024 * 1024)

/* replay_file reads `path` into a buffer of exactly its size (so that ASan sees any
 * overread) and runs the target on it. Returns 0 or -errno. */
static int replay_file(const char *path)
{
    struct stat st;
    uint8_t *data = NULL;
    size_t off = 0;
    int fd, err = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    if (fstat(fd, &st) == -1) {
        err = -errno;
        goto out_close;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        err = -EFBIG;
        goto out_close;
    }
    /* malloc(0) may return NULL; a 1-byte allocation keeps the pointer valid */
    data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (data == NULL) {
        err = -ENOMEM;
        goto out_close;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, data + off, (size_t)st.st_size - off);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            err = -errno;
            goto out_free;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    LLVMFuzzerTestOneInput(data, off);
out_free:
    free(data);
out_close:
    close(fd);
    return err;
}

static int replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* replay_dir runs every regular file of `dir` in name order. Adds to *count. */
static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int err = 0;

    if (d == NULL) {
        err = -errno;
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(-err));
        return err;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = reallocarray(names, ncap, sizeof(*names));

            if (nn == NULL) {
                err = -ENOMEM;
                goto out_free;
            }
            names = nn;
            cap = ncap;
        }
        if (asprintf(&names[n], "%s/%s", dir, de->d_name) == -1) {
            err = -ENOMEM;
            goto out_free;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), replay_cmp);
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        if (stat(names[i], &st) == -1 || !S_ISREG(st.st_mode))
            continue;
        err = replay_file(names[i]);
        if (err != 0) {
            fprintf(stderr, "replay: %s: %s\n", names[i], strerror(-err));
            goto out_free;
        }
        (*count)++;
    }
out_free:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return err;
}

int main(int argc, char **argv)
{
    size_t count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int err;

        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            err = replay_dir(argv[i], &count); /* reports the failing file itself */
        } else {
            err = replay_file(argv[i]);
            if (err != 0)
                fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-err));
            count += err == 0;
        }
        if (err != 0)
            return 1;
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %zu inputs ran without a crash\n", count);
    return 0;
}
