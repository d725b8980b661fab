//! What the IOC should show: written by the driver core, read by the publisher. Shared behind
//! one mutex that is never held across an await.

use crate::scan::ScanData;

/// Values of `$(P)Status` (mbbi states, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u16)]
pub enum Status {
    /// No scan armed.
    #[default]
    Idle = 0,
    /// Armed, waiting for the first trigger.
    Armed = 1,
    /// Points arriving.
    Scanning = 2,
    /// Scan completed.
    Done = 3,
    /// Scan aborted.
    Aborted = 4,
    /// Bad input or a device/link failure (see StatusMessage).
    Error = 5,
}

/// Scalar PV values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scalars {
    /// `$(P)Status`.
    pub status: Status,
    /// `$(P)StatusMessage`.
    pub message: String,
    /// `$(P)Busy`.
    pub busy: bool,
    /// `$(P)Connected`.
    pub connected: bool,
    /// `$(P)NumCaptured`.
    pub num_captured: i32,
    /// `$(P)NumExpected`.
    pub num_expected: i32,
    /// `$(P)LostPoints`.
    pub lost_points: f64,
    /// `$(P)QuadErrors`.
    pub quad_errors: f64,
    /// `$(P)PositionJumps`.
    pub position_jumps: f64,
    /// `$(P)LinkErrors`.
    pub link_errors: f64,
    /// `$(P)Resends`.
    pub resends: f64,
    /// `$(P)ScanId`.
    pub scan_id: f64,
    /// `$(P)FirmwareVersion`.
    pub firmware_version: String,
    /// `$(P)NumChannels`.
    pub num_channels: i32,
    /// `$(P)MaxPoints`.
    pub max_points: i32,
}

/// Everything the publisher needs.
#[derive(Debug, Default)]
pub struct Shared {
    /// Scalar values.
    pub scalars: Scalars,
    /// The current (or last) scan's data.
    pub scan: ScanData,
    /// Bumped whenever `scan` is replaced by a new scan.
    pub scan_generation: u64,
    /// Bumped each time the driver wants `$(P)Arm` written back to 0.
    pub arm_resets: u64,
    /// Bumped each time the driver wants `$(P)Abort` written back to 0.
    pub abort_resets: u64,
    /// Waveform length found on the IOC (`NELM` of `$(P)Position`), once connected.
    pub ioc_capacity: Option<usize>,
    /// Set when the driver is shutting down (publish once more, then stop).
    pub shutdown: bool,
}
