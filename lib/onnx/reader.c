/* reader.c - unpacks an ONNX ModelProto with protobuf-c, through the context's allocator.
 *
 * protobuf-c unpacks nested messages by recursion, without a depth limit: a few bytes per
 * level would let a hostile file of a megabyte exhaust the stack. So the wire data is
 * walked first, guided by the generated descriptors, and a nesting deeper than
 * SAT__ONNX_MAX_DEPTH (or wire data that does not parse) is refused before protobuf-c
 * sees it. */
#include "onnx/onnx.h"

#include <string.h>

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        const uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* 1 if [p, end) parses as fields of desc with no message nested deeper than the limit. */
static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, int depth) {
    if (depth > SAT__ONNX_MAX_DEPTH) return 0;
    while (p < end) {
        uint64_t key, len;
        if (!read_varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) return 0;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &len)) return 0;
            break;
        case 1:
            if (end - p < 8) return 0;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return 0;
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return 0;
            const ProtobufCFieldDescriptor *f =
                desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && !walk(f->descriptor, p, p + len, depth + 1)) return 0;
            p += len;
            break;
        }
        default: /* groups (3, 4) are not in ONNX's schema; 6 and 7 do not exist */
            return 0;
        }
    }
    return 1;
}

/* protobuf-c's allocator over the context's, remembering a failure so that it is not
 * mistaken for damaged data. */
typedef struct pb_user {
    const sat_context *ctx;
    int failed;
} pb_user;

static void *pb_alloc(void *user, size_t size) {
    pb_user *u = user;
    void *p = sat__alloc(u->ctx, size);
    if (!p) u->failed = 1;
    return p;
}
static void pb_free(void *user, void *ptr) { sat__dealloc(((pb_user *)user)->ctx, ptr); }

int32_t sat__onnx_unpack(const sat_context *ctx, const uint8_t *data, size_t size, const char *what,
                         Onnx__ModelProto **out, char *err) {
    *out = NULL;
    if (!walk(&onnx__model_proto__descriptor, data, data + size, 0))
        return sat__fail(err, SAT_E_FORMAT, "%s: not an ONNX model (the protobuf data does not parse, or nests "
                         "messages deeper than %d)", what, SAT__ONNX_MAX_DEPTH);
    pb_user u = {ctx, 0};
    ProtobufCAllocator a = {pb_alloc, pb_free, &u};
    Onnx__ModelProto *m = onnx__model_proto__unpack(&a, size, data);
    if (!m && u.failed) return sat__fail(err, SAT_E_NOMEM, "%s: out of memory", what);
    if (!m) return sat__fail(err, SAT_E_FORMAT, "%s: not an ONNX model (protobuf-c refuses its data)", what);
    if (!m->graph) {
        sat__onnx_free(ctx, m);
        return sat__fail(err, SAT_E_FORMAT, "%s: the ONNX model has no graph", what);
    }
    *out = m;
    return SAT_OK;
}

void sat__onnx_free(const sat_context *ctx, Onnx__ModelProto *model) {
    if (!model) return;
    pb_user u = {ctx, 0};
    ProtobufCAllocator a = {pb_alloc, pb_free, &u};
    onnx__model_proto__free_unpacked(model, &a);
}
