//! Executions through the safe layer: a loss written in Rust (its dL/dlogits into
//! Exec::backward), the model's own execution, errors, and four threads on one model.
use libsat::{BnMode, Context, ErrorKind, Exec, ExecKind, ExecOpts, Model, ModelOpts};

const SPEC: &str = "input 1 4 4\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n";

fn batch(n: usize, seed: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..n * 16).map(|i| (((i + seed * 31) * 7919) % 1000) as f32 / 999.0).collect();
    let y = (0..n).map(|i| ((i + seed) % 3) as i32).collect();
    (x, y)
}

/// Cross-entropy's dL/dlogits for 3 classes: softmax - onehot, scaled.
fn ce_dlogits(logits: &[f32], y: &[i32], scale: f64) -> Vec<f32> {
    let mut d = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks(3).zip(y) {
        let mx = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let s: f64 = row.iter().map(|&z| (z as f64 - mx).exp()).sum();
        for (k, &z) in row.iter().enumerate() {
            let p = (z as f64 - mx).exp() / s - if k as i32 == label { 1.0 } else { 0.0 };
            d.push((p * scale) as f32);
        }
    }
    d
}

fn model(ctx: &Context, seed: u64) -> Model<'_> {
    Model::new(ctx, SPEC, &ModelOpts::new().unwrap().max_batch(8).seed(seed)).unwrap()
}

#[test]
fn input_gradient_from_a_rust_loss() {
    let ctx = Context::new(1, 1).unwrap();
    let m = model(&ctx, 1);
    let (x, y) = batch(5, 0);
    let reference = m.input_gradient(&x, &y).unwrap();
    let mut e = Exec::new(&m, &ExecOpts::kind(ExecKind::InputGrad).unwrap()).unwrap();
    let logits = e.forward(&x, BnMode::Inference).unwrap();
    assert_eq!(logits, reference.logits);
    assert_eq!(e.last_batch(), 5);
    let short = ce_dlogits(&logits[..6], &y[..2], 1.0);
    assert_eq!(e.input_gradient(&short).unwrap_err().kind(), ErrorKind::Shape);
    let dx = e.input_gradient(&ce_dlogits(&logits, &y, 1.0)).unwrap();
    for (a, b) in dx.iter().zip(&reference.grad) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // parameter gradients need a training execution
    let mut pg = vec![0f32; m.param_count()];
    let err = e.backward(&ce_dlogits(&logits, &y, 1.0), None, Some(&mut pg)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("sat_exec_backward"), "{err}");
}

#[test]
fn own_execution_trains_like_train_backward() {
    let ctx = Context::new(1, 1).unwrap();
    let mut m = model(&ctx, 2);
    let (x, y) = batch(6, 1);
    let state = m.state().to_vec();
    m.train_backward(&x, &y, 0.0).unwrap();
    let reference = m.grads().to_vec();
    m.state_mut().copy_from_slice(&state);
    {
        let mut own = m.exec().unwrap();
        let logits = own.forward(&x, BnMode::Train).unwrap();
        own.backward_to_model_grads(&ce_dlogits(&logits, &y, 1.0 / 6.0), None).unwrap();
        for (a, b) in own.model_grads().iter().zip(&reference) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
    // a borrowed execution cannot write the model
    let mut e = Exec::new(&m, &ExecOpts::new().unwrap()).unwrap();
    let err = e.forward(&x, BnMode::Train).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    let err = e.backward_to_model_grads(&[0.0; 18], None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    // backward before any forward, and a batch above the execution's max_batch
    let err = e.backward(&[0.0; 18], Some(&mut vec![0f32; 6 * 16]), None).unwrap_err();
    assert!(err.to_string().contains("no forward"), "{err}");
    let mut small = Exec::new(&m, &ExecOpts::kind(ExecKind::Inference).unwrap().max_batch(2)).unwrap();
    assert_eq!(small.forward(&x, BnMode::Inference).unwrap_err().kind(), ErrorKind::Shape);
    assert_eq!(small.forward(&x[..32], BnMode::Batch).unwrap().len(), 6);
}

#[test]
fn four_threads_share_one_model() {
    let ctx = Context::new(1, 1).unwrap();
    let m = model(&ctx, 3);
    let inputs: Vec<Vec<f32>> = (0..4).map(|t| batch(8, 10 + t).0).collect();
    let opts = ExecOpts::kind(ExecKind::Inference).unwrap();
    let serial: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| Exec::new(&m, &opts).unwrap().forward(x, BnMode::Inference).unwrap())
        .collect();
    let execs: Vec<Exec> = (0..4).map(|_| Exec::new(&m, &opts).unwrap()).collect();
    let results: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = execs
            .into_iter()
            .zip(&inputs)
            .map(|(mut e, x)| {
                s.spawn(move || {
                    let mut last = Vec::new();
                    for _ in 0..20 {
                        last = e.forward(x, BnMode::Inference).unwrap();
                    }
                    last
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results, serial);
}
