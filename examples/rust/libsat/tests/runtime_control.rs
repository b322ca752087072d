//! Runtime control of an optimizer through the safe layer (base learning rate, scales,
//! freeze mask), the model-and-optimizer checkpoint, and close() with the library's status.
use libsat::{sys, Context, ErrorKind, Model, ModelMeta, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

/// dense 8 over 16 inputs: parameters 0..136; dense 3: 136..163.
const SPEC: &str = "input 1 4 4\nflatten\ndense 8\nact\ndense 3\n";
const L1: usize = 136;

fn batch(i: usize) -> (Vec<f32>, Vec<i32>) {
    let x = (0..64).map(|k| ((k * 7 + i * 5) % 13) as f32 / 13.0).collect();
    let y = (0..4).map(|e| ((e + i) % 3) as i32).collect();
    (x, y)
}

fn step(opt: &mut Optimizer, i: usize) {
    let (x, y) = batch(i);
    opt.model_mut().train_backward(&x, &y, 0.0).unwrap();
    opt.step().unwrap();
}

fn model(ctx: &Context, seed: u64) -> Model<'_> {
    let mut o = ModelOpts::new().unwrap();
    o.seed = seed;
    Model::new(ctx, SPEC, &o).unwrap()
}

#[test]
fn lr_scales_and_freezing() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = model(&ctx, 1);
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.1, 0.9).unwrap()).unwrap();
    opt.set_lr(0.05).unwrap();
    assert_eq!(opt.base_lr(), 0.05);
    assert_eq!(opt.lr(), 0.05);
    assert_eq!(opt.set_lr(f32::NAN).unwrap_err().kind(), ErrorKind::InvalidArg);
    assert_eq!(opt.base_lr(), 0.05);

    opt.set_lr_scale(L1..L1 + 3, 0.0).unwrap();
    let scales = opt.lr_scale().unwrap();
    assert_eq!(scales.len(), 163);
    assert!(scales[L1..L1 + 3].iter().all(|&s| s == 0.0) && scales[L1 + 3] == 1.0);
    assert!(opt.set_lr_scale(160..170, 1.0).is_err());

    let mut mask = vec![0u8; 163];
    mask[..L1].iter_mut().for_each(|v| *v = 1);
    opt.set_frozen(Some(&mask)).unwrap();
    assert_eq!(opt.frozen().unwrap(), mask);
    assert_eq!(opt.set_frozen(Some(&mask[..5])).unwrap_err().kind(), ErrorKind::Shape);
    let before = opt.model().params().to_vec();
    for i in 0..3 {
        step(&mut opt, i);
    }
    let after = opt.model().params();
    assert_eq!(&after[..L1 + 3], &before[..L1 + 3]); // frozen, and scale 0
    assert!(after[L1 + 3..].iter().zip(&before[L1 + 3..]).all(|(a, b)| a != b));
    assert!(opt.state()[..L1].iter().all(|&v| v == 0.0)); // no momentum for frozen ones
    opt.set_frozen(None).unwrap();
    assert!(opt.frozen().unwrap().iter().all(|&v| v == 0));
}

#[test]
fn checkpoint_resumes_bit_exactly() {
    let ctx = Context::new(1, 0).unwrap();
    let dir = std::env::temp_dir().join(format!("libsat-rs-optckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.satc");
    let adam = || OptimizerOpts::adam(0.01).unwrap();

    let mut whole_m = model(&ctx, 1);
    let mut whole = Optimizer::new(&mut whole_m, &adam()).unwrap();
    (0..6).for_each(|i| step(&mut whole, i));

    let mut first_m = model(&ctx, 1);
    let mut first = Optimizer::new(&mut first_m, &adam()).unwrap();
    (0..3).for_each(|i| step(&mut first, i));
    let mut meta = ModelMeta::new().unwrap();
    meta.epochs = 2;
    first.save_checkpoint(&path, Some(&meta)).unwrap();

    let mut m = model(&ctx, 42);
    let mut resumed = Optimizer::new(&mut m, &adam()).unwrap();
    assert_eq!(resumed.load_checkpoint(&path).unwrap().epochs, 2);
    (3..6).for_each(|i| step(&mut resumed, i));
    assert_eq!(resumed.model().params(), whole.model().params());
    assert_eq!(resumed.state(), whole.state());

    // another optimizer kind: refused, nothing changed
    let mut other_m = model(&ctx, 5);
    let mut sgd = Optimizer::new(&mut other_m, &OptimizerOpts::sgd(0.1, 0.9).unwrap()).unwrap();
    let before = sgd.model().params().to_vec();
    assert_eq!(sgd.load_checkpoint(&path).unwrap_err().kind(), ErrorKind::InvalidArg);
    assert_eq!(sgd.model().params(), &before[..]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn close_reports_children_made_outside() {
    let ctx = Context::new(1, 0).unwrap();
    let m = model(&ctx, 1);
    let mut raw_opt = std::ptr::null_mut();
    assert_eq!(unsafe { sys::sat_optimizer_create(m.as_ptr(), std::ptr::null(), &mut raw_opt) }, sys::SAT_OK);
    let (m, err) = m.close().err().expect("the model has a live optimizer");
    assert_eq!(err.kind(), ErrorKind::State);
    assert_eq!(m.forward(&[0.5; 16]).unwrap().len(), 3); // still usable
    assert_eq!(unsafe { sys::sat_optimizer_destroy_checked(raw_opt) }, sys::SAT_OK);
    assert!(m.close().is_ok());

    let spec = std::ffi::CString::new(SPEC).unwrap();
    let mut raw_model = std::ptr::null_mut();
    assert_eq!(unsafe { sys::sat_model_create(ctx.as_ptr(), spec.as_ptr(), std::ptr::null(), &mut raw_model) },
               sys::SAT_OK);
    let (ctx, err) = ctx.close().err().expect("the context has a live model");
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("still alive"));
    assert_eq!(unsafe { sys::sat_model_destroy_checked(raw_model) }, sys::SAT_OK);
    assert!(ctx.close().is_ok());
}

#[test]
fn trainer_reaches_its_optimizer_settings() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = model(&ctx, 3);
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.1, 0.9).unwrap()).unwrap();
    let mut tr = Trainer::new(&mut opt, &TrainerOpts::pgd(0.1, 2).unwrap()).unwrap();
    let mut mask = vec![0u8; 163];
    mask[..L1].iter_mut().for_each(|v| *v = 1);
    tr.set_frozen(Some(&mask)).unwrap();
    tr.set_lr(0.25).unwrap();
    tr.set_lr_scale(L1..L1 + 1, 0.0).unwrap();
    let before = tr.model().params().to_vec();
    let (x, y) = batch(0);
    let stats = tr.step(&x, &y).unwrap();
    assert_eq!(stats.lr, 0.25);
    let after = tr.model().params();
    assert_eq!(&after[..L1 + 1], &before[..L1 + 1]);
    assert!(after[L1 + 1..].iter().zip(&before[L1 + 1..]).all(|(a, b)| a != b));
    assert_eq!(tr.optimizer().base_lr(), 0.25);
}
