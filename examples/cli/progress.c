/* progress.c - the progress bar. Drawn on stderr only when stderr is a terminal, so logs
 * and pipes get the plain one-line-per-epoch output and never carriage returns. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24

void cli_format_duration(char *buf, size_t size, double s) {
    if (!(s >= 0)) s = 0;
    if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%.1fs", s);
}

void cli_progress_init(cli_progress *p, int quiet, int32_t epochs) {
    p->enabled = !quiet && isatty(fileno(stderr));
    p->drawn = 0;
    p->last_draw = 0;
    p->run_start = cli_now();
    p->epochs = epochs;
}

/* The bar of done/total: '#' for the part done, '.' for the rest. */
static void fill_bar(char bar[BAR_WIDTH + 1], int64_t done, int64_t total) {
    int filled = (int)((double)done / (double)total * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = 0;
}

void cli_progress_update(cli_progress *p, const char *label, int32_t epoch, int64_t done,
                         int64_t total, int64_t images, double epoch_seconds, float loss,
                         float adv_acc) {
    if (!p->enabled || total <= 0) return;
    double now = cli_now();
    if (done < total && now - p->last_draw < 0.1) return;
    p->last_draw = now;

    char bar[BAR_WIDTH + 1];
    fill_bar(bar, done, total);

    double rate = epoch_seconds > 0 ? (double)images / epoch_seconds : 0;
    /* ETA of the whole run: the rest of this epoch at the current pace, plus the remaining
     * epochs at the pace of the run so far (validation included). */
    double per_batch = done > 0 ? epoch_seconds / (double)done : 0;
    double rest = per_batch * (double)(total - done);
    double run = now - p->run_start;
    double epochs_so_far = (double)(epoch - 1) + (double)done / (double)total;
    if (epochs_so_far > 0) rest += run / epochs_so_far * (double)(p->epochs - epoch);
    char eta[32];
    cli_format_duration(eta, sizeof eta, rest);

    fprintf(stderr, "\r\033[K%s%sepoch %d/%d [%s] %3d%%  %6.0f img/s  ETA %s  loss %.3f  adv %.1f%%",
            label ? label : "", label ? "  " : "", (int)epoch, (int)p->epochs, bar,
            (int)(100.0 * (double)done / (double)total), rate, eta, (double)loss,
            100.0 * (double)adv_acc);
    fflush(stderr);
    p->drawn = 1;
}

void cli_progress_clear(cli_progress *p) {
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = 0;
    }
}

int32_t cli_progress_report(void *user, const char *what, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (!p->enabled || total <= 0) return 0;
    const double now = cli_now();
    if (done == 0) p->run_start = now; /* a new call */
    if (done >= total) {
        cli_progress_clear(p);
        return 0;
    }
    if (now - p->last_draw < 0.1) return 0;
    p->last_draw = now;
    char bar[BAR_WIDTH + 1], eta[32];
    fill_bar(bar, done, total);
    const double elapsed = now - p->run_start;
    cli_format_duration(eta, sizeof eta, done > 0 ? elapsed / (double)done * (double)(total - done) : 0);
    /* "sat_autoattack" -> "autoattack" */
    const char *name = strncmp(what, "sat_", 4) == 0 ? what + 4 : what;
    fprintf(stderr, "\r\033[K%s [%s] %3d%%  ETA %s", name, bar, (int)(100.0 * (double)done / (double)total),
            done > 0 ? eta : "?");
    fflush(stderr);
    p->drawn = 1;
    return 0;
}
