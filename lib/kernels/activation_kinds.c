/* activation_kinds.c - activation names and default parameters, shared by the spec parser
 * and the public sat_activation_* calls. */
#include "kernels.h"

#include <strings.h>

static const char *const act_names[SAT_ACT_COUNT] = {
    "relu", "softplus", "psoftplus", "silu", "gelu", "gelu-tanh", "elu", "celu", "smoothrelu"};

const char *sat__act_name(int32_t act) {
    return act >= 0 && act < SAT_ACT_COUNT ? act_names[act] : NULL;
}

int32_t sat__act_from_name(const char *name, int32_t *act) {
    if (!name || !act) return SAT_E_INVALID_ARG;
    for (int32_t i = 0; i < SAT_ACT_COUNT; i++)
        if (strcasecmp(name, act_names[i]) == 0) {
            *act = i;
            return SAT_OK;
        }
    if (strcasecmp(name, "swish") == 0) {
        *act = SAT_ACT_SILU;
        return SAT_OK;
    }
    if (strcasecmp(name, "parametric-softplus") == 0) {
        *act = SAT_ACT_PSOFTPLUS;
        return SAT_OK;
    }
    return SAT_E_INVALID_ARG;
}

float sat__act_default_param(int32_t act) {
    switch (act) {
    case SAT_ACT_PSOFTPLUS: return 10.0f;
    case SAT_ACT_SMOOTHRELU: return 400.0f;
    default: return 1.0f;
    }
}
