//! Finds the EPICS client libraries (libca, libCom) the `epics-ca` crate links against.
//!
//! `$EPICS_BASE` wins when set; otherwise the project-local layout `<workspace>/.venv/epics_base`
//! made by `scripts/setup.sh` is used. The library directory is added to the link search path
//! (so `epics-ca-sys` needs no environment of its own) and to the rpath of this crate's
//! binaries, tests and examples, so they run without `LD_LIBRARY_PATH`.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=EPICS_BASE");
    println!("cargo:rerun-if-env-changed=EPICS_HOST_ARCH");

    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let base = match env::var_os("EPICS_BASE") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => manifest
            .parent()
            .unwrap_or(Path::new("."))
            .join(".venv")
            .join("epics_base"),
    };
    let arch = env::var("EPICS_HOST_ARCH").unwrap_or_else(|_| "linux-x86_64".to_owned());
    let lib = base.join("lib").join(&arch);
    if !lib.join("libca.so").exists() {
        // One readable line instead of a wall of undefined-symbol linker errors later.
        eprintln!(
            "error: EPICS client libraries not found (no libca.so in {}). \
             Run ./scripts/setup.sh (or the README's commands) to create the project-local \
             EPICS layout, or set EPICS_BASE to an EPICS base install.",
            lib.display()
        );
        println!(
            "cargo:warning=EPICS client libraries not found in {} - run ./scripts/setup.sh (or the README's commands)",
            lib.display()
        );
        std::process::exit(1);
    }
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=FLYSCAN_EPICS_LIB={}", lib.display());
    println!("cargo:rerun-if-changed={}", lib.join("libca.so").display());
}
