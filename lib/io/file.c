/* file.c - whole-file reads and crash-safe whole-file writes.
 *
 * A write goes to "<path>.sat-tmp.XXXXXX" in the target's directory (so the rename stays on
 * one file system and is atomic), is written and fsync'ed, renamed over the target, and
 * the directory is fsync'ed so the rename itself survives a crash. Until the rename the
 * old file is untouched; on any failure the temporary is removed.
 *
 * A process killed during a save cannot remove its temporary. So the writer holds an
 * exclusive flock on its temporary from creation until after the rename (the system drops
 * the locks of a process that dies), and every save first removes the temporaries of the
 * same target that nobody holds a lock on: the leftovers of saves that died. */
#define _DEFAULT_SOURCE /* flock */
#include "io/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".sat-tmp.XXXXXX"
#define TMP_RANDOM 6 /* the Xs mkstemp replaces */

/* The directory part of path ("." for a bare name, "/" for a name in the root), malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return dir;
}

/* Syncs the directory holding path. File systems that cannot sync a directory say
 * EINVAL; that is not a failure of the write. */
static int sync_dir(const char *path) {
    char *dir = dir_of(path);
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

/* Is name "<base>.sat-tmp." followed by the characters mkstemp puts in place of the Xs? */
static int is_temp_of(const char *name, const char *base, size_t blen) {
    const size_t fixed = sizeof TMP_SUFFIX - 1 - TMP_RANDOM;
    if (strlen(name) != blen + fixed + TMP_RANDOM || strncmp(name, base, blen) != 0 ||
        strncmp(name + blen, TMP_SUFFIX, fixed) != 0)
        return 0;
    for (const char *p = name + blen + fixed; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

/* Removes the temporaries of path left by saves that died. One is removed only while this
 * call holds its lock and the name still refers to the file it locked, so a save in
 * progress (which holds the lock) keeps its temporary. Best effort: errors are ignored,
 * the save itself does not depend on it. */
static void remove_stale_temps(const char *path) {
    char *dir = dir_of(path);
    if (!dir) return;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base), dlen = strlen(dir);
    char *full = malloc(dlen + 1 + blen + sizeof TMP_SUFFIX);
    DIR *d = full ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!is_temp_of(e->d_name, base, blen)) continue;
        memcpy(full, dir, dlen);
        full[dlen] = '/';
        strcpy(full + dlen + 1, e->d_name);
        int fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat locked, named;
        if (fstat(fd, &locked) == 0 && S_ISREG(locked.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            lstat(full, &named) == 0 && named.st_dev == locked.st_dev && named.st_ino == locked.st_ino)
            unlink(full);
        close(fd);
    }
    if (d) closedir(d);
    free(full);
    free(dir);
}

/* Creates and locks a fresh temporary beside the target: tmp becomes "<path>.sat-tmp.XXXXXX".
 * Between mkstemp and flock another save may take the new file for a leftover and remove
 * it; then the name no longer refers to the file, and a new one is made. A file system
 * without flock gives no lock, and then no save removes the file either. Returns the
 * descriptor, or -1 with errno set. */
static int create_locked_temp(char *tmp, size_t plen) {
    for (int attempt = 0; attempt < 16; attempt++) {
        memcpy(tmp + plen, TMP_SUFFIX, sizeof TMP_SUFFIX);
        int fd = mkstemp(tmp);
        if (fd < 0) return -1;
        int rc;
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
        }
        struct stat mine, named;
        if (rc != 0 || (fstat(fd, &mine) == 0 && stat(tmp, &named) == 0 &&
                        mine.st_dev == named.st_dev && mine.st_ino == named.st_ino))
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

/* write(2) until everything is written; 0 or an errno value. */
static int write_all(int fd, const unsigned char *p, size_t size) {
    while (size > 0) {
        size_t chunk = size < ((size_t)1 << 30) ? size : (size_t)1 << 30;
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int32_t sat__write_file_atomic(const char *path, const void *data, size_t size, char *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof TMP_SUFFIX);
    if (!tmp) return sat__fail(err, SAT_E_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    remove_stale_temps(path); /* before writing: they may hold the space the file needs */

    int fd = create_locked_temp(tmp, plen);
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
    if (!e) {
        step = "write";
        e = write_all(fd, data, size);
    }
    if (!e) {
        step = "sync";
        if (fsync(fd) != 0) e = errno;
    }
    /* The lock is held until the rename is done: the temporary is never taken for a
     * leftover while it still has its name. */
    if (!e) {
        step = "rename";
        if (rename(tmp, path) != 0) e = errno;
    }
    if (e) remove(tmp);
    close(fd); /* after a successful fsync, close has nothing left to report */
    free(tmp);
    if (e) return sat__fail(err, SAT_E_IO, "%s: %s failed: %s", path, step, strerror(e));
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
