/* allreduce_bench.c - the time of MPI_Allreduce (sum, in place) of float blocks of the
 * given sizes: the median of the repeats, the algorithm bandwidth (bytes / time) and the
 * bus bandwidth of a ring all-reduce (2 (p-1)/p bytes / time), as docs/distributed.md's
 * scaling model uses them.
 *
 *   mpirun -np 2 sat-mpi-allreduce-bench [--repeats K] FLOATS...   (default: a few sizes) */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int repeats = 20, first = 1;
    if (argc > 2 && !strcmp(argv[1], "--repeats")) {
        repeats = atoi(argv[2]);
        first = 3;
    }
    long sizes[32] = {1, 1024, 65536, 272474, 1048576, 3274634, 11173962};
    int count = 7;
    if (first < argc) {
        count = 0;
        for (int i = first; i < argc && count < 32; i++) sizes[count++] = atol(argv[i]);
    }
    if (repeats < 1) repeats = 1;
    double *t = malloc(sizeof(double) * (size_t)repeats);
    if (rank == 0) printf("%d ranks, %d repeats\n%12s %12s %14s %14s\n", ranks, repeats, "floats", "median_s",
                          "algbw_GB/s", "busbw_GB/s");
    for (int s = 0; s < count; s++) {
        const long n = sizes[s];
        float *buf = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!t || !buf) MPI_Abort(MPI_COMM_WORLD, 2);
        for (long i = 0; i < n; i++) buf[i] = 1.0f;
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
        for (int r = 0; r < repeats; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
        }
        /* every rank's time is the slowest rank's: the collective ends together */
        MPI_Allreduce(MPI_IN_PLACE, t, repeats, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        qsort(t, (size_t)repeats, sizeof *t, by_value);
        const double med = t[repeats / 2], bytes = 4.0 * (double)n;
        if (rank == 0)
            printf("%12ld %12.6f %14.3f %14.3f\n", n, med, bytes / med / 1e9,
                   2.0 * (ranks - 1) / ranks * bytes / med / 1e9);
        free(buf);
    }
    free(t);
    MPI_Finalize();
    return 0;
}
