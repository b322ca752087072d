//! Gives this crate's test and example binaries an rpath to the directory of
//! the libsat that libsat-sys found (DEP_SAT_LIBDIR), so they run from a non-system prefix
//! without LD_LIBRARY_PATH. Set LIBSAT_NO_RPATH=1 to leave it out (e.g. for binaries you
//! ship). The library itself is linked by libsat-sys.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBSAT_NO_RPATH");
    println!("cargo:rerun-if-env-changed=DEP_SAT_LIBDIR");
    if env::var_os("LIBSAT_NO_RPATH").is_some() {
        return;
    }
    if let Ok(dir) = env::var("DEP_SAT_LIBDIR") {
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg-examples=-Wl,-rpath,{dir}");
    }
}
