//! Progress and cancellation through a closure: reports from 0 to total, a `true` return
//! cancels with `ErrorKind::Aborted` (a cancelled training step changes nothing), a panic in
//! the closure is stopped at the boundary, and an `Arc<AtomicBool>` set by another thread
//! cancels a running attack.
use libsat::{AttackOpts, Context, ErrorKind, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SPEC: &str = "input 1 4 4\nflatten\ndense 8\nact\ndense 2\n";
const N: usize = 10;

fn data(n: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..n * 16).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
    let y = (0..n).map(|i| (i % 2) as i32).collect();
    (x, y)
}

fn model(ctx: &Context) -> Model<'_> {
    Model::new(ctx, SPEC, &ModelOpts::new().unwrap().max_batch(4).seed(2)).unwrap()
}

#[test]
fn attack_reports_and_cancels() {
    let ctx = Context::new(1, 7).unwrap();
    let m = model(&ctx);
    let (x, y) = data(N);
    let opts = AttackOpts::pgd(0.1, 3).unwrap();
    let reference = m.attack(&opts, &x, &y).unwrap();

    let reports: Rc<RefCell<Vec<(String, i64, i64)>>> = Rc::default();
    let r = reports.clone();
    ctx.set_progress(move |what, done, total| {
        r.borrow_mut().push((what.to_string(), done, total));
        false
    })
    .unwrap();
    assert_eq!(m.attack(&opts, &x, &y).unwrap(), reference);
    let got = reports.borrow().clone();
    assert_eq!(got.len(), 1 + 3 * 3);
    assert!(got.iter().all(|(w, _, t)| w == "sat_attack" && *t == (N * 3) as i64));
    assert_eq!(got[0].1, 0);
    assert_eq!(got.last().unwrap().1, (N * 3) as i64);
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));

    let mut calls = 0;
    ctx.set_progress(move |_, _, _| {
        calls += 1;
        calls == 5
    })
    .unwrap();
    let e = m.attack(&opts, &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert!(e.message.contains("cancelled"), "{}", e.message);

    ctx.clear_progress().unwrap();
    assert_eq!(m.attack(&opts, &x, &y).unwrap(), reference);
}

#[test]
fn cancelled_train_step_changes_nothing() {
    let ctx = Context::new(1, 7).unwrap();
    let (x, y) = data(4);
    let mut fresh = model(&ctx);
    let mut m = model(&ctx);
    let want = {
        let mut opt = Optimizer::new(&mut fresh, &OptimizerOpts::new().unwrap()).unwrap();
        let mut tr = Trainer::new(&mut opt, &TrainerOpts::pgd(0.1, 3).unwrap()).unwrap();
        tr.step(&x, &y).unwrap();
        tr.model().params().to_vec()
    };
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::new().unwrap()).unwrap();
    let mut tr = Trainer::new(&mut opt, &TrainerOpts::pgd(0.1, 3).unwrap()).unwrap();
    let before = (tr.model().params().to_vec(), tr.optimizer().state().to_vec());
    ctx.set_progress(|_, done, _| done >= 8).unwrap(); // after two attack steps
    assert_eq!(tr.step(&x, &y).unwrap_err().kind(), ErrorKind::Aborted);
    assert_eq!(tr.model().params(), &before.0[..]);
    assert_eq!(tr.optimizer().state(), &before.1[..]);
    assert_eq!(tr.optimizer().step_count(), 0);
    ctx.clear_progress().unwrap();
    tr.step(&x, &y).unwrap();
    assert_eq!(tr.model().params(), &want[..]);
}

#[test]
fn panic_in_the_closure_cancels() {
    let ctx = Context::new(1, 7).unwrap();
    let m = model(&ctx);
    let (x, y) = data(N);
    ctx.set_progress(|_, done, _| {
        if done > 0 {
            panic!("enough");
        }
        false
    })
    .unwrap();
    let e = m.attack(&AttackOpts::pgd(0.1, 3).unwrap(), &x, &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert_eq!(ctx.take_progress_panic().as_deref(), Some("progress closure panicked: enough"));
    assert_eq!(ctx.take_progress_panic(), None);
}

#[test]
fn another_thread_cancels_a_running_attack() {
    let ctx = Context::new(1, 7).unwrap();
    let m = model(&ctx);
    let (x, y) = data(N);
    let started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, f) = (started.clone(), stop.clone());
    ctx.set_progress(move |_, done, _| {
        if done > 0 {
            s.store(true, Ordering::SeqCst);
        }
        f.load(Ordering::SeqCst)
    })
    .unwrap();
    let (s, f) = (started.clone(), stop.clone());
    let other = std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        f.store(true, Ordering::SeqCst);
    });
    let e = m.attack(&AttackOpts::pgd(0.1, 100_000_000).unwrap(), &x, &y).unwrap_err();
    other.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Aborted);
}
