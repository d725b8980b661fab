//! Hygiene of the crate's shape: modules form the layers lib.rs lists (no module names a module
//! of a later layer, so there are no import cycles), and ARCHITECTURE.md's code map names every
//! module file of the crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every `.rs` file under `dir`, as paths relative to `src/`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).expect("under src").to_path_buf());
        }
    }
}

/// The layer list of lib.rs's doc: lines `//! N. [`name`]: …` (or `` `name` `` for a private
/// module), in order. Returns module → layer number.
fn layers() -> BTreeMap<String, usize> {
    let lib = read(&src().join("lib.rs"));
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((num, rest)) = doc.split_once(". ") else {
            continue;
        };
        let Ok(num) = num.trim().parse::<usize>() else {
            continue;
        };
        let name = rest
            .trim_start_matches('[')
            .trim_start_matches('`')
            .split('`')
            .next()
            .unwrap_or("");
        assert!(!name.is_empty(), "layer {num} names no module: {line}");
        out.insert(name.to_string(), num);
    }
    out
}

/// The modules a source text names through `crate::` (or `$crate::`) outside comments.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" // ").next().unwrap_or(code);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((i + 1, name));
        }
    }
    out
}

fn top_module(file: &Path) -> String {
    let first = file.components().next().expect("non-empty path");
    let first = first.as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn every_module_has_a_layer() {
    let layers = layers();
    let lib = read(&src().join("lib.rs"));
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches("pub ");
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    assert!(
        declared.len() >= 8,
        "lib.rs declares its modules: {declared:?}"
    );
    for m in &declared {
        assert!(
            layers.contains_key(m),
            "module {m} is missing from lib.rs's layer list"
        );
    }
    assert_eq!(
        layers.len(),
        declared.len(),
        "layer list names only modules: {layers:?}"
    );
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut checked = 0;
    for file in files.iter().filter(|f| *f != Path::new("lib.rs")) {
        let me = top_module(file);
        let my_layer = *layers
            .get(&me)
            .unwrap_or_else(|| panic!("{} belongs to no layer", file.display()));
        for (line, used) in named_modules(&read(&src().join(file))) {
            let layer = *layers
                .get(&used)
                .unwrap_or_else(|| panic!("{}:{line} names unknown crate::{used}", file.display()));
            assert!(
                layer <= my_layer,
                "{}:{line}: {me} (layer {my_layer}) uses {used} (layer {layer}), a layer above it",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "the scan found the crate's paths ({checked})");
}

/// The checker itself: an upward path is found, a comment is not.
#[test]
fn checker_sees_paths() {
    let text =
        "use crate::message::Message;\n// crate::config in a comment\nlet x = $crate::fields::At;";
    let found: Vec<_> = named_modules(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["message", "fields"]);
}

#[test]
fn architecture_names_every_module_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let text = read(&path);
    let start = text
        .find("### `protocol/`")
        .expect("ARCHITECTURE.md has a protocol heading");
    let section = &text[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for f in files {
        let name = f.to_string_lossy().replace('\\', "/");
        assert!(
            section.contains(&format!("`{name}`")),
            "ARCHITECTURE.md's protocol section does not name `{name}`"
        );
    }
}
