//! The documents and the clients say what the code does: the PV table (`pv_table::PVS`) is the
//! one in host-driver/README.md, the one the databases load and the one the ophyd-async device
//! uses; the phase table (`core::phase::TABLE`) is the one in README.md and ARCHITECTURE.md;
//! every module file of the workspace is named in ARCHITECTURE.md's code map.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use flyscan_host::core::phase;
use flyscan_host::pv_table::{self, GROUPS, PVS, Writer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_readme_carries_the_pv_table() {
    let readme = read(&root().join("host-driver/README.md"));
    assert!(
        readme.contains(&pv_table::render_table()),
        "host-driver/README.md must hold the PV table exactly as pv_table::render_table() \
         prints it:\n{}",
        pv_table::render_table()
    );
}

#[test]
fn the_documents_carry_the_phase_table() {
    let table = phase::render_table();
    for doc in ["host-driver/README.md", "ARCHITECTURE.md"] {
        assert!(
            read(&root().join(doc)).contains(&table),
            "{doc} must hold the phase table as core::phase::render_table() prints it:\n{table}"
        );
    }
}

/// `record(type, "$(P)Name") { … field(FTVL, "X") …}` of a database file: name → type (with
/// the element type of a waveform) and its DTYP.
fn records(text: &str) -> BTreeMap<String, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(i) = rest.find("record(") {
        rest = &rest[i + "record(".len()..];
        let close = rest.find('{').expect("record body");
        let head = &rest[..close];
        let body_end = rest.find("\n}").expect("record end");
        let body = &rest[close..body_end];
        let (rtype, name) = head.split_once(',').expect("type, name");
        let name = name.trim().trim_end_matches(')').trim().trim_matches('"');
        let field = |f: &str| {
            body.find(&format!("field({f},"))
                .map(|j| body[j..].split('"').nth(1).unwrap_or("").to_owned())
        };
        let mut t = rtype.trim().to_owned();
        if t == "waveform" {
            t = format!("waveform {}", field("FTVL").unwrap_or_default());
        }
        let name = name
            .strip_prefix("$(P)")
            .unwrap_or_else(|| panic!("{name}: records are named $(P)…"));
        out.insert(name.to_owned(), (t, field("DTYP")));
        rest = &rest[body_end..];
    }
    out
}

#[test]
fn the_databases_hold_exactly_the_pv_table() {
    let mut db = records(&read(&root().join("host-driver/db/flyscan.db")));
    db.extend(records(&read(
        &root().join("host-driver/db/flyscan_channel.db"),
    )));
    for pv in PVS {
        let (t, dtyp) = db.get(pv.name).unwrap_or_else(|| {
            panic!(
                "$(P){} is in the PV table but not in host-driver/db",
                pv.name
            )
        });
        assert_eq!(t, pv.record, "$(P){}: record type", pv.name);
        // Client-written records and driver waveforms go through the flyscan device support.
        let needs_support = pv.writer() == Writer::Client || pv.record.starts_with("waveform");
        assert_eq!(
            dtyp.as_deref() == Some("flyscan"),
            needs_support,
            "$(P){}: DTYP",
            pv.name
        );
    }
    for name in db.keys() {
        assert!(
            PVS.iter().any(|p| p.name == name),
            "$(P){name} is in host-driver/db but not in the PV table"
        );
    }
}

#[test]
fn the_ophyd_device_uses_only_pvs_of_the_table() {
    let src = read(&root().join("host-driver/python/src/flyscan_bluesky/device.py"));
    let mut used = Vec::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find("f\"{prefix}") {
        rest = &rest[i + "f\"{prefix}".len()..];
        let end = rest.find('"').expect("closing quote");
        used.push(rest[..end].replace("{n}", "$(N)"));
        rest = &rest[end..];
    }
    assert!(used.len() > 20, "found too few PVs in device.py: {used:?}");
    for name in &used {
        assert!(
            PVS.iter().any(|p| p.name == name) || GROUPS.iter().any(|(g, _)| g == name),
            "device.py uses $(P){name}, which neither the PV table nor its groups declare"
        );
    }
}

/// Every PV Access group of the table is defined by the databases' `Q:group` tags, and every
/// group they define is in the table.
#[test]
fn the_pva_groups_are_the_databases() {
    let mut defined = std::collections::BTreeSet::new();
    for db in ["flyscan.db", "flyscan_channel.db"] {
        let text = read(&root().join("host-driver/db").join(db));
        let mut rest = text.as_str();
        while let Some(i) = rest.find("info(Q:group, {\"$(P)") {
            rest = &rest[i + "info(Q:group, {\"$(P)".len()..];
            let end = rest.find('"').expect("closing quote");
            defined.insert(rest[..end].to_owned());
        }
    }
    let table: std::collections::BTreeSet<String> =
        GROUPS.iter().map(|(g, _)| (*g).to_owned()).collect();
    assert_eq!(defined, table);
}

/// Source files under `dir` (recursively), skipping build output.
fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | ".venv" | "out" | ".git") {
                rs_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_is_named_in_the_code_map() {
    let map = read(&root().join("ARCHITECTURE.md"));
    let mut files = Vec::new();
    for krate in [
        "protocol",
        "firmware-odroid",
        "host-driver",
        "sim",
        "hil-tests",
        "xtask",
    ] {
        rs_files(&root().join(krate).join("src"), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let stem = f.file_stem()?.to_string_lossy().into_owned();
            let skip = matches!(stem.as_str(), "lib" | "main" | "mod" | "tests");
            (!skip && !map.contains(&stem)).then(|| f.display().to_string())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {missing:#?}"
    );
}

/// RELIABILITY.md's host fault matrix names tests that exist: `file::test` in
/// host-driver/tests/<file>.rs, a bare name in the core's tests.
#[test]
fn the_fault_matrix_names_real_tests() {
    let text = read(&root().join("RELIABILITY.md"));
    let section = text
        .split("## Host driver fault matrix")
        .nth(1)
        .expect("RELIABILITY.md has a Host driver fault matrix section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let core_tests: String = ["faults.rs", "mod.rs", "model.rs", "phases.rs"]
        .iter()
        .map(|f| read(&root().join("host-driver/src/core/tests").join(f)))
        .collect();
    let mut checked = 0;
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        // Columns: fault, what the user sees, core test, through the IOC.
        for (col, cell) in cells.iter().enumerate().filter(|(c, _)| *c == 3 || *c == 4) {
            for name in cell.split('`').skip(1).step_by(2) {
                let (file, test) = match name.split_once("::") {
                    Some((f, t)) => (Some(f), t),
                    None => (None, name),
                };
                if !test
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    || test.ends_with(".rs")
                {
                    continue;
                }
                let haystack = match file {
                    Some(f) => read(&root().join("host-driver/tests").join(format!("{f}.rs"))),
                    None => core_tests.clone(),
                };
                assert!(
                    haystack.contains(&format!("fn {test}(")),
                    "RELIABILITY.md names `{name}` (column {col}), which is not a test"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} test names found in the matrix"
    );
}
