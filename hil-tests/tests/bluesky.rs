//! A real `bluesky.RunEngine` drives the ophyd-async device (`host-driver/python`) against the
//! whole chain — simulator, flyscan-ioc — in start/step/count and in list mode, and the
//! documents' data must equal the simulator's ground truth for every point; and the scientist's
//! path: `fly_exafs` on the simulated monochromator into a Tiled catalog, read back, equal to
//! the ground truth, energies on the plan's grid, the edge where Larch finds it, an XDI file
//! Larch reads (`host-driver/python/tests/test_chain.py`).

use flyscan_hil_tests::chain::{Chain, ChainOptions, binary, workspace_root};
use std::process::Command;

#[test]
fn run_engine_documents_equal_ground_truth() {
    chain_test("bluesky", "demo.toml", "start_step_count");
}

#[test]
fn run_engine_list_mode_documents_equal_ground_truth() {
    chain_test("bluesky-list", "exafs_kgrid.toml", "list_mode");
}

#[test]
fn fly_exafs_stored_in_tiled_equals_ground_truth_and_larch_finds_the_edge() {
    chain_test(
        "bluesky-exafs",
        "cu_exafs.toml",
        "fly_exafs_stored_in_tiled",
    );
}

/// Runs one test of `test_chain.py` (selected by `-k`) against a fresh chain on `scenario`.
fn chain_test(name: &str, scenario: &str, select: &str) {
    let mut opts = ChainOptions::scenario(name, scenario);
    opts.device = None;
    // The simulator writes its truth when it exits, one second after the scan.
    opts.sim_args = vec!["--exit-when-done".into()];
    let chain = Chain::start(opts).unwrap_or_else(|e| panic!("{e}"));
    let c = &chain.plan.config;
    let direction = match c.direction {
        flyscan_protocol::Direction::Positive => "POSITIVE",
        flyscan_protocol::Direction::Negative => "NEGATIVE",
        flyscan_protocol::Direction::Either => "EITHER",
        flyscan_protocol::Direction::Bidirectional => "BIDIRECTIONAL",
    };
    let root = workspace_root();
    // The scenario as a client applies it (calibration, roles, grid): `sim plan`.
    let plan = chain.dir.join("plan.json");
    let out = Command::new(binary("sim").unwrap_or_else(|e| panic!("{e}")))
        .arg("plan")
        .arg("--scenario")
        .arg(chain.scenario_path())
        .output()
        .unwrap_or_else(|e| panic!("sim plan: {e}"));
    assert!(out.status.success(), "sim plan: {out:?}");
    std::fs::write(&plan, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(
        flyscan_host::launcher::venv_dir()
            .join("bin")
            .join("python"),
    );
    cmd.current_dir(&root)
        .args([
            "-m",
            "pytest",
            "-q",
            "-m",
            "chain",
            "-k",
            select,
            "-p",
            "no:cacheprovider",
        ])
        .arg(root.join("host-driver/python/tests/test_chain.py"))
        .envs(chain.ca.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FLYSCAN_PREFIX", &chain.prefix)
        .env("FLYSCAN_TRUTH", chain.truth_path())
        .env("FLYSCAN_CLOCK_HZ", chain.clock_hz().to_string())
        .env("FLYSCAN_CHAIN_START", c.start.to_string())
        .env("FLYSCAN_CHAIN_STEP", c.step.to_string())
        .env("FLYSCAN_CHAIN_NPOINTS", c.count.to_string())
        .env("FLYSCAN_CHAIN_DIRECTION", direction)
        .env("FLYSCAN_PLAN", &plan)
        .env("FLYSCAN_SIM_STDOUT", chain.dir.join("sim.stdout"));
    if !chain.plan.positions.is_empty() {
        let list = chain.dir.join("positions.json");
        let text = serde_json::to_string(&chain.plan.positions).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&list, text).unwrap_or_else(|e| panic!("{e}"));
        cmd.env("FLYSCAN_CHAIN_POSITIONS", &list);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("pytest: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n{}",
        chain.logs()
    );
    assert!(
        text.contains("1 passed"),
        "the chain test must run, not skip:\n{text}"
    );
}
