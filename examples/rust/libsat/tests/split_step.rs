//! The training step split for data parallelism: compute + apply equal step, two ranks
//! with averaged gradients match one process, Free-AT and bad ranks are refused.
use libsat::{Context, ErrorKind, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

const SPEC: &str = "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n";
const SPEC_BN: &str = "input 1 4 4\nflatten\ndense 8\nbn\nact\ndense 3\n";

fn batch(n: usize, i: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..n * 16).map(|k| ((k * 7 + i * 5) % 13) as f32 / 13.0).collect();
    let y = (0..n).map(|e| ((e + i) % 3) as i32).collect();
    (x, y)
}

fn model<'c>(ctx: &'c Context, spec: &str, max_batch: i32) -> Model<'c> {
    let mut o = ModelOpts::new().unwrap();
    o.seed = 1;
    o.max_batch = max_batch;
    Model::new(ctx, spec, &o).unwrap()
}

#[test]
fn compute_then_apply_equals_step() {
    let ctx = Context::new(1, 0).unwrap();
    let (mut a, mut b) = (model(&ctx, SPEC_BN, 4), model(&ctx, SPEC_BN, 4));
    let mut oa = Optimizer::new(&mut a, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
    let mut ob = Optimizer::new(&mut b, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
    let to = TrainerOpts::pgd(0.1, 2).unwrap();
    let mut ta = Trainer::new(&mut oa, &to).unwrap();
    let mut tb = Trainer::new(&mut ob, &to).unwrap();
    for i in 0..3 {
        let (x, y) = batch(4, i);
        let sa = ta.step(&x, &y).unwrap();
        let before = tb.model().params().to_vec();
        let sb = tb.compute(&x, &y).unwrap();
        assert_eq!(tb.model().params(), &before[..]);
        tb.apply().unwrap();
        assert_eq!((sa.loss, sa.adv_accuracy), (sb.loss, sb.adv_accuracy));
    }
    assert_eq!(ta.model().params(), tb.model().params());
    assert_eq!(ta.model().state(), tb.model().state());
}

#[test]
fn two_ranks_match_one() {
    let ctx = Context::new(1, 0).unwrap();
    let (mut one, mut m0, mut m1) = (model(&ctx, SPEC, 8), model(&ctx, SPEC, 4), model(&ctx, SPEC, 4));
    let sgd = OptimizerOpts::sgd(0.05, 0.9).unwrap();
    let (mut o1, mut o0, mut o1r) = (Optimizer::new(&mut one, &sgd).unwrap(),
                                     Optimizer::new(&mut m0, &sgd).unwrap(),
                                     Optimizer::new(&mut m1, &sgd).unwrap());
    let mut t1 = Trainer::new(&mut o1, &TrainerOpts::pgd(0.1, 2).unwrap()).unwrap();
    let mut r0 = Trainer::new(&mut o0, &TrainerOpts::pgd(0.1, 2).unwrap().rank(0, 2)).unwrap();
    let mut r1 = Trainer::new(&mut o1r, &TrainerOpts::pgd(0.1, 2).unwrap().rank(1, 2)).unwrap();
    for i in 0..3 {
        let (x, y) = batch(8, i);
        t1.step(&x, &y).unwrap();
        r0.compute(&x[..64], &y[..4]).unwrap();
        r1.compute(&x[64..], &y[4..]).unwrap();
        let mean: Vec<f32> = r0.grads_mut().iter().zip(r1.grads_mut().iter()).map(|(a, b)| 0.5 * (a + b)).collect();
        r0.grads_mut().copy_from_slice(&mean);
        r1.grads_mut().copy_from_slice(&mean);
        r0.apply().unwrap();
        r1.apply().unwrap();
    }
    assert_eq!(r0.model().params(), r1.model().params());
    for (p, q) in t1.model().params().iter().zip(r0.model().params()) {
        assert!((p - q).abs() < 1e-5, "{p} vs {q}");
    }
}

#[test]
fn refusals() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = model(&ctx, SPEC, 4);
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.05, 0.0).unwrap()).unwrap();
    let bad = Trainer::new(&mut opt, &TrainerOpts::pgd(0.1, 2).unwrap().rank(2, 2));
    assert_eq!(bad.err().unwrap().kind(), ErrorKind::InvalidArg);
    let mut free = Trainer::new(&mut opt, &TrainerOpts::free(0.1, 2).unwrap()).unwrap();
    let (x, y) = batch(4, 0);
    let e = free.compute(&x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("Free-AT"), "{e}");
}
