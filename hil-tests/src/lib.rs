//! The hardware-in-the-loop bench: drives the whole chain (simulated or real device → serial →
//! host driver → real IOC → independent CA clients) and compares what comes out with the
//! simulator's ground truth. Also home of the demo (`flyscan-demo`), whose Bluesky half is
//! `python -m flyscan_bluesky.demo`.

pub mod bench;
pub mod ca;
pub mod chain;
pub mod compare;
pub mod latency;
pub mod procs;
pub mod scan_table;
pub mod truth;
