//! Overlapping the gradient reduction through Trainer::with_grad_ready: compute hands the
//! gradient block out range by range, from its end down to 0, each range already final, and
//! trains bit for bit as without it; a refusing or panicking closure fails compute with
//! ErrorKind::Aborted and nothing changed.
use libsat::{Context, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

mod rank_rig;
use rank_rig::{assert_aborted, batch, model};

#[test]
fn ranges_cover_the_block_and_are_final() {
    let ctx = Context::new(1, 0).unwrap();
    let (mut a, mut b) = (model(&ctx), model(&ctx));
    let np = b.params().len();
    let sgd = OptimizerOpts::sgd(0.05, 0.9).unwrap();
    let (mut oa, mut ob) = (Optimizer::new(&mut a, &sgd).unwrap(), Optimizer::new(&mut b, &sgd).unwrap());
    let to = TrainerOpts::pgd(0.1, 2).unwrap();
    let mut ranges = Vec::new();
    let mut seen = vec![f32::NAN; np];
    {
        let mut plain = Trainer::new(&mut oa, &to).unwrap();
        let mut overlapped = Trainer::with_grad_ready(&mut ob, &to, |offset, range| {
            ranges.push((offset, range.len()));
            seen[offset..offset + range.len()].copy_from_slice(range);
            true
        })
        .unwrap();
        let (x, y) = batch(4);
        plain.compute(&x, &y).unwrap();
        overlapped.compute(&x, &y).unwrap();
        assert_eq!(plain.model().grads(), overlapped.model().grads());
        plain.apply().unwrap();
        overlapped.apply().unwrap();
        assert_eq!(plain.model().params(), overlapped.model().params());
    }
    // dense 3 (8 * 3 + 3), bn (8 + 8), dense 8 (16 * 8 + 8)
    assert_eq!(ranges, vec![(np - 27, 27), (np - 43, 16), (0, np - 43)]);
    // the ranges' contents when handed out are the block's at the end of compute
    let (x, y) = batch(4);
    let mut a2 = model(&ctx);
    let mut o2 = Optimizer::new(&mut a2, &sgd).unwrap();
    let mut t2 = Trainer::new(&mut o2, &to).unwrap();
    t2.compute(&x, &y).unwrap();
    assert_eq!(t2.model().grads(), &seen[..]);
}

#[test]
fn refusal_and_panic_abort_compute() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = model(&ctx);
    let before = m.params().to_vec();
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
    let to = TrainerOpts::pgd(0.1, 2).unwrap();
    let mut t = Trainer::with_grad_ready(&mut opt, &to, |_, _| false).unwrap();
    assert_aborted(&mut t, false, "gradient-ready callback", &before);
    drop(t);
    let mut t = Trainer::with_grad_ready(&mut opt, &to, |_, _| panic!("rank 1 is gone")).unwrap();
    assert_aborted(&mut t, false, "rank 1 is gone", &before);
}
