/* activation.c - the public names and default parameters of the activations. */
#include "kernels/kernels.h"

const char *sat_activation_name(int32_t act) { return sat__act_name(act); }

int32_t sat_activation_from_name(const char *name, int32_t *act) { return sat__act_from_name(name, act); }

float sat_activation_default_param(int32_t act) { return sat__act_default_param(act); }
