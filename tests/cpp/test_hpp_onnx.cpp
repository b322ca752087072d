// sat.hpp's ONNX import: Model::load_onnx and load_onnx_buffer with onnx_import_opts(), on a
// small model made with onnx.helper (input normalisation, a convolution, GELU as its Erf
// subgraph, a squeeze-excitation gate, SiLU, a dense layer; tests/fuzz/corpus/onnx).
#include <sat.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

static int failures = 0;
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

int main() {
    try {
        sat::Context ctx(1, 4);
        std::ifstream in(SAT_ONNX_SAMPLE, std::ios::binary);
        std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        CHECK(!bytes.empty());

        sat::Model from_file = sat::Model::load_onnx(ctx, SAT_ONNX_SAMPLE);
        sat::Model from_bytes = sat::Model::load_onnx_buffer(ctx, bytes);
        CHECK(from_file.spec() == from_bytes.spec());
        CHECK(from_file.spec().find("act gelu") != std::string::npos);
        CHECK(from_file.num_classes() == 3 && from_file.shape().channels == 3);
        std::vector<float> x(2 * 3 * 5 * 5);
        for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 7) / 7.0f;
        CHECK(from_file.forward(x) == from_bytes.forward(x));

        // The activation swap: GELU becomes ReLU, the weights stay.
        const sat_onnx_import_opts o = sat::onnx_import_opts(SAT_ACT_GELU, SAT_ACT_RELU);
        sat::Model swapped = sat::Model::load_onnx_buffer(ctx, bytes, &o);
        CHECK(swapped.spec().find("act gelu") == std::string::npos);
        CHECK(swapped.spec().find("act relu") != std::string::npos);
        CHECK(swapped.forward(x) != from_file.forward(x));

        // Damaged bytes: sat::Error with the status and the message.
        bytes.resize(bytes.size() / 2);
        try {
            sat::Model::load_onnx_buffer(ctx, bytes);
            CHECK(false);
        } catch (const sat::Error &e) {
            CHECK(e.status() == SAT_E_FORMAT && std::string(e.what()).find("sat_model_load_onnx_buffer") == 0);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 1;
    }
    if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
    else std::printf("sat.hpp onnx: all checks passed\n");
    return failures ? 1 : 0;
}
