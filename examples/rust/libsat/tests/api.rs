//! The safe layer against a real libsat: model, forward, input gradient, a training step
//! and errors carrying the library's messages.
use libsat::{sys, AttackOpts, Context, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

const SPEC: &str = "input 1 4 4\nflatten\ndense 8\nact relu\ndense 3\n";

fn batch(n: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..n * 16).map(|i| ((i * 7919) % 1000) as f32 / 999.0).collect();
    let y = (0..n).map(|i| (i % 3) as i32).collect();
    (x, y)
}

/// The dense model by hand from the parameter slice (weight [out,in], then bias).
fn forward_by_hand(p: &[f32], x: &[f32]) -> Vec<f64> {
    let mut out = Vec::new();
    for ex in x.chunks(16) {
        let h: Vec<f64> = (0..8)
            .map(|j| {
                let z = p[128 + j] as f64 + (0..16).map(|i| p[j * 16 + i] as f64 * ex[i] as f64).sum::<f64>();
                z.max(0.0)
            })
            .collect();
        for k in 0..3 {
            out.push(p[160 + k] as f64 + (0..8).map(|j| p[136 + k * 8 + j] as f64 * h[j]).sum::<f64>());
        }
    }
    out
}

#[test]
fn version_matches() {
    assert_eq!(libsat::version(), "0.1.0");
}

#[test]
fn model_forward_and_params() {
    let ctx = Context::new(1, 5).unwrap();
    let mut opts = ModelOpts::new().unwrap();
    opts.seed = 3;
    let mut m = Model::new(&ctx, SPEC, &opts).unwrap();
    assert_eq!(m.input_shape(), (1, 4, 4));
    assert_eq!(m.num_classes(), 3);
    assert_eq!(m.param_count(), 163);
    let (x, _) = batch(3);
    let logits = m.forward(&x).unwrap();
    assert_eq!(logits.len(), 9);
    for (a, b) in logits.iter().zip(forward_by_hand(m.params(), &x)) {
        assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }
    // writing the parameter slice changes the model
    for v in &mut m.params_mut()[160..163] {
        *v += 1.0;
    }
    let shifted = m.forward(&x).unwrap();
    for (a, b) in shifted.iter().zip(&logits) {
        assert!((a - b - 1.0).abs() < 1e-5);
    }
}

#[test]
fn input_gradient_matches_finite_differences() {
    let ctx = Context::new(1, 0).unwrap();
    let m = Model::new(&ctx, "input 1 2 2\nflatten\ndense 6\nact silu\ndense 3\n", &ModelOpts::new().unwrap()).unwrap();
    let x = vec![0.2f32, 0.7, 0.4, 0.9, 0.1, 0.5, 0.3, 0.8];
    let y = [0, 2];
    let g = m.input_gradient(&x, &y).unwrap();
    assert_eq!(g.grad.len(), 8);
    assert_eq!(g.logits, m.forward(&x).unwrap());
    let h = 1e-2f32;
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += h;
        xm[i] -= h;
        let lp: f64 = m.input_gradient(&xp, &y).unwrap().losses.iter().map(|&v| v as f64).sum();
        let lm: f64 = m.input_gradient(&xm, &y).unwrap().losses.iter().map(|&v| v as f64).sum();
        let fd = (lp - lm) / (2.0 * h as f64);
        assert!((fd - g.grad[i] as f64).abs() < 2e-3, "{i}: {fd} vs {}", g.grad[i]);
    }
}

#[test]
fn training_step_changes_parameters() {
    let ctx = Context::new(1, 1).unwrap();
    let mut m = Model::new(&ctx, SPEC, &ModelOpts::with_activation("silu").unwrap()).unwrap();
    let (x, y) = batch(6);
    let (loss0, _) = m.train_backward(&x, &y, 0.0).unwrap();
    assert!(loss0.is_finite() && m.grads().iter().any(|&g| g != 0.0));

    let before = m.params().to_vec();
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
    {
        let mut tr = Trainer::new(&mut opt, &TrainerOpts::pgd(0.05, 2).unwrap()).unwrap();
        let st = tr.step(&x, &y).unwrap();
        assert!(st.loss.is_finite() && (0.0..=1.0).contains(&st.adv_accuracy));
        assert!((st.lr - 0.05).abs() < 1e-7);
        assert_ne!(tr.model().params(), &before[..]);
        tr.step(&x, &y).unwrap();
    }
    assert_eq!(opt.step_count(), 2);
    // a plain optimizer step from train_backward
    opt.model_mut().train_backward(&x, &y, 0.0).unwrap();
    opt.step().unwrap();
    assert_eq!(opt.step_count(), 3);
    drop(opt); // gives the model back

    let adv = m.attack(&AttackOpts::pgd(0.1, 3).unwrap(), &x, &y).unwrap();
    assert!(adv.iter().zip(&x).all(|(a, b)| (a - b).abs() <= 0.1 + 1e-6 && (0.0..=1.0).contains(a)));
}

#[test]
fn errors_carry_the_library_message() {
    let ctx = Context::new(1, 0).unwrap();
    let err = Model::new(&ctx, "input 1 4 4\nflatten\nconv3 4\n", &ModelOpts::new().unwrap())
        .err()
        .expect("a bad spec must fail");
    assert_eq!(err.status, sys::SAT_E_INVALID_ARG);
    assert!(err.message.contains("line 3"), "{err}");
    assert!(err.to_string().contains("conv3"));

    let mut opts = ModelOpts::new().unwrap();
    opts.max_batch = 2;
    let m = Model::new(&ctx, SPEC, &opts).unwrap();
    let (mut x, y) = batch(3);
    assert_eq!(m.forward(&x).unwrap().len(), 3 * m.num_classes()); // above max_batch: in chunks
    x[2 * 16 + 5] = f32::NAN;
    let err = m.forward(&x).unwrap_err();
    assert_eq!(err.status, sys::SAT_E_NUMERIC);
    assert!(err.message.contains("NaN"), "{err}");
    let err = m.input_gradient(&x[..32], &[0, 9]).unwrap_err();
    assert_eq!(err.status, sys::SAT_E_INVALID_ARG);
    assert!(err.message.contains("label 9"), "{err}");
    let err = m.input_gradient(&x[..32], &y).unwrap_err(); // 3 labels for 2 examples
    assert_eq!(err.status, sys::SAT_E_SHAPE);
    assert!(libsat::preset_spec("no-such-net", (1, 8, 8), 10).unwrap_err().message.contains("no-such-net"));
    assert!(ModelOpts::with_activation("nope").is_err());
}

#[test]
fn presets_take_their_original_activation_by_default() {
    let ctx = Context::new(1, 5).unwrap();
    assert_eq!(ModelOpts::new().unwrap().activation, sys::SAT_ACT_DEFAULT);
    for (name, side, act) in [("preact-resnet18", 8, sys::SAT_ACT_RELU), ("efficientnet-b0", 32, sys::SAT_ACT_SILU),
                              ("small-cnn", 8, sys::SAT_ACT_SILU)] {
        let spec = libsat::preset_spec(name, (3, side, side), 10).unwrap();
        let m = Model::new(&ctx, &spec, &ModelOpts::new().unwrap().max_batch(1)).unwrap();
        assert_eq!(m.opts().unwrap().activation, act, "{name}");
        let m = Model::new(&ctx, &spec, &ModelOpts::with_activation("gelu").unwrap().max_batch(1)).unwrap();
        assert_eq!(m.opts().unwrap().activation, sys::SAT_ACT_GELU, "{name}");
    }
}

#[test]
fn activation_checkpointing_gives_the_same_gradients() {
    let ctx = Context::new(1, 0).unwrap();
    let spec = "input 2 8 8\nconv 6 k=3 p=1\nbn\nact name=a\nconv 6 k=3 p=1\nbn\nact\nconv 6 k=3 p=1\nbn\n\
                add a\nact name=b\nconv 6 k=3 p=1\nbn\nact\nconv 6 k=3 p=1\nbn\nadd b\nact\ngap\ndense 3\n";
    let plain = Model::new(&ctx, spec, &ModelOpts::new().unwrap().seed(4)).unwrap();
    let mut ckpt = Model::new(&ctx, spec, &ModelOpts::new().unwrap().seed(4).activation_checkpointing(true)).unwrap();
    let x: Vec<f32> = (0..3 * 128).map(|i| ((i * 7919) % 1000) as f32 / 999.0).collect();
    let y = [0, 1, 2];
    let (a, b) = (plain.input_gradient(&x, &y).unwrap(), ckpt.input_gradient(&x, &y).unwrap());
    assert_eq!(a.grad, b.grad);
    assert_eq!(a.logits, b.logits);
    ckpt.set_activation_checkpointing(false).unwrap();
    assert_eq!(ckpt.input_gradient(&x, &y).unwrap().grad, a.grad);
}
