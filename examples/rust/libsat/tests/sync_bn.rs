//! Synchronised batch norm through Trainer::with_bn_reduce: a reduction that changes nothing
//! is the plain step bit for bit and sees each layer's sums, and a refusing or panicking
//! closure fails the step with ErrorKind::Aborted and nothing changed.
use libsat::{Context, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

mod rank_rig;
use rank_rig::{assert_aborted, batch, model};

#[test]
fn one_rank_is_the_plain_step() {
    let ctx = Context::new(1, 0).unwrap();
    let (mut a, mut b) = (model(&ctx), model(&ctx));
    let sgd = OptimizerOpts::sgd(0.05, 0.9).unwrap();
    let (mut oa, mut ob) = (Optimizer::new(&mut a, &sgd).unwrap(), Optimizer::new(&mut b, &sgd).unwrap());
    let to = TrainerOpts::pgd(0.1, 2).unwrap();
    let mut counts = Vec::new();
    {
        let mut plain = Trainer::new(&mut oa, &to).unwrap();
        let mut synced = Trainer::with_bn_reduce(&mut ob, &to, |sums| {
            counts.push(sums.len());
            true
        })
        .unwrap();
        let (x, y) = batch(4);
        plain.step(&x, &y).unwrap();
        synced.step(&x, &y).unwrap();
        assert_eq!(plain.model().params(), synced.model().params());
        assert_eq!(plain.model().state(), synced.model().state());
    }
    // one layer of 8 channels: sums and count, centred squares; then 2 * 8 sums and count
    assert_eq!(counts, vec![9, 8, 17]);
}

#[test]
fn refusal_and_panic_abort_the_step() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = model(&ctx);
    let before = m.params().to_vec();
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
    let to = TrainerOpts::pgd(0.1, 2).unwrap();
    let mut t = Trainer::with_bn_reduce(&mut opt, &to, |_| false).unwrap();
    assert_aborted(&mut t, false, "batch-norm reduction callback", &before);
    drop(t);
    let mut t = Trainer::with_bn_reduce(&mut opt, &to, |_| panic!("rank 1 is gone")).unwrap();
    assert_aborted(&mut t, true, "rank 1 is gone", &before);
}
