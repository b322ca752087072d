//! Layer introspection through the safe layer: every op of a spec described, its tensors
//! covering the parameter and state blocks exactly once, weights written through them read
//! back by the forward pass, and a bad index refused with the library's message.
use libsat::{Block, Context, ErrorKind, LayerOp, Model, ModelOpts, TensorRole};

const SPEC: &str = "input 2 6 6
normalize mean=0.5 std=0.25
conv 3 k=3 p=1 name=c
bn
act smoothrelu param=4
add c
avgpool k=2
maxpool k=1 name=m
gap name=g
dense 3 from=m
add g
flatten
dense 4 bias=0
";

#[test]
fn layers_describe_every_op_and_cover_the_blocks() {
    let ctx = Context::new(1, 0).unwrap();
    let m = Model::new(&ctx, SPEC, &ModelOpts::new().unwrap()).unwrap();
    let layers = m.layers().unwrap();
    assert_eq!(m.layer_count(), 13);
    let ops: Vec<LayerOp> = layers.iter().map(|l| l.op).collect();
    use LayerOp::*;
    assert_eq!(ops, [Input, Normalize, Conv, BatchNorm, Act, Add, AvgPool, MaxPool, GlobalAvgPool, Dense,
                     Add, Flatten, Dense]);
    let names: Vec<&str> = layers.iter().map(|l| l.op_name.as_str()).collect();
    assert_eq!(names, ["input", "normalize", "conv", "bn", "act", "add", "avgpool", "maxpool", "gap",
                       "dense", "add", "flatten", "dense"]);

    let conv = &layers[2];
    assert_eq!((conv.name.as_str(), conv.units, conv.kernel, conv.stride, conv.padding), ("c", 3, 3, 1, 1));
    assert_eq!(conv.tensor(TensorRole::Weight).unwrap().shape, [3, 2, 3, 3]);
    assert_eq!(conv.tensor(TensorRole::Bias).unwrap().shape, [3]);
    let bn = &layers[3];
    assert_eq!(bn.tensor(TensorRole::RunningVar).unwrap().block, Block::State);
    assert_eq!(m.tensor(bn.tensor(TensorRole::RunningVar).unwrap()), [1.0; 3]);
    assert_eq!(layers[4].activation, Some((libsat::sys::SAT_ACT_SMOOTHRELU, 4.0)));
    assert_eq!(m.tensor(layers[4].tensor(TensorRole::ActAlpha).unwrap()), [4.0]);
    assert_eq!(layers[5].inputs, [4, 2]);
    assert_eq!(layers[7].output_shape, (3, 3, 3));
    assert_eq!(layers[9].inputs, [7]);
    assert_eq!(layers[9].tensor(TensorRole::Weight).unwrap().shape, [3, 27]);
    assert_eq!(layers[10].inputs, [9, 8]);
    assert!(layers[12].tensor(TensorRole::Bias).is_none());
    assert_eq!(layers[2].activation, None);

    let (mut p, mut s) = (vec![0u32; m.param_count()], vec![0u32; m.state().len()]);
    let mut mask = vec![0u8; m.param_count()];
    for l in &layers {
        for t in &l.tensors {
            for i in t.range() {
                match t.block {
                    Block::Params => p[i] += 1,
                    Block::State => s[i] += 1,
                }
                if t.role == TensorRole::Weight {
                    mask[i] = 1;
                }
            }
        }
    }
    assert!(p.iter().all(|&c| c == 1) && s.iter().all(|&c| c == 1));
    assert_eq!(mask, m.decay_mask().unwrap());
}

#[test]
fn weights_written_through_the_tensors_are_the_ones_forward_uses() {
    let ctx = Context::new(1, 0).unwrap();
    let mut m = Model::new(&ctx, "input 1 2 2\nflatten\ndense 3\n", &ModelOpts::new().unwrap()).unwrap();
    let dense = m.layer(2).unwrap();
    let (w, b) = (dense.tensor(TensorRole::Weight).unwrap().clone(), dense.tensor(TensorRole::Bias).unwrap().clone());
    assert_eq!(w.shape, [3, 4]);
    // weight[k][i] = k * 10 + i, bias[k] = -k: logits_k = sum_i (10 k + i) x_i - k
    let values: Vec<f32> = (0..12).map(|j| ((j / 4) * 10 + j % 4) as f32).collect();
    m.tensor_mut(&w).copy_from_slice(&values);
    m.tensor_mut(&b).copy_from_slice(&[0.0, -1.0, -2.0]);
    let x = [0.1f32, 0.2, 0.3, 0.4];
    let logits = m.forward(&x).unwrap();
    for k in 0..3 {
        let want: f32 = (0..4).map(|i| (10 * k + i) as f32 * x[i]).sum::<f32>() - k as f32;
        assert!((logits[k] - want).abs() < 1e-5, "logit {k}: {} vs {want}", logits[k]);
    }
}

#[test]
fn a_bad_index_is_refused() {
    let ctx = Context::new(1, 0).unwrap();
    let m = Model::new(&ctx, SPEC, &ModelOpts::new().unwrap()).unwrap();
    let e = m.layer(13).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message.contains("sat_model_layer_info") && e.message.contains("0..12"), "{e}");
    assert_eq!(m.layer(usize::MAX).unwrap_err().kind(), ErrorKind::InvalidArg);
}

/// The ops of the ImageNet families: padded max-pooling, depthwise and grouped convolutions
/// (weights `[out, in / groups, k, k]`), dropout, sigmoid and a broadcasting mul.
#[test]
fn layers_describe_the_imagenet_ops() {
    let ctx = Context::new(1, 0).unwrap();
    let spec = "input 8 8 8\nmaxpool k=3 s=2 p=1 name=stem\nconv 8 k=3 p=1 g=8\ndropout p=0.1\ngap\n\
                conv 8 k=1\nsigmoid\nmul stem\nconv 4 k=3 p=1 g=2\ndense 3\n";
    let m = Model::new(&ctx, spec, &ModelOpts::new().unwrap()).unwrap();
    let layers = m.layers().unwrap();
    use LayerOp::*;
    let ops: Vec<LayerOp> = layers.iter().map(|l| l.op).collect();
    assert_eq!(ops, [Input, MaxPool, Conv, Dropout, GlobalAvgPool, Conv, Sigmoid, Mul, Conv, Dense]);
    assert_eq!((layers[1].kernel, layers[1].stride, layers[1].padding), (3, 2, 1));
    assert_eq!(layers[1].output_shape, (8, 4, 4));
    assert_eq!(layers[2].tensor(TensorRole::Weight).unwrap().shape, [8, 1, 3, 3]);
    assert_eq!(layers[8].tensor(TensorRole::Weight).unwrap().shape, [4, 4, 3, 3]);
    assert_eq!(layers[7].inputs, [6, 1]);
    assert_eq!(layers[7].output_shape, (8, 4, 4));
}
