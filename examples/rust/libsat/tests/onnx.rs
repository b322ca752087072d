//! ONNX import through the safe layer: file and bytes give the same model, the activation
//! swap keeps the weights, damaged bytes and unsupported ops give the library's errors.
//! The sample is a small model of the fuzz corpus (input normalisation, a convolution, GELU
//! as its Erf subgraph, a squeeze-excitation gate, SiLU and a dense layer).
use libsat::{Context, ErrorKind, Model, OnnxImportOpts};

fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fuzz/corpus/onnx/normalize_gelu_se_silu.onnx")
}

#[test]
fn load_onnx_file_and_bytes() {
    let ctx = Context::new(1, 4).unwrap();
    let bytes = std::fs::read(sample_path()).unwrap();
    let from_file = Model::load_onnx(&ctx, sample_path(), None).unwrap();
    let from_bytes = Model::load_onnx_buffer(&ctx, &bytes, None).unwrap();
    assert_eq!(from_file.spec(), from_bytes.spec());
    assert!(from_file.spec().contains("act gelu"));
    let x: Vec<f32> = (0..2 * 3 * 5 * 5).map(|i| (i % 7) as f32 / 7.0).collect();
    let logits = from_file.forward(&x).unwrap();
    assert_eq!(logits.len(), 2 * 3);
    assert_eq!(logits, from_bytes.forward(&x).unwrap());

    let swap = OnnxImportOpts::replacing("gelu", "relu").unwrap();
    let swapped = Model::load_onnx_buffer(&ctx, &bytes, Some(&swap)).unwrap();
    assert!(!swapped.spec().contains("act gelu") && swapped.spec().contains("act relu"));
    assert_ne!(swapped.forward(&x).unwrap(), logits);
}

#[test]
fn load_onnx_errors() {
    let ctx = Context::new(1, 4).unwrap();
    let bytes = std::fs::read(sample_path()).unwrap();
    let err = Model::load_onnx_buffer(&ctx, &bytes[..bytes.len() / 2], None).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Format);
    let err = Model::load_onnx(&ctx, "/nonexistent/model.onnx", None).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(OnnxImportOpts::replacing("relu", "no-such-activation").is_err());
}
