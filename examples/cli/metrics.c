/* metrics.c - metric logging: one JSON object per line (easy to append to, to tail while a
 * run goes on, and to read from Python line by line) and CSV cells for spreadsheets. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

static void key(cli_json *j, const char *k) {
    fputs(j->fields++ ? ", " : "", j->f);
    fprintf(j->f, "\"%s\": ", k);
}

static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

void cli_json_begin(cli_json *j, FILE *f) {
    j->f = f;
    j->fields = 0;
    fputc('{', f);
}

void cli_json_str(cli_json *j, const char *k, const char *value) {
    key(j, k);
    if (value)
        put_string(j->f, value);
    else
        fputs("null", j->f);
}

void cli_json_int(cli_json *j, const char *k, int64_t value) {
    key(j, k);
    fprintf(j->f, "%" PRId64, value);
}

void cli_json_num(cli_json *j, const char *k, double value) {
    key(j, k);
    put_number(j->f, value);
}

void cli_json_bool(cli_json *j, const char *k, int value) {
    key(j, k);
    fputs(value ? "true" : "false", j->f);
}

void cli_json_int_array(cli_json *j, const char *k, const int32_t *v, int32_t n) {
    key(j, k);
    fputc('[', j->f);
    for (int32_t i = 0; i < n; i++) fprintf(j->f, "%s%" PRId32, i ? ", " : "", v[i]);
    fputc(']', j->f);
}

void cli_json_num_array(cli_json *j, const char *k, const float *v, int32_t n) {
    key(j, k);
    fputc('[', j->f);
    for (int32_t i = 0; i < n; i++) {
        if (i) fputs(", ", j->f);
        put_number(j->f, v[i]);
    }
    fputc(']', j->f);
}

void cli_json_end(cli_json *j) {
    fputs("}\n", j->f);
    fflush(j->f);
}

FILE *cli_log_open(const char *path, int append) {
    errno = 0;
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f)
        fprintf(stderr, "%s: cannot open log file '%s': %s\n", cli_prog, path,
                errno ? strerror(errno) : "unknown error");
    return f;
}

FILE *cli_replace_open(const char *path, char *tmp, size_t cap) {
    if ((size_t)snprintf(tmp, cap, "%s.tmp", path) >= cap) {
        fprintf(stderr, "%s: the path '%s' is too long\n", cli_prog, path);
        return NULL;
    }
    return cli_log_open(tmp, 0);
}

int cli_replace_commit(FILE *f, const char *tmp, const char *path) {
    const int write_failed = ferror(f);
    errno = 0;
    if ((fclose(f) != 0) | write_failed || rename(tmp, path) != 0) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", cli_prog, path, errno ? strerror(errno) : "write error");
        remove(tmp);
        return -1;
    }
    return 0;
}

void cli_csv_str(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

void cli_csv_num(FILE *f, double v, int last) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    fputc(last ? '\n' : ',', f);
}
