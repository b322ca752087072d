/* exec.c - executions of a model: made from the model, planned for their kind, freed.
 * The model counts the executions made from it (live_children) so that it is not freed
 * under them; its own execution is not counted (the model frees it). */
#include "graph.h"

void sat__exec_free(sat_exec *e) {
    if (!e) return;
    const sat_context *ctx = e->m->ctx;
    sat__plan_release(e);
    sat__dealloc(ctx, e->ws);
    if (!e->owned_by_model) sat__child_detach(&e->m->live_children);
    sat__dealloc(ctx, e);
}

int32_t sat__exec_create(sat_model *m, int32_t kind, int64_t max_batch, int owned_by_model, sat_exec **out,
                         char *err) {
    *out = NULL;
    sat_exec *e = sat__calloc(m->ctx, 1, sizeof *e);
    if (!e) return sat__fail(err, SAT_E_NOMEM, "execution: out of memory");
    e->m = m;
    e->kind = kind;
    e->owned_by_model = owned_by_model;
    e->max_batch = max_batch;
    e->err = owned_by_model ? m->err : e->own_err;
    if (!owned_by_model) sat__child_attach(&m->live_children);
    int32_t st = sat__plan_exec(e, err);
    if (st) {
        sat__exec_free(e);
        return st;
    }
    sat__log(m->ctx, SAT_LOG_DEBUG, "execution: kind %d, %.1f MiB of activations%s for batches up to %lld", kind,
             (double)e->arena_size * sizeof(float) / (1024.0 * 1024.0),
             kind == SAT_EXEC_INFERENCE ? "" : " and gradients", (long long)max_batch);
    *out = e;
    return SAT_OK;
}

void sat__model_forget_forward(sat_model *m) {
    if (m->own_exec) m->own_exec->run_valid = 0;
}

sat_exec *sat__model_exec(sat_model *m) {
    if (!m->own_exec) sat__exec_create(m, SAT_EXEC_TRAIN, m->max_batch, 1, &m->own_exec, m->err);
    return m->own_exec;
}
