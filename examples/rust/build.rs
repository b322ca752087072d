//! Finds libsat through pkg-config (`pkg-config --libs --cflags libsat`, honouring
//! PKG_CONFIG_PATH and the other PKG_CONFIG_* variables) and tells cargo how to link it.
//! Test and example binaries also get an rpath to the library directory, so they run
//! from a non-system prefix; set LIBSAT_NO_RPATH=1 to leave it out.
use std::env;
use std::process::Command;

fn main() {
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR", "PKG_CONFIG",
                "LIBSAT_NO_RPATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = Command::new(&pkg_config)
        .args(["--libs", "--cflags", "libsat"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pkg_config}: {e} (install pkg-config)"));
    if !output.status.success() {
        panic!(
            "{pkg_config} --libs --cflags libsat failed: {}\n\
             Install libsat or point PKG_CONFIG_PATH at <prefix>/lib/<arch>/pkgconfig.",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let flags = String::from_utf8(output.stdout).expect("pkg-config output is not UTF-8");
    let rpath = env::var_os("LIBSAT_NO_RPATH").is_none();
    let mut linked = false;
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
            if rpath {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
            }
            println!("cargo:libdir={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
            linked |= lib == "sat";
        } else if let Some(dir) = flag.strip_prefix("-I") {
            println!("cargo:include={dir}");
        }
    }
    if !linked {
        println!("cargo:rustc-link-lib=sat");
    }
}
