// train_attack.cpp - libsat from C++ through sat.hpp: build a small CNN with a smooth
// activation, run a few PGD adversarial-training steps on synthetic data, then attack it.
//
// Synthetic task: 8x8 grey images of a bright horizontal (class 0) or vertical (class 1)
// bar on noise. Usage: sat-cpp-train-attack [steps]
#include <sat.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

constexpr int kSide = 8;
constexpr int kPixels = kSide * kSide;

void make_batch(std::mt19937 &rng, int n, std::vector<float> &x, std::vector<int32_t> &y) {
    std::uniform_real_distribution<float> noise(0.0f, 0.3f);
    std::uniform_int_distribution<int> pos(1, kSide - 2), cls(0, 1);
    x.assign(static_cast<std::size_t>(n) * kPixels, 0.0f);
    y.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; i++) {
        float *img = &x[static_cast<std::size_t>(i) * kPixels];
        for (int p = 0; p < kPixels; p++) img[p] = noise(rng);
        int c = cls(rng), at = pos(rng);
        for (int t = 0; t < kSide; t++) img[c == 0 ? at * kSide + t : t * kSide + at] = 0.9f;
        y[static_cast<std::size_t>(i)] = c;
    }
}

float accuracy(sat::Model &model, const std::vector<float> &x, const std::vector<int32_t> &y) {
    std::vector<float> logits = model.forward(x);
    int correct = 0;
    for (std::size_t i = 0; i < y.size(); i++)
        correct += (logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1);
    return float(correct) / float(y.size());
}

}  // namespace

int main(int argc, char **argv) {
    int steps = argc > 1 ? std::atoi(argv[1]) : 30;
    const float eps = 0.1f;
    try {
        sat::Context ctx(/*num_threads=*/1, /*seed=*/42);

        sat_model_opts mo = sat::model_opts(SAT_ACT_SILU);  // the smooth activation
        mo.max_batch = 64;
        sat::Model model(ctx,
                         "input 1 8 8\n"
                         "conv 8 k=3 p=1\nact\nmaxpool k=2\n"
                         "flatten\ndense 32\nact\ndense 2\n",
                         mo);
        std::printf("model: %lld parameters, activation %s\n",
                    static_cast<long long>(model.param_count()), sat_activation_name(mo.activation));

        sat::Optimizer opt(model, sat::optimizer_opts(SAT_OPT_SGD, 0.05f));
        sat_trainer_opts to = sat::trainer_opts(SAT_TRAIN_PGD, eps, /*steps=*/3);
        sat::Trainer trainer(model, opt, to);

        std::mt19937 rng(7);
        std::vector<float> x;
        std::vector<int32_t> y;
        for (int s = 0; s < steps; s++) {
            make_batch(rng, 32, x, y);
            sat_step_stats st = trainer.step(x, y);
            if (s % 10 == 0 || s == steps - 1)
                std::printf("step %3d  loss %.4f  adversarial accuracy %.3f  lr %.3g\n", s,
                            double(st.loss), double(st.adv_accuracy), double(st.lr));
        }

        make_batch(rng, 64, x, y);
        sat_attack_opts ao = sat::attack_opts(eps, /*steps=*/10);
        ao.seed = 1;
        std::vector<float> x_adv = model.attack(ao, x, y);
        float max_dist = 0.0f;
        for (std::size_t i = 0; i < x.size(); i++) {
            float d = x_adv[i] > x[i] ? x_adv[i] - x[i] : x[i] - x_adv[i];
            if (d > max_dist) max_dist = d;
        }
        std::printf("held-out: clean accuracy %.3f, PGD-10 (eps %.2f) accuracy %.3f, "
                    "max |x_adv - x| %.4f\n",
                    double(accuracy(model, x, y)), double(eps), double(accuracy(model, x_adv, y)),
                    double(max_dist));

        // errors carry the library's message
        try {
            sat::Model bad(ctx, "input 1 8 8\nflatten\ndense -3\n");
        } catch (const sat::Error &e) {
            std::printf("a bad spec is reported as: %s (status %d)\n", e.what(), e.status());
        }
        return max_dist <= eps + 1e-6f ? 0 : 1;
    } catch (const sat::Error &e) {
        std::fprintf(stderr, "libsat error %d (%s): %s\n", e.status(), e.status_string(), e.what());
        return 1;
    }
}
