/* batchnorm.c - batch normalisation over channels of x [n, c, hw]. Channel sums are
 * accumulated in double: a channel can hold n*hw = 10^5+ values. gamma NULL means 1 and
 * beta NULL means 0. The training-mode passes are built from per-channel pieces (sums,
 * centred sums of squares, normalisation from given sums; the backward's two sums and dx
 * from given sums), so that synchronised batch norm can sum the pieces across processes
 * between them and still run the same arithmetic. */
#include "kernels/kernels.h"

#include <math.h>

/* 1 / sqrt(var + eps), in double: every mode's inverse standard deviation. */
static double inv_std(double var) { return 1.0 / sqrt(var + (double)SAT_BN_EPS); }

static double channel_sum(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) s += xp[j];
    }
    return s;
}

/* Two passes: the centred sum of squares does not cancel like E[x^2] - E[x]^2. */
static double channel_centred_ss(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch, double mean) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) {
            double d = xp[j] - mean;
            ss += d * d;
        }
    }
    return ss;
}

/* y = x * scale + shift over channel ch of [n, c, hw]: the one formula of every forward. */
static void channel_apply(const float *x, float scale, float shift, float *y, int64_t n, int64_t c, int64_t hw,
                          int64_t ch) {
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        float *yp = y + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) yp[j] = xp[j] * scale + shift;
    }
}

/* y from the mean and centred sum of squares of cnt values (cnt > 0), and the saved and
 * running statistics. */
static void channel_normalise(const float *x, const float *gamma, const float *beta, float *y, int64_t n,
                              int64_t c, int64_t hw, int64_t ch, double mean, double ss, double cnt,
                              float *save_mean, float *save_invstd, float *save_affine, float *running_mean,
                              float *running_var) {
    const double var = ss / cnt;
    const double invstd = inv_std(var);
    const float g = gamma ? gamma[ch] : 1.0f, bt = beta ? beta[ch] : 0.0f;
    const float scale = (float)(g * invstd), shift = (float)(bt - g * invstd * mean);
    channel_apply(x, scale, shift, y, n, c, hw, ch);
    if (save_mean) save_mean[ch] = (float)mean;
    if (save_invstd) save_invstd[ch] = (float)invstd;
    if (save_affine) save_affine[ch] = scale, save_affine[c + ch] = shift;
    if (running_mean) {
        const double m = SAT_BN_MOMENTUM;
        running_mean[ch] = (float)((1.0 - m) * running_mean[ch] + m * mean);
    }
    if (running_var) {
        /* Unbiased, as PyTorch; a single value per channel has no spread to correct. */
        const double m = SAT_BN_MOMENTUM;
        const double uvar = cnt > 1 ? ss / (cnt - 1) : var;
        running_var[ch] = (float)((1.0 - m) * running_var[ch] + m * uvar);
    }
}

void sat__bn_forward_train(const float *x, const float *gamma, const float *beta, float *y, int64_t n, int64_t c,
                           int64_t hw, float *save_mean, float *save_invstd, float *save_affine, float *running_mean,
                           float *running_var, int64_t c0, int64_t c1) {
    const int64_t cnt = n * hw;
    if (cnt <= 0) return;
    for (int64_t ch = c0; ch < c1; ch++) {
        const double mean = channel_sum(x, n, c, hw, ch) / (double)cnt;
        const double ss = channel_centred_ss(x, n, c, hw, ch, mean);
        channel_normalise(x, gamma, beta, y, n, c, hw, ch, mean, ss, (double)cnt, save_mean, save_invstd,
                          save_affine, running_mean, running_var);
    }
}

void sat__bn_sums(const float *x, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1, double *sum) {
    for (int64_t ch = c0; ch < c1; ch++) sum[ch] = channel_sum(x, n, c, hw, ch);
}

void sat__bn_centred_ss(const float *x, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1,
                        const double *mean, double *ss) {
    for (int64_t ch = c0; ch < c1; ch++) ss[ch] = channel_centred_ss(x, n, c, hw, ch, mean[ch]);
}

void sat__bn_normalise(const float *x, const float *gamma, const float *beta, float *y, int64_t n, int64_t c,
                       int64_t hw, const double *mean, const double *ss, double cnt, float *save_mean,
                       float *save_invstd, float *save_affine, float *running_mean, float *running_var, int64_t c0,
                       int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++)
        channel_normalise(x, gamma, beta, y, n, c, hw, ch, mean[ch], ss[ch], cnt, save_mean, save_invstd,
                          save_affine, running_mean, running_var);
}

void sat__bn_apply(const float *x, const float *affine, float *y, int64_t n, int64_t c, int64_t hw) {
    for (int64_t ch = 0; ch < c; ch++) channel_apply(x, affine[ch], affine[c + ch], y, n, c, hw, ch);
}

void sat__bn_forward_infer(const float *x, const float *gamma, const float *beta,
                           const float *running_mean, const float *running_var, float *y,
                           int64_t n, int64_t c, int64_t hw) {
    for (int64_t ch = 0; ch < c; ch++) {
        const double invstd = inv_std(running_var[ch]);
        const double g = gamma ? gamma[ch] : 1.0, bt = beta ? beta[ch] : 0.0;
        const float scale = (float)(g * invstd);
        const float shift = (float)(bt - g * invstd * running_mean[ch]);
        channel_apply(x, scale, shift, y, n, c, hw, ch);
    }
}

void sat__bn_fold(const float *gamma, const float *beta, const float *running_mean, const float *running_var,
                  const float *w, const float *b, int64_t c, int64_t per_out, float *w_out, float *b_out) {
    for (int64_t ch = 0; ch < c; ch++) {
        const double scale = gamma[ch] * inv_std(running_var[ch]);
        const float *wc = w + ch * per_out;
        float *oc = w_out + ch * per_out;
        for (int64_t j = 0; j < per_out; j++) oc[j] = (float)(scale * wc[j]);
        const double bias = b ? b[ch] : 0.0;
        b_out[ch] = (float)(scale * (bias - running_mean[ch]) + beta[ch]);
    }
}

/* Per-channel sums of dy and dy * xhat, xhat = (x - mean) * invstd. */
static void bn_sums(const float *x, const float *dy, int64_t n, int64_t c, int64_t hw, int64_t ch,
                    double mean, double invstd, double *sdy, double *sdyx) {
    double a = 0.0, b = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw, *dp = dy + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) {
            a += dp[j];
            b += dp[j] * ((xp[j] - mean) * invstd);
        }
    }
    *sdy = a;
    *sdyx = b;
}

/* dx = g invstd (dy - mean(dy) - xhat mean(dy xhat)), the means over cnt values, written
 * as dy*k1 + x*k2 + k3. */
static void channel_dx(const float *x, const float *gamma, const float *dy, float *dx, int64_t n, int64_t c,
                       int64_t hw, int64_t ch, double mean, double invstd, double sdy, double sdyx, double cnt) {
    const double g = gamma ? gamma[ch] : 1.0;
    const double mdy = sdy / cnt, mdyx = sdyx / cnt;
    const float k1 = (float)(g * invstd);
    const float k2 = (float)(-g * invstd * invstd * mdyx);
    const float k3 = (float)(g * invstd * (invstd * mdyx * mean - mdy));
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw, *dp = dy + (i * c + ch) * hw;
        float *o = dx + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) o[j] = dp[j] * k1 + xp[j] * k2 + k3;
    }
}

void sat__bn_backward_train(const float *x, const float *gamma, const float *dy, const float *save_mean,
                            const float *save_invstd, float *dx, float *dgamma, float *dbeta, int64_t n, int64_t c,
                            int64_t hw, int64_t c0, int64_t c1) {
    const int64_t cnt = n * hw;
    for (int64_t ch = c0; ch < c1; ch++) {
        const double mean = save_mean[ch], invstd = save_invstd[ch];
        double sdy = 0.0, sdyx = 0.0;
        if (cnt > 0) bn_sums(x, dy, n, c, hw, ch, mean, invstd, &sdy, &sdyx);
        if (dgamma) dgamma[ch] = (float)sdyx;
        if (dbeta) dbeta[ch] = (float)sdy;
        if (!dx || cnt <= 0) continue;
        channel_dx(x, gamma, dy, dx, n, c, hw, ch, mean, invstd, sdy, sdyx, (double)cnt);
    }
}

void sat__bn_grad_sums(const float *x, const float *dy, const float *save_mean, const float *save_invstd,
                       int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1, double *sdy, double *sdyx) {
    for (int64_t ch = c0; ch < c1; ch++)
        bn_sums(x, dy, n, c, hw, ch, save_mean[ch], save_invstd[ch], &sdy[ch], &sdyx[ch]);
}

void sat__bn_backward_from_sums(const float *x, const float *gamma, const float *dy, const float *save_mean,
                                const float *save_invstd, const double *sdy, const double *sdyx, double cnt,
                                float *dx, int64_t n, int64_t c, int64_t hw, int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++)
        channel_dx(x, gamma, dy, dx, n, c, hw, ch, save_mean[ch], save_invstd[ch], sdy[ch], sdyx[ch], cnt);
}

void sat__bn_backward_infer(const float *x, const float *gamma, const float *running_mean,
                            const float *running_var, const float *dy, float *dx, float *dgamma,
                            float *dbeta, int64_t n, int64_t c, int64_t hw) {
    for (int64_t ch = 0; ch < c; ch++) {
        const double invstd = inv_std(running_var[ch]);
        if (dgamma || dbeta) {
            double sdy = 0.0, sdyx = 0.0;
            bn_sums(x, dy, n, c, hw, ch, running_mean[ch], invstd, &sdy, &sdyx);
            if (dgamma) dgamma[ch] = (float)sdyx;
            if (dbeta) dbeta[ch] = (float)sdy;
        }
        if (!dx) continue;
        const float k = (float)((gamma ? gamma[ch] : 1.0) * invstd);
        for (int64_t i = 0; i < n; i++) {
            const float *dp = dy + (i * c + ch) * hw;
            float *o = dx + (i * c + ch) * hw;
            for (int64_t j = 0; j < hw; j++) o[j] = dp[j] * k;
        }
    }
}
