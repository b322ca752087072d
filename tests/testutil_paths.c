/* testutil_paths.c - runs a cmocka group once on every kernel path this CPU can execute
 * (kernel_paths.h). */
#define _POSIX_C_SOURCE 200809L
#include "kernel_paths.h"
#include "testutil.h"

#include <stdio.h>

int tu_run_on_every_path(const char *group, const struct CMUnitTest *tests, size_t count) {
    kernel_path paths[KERNEL_PATHS_MAX];
    const int n = kernel_paths(paths);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s @ %s", group, paths[i].name);
        const int f = kernel_path_apply(&paths[i]) ? tu_run_group(name, tests, count) : 1;
        printf("kernel path %s: %s\n", f ? "FAILED" : "passed", name);
        failed += f;
    }
    kernel_path_reset();
    printf("kernel paths covered by %s (%d; BLIS picks %s here):", group, n, kernel_path_native_arch());
    for (int i = 0; i < n; i++) printf("%s %s", i ? ";" : "", paths[i].name);
    printf("\n");
    fflush(stdout);
    return failed;
}
