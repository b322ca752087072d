//! Every struct of `sat.h` against its Rust declaration: a C program, compiled against the
//! installed header (found by the build script through pkg-config), prints each struct's
//! size and each field's offset; the Rust structs must list the header's fields in the
//! same order, at the same offsets, with the same size.
use libsat_sys::*;
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (struct, [(field, offset)], size) of the Rust declarations.
type Layout = Vec<(&'static str, Vec<(&'static str, usize)>, usize)>;

macro_rules! rust_layout {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {
        fn rust_layout() -> Layout {
            vec![$((stringify!($ty), vec![$((stringify!($field), offset_of!($ty, $field))),*],
                    size_of::<$ty>())),*]
        }
    };
}

rust_layout! {
    sat_context_opts { struct_size, num_threads, seed, log_fn, log_user, log_level, reserved0,
                       alloc_fn, dealloc_fn, alloc_user }
    sat_model_opts { struct_size, activation, act_param, max_batch, attack_backward_act,
                     attack_backward_param, train_backward_act, train_backward_param,
                     attack_bn_mode, seed, activation_checkpointing }
    sat_exec_opts { struct_size, kind, max_batch }
    sat_attack_opts { struct_size, method, norm, loss, eps, step_size, steps, restarts,
                      random_start, targeted, bn_mode, seed }
    sat_attack_trace { struct_size, capacity, count, reserved0, loss, accuracy }
    sat_optimizer_opts { struct_size, kind, lr, momentum, nesterov, weight_decay, decay_biases,
                         beta1, beta2, adam_eps, schedule, reserved1, total_steps, warmup_steps,
                         peak_frac, gamma, num_milestones, reserved0, milestones }
    sat_trainer_opts { struct_size, method, norm, eps, step_size, steps, random_start,
                       clean_fraction, attack_bn_mode, label_smoothing, free_replays,
                       trades_beta, seed, rank, rank_count, bn_reduce, bn_reduce_user,
                       grad_ready, grad_ready_user }
    sat_step_stats { struct_size, reserved0, loss, adv_accuracy, clean_accuracy, lr }
    sat_eval_opts { struct_size, norm, eps, step_size, num_steps, steps, restarts, apgd,
                    apgd_steps, apgd_targets, batch, seed }
    sat_eval_result { struct_size, num_steps, n, clean_accuracy, robust_accuracy,
                      fgsm_accuracy, apgd_accuracy, flags, reserved0 }
    sat_autoattack_opts { struct_size, version, norm, eps, seed }
    sat_autoattack_result { struct_size, num_attacks, n, clean_accuracy, robust_accuracy,
                            attacks, accuracy_after, flags, reserved0, square_only }
    sat_callback_model_opts { struct_size, channels, height, width, num_classes, max_batch,
                              reserved0, logits_fn, input_grad_fn, user }
    sat_onnx_import_opts { struct_size, replace_act_from, replace_act_to, replace_act_param,
                           max_batch }
    sat_onnx_export_opts { struct_size, opset, batch_dim }
    sat_model_meta { struct_size, norm, eps, method, steps, epochs, clean_accuracy,
                     robust_accuracy }
    sat_tensor_info { role, ndim, offset, count, shape }
    sat_layer_info { struct_size, op, op_name, name, line, input0, input1, channels, height,
                     width, units, kernel, stride, padding, has_bias, activation, act_param,
                     num_params, num_state, reserved0, params, state }
}

/// Removes /* */ and // comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
            out.push(' ');
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// {struct: [fields in order]} of every `typedef struct sat_x { ... } sat_x;` in the header.
fn header_structs(header: &Path) -> BTreeMap<String, Vec<String>> {
    let text = strip_comments(&std::fs::read_to_string(header).expect("read sat.h"));
    let mut structs = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("typedef struct ") {
        rest = &rest[i + "typedef struct ".len()..];
        let (name, after) = rest.split_once('{').expect("struct body");
        let name = name.trim();
        if name.contains(';') {
            continue; // an opaque `typedef struct x x;`
        }
        let (body, after) = after.split_once('}').expect("end of struct body");
        let fields = body
            .split(';')
            .map(|decl| decl.split('[').next().unwrap().trim())
            .filter(|decl| !decl.is_empty())
            .map(|decl| {
                let ident = decl.rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next();
                ident.unwrap().to_string()
            })
            .collect();
        structs.insert(name.to_string(), fields);
        rest = after;
    }
    structs
}

/// "name size" and "name.field offset" lines printed by C for every struct of the header.
fn c_layout(header_dir: &Path, structs: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, usize> {
    let mut src = String::from("#include <stddef.h>\n#include <stdio.h>\n#include <sat.h>\nint main(void) {\n");
    for (name, fields) in structs {
        src += &format!("    printf(\"{name} %zu\\n\", sizeof({name}));\n");
        for f in fields {
            src += &format!("    printf(\"{name}.{f} %zu\\n\", offsetof({name}, {f}));\n");
        }
    }
    src += "    return 0;\n}\n";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (c_file, exe) = (dir.join("layout.c"), dir.join("layout"));
    std::fs::write(&c_file, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Werror", "-I"])
        .arg(header_dir)
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(status.success(), "{cc} failed on {}", c_file.display());
    let out = Command::new(&exe).output().expect("run the layout program");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn every_struct_matches_c() {
    let header_dir = PathBuf::from(env!("LIBSAT_INCLUDE_DIR"));
    let structs = header_structs(&header_dir.join("sat.h"));
    assert!(structs.len() >= 10, "found only {:?} in sat.h", structs.keys());
    let c = c_layout(&header_dir, &structs);
    let rust = rust_layout();
    let rust_names: Vec<&str> = rust.iter().map(|(n, _, _)| *n).collect();
    let header_names: Vec<&str> = structs.keys().map(String::as_str).collect();
    let mut sorted = rust_names.clone();
    sorted.sort();
    assert_eq!(sorted, header_names, "structs of sat.h without a Rust declaration, or the reverse");
    for (name, fields, size) in rust {
        let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        assert_eq!(names, structs[name], "fields of {name}");
        for (field, offset) in fields {
            assert_eq!(offset, c[&format!("{name}.{field}")], "offset of {name}.{field}");
        }
        assert_eq!(size, c[name], "size of {name}");
    }
}
