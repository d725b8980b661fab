//! A real `bluesky.RunEngine` drives the ophyd-async device (`host-driver/python`) against the
//! whole chain — simulator, flyscan-ioc — in start/step/count and in list mode, and the
//! documents' data must equal the simulator's ground truth for every point
//! (`host-driver/python/tests/test_chain.py`).

use flyscan_hil_tests::chain::{Chain, ChainOptions, workspace_root};
use std::process::Command;

#[test]
fn run_engine_documents_equal_ground_truth() {
    chain_test("bluesky", "demo.toml", "start_step_count");
}

#[test]
fn run_engine_list_mode_documents_equal_ground_truth() {
    chain_test("bluesky-list", "exafs_kgrid.toml", "list_mode");
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
        .env("FLYSCAN_CHAIN_DIRECTION", direction);
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
