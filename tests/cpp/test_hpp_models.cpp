// sat.hpp's wrappers of AutoAttack, callback models, layer introspection, ONNX import and
// export.
// The host model is linear with a known answer: logits = the sum of each quadrant's pixels
// of a 1x4x4 image, so an L-inf attack of radius eps lowers every margin by exactly 8 eps,
// and the examples whose margin is below 8 eps are exactly the ones any attack can break.
#include <sat.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
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

static constexpr int SZ = 16;
static constexpr float EPS = 0.05f;
static constexpr int N = 32;

static int quadrant(int i) { return (i / 4 / 2) * 2 + (i % 4) / 2; }

static void quadrant_logits(sat::span<const float> x, int64_t n, sat::span<float> logits) {
    for (int64_t e = 0; e < n; e++) {
        for (int k = 0; k < 4; k++) logits[e * 4 + k] = 0.0f;
        for (int i = 0; i < SZ; i++) logits[e * 4 + quadrant(i)] += x[e * SZ + i];
    }
}

static void quadrant_grad(sat::span<const float>, int64_t n, sat::span<const float> dlogits,
                          sat::span<float> dx) {
    for (int64_t e = 0; e < n; e++)
        for (int i = 0; i < SZ; i++) dx[e * SZ + i] = dlogits[e * 4 + quadrant(i)];
}

// Background 0.4, the class's quadrant 0.4 + d, margin 4 d with d in 0.03..0.17: the
// first half (d < 2 eps) within reach, the second half not.
static void data(std::vector<float> &x, std::vector<int32_t> &y) {
    x.assign(N * SZ, 0.4f);
    y.assign(N, 0);
    for (int e = 0; e < N; e++) {
        float d = 0.03f + 0.02f * float(e / 4);
        for (int i = 0; i < SZ; i++)
            if (quadrant(i) == e % 4) x[e * SZ + i] += d;
        y[e] = e % 4;
    }
}

static int correct(const std::vector<float> &x, const std::vector<int32_t> &y) {
    std::vector<float> l(y.size() * 4);
    quadrant_logits(x, static_cast<int64_t>(y.size()), l);
    int c = 0;
    for (std::size_t e = 0; e < y.size(); e++) {
        bool ok = true;
        for (int k = 0; k < 4; k++)
            if (k != y[e] && !(l[e * 4 + k] < l[e * 4 + y[e]])) ok = false;
        c += ok;
    }
    return c;
}

// The same classifier as a libsat model, its weights set through the layer introspection.
static sat::Model linear_model(sat::Context &ctx) {
    sat::Model m(ctx, "input 1 4 4\nflatten\ndense 4\n");
    sat_layer_info dense = m.layer_info(2);
    sat::span<float> w = m.tensor(dense, SAT_TENSOR_WEIGHT), b = m.tensor(dense, SAT_TENSOR_BIAS);
    CHECK(w.size() == 4 * SZ && b.size() == 4);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < SZ; i++) w[k * SZ + i] = quadrant(i) == k ? 1.0f : 0.0f;  // [out, in]
        b[k] = 0.0f;
    }
    return m;
}

static void test_callback_autoattack_known_answer(sat::Context &ctx) {
    std::vector<float> x;
    std::vector<int32_t> y;
    data(x, y);
    sat::CallbackModel cm(ctx, 1, 4, 4, 4, quadrant_logits, quadrant_grad);
    CHECK(cm.shape().num_classes == 4 && cm.example_size() == SZ);
    sat_autoattack_opts o = sat::autoattack_opts(EPS);
    o.seed = 2;
    sat::AutoAttackReport r = cm.autoattack(o, x, y);
    CHECK(r.result.clean_accuracy == 1.0f);
    CHECK(std::fabs(r.result.robust_accuracy - 0.5f) < 1e-6f);
    CHECK(r.result.num_attacks == 4 && r.result.attacks[0] == SAT_AA_ATTACK_APGD_CE &&
          r.result.attacks[3] == SAT_AA_ATTACK_SQUARE);
    CHECK(correct(r.x_adv, y) == N / 2);
    for (int e = 0; e < N; e++) CHECK((r.outcome[e] == SAT_AA_ROBUST) == (e >= N / 2));
    for (std::size_t i = 0; i < x.size(); i++) CHECK(std::fabs(r.x_adv[i] - x[i]) <= EPS * 1.000001f);

    // The libsat model with the same weights: the same sequence and outcomes.
    sat::Model m = linear_model(ctx);
    sat::AutoAttackReport native = m.autoattack(o, x, y);
    CHECK(native.outcome == r.outcome);
    CHECK(std::memcmp(native.result.accuracy_after, r.result.accuracy_after,
                      sizeof r.result.accuracy_after) == 0);

    // sat_callback_attack: APGD-CE through the callables breaks exactly the reachable half.
    sat_attack_opts a = sat::attack_opts(EPS, 100, SAT_ATTACK_APGD_CE);
    a.seed = 2;
    CHECK(correct(cm.attack(a, x, y), y) == N / 2);
}

// AutoAttack through the wrapper is the C call's result, bit for bit.
static void test_model_autoattack_equals_c(sat::Context &ctx) {
    std::vector<float> x;
    std::vector<int32_t> y;
    data(x, y);
    sat::Model m = linear_model(ctx);
    sat_autoattack_opts o = sat::autoattack_opts(EPS);
    sat::AutoAttackReport r = m.autoattack(o, x, y);

    std::vector<float> c_adv(x.size());
    std::vector<int32_t> c_outcome(y.size());
    sat_autoattack_result c{};
    c.struct_size = sizeof c;
    CHECK(sat_autoattack(m.get(), &o, x.data(), y.data(), N, c_adv.data(), c_outcome.data(), &c) ==
          SAT_OK);
    CHECK(std::memcmp(&c, &r.result, sizeof c) == 0);
    CHECK(c_adv == r.x_adv && c_outcome == r.outcome);

    // buffers may be left out, and shapes are checked before the call
    sat_autoattack_result only = m.autoattack(o, x, y, {}, {});
    CHECK(std::memcmp(&only, &c, sizeof c) == 0);
    try {
        m.autoattack(o, x, sat::span<const int32_t>(y.data(), N - 1));
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_SHAPE);
    }
    o.eps = -1.0f;
    try {
        m.autoattack(o, x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG && std::string(e.what()).find("eps") != std::string::npos);
    }
}

struct HostFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An exception thrown by a callable is caught before the C library, stops the call, and is
// rethrown to the caller as it was; the model stays usable.
static void test_exceptions_cross_back_unchanged(sat::Context &ctx) {
    std::vector<float> x;
    std::vector<int32_t> y;
    data(x, y);
    int mode = 0;
    int calls = 0;
    sat::CallbackModel cm(
        ctx, 1, 4, 4, 4,
        [&](sat::span<const float> xs, int64_t n, sat::span<float> l) {
            calls++;
            if (mode == 1) throw HostFailure("host model failed");
            if (mode == 2) throw 42;
            quadrant_logits(xs, n, l);
        },
        nullptr, 5);
    sat_attack_opts square = sat::attack_opts(EPS, 20, SAT_ATTACK_SQUARE);
    mode = 1;
    try {
        cm.attack(square, x, y);
        CHECK(false);
    } catch (const HostFailure &e) {
        CHECK(std::string(e.what()) == "host model failed");
    }
    mode = 2;
    try {
        cm.attack(square, x, y);
        CHECK(false);
    } catch (int v) {
        CHECK(v == 42);
    }
    mode = 0;
    std::vector<float> adv = cm.attack(sat::attack_opts(EPS, 500, SAT_ATTACK_SQUARE), x, y);
    CHECK(correct(adv, y) == N / 2);

    // logits only: gradient attacks are refused before any callable runs
    const int before = calls;
    try {
        cm.attack(sat::attack_opts(EPS, 5), x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_UNSUPPORTED && std::string(e.what()) == cm.last_error());
    }
    try {
        cm.autoattack(sat::autoattack_opts(EPS), x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_UNSUPPORTED);
    }
    CHECK(calls == before);

    // moving the object keeps the callables where the library finds them
    sat::CallbackModel moved = std::move(cm);
    CHECK(cm.get() == nullptr && correct(moved.attack(square, x, y), y) >= N / 2);
    try {
        sat::CallbackModel bad(ctx, 1, 4, 4, 1, quadrant_logits);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG && std::string(e.what()).size() > 0);
    }
}

static void test_layers(sat::Context &ctx) {
    sat::Model m(ctx, "input 2 6 6\nconv 3 k=3 name=c\nbn\nact smoothrelu\nadd c\nflatten\ndense 5 bias=0\n");
    std::vector<sat_layer_info> layers = m.layers();
    CHECK(m.layer_count() == 7 && layers.size() == 7);
    CHECK(std::string(layers[1].op_name) == "conv" && layers[1].op == SAT_LAYER_CONV &&
          std::string(layers[1].name) == "c");
    const sat_tensor_info *w = sat::find_tensor(layers[1], SAT_TENSOR_WEIGHT);
    CHECK(w && w->ndim == 4 && w->shape[0] == 3 && w->shape[1] == 2 && w->shape[2] == 3 &&
          w->count == 54);
    CHECK(layers[4].op == SAT_LAYER_ADD && layers[4].input0 == 3 && layers[4].input1 == 1);
    CHECK(layers[3].activation == SAT_ACT_SMOOTHRELU &&
          m.tensor(layers[3], SAT_TENSOR_ACT_ALPHA)[0] == 400.0f);
    CHECK(sat::find_tensor(layers[6], SAT_TENSOR_BIAS) == nullptr &&
          m.tensor(layers[6], SAT_TENSOR_BIAS).empty());
    // the views cover both blocks exactly once; state views point into the state block
    std::vector<int> pc(static_cast<std::size_t>(m.param_count())), sc(m.state().size());
    for (const sat_layer_info &l : layers)
        for (int32_t role = SAT_TENSOR_WEIGHT; role <= SAT_TENSOR_RUNNING_VAR; role++) {
            sat::span<float> t = m.tensor(l, role);
            bool state = role == SAT_TENSOR_RUNNING_MEAN || role == SAT_TENSOR_RUNNING_VAR;
            float *base = state ? m.state().data() : m.params().data();
            for (std::size_t i = 0; i < t.size(); i++) (state ? sc : pc)[t.data() - base + i]++;
        }
    for (int c : pc) CHECK(c == 1);
    for (int c : sc) CHECK(c == 1);
    CHECK(m.tensor(layers[2], SAT_TENSOR_RUNNING_VAR)[0] == 1.0f);
    try {
        m.layer_info(7);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG &&
              std::string(e.what()).find("sat_model_layer_info") != std::string::npos);
    }
}

// ONNX import through the wrapper: Model::load_onnx and load_onnx_buffer with
// onnx_import_opts(), on a small model of the fuzz corpus (input normalisation, a
// convolution, GELU as its Erf subgraph, a squeeze-excitation gate, SiLU, a dense layer).
static void test_onnx(sat::Context &ctx) {
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
}

// ONNX export through the wrapper: Model::save_onnx and save_onnx_buffer with
// onnx_export_opts(). The bytes go back in through the import with the same logits, the
// file holds the same bytes, and an opset the library does not write throws sat::Error.
static void test_onnx_export(sat::Context &ctx) {
    sat::Model m(ctx, "input 1 6 6\nnormalize mean=0.5 std=0.25\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n",
                 sat::model_opts(SAT_ACT_GELU));
    std::vector<float> x(2 * 36);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 11) / 11.0f;
    const std::vector<unsigned char> bytes = m.save_onnx_buffer();
    CHECK(sat::Model::load_onnx_buffer(ctx, bytes).forward(x) == m.forward(x));

    const std::string path = "test_hpp_models_export.onnx";
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
}

int main() {
    try {
        sat::Context ctx(1, 4);
        test_callback_autoattack_known_answer(ctx);
        test_model_autoattack_equals_c(ctx);
        test_exceptions_cross_back_unchanged(ctx);
        test_layers(ctx);
        test_onnx(ctx);
        test_onnx_export(ctx);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        return 1;
    }
    if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
    else std::printf("sat.hpp models: all checks passed\n");
    return failures ? 1 : 0;
}
