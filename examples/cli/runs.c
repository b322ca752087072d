/* runs.c - independent jobs (the trainings of `sat-cli compare`) as child processes, at
 * most N at a time. A process per job keeps the jobs apart: each has its own library
 * context, memory and threads, so running them side by side cannot change their numbers,
 * and a job that crashes takes only itself down. Each child sends its result text back
 * through a pipe. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct slot {
    pid_t pid;  /* 0: free */
    int fd;     /* read end of the child's result pipe */
    int32_t index;
} slot;

/* Reads everything from fd into a new NUL-terminated string (NULL when out of memory). */
static char *read_all(int fd) {
    size_t cap = 1024, len = 0;
    char *s = malloc(cap);
    while (s) {
        if (len + 1 == cap) {
            char *t = realloc(s, cap * 2);
            if (!t) break;
            s = t;
            cap *= 2;
        }
        ssize_t r = read(fd, s + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            s[len] = 0;
            return s;
        }
        len += (size_t)r;
    }
    free(s);
    return NULL;
}

static int start(slot *slots, int32_t nslots, slot *s, int32_t index, cli_job_fn run,
                 void *user) {
    int p[2];
    if (pipe(p) != 0) {
        fprintf(stderr, "%s: cannot create a pipe: %s\n", cli_prog, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    fflush(stdout); /* nothing buffered may be printed twice */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot start a process: %s\n", cli_prog, strerror(errno));
        close(p[0]);
        close(p[1]);
        return CLI_EXIT_FAILURE;
    }
    if (pid == 0) {
        close(p[0]);
        for (int32_t i = 0; i < nslots; i++)
            if (slots[i].pid) close(slots[i].fd);
        FILE *out = fdopen(p[1], "w");
        int rc = out ? run(user, index, out) : CLI_EXIT_FAILURE;
        if (out && fclose(out) != 0 && rc == CLI_EXIT_OK) rc = CLI_EXIT_FAILURE;
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    close(p[1]);
    s->pid = pid;
    s->fd = p[0];
    s->index = index;
    return CLI_EXIT_OK;
}

/* Waits for any running child, collects its result. Returns an exit code for that job. */
static int reap(slot *slots, int32_t nslots, const char *const *names, cli_job_done_fn done,
                void *user) {
    int status = 0;
    pid_t pid;
    do pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    slot *s = NULL;
    for (int32_t i = 0; i < nslots; i++)
        if (slots[i].pid && slots[i].pid == pid) s = &slots[i];
    if (!s) {
        fprintf(stderr, "%s: lost track of a child process: %s\n", cli_prog,
                pid < 0 ? strerror(errno) : "unknown process");
        return CLI_EXIT_FAILURE;
    }
    char *text = read_all(s->fd);
    close(s->fd);
    s->pid = 0;
    const char *name = names[s->index];
    int rc;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = text ? done(user, s->index, text) : CLI_EXIT_FAILURE;
        if (rc) fprintf(stderr, "%s: the run %s finished but its result could not be used\n",
                        cli_prog, name);
    } else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
        fprintf(stderr, "%s: the run %s failed with exit code %d (its messages are above)\n",
                cli_prog, name, rc);
    } else {
        rc = CLI_EXIT_FAILURE;
        fprintf(stderr, "%s: the run %s was killed by signal %d (%s)\n", cli_prog, name,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "unknown");
    }
    free(text);
    return rc;
}

int cli_run_jobs(int32_t n, const char *const *names, int32_t jobs, cli_job_fn run,
                 cli_job_done_fn done, void *user) {
    if (jobs < 1) jobs = 1;
    if (jobs > n) jobs = n;
    slot *slots = calloc((size_t)(jobs > 0 ? jobs : 1), sizeof *slots);
    if (!slots) {
        fprintf(stderr, "%s: out of memory\n", cli_prog);
        return CLI_EXIT_FAILURE;
    }
    int first_error = CLI_EXIT_OK;
    int32_t next = 0, running = 0;
    for (;;) {
        /* Start jobs while there is room; none after a failure. */
        while (!first_error && next < n && running < jobs) {
            slot *s = NULL;
            for (int32_t i = 0; i < jobs && !s; i++)
                if (!slots[i].pid) s = &slots[i];
            int rc = start(slots, jobs, s, next, run, user);
            if (rc) {
                first_error = rc;
                break;
            }
            next++;
            running++;
        }
        if (running == 0) break;
        int rc = reap(slots, jobs, names, done, user);
        running--;
        if (rc && !first_error) {
            first_error = rc;
            if (running)
                fprintf(stderr, "%s: waiting for the %d run%s still going (their results are "
                                "kept for a resumed compare)\n",
                        cli_prog, (int)running, running == 1 ? "" : "s");
        }
    }
    free(slots);
    return first_error;
}
