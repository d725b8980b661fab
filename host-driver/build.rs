//! Links the EPICS IOC libraries (libCom, libdbCore, libdbRecStd, QSRV and PV Access) the
//! flyscan IOC is made of, from epicscorelibs.
//!
//! `$EPICS_BASE` wins when set; otherwise the project-local layout `<workspace>/.venv/epics_base`
//! made by `scripts/setup.sh` is used. The libraries are linked with `--no-as-needed`: nothing
//! in this crate calls record support (`libdbRecStd`) or the PVA registrars by name, the IOC
//! finds them at run time, so an as-needed link would drop them. The library folder goes into
//! the rpath, and the folder of the EPICS database definitions into `FLYSCAN_EPICS_DBD`.

use std::env;
use std::path::{Path, PathBuf};

const LIBS: [&str; 7] = [
    "Com",
    "dbCore",
    "dbRecStd",
    "pvAccessIOC",
    "qsrv",
    "pvAccess",
    "pvData",
];

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
    let missing: Vec<&str> = LIBS
        .iter()
        .copied()
        .filter(|l| !lib.join(format!("lib{l}.so")).exists())
        .collect();
    if !missing.is_empty() {
        // One readable line instead of a wall of undefined-symbol linker errors later.
        eprintln!(
            "error: EPICS IOC libraries not found (lib{}.so missing in {}). Run \
             ./scripts/setup.sh to create the project-local EPICS layout, or set EPICS_BASE to \
             an EPICS base install.",
            missing.join(".so, lib"),
            lib.display()
        );
        println!(
            "cargo:warning=EPICS IOC libraries not found in {} - run ./scripts/setup.sh",
            lib.display()
        );
        std::process::exit(1);
    }
    let lib = lib.canonicalize().unwrap_or(lib);
    // epicscorelibs keeps the database definitions beside lib/; an EPICS base install in dbd/.
    let dbd = [lib.join("..").join("dbd"), base.join("dbd")]
        .into_iter()
        .map(|d| d.canonicalize().unwrap_or(d))
        .find(|d| d.join("base.dbd").exists())
        .unwrap_or_else(|| base.join("dbd"));
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    for l in LIBS {
        println!("cargo:rustc-link-arg=-l{l}");
    }
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=FLYSCAN_EPICS_LIB={}", lib.display());
    println!("cargo:rustc-env=FLYSCAN_EPICS_DBD={}", dbd.display());
    println!(
        "cargo:rerun-if-changed={}",
        lib.join("libdbCore.so").display()
    );
}
