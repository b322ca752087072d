/* test_io_save_failure.c - a save that fails leaves the previous file whole and no
 * temporary file behind; a save that succeeds replaces the file and also leaves no
 * temporary. Failures are provoked without permissions (root ignores them): a directory
 * that does not exist, and a target that is a directory. A save removes the temporaries
 * that earlier saves of the same target left when they died, and only those. */
#define _DEFAULT_SOURCE /* flock */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEC "input 1 6 6\nconv 3 k=3 bias=0\nbn\nact\nflatten\ndense 5\n"

typedef struct {
    sat_context *ctx;
    sat_model *a, *b; /* same spec, different parameters */
    char dir[64];
    char path[128];
    char sub[128]; /* a directory inside dir */
} fixture;

/* The context and models are registered and go with the test; the teardown removes the
 * files. */
static int setup(void **state) {
    static fixture fx;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    f->ctx = tu_context(1, 1);
    f->a = tu_model(f->ctx, SPEC, SAT_ACT_SMOOTHRELU, 2);
    sat_model_opts o;
    sat_model_opts_init(&o, sizeof o);
    o.activation = SAT_ACT_SMOOTHRELU;
    o.max_batch = 2;
    o.seed = 1234;
    TU_CHECK(sat_model_create(f->ctx, SPEC, &o, &f->b));
    tu_own_model(f->b);
    snprintf(f->dir, sizeof f->dir, "/tmp/sat_io_save_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/model.satm", f->dir);
    snprintf(f->sub, sizeof f->sub, "%s/adir", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove(f->path);
    rmdir(f->sub);
    rmdir(f->dir);
    return 0;
}

static void close_dir(void *d) { closedir(d); }

/* Entries of dir other than . and ..; fails on any name with "tmp." in it. */
static int count_entries_no_temp(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    tu_own(d, close_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strstr(e->d_name, "tmp.")) fail_msg("temporary file left behind: %s", e->d_name);
        n++;
    }
    tu_release(d);
    return n;
}

static void assert_loads_as(fixture *f, const sat_model *want) {
    sat_model *m = NULL;
    TU_CHECK(sat_model_load(f->ctx, f->path, NULL, &m));
    tu_own_model(m);
    int64_t np = sat_model_param_count(m);
    assert_memory_equal(sat_model_params(m), sat_model_params((sat_model *)want), sizeof(float) * (size_t)np);
    float x[2 * 36], la[10], lb[10];
    tu_fill_uniform(x, 72, 0.0f, 1.0f, 5);
    TU_CHECK(sat_model_forward(m, x, 2, la));
    TU_CHECK(sat_model_forward((sat_model *)want, x, 2, lb));
    assert_memory_equal(la, lb, sizeof la);
    tu_release(m);
}

static void test_failed_saves_keep_old_file(void **state) {
    fixture *f = *state;
    TU_CHECK(sat_model_save(f->a, NULL, f->path));
    size_t size0;
    unsigned char *before = tu_read_file(f->path, &size0);

    /* A directory that does not exist. */
    char missing[192];
    snprintf(missing, sizeof missing, "%s/no/such/dir/model.satm", f->dir);
    assert_int_equal(sat_model_save(f->b, NULL, missing), SAT_E_IO);
    assert_non_null(strstr(sat_model_last_error(f->b), missing));
    assert_non_null(strstr(sat_model_last_error(f->b), "No such file"));

    /* A target that is a directory: the rename fails after the temporary was written. */
    assert_int_equal(mkdir(f->sub, 0755), 0);
    assert_int_equal(sat_model_save(f->b, NULL, f->sub), SAT_E_IO);
    assert_non_null(strstr(sat_model_last_error(f->b), f->sub));
    struct stat st;
    assert_int_equal(stat(f->sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* A path that names a file as a directory. */
    char under_file[192];
    snprintf(under_file, sizeof under_file, "%s/inner.satm", f->path);
    assert_int_equal(sat_model_save(f->b, NULL, under_file), SAT_E_IO);

    /* Invalid meta: refused before anything is written. */
    sat_model_meta meta;
    sat_model_meta_init(&meta, sizeof meta);
    meta.steps = -1;
    assert_int_equal(sat_model_save(f->b, &meta, f->path), SAT_E_INVALID_ARG);

    size_t size1;
    unsigned char *after = tu_read_file(f->path, &size1);
    assert_int_equal(size0, size1);
    assert_memory_equal(before, after, size0);
    assert_int_equal(count_entries_no_temp(f->dir), 2); /* model.satm and adir */
    assert_int_equal(count_entries_no_temp(f->sub), 0);
    assert_loads_as(f, f->a);
}

static void test_successful_save_replaces(void **state) {
    fixture *f = *state;
    TU_CHECK(sat_model_save(f->a, NULL, f->path));
    assert_int_equal(chmod(f->path, 0640), 0);
    TU_CHECK(sat_model_save(f->b, NULL, f->path));
    assert_loads_as(f, f->b);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640); /* the replaced file's mode is kept */
    assert_int_equal(count_entries_no_temp(f->dir), 1);
}

/* Writes a small file at dir/name; returns its descriptor when keep_open (else closes it). */
static int make_file(const char *dir, const char *name, int keep_open) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SATM", 4), 4);
    if (keep_open) return fd;
    close(fd);
    return -1;
}

static int file_exists_in(const char *dir, const char *name) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static void close_fd(void *p) { close((int)(intptr_t)p - 1); }

static void test_save_removes_stale_temps(void **state) {
    fixture *f = *state;
    /* Left by saves of model.satm that died (nobody holds them). */
    make_file(f->dir, "model.satm.sat-tmp.Ab3dE9", 0);
    make_file(f->dir, "model.satm.sat-tmp.000000", 0);
    /* A save in progress holds a lock on its temporary: it must survive. */
    int busy = make_file(f->dir, "model.satm.sat-tmp.busy42", 1);
    tu_own((void *)(intptr_t)(busy + 1), close_fd);
    assert_int_equal(flock(busy, LOCK_EX), 0);
    /* Names that only look similar are not the library's to remove. */
    const char *others[] = {"model.satm.sat-tmp.abc12", "model.satm.sat-tmp.abc1234",
                            "model.satm.sat-tmp.ab-c12", "other.satm.sat-tmp.Ab3dE9",
                            "model.satm.tmp.Ab3dE9", "xmodel.satm.sat-tmp.Ab3dE9"};
    const size_t n_others = sizeof others / sizeof others[0];
    for (size_t i = 0; i < n_others; i++) make_file(f->dir, others[i], 0);

    TU_CHECK(sat_model_save(f->a, NULL, f->path));
    assert_loads_as(f, f->a);
    assert_false(file_exists_in(f->dir, "model.satm.sat-tmp.Ab3dE9"));
    assert_false(file_exists_in(f->dir, "model.satm.sat-tmp.000000"));
    assert_true(file_exists_in(f->dir, "model.satm.sat-tmp.busy42"));
    for (size_t i = 0; i < n_others; i++)
        if (!file_exists_in(f->dir, others[i])) fail_msg("%s was removed", others[i]);

    /* Once its owner is gone (the lock with it), the next save removes it too. */
    tu_release((void *)(intptr_t)(busy + 1));
    TU_CHECK(sat_model_save(f->b, NULL, f->path));
    assert_false(file_exists_in(f->dir, "model.satm.sat-tmp.busy42"));
    assert_loads_as(f, f->b);
    for (size_t i = 0; i < n_others; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", f->dir, others[i]);
        assert_int_equal(remove(p), 0);
    }
    assert_int_equal(count_entries_no_temp(f->dir), 1);
}

static void test_load_io_errors(void **state) {
    fixture *f = *state;
    sat_model *m = (sat_model *)(uintptr_t)1;
    assert_int_equal(sat_model_load(f->ctx, f->path, NULL, &m), SAT_E_IO); /* not there yet */
    assert_null(m);
    assert_non_null(strstr(sat_last_error(), f->path));
    m = (sat_model *)(uintptr_t)1;
    assert_int_equal(sat_model_load(f->ctx, f->dir, NULL, &m), SAT_E_IO); /* a directory */
    assert_null(m);
    assert_non_null(strstr(sat_last_error(), "regular file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failed_saves_keep_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_successful_save_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_removes_stale_temps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_io_errors, setup, teardown),
    };
    return tu_run_group("test_io_save_failure", tests, sizeof tests / sizeof tests[0]);
}
