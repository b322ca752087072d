//! PGD adversarial training of a small SiLU network on synthetic bars held in a Dataset,
//! a robustness evaluation, and a save / load round trip through memory.
//! usage: cargo run --example train -- [steps]
use libsat::{Augment, Context, Dataset, EvalOpts, Model, ModelMeta, ModelOpts, Optimizer, OptimizerOpts,
             Trainer, TrainerOpts};

/// n images 1x8x8: a horizontal (class 0) or vertical (class 1) bar on faint noise.
fn make_data(seed: &mut u64, n: usize) -> (Vec<f32>, Vec<i32>) {
    let mut rand = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let (mut x, mut y) = (vec![0f32; n * 64], vec![0i32; n]);
    for i in 0..n {
        let img = &mut x[i * 64..(i + 1) * 64];
        img.iter_mut().for_each(|p| *p = 0.3 * rand());
        let class = (rand() * 2.0) as usize % 2;
        let at = 1 + (rand() * 6.0) as usize % 6;
        for t in 0..8 {
            img[if class == 0 { at * 8 + t } else { t * 8 + at }] = 0.9;
        }
        y[i] = class as i32;
    }
    (x, y)
}

fn main() -> Result<(), libsat::Error> {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let (eps, batch) = (0.1, 32);
    let ctx = Context::new(1, 42)?;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let (x, y) = make_data(&mut seed, 512);
    let mut train = Dataset::from_arrays(&ctx, &x, &y, (1, 8, 8), 2)?;
    let test = train.split(128, 7)?;
    println!("libsat {}: {} training and {} test examples", libsat::version(), train.len(), test.len());

    let opts = ModelOpts::with_activation("silu")?.max_batch(64);
    let mut model = Model::new(&ctx, "input 1 8 8\nconv 8 k=3 p=1\nact\nmaxpool k=2\nflatten\ndense 32\nact\ndense 2\n", &opts)?;
    println!("{} parameters", model.param_count());

    let mut opt = Optimizer::new(&mut model, &OptimizerOpts::sgd(0.05, 0.9)?)?;
    {
        let mut trainer = Trainer::new(&mut opt, &TrainerOpts::pgd(eps, 3)?)?;
        let (mut bx, mut by) = (vec![0f32; batch * 64], vec![0i32; batch]);
        let per_epoch = train.num_batches(batch);
        for s in 0..steps {
            if s % per_epoch == 0 {
                train.shuffle(1, (s / per_epoch) as i64, Augment::NONE)?;
            }
            let n = train.batch_into(s % per_epoch, batch, &mut bx, &mut by)?;
            let st = trainer.step(&bx[..n * 64], &by[..n])?;
            if s % 10 == 0 || s + 1 == steps {
                println!("step {s:3}  loss {:.4}  adversarial accuracy {:.3}", st.loss, st.adv_accuracy);
            }
        }
    }

    drop(opt); // gives the model back
    let r = model.evaluate(&EvalOpts::new()?.eps(eps).steps(&[1, 10]), test.images(), test.labels())?;
    println!("test: clean {:.3}  FGSM {:.3}  PGD-1 {:.3}  PGD-10 {:.3}  flags {:#x}", r.clean_accuracy,
             r.fgsm_accuracy, r.robust_accuracy[0], r.robust_accuracy[1], r.flags.0);

    let mut meta = ModelMeta::new()?;
    meta.eps = eps;
    meta.method = libsat::sys::SAT_TRAIN_PGD;
    meta.steps = 3;
    meta.clean_accuracy = r.clean_accuracy;
    meta.robust_accuracy = r.robust_accuracy[1];
    let bytes = model.save_buffer(Some(&meta))?;
    let copy = Model::load_buffer(&ctx, &bytes)?;
    let same = copy.forward(&test.images()[..64 * 64])? == model.forward(&test.images()[..64 * 64])?;
    println!("saved {} bytes; reloaded model gives {} logits", bytes.len(), if same { "identical" } else { "DIFFERENT" });
    if !same {
        std::process::exit(1);
    }
    Ok(())
}
