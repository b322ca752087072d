/* loss.c - the objectives attacks maximise (CE, Carlini-Wagner margin, DLR and targeted
 * DLR of Croce & Hein, TRADES' KL divergence from reference logits) and their gradients
 * with respect to the logits. */
#include "attack/attack.h"

#include <math.h>
#include <string.h>

#define DLR_EPS 1e-12

double sat__loss_ce(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                    float *obj, float *dlogits) {
    return sat__softmax_ce(logits, labels, n, classes, 0.0f, obj, dlogits, 1.0f);
}

double sat__loss_margin(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                        float *obj, float *dlogits) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        const int32_t y = labels[i];
        const int32_t o = sat__argmax(z, classes, y, -1);
        const double v = o >= 0 ? (double)z[o] - (double)z[y] : 0.0;
        total += v;
        if (obj) obj[i] = (float)v;
        if (dlogits) {
            float *d = dlogits + i * classes;
            memset(d, 0, sizeof(float) * (size_t)classes);
            if (o >= 0) {
                d[o] = 1.0f;
                d[y] = -1.0f;
            }
        }
    }
    return total;
}

double sat__loss_dlr(const float *logits, const int32_t *labels, int64_t n, int32_t classes,
                     float *obj, float *dlogits) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        float *d = dlogits ? dlogits + i * classes : NULL;
        if (d) memset(d, 0, sizeof(float) * (size_t)classes);
        if (classes < 3) {
            if (obj) obj[i] = 0.0f;
            continue;
        }
        const int32_t y = labels[i];
        int32_t p[3];
        sat__top_k(z, classes, -1, 3, p);
        const int32_t o = sat__argmax(z, classes, y, -1);
        const double num = (double)z[y] - (double)z[o];
        const double den = (double)z[p[0]] - (double)z[p[2]] + DLR_EPS;
        const double v = -num / den;
        total += v;
        if (obj) obj[i] = (float)v;
        if (d) {
            /* L = -num/den: dL/dnum = -1/den, dL/dden = num/den^2 */
            const double a = -1.0 / den, b = num / (den * den);
            d[y] += (float)a;
            d[o] -= (float)a;
            d[p[0]] += (float)b;
            d[p[2]] -= (float)b;
        }
    }
    return total;
}

double sat__loss_dlr_targeted(const float *logits, const int32_t *labels, const int32_t *targets,
                              int64_t n, int32_t classes, float *obj, float *dlogits) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        float *d = dlogits ? dlogits + i * classes : NULL;
        if (d) memset(d, 0, sizeof(float) * (size_t)classes);
        if (classes < 4) {
            if (obj) obj[i] = 0.0f;
            continue;
        }
        const int32_t y = labels[i], t = targets[i];
        int32_t p[4];
        sat__top_k(z, classes, -1, 4, p);
        const double num = (double)z[y] - (double)z[t];
        const double den = (double)z[p[0]] - 0.5 * ((double)z[p[2]] + (double)z[p[3]]) + DLR_EPS;
        const double v = -num / den;
        total += v;
        if (obj) obj[i] = (float)v;
        if (d) {
            const double a = -1.0 / den, b = num / (den * den);
            d[y] += (float)a;
            d[t] -= (float)a;
            d[p[0]] += (float)b;
            d[p[2]] -= (float)(0.5 * b);
            d[p[3]] -= (float)(0.5 * b);
        }
    }
    return total;
}

double sat__loss_kl(const float *logits, const float *ref, int64_t n, int32_t classes, float *obj,
                    float *dlogits) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float *d = dlogits ? dlogits + i * classes : NULL;
        if (d) memset(d, 0, sizeof(float) * (size_t)classes);
        const double v = sat__kl_softmax(ref + i * classes, logits + i * classes, classes, 1.0, d, NULL);
        total += v;
        if (obj) obj[i] = (float)v;
    }
    return total;
}

static void negate(float *v, int64_t n) {
    if (v)
        for (int64_t i = 0; i < n; i++) v[i] = -v[i];
}

double sat__attack_objective(int32_t objective, const float *logits, const int32_t *labels,
                             const int32_t *targets, const float *ref, int64_t n, int32_t classes,
                             float *obj, float *dlogits) {
    double s;
    switch (objective) {
    case SAT__OBJ_CE: return sat__loss_ce(logits, labels, n, classes, obj, dlogits);
    case SAT__OBJ_MARGIN: return sat__loss_margin(logits, labels, n, classes, obj, dlogits);
    case SAT__OBJ_DLR: return sat__loss_dlr(logits, labels, n, classes, obj, dlogits);
    case SAT__OBJ_DLR_T:
        return sat__loss_dlr_targeted(logits, labels, targets, n, classes, obj, dlogits);
    case SAT__OBJ_KL: return sat__loss_kl(logits, ref, n, classes, obj, dlogits);
    /* Targeted CE and margin: minimise the loss towards the target. */
    case SAT__OBJ_CE_T: s = sat__loss_ce(logits, targets, n, classes, obj, dlogits); break;
    case SAT__OBJ_MARGIN_T: s = sat__loss_margin(logits, targets, n, classes, obj, dlogits); break;
    default: return NAN;
    }
    negate(obj, n);
    negate(dlogits, n * classes);
    return -s;
}
