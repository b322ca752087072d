//! Data sets, evaluation, model files and buffers, checkpoints, backward overrides and
//! APGD through the safe layer, against a real libsat.
use libsat::{
    sys, AttackOpts, Augment, Backward, Context, DataFormat, Dataset, ErrorKind, EvalOpts, Model,
    ModelMeta, ModelOpts, Norm, Optimizer, OptimizerOpts, Split, Trainer, TrainerOpts,
};
use std::path::PathBuf;

const SIDE: usize = 8;
const PIX: usize = SIDE * SIDE;
const MLP: &str = "input 1 8 8\nflatten\ndense 16\nact\ndense 2\n";

/// Horizontal (class 0) or vertical (class 1) bars on faint noise, from a fixed seed.
fn bars(seed: u64, n: usize) -> (Vec<f32>, Vec<i32>) {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut rand = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let (mut x, mut y) = (vec![0f32; n * PIX], vec![0i32; n]);
    for i in 0..n {
        let img = &mut x[i * PIX..(i + 1) * PIX];
        img.iter_mut().for_each(|p| *p = 0.2 * rand());
        let class = i % 2;
        let at = 1 + (rand() * 6.0) as usize % 6;
        for t in 0..SIDE {
            img[if class == 0 { at * SIDE + t } else { t * SIDE + at }] = 0.9;
        }
        y[i] = class as i32;
    }
    (x, y)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("libsat-rust-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mlp<'c>(ctx: &'c Context, seed: u64) -> Model<'c> {
    Model::new(ctx, MLP, &ModelOpts::with_activation("silu").unwrap().seed(seed).max_batch(64)).unwrap()
}

#[test]
fn end_to_end_train_evaluate_save_load() {
    let ctx = Context::new(1, 11).unwrap();
    let (x, y) = bars(1, 48);
    let mut data = Dataset::from_arrays(&ctx, &x, &y, (1, 8, 8), 2).unwrap();
    assert_eq!((data.len(), data.input_shape(), data.num_classes()), (48, (1, 8, 8), 2));

    let mut model = mlp(&ctx, 3);
    let mut opt = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.1, 0.9).unwrap()).unwrap();
    {
        let mut trainer = Trainer::new(&mut opt, &TrainerOpts::pgd(0.05, 3).unwrap().seed(5)).unwrap();
        let (mut bx, mut by) = (vec![0f32; 16 * PIX], vec![0i32; 16]);
        for epoch in 0..2 {
            data.shuffle(9, epoch, Augment::NONE).unwrap();
            for b in 0..data.num_batches(16) {
                let n = data.batch_into(b, 16, &mut bx, &mut by).unwrap();
                assert_eq!(n, 16);
                let st = trainer.step(&bx[..n * PIX], &by[..n]).unwrap();
                assert!(st.loss.is_finite() && (0.0..=1.0).contains(&st.adv_accuracy));
            }
        }
        assert_eq!(trainer.optimizer().step_count(), 6);
    }

    let (tx, ty) = bars(2, 40);
    let opts = EvalOpts::new().unwrap().eps(0.05).steps(&[1, 5]).seed(4);
    assert_eq!(opts.step_list(), &[1, 5]);
    drop(opt); // gives the model back
    let r = model.evaluate(&opts, &tx, &ty).unwrap();
    assert_eq!(r.n, 40);
    assert_eq!(r.steps, vec![1, 5]);
    assert_eq!(r.robust_accuracy.len(), 2);
    for a in r.robust_accuracy.iter().chain([&r.clean_accuracy, &r.fgsm_accuracy]) {
        assert!((0.0..=1.0).contains(a), "{r:?}");
    }
    assert!(r.clean_accuracy > 0.5, "training did not help: {r:?}");
    assert_eq!(r.apgd_accuracy, None);
    assert!(r.worst_accuracy() <= r.clean_accuracy);

    let mut meta = ModelMeta::new().unwrap();
    meta.norm = sys::SAT_NORM_LINF;
    meta.eps = 0.05;
    meta.method = sys::SAT_TRAIN_PGD;
    meta.steps = 3;
    meta.epochs = 2;
    meta.clean_accuracy = r.clean_accuracy;
    meta.robust_accuracy = r.robust_accuracy[1];
    let bytes = model.save_buffer(Some(&meta)).unwrap();
    assert!(!bytes.is_empty());
    let (copy, m2) = Model::load_buffer_with_meta(&ctx, &bytes).unwrap();
    assert_eq!(copy.spec(), model.spec());
    assert_eq!(copy.params(), model.params());
    assert_eq!((m2.eps, m2.method, m2.steps, m2.epochs), (0.05, sys::SAT_TRAIN_PGD, 3, 2));
    assert_eq!(m2.robust_accuracy, r.robust_accuracy[1]);
    let a = model.forward(&tx).unwrap();
    let b = copy.forward(&tx).unwrap();
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    // the same seeded evaluation of the copy gives the same numbers
    assert_eq!(copy.evaluate(&opts, &tx, &ty).unwrap(), r);
    // saving the copy gives the same bytes
    assert_eq!(copy.save_buffer(Some(&meta)).unwrap(), bytes);
}

#[test]
fn model_files_clone_and_load_errors() {
    let ctx = Context::new(1, 0).unwrap();
    let dir = TempDir::new("files");
    let model = mlp(&ctx, 7);
    let path = dir.path("m.sat");
    model.save(&path, None).unwrap();
    let loaded = Model::load(&ctx, &path).unwrap();
    let (x, _) = bars(3, 4);
    assert_eq!(loaded.forward(&x).unwrap(), model.forward(&x).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), model.save_buffer(None).unwrap());
    let (_, meta) = Model::load_with_meta(&ctx, &path).unwrap();
    assert!(meta.clean_accuracy.is_nan(), "no meta saved: {meta:?}");

    let twin = model.try_clone().unwrap();
    assert_eq!(twin.params(), model.params());
    assert_eq!(twin.forward(&x).unwrap(), model.forward(&x).unwrap());

    let err = Model::load(&ctx, dir.path("missing.sat")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message.contains("missing.sat"), "{err}");

    std::fs::write(dir.path("junk.sat"), b"this is not a model file at all").unwrap();
    let err = Model::load(&ctx, dir.path("junk.sat")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format);
    assert!(!err.message.is_empty());

    let err = model.save(dir.path("no/such/dir/m.sat"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(!err.message.is_empty());
}

#[test]
fn garbage_and_truncated_buffers_give_format_errors() {
    let ctx = Context::new(1, 0).unwrap();
    let err = Model::load_buffer(&ctx, b"garbage bytes, not a libsat model").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    assert_eq!(err.status, sys::SAT_E_FORMAT);
    assert!(!err.message.is_empty() && err.message != libsat::status_string(err.status), "{err}");

    assert!(Model::load_buffer(&ctx, &[]).is_err());

    let bytes = mlp(&ctx, 1).save_buffer(None).unwrap();
    for cut in [8, bytes.len() / 2, bytes.len() - 1] {
        let err = Model::load_buffer(&ctx, &bytes[..cut]).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Format, "cut at {cut}: {err}");
        assert!(!err.message.is_empty());
    }
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    assert!(Model::load_buffer(&ctx, &flipped).is_err(), "a flipped byte must be detected");
}

#[test]
fn checkpoint_resume_is_bit_exact() {
    let ctx = Context::new(1, 0).unwrap();
    let dir = TempDir::new("ckpt");
    let ck = dir.path("run.ckpt");
    let batches: Vec<_> = (0..4).map(|i| bars(10 + i, 8)).collect();
    let topts = TrainerOpts::pgd(0.05, 2).unwrap().seed(21);

    let mut model = mlp(&ctx, 2);
    let mut opt = Optimizer::new(&mut model, &OptimizerOpts::adam(0.01).unwrap()).unwrap();
    let after;
    {
        let mut tr = Trainer::new(&mut opt, &topts).unwrap();
        for (x, y) in &batches[..2] {
            tr.step(x, y).unwrap();
        }
        tr.save_checkpoint(&ck, None, 3, 2).unwrap();
        for (x, y) in &batches[2..] {
            tr.step(x, y).unwrap();
        }
        after = tr.model().params().to_vec();
        assert_eq!(tr.optimizer().step_count(), 4);

        assert_eq!(tr.load_checkpoint(&ck).unwrap(), (3, 2));
        assert_eq!(tr.optimizer().step_count(), 2);
        for (x, y) in &batches[2..] {
            tr.step(x, y).unwrap();
        }
        assert_eq!(tr.model().params(), &after[..]);
    }
    assert!(!opt.state().is_empty());

    // into fresh handles built with the same spec
    let mut fresh = mlp(&ctx, 99);
    let mut fopt = Optimizer::new(&mut fresh, &OptimizerOpts::adam(0.01).unwrap()).unwrap();
    {
        let mut tr = Trainer::new(&mut fopt, &topts).unwrap();
        tr.load_checkpoint(&ck).unwrap();
        for (x, y) in &batches[2..] {
            tr.step(x, y).unwrap();
        }
        assert_eq!(tr.model().params(), &after[..]);
    }

    // a checkpoint of another architecture is refused and changes nothing
    let mut other = Model::new(&ctx, "input 1 8 8\nflatten\ndense 5\nact\ndense 2\n", &ModelOpts::new().unwrap()).unwrap();
    let before = other.params().to_vec();
    let mut oopt = Optimizer::new(&mut other, &OptimizerOpts::adam(0.01).unwrap()).unwrap();
    {
        let mut tr = Trainer::new(&mut oopt, &topts).unwrap();
        let err = tr.load_checkpoint(&ck).unwrap_err();
        assert!(!err.message.is_empty(), "{err}");
        assert_eq!(tr.model().params(), &before[..]);
        let err = tr.load_checkpoint(dir.path("nope.ckpt")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
    }
    assert_eq!(oopt.step_count(), 0);
}

#[test]
fn backward_override_changes_only_the_chosen_pass() {
    let ctx = Context::new(1, 0).unwrap();
    let spec = "input 1 8 8\nflatten\ndense 16\nact relu\ndense 2\n";
    let mut m = Model::new(&ctx, spec, &ModelOpts::new().unwrap().seed(4)).unwrap();
    assert_eq!(m.backward().unwrap(), (Backward::SAME, Backward::SAME));
    let (x, y) = bars(5, 6);
    let g0 = m.input_gradient(&x, &y).unwrap();
    m.train_backward(&x, &y, 0.0).unwrap();
    let t0 = m.grads().to_vec();

    let softplus = Backward::act("softplus").unwrap();
    m.set_backward(softplus, Backward::SAME).unwrap();
    assert_eq!(m.backward().unwrap(), (softplus, Backward::SAME));
    let g1 = m.input_gradient(&x, &y).unwrap();
    assert_eq!(g1.logits, g0.logits, "the forward pass must not change");
    assert_ne!(g1.grad, g0.grad, "the attacker's gradient must use the override");
    m.train_backward(&x, &y, 0.0).unwrap();
    assert_eq!(m.grads(), &t0[..], "the optimizer's gradient must not change");

    let psp = Backward::act("psoftplus").unwrap().param(5.0);
    m.set_backward(Backward::SAME, psp).unwrap();
    m.train_backward(&x, &y, 0.0).unwrap();
    assert_ne!(m.grads(), &t0[..]);
    assert_eq!(m.input_gradient(&x, &y).unwrap().grad, g0.grad);
    assert_eq!(m.opts().unwrap().train_backward_param, 5.0);

    let err = m.set_backward(Backward { act: 99, param: f32::NAN }, Backward::SAME).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message.contains("set_backward"), "{err}");
    assert_eq!(m.backward().unwrap(), (Backward::SAME, psp), "a failed call changes nothing");

    // the same override given at creation
    let m2 = Model::new(&ctx, spec, &ModelOpts::new().unwrap().seed(4).backward(softplus, Backward::SAME)).unwrap();
    assert_eq!(m2.input_gradient(&x, &y).unwrap().grad, g1.grad);
}

#[test]
fn apgd_targeted_traced_and_l2_attacks() {
    let ctx = Context::new(1, 0).unwrap();
    let m = Model::new(&ctx, "input 1 8 8\nflatten\ndense 16\nact\ndense 4\n", &ModelOpts::new().unwrap().seed(8)).unwrap();
    let (x, _) = bars(6, 8);
    let y: Vec<i32> = (0..8).map(|i| i % 4).collect();
    let eps = 0.03;
    let in_ball = |adv: &[f32]| adv.iter().zip(&x).all(|(a, b)| (a - b).abs() <= eps + 1e-6 && (0.0..=1.0).contains(a));

    let ce = AttackOpts::apgd_ce(eps, 8).unwrap().seed(3);
    let adv = m.attack(&ce, &x, &y).unwrap();
    assert!(in_ball(&adv));
    assert_eq!(m.attack(&ce, &x, &y).unwrap(), adv, "seeded attacks repeat");

    let dlr = AttackOpts::apgd_dlr(eps, 8).unwrap();
    let err = m.attack(&dlr, &x, &y).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message.contains("targets"), "{err}");
    let targets: Vec<i32> = y.iter().map(|c| (c + 1) % 4).collect();
    assert!(in_ball(&m.attack_targeted(&dlr, &x, &y, &targets).unwrap()));
    assert_eq!(m.attack_targeted(&dlr, &x, &y, &targets[..3]).unwrap_err().kind(), ErrorKind::Shape);

    let pgd = AttackOpts::pgd(eps, 4).unwrap().restarts(2);
    let (adv, trace) = m.attack_traced(&pgd, &x, &y, None).unwrap();
    assert!(in_ball(&adv));
    assert_eq!(trace.loss.len(), 8);
    assert_eq!(trace.accuracy.len(), 8);
    assert!(trace.accuracy.iter().all(|a| (0.0..=1.0).contains(a)));

    let l2 = AttackOpts::pgd(0.5, 5).unwrap().norm(Norm::L2);
    let adv = m.attack(&l2, &x, &y).unwrap();
    for (a, b) in adv.chunks(PIX).zip(x.chunks(PIX)) {
        let d: f32 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f32>().sqrt();
        assert!(d <= 0.5 + 1e-4, "L2 distance {d}");
    }

    let r = m.evaluate(&EvalOpts::new().unwrap().eps(eps).steps(&[2]).apgd(5, 2), &x, &y).unwrap();
    let apgd = r.apgd_accuracy.expect("APGD was asked for");
    assert!((0.0..=1.0).contains(&apgd));
    assert!(r.worst_accuracy() <= apgd);

    let err = m.evaluate(&EvalOpts::new().unwrap().steps(&[1; 17]), &x, &y).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message.contains("num_steps"), "{err}");
    let err = m.evaluate(&EvalOpts::new().unwrap().steps(&[]), &x, &y).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
}

#[test]
fn dataset_from_arrays_shuffle_batch_split_truncate() {
    let ctx = Context::new(1, 0).unwrap();
    // example i has pixels i/100 + k/1000, label i % 3
    let n: usize = 10;
    let x: Vec<f32> = (0..n * 4).map(|v| (v / 4) as f32 / 100.0 + (v % 4) as f32 / 1000.0).collect();
    let y: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
    let id = |px: f32| (px * 100.0).round() as usize;
    let mut ds = Dataset::from_arrays(&ctx, &x, &y, (1, 2, 2), 3).unwrap();
    assert_eq!((ds.len(), ds.input_shape(), ds.num_classes(), ds.example_size()), (10, (1, 2, 2), 3, 4));
    assert_eq!(ds.images(), &x[..]);
    assert_eq!(ds.labels(), &y[..]);

    // file order before any shuffle; the last batch is shorter
    assert_eq!(ds.num_batches(4), 3);
    let (bx, by) = ds.batch(0, 4).unwrap();
    assert_eq!((&bx[..], &by[..]), (&x[..16], &y[..4]));
    let (bx, by) = ds.batch(2, 4).unwrap();
    assert_eq!((bx.len(), by.len()), (8, 2));

    let epoch_order = |ds: &mut Dataset, batch: usize| -> Vec<usize> {
        let mut ids = Vec::new();
        let (mut bx, mut by) = (vec![0f32; batch * 4], vec![0i32; batch]);
        for b in 0..ds.num_batches(batch) {
            let k = ds.batch_into(b, batch, &mut bx, &mut by).unwrap();
            for j in 0..k {
                let i = id(bx[j * 4]);
                assert_eq!(&bx[j * 4..j * 4 + 4], &x[i * 4..i * 4 + 4]);
                assert_eq!(by[j], y[i]);
                ids.push(i);
            }
        }
        ids
    };
    ds.shuffle(7, 0, Augment::NONE).unwrap();
    let order = epoch_order(&mut ds, 4);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    assert_ne!(order, sorted, "a shuffle must change the order");
    assert_eq!(epoch_order(&mut ds, 3), order, "batches do not depend on the batch size");
    ds.shuffle(7, 0, Augment::NONE).unwrap();
    assert_eq!(epoch_order(&mut ds, 4), order, "(seed, epoch) fixes the order");
    ds.shuffle(7, 1, Augment::NONE).unwrap();
    assert_ne!(epoch_order(&mut ds, 4), order);
    ds.shuffle(7, 1, Augment::FLIP | Augment::CROP).unwrap();

    // caller slices too small, index past the end
    let (mut bx, mut by) = (vec![0f32; 15], vec![0i32; 4]);
    assert_eq!(ds.batch_into(0, 4, &mut bx, &mut by).unwrap_err().kind(), ErrorKind::Shape);
    let mut bx = vec![0f32; 16];
    let err = ds.batch_into(3, 4, &mut bx, &mut by).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(!err.message.is_empty());

    // split: both parts keep their relative order and together hold everything
    let mut ds = Dataset::from_arrays(&ctx, &x, &y, (1, 2, 2), 3).unwrap();
    let held = ds.split(3, 5).unwrap();
    assert_eq!((ds.len(), held.len()), (7, 3));
    assert_eq!(held.input_shape(), (1, 2, 2));
    let ids = |d: &Dataset| d.images().chunks(4).map(|e| id(e[0])).collect::<Vec<_>>();
    let (a, b) = (ids(&ds), ids(&held));
    assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert!(b.iter().zip(held.labels()).all(|(&i, &l)| y[i] == l));
    drop(held);
    assert!(ds.split(7, 0).is_err(), "a split must leave at least one example");

    ds.truncate(4).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ids(&ds), a[..4]);
    assert!(ds.truncate(0).is_err());

    // bad arrays
    let err = Dataset::from_arrays(&ctx, &x[..8], &[0, 3], (1, 2, 2), 3).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(!err.message.is_empty());
    let mut nan = x[..8].to_vec();
    nan[5] = f32::NAN;
    assert_eq!(Dataset::from_arrays(&ctx, &nan, &[0, 1], (1, 2, 2), 3).err().unwrap().kind(), ErrorKind::Numeric);
    assert_eq!(Dataset::from_arrays(&ctx, &x[..8], &[0], (1, 2, 2), 3).err().unwrap().kind(), ErrorKind::Shape);
    assert_eq!(Dataset::from_arrays(&ctx, &x[..7], &[0, 1], (1, 2, 2), 3).err().unwrap().kind(), ErrorKind::Shape);
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

#[test]
fn dataset_load_idx_and_cifar_files() {
    let ctx = Context::new(1, 0).unwrap();
    let dir = TempDir::new("data");
    let pixels: Vec<u8> = (0..18).map(|v| (v * 15) as u8).collect();
    std::fs::write(dir.path("train-images-idx3-ubyte"), idx_images(3, 2, 3, &pixels)).unwrap();
    std::fs::write(dir.path("train-labels-idx1-ubyte"), idx_labels(&[4, 0, 9])).unwrap();

    let ds = Dataset::load(&ctx, DataFormat::Idx, &dir.0, Split::Train).unwrap();
    assert_eq!((ds.len(), ds.input_shape(), ds.num_classes()), (3, (1, 2, 3), 10));
    assert_eq!(ds.labels(), &[4, 0, 9]);
    for (a, p) in ds.images().iter().zip(&pixels) {
        assert!((a - *p as f32 / 255.0).abs() < 1e-6);
    }
    let direct = Dataset::load_idx(&ctx, dir.path("train-images-idx3-ubyte"), dir.path("train-labels-idx1-ubyte")).unwrap();
    assert_eq!(direct.images(), ds.images());
    assert_eq!(direct.labels(), ds.labels());

    let err = Dataset::load(&ctx, DataFormat::Idx, &dir.0, Split::Test).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message.contains("t10k"), "{err}");

    std::fs::write(dir.path("bad-labels"), idx_labels(&[1, 2])).unwrap();
    let err = Dataset::load_idx(&ctx, dir.path("train-images-idx3-ubyte"), dir.path("bad-labels")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    assert!(!err.message.is_empty());
    std::fs::write(dir.path("bad-magic"), b"\x00\x00\x08\x07garbage").unwrap();
    let err = Dataset::load_idx(&ctx, dir.path("bad-magic"), dir.path("train-labels-idx1-ubyte")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");

    // CIFAR-10: records of one label byte and 3x32x32 pixel bytes
    let mut rec = Vec::new();
    for (label, px) in [(3u8, 0u8), (7, 255)] {
        rec.push(label);
        rec.resize(rec.len() + 3 * 32 * 32, px);
    }
    std::fs::write(dir.path("test_batch.bin"), &rec).unwrap();
    let c = Dataset::load(&ctx, DataFormat::Cifar10, &dir.0, Split::Test).unwrap();
    assert_eq!((c.len(), c.input_shape(), c.num_classes()), (2, (3, 32, 32), 10));
    assert_eq!(c.labels(), &[3, 7]);
    assert_eq!(c.images()[0], 0.0);
    assert_eq!(c.images()[3 * 32 * 32], 1.0);
    assert_eq!(Dataset::load(&ctx, DataFormat::Cifar10, &dir.0, Split::Train).err().unwrap().kind(), ErrorKind::Io);
    std::fs::write(dir.path("test_batch.bin"), &rec[..rec.len() - 1]).unwrap();
    let err = Dataset::load(&ctx, DataFormat::Cifar10, &dir.0, Split::Test).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format, "{err}");
    assert!(!libsat::default_data_dir().is_empty());
}

#[test]
fn options_context_and_library_info() {
    assert_eq!(libsat::version_numbers(), (sys::SAT_VERSION_MAJOR, sys::SAT_VERSION_MINOR, sys::SAT_VERSION_PATCH));
    assert!(!libsat::build_info().is_empty());
    let acts = libsat::activations();
    assert_eq!(acts.len(), sys::SAT_ACT_COUNT as usize);
    assert_eq!(acts[sys::SAT_ACT_SILU as usize], "silu");
    assert_eq!(libsat::activation_from_name("swish").unwrap(), sys::SAT_ACT_SILU);
    assert_eq!(libsat::activation_default_param(sys::SAT_ACT_SMOOTHRELU), 400.0);

    let mut ctx = Context::new(1, 0).unwrap();
    let err = ctx.set_num_threads(0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(!err.message.is_empty());
    ctx.set_num_threads(2).unwrap();

    let mut m = mlp(&ctx, 1);
    let mask = m.decay_mask().unwrap();
    assert_eq!(mask.len(), m.param_count());
    assert_eq!(mask.iter().map(|&v| v as usize).sum::<usize>(), 64 * 16 + 16 * 2);
    assert!(m.state().is_empty());
    let bn = Model::new(&ctx, "input 1 8 8\nconv 4 k=3\nbn\nact\nflatten\ndense 2\n", &ModelOpts::new().unwrap()).unwrap();
    assert_eq!(bn.state().len(), 8);

    let err = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.1, 0.9).unwrap().milestones(&[1; 9], 0.1)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message.contains("milestones"), "{err}");
    let mut opt = Optimizer::new(&mut m, &OptimizerOpts::sgd(0.1, 0.9).unwrap().milestones(&[2, 4], 0.1)).unwrap();
    opt.set_step_count(3).unwrap();
    assert!((opt.lr() - 0.01).abs() < 1e-6, "{}", opt.lr());
    drop(opt); // one optimizer per model at a time
    let cos = Optimizer::new(&mut m, &OptimizerOpts::adamw(0.1, 0.01).unwrap().cosine(10).warmup(2)).unwrap();
    assert!(cos.lr() > 0.0 && cos.lr() < 0.1, "warm-up starts below the peak: {}", cos.lr());
    for opts in [TrainerOpts::fast(0.1), TrainerOpts::free(0.1, 2), TrainerOpts::trades(0.1, 2, 6.0), TrainerOpts::standard()] {
        let opts = opts.unwrap();
        let mut mm = mlp(&ctx, 2);
        let mut o = Optimizer::new(&mut mm, &OptimizerOpts::sgd(0.05, 0.9).unwrap()).unwrap();
        let (x, y) = bars(4, 4);
        let st = Trainer::new(&mut o, &opts).unwrap().step(&x, &y).unwrap();
        assert!(st.loss.is_finite(), "method {}", opts.method);
    }
}
