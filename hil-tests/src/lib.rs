//! The hardware-in-the-loop bench: drives the whole chain (simulated or real device → serial →
//! host driver → real IOC → independent CA clients) and compares what comes out with the
//! simulator's ground truth. Also home of the demo (`flyscan-demo`).

pub mod plot;
pub mod scan_table;
pub mod xdi;
