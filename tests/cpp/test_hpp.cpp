// The C++ wrapper (include/sat.hpp): RAII handles, sat::Error with the library's message,
// span views over library memory, and the opts helpers. Built with -Wall -Wextra
// -Wpedantic -Werror; sat_h_only.cpp, linked in, checks that sat.h compiles on its own.
#include <sat.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

int sat_h_only_check();

static_assert(!std::is_copy_constructible_v<sat::Model> && !std::is_copy_assignable_v<sat::Model>);
static_assert(std::is_nothrow_move_constructible_v<sat::Model> &&
              std::is_nothrow_move_assignable_v<sat::Model>);
static_assert(!std::is_copy_constructible_v<sat::Context> &&
              std::is_nothrow_move_constructible_v<sat::Context>);
static_assert(!std::is_copy_constructible_v<sat::Optimizer> &&
              std::is_nothrow_move_constructible_v<sat::Optimizer>);
static_assert(!std::is_copy_constructible_v<sat::Trainer> &&
              std::is_nothrow_move_constructible_v<sat::Trainer>);
static_assert(!std::is_copy_constructible_v<sat::Dataset> &&
              std::is_nothrow_move_constructible_v<sat::Dataset>);
static_assert(std::is_base_of_v<std::runtime_error, sat::Error>);

static int failures = 0;
#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static void test_bad_spec_throws_with_line(sat::Context &ctx) {
    bool thrown = false;
    try {
        sat::Model m(ctx, "input 1 4 4\nflatten\nconv3 4\n");
    } catch (const sat::Error &e) {
        thrown = true;
        std::string what = e.what();
        CHECK(e.status() == SAT_E_INVALID_ARG);
        CHECK(what.find("line 3") != std::string::npos);
        CHECK(what.find("conv3") != std::string::npos);
        CHECK(std::string(e.status_string()) == sat_status_string(SAT_E_INVALID_ARG));
    }
    CHECK(thrown);
}

static void test_model(sat::Context &ctx) {
    sat_model_opts o = sat::model_opts(SAT_ACT_RELU);
    o.max_batch = 4;
    o.seed = 3;
    sat::Model m(ctx, "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n", o);
    CHECK(m.shape().channels == 1 && m.num_classes() == 3 && m.example_size() == 16);
    CHECK(m.max_batch() == 4);
    sat::span<float> p = m.params();
    CHECK(p.size() == 163 && static_cast<int64_t>(p.size()) == m.param_count());

    std::vector<float> x(2 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 7) / 7.0f;
    std::vector<float> logits = m.forward(x);
    CHECK(logits.size() == 6);

    // forward by hand from the parameter view (dense weight [out,in], then bias)
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 3; k++) {
            double z = p[160 + k];
            for (int j = 0; j < 8; j++) {
                double h = p[128 + j];
                for (int i = 0; i < 16; i++) h += double(p[j * 16 + i]) * x[n * 16 + i];
                z += double(p[136 + k * 8 + j]) * (h > 0 ? h : 0);
            }
            CHECK(std::fabs(z - logits[n * 3 + k]) < 1e-5);
        }

    std::vector<int32_t> y = {0, 2};
    sat::InputGradient g = m.input_gradient(x, y);
    CHECK(g.grad.size() == x.size() && g.losses.size() == 2 && g.logits == logits);
    float loss = m.train_backward(x, y);
    CHECK(std::isfinite(loss) && std::fabs(loss - 0.5f * (g.losses[0] + g.losses[1])) < 1e-5f);

    // a batch above max_batch runs in chunks; a handle error carries the handle's message
    std::vector<float> big(5 * 16, 0.5f);
    CHECK(m.forward(big).size() == 5 * static_cast<size_t>(m.num_classes()));
    big[4 * 16 + 3] = std::nanf("");
    try {
        m.forward(big);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_NUMERIC);
        CHECK(std::string(e.what()).find("NaN") != std::string::npos);
    }
    // a wrapper-side shape check
    try {
        m.forward(sat::span<const float>(x.data(), 15));
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_SHAPE);
    }

    // moves transfer ownership
    sat::Model moved = std::move(m);
    CHECK(m.get() == nullptr && moved.get() != nullptr);
    CHECK(moved.forward(x) == logits);
    sat::Model c = moved.clone();
    CHECK(c.forward(x) == logits);
}

// Activation checkpointing gives the same gradients (a residual network it pays on).
static void test_activation_checkpointing(sat::Context &ctx) {
    const char *spec = "input 2 8 8\nconv 6 k=3 p=1\nbn\nact name=a\nconv 6 k=3 p=1\nbn\nact\nconv 6 k=3 p=1\nbn\n"
                       "add a\nact name=b\nconv 6 k=3 p=1\nbn\nact\nconv 6 k=3 p=1\nbn\nadd b\nact\ngap\ndense 3\n";
    sat_model_opts o = sat::model_opts(SAT_ACT_SILU);
    o.max_batch = 3;
    sat::Model plain(ctx, spec, o);
    sat::Model ckpt = plain.clone();
    ckpt.set_activation_checkpointing(true);
    std::vector<float> x(3 * 128);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 11) / 11.0f;
    std::vector<int32_t> y = {0, 1, 2};
    CHECK(plain.input_gradient(x, y).grad == ckpt.input_gradient(x, y).grad);
    CHECK(plain.train_backward(x, y) == ckpt.train_backward(x, y));
    sat::span<float> ga = plain.grads(), gb = ckpt.grads();
    CHECK(std::equal(ga.begin(), ga.end(), gb.begin()));
}

static void test_train_and_attack(sat::Context &ctx) {
    sat::Model m(ctx, "input 1 4 4\nflatten\ndense 8\nact\ndense 2\n", sat::model_opts());
    sat::Optimizer opt(m, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
    sat::Trainer tr(m, opt, sat::trainer_opts(SAT_TRAIN_PGD, 0.1f, 2));
    std::vector<float> x(4 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 5) % 11) / 11.0f;
    std::vector<int32_t> y = {0, 1, 1, 0};
    std::vector<float> before(m.params().begin(), m.params().end());
    sat_step_stats st = tr.step(x, y);
    CHECK(std::isfinite(st.loss) && opt.step_count() == 1);
    CHECK(std::vector<float>(m.params().begin(), m.params().end()) != before);
    std::vector<int32_t> bad = {0, 1, 5, 0};
    try {
        tr.step(x, bad);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG && std::string(e.what()).size() > 0);
    }
    std::vector<float> adv = m.attack(sat::attack_opts(0.1f, 3), x, y);
    for (std::size_t i = 0; i < x.size(); i++) CHECK(std::fabs(adv[i] - x[i]) <= 0.1f + 1e-6f);
}

// Synchronised batch norm: a reduction that changes nothing is the plain step bit for bit
// and sees the layer's sums; returning false or throwing fails the step, nothing changed.
static void test_bn_reduce(sat::Context &ctx) {
    const char *spec = "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 2\n";
    std::vector<float> x(4 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 5) % 11) / 11.0f;
    std::vector<int32_t> y = {0, 1, 1, 0};
    sat::Model a(ctx, spec, sat::model_opts()), b(ctx, spec, sat::model_opts());
    sat::Optimizer oa(a, sat::optimizer_opts(SAT_OPT_SGD, 0.05f)), ob(b, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
    const sat_trainer_opts to = sat::trainer_opts(SAT_TRAIN_PGD, 0.1f, 2);
    std::vector<std::size_t> counts;
    sat::Trainer plain(a, oa, to);
    sat::Trainer synced(b, ob, to, [&counts](sat::span<double> sums) {
        counts.push_back(sums.size());
        return true;
    });
    plain.step(x, y);
    synced.step(x, y);
    CHECK(std::vector<float>(a.params().begin(), a.params().end()) ==
          std::vector<float>(b.params().begin(), b.params().end()));
    CHECK((counts == std::vector<std::size_t>{9, 8, 17}));

    std::vector<float> before(b.params().begin(), b.params().end());
    sat::Trainer refusing(b, ob, to, [](sat::span<double>) { return false; });
    try {
        refusing.compute(x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_ABORTED && std::string(e.what()).find("batch-norm") != std::string::npos);
    }
    sat::Trainer throwing(b, ob, to, [](sat::span<double>) -> bool { throw std::runtime_error("rank 1 is gone"); });
    try {
        throwing.step(x, y);
        CHECK(false);
    } catch (const std::runtime_error &e) {
        CHECK(std::string(e.what()) == "rank 1 is gone");
    }
    CHECK(std::vector<float>(b.params().begin(), b.params().end()) == before);
}

// Overlapped reduction: compute() hands the gradient block out range by range, from its end
// down to 0, each range already final; training is the same bit for bit; a false return or a
// throw fails compute() with nothing changed.
static void test_grad_ready(sat::Context &ctx) {
    const char *spec = "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 2\n";
    std::vector<float> x(4 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 7) % 13) / 13.0f;
    std::vector<int32_t> y = {1, 0, 1, 0};
    sat::Model a(ctx, spec, sat::model_opts()), b(ctx, spec, sat::model_opts());
    sat::Optimizer oa(a, sat::optimizer_opts(SAT_OPT_SGD, 0.05f)), ob(b, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
    const sat_trainer_opts to = sat::trainer_opts(SAT_TRAIN_PGD, 0.1f, 2);
    std::vector<std::pair<int64_t, int64_t>> ranges;
    std::vector<float> seen(b.grads().size());
    sat::Trainer plain(a, oa, to);
    sat::Trainer overlapped(b, ob, to, nullptr, [&](int64_t offset, int64_t count) {
        ranges.emplace_back(offset, count);
        std::copy(b.grads().begin() + offset, b.grads().begin() + offset + count, seen.begin() + offset);
        return true;
    });
    plain.compute(x, y);
    overlapped.compute(x, y);
    const int64_t np = static_cast<int64_t>(b.grads().size());
    // dense 2 (8*2 + 2), bn (8 + 8), dense 8 (16*8 + 8)
    CHECK((ranges == std::vector<std::pair<int64_t, int64_t>>{{np - 18, 18}, {np - 34, 16}, {0, np - 34}}));
    CHECK(seen == std::vector<float>(b.grads().begin(), b.grads().end()));
    CHECK(std::vector<float>(a.grads().begin(), a.grads().end()) == seen);
    plain.apply();
    overlapped.apply();
    CHECK(std::vector<float>(a.params().begin(), a.params().end()) ==
          std::vector<float>(b.params().begin(), b.params().end()));

    std::vector<float> before(b.params().begin(), b.params().end());
    sat::Trainer refusing(b, ob, to, nullptr, [](int64_t, int64_t) { return false; });
    try {
        refusing.compute(x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_ABORTED && std::string(e.what()).find("gradient-ready") != std::string::npos);
    }
    sat::Trainer throwing(b, ob, to, nullptr,
                          [](int64_t, int64_t) -> bool { throw std::runtime_error("rank 1 is gone"); });
    try {
        throwing.compute(x, y);
        CHECK(false);
    } catch (const std::runtime_error &e) {
        CHECK(std::string(e.what()) == "rank 1 is gone");
    }
    CHECK(std::vector<float>(b.params().begin(), b.params().end()) == before);
}

// The split step: compute + apply equals step, per-rank starts, Free-AT refused.
static void test_split_step(sat::Context &ctx) {
    const char *spec = "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 2\n";
    std::vector<float> x(4 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 7) % 13) / 13.0f;
    std::vector<int32_t> y = {0, 1, 1, 0};
    sat::Model a(ctx, spec, sat::model_opts()), b(ctx, spec, sat::model_opts());
    sat::Optimizer oa(a, sat::optimizer_opts(SAT_OPT_SGD, 0.05f)), ob(b, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
    sat_trainer_opts to = sat::trainer_opts(SAT_TRAIN_PGD, 0.1f, 2);
    sat::Trainer ta(a, oa, to), tb(b, ob, to);
    for (int s = 0; s < 2; s++) {
        sat_step_stats sa = ta.step(x, y);
        std::vector<float> before(b.params().begin(), b.params().end());
        sat_step_stats sb = tb.compute(x, y);
        CHECK(std::vector<float>(b.params().begin(), b.params().end()) == before && ob.step_count() == s);
        tb.apply();
        CHECK(sa.loss == sb.loss && sa.adv_accuracy == sb.adv_accuracy);
    }
    CHECK(std::vector<float>(a.params().begin(), a.params().end()) ==
          std::vector<float>(b.params().begin(), b.params().end()));

    to.rank = 1;
    to.rank_count = 2;
    sat::Model c(ctx, spec, sat::model_opts());
    sat::Optimizer oc(c, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
    sat::Trainer tc(c, oc, to);
    tc.compute(x, y);
    to.rank = 2;
    try {
        sat::Trainer bad(c, oc, to);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG);
    }
    sat::Trainer tf(c, oc, sat::trainer_opts(SAT_TRAIN_FREE, 0.1f));
    try {
        tf.compute(x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_UNSUPPORTED && std::string(e.what()).find("Free-AT") != std::string::npos);
    }
}

// Learning rate, scales, freezing and the model-and-optimizer checkpoint through the wrapper.
static void test_runtime_control(sat::Context &ctx) {
    const char *spec = "input 1 4 4\nflatten\ndense 8\nact\ndense 2\n";
    sat::Model m(ctx, spec, sat::model_opts());
    sat::Optimizer opt(m, sat::optimizer_opts(SAT_OPT_ADAM, 0.01f));
    const std::size_t np = m.params().size();
    opt.set_lr(0.02f);
    CHECK(opt.base_lr() == 0.02f && opt.lr() == 0.02f);
    opt.set_lr_scale(0, 8, 0.5f);
    std::vector<float> scales = opt.lr_scale();
    CHECK(scales.size() == np && scales[7] == 0.5f && scales[8] == 1.0f);
    std::vector<uint8_t> mask(np, 0);
    for (std::size_t i = 0; i < 136; i++) mask[i] = 1;  // the first dense layer
    opt.set_frozen(mask);
    CHECK(opt.frozen() == mask);
    std::vector<float> x(4 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 7) % 13) / 13.0f;
    std::vector<int32_t> y = {0, 1, 1, 0};
    std::vector<float> before(m.params().begin(), m.params().end());
    m.train_backward(x, y);
    opt.step();
    CHECK(std::equal(before.begin(), before.begin() + 136, m.params().begin()));
    CHECK(!std::equal(before.begin() + 136, before.end(), m.params().begin() + 136));
    try {
        opt.set_lr(-1.0f);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_INVALID_ARG && opt.base_lr() == 0.02f);
    }

    const std::string path = "test_hpp_runtime.satc";
    sat_model_meta meta = sat::model_meta();
    meta.epochs = 3;
    opt.save_checkpoint(path, &meta);
    sat::Model m2(ctx, spec, sat::model_opts());
    sat::Optimizer opt2(m2, sat::optimizer_opts(SAT_OPT_ADAM, 0.01f));
    CHECK(opt2.load_checkpoint(path).epochs == 3);
    CHECK(opt2.base_lr() == 0.02f && opt2.frozen() == mask && opt2.step_count() == 1);
    CHECK(std::equal(m.params().begin(), m.params().end(), m2.params().begin()));
    opt2.set_frozen({});
    CHECK(opt2.frozen() == std::vector<uint8_t>(np, 0));
    std::remove(path.c_str());
}

// close() refuses while handles made from the object live, and the object stays usable.
static void test_close_with_children() {
    sat::Context ctx(1, 0);
    sat::Model m(ctx, "input 1 2 2\nflatten\ndense 3\n");
    sat::Optimizer opt(m, sat::optimizer_opts());
    sat::Trainer tr(m, opt, sat::trainer_opts(SAT_TRAIN_STANDARD, 0.1f));
    auto refused = [](auto &&close) {
        try {
            close();
            return false;
        } catch (const sat::Error &e) {
            return e.status() == SAT_E_STATE && std::string(e.what()).find("still alive") != std::string::npos;
        }
    };
    CHECK(refused([&] { ctx.close(); }));
    CHECK(refused([&] { m.close(); }));
    CHECK(refused([&] { opt.close(); }));
    std::vector<float> x = {0.1f, 0.2f, 0.3f, 0.4f};
    std::vector<int32_t> y = {1};
    tr.step(x, y);  // everything still works
    { sat::Trainer gone = std::move(tr); }
    opt.close();
    CHECK(opt.get() == nullptr);
    m.close();
    CHECK(m.get() == nullptr);
    ctx.close();
    CHECK(ctx.get() == nullptr);
}

// Live allocations of a context whose allocator hooks count them.
static long live_blocks = 0;
static void *counting_alloc(void *, std::size_t size, std::size_t alignment) {
    void *p = nullptr;
    if (posix_memalign(&p, alignment < sizeof(void *) ? sizeof(void *) : alignment, size) != 0)
        return nullptr;
    live_blocks++;
    return p;
}
static void counting_free(void *, void *p) {
    if (p) live_blocks--;
    std::free(p);
}

static std::vector<float> bars(int n, std::vector<int32_t> &y) {
    std::vector<float> x(static_cast<std::size_t>(n) * 16, 0.1f);
    y.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; i++) {
        y[static_cast<std::size_t>(i)] = i % 2;
        for (int t = 0; t < 4; t++) x[i * 16 + (i % 2 ? t * 4 + 1 : 4 + t)] = 0.9f;
    }
    return x;
}

// A trainer keeps working when the sat::Model and sat::Optimizer it was made from are
// moved (into a vector that then reallocates) and when they are destroyed: it holds their
// handles, and they are freed only with the trainer.
static void test_trainer_survives_parent_moves() {
    sat_context_opts co = sat::context_opts();
    co.seed = 5;
    co.alloc_fn = counting_alloc;
    co.dealloc_fn = counting_free;
    sat::Context ctx(co);
    const long with_context = live_blocks;
    std::vector<int32_t> y;
    std::vector<float> x = bars(4, y);
    std::vector<float> first, after_moves;
    {
        std::vector<sat::Model> models;
        models.push_back(sat::Model(ctx, "input 1 4 4\nflatten\ndense 8\nact\ndense 2\n"));
        std::vector<sat::Optimizer> opts;
        opts.emplace_back(models[0], sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
        sat_model *raw = models[0].get();
        const sat::Model *old_address = &models[0];
        std::unique_ptr<sat::Trainer> tr(
            new sat::Trainer(models[0], opts[0], sat::trainer_opts(SAT_TRAIN_PGD, 0.1f, 2)));
        for (int i = 0; i < 8; i++) {  // reallocations move every element
            models.push_back(models[0].clone());
            opts.push_back(sat::Optimizer(models.back(), sat::optimizer_opts()));
        }
        CHECK(&models[0] != old_address && models[0].get() == raw);
        sat::Model moved = std::move(models[0]);
        sat::Optimizer moved_opt = std::move(opts[0]);
        CHECK(models[0].get() == nullptr && moved.get() == raw);
        first.assign(moved.params().begin(), moved.params().end());
        tr->step(x, y);
        after_moves.assign(moved.params().begin(), moved.params().end());
        CHECK(after_moves != first && moved_opt.step_count() == 1);
        models.clear();
        opts.clear();

        // the model and optimizer objects go away first: their handles stay alive
        const long with_all = live_blocks;
        { sat::Model gone = std::move(moved); sat::Optimizer gone_opt = std::move(moved_opt); }
        CHECK(live_blocks == with_all);
        CHECK(sat_model_param_count(raw) == static_cast<int64_t>(first.size()));
        sat_step_stats st = tr->step(x, y);
        CHECK(std::isfinite(st.loss) && st.lr == 0.05f);
        CHECK(std::vector<float>(sat_model_params(raw), sat_model_params(raw) + first.size()) !=
              after_moves);
        tr.reset();  // now the trainer, its optimizer and its model are freed
    }
    CHECK(live_blocks == with_context);
}

// Model::preset passes the normalisation it is given into the spec.
static void test_preset_normalisation(sat::Context &ctx) {
    const float mean[1] = {0.25f}, std[1] = {0.5f};
    sat::Model plain = sat::Model::preset(ctx, "mlp", 1, 4, 4, 3);
    sat::Model norm = sat::Model::preset(ctx, "mlp", 1, 4, 4, 3, mean, std);
    CHECK(plain.spec().find("normalize") == std::string::npos);
    CHECK(norm.spec().find("normalize mean=0.25 std=0.5") != std::string::npos);
    std::vector<float> x(16, 0.25f);  // normalised to zero: the first layer sees only biases
    std::vector<float> px(16, 0.0f);
    sat::Model copy = plain.clone();
    std::vector<float> pn(norm.params().begin(), norm.params().end());
    std::copy(pn.begin(), pn.end(), copy.params().begin());
    CHECK(norm.forward(x) == copy.forward(px));
    try {
        sat::Model::preset(ctx, "mlp", 1, 4, 4, 3, sat::span<const float>(), std);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_SHAPE);
    }
}

static void test_dataset(sat::Context &ctx) {
    std::vector<float> x(6 * 4, 0.25f);
    std::vector<int32_t> y = {0, 1, 0, 1, 0, 1};
    sat::Dataset ds = sat::Dataset::from_arrays(ctx, x, y, 1, 2, 2, 2);
    CHECK(ds.size() == 6 && ds.labels().size() == 6 && ds.images().size() == 24);
    ds.shuffle(1, 0);
    std::vector<float> bx(4 * 4);
    std::vector<int32_t> by(4);
    CHECK(ds.batch(1, 4, bx, by) == 2);
}

// Cross-entropy's dL/dlogits (3 classes): softmax - onehot, per example (a sum of losses).
static std::vector<float> ce_dlogits(const std::vector<float> &logits, const std::vector<int32_t> &y) {
    std::vector<float> dl(logits.size());
    for (std::size_t n = 0; n < y.size(); n++) {
        double mx = logits[n * 3], s = 0;
        for (int k = 1; k < 3; k++) mx = std::max(mx, double(logits[n * 3 + k]));
        for (int k = 0; k < 3; k++) s += std::exp(logits[n * 3 + k] - mx);
        for (int k = 0; k < 3; k++) dl[n * 3 + k] = float(std::exp(logits[n * 3 + k] - mx) / s - (k == y[n]));
    }
    return dl;
}

// Executions: a host loss through forward and backward, the model's own execution, and
// an execution that outlives the C++ model object it was made from.
static void test_exec(sat::Context &ctx) {
    sat_model_opts o = sat::model_opts(SAT_ACT_SILU);
    o.max_batch = 4;
    o.seed = 5;
    std::vector<float> x(3 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float(i % 5) / 5.0f;
    std::vector<int32_t> y = {1, 0, 2};
    sat::Exec *kept = nullptr;
    std::vector<float> logits;
    {
        sat::Model m(ctx, "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 3\n", o);
        sat::InputGradient ref = m.input_gradient(x, y);
        sat::Exec e(m, SAT_EXEC_INPUT_GRAD);
        logits = e.forward(x);
        CHECK(logits == ref.logits);
        std::vector<float> dl = ce_dlogits(logits, y);
        CHECK(e.last_batch() == 3);
        std::vector<float> dx2(48);
        try {
            e.backward(sat::span<const float>(dl.data(), 6), dx2); // 2 rows for 3 examples
            CHECK(false);
        } catch (const sat::Error &err) {
            CHECK(err.status() == SAT_E_SHAPE);
        }
        std::vector<float> dx = e.input_gradient(dl);
        for (std::size_t i = 0; i < dx.size(); i++) CHECK(std::fabs(dx[i] - ref.grad[i]) < 1e-5f);
        // parameter gradients need a training execution
        std::vector<float> pg(static_cast<std::size_t>(m.param_count()));
        try {
            e.backward(dl, {}, pg);
            CHECK(false);
        } catch (const sat::Error &err) {
            CHECK(err.status() == SAT_E_STATE);
            CHECK(std::string(err.what()).find("sat_exec_backward") != std::string::npos);
        }
        sat::Exec own = sat::Exec::of_model(m);
        CHECK(own.get() == sat_model_exec(m.get()));
        own.forward(x, logits, SAT_BN_BATCH);
        dl = ce_dlogits(logits, y);
        for (float &d : dl) d /= 3.0f; // the mean: the reduction is the caller's
        own.backward(dl, {}, m.grads());
        std::vector<float> mean_grads(m.grads().begin(), m.grads().end());
        float loss = m.train_backward(x, y);
        CHECK(std::isfinite(loss));
        for (std::size_t i = 0; i < pg.size(); i++) CHECK(std::fabs(mean_grads[i] - m.grads()[i]) < 1e-5f);
        kept = new sat::Exec(m, SAT_EXEC_INFERENCE, 2);
    }
    // the model object is gone; the execution keeps the model alive
    std::vector<float> two(x.begin(), x.begin() + 32);
    CHECK(kept->forward(two).size() == 6);
    try {
        kept->forward(x); // 3 examples, max_batch 2
        CHECK(false);
    } catch (const sat::Error &err) {
        CHECK(err.status() == SAT_E_SHAPE);
    }
    delete kept;
}

// Progress: reports from 0 to total, a cancel throws SAT_E_ABORTED and a cancelled training
// step changes nothing, an exception thrown by the function comes out of the call, and a
// flag set by another thread cancels a running attack.
static void test_progress() {
    sat::Context ctx(1, 7);
    sat_model_opts o = sat::model_opts();
    o.max_batch = 4;
    sat::Model m(ctx, "input 1 4 4\nflatten\ndense 8\nact\ndense 2\n", o);
    std::vector<float> x(10 * 16);
    for (std::size_t i = 0; i < x.size(); i++) x[i] = float((i * 7) % 13) / 13.0f;
    std::vector<int32_t> y(10);
    for (std::size_t i = 0; i < y.size(); i++) y[i] = int32_t(i % 2);
    const std::vector<float> ref = m.attack(sat::attack_opts(0.1f, 3), x, y);

    std::vector<int64_t> done;
    int64_t total = -1;
    ctx.set_progress([&](const char *what, int64_t d, int64_t t) {
        CHECK(std::string(what) == "sat_attack");
        done.push_back(d);
        total = t;
        return false;
    });
    CHECK(m.attack(sat::attack_opts(0.1f, 3), x, y) == ref);
    CHECK(done.size() == 1 + 3 * 3 && done.front() == 0 && done.back() == total && total == 30);
    CHECK(std::is_sorted(done.begin(), done.end()));

    int calls = 0;
    ctx.set_progress([&](const char *, int64_t, int64_t) { return ++calls == 4; });
    try {
        m.attack(sat::attack_opts(0.1f, 3), x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_ABORTED && std::string(e.what()).find("cancelled") != std::string::npos);
    }

    sat::Optimizer opt(m, sat::optimizer_opts());
    sat::Trainer tr(m, opt, sat::trainer_opts(SAT_TRAIN_FREE, 0.1f));
    const std::vector<float> before(m.params().begin(), m.params().end());
    calls = 0;
    ctx.set_progress([&](const char *, int64_t, int64_t) { return ++calls == 3; });
    try {
        tr.step(sat::span<const float>(x.data(), 4 * 16), sat::span<const int32_t>(y.data(), 4));
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_ABORTED);
    }
    CHECK(std::vector<float>(m.params().begin(), m.params().end()) == before && opt.step_count() == 0);

    struct Stop {};
    ctx.set_progress([](const char *, int64_t d, int64_t) -> bool {
        if (d > 0) throw Stop{};
        return false;
    });
    bool stopped = false;
    try {
        m.attack(sat::attack_opts(0.1f, 3), x, y);
    } catch (const Stop &) {
        stopped = true;
    }
    CHECK(stopped);

    std::atomic<bool> cancel{false}, started{false};
    ctx.set_progress([&](const char *, int64_t d, int64_t) {
        if (d > 0) started = true;
        return cancel.load();
    });
    std::thread other([&] {
        while (!started) std::this_thread::yield();
        cancel = true;
    });
    try {
        m.attack(sat::attack_opts(0.1f, 100000000), x, y);
        CHECK(false);
    } catch (const sat::Error &e) {
        CHECK(e.status() == SAT_E_ABORTED);
    }
    other.join();

    ctx.set_progress(nullptr);
    CHECK(m.attack(sat::attack_opts(0.1f, 3), x, y) == ref);
}

int main() {
    CHECK(sat_h_only_check() == 0);
    CHECK(sat::version() == SAT_VERSION_STRING);
    try {
        sat::Context ctx(1, 7);
        test_bad_spec_throws_with_line(ctx);
        test_model(ctx);
        test_activation_checkpointing(ctx);
        test_exec(ctx);
        test_train_and_attack(ctx);
        test_dataset(ctx);
        test_preset_normalisation(ctx);
        test_trainer_survives_parent_moves();
        test_progress();
        test_split_step(ctx);
        test_bn_reduce(ctx);
        test_grad_ready(ctx);
        test_runtime_control(ctx);
        test_close_with_children();
    } catch (const sat::Error &e) {
        std::fprintf(stderr, "unexpected sat::Error %d: %s\n", e.status(), e.what());
        return 1;
    }
    if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
    else std::printf("sat.hpp: all checks passed\n");
    return failures ? 1 : 0;
}
