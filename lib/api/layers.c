/* layers.c - layer introspection: each node of the graph described for a host, with the
 * ranges and logical shapes of its tensors in the flat parameter and state blocks, so that
 * weights can be imported or exported without knowing how the graph lays them out. */
#include "graph/graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The public SAT_LAYER_* ids are the op table's indices. */
_Static_assert(SAT_LAYER_INPUT == SAT_OP_INPUT && SAT_LAYER_NORMALIZE == SAT_OP_NORMALIZE &&
                   SAT_LAYER_DENSE == SAT_OP_DENSE && SAT_LAYER_CONV == SAT_OP_CONV && SAT_LAYER_BN == SAT_OP_BN &&
                   SAT_LAYER_ACT == SAT_OP_ACT && SAT_LAYER_MAXPOOL == SAT_OP_MAXPOOL &&
                   SAT_LAYER_AVGPOOL == SAT_OP_AVGPOOL && SAT_LAYER_GAP == SAT_OP_GAP && SAT_LAYER_ADD == SAT_OP_ADD &&
                   SAT_LAYER_FLATTEN == SAT_OP_FLATTEN && SAT_LAYER_SIGMOID == SAT_OP_SIGMOID &&
                   SAT_LAYER_MUL == SAT_OP_MUL && SAT_LAYER_DROPOUT == SAT_OP_DROPOUT &&
                   SAT_LAYER_COUNT == SAT_OP_COUNT,
               "SAT_LAYER_* must match enum sat_op");
_Static_assert(SAT_LAYER_NAME_MAX >= SAT_NAME_MAX, "layer names must fit sat_layer_info.name");

static void add_tensor(sat_tensor_info *list, int32_t *used, int32_t role, int64_t offset, int ndim,
                       const int32_t *shape) {
    sat_tensor_info *t = &list[(*used)++];
    t->role = role;
    t->ndim = ndim;
    t->offset = offset;
    t->count = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->count *= shape[d];
    }
}

static void describe(const sat_model *m, const sat_node *nd, sat_layer_info *li) {
    li->op = nd->op;
    snprintf(li->op_name, sizeof li->op_name, "%s", sat__ops[nd->op].name);
    snprintf(li->name, sizeof li->name, "%s", nd->name);
    li->line = nd->line;
    li->input0 = nd->in0;
    li->input1 = nd->in1;
    li->channels = nd->c;
    li->height = nd->h;
    li->width = nd->w;
    li->activation = -1;
    li->act_param = NAN;
    const int32_t c[1] = {nd->c}, one[1] = {1};
    switch (nd->op) {
    case SAT_OP_DENSE: {
        const int32_t w[2] = {nd->units, (int32_t)m->nodes[nd->in0].size};
        li->units = nd->units;
        li->has_bias = nd->has_bias;
        add_tensor(li->params, &li->num_params, SAT_TENSOR_WEIGHT, nd->p_w, 2, w);
        break;
    }
    case SAT_OP_CONV: {
        const int32_t w[4] = {nd->units, nd->conv.c_in / nd->groups, nd->k, nd->k};
        li->units = nd->units;
        li->kernel = nd->k;
        li->stride = nd->stride;
        li->padding = nd->pad;
        li->has_bias = nd->has_bias;
        add_tensor(li->params, &li->num_params, SAT_TENSOR_WEIGHT, nd->p_w, 4, w);
        break;
    }
    case SAT_OP_MAXPOOL:
    case SAT_OP_AVGPOOL:
        li->kernel = nd->k;
        li->stride = nd->stride;
        li->padding = nd->pad;
        break;
    case SAT_OP_BN:
        add_tensor(li->params, &li->num_params, SAT_TENSOR_BN_SCALE, nd->p_gamma, 1, c);
        add_tensor(li->params, &li->num_params, SAT_TENSOR_BN_SHIFT, nd->p_beta, 1, c);
        add_tensor(li->state, &li->num_state, SAT_TENSOR_RUNNING_MEAN, nd->s_mean, 1, c);
        add_tensor(li->state, &li->num_state, SAT_TENSOR_RUNNING_VAR, nd->s_var, 1, c);
        break;
    case SAT_OP_ACT:
        li->activation = nd->act;
        li->act_param = nd->act_param;
        if (nd->p_alpha >= 0) add_tensor(li->params, &li->num_params, SAT_TENSOR_ACT_ALPHA, nd->p_alpha, 1, one);
        break;
    default:
        break;
    }
    if (nd->p_b >= 0) {
        const int32_t b[1] = {nd->units};
        add_tensor(li->params, &li->num_params, SAT_TENSOR_BIAS, nd->p_b, 1, b);
    }
}

int32_t sat_model_layer_count(const sat_model *m) {
    if (!m) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_layer_count: model is NULL");
    return m->num_nodes;
}

int32_t sat_model_layer_info(const sat_model *m, int32_t index, sat_layer_info *info) {
    if (!m) return sat__fail_tls(SAT_E_INVALID_ARG, "sat_model_layer_info: model is NULL");
    /* The message buffer is the one thing a failed call may change on the handle. */
    char *err = ((sat_model *)m)->err;
    if (!info) return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_layer_info: info is NULL");
    const uint32_t size = info->struct_size;
    if (size < sizeof(uint32_t))
        return sat__fail(err, SAT_E_INVALID_ARG,
                         "sat_model_layer_info: info->struct_size %u is too small (set it to sizeof the "
                         "struct)", size);
    if (index < 0 || index >= m->num_nodes)
        return sat__fail(err, SAT_E_INVALID_ARG, "sat_model_layer_info: layer %d is not in 0..%d", index,
                         m->num_nodes - 1);
    sat_layer_info li;
    memset(&li, 0, sizeof li);
    describe(m, &m->nodes[index], &li);
    li.struct_size = size;
    if (size > sizeof li) memset((unsigned char *)info + sizeof li, 0, size - sizeof li);
    memcpy(info, &li, size < sizeof li ? size : sizeof li);
    return SAT_OK;
}
