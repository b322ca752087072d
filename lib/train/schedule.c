/* schedule.c - learning-rate schedules as pure functions of the update count, so that a
 * resumed run (step count restored from a checkpoint) continues on the same curve.
 *
 * Update t (0-based) uses  lr_t = lr * curve(t) * warm(t)  with
 *   warm(t)  = (t+1) / warmup_steps while t < warmup_steps, else 1 (linear from 0, and
 *              the first update is not wasted at lr 0)
 *   constant: 1
 *   step:     gamma^k, k = number of milestones <= t
 *   cosine:   0.5 (1 + cos(pi t / total_steps)) for t < total_steps, else 0
 *   onecycle: piecewise linear through (0,0), (peak_frac*total, 1), (total, 0) evaluated at
 *             t+1 (the end of the update, as in Wong et al.'s cyclic schedule), 0 beyond. */
#include "train/train.h"

#include <math.h>

static double curve(const sat_optimizer_opts *o, int64_t t) {
    switch (o->schedule) {
    case SAT_SCHED_STEP: {
        double f = 1.0;
        for (int32_t i = 0; i < o->num_milestones; i++)
            if (t >= o->milestones[i]) f *= (double)o->gamma;
        return f;
    }
    case SAT_SCHED_COSINE:
        if (t >= o->total_steps) return 0.0;
        return 0.5 * (1.0 + cos(3.14159265358979323846 * (double)t / (double)o->total_steps));
    case SAT_SCHED_ONECYCLE: {
        const double total = (double)o->total_steps;
        const double peak = (double)o->peak_frac * total;
        const double u = (double)t + 1.0;
        if (u >= total) return 0.0;
        if (u <= peak) return u / peak;
        return (total - u) / (total - peak);
    }
    default:
        return 1.0;
    }
}

double sat__schedule_lr(const sat_optimizer_opts *o, int64_t step) {
    if (step < 0) step = 0;
    double warm = 1.0;
    if (step < o->warmup_steps) warm = (double)(step + 1) / (double)o->warmup_steps;
    return (double)o->lr * curve(o, step) * warm;
}
