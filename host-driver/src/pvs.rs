//! PV names (suffixes appended to the prefix). The table in README.md documents each one.

/// Driver-written scalar and waveform PVs.
pub mod out {
    /// Encoder position per point (waveform DOUBLE).
    pub const POSITION: &str = "Position";
    /// Device time per point, s (waveform DOUBLE).
    pub const TIMESTAMP: &str = "Timestamp";
    /// Gate time per point, s (waveform DOUBLE).
    pub const LIVE_TIME: &str = "LiveTime";
    /// Flag bits per point (waveform UCHAR).
    pub const FLAGS: &str = "Flags";
    /// Points received (longin).
    pub const NUM_CAPTURED: &str = "NumCaptured";
    /// Points expected (longin).
    pub const NUM_EXPECTED: &str = "NumExpected";
    /// Points lost (ai).
    pub const LOST_POINTS: &str = "LostPoints";
    /// Quadrature errors (ai).
    pub const QUAD_ERRORS: &str = "QuadErrors";
    /// Position jumps (ai).
    pub const POSITION_JUMPS: &str = "PositionJumps";
    /// Link errors (ai).
    pub const LINK_ERRORS: &str = "LinkErrors";
    /// Resend requests (ai).
    pub const RESENDS: &str = "Resends";
    /// Scan state (mbbi).
    pub const STATUS: &str = "Status";
    /// Status text (waveform CHAR).
    pub const STATUS_MESSAGE: &str = "StatusMessage";
    /// Scan in progress (bi).
    pub const BUSY: &str = "Busy";
    /// Firmware version (stringin).
    pub const FIRMWARE_VERSION: &str = "FirmwareVersion";
    /// Device channel count (longin).
    pub const NUM_CHANNELS: &str = "NumChannels";
    /// Device preset limit (longin).
    pub const MAX_POINTS: &str = "MaxPoints";
    /// Current scan id (ai).
    pub const SCAN_ID: &str = "ScanId";
    /// Device link up (bi).
    pub const CONNECTED: &str = "Connected";
}

/// Control PVs the driver monitors.
pub mod ctl {
    /// Start-Step-Count / List (mbbo).
    pub const MODE: &str = "Mode";
    /// First preset (ao).
    pub const START: &str = "Start";
    /// Preset spacing (ao).
    pub const STEP: &str = "Step";
    /// Presets per pass (longout).
    pub const NPOINTS: &str = "NPoints";
    /// Preset list (waveform DOUBLE).
    pub const POSITIONS: &str = "Positions";
    /// Direction (mbbo).
    pub const DIRECTION: &str = "Direction";
    /// Passes (longout).
    pub const PASSES: &str = "Passes";
    /// Channel mask (longout).
    pub const CHANNEL_MASK: &str = "ChannelMask";
    /// Compact / Raw (mbbo).
    pub const ENCODING: &str = "Encoding";
    /// Arm (bo), written back to 0 by the driver.
    pub const ARM: &str = "Arm";
    /// Every write to Arm, posted always (calc).
    pub const ARM_TRIG: &str = "ArmTrig";
    /// Abort (bo), written back to 0 by the driver.
    pub const ABORT: &str = "Abort";
    /// Every write to Abort, posted always (calc).
    pub const ABORT_TRIG: &str = "AbortTrig";
}

/// Name of channel `n`'s count waveform.
pub fn channel(prefix: &str, n: usize) -> String {
    format!("{prefix}CH{n}")
}
