/* pooling.c - max pooling (k x k windows, stride s, padding p), average pooling (no
 * padding) and global average pooling, on x [n, c, h, w]. */
#include "kernels/kernels.h"

#include <string.h>

/* Index (within the plane) of the first maximum of the window at (oh, ow): max pooling's
 * own search over a window, not a class prediction (kernels/argmax.c). The window starts p
 * before the plane; only its cells inside the plane take part, so padding never wins the
 * max, as in PyTorch (p <= k/2 leaves at least one cell in every window). */
static int64_t window_peak(const float *xp, int64_t h, int64_t w, int32_t k, int32_t s, int32_t p, int64_t oh,
                           int64_t ow) {
    const int64_t h0 = oh * s - p, w0 = ow * s - p;
    const int64_t a0 = h0 < 0 ? -h0 : 0, a1 = h0 + k > h ? h - h0 : k;
    const int64_t b0 = w0 < 0 ? -w0 : 0, b1 = w0 + k > w ? w - w0 : k;
    int64_t best = (h0 + a0) * w + w0 + b0;
    float m = xp[best];
    for (int64_t a = a0; a < a1; a++) {
        for (int64_t b = b0; b < b1; b++) {
            int64_t idx = (h0 + a) * w + w0 + b;
            if (xp[idx] > m) {
                m = xp[idx];
                best = idx;
            }
        }
    }
    return best;
}

void sat__maxpool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w,
                          int32_t k, int32_t s, int32_t p, int64_t ho, int64_t wo) {
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * ho * wo;
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++)
                yp[oh * wo + ow] = xp[window_peak(xp, h, w, k, s, p, oh, ow)];
    }
}

void sat__maxpool_backward(const float *x, const float *dy, float *dx, int64_t n, int64_t c,
                           int64_t h, int64_t w, int32_t k, int32_t s, int32_t p, int64_t ho, int64_t wo) {
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * h * w;
        const float *dp = dy + pl * ho * wo;
        float *gp = dx + pl * h * w;
        memset(gp, 0, (size_t)(h * w) * sizeof *gp);
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++)
                gp[window_peak(xp, h, w, k, s, p, oh, ow)] += dp[oh * wo + ow];
    }
}

void sat__avgpool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w,
                          int32_t k, int32_t s, int64_t ho, int64_t wo) {
    const float inv = 1.0f / (float)(k * k);
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * ho * wo;
        for (int64_t oh = 0; oh < ho; oh++) {
            for (int64_t ow = 0; ow < wo; ow++) {
                float acc = 0.0f;
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++) acc += xp[(oh * s + a) * w + ow * s + b];
                yp[oh * wo + ow] = acc * inv;
            }
        }
    }
}

void sat__avgpool_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t h, int64_t w,
                           int32_t k, int32_t s, int64_t ho, int64_t wo) {
    const float inv = 1.0f / (float)(k * k);
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *dp = dy + pl * ho * wo;
        float *gp = dx + pl * h * w;
        memset(gp, 0, (size_t)(h * w) * sizeof *gp);
        for (int64_t oh = 0; oh < ho; oh++) {
            for (int64_t ow = 0; ow < wo; ow++) {
                const float g = dp[oh * wo + ow] * inv;
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++) gp[(oh * s + a) * w + ow * s + b] += g;
            }
        }
    }
}

void sat__gap_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw) {
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float *xp = x + pl * hw;
        float acc = 0.0f;
        for (int64_t j = 0; j < hw; j++) acc += xp[j];
        y[pl] = hw > 0 ? acc / (float)hw : 0.0f;
    }
}

void sat__gap_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t hw) {
    if (hw <= 0) return;
    const float inv = 1.0f / (float)hw;
    for (int64_t pl = 0; pl < n * c; pl++) {
        const float g = dy[pl] * inv;
        float *gp = dx + pl * hw;
        for (int64_t j = 0; j < hw; j++) gp[j] = g;
    }
}
