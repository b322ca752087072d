/* stats.c - the statistics of `sat-cli compare` over several seeds: mean, sample standard
 * deviation, and the Student-t 95% confidence interval of a paired difference. */
#include "cli.h"

#include <math.h>

double cli_mean(const double *x, int32_t n) {
    if (n < 1) return NAN;
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += x[i];
    return s / n;
}

double cli_stddev(const double *x, int32_t n) {
    if (n < 2) return NAN;
    const double m = cli_mean(x, n);
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

double cli_t975(int32_t df) {
    /* Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom. */
    static const double t[30] = {
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
    if (df < 1) return NAN;
    if (df <= 30) return t[df - 1];
    /* Cornish-Fisher expansion around the normal quantile; error below 1e-4 past 30. */
    const double z = 1.959964, d = (double)df;
    return z + (z * z * z + z) / (4 * d) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * d * d);
}

void cli_paired_ci(const double *a, const double *b, int32_t n, double *mean, double *lo,
                   double *hi) {
    double d[CLI_MAX_SEEDS];
    for (int32_t i = 0; i < n; i++) d[i] = a[i] - b[i];
    *mean = cli_mean(d, n);
    const double half = cli_t975(n - 1) * cli_stddev(d, n) / sqrt((double)n);
    *lo = *mean - half; /* NaN with one seed: no interval */
    *hi = *mean + half;
}
