/* tensor.c - the values of an ONNX TensorProto, wherever the file keeps them: raw_data
 * (little-endian bytes, possibly unaligned) or the typed repeated fields. Every read is
 * checked against the count the dims give, so a short or oversized field is refused
 * rather than read past. */
#include "onnx/onnx.h"

#include <string.h>

int64_t sat__onnx_tensor_count(const Onnx__TensorProto *t) {
    if (!t || t->n_dims > SAT__ONNX_MAX_DIMS) return -1;
    int64_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > SAT__ONNX_MAX_ELEMENTS) return -1;
        count *= t->dims[i];
        if (count > SAT__ONNX_MAX_ELEMENTS) return -1;
    }
    return count;
}

static int is_external(const Onnx__TensorProto *t) {
    return t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

int sat__onnx_tensor_is_float(const Onnx__TensorProto *t, int64_t count) {
    if (!t || !t->has_data_type || is_external(t) || count < 0) return 0;
    const uint64_t n = (uint64_t)count;
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return t->has_raw_data ? t->raw_data.len == n * 4 : t->n_float_data == n;
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        return t->has_raw_data ? t->raw_data.len == n * 8 : t->n_double_data == n;
    return 0;
}

/* ONNX's raw_data is little-endian; so is every CPU libsat builds for (x86-64). */
double sat__onnx_tensor_at(const Onnx__TensorProto *t, int64_t i) {
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        if (!t->has_raw_data) return t->float_data[i];
        float v;
        memcpy(&v, t->raw_data.data + 4 * i, 4);
        return v;
    }
    if (!t->has_raw_data) return t->double_data[i];
    double v;
    memcpy(&v, t->raw_data.data + 8 * i, 8);
    return v;
}

int sat__onnx_tensor_is_int64(const Onnx__TensorProto *t, int64_t count) {
    if (!t || !t->has_data_type || is_external(t) || count < 0 ||
        t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return 0;
    return t->has_raw_data ? t->raw_data.len == (uint64_t)count * 8 : t->n_int64_data == (size_t)count;
}

int64_t sat__onnx_tensor_int_at(const Onnx__TensorProto *t, int64_t i) {
    if (!t->has_raw_data) return t->int64_data[i];
    int64_t v;
    memcpy(&v, t->raw_data.data + 8 * i, 8);
    return v;
}
