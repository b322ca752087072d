/* fab_project.c - FAB's projection (Croce & Hein, arXiv 1907.02044, section 3.1): the
 * shortest step d, in the Linf or L2 norm, from a point t onto the hyperplane
 * {z : <w, z> = b} without leaving the pixel box [0,1]^size.
 *
 * With c = <w, t> - b (the sign of w and c flipped so that c >= 0), the step must lower
 * <w, .> by c. Coordinate i can move by at most room_i (down to 0 where w_i > 0, up to 1
 * where w_i < 0) and then gains |w_i| per unit. Both norms have optimal steps of the form
 *     |d_i| = s_i * min(lambda, beta_i)
 * with one multiplier lambda >= 0 per point:
 *   - Linf: every coordinate moves by the same amount until its room runs out
 *     (s_i = 1, beta_i = room_i);
 *   - L2: d is proportional to w until a coordinate reaches the box (KKT:
 *     d_i = clamp(-lambda w_i, box), s_i = |w_i|, beta_i = room_i / |w_i|).
 * The gain sum_i a_i min(lambda, beta_i) (a_i = |w_i| s_i) is piecewise linear and
 * increasing in lambda, so one sort of the breakpoints beta_i finds the lambda where it
 * equals c. When even the whole box cannot gain c, the step goes to the box's corner that
 * gains the most (every coordinate at its room), as the reference implementation does. */
#include "attack/attack.h"

#include <math.h>
#include <stdlib.h>

static int by_breakpoint(const void *a, const void *b) {
    const double x = ((const sat__fab_pair *)a)->beta, y = ((const sat__fab_pair *)b)->beta;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Room of coordinate i towards lowering <w, .> (w already sign-corrected). */
static double room(float w, float t) { return w > 0.0f ? (double)t : 1.0 - (double)t; }

void sat__fab_project(int32_t norm, const float *t, const float *w, double b, float *d, int64_t size,
                      sat__fab_pair *work) {
    double c = -b;
    for (int64_t i = 0; i < size; i++) c += (double)w[i] * (double)t[i];
    const double sign = c < 0.0 ? -1.0 : 1.0;
    c *= sign;
    const int l2 = norm == SAT_NORM_L2;
    /* Breakpoints and slopes of the coordinates that can move. */
    int64_t m = 0;
    double slope = 0.0;
    for (int64_t i = 0; i < size; i++) {
        const double wi = fabs((double)w[i]);
        if (wi == 0.0) continue;
        const double r = room((float)(sign * (double)w[i]), t[i]);
        work[m].beta = l2 ? r / wi : r;
        work[m].a = l2 ? wi * wi : wi;
        slope += work[m].a;
        m++;
    }
    qsort(work, (size_t)m, sizeof *work, by_breakpoint);
    /* Walk the pieces: below beta_k, the gain is fixed + lambda * slope (slope of the
     * coordinates not yet saturated). */
    double fixed = 0.0, lambda = INFINITY;
    for (int64_t k = 0; k < m && c > 0.0; k++) {
        const double cand = slope > 0.0 ? (c - fixed) / slope : INFINITY;
        if (cand <= work[k].beta) {
            lambda = cand;
            break;
        }
        fixed += work[k].a * work[k].beta;
        slope -= work[k].a;
    }
    if (!(c > 0.0)) lambda = 0.0;
    for (int64_t i = 0; i < size; i++) {
        const double ws = sign * (double)w[i];
        if (ws == 0.0) {
            d[i] = 0.0f;
            continue;
        }
        const double wi = fabs(ws), r = room((float)ws, t[i]);
        const double beta = l2 ? r / wi : r;
        const double mag = (lambda < beta ? lambda : beta) * (l2 ? wi : 1.0);
        d[i] = (float)(ws > 0.0 ? -mag : mag);
    }
}
