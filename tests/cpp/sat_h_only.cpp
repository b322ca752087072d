// sat.h alone in a C++ translation unit: it must compile as C++ (strict warnings) and its
// declarations must have C linkage, so a C++ program links against the C library.
#include <sat.h>

#include <type_traits>

static_assert(std::is_same<decltype(&sat_model_forward),
                           int32_t (*)(sat_model *, const float *, int64_t, float *)>::value,
              "sat_model_forward keeps its C signature");
static_assert(std::is_standard_layout<sat_attack_opts>::value &&
                  std::is_trivially_copyable<sat_attack_opts>::value,
              "options structs stay plain C structs");

extern "C++" int sat_h_only_check() {
    sat_model_opts o;
    if (sat_model_opts_init(&o, sizeof o) != SAT_OK) return 1;
    return o.activation == SAT_ACT_DEFAULT ? 0 : 2;
}
