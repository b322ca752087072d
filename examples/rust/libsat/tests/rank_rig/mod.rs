//! What the data-parallel tests share (sync_bn, grad_ready): a model with one batch-norm
//! layer, a batch of images, and the check of a call that a refusing closure aborted.
use libsat::{Context, ErrorKind, Model, ModelOpts, Trainer};

const SPEC_BN: &str = "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 3\n";

pub fn batch(n: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..n * 16).map(|k| ((k * 7) % 13) as f32 / 13.0).collect();
    let y = (0..n).map(|e| (e % 3) as i32).collect();
    (x, y)
}

pub fn model(ctx: &Context) -> Model<'_> {
    let mut o = ModelOpts::new().unwrap();
    o.seed = 1;
    o.max_batch = 4;
    Model::new(ctx, SPEC_BN, &o).unwrap()
}

/// A step (or compute) of a trainer whose closure refuses or panics on a batch of 4: it fails
/// with ErrorKind::Aborted, its message holds `message`, and the weights are still `before`.
pub fn assert_aborted(t: &mut Trainer, step: bool, message: &str, before: &[f32]) {
    let (x, y) = batch(4);
    let e = if step { t.step(&x, &y) } else { t.compute(&x, &y) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert!(e.to_string().contains(message), "{e}");
    assert_eq!(t.model().params(), before);
}
