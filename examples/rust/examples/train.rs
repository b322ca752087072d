//! PGD adversarial training of a small SiLU network on synthetic bars, then an attack.
//! usage: cargo run --example train -- [steps]
use libsat::{AttackOpts, Context, Model, ModelOpts, Optimizer, OptimizerOpts, Trainer, TrainerOpts};

fn make_batch(seed: &mut u64, n: usize) -> (Vec<f32>, Vec<i32>) {
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

fn accuracy(m: &Model, x: &[f32], y: &[i32]) -> f32 {
    let logits = m.forward(x).expect("forward");
    let hits = y.iter().enumerate().filter(|(i, &c)| (logits[2 * i + 1] > logits[2 * i]) == (c == 1)).count();
    hits as f32 / y.len() as f32
}

fn main() -> Result<(), libsat::Error> {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let eps = 0.1;
    let ctx = Context::new(1, 42)?;
    let mut opts = ModelOpts::with_activation("silu")?;
    opts.max_batch = 64;
    let mut model = Model::new(&ctx, "input 1 8 8\nconv 8 k=3 p=1\nact\nmaxpool k=2\nflatten\ndense 32\nact\ndense 2\n", &opts)?;
    println!("libsat {}: {} parameters", libsat::version(), model.param_count());

    let mut opt = Optimizer::new(&model, &OptimizerOpts::sgd(0.05, 0.9)?)?;
    let mut seed = 0x9e3779b97f4a7c15u64;
    {
        let mut trainer = Trainer::new(&mut model, &mut opt, &TrainerOpts::pgd(eps, 3)?)?;
        for s in 0..steps {
            let (x, y) = make_batch(&mut seed, 32);
            let st = trainer.step(&x, &y)?;
            if s % 10 == 0 || s + 1 == steps {
                println!("step {s:3}  loss {:.4}  adversarial accuracy {:.3}", st.loss, st.adv_accuracy);
            }
        }
    }
    let (x, y) = make_batch(&mut seed, 64);
    let x_adv = model.attack(&AttackOpts::pgd(eps, 10)?, &x, &y)?;
    println!("held-out: clean accuracy {:.3}, PGD-10 accuracy {:.3}", accuracy(&model, &x, &y), accuracy(&model, &x_adv, &y));
    Ok(())
}
