//! AutoAttack and the FAB and Square attack methods through the safe layer, on a hand-built
//! linear model whose exact robustness is known: with logits = sum of each quadrant's
//! pixels, an L-inf attack of radius eps lowers the margin of every example by exactly
//! 8 eps, so the examples with margin below 8 eps are the ones any attack can break.
use libsat::{
    AttackMethod, AttackOpts, AutoAttackOpts, AutoAttackOutcome, AutoAttackStage, AutoAttackVersion,
    Context, ErrorKind, EvalFlags, Model, ModelOpts, Norm,
};

const SPEC: &str = "input 1 4 4\nflatten\ndense 4\n";
const SZ: usize = 16;
const EPS: f32 = 0.05;
/// Correctly labelled examples (half of them within reach of EPS), then mislabelled ones.
const N_OK: usize = 32;
const N_WRONG: usize = 4;
const N: usize = N_OK + N_WRONG;

fn quadrant(i: usize) -> usize {
    (i / 4 / 2) * 2 + (i % 4) / 2
}

/// Class k = the brightest quadrant; weight[k][i] = 1 on quadrant k, bias 0.
fn linear_model(ctx: &Context) -> Model<'_> {
    let mut m = Model::new(ctx, SPEC, &ModelOpts::new().unwrap().max_batch(16)).unwrap();
    let p = m.params_mut();
    assert_eq!(p.len(), 4 * SZ + 4);
    for k in 0..4 {
        for i in 0..SZ {
            p[k * SZ + i] = if quadrant(i) == k { 1.0 } else { 0.0 };
        }
        p[4 * SZ + k] = 0.0;
    }
    m
}

/// Background 0.4, the class's quadrant 0.4 + d with margin 4 d: d in 0.03..0.17, so
/// d < 2 EPS (breakable) for the first four levels and d > 2 EPS for the last four.
fn data() -> (Vec<f32>, Vec<i32>, usize) {
    let (mut x, mut y) = (vec![0.4f32; N * SZ], vec![0i32; N]);
    let mut breakable = 0;
    for e in 0..N {
        let class = e % 4;
        let d = 0.03 + 0.02 * ((e / 4) % 8) as f32;
        breakable += (e < N_OK && d < 2.0 * EPS) as usize;
        for i in 0..SZ {
            if quadrant(i) == class {
                x[e * SZ + i] += d;
            }
        }
        y[e] = if e < N_OK { class as i32 } else { ((class + 1) % 4) as i32 };
    }
    (x, y, breakable)
}

fn correct(m: &Model, x: &[f32], y: &[i32]) -> Vec<bool> {
    let logits = m.forward(x).unwrap();
    logits
        .chunks(4)
        .zip(y)
        .map(|(l, &t)| (0..4).all(|k| k == t as usize || l[k] < l[t as usize]))
        .collect()
}

#[test]
fn standard_sequence_on_a_model_with_known_robustness() {
    let ctx = Context::new(1, 4).unwrap();
    let m = linear_model(&ctx);
    let (x, y, breakable) = data();
    assert_eq!(correct(&m, &x, &y).iter().filter(|&&c| c).count(), N_OK);

    let opts = AutoAttackOpts::new().unwrap();
    assert_eq!((opts.version, opts.norm), (AutoAttackVersion::Standard as i32, Norm::Linf as i32));
    assert_eq!(opts.seed, libsat::sys::SAT_SEED_CONTEXT);
    let opts = AutoAttackOpts::standard(EPS).unwrap().seed(2);
    let r = m.autoattack_with_examples(&opts, &x, &y).unwrap();

    assert_eq!(
        r.attacks,
        [AutoAttackStage::ApgdCe, AutoAttackStage::ApgdT, AutoAttackStage::FabT, AutoAttackStage::Square]
    );
    assert_eq!(r.accuracy_after.len(), 4);
    assert_eq!(r.n, N as i64);
    assert!((r.clean_accuracy - N_OK as f32 / N as f32).abs() < 1e-6);
    // Robust accuracy never rises along the sequence and ends at the exact value.
    assert!(r.accuracy_after[0] <= r.clean_accuracy);
    for w in r.accuracy_after.windows(2) {
        assert!(w[1] <= w[0], "{:?}", r.accuracy_after);
    }
    assert_eq!(r.robust_accuracy, r.accuracy_after[3]);
    assert!((r.robust_accuracy - (N_OK - breakable) as f32 / N as f32).abs() < 1e-6, "{r:?}");

    // The outcomes add up to the accuracies; the adversarial examples are in the ball and
    // the box and misclassified; robust and misclassified examples come back unchanged.
    let x_adv = r.x_adv.as_ref().unwrap();
    assert_eq!(x_adv.len(), x.len());
    let adv_correct = correct(&m, x_adv, &y);
    let mut broken_by = [0usize; 4];
    for (e, o) in r.outcomes.iter().enumerate() {
        let (xi, ai) = (&x[e * SZ..(e + 1) * SZ], &x_adv[e * SZ..(e + 1) * SZ]);
        match *o {
            AutoAttackOutcome::Misclassified => {
                assert!(e >= N_OK);
                assert_eq!(xi, ai);
            }
            AutoAttackOutcome::Robust => {
                assert!(e < N_OK);
                assert_eq!(xi, ai);
                assert!(adv_correct[e]);
            }
            AutoAttackOutcome::BrokenBy(s) => {
                assert!(s < 4);
                broken_by[s] += 1;
                assert!(!adv_correct[e], "example {e} broken by {s} but still correct");
                for (a, b) in xi.iter().zip(ai) {
                    assert!((a - b).abs() <= EPS * (1.0 + 1e-6) && (0.0..=1.0).contains(b));
                }
            }
        }
    }
    assert_eq!(r.outcomes.iter().filter(|o| **o == AutoAttackOutcome::Misclassified).count(), N_WRONG);
    let robust = r.outcomes.iter().filter(|o| **o == AutoAttackOutcome::Robust).count();
    assert!((r.robust_accuracy - robust as f32 / N as f32).abs() < 1e-6);
    let mut left = N_OK;
    for s in 0..4 {
        left -= broken_by[s];
        assert!((r.accuracy_after[s] - left as f32 / N as f32).abs() < 1e-6, "after {s}: {r:?}");
    }
    assert_eq!(r.square_only, broken_by[3] as i64);
    assert!(!r.flags.contains(EvalFlags::SQUARE_STRONGER));

    // The first entry is APGD-CE run alone with the same seed (within one example).
    let apgd = m.attack(&AttackOpts::apgd_ce(EPS, 100).unwrap().seed(2), &x, &y).unwrap();
    let apgd_correct = correct(&m, &apgd, &y).iter().filter(|&&c| c).count() as i64;
    let first = (r.accuracy_after[0] * N as f32).round() as i64;
    assert!((apgd_correct - first).abs() <= 1, "APGD-CE alone {apgd_correct}, first entry {first}");

    // Without examples: the same measurement (the same seed), no x_adv.
    let r2 = m.autoattack(&opts, &x, &y).unwrap();
    assert!(r2.x_adv.is_none());
    assert_eq!((r2.accuracy_after.clone(), r2.outcomes.clone()), (r.accuracy_after.clone(), r.outcomes.clone()));
}

#[test]
fn versions_run_their_own_sequences() {
    let ctx = Context::new(1, 4).unwrap();
    let m = linear_model(&ctx);
    let (x, y, breakable) = data();
    let exact = (N_OK - breakable) as f32 / N as f32;
    let plus = m.autoattack(&AutoAttackOpts::standard(EPS).unwrap().version(AutoAttackVersion::Plus).seed(2), &x, &y)
        .unwrap();
    assert_eq!(
        plus.attacks,
        [
            AutoAttackStage::ApgdCe,
            AutoAttackStage::ApgdDlr,
            AutoAttackStage::Fab,
            AutoAttackStage::Square,
            AutoAttackStage::ApgdT,
            AutoAttackStage::FabT
        ]
    );
    assert!((plus.robust_accuracy - exact).abs() < 1e-6, "{plus:?}");
    let rand = m.autoattack(&AutoAttackOpts::standard(EPS).unwrap().version(AutoAttackVersion::Rand), &x, &y)
        .unwrap();
    assert_eq!(rand.attacks, [AutoAttackStage::ApgdCe, AutoAttackStage::ApgdDlr]);
    assert!((rand.robust_accuracy - exact).abs() < 1e-6, "{rand:?}");
}

#[test]
fn bad_options_give_the_library_message() {
    let ctx = Context::new(1, 4).unwrap();
    let m = linear_model(&ctx);
    let (x, y, _) = data();
    let e = m.autoattack(&AutoAttackOpts::standard(-0.1).unwrap(), &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message.contains("eps"), "{e}");
    assert_eq!(e.message, m.last_error());
    let mut bad = AutoAttackOpts::new().unwrap();
    bad.version = 3;
    let e = m.autoattack_with_examples(&bad, &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message.contains("version"), "{e}");
    // Shapes are checked before the call.
    let e = m.autoattack(&AutoAttackOpts::standard(EPS).unwrap(), &x, &y[1..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
}

#[test]
fn fab_and_square_break_exactly_the_breakable_examples() {
    let ctx = Context::new(1, 4).unwrap();
    let m = linear_model(&ctx);
    let (x, y, breakable) = data();
    let before = correct(&m, &x, &y);
    for opts in [AttackOpts::fab(EPS, 100).unwrap(), AttackOpts::square(EPS, 1000).unwrap().seed(3)] {
        let method = opts.method;
        assert!(method == AttackMethod::Fab as i32 || method == AttackMethod::Square as i32);
        let x_adv = m.attack(&opts, &x, &y).unwrap();
        for (a, b) in x.iter().zip(&x_adv) {
            assert!((a - b).abs() <= EPS * (1.0 + 1e-6) && (0.0..=1.0).contains(b));
        }
        let after = correct(&m, &x_adv, &y);
        let broken = before.iter().zip(&after).filter(|(b, a)| **b && !**a).count();
        assert_eq!(broken, breakable, "method {method}");
        // An example out of reach is never broken.
        for e in 0..N_OK {
            if !after[e] {
                assert!((e / 4) % 8 < 4, "method {method} broke example {e}");
            }
        }
    }
}
