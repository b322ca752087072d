/**
 * @file sat.hpp
 * @brief C++17 header-only wrapper of libsat (sat.h).
 *
 * - Move-only RAII classes own the handles: sat::Context, sat::Model, sat::Exec,
 *   sat::CallbackModel, sat::Optimizer, sat::Trainer, sat::Dataset. A handle keeps the handles it was made from alive: a
 *   trainer holds its model and optimizer, an optimizer its model, models and datasets
 *   their context. So the C rule "destroy a handle before its parents" holds whatever
 *   order the C++ objects are destroyed or moved in: a sat::Model that goes out of scope
 *   while a sat::Trainer still uses it is destroyed when the trainer is.
 * - A failed call throws sat::Error (a std::runtime_error) carrying the status code and the
 *   library's message (from the handle's *_last_error or sat_last_error()).
 * - Arrays cross as sat::span<T>: std::span with C++20, else a minimal view. Both convert
 *   from std::vector, std::array and (pointer, size).
 * - sat::model_opts(), sat::attack_opts(), ... return options structs filled with the
 *   library's defaults; change fields, then pass them.
 *
 * Only inline functions: nothing here changes libsat's ABI, and a function of sat.h that a
 * program does not use is never referenced.
 */
#ifndef SAT_HPP
#define SAT_HPP
/** @namespace sat
 *  @brief The C++ wrapper of libsat: RAII handle classes, sat::Error, options helpers. */

#include "sat.h"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
#include <span>
#define SAT_HPP_STD_SPAN 1
#endif

namespace sat {

/* ------------------------------------------------------------------------- */
/* Views                                                                      */
/* ------------------------------------------------------------------------- */

#ifdef SAT_HPP_STD_SPAN
template <class T>
using span = std::span<T>;
#else
/** A pointer and a length: the part of std::span that the wrapper needs. */
template <class T>
class span {
public:
    using element_type = T;                    /**< the element type, with its const */
    using value_type = std::remove_cv_t<T>;    /**< the element type without const */
    using size_type = std::size_t;             /**< type of sizes and indices */
    using pointer = T *;                       /**< pointer to an element */
    using reference = T &;                     /**< reference to an element */
    using iterator = T *;                      /**< iterator: a plain pointer */

    /** An empty view. */
    constexpr span() noexcept = default;
    /** `size` elements starting at `data`. */
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    /** The elements of a C array. */
    template <std::size_t N>
    constexpr span(T (&arr)[N]) noexcept : data_(arr), size_(N) {}
    /** Any contiguous container with data() and size() whose elements convert (vector,
     *  array, string, another span). */
    template <class C,
              class = std::enable_if_t<
                  !std::is_same_v<std::remove_cv_t<std::remove_reference_t<C>>, span> &&
                  std::is_convertible_v<decltype(std::declval<C &>().data()), T *>>>
    constexpr span(C &&c) noexcept(noexcept(c.data()) && noexcept(c.size()))
        : data_(c.data()), size_(static_cast<std::size_t>(c.size())) {}

    /** Pointer to the first element. */
    constexpr T *data() const noexcept { return data_; }
    /** Number of elements. */
    constexpr std::size_t size() const noexcept { return size_; }
    /** True when there are no elements. */
    constexpr bool empty() const noexcept { return size_ == 0; }
    /** Element i (unchecked). */
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    /** Iterator to the first element. */
    constexpr T *begin() const noexcept { return data_; }
    /** Iterator past the last element. */
    constexpr T *end() const noexcept { return data_ + size_; }
    /** `count` elements starting at `offset` (unchecked). */
    constexpr span subspan(std::size_t offset, std::size_t count) const noexcept {
        return span(data_ + offset, count);
    }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};
#endif

/* ------------------------------------------------------------------------- */
/* Progress and cancellation                                                  */
/* ------------------------------------------------------------------------- */

/** A context's progress function (Context::set_progress): `what` names the running call,
 *  `done` of `total` units are finished (see sat_progress_fn). Return true to cancel the
 *  call, which then throws sat::Error with status SAT_E_ABORTED. An exception it throws
 *  cancels the call too and is thrown again by it. */
using ProgressFn = std::function<bool(const char *what, int64_t done, int64_t total)>;

namespace detail {
/* An exception thrown by a progress function cannot cross the C library: it is kept here
 * (the function runs on the calling thread) until the cancelled call returns. */
inline std::exception_ptr &progress_exception() noexcept {
    static thread_local std::exception_ptr e;
    return e;
}
inline void rethrow_progress_exception() {
    if (std::exception_ptr e = std::exchange(progress_exception(), nullptr)) std::rethrow_exception(e);
}
/* What the C context's callback points to; the context handle keeps it alive. */
struct ProgressState {
    ProgressFn fn;
    static int32_t call(void *user, const char *what, int64_t done, int64_t total) noexcept {
        try {
            return static_cast<ProgressState *>(user)->fn(what, done, total) ? 1 : 0;
        } catch (...) {
            progress_exception() = std::current_exception();
            return 1;
        }
    }
};
}  // namespace detail

/* ------------------------------------------------------------------------- */
/* Errors                                                                     */
/* ------------------------------------------------------------------------- */

/** A libsat call failed. status() is the SAT_E_* code, what() the library's message. */
class Error : public std::runtime_error {
public:
    /** An error with a SAT_E_* status; an empty message becomes the status string. */
    Error(int32_t status, const std::string &message)
        : std::runtime_error(message.empty() ? std::string(sat_status_string(status)) : message),
          status_(status) {}
    /** The SAT_E_* status code. */
    int32_t status() const noexcept { return status_; }
    /** sat_status_string() of the status ("invalid argument", ...). */
    const char *status_string() const noexcept { return sat_status_string(status_); }

private:
    int32_t status_;
};

namespace detail {
inline void check(int32_t status, const char *message) {
    if (status == SAT_E_ABORTED) rethrow_progress_exception();
    if (status != SAT_OK) throw Error(status, message ? message : "");
}
/* For failures before a handle exists. */
inline void check_tls(int32_t status) {
    if (status == SAT_E_ABORTED) rethrow_progress_exception();
    if (status != SAT_OK) throw Error(status, sat_last_error());
}
/* The bytes of a buffer the library handed out, which is freed here. */
inline std::vector<unsigned char> take_bytes(void *buf, std::size_t size) {
    const unsigned char *b = static_cast<const unsigned char *>(buf);
    std::vector<unsigned char> out(b, b + size);
    sat_free(buf);
    return out;
}
/* For creating a handle from another one: the thread-local message, else the parent's. */
inline void check_create(int32_t status, const char *parent_message) {
    if (status == SAT_OK) return;
    const char *tls = sat_last_error();
    throw Error(status, tls && *tls ? tls : (parent_message ? parent_message : ""));
}

/* Shared ownership of a C handle whose deleter also holds the handles it was made from
 * (`parents`): they are released only after Destroy(p) ran, so a parent never dies before
 * its child, and moving the C++ object that owns a parent changes nothing for the child. */
/* Base of the handle classes: movable (noexcept), not copyable. */
class MoveOnly {
protected:
    MoveOnly() = default;
    ~MoveOnly() = default;
    MoveOnly(const MoveOnly &) = delete;
    MoveOnly &operator=(const MoveOnly &) = delete;
    MoveOnly(MoveOnly &&) noexcept = default;
    MoveOnly &operator=(MoveOnly &&) noexcept = default;
};

template <class T, void (*Destroy)(T *)>
struct Deleter {
    std::vector<std::shared_ptr<void>> parents;  // released after Destroy ran
    bool closed = false;                         // close() destroyed the handle already
    void operator()(T *q) noexcept {
        if (!closed) Destroy(q);
    }
};

template <class T, void (*Destroy)(T *), class... Parents>
std::shared_ptr<T> own(T *p, std::shared_ptr<Parents>... parents) {
    return std::shared_ptr<T>(p, Deleter<T, Destroy>{{parents...}, false});
}

/* Destroys h's handle now through its *_destroy_checked function: throws sat::Error
 * (SAT_E_STATE) and keeps the handle while handles made from it live; else h becomes empty.
 * Copies of h held elsewhere (a child's deleter) only keep the parents' references. */
template <class T, void (*Destroy)(T *)>
void close(std::shared_ptr<T> &h, int32_t (*destroy_checked)(T *), const char *(*last_error)(const T *)) {
    if (!h) return;
    int32_t st = destroy_checked(h.get());
    if (st != SAT_OK) throw Error(st, last_error(h.get()));
    std::get_deleter<Deleter<T, Destroy>>(h)->closed = true;
    h.reset();
}

inline int64_t batch_of(std::size_t size, int64_t example, const char *what) {
    if (example <= 0 || size % static_cast<std::size_t>(example) != 0)
        throw Error(SAT_E_SHAPE, std::string(what) + ": " + std::to_string(size) +
                                     " values are not a whole number of examples of " +
                                     std::to_string(example));
    return static_cast<int64_t>(size / static_cast<std::size_t>(example));
}
inline void need(std::size_t have, int64_t want, const char *what) {
    if (want < 0 || have < static_cast<std::size_t>(want))
        throw Error(SAT_E_SHAPE, std::string(what) + ": buffer of " + std::to_string(have) +
                                     " values, need " + std::to_string(want));
}
}  // namespace detail

/* ------------------------------------------------------------------------- */
/* Options with the library's defaults                                        */
/* ------------------------------------------------------------------------- */

/** sat_context_opts with the library's defaults. */
inline sat_context_opts context_opts() {
    sat_context_opts o{};
    detail::check_tls(sat_context_opts_init(&o, sizeof o));
    return o;
}
/** sat_model_opts with the library's defaults and the given activation (SAT_ACT_*; the default,
 *  SAT_ACT_DEFAULT, is the spec's own: a preset's original activation, else SiLU). */
inline sat_model_opts model_opts(int32_t activation = SAT_ACT_DEFAULT) {
    sat_model_opts o{};
    detail::check_tls(sat_model_opts_init(&o, sizeof o));
    o.activation = activation;
    return o;
}
/** sat_onnx_import_opts with the library's defaults; replace_from / replace_to (SAT_ACT_*,
 *  -1: none) swap one activation kind for another on import, keeping the weights. */
inline sat_onnx_import_opts onnx_import_opts(int32_t replace_from = -1, int32_t replace_to = SAT_ACT_SILU) {
    sat_onnx_import_opts o{};
    detail::check_tls(sat_onnx_import_opts_init(&o, sizeof o));
    o.replace_act_from = replace_from;
    o.replace_act_to = replace_to;
    return o;
}
/** sat_onnx_export_opts with the library's defaults; opset 13 to 17, batch_dim 0 for a
 *  symbolic batch dimension or a fixed batch size. */
inline sat_onnx_export_opts onnx_export_opts(int32_t opset = 13, int32_t batch_dim = 0) {
    sat_onnx_export_opts o{};
    detail::check_tls(sat_onnx_export_opts_init(&o, sizeof o));
    o.opset = opset;
    o.batch_dim = batch_dim;
    return o;
}
/** sat_attack_opts with the library's defaults and the given radius, steps and method
 *  (SAT_ATTACK_*). */
inline sat_attack_opts attack_opts(float eps, int32_t steps = 10, int32_t method = SAT_ATTACK_PGD) {
    sat_attack_opts o{};
    detail::check_tls(sat_attack_opts_init(&o, sizeof o));
    o.eps = eps;
    o.steps = steps;
    o.method = method;
    return o;
}
/** sat_optimizer_opts with the library's defaults, the given kind (SAT_OPT_*) and
 *  learning rate. */
inline sat_optimizer_opts optimizer_opts(int32_t kind = SAT_OPT_SGD, float lr = 0.1f) {
    sat_optimizer_opts o{};
    detail::check_tls(sat_optimizer_opts_init(&o, sizeof o));
    o.kind = kind;
    o.lr = lr;
    return o;
}
/** sat_trainer_opts with the library's defaults, the given method (SAT_TRAIN_*), radius
 *  and attack steps. */
inline sat_trainer_opts trainer_opts(int32_t method, float eps, int32_t steps = 7) {
    sat_trainer_opts o{};
    detail::check_tls(sat_trainer_opts_init(&o, sizeof o));
    o.method = method;
    o.eps = eps;
    o.steps = steps;
    return o;
}
/** sat_eval_opts with the library's defaults and the given radius. */
inline sat_eval_opts eval_opts(float eps) {
    sat_eval_opts o{};
    detail::check_tls(sat_eval_opts_init(&o, sizeof o));
    o.eps = eps;
    return o;
}
/** sat_autoattack_opts with the library's defaults and the given radius, version (SAT_AA_*)
 *  and norm (SAT_NORM_*). */
inline sat_autoattack_opts autoattack_opts(float eps, int32_t version = SAT_AA_STANDARD,
                                           int32_t norm = SAT_NORM_LINF) {
    sat_autoattack_opts o{};
    detail::check_tls(sat_autoattack_opts_init(&o, sizeof o));
    o.eps = eps;
    o.version = version;
    o.norm = norm;
    return o;
}
/** sat_model_meta with the library's defaults (unknown threat model and accuracies). */
inline sat_model_meta model_meta() {
    sat_model_meta m{};
    detail::check_tls(sat_model_meta_init(&m, sizeof m));
    return m;
}

/** sat_exec_opts with the library's defaults, the given kind (SAT_EXEC_*) and largest
 *  batch (0: the model's). */
inline sat_exec_opts exec_opts(int32_t kind = SAT_EXEC_TRAIN, int64_t max_batch = 0) {
    sat_exec_opts o{};
    detail::check_tls(sat_exec_opts_init(&o, sizeof o));
    o.kind = kind;
    o.max_batch = max_batch;
    return o;
}

/** What an AutoAttack run reports (Model::autoattack, CallbackModel::autoattack). */
struct AutoAttackReport {
    sat_autoattack_result result{};  /**< accuracies after each attack, flags, square_only */
    std::vector<int32_t> outcome;    /**< per example: SAT_AA_ROBUST, SAT_AA_MISCLASSIFIED or
                                          the position in result.attacks that broke it */
    std::vector<float> x_adv;        /**< adversarial examples of the broken ones, x elsewhere */
};

namespace detail {
/* sat_autoattack and sat_callback_autoattack share their signature: one wrapper for both.
 * Empty x_adv / outcome spans pass NULL. */
template <class H, class Check>
sat_autoattack_result autoattack(int32_t (*fn)(H *, const sat_autoattack_opts *, const float *,
                                               const int32_t *, int64_t, float *, int32_t *,
                                               sat_autoattack_result *),
                                 H *h, int64_t example_size, const sat_autoattack_opts &opts,
                                 span<const float> x, span<const int32_t> labels,
                                 span<float> x_adv, span<int32_t> outcome, Check check) {
    int64_t n = batch_of(x.size(), example_size, "autoattack");
    if (labels.size() != static_cast<std::size_t>(n))
        throw Error(SAT_E_SHAPE, "autoattack: " + std::to_string(labels.size()) +
                                     " labels for " + std::to_string(n) + " examples");
    if (!x_adv.empty()) need(x_adv.size(), static_cast<int64_t>(x.size()), "autoattack x_adv");
    if (!outcome.empty()) need(outcome.size(), n, "autoattack outcome");
    sat_autoattack_result r{};
    r.struct_size = sizeof r;
    check(fn(h, &opts, x.data(), labels.data(), n, x_adv.empty() ? nullptr : x_adv.data(),
             outcome.empty() ? nullptr : outcome.data(), &r));
    return r;
}
}  // namespace detail

/** The tensor of `layer` with the given role (SAT_TENSOR_*), from its params[] or state[]
 *  (roles are unique within a layer); nullptr when the layer has none. */
inline const sat_tensor_info *find_tensor(const sat_layer_info &layer, int32_t role) noexcept {
    for (int32_t i = 0; i < layer.num_params && i < SAT_LAYER_MAX_TENSORS; i++)
        if (layer.params[i].role == role) return &layer.params[i];
    for (int32_t i = 0; i < layer.num_state && i < SAT_LAYER_MAX_TENSORS; i++)
        if (layer.state[i].role == role) return &layer.state[i];
    return nullptr;
}

/** Version of the loaded library (sat_version_string()). */
inline std::string version() { return sat_version_string(); }

/* ------------------------------------------------------------------------- */
/* Context                                                                    */
/* ------------------------------------------------------------------------- */

/** Owns a sat_context: threads, seed, log callback and allocator of the handles made with
 *  it. Models and datasets keep it alive. */
class Context : detail::MoveOnly {
public:
    /** A context with `num_threads` threads and a default seed. */
    explicit Context(int32_t num_threads = 1, uint64_t seed = 0) {
        sat_context_opts o = context_opts();
        o.num_threads = num_threads;
        o.seed = seed;
        create(o);
    }
    /** A context with all options (see context_opts()). */
    explicit Context(const sat_context_opts &opts) { create(opts); }

    /** The C handle (still owned by this object). */
    sat_context *get() const noexcept { return h_.get(); }
    /** sat_context_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_context_last_error(h_.get()); }
    /** Changes the thread count (1..256) for later calls. */
    void set_num_threads(int32_t n) {
        detail::check(sat_context_set_num_threads(h_.get(), n), last_error());
    }
    /** Sets (an empty function: removes) the progress function of the long calls made with
     *  this context's handles: attacks, evaluation, training steps, data set loading. It
     *  is called on the thread that makes the call; to cancel from another thread, let it
     *  read a flag (a std::atomic<bool>) that thread sets. See ProgressFn. */
    void set_progress(ProgressFn fn) {
        progress_->fn = std::move(fn);
        detail::check(sat_context_set_progress(h_.get(), progress_->fn ? detail::ProgressState::call : nullptr,
                                               progress_.get()),
                      last_error());
    }
    /** Destroys the context now (sat_context_destroy_checked()). Throws sat::Error with
     *  SAT_E_STATE, and stays usable, while a model or data set made with it lives; after
     *  success get() is nullptr. Without close(), the context goes with its last user. */
    void close() {
        detail::close<sat_context, sat_context_destroy>(h_, sat_context_destroy_checked,
                                                       sat_context_last_error);
    }

private:
    friend class Model;
    friend class CallbackModel;
    friend class Dataset;
    void create(const sat_context_opts &o) {
        /* The progress state lives as long as the C context, which models keep alive. */
        progress_ = std::make_shared<detail::ProgressState>();
        sat_context *c = nullptr;
        detail::check_tls(sat_context_create(&o, &c));
        h_ = detail::own<sat_context, sat_context_destroy>(c, progress_);
    }
    std::shared_ptr<detail::ProgressState> progress_;
    std::shared_ptr<sat_context> h_;
};

/* ------------------------------------------------------------------------- */
/* Model                                                                      */
/* ------------------------------------------------------------------------- */

/** Input shape of one example and the number of classes. */
struct Shape {
    int32_t channels = 0;     /**< channels of an input example */
    int32_t height = 0;       /**< height of an input example */
    int32_t width = 0;        /**< width of an input example */
    int32_t num_classes = 0;  /**< number of classes (logits per example) */
    /** Floats per input example: channels * height * width. */
    int64_t example_size() const noexcept { return int64_t(channels) * height * width; }
};

/** Result of Model::input_gradient. */
struct InputGradient {
    std::vector<float> losses;  /**< cross-entropy per example */
    std::vector<float> grad;    /**< gradient of the summed losses with respect to x */
    std::vector<float> logits;  /**< logits, n * num_classes */
};

/** Owns a sat_model. Keeps its context alive; optimizers and trainers keep it alive. */
class Model : detail::MoveOnly {
public:
    /** A model from a spec (see sat_model_create()) with default options. */
    Model(Context &ctx, const std::string &spec) { create(ctx, spec, nullptr); }
    /** A model from a spec with the given options (see model_opts()). */
    Model(Context &ctx, const std::string &spec, const sat_model_opts &opts) {
        create(ctx, spec, &opts);
    }
    /** Takes ownership of a handle from the C API, created with ctx. */
    Model(Context &ctx, sat_model *owned) : Model(ctx.h_, owned) {}

    /** The spec text of a preset ("mlp", "madry-cnn", "small-cnn", "resnet20"). */
    static std::string preset_spec(const std::string &name, int32_t channels, int32_t height,
                                   int32_t width, int32_t num_classes,
                                   span<const float> mean = {}, span<const float> std = {}) {
        char *text = nullptr;
        detail::check_tls(sat_preset_spec(name.c_str(), channels, height, width, num_classes,
                                          mean.empty() ? nullptr : mean.data(),
                                          std.empty() ? nullptr : std.data(), &text));
        std::string s(text);
        sat_free(text);
        return s;
    }
    /** A preset model without input normalisation (mean 0, std 1). */
    static Model preset(Context &ctx, const std::string &name, int32_t channels, int32_t height,
                        int32_t width, int32_t num_classes,
                        const sat_model_opts &opts = model_opts()) {
        return Model(ctx, preset_spec(name, channels, height, width, num_classes), opts);
    }
    /** A preset model normalising its input by mean and std (`channels` values each). */
    static Model preset(Context &ctx, const std::string &name, int32_t channels, int32_t height,
                        int32_t width, int32_t num_classes, span<const float> mean,
                        span<const float> std, const sat_model_opts &opts = model_opts()) {
        if (mean.size() != static_cast<std::size_t>(channels) ||
            std.size() != static_cast<std::size_t>(channels))
            throw Error(SAT_E_SHAPE, "preset: mean and std need " + std::to_string(channels) +
                                         " values each, got " + std::to_string(mean.size()) +
                                         " and " + std::to_string(std.size()));
        return Model(ctx, preset_spec(name, channels, height, width, num_classes, mean, std),
                     opts);
    }
    /** Loads a model file (sat_model_load()); meta, if given, receives its metadata. */
    static Model load(Context &ctx, const std::string &path, sat_model_meta *meta = nullptr) {
        sat_model *m = nullptr;
        detail::check_tls(sat_model_load(ctx.get(), path.c_str(), meta, &m));
        return Model(ctx, m);
    }
    /** Loads a model from the bytes of a model file (sat_model_load_buffer()). */
    static Model load_buffer(Context &ctx, span<const unsigned char> data,
                             sat_model_meta *meta = nullptr) {
        sat_model *m = nullptr;
        detail::check_tls(sat_model_load_buffer(ctx.get(), data.data(), data.size(), meta, &m));
        return Model(ctx, m);
    }
    /** Builds a model from an ONNX file (sat_model_load_onnx()); opts may be null for the
     *  defaults (onnx_import_opts()). An op libsat lacks throws sat::Error with
     *  SAT_E_UNSUPPORTED and the node's name and op type in what(). */
    static Model load_onnx(Context &ctx, const std::string &path, const sat_onnx_import_opts *opts = nullptr) {
        sat_model *m = nullptr;
        detail::check_tls(sat_model_load_onnx(ctx.get(), path.c_str(), opts, &m));
        return Model(ctx, m);
    }
    /** Builds a model from the bytes of an ONNX file (sat_model_load_onnx_buffer()). */
    static Model load_onnx_buffer(Context &ctx, span<const unsigned char> data,
                                  const sat_onnx_import_opts *opts = nullptr) {
        sat_model *m = nullptr;
        detail::check_tls(sat_model_load_onnx_buffer(ctx.get(), data.data(), data.size(), opts, &m));
        return Model(ctx, m);
    }

    /** The C handle (still owned by this object). */
    sat_model *get() const noexcept { return h_.get(); }
    /** sat_model_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_model_last_error(h_.get()); }

    /** Input shape and number of classes. */
    const Shape &shape() const noexcept { return shape_; }
    /** Number of classes (logits per example). */
    int32_t num_classes() const noexcept { return shape_.num_classes; }
    /** Floats per input example. */
    int64_t example_size() const noexcept { return shape_.example_size(); }
    /** The largest batch run in one piece. */
    int64_t max_batch() const noexcept { return sat_model_max_batch(h_.get()); }
    /** The normalised spec text the model was built from. */
    std::string spec() const { return sat_model_spec(h_.get()); }
    /** The options the model was created with. */
    sat_model_opts opts() const {
        sat_model_opts o{};
        o.struct_size = sizeof o;
        check(sat_model_get_opts(h_.get(), &o));
        return o;
    }
    /** Destroys the model now (sat_model_destroy_checked()). Throws sat::Error with
     *  SAT_E_STATE, and stays usable, while an optimizer or trainer made from it lives;
     *  after success get() is nullptr. Without close(), the model goes with its last user. */
    void close() {
        detail::close<sat_model, sat_model_destroy>(h_, sat_model_destroy_checked, sat_model_last_error);
        ctx_.reset();
    }
    /** A deep copy on the same context (sat_model_clone()). */
    Model clone() const {
        sat_model *m = nullptr;
        check(sat_model_clone(h_.get(), &m));
        return Model(ctx_, m);
    }
    /** Changes the backward-activation overrides (sat_model_set_backward()). */
    void set_backward(int32_t attack_act, float attack_param, int32_t train_act,
                      float train_param) {
        check(sat_model_set_backward(h_.get(), attack_act, attack_param, train_act, train_param));
    }
    /** Activation checkpointing on or off (sat_model_set_activation_checkpointing()). */
    void set_activation_checkpointing(bool on) {
        check(sat_model_set_activation_checkpointing(h_.get(), on ? 1 : 0));
    }

    /** Number of trainable parameters. */
    int64_t param_count() const noexcept { return sat_model_param_count(h_.get()); }
    /** The flat parameter block (writable) and gradient block, valid for the model's life. */
    span<float> params() noexcept {
        return {sat_model_params(h_.get()), static_cast<std::size_t>(param_count())};
    }
    /** The flat gradient block, filled by train_backward(). */
    span<float> grads() noexcept {
        return {sat_model_grads(h_.get()), static_cast<std::size_t>(param_count())};
    }
    /** The batch-norm running statistics. */
    span<float> state() noexcept {
        return {sat_model_state(h_.get()),
                static_cast<std::size_t>(sat_model_state_count(h_.get()))};
    }

    /** Logits into `logits` (n * num_classes); n is x.size() / example_size(). */
    void forward(span<const float> x, span<float> logits) {
        int64_t n = detail::batch_of(x.size(), example_size(), "forward");
        detail::need(logits.size(), n * num_classes(), "forward logits");
        check(sat_model_forward(h_.get(), x.data(), n, logits.data()));
    }
    /** Logits of a batch as a new vector (n * num_classes). */
    std::vector<float> forward(span<const float> x) {
        std::vector<float> out(
            static_cast<std::size_t>(detail::batch_of(x.size(), example_size(), "forward") *
                                     num_classes()));
        forward(x, out);
        return out;
    }

    /** Per-example CE losses, gradient of their sum w.r.t. x, and logits. */
    InputGradient input_gradient(span<const float> x, span<const int32_t> labels) {
        int64_t n = batch_of_labels(x, labels, "input_gradient");
        InputGradient r;
        r.losses.resize(static_cast<std::size_t>(n));
        r.grad.resize(x.size());
        r.logits.resize(static_cast<std::size_t>(n * num_classes()));
        check(sat_model_input_gradient(h_.get(), x.data(), labels.data(), n, r.losses.data(),
                                       r.grad.data(), r.logits.data()));
        return r;
    }
    /** Gradient only, into a caller buffer of x.size() values. */
    void input_gradient(span<const float> x, span<const int32_t> labels, span<float> grad) {
        int64_t n = batch_of_labels(x, labels, "input_gradient");
        detail::need(grad.size(), static_cast<int64_t>(x.size()), "input_gradient grad");
        check(sat_model_input_gradient(h_.get(), x.data(), labels.data(), n, nullptr,
                                       grad.data(), nullptr));
    }

    /** Mean CE and its parameter gradient into grads(); returns the loss. */
    float train_backward(span<const float> x, span<const int32_t> labels,
                         float label_smoothing = 0.0f, int64_t *correct = nullptr) {
        int64_t n = batch_of_labels(x, labels, "train_backward");
        float loss = 0.0f;
        check(sat_model_train_backward(h_.get(), x.data(), labels.data(), n, label_smoothing,
                                       &loss, correct));
        return loss;
    }

    /** Adversarial examples into x_adv (x.size() values). targets may be empty. */
    void attack(const sat_attack_opts &opts, span<const float> x, span<const int32_t> labels,
                span<float> x_adv, span<const int32_t> targets = {},
                sat_attack_trace *trace = nullptr) {
        int64_t n = batch_of_labels(x, labels, "attack");
        detail::need(x_adv.size(), static_cast<int64_t>(x.size()), "attack x_adv");
        if (!targets.empty()) detail::need(targets.size(), n, "attack targets");
        check(sat_attack(h_.get(), &opts, x.data(), labels.data(),
                         targets.empty() ? nullptr : targets.data(), n, x_adv.data(), trace));
    }
    /** Adversarial examples as a new vector (x.size() values). */
    std::vector<float> attack(const sat_attack_opts &opts, span<const float> x,
                              span<const int32_t> labels) {
        std::vector<float> out(x.size());
        attack(opts, x, labels, out);
        return out;
    }

    /** Clean and robust accuracy (sat_evaluate()). */
    sat_eval_result evaluate(const sat_eval_opts &opts, span<const float> x,
                             span<const int32_t> labels) {
        int64_t n = batch_of_labels(x, labels, "evaluate");
        sat_eval_result r{};
        r.struct_size = sizeof r;
        check(sat_evaluate(h_.get(), &opts, x.data(), labels.data(), n, &r));
        return r;
    }

    /** AutoAttack (sat_autoattack()) into caller buffers: x_adv (x.size() values) and
     *  outcome (one per example) may be empty spans (not wanted). */
    sat_autoattack_result autoattack(const sat_autoattack_opts &opts, span<const float> x,
                                     span<const int32_t> labels, span<float> x_adv,
                                     span<int32_t> outcome) {
        return detail::autoattack(sat_autoattack, h_.get(), example_size(), opts, x, labels,
                                  x_adv, outcome, [this](int32_t st) { check(st); });
    }
    /** AutoAttack with the per-example outcomes and adversarial examples as vectors. */
    AutoAttackReport autoattack(const sat_autoattack_opts &opts, span<const float> x,
                                span<const int32_t> labels) {
        AutoAttackReport r;
        r.x_adv.resize(x.size());
        r.outcome.resize(labels.size());
        r.result = autoattack(opts, x, labels, r.x_adv, r.outcome);
        return r;
    }

    /** Number of layers, the input layer included (sat_model_layer_count()). */
    int32_t layer_count() const {
        int32_t n = sat_model_layer_count(h_.get());
        if (n < 0) throw Error(n, sat_last_error());
        return n;
    }
    /** Layer `index` (0 = input, spec order): op, shape, inputs, activation and where its
     *  tensors are (sat_model_layer_info()). */
    sat_layer_info layer_info(int32_t index) const {
        sat_layer_info li{};
        li.struct_size = sizeof li;
        check(sat_model_layer_info(h_.get(), index, &li));
        return li;
    }
    /** Every layer, in spec order (a topological order). */
    std::vector<sat_layer_info> layers() const {
        std::vector<sat_layer_info> out;
        for (int32_t i = 0, n = layer_count(); i < n; i++) out.push_back(layer_info(i));
        return out;
    }
    /** The tensor of `layer` with the given role (SAT_TENSOR_*) as a writable view of the
     *  parameter or state block: row-major in the shape its sat_tensor_info reports. An
     *  empty span when the layer has no such tensor. */
    span<float> tensor(const sat_layer_info &layer, int32_t role) {
        const sat_tensor_info *t = find_tensor(layer, role);
        if (!t) return {};
        const bool in_state = t >= layer.state && t < layer.state + SAT_LAYER_MAX_TENSORS;
        span<float> block = in_state ? state() : params();
        if (t->offset < 0 || t->count < 0 ||
            static_cast<std::size_t>(t->offset + t->count) > block.size())
            throw Error(SAT_E_INVALID_ARG, "tensor: the layer does not belong to this model");
        return block.subspan(static_cast<std::size_t>(t->offset),
                             static_cast<std::size_t>(t->count));
    }

    /** Saves a model file, atomically (sat_model_save()). */
    void save(const std::string &path, const sat_model_meta *meta = nullptr) const {
        check(sat_model_save(h_.get(), meta, path.c_str()));
    }
    /** The bytes of a model file (sat_model_save_buffer()). */
    std::vector<unsigned char> save_buffer(const sat_model_meta *meta = nullptr) const {
        void *buf = nullptr;
        std::size_t size = 0;
        check(sat_model_save_buffer(h_.get(), meta, &buf, &size));
        return detail::take_bytes(buf, size);
    }
    /** Writes the model as an ONNX file, atomically (sat_model_save_onnx()); opts may be
     *  null for the defaults (onnx_export_opts()). */
    void save_onnx(const std::string &path, const sat_onnx_export_opts *opts = nullptr) const {
        check(sat_model_save_onnx(h_.get(), path.c_str(), opts));
    }
    /** The bytes of the model's ONNX file (sat_model_save_onnx_buffer()). */
    std::vector<unsigned char> save_onnx_buffer(const sat_onnx_export_opts *opts = nullptr) const {
        void *buf = nullptr;
        std::size_t size = 0;
        check(sat_model_save_onnx_buffer(h_.get(), opts, &buf, &size));
        return detail::take_bytes(buf, size);
    }

private:
    friend class Optimizer;
    friend class Trainer;
    friend class Exec;
    Model(std::shared_ptr<sat_context> ctx, sat_model *owned)
        : ctx_(std::move(ctx)), h_(detail::own<sat_model, sat_model_destroy>(owned, ctx_)) {
        load_shape();
    }
    void create(Context &ctx, const std::string &spec, const sat_model_opts *opts) {
        sat_model *m = nullptr;
        detail::check_tls(sat_model_create(ctx.get(), spec.c_str(), opts, &m));
        ctx_ = ctx.h_;
        h_ = detail::own<sat_model, sat_model_destroy>(m, ctx_);
        load_shape();
    }
    void load_shape() {
        check(sat_model_shape(h_.get(), &shape_.channels, &shape_.height, &shape_.width,
                              &shape_.num_classes));
    }
    void check(int32_t status) const { detail::check(status, last_error()); }
    int64_t batch_of_labels(span<const float> x, span<const int32_t> labels,
                            const char *what) const {
        int64_t n = detail::batch_of(x.size(), example_size(), what);
        if (labels.size() != static_cast<std::size_t>(n))
            throw Error(SAT_E_SHAPE, std::string(what) + ": " + std::to_string(labels.size()) +
                                         " labels for " + std::to_string(n) + " examples");
        return n;
    }

    std::shared_ptr<sat_context> ctx_;  // for clone(); h_'s deleter holds it too
    std::shared_ptr<sat_model> h_;
    Shape shape_;
};

/* ------------------------------------------------------------------------- */
/* Executions                                                                 */
/* ------------------------------------------------------------------------- */

/** Owns a sat_exec: the memory that runs a model, for a loss of the host's own (forward,
 *  then backward from dL/dlogits) and for running one model on several threads (one Exec
 *  per thread). Keeps its model alive. */
class Exec : detail::MoveOnly {
public:
    /** An execution of model of the given kind (SAT_EXEC_*) and largest batch (0: the
     *  model's). */
    explicit Exec(Model &model, int32_t kind = SAT_EXEC_TRAIN, int64_t max_batch = 0)
        : Exec(model, exec_opts(kind, max_batch)) {}
    /** An execution with all options (see exec_opts()). */
    Exec(Model &model, const sat_exec_opts &opts) : sizes_(sizes_of(model)) {
        sat_exec *e = nullptr;
        detail::check_create(sat_exec_create(model.get(), &opts, &e), model.last_error());
        h_ = detail::own<sat_exec, sat_exec_destroy>(e, model.h_);
    }
    /** The model's own execution (sat_model_exec()): the one its own calls use, so it
     *  costs no second arena. Borrowed from the model, which this object keeps alive. */
    static Exec of_model(Model &model) {
        sat_exec *e = sat_model_exec(model.get());
        if (!e) throw Error(SAT_E_NOMEM, model.last_error());
        return Exec(model, e);
    }

    /** The C handle (still owned by this object, or by its model for of_model()). */
    sat_exec *get() const noexcept { return h_.get(); }
    /** sat_exec_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_exec_last_error(h_.get()); }

    /** Forward pass into logits (n * num_classes), batch norm in bn_mode (SAT_BN_*); keeps
     *  what backward() needs. n is x.size() / example_size. */
    void forward(span<const float> x, span<float> logits, int32_t bn_mode = SAT_BN_INFERENCE) {
        int64_t n = detail::batch_of(x.size(), sizes_.example, "Exec::forward");
        detail::need(logits.size(), n * sizes_.classes, "Exec::forward logits");
        check(sat_exec_forward(h_.get(), x.data(), n, bn_mode, logits.data()));
    }
    /** Logits of a batch as a new vector. */
    std::vector<float> forward(span<const float> x, int32_t bn_mode = SAT_BN_INFERENCE) {
        std::vector<float> out(static_cast<std::size_t>(
            detail::batch_of(x.size(), sizes_.example, "Exec::forward") * sizes_.classes));
        forward(x, out, bn_mode);
        return out;
    }
    /** The batch size of the last forward (sat_exec_last_batch()); 0 when there is none. */
    int64_t last_batch() const noexcept { return sat_exec_last_batch(h_.get()); }
    /** Backward of the last forward (n = last_batch() examples) from dL/dlogits
     *  (n * num_classes) to the input (dx, n * example_size values) and/or the parameters
     *  (param_grads, param_count values, e.g. Model::grads()); an empty span is not wanted. */
    void backward(span<const float> dlogits, span<float> dx, span<float> param_grads = {}) {
        const int64_t n = last_batch();
        if (n > 0) detail::need(dlogits.size(), n * sizes_.classes, "Exec::backward dlogits");
        if (!dx.empty()) detail::need(dx.size(), n * sizes_.example, "Exec::backward dx");
        if (!param_grads.empty()) detail::need(param_grads.size(), sizes_.params, "Exec::backward param_grads");
        check(sat_exec_backward(h_.get(), dlogits.data(), dx.empty() ? nullptr : dx.data(),
                                param_grads.empty() ? nullptr : param_grads.data()));
    }
    /** The input gradient of the last forward as a new vector. */
    std::vector<float> input_gradient(span<const float> dlogits) {
        /* one value at least, so that without a forward the library says so */
        const int64_t n = last_batch();
        std::vector<float> dx(static_cast<std::size_t>(n > 0 ? n * sizes_.example : 1));
        backward(dlogits, dx);
        return dx;
    }

private:
    struct Sizes {
        int64_t example, classes, params;
    };
    static Sizes sizes_of(const Model &m) { return {m.example_size(), m.num_classes(), m.param_count()}; }
    static void keep(sat_exec *) noexcept {}
    Exec(Model &model, sat_exec *borrowed) : sizes_(sizes_of(model)) {
        /* The model frees its own execution: this only keeps the model alive. */
        h_ = detail::own<sat_exec, keep>(borrowed, model.h_);
    }
    void check(int32_t status) const { detail::check(status, last_error()); }

    Sizes sizes_;
    std::shared_ptr<sat_exec> h_;
};

/* ------------------------------------------------------------------------- */
/* Models outside libsat                                                      */
/* ------------------------------------------------------------------------- */

/**
 * Owns a sat_callback_model: a classifier written in C++ (any callable) that libsat's attacks
 * and AutoAttack run on. Keeps its context alive.
 *
 * The callables run on the thread of the attack call, with batches of 1..max_batch
 * examples. An exception thrown by a callable does not cross the C library: it is caught
 * at the boundary, the library stops the call (SAT_E_ABORTED), and the wrapper rethrows
 * the original exception from attack() / autoattack(). The model stays usable.
 */
class CallbackModel : detail::MoveOnly {
public:
    /** logits(x, n, logits): writes logits[n * num_classes] for x[n * C*H*W]. */
    using LogitsFn = std::function<void(span<const float> x, int64_t n, span<float> logits)>;
    /** input_grad(x, n, dlogits, dx): writes dx[n * C*H*W], the gradient with respect to x
     *  of sum_i sum_k dlogits[i * num_classes + k] * logits_k(x_i). */
    using InputGradFn = std::function<void(span<const float> x, int64_t n,
                                           span<const float> dlogits, span<float> dx)>;

    /** A model of input shape (channels, height, width) and num_classes classes. Without
     *  input_grad only gradient-free attacks (Square) run; the others throw sat::Error
     *  SAT_E_UNSUPPORTED. */
    CallbackModel(Context &ctx, int32_t channels, int32_t height, int32_t width,
                  int32_t num_classes, LogitsFn logits, InputGradFn input_grad = nullptr,
                  int32_t max_batch = 128)
        : state_(std::make_shared<State>()) {
        if (!logits) throw Error(SAT_E_INVALID_ARG, "CallbackModel: logits callable is empty");
        state_->logits = std::move(logits);
        state_->input_grad = std::move(input_grad);
        shape_ = Shape{channels, height, width, num_classes};
        state_->shape = shape_;
        sat_callback_model_opts o{};
        detail::check_tls(sat_callback_model_opts_init(&o, sizeof o));
        o.channels = channels;
        o.height = height;
        o.width = width;
        o.num_classes = num_classes;
        o.max_batch = max_batch;
        o.logits_fn = &logits_trampoline;
        o.input_grad_fn = state_->input_grad ? &input_grad_trampoline : nullptr;
        o.user = state_.get();
        sat_callback_model *m = nullptr;
        detail::check_tls(sat_callback_model_create(ctx.get(), &o, &m));
        // the handle's deleter holds the callables (its `user`) and the context
        h_ = detail::own<sat_callback_model, sat_callback_model_destroy>(m, ctx.h_, state_);
    }

    /** The C handle (still owned by this object). */
    sat_callback_model *get() const noexcept { return h_.get(); }
    /** sat_callback_model_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_callback_model_last_error(h_.get()); }
    /** Input shape and number of classes. */
    const Shape &shape() const noexcept { return shape_; }
    /** Floats per input example. */
    int64_t example_size() const noexcept { return shape_.example_size(); }

    /** Adversarial examples into x_adv (x.size() values), sat_callback_attack(). targets may
     *  be empty. */
    void attack(const sat_attack_opts &opts, span<const float> x, span<const int32_t> labels,
                span<float> x_adv, span<const int32_t> targets = {},
                sat_attack_trace *trace = nullptr) {
        int64_t n = detail::batch_of(x.size(), example_size(), "attack");
        if (labels.size() != static_cast<std::size_t>(n))
            throw Error(SAT_E_SHAPE, "attack: " + std::to_string(labels.size()) +
                                         " labels for " + std::to_string(n) + " examples");
        detail::need(x_adv.size(), static_cast<int64_t>(x.size()), "attack x_adv");
        if (!targets.empty()) detail::need(targets.size(), n, "attack targets");
        check(sat_callback_attack(h_.get(), &opts, x.data(), labels.data(),
                                  targets.empty() ? nullptr : targets.data(), n, x_adv.data(),
                                  trace));
    }
    /** Adversarial examples as a new vector (x.size() values). */
    std::vector<float> attack(const sat_attack_opts &opts, span<const float> x,
                              span<const int32_t> labels) {
        std::vector<float> out(x.size());
        attack(opts, x, labels, out);
        return out;
    }
    /** AutoAttack (sat_callback_autoattack()) into caller buffers, which may be empty. */
    sat_autoattack_result autoattack(const sat_autoattack_opts &opts, span<const float> x,
                                     span<const int32_t> labels, span<float> x_adv,
                                     span<int32_t> outcome) {
        return detail::autoattack(sat_callback_autoattack, h_.get(), example_size(), opts, x,
                                  labels, x_adv, outcome, [this](int32_t st) { check(st); });
    }
    /** AutoAttack with the per-example outcomes and adversarial examples as vectors. */
    AutoAttackReport autoattack(const sat_autoattack_opts &opts, span<const float> x,
                                span<const int32_t> labels) {
        AutoAttackReport r;
        r.x_adv.resize(x.size());
        r.outcome.resize(labels.size());
        r.result = autoattack(opts, x, labels, r.x_adv, r.outcome);
        return r;
    }

private:
    /* Lives on the heap at a fixed address (the C model's `user`), so moving the
     * CallbackModel object changes nothing for the library. */
    struct State {
        LogitsFn logits;
        InputGradFn input_grad;
        Shape shape;
        std::exception_ptr error;  // what a callable threw, rethrown by check()
    };

    static int32_t logits_trampoline(void *user, const float *x, int64_t n, float *logits) {
        State *s = static_cast<State *>(user);
        try {
            s->logits(span<const float>(x, static_cast<std::size_t>(n * s->shape.example_size())),
                      n, span<float>(logits, static_cast<std::size_t>(n * s->shape.num_classes)));
            return 0;
        } catch (...) {
            s->error = std::current_exception();
            return 1;
        }
    }
    static int32_t input_grad_trampoline(void *user, const float *x, int64_t n,
                                         const float *dlogits, float *dx) {
        State *s = static_cast<State *>(user);
        const std::size_t xs = static_cast<std::size_t>(n * s->shape.example_size());
        try {
            s->input_grad(span<const float>(x, xs), n,
                          span<const float>(dlogits,
                                            static_cast<std::size_t>(n * s->shape.num_classes)),
                          span<float>(dx, xs));
            return 0;
        } catch (...) {
            s->error = std::current_exception();
            return 1;
        }
    }
    void check(int32_t status) {
        std::exception_ptr thrown = std::move(state_->error);
        state_->error = nullptr;
        if (thrown && status == SAT_E_ABORTED) std::rethrow_exception(thrown);
        detail::check(status, last_error());
    }

    std::shared_ptr<State> state_;
    std::shared_ptr<sat_callback_model> h_;
    Shape shape_;
};

/* ------------------------------------------------------------------------- */
/* Optimizer and Trainer                                                      */
/* ------------------------------------------------------------------------- */

/** Owns a sat_optimizer; keeps its model alive. */
class Optimizer : detail::MoveOnly {
public:
    /** An optimizer for model (see optimizer_opts()). */
    Optimizer(Model &model, const sat_optimizer_opts &opts)
        : num_params_(sat_model_param_count(model.get())) {
        sat_optimizer *o = nullptr;
        detail::check_create(sat_optimizer_create(model.get(), &opts, &o), model.last_error());
        h_ = detail::own<sat_optimizer, sat_optimizer_destroy>(o, model.h_);
    }
    /** The C handle (still owned by this object). */
    sat_optimizer *get() const noexcept { return h_.get(); }
    /** sat_optimizer_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_optimizer_last_error(h_.get()); }
    /** One update from the model's gradient block (sat_optimizer_step()). */
    void step() { detail::check(sat_optimizer_step(h_.get()), last_error()); }
    /** Learning rate of the next step. */
    float lr() const noexcept { return sat_optimizer_lr(h_.get()); }
    /** Steps applied so far. */
    int64_t step_count() const noexcept { return sat_optimizer_step_count(h_.get()); }
    /** Sets the step count, e.g. to resume a schedule. */
    void set_step_count(int64_t step) {
        detail::check(sat_optimizer_set_step_count(h_.get(), step), last_error());
    }
    /** The optimizer's flat state block. */
    span<float> state() noexcept {
        int64_t count = 0;
        float *p = sat_optimizer_state(h_.get(), &count);
        return {p, static_cast<std::size_t>(count)};
    }

    /** Sets the base learning rate, which the schedule scales (sat_optimizer_set_lr()). */
    void set_lr(float lr) { detail::check(sat_optimizer_set_lr(h_.get(), lr), last_error()); }
    /** The base learning rate (sat_optimizer_base_lr()). */
    float base_lr() const noexcept { return sat_optimizer_base_lr(h_.get()); }
    /** Scales the learning rate of parameters [offset, offset + count) of the flat block
     *  (sat_optimizer_set_lr_scale()). */
    void set_lr_scale(int64_t offset, int64_t count, float scale) {
        detail::check(sat_optimizer_set_lr_scale(h_.get(), offset, count, scale), last_error());
    }
    /** The per-parameter learning-rate scales (sat_optimizer_get_lr_scale()). */
    std::vector<float> lr_scale() const {
        std::vector<float> out(static_cast<std::size_t>(num_params_));
        detail::check(sat_optimizer_get_lr_scale(h_.get(), out.data()), last_error());
        return out;
    }
    /** Sets the freeze mask, one 0/1 per parameter (sat_optimizer_set_frozen()); an empty
     *  span unfreezes everything. */
    void set_frozen(span<const uint8_t> mask) {
        if (!mask.empty()) detail::need(mask.size(), num_params_, "set_frozen");
        detail::check(sat_optimizer_set_frozen(h_.get(), mask.empty() ? nullptr : mask.data()),
                      last_error());
    }
    /** The freeze mask, 1 = frozen (sat_optimizer_get_frozen()). */
    std::vector<uint8_t> frozen() const {
        std::vector<uint8_t> out(static_cast<std::size_t>(num_params_));
        detail::check(sat_optimizer_get_frozen(h_.get(), out.data()), last_error());
        return out;
    }
    /** Saves the model and this optimizer (sat_optimizer_checkpoint_save()). */
    void save_checkpoint(const std::string &path, const sat_model_meta *meta = nullptr) const {
        detail::check(sat_optimizer_checkpoint_save(h_.get(), meta, path.c_str()), last_error());
    }
    /** Restores a sat_optimizer_checkpoint_save() file into the model and this optimizer
     *  (sat_optimizer_checkpoint_load()); returns the stored meta. */
    sat_model_meta load_checkpoint(const std::string &path) {
        sat_model_meta meta = model_meta();
        detail::check(sat_optimizer_checkpoint_load(h_.get(), path.c_str(), &meta), last_error());
        return meta;
    }
    /** Destroys the optimizer now (sat_optimizer_destroy_checked()). Throws sat::Error with
     *  SAT_E_STATE, and stays usable, while a trainer uses it; after success get() is
     *  nullptr. */
    void close() {
        detail::close<sat_optimizer, sat_optimizer_destroy>(h_, sat_optimizer_destroy_checked,
                                                           sat_optimizer_last_error);
    }

private:
    friend class Trainer;
    int64_t num_params_;
    std::shared_ptr<sat_optimizer> h_;
};

/** Synchronised batch norm's reduction (sat_bn_reduce_fn): replace `sums` in place by their
 *  sums over all ranks (an MPI_Allreduce of doubles) and return true. Returning false stops
 *  the trainer's call (sat::Error, SAT_E_ABORTED); an exception it throws stops it too and is
 *  thrown again by it. Nothing is changed in either case. */
using BnReduceFn = std::function<bool(span<double> sums)>;

/** Gradient-ready callback (sat_grad_ready_fn): elements [offset, offset + count) of the
 *  model's grads() are final for this compute(); start their reduction (e.g. an
 *  MPI_Iallreduce, waited for after compute() returns) and return true. Returning false or
 *  throwing stops compute() as for BnReduceFn. */
using GradReadyFn = std::function<bool(int64_t offset, int64_t count)>;

/** Owns a sat_trainer; keeps its model and optimizer alive. */
class Trainer : detail::MoveOnly {
public:
    /** Uses model and opt, and keeps their handles alive as long as it lives: the
     *  sat::Model and sat::Optimizer objects may be moved or destroyed meanwhile. */
    Trainer(Model &model, Optimizer &opt, const sat_trainer_opts &opts)
        : example_size_(model.example_size()) {
        create(model, opt, opts);
    }
    /** A data-parallel trainer: opts' bn_reduce and bn_reduce_user are set to call `reduce`
     *  (synchronised batch norm), and grad_ready and grad_ready_user to call `ready`
     *  (overlapping the gradient reduction with the backward), each unless empty; the trainer
     *  keeps both. */
    Trainer(Model &model, Optimizer &opt, const sat_trainer_opts &opts, BnReduceFn reduce,
            GradReadyFn ready = nullptr)
        : hooks_(std::make_shared<Hooks>()), example_size_(model.example_size()) {
        sat_trainer_opts o = opts;
        if (reduce) {
            o.bn_reduce = reduce_trampoline;
            o.bn_reduce_user = hooks_.get();
        }
        if (ready) {
            o.grad_ready = ready_trampoline;
            o.grad_ready_user = hooks_.get();
        }
        hooks_->reduce = std::move(reduce);
        hooks_->ready = std::move(ready);
        create(model, opt, o);
    }
    /** The C handle (still owned by this object). */
    sat_trainer *get() const noexcept { return h_.get(); }
    /** sat_trainer_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_trainer_last_error(h_.get()); }

    /** One adversarial training step on a batch (sat_train_step()). */
    sat_step_stats step(span<const float> x, span<const int32_t> labels) {
        return run_batch(sat_train_step, "train step", x, labels);
    }
    /** The gradient half of a step (sat_train_compute()): the batch's mean gradient into the
     *  model's grads(), weights unchanged; reduce it across ranks, then apply(). */
    sat_step_stats compute(span<const float> x, span<const int32_t> labels) {
        return run_batch(sat_train_compute, "train compute", x, labels);
    }
    /** The update half of a step (sat_train_apply()): the optimizer on the model's grads(). */
    void apply() { detail::check(sat_train_apply(h_.get()), last_error()); }
    /** Saves a checkpoint (sat_checkpoint_save()). */
    void save_checkpoint(const std::string &path, int64_t epoch, int64_t batch_index,
                         const sat_model_meta *meta = nullptr) const {
        detail::check(sat_checkpoint_save(h_.get(), meta, epoch, batch_index, path.c_str()),
                      last_error());
    }
    /** Returns {epoch, batch_index}. */
    std::pair<int64_t, int64_t> load_checkpoint(const std::string &path) {
        int64_t e = 0, b = 0;
        detail::check(sat_checkpoint_load(h_.get(), path.c_str(), &e, &b), last_error());
        return {e, b};
    }

private:
    /** step() and compute(): checks the batch's sizes, runs `fn` on it, returns its stats. */
    template <typename Fn>
    sat_step_stats run_batch(Fn fn, const char *what, span<const float> x, span<const int32_t> labels) {
        int64_t n = detail::batch_of(x.size(), example_size_, what);
        if (labels.size() != static_cast<std::size_t>(n))
            throw Error(SAT_E_SHAPE, std::string(what) + ": " + std::to_string(labels.size()) +
                                         " labels for " + std::to_string(n) + " examples");
        sat_step_stats s{};
        s.struct_size = sizeof s;
        const int32_t status = fn(h_.get(), x.data(), labels.data(), n, &s);
        if (hooks_ && status == SAT_E_ABORTED)
            if (std::exception_ptr e = std::exchange(hooks_->error, nullptr)) std::rethrow_exception(e);
        detail::check(status, last_error());
        return s;
    }
    void create(Model &model, Optimizer &opt, const sat_trainer_opts &opts) {
        sat_trainer *t = nullptr;
        detail::check_create(sat_trainer_create(model.get(), opt.get(), &opts, &t),
                             model.last_error());
        h_ = detail::own<sat_trainer, sat_trainer_destroy>(t, model.h_, opt.h_);
    }
    /* The callbacks live on the heap at a fixed address (the C trainer's `user`). */
    struct Hooks {
        BnReduceFn reduce;
        GradReadyFn ready;
        std::exception_ptr error;  // what a callback threw, rethrown by run_batch()
    };
    /** Runs a callback, turning false or an exception into the C refusal 1. */
    template <typename Call>
    static int32_t guarded(void *user, Call call) {
        Hooks *h = static_cast<Hooks *>(user);
        try {
            return call(*h) ? 0 : 1;
        } catch (...) {
            h->error = std::current_exception();
            return 1;
        }
    }
    static int32_t reduce_trampoline(void *user, double *sums, int64_t count) {
        return guarded(user, [&](Hooks &h) { return h.reduce(span<double>(sums, static_cast<std::size_t>(count))); });
    }
    static int32_t ready_trampoline(void *user, int64_t offset, int64_t count) {
        return guarded(user, [&](Hooks &h) { return h.ready(offset, count); });
    }
    std::shared_ptr<Hooks> hooks_;  // declared before h_: destroyed after the trainer
    std::shared_ptr<sat_trainer> h_;
    int64_t example_size_;
};

/* ------------------------------------------------------------------------- */
/* Dataset                                                                    */
/* ------------------------------------------------------------------------- */

/** Owns a sat_dataset; keeps its context alive. */
class Dataset : detail::MoveOnly {
public:
    /** Takes ownership of a handle from the C API, created with ctx. */
    Dataset(Context &ctx, sat_dataset *owned) : Dataset(ctx.h_, owned) {}

    /** Loads a data set from a directory (sat_dataset_load()). */
    static Dataset load(Context &ctx, int32_t format, const std::string &dir, int32_t split) {
        sat_dataset *d = nullptr;
        detail::check_tls(sat_dataset_load(ctx.get(), format, dir.c_str(), split, &d));
        return Dataset(ctx, d);
    }
    /** Loads an IDX image and label file pair (sat_dataset_load_idx()). */
    static Dataset load_idx(Context &ctx, const std::string &images, const std::string &labels) {
        sat_dataset *d = nullptr;
        detail::check_tls(sat_dataset_load_idx(ctx.get(), images.c_str(), labels.c_str(), &d));
        return Dataset(ctx, d);
    }
    /** A data set copied from arrays (sat_dataset_from_arrays()). */
    static Dataset from_arrays(Context &ctx, span<const float> x, span<const int32_t> labels,
                               int32_t channels, int32_t height, int32_t width,
                               int32_t num_classes) {
        int64_t n = detail::batch_of(x.size(), int64_t(channels) * height * width, "dataset");
        if (labels.size() != static_cast<std::size_t>(n))
            throw Error(SAT_E_SHAPE, "dataset: " + std::to_string(labels.size()) +
                                         " labels for " + std::to_string(n) + " examples");
        sat_dataset *d = nullptr;
        detail::check_tls(sat_dataset_from_arrays(ctx.get(), x.data(), labels.data(), n, channels,
                                                  height, width, num_classes, &d));
        return Dataset(ctx, d);
    }

    /** The C handle (still owned by this object). */
    sat_dataset *get() const noexcept { return h_.get(); }
    /** sat_dataset_last_error() of the handle. */
    const char *last_error() const noexcept { return sat_dataset_last_error(h_.get()); }
    /** Number of examples. */
    int64_t size() const noexcept { return sat_dataset_size(h_.get()); }
    /** Shape of one example and number of classes. */
    Shape shape() const {
        Shape s;
        check(sat_dataset_shape(h_.get(), &s.channels, &s.height, &s.width, &s.num_classes));
        return s;
    }
    /** All images, in file order. */
    span<const float> images() const {
        return {sat_dataset_images(h_.get()),
                static_cast<std::size_t>(size() * shape().example_size())};
    }
    /** All labels, in file order. */
    span<const int32_t> labels() const noexcept {
        return {sat_dataset_labels(h_.get()), static_cast<std::size_t>(size())};
    }
    /** Starts an epoch: seeded order and augmentation (sat_dataset_shuffle()). */
    void shuffle(uint64_t seed, int64_t epoch, uint32_t aug = SAT_AUG_NONE) {
        check(sat_dataset_shuffle(h_.get(), seed, epoch, aug));
    }
    /** Batch `index` of `batch` examples into x and labels; returns its size. */
    int64_t batch(int64_t index, int64_t batch, span<float> x, span<int32_t> labels) {
        detail::need(x.size(), batch * shape().example_size(), "dataset batch x");
        detail::need(labels.size(), batch, "dataset batch labels");
        int64_t n = 0;
        check(sat_dataset_batch(h_.get(), index, batch, x.data(), labels.data(), &n));
        return n;
    }
    /** Moves `count` examples into a new data set (sat_dataset_split()). */
    Dataset split(int64_t count, uint64_t seed) {
        sat_dataset *d = nullptr;
        check(sat_dataset_split(h_.get(), count, seed, &d));
        return Dataset(ctx_, d);
    }
    /** Keeps only the first `count` examples. */
    void truncate(int64_t count) { check(sat_dataset_truncate(h_.get(), count)); }

private:
    Dataset(std::shared_ptr<sat_context> ctx, sat_dataset *owned)
        : ctx_(std::move(ctx)), h_(detail::own<sat_dataset, sat_dataset_destroy>(owned, ctx_)) {}
    void check(int32_t status) const { detail::check(status, last_error()); }
    std::shared_ptr<sat_context> ctx_;  // for split(); h_'s deleter holds it too
    std::shared_ptr<sat_dataset> h_;
};

}  // namespace sat

#endif /* SAT_HPP */
