//! ONNX export through the safe layer: the bytes go back in through the import with the
//! same logits, the file holds the same bytes, options land in the file, and an opset the
//! library does not write is the library's error.
use libsat::{Context, ErrorKind, Model, ModelOpts, OnnxExportOpts};

const SPEC: &str = "input 1 6 6\nnormalize mean=0.5 std=0.25\nconv 4 k=3 p=1\nbn\nact\nflatten\ndense 3\n";

#[test]
fn save_onnx_reads_back() {
    let ctx = Context::new(1, 4).unwrap();
    let opts = ModelOpts::with_activation("silu").unwrap();
    let model = Model::new(&ctx, SPEC, &opts).unwrap();
    let x: Vec<f32> = (0..2 * 36).map(|i| (i % 11) as f32 / 11.0).collect();
    let bytes = model.save_onnx_buffer(None).unwrap();
    let back = Model::load_onnx_buffer(&ctx, &bytes, None).unwrap();
    assert_eq!(back.forward(&x).unwrap(), model.forward(&x).unwrap());

    let mut fixed = OnnxExportOpts::new().unwrap();
    fixed.opset = 17;
    fixed.batch_dim = 2;
    let path = std::env::temp_dir().join(format!("libsat-onnx-export-{}.onnx", std::process::id()));
    model.save_onnx(&path, Some(&fixed)).unwrap();
    let file = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(file, model.save_onnx_buffer(Some(&fixed)).unwrap());
    assert_ne!(file, bytes);
    assert_eq!(Model::load_onnx_buffer(&ctx, &file, None).unwrap().forward(&x).unwrap(),
               model.forward(&x).unwrap());
}

#[test]
fn save_onnx_errors() {
    let ctx = Context::new(1, 4).unwrap();
    let model = Model::new(&ctx, SPEC, &ModelOpts::new().unwrap()).unwrap();
    let mut bad = OnnxExportOpts::new().unwrap();
    bad.opset = 99;
    let err = model.save_onnx_buffer(Some(&bad)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("opset 99"));
    let err = model.save_onnx("/nonexistent-dir/model.onnx", None).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
}
