//! The Linux binary's parts: options, FPGA backends and the I/O loop.

pub mod backend;
pub mod config;
pub mod run;
pub mod serial_port;
