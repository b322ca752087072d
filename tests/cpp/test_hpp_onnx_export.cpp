// sat.hpp's ONNX export: Model::save_onnx and save_onnx_buffer with onnx_export_opts(). The
// bytes go back in through load_onnx_buffer with the same logits; the file holds the same
// bytes; an opset the library does not write throws sat::Error.
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
        sat::Model m(ctx, "input 1 6 6\nnormalize mean=0.5 std=0.25\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n",
                     sat::model_opts(SAT_ACT_GELU));
        std::vector<float> x(2 * 36);
        for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 11) / 11.0f;

        const std::vector<unsigned char> bytes = m.save_onnx_buffer();
        CHECK(bytes.size() > 100);
        sat::Model back = sat::Model::load_onnx_buffer(ctx, bytes);
        CHECK(back.forward(x) == m.forward(x));

        const std::string path = "test_hpp_onnx_export.onnx";
        const sat_onnx_export_opts fixed = sat::onnx_export_opts(17, 2);
        m.save_onnx(path, &fixed);
        std::ifstream in(path, std::ios::binary);
        std::vector<unsigned char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        CHECK(file == m.save_onnx_buffer(&fixed));
        CHECK(file != bytes);  // opset 17 and a fixed batch of 2 are written
        std::remove(path.c_str());

        const sat_onnx_export_opts bad = sat::onnx_export_opts(99);
        try {
            m.save_onnx_buffer(&bad);
            CHECK(false);
        } catch (const sat::Error &e) {
            CHECK(e.status() == SAT_E_UNSUPPORTED && std::string(e.what()).find("opset 99") != std::string::npos);
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 1;
    }
    if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
    else std::printf("sat.hpp onnx export: all checks passed\n");
    return failures ? 1 : 0;
}
