//! Finds libsat through pkg-config (the `pkg-config` crate: `libsat.pc`, honouring
//! PKG_CONFIG_PATH and the other PKG_CONFIG_* variables) and links it. The library
//! directory and include directory are passed on to dependent build scripts as
//! DEP_SAT_LIBDIR and DEP_SAT_INCLUDE (this crate `links = "sat"`), and to this crate's
//! layout test as LIBSAT_INCLUDE_DIR. Test binaries get an rpath to the library directory,
//! so they run from a non-system prefix; set LIBSAT_NO_RPATH=1 to leave it out.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBSAT_NO_RPATH");
    println!("cargo:rerun-if-changed=build.rs");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let next_major = major.parse::<u32>().unwrap() + 1;
    // The declarations are those of sat.h <major>.<minor>; a newer minor only adds.
    let lib = pkg_config::Config::new()
        .range_version(format!("{major}.{minor}").as_str()..format!("{next_major}").as_str())
        .probe("libsat")
        .unwrap_or_else(|e| {
            panic!("libsat not found through pkg-config: {e}\n\
                    Install libsat or point PKG_CONFIG_PATH at <prefix>/lib[/<arch>]/pkgconfig.")
        });
    let rpath = env::var_os("LIBSAT_NO_RPATH").is_none();
    if let Some(dir) = lib.link_paths.first() {
        println!("cargo:libdir={}", dir.display());
        if rpath {
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{}", dir.display());
        }
    }
    if let Some(dir) = lib.include_paths.first() {
        println!("cargo:include={}", dir.display());
        println!("cargo:rustc-env=LIBSAT_INCLUDE_DIR={}", dir.display());
    }
}
