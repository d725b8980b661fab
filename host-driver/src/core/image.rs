//! What the IOC shows of the driver: the scalar values of the driver-owned records, kept by the
//! core and copied to the records by the IOC shell whenever they change.

/// Values of `$(P)Status` (mbbi states, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u16)]
pub enum Status {
    /// No scan armed.
    #[default]
    Idle = 0,
    /// Armed on the device, waiting for the first trigger.
    Armed = 1,
    /// Points arriving.
    Scanning = 2,
    /// Scan completed.
    Done = 3,
    /// Scan aborted.
    Aborted = 4,
    /// Bad input or a device/link failure (see `StatusMessage`).
    Error = 5,
}

/// The driver-owned scalar values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Image {
    /// `$(P)Status`.
    pub status: Status,
    /// `$(P)StatusMessage`: the latest news, in words.
    pub message: String,
    /// `$(P)Busy`: a scan is being armed, runs or is being aborted.
    pub busy: bool,
    /// `$(P)Connected`: the device answered within the liveness window.
    pub connected: bool,
    /// `$(P)NumCaptured`: points received of the current (or last) scan.
    pub num_captured: u64,
    /// `$(P)NumExpected`: points the scan should produce.
    pub num_expected: u64,
    /// `$(P)LostPoints`: points that will never arrive.
    pub lost_points: u64,
    /// `$(P)QuadErrors` (device Health).
    pub quad_errors: u64,
    /// `$(P)PositionJumps` (device Health).
    pub position_jumps: u64,
    /// `$(P)LinkErrors`: damaged frames (line noise).
    pub link_errors: u64,
    /// `$(P)ProtocolErrors`: frames with a good CRC that were wrong (rejected).
    pub protocol_errors: u64,
    /// `$(P)Resends`: resend requests sent.
    pub resends: u64,
    /// `$(P)ScanId`.
    pub scan_id: u32,
    /// `$(P)FirmwareVersion`.
    pub firmware_version: String,
    /// `$(P)NumChannels`.
    pub num_channels: u8,
    /// `$(P)MaxPoints`.
    pub max_points: u32,
    /// `$(P)DeviceSession`: the device's `boot_id` (0 until known).
    pub device_session: u32,
}
