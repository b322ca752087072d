//! Callback models: a classifier written in Rust (the same quadrant-sum linear model as
//! tests/autoattack.rs, by hand) attacked by libsat through closures, with closure errors
//! and panics stopped at the boundary and reported as errors.
use libsat::{AttackOpts, AutoAttackOpts, AutoAttackOutcome, CallbackModel, Context, ErrorKind, Model, ModelOpts};
use std::cell::Cell;

const SZ: usize = 16;
const EPS: f32 = 0.05;
const N: usize = 32;

fn quadrant(i: usize) -> usize {
    (i / 4 / 2) * 2 + (i % 4) / 2
}

fn logits(x: &[f32], out: &mut [f32]) -> libsat::CallbackResult {
    for (ex, l) in x.chunks(SZ).zip(out.chunks_mut(4)) {
        l.iter_mut().for_each(|v| *v = 0.0);
        for (i, p) in ex.iter().enumerate() {
            l[quadrant(i)] += p;
        }
    }
    Ok(())
}

fn input_grad(_x: &[f32], dlogits: &[f32], dx: &mut [f32]) -> libsat::CallbackResult {
    for (dl, d) in dlogits.chunks(4).zip(dx.chunks_mut(SZ)) {
        for (i, v) in d.iter_mut().enumerate() {
            *v = dl[quadrant(i)];
        }
    }
    Ok(())
}

/// Margins 4 d with d in 0.03..0.17: the first half within reach of EPS (8 EPS), the rest not.
fn data() -> (Vec<f32>, Vec<i32>) {
    let (mut x, mut y) = (vec![0.4f32; N * SZ], vec![0i32; N]);
    for e in 0..N {
        let d = 0.03 + 0.02 * (e / 4) as f32;
        for i in 0..SZ {
            if quadrant(i) == e % 4 {
                x[e * SZ + i] += d;
            }
        }
        y[e] = (e % 4) as i32;
    }
    (x, y)
}

fn correct(x: &[f32], y: &[i32]) -> usize {
    let mut l = vec![0f32; y.len() * 4];
    logits(x, &mut l).unwrap();
    l.chunks(4).zip(y).filter(|(l, &t)| (0..4).all(|k| k == t as usize || l[k] < l[t as usize])).count()
}

#[test]
fn autoattack_matches_the_same_model_inside_libsat() {
    let ctx = Context::new(1, 4).unwrap();
    let (x, y) = data();
    let mut cm = CallbackModel::with_input_grad(&ctx, (1, 4, 4), 4, logits, input_grad).unwrap();
    assert_eq!((cm.input_shape(), cm.num_classes()), ((1, 4, 4), 4));
    let opts = AutoAttackOpts::standard(EPS).unwrap().seed(2);
    let r = cm.autoattack_with_examples(&opts, &x, &y).unwrap();
    assert_eq!(r.clean_accuracy, 1.0);
    assert!((r.robust_accuracy - 0.5).abs() < 1e-6, "{r:?}");
    for w in r.accuracy_after.windows(2) {
        assert!(w[1] <= w[0]);
    }
    let x_adv = r.x_adv.as_ref().unwrap();
    assert_eq!(correct(x_adv, &y), N / 2);
    for (e, o) in r.outcomes.iter().enumerate() {
        assert_eq!(*o == AutoAttackOutcome::Robust, e >= N / 2, "example {e}: {o:?}");
    }

    // The same weights as a libsat model: the same sequence, the same outcomes.
    let mut m = Model::new(&ctx, "input 1 4 4\nflatten\ndense 4\n", &ModelOpts::new().unwrap()).unwrap();
    for k in 0..4 {
        for i in 0..SZ {
            m.params_mut()[k * SZ + i] = (quadrant(i) == k) as i32 as f32;
        }
        m.params_mut()[4 * SZ + k] = 0.0;
    }
    let native = m.autoattack(&opts, &x, &y).unwrap();
    assert_eq!((&native.attacks, &native.accuracy_after, &native.outcomes), (&r.attacks, &r.accuracy_after, &r.outcomes));

    // APGD-CE through the closures breaks exactly the reachable half.
    let adv = cm.attack(&AttackOpts::apgd_ce(EPS, 100).unwrap().seed(2), &x, &y).unwrap();
    assert_eq!(correct(&adv, &y), N / 2);
}

#[test]
fn logits_only_models_run_square_and_refuse_gradient_attacks() {
    let ctx = Context::new(1, 4).unwrap();
    let (x, y) = data();
    let calls = Cell::new(0usize);
    let mut cm = CallbackModel::with_max_batch(&ctx, (1, 4, 4), 4, 5, |x: &[f32], out: &mut [f32]| {
        assert!(x.len() <= 5 * SZ, "batch above max_batch");
        calls.set(calls.get() + 1);
        logits(x, out)
    }, None)
    .unwrap();
    let adv = cm.attack(&AttackOpts::square(EPS, 500).unwrap().seed(1), &x, &y).unwrap();
    assert!(calls.get() > 0);
    assert_eq!(correct(&adv, &y), N / 2);
    for (a, b) in x.iter().zip(&adv) {
        assert!((a - b).abs() <= EPS * (1.0 + 1e-6));
    }
    let before = calls.get();
    let e = cm.attack(&AttackOpts::pgd(EPS, 5).unwrap(), &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(!e.message.is_empty() && e.message == cm.last_error(), "{e}");
    let e = cm.autoattack(&AutoAttackOpts::standard(EPS).unwrap(), &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(calls.get(), before, "refused before any callback runs");
}

#[test]
fn closure_errors_and_panics_stop_the_call() {
    let ctx = Context::new(1, 4).unwrap();
    let (x, y) = data();
    let fail = Cell::new(0);
    let mut cm = CallbackModel::new(&ctx, (1, 4, 4), 4, |x: &[f32], out: &mut [f32]| match fail.get() {
        1 => Err("host model failed".to_string()),
        2 => panic!("host model panicked"),
        _ => logits(x, out),
    })
    .unwrap();
    let square = AttackOpts::square(EPS, 20).unwrap();
    fail.set(1);
    let e = cm.attack(&square, &x, &y).unwrap_err();
    assert_eq!((e.kind(), e.message.as_str()), (ErrorKind::Aborted, "host model failed"));
    fail.set(2);
    let e = cm.attack(&square, &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert!(e.message.contains("host model panicked"), "{e}");
    // The model stays usable after both.
    fail.set(0);
    assert!(cm.attack(&square, &x, &y).is_ok());

    // Bad shapes: checked by the crate before the call, or refused by the library.
    assert_eq!(cm.attack(&square, &x[1..], &y).unwrap_err().kind(), ErrorKind::Shape);
    let e = CallbackModel::new(&ctx, (1, 4, 4), 1, logits).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(!e.message.is_empty());
}
