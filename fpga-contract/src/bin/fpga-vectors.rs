//! Writes the reference model's test vectors (`flyscan_fpga_contract::vectors`) as
//! `NAME.jsonl` files into a folder: `cargo run -p flyscan-fpga-contract --bin fpga-vectors --
//! gateware/vectors`. The committed copies are checked against this output by
//! `fpga-contract/tests/vectors.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: fpga-vectors OUT_DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("fpga-vectors: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for set in flyscan_fpga_contract::vectors::all() {
        let path = dir.join(format!("{}.jsonl", set.name));
        if let Err(e) = std::fs::write(&path, set.to_jsonl()) {
            eprintln!("fpga-vectors: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{} ({} steps)", path.display(), set.steps.len());
    }
    ExitCode::SUCCESS
}
