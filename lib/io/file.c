/* file.c - whole-file reads and crash-safe whole-file writes.
 *
 * A write goes to "<path>.tmp.XXXXXX" in the target's directory (so the rename stays on
 * one file system and is atomic), is flushed and fsync'ed, renamed over the target, and
 * the directory is fsync'ed so the rename itself survives a crash. Until the rename the
 * old file is untouched; on any failure the temporary is removed. */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Syncs the directory holding path. File systems that cannot sync a directory say
 * EINVAL; that is not a failure of the write. */
static int sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = malloc(2);
        if (dir) memcpy(dir, ".", 2);
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return ENOMEM;
    int rc = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        rc = errno;
    else {
        if (fsync(fd) != 0 && errno != EINVAL) rc = errno;
        close(fd);
    }
    free(dir);
    return rc;
}

int32_t sat__write_file_atomic(const char *path, const void *data, size_t size, char *err) {
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp) return sat__fail(err, SAT_E_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return sat__fail(err, SAT_E_IO, "%s: cannot create a temporary file: %s", path, strerror(e));
    }
    /* mkstemp makes the file private (0600); keep an existing file's mode, else the usual
     * mode of a data file. */
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
    const char *step = "chmod";
    int e = 0;
    if (fchmod(fd, mode) != 0) e = errno;
    FILE *f = NULL;
    if (!e) {
        step = "open";
        f = fdopen(fd, "wb");
        if (!f) e = errno;
    }
    if (!e) {
        step = "write";
        if (size && fwrite(data, 1, size, f) != size) e = errno ? errno : EIO;
    }
    if (!e) {
        step = "flush";
        if (fflush(f) != 0) e = errno;
    }
    if (!e) {
        step = "sync";
        if (fsync(fileno(f)) != 0) e = errno;
    }
    if (f) {
        if (fclose(f) != 0 && !e) {
            step = "close";
            e = errno;
        }
    } else {
        close(fd);
    }
    if (!e) {
        step = "rename";
        if (rename(tmp, path) != 0) e = errno;
    }
    if (e) {
        remove(tmp);
        free(tmp);
        return sat__fail(err, SAT_E_IO, "%s: %s failed: %s", path, step, strerror(e));
    }
    free(tmp);
    e = sync_dir(path);
    if (e)
        return sat__fail(err, SAT_E_IO, "%s: written, but syncing its directory failed: %s", path,
                         strerror(e));
    return SAT_OK;
}

int32_t sat__read_file(const sat_context *ctx, const char *path, unsigned char **data,
                       size_t *size, char *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sat__fail(err, SAT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return sat__fail(err, SAT_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return sat__fail(err, SAT_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SAT__MAX_FILE_SIZE) {
        fclose(f);
        return sat__fail(err, SAT_E_FORMAT, "%s: %lld bytes is over the 4 GiB limit", path,
                         (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = sat__alloc(ctx, n ? n : 1);
    if (!buf) {
        fclose(f);
        return sat__fail(err, SAT_E_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e) {
        sat__dealloc(ctx, buf);
        return sat__fail(err, SAT_E_IO, "%s: read failed: %s", path, strerror(e));
    }
    /* A file that shrank while being read is reported by the frame check as truncated. */
    *data = buf;
    *size = got;
    return SAT_OK;
}
