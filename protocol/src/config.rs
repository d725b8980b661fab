//! Scan configuration sent by the host ([`ScanConfig`]) and the validation both sides share, so
//! the host can refuse a bad value before sending it and the firmware naks the same set.

use crate::point::Encoding;
use core::fmt;

/// How trigger positions are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TriggerMode {
    /// `count` presets at `start + i × step`.
    StartStepCount = 0,
    /// An arbitrary list of `count` positions, streamed with `PositionChunk` messages.
    List = 1,
}

impl TriggerMode {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::StartStepCount),
            1 => Some(Self::List),
            _ => None,
        }
    }
}

/// Which crossings of a preset fire its trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Only when the position crosses the preset moving towards +∞.
    Positive = 0,
    /// Only when crossing moving towards −∞.
    Negative = 1,
    /// The first crossing in either direction.
    Either = 2,
    /// Back-and-forth: pass 0 walks the presets forward, pass 1 backward, and so on for
    /// `passes` passes; each pass fires each preset once.
    Bidirectional = 3,
}

impl Direction {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Positive),
            1 => Some(Self::Negative),
            2 => Some(Self::Either),
            3 => Some(Self::Bidirectional),
            _ => None,
        }
    }
}

/// The scan configuration (PROTOCOL.md §Configure). 36 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanConfig {
    /// Start/step/count or list.
    pub mode: TriggerMode,
    /// Which crossings fire.
    pub direction: Direction,
    /// Point encoding the device uses for this scan.
    pub encoding: Encoding,
    /// First preset (start/step/count mode), encoder counts.
    pub start: i64,
    /// Distance between presets (start/step/count mode), encoder counts; non-zero, either sign.
    pub step: i64,
    /// Number of presets per pass (the list length in list mode).
    pub count: u32,
    /// Number of passes (≥ 1; only bidirectional scans use more than one).
    pub passes: u16,
    /// Enabled detector channels, bit i = channel i.
    pub channel_mask: u32,
    /// Most points per batch (0 = as many as fit in a frame).
    pub max_batch_points: u16,
    /// Longest time a latched point may wait before its batch is sent, µs (0 = device default).
    pub max_latency_us: u32,
}

/// Wire length of a [`ScanConfig`].
pub const SCAN_CONFIG_LEN: usize = 36;

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            mode: TriggerMode::StartStepCount,
            direction: Direction::Positive,
            encoding: Encoding::Compact,
            start: 0,
            step: 1,
            count: 1,
            passes: 1,
            channel_mask: 1,
            max_batch_points: 0,
            max_latency_us: 0,
        }
    }
}

/// What is wrong with a [`ScanConfig`] for a given device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `count` is 0.
    ZeroCount,
    /// `count` exceeds the device's limit.
    TooManyPoints {
        /// Requested.
        count: u32,
        /// Device limit.
        max: u32,
    },
    /// `step` is 0 in start/step/count mode.
    ZeroStep,
    /// No channel enabled.
    NoChannels,
    /// A channel beyond the device's channel count is enabled.
    ChannelMissing {
        /// The mask requested.
        mask: u32,
        /// Channels the device has.
        n_channels: u8,
    },
    /// `passes` is 0, or more than one pass without bidirectional direction.
    BadPasses {
        /// Requested passes.
        passes: u16,
    },
    /// Presets run past the i64 range.
    PositionOverflow,
    /// A list scan of several passes needs the whole list held at once, and it is longer than
    /// the device's list window.
    ListExceedsWindow {
        /// List length.
        count: u32,
        /// Device list window.
        window: u32,
    },
}

impl ConfigError {
    /// The code sent as `arg` of a nak `InvalidConfig` (PROTOCOL.md §NakCodes).
    pub fn code(&self) -> u32 {
        match self {
            Self::ZeroCount => 1,
            Self::TooManyPoints { .. } => 2,
            Self::ZeroStep => 3,
            Self::NoChannels => 4,
            Self::ChannelMissing { .. } => 5,
            Self::BadPasses { .. } => 6,
            Self::PositionOverflow => 7,
            Self::ListExceedsWindow { .. } => 8,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCount => f.write_str("number of points must be at least 1"),
            Self::TooManyPoints { count, max } => {
                write!(f, "{count} points exceed the limit of {max}")
            }
            Self::ZeroStep => f.write_str("step must not be 0"),
            Self::NoChannels => f.write_str("channel mask is 0: enable at least one channel"),
            Self::ChannelMissing { mask, n_channels } => {
                write!(
                    f,
                    "channel mask {mask:#x} enables channels beyond the device's {n_channels}"
                )
            }
            Self::BadPasses { passes } => {
                write!(
                    f,
                    "{passes} passes: need 1, or ≥ 1 with bidirectional direction"
                )
            }
            Self::PositionOverflow => {
                f.write_str("start + count × step overflows the position range")
            }
            Self::ListExceedsWindow { count, window } => write!(
                f,
                "a list of {count} positions used for several passes must fit the device's list window of {window}"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

impl ScanConfig {
    /// Number of enabled channels.
    pub fn n_channels(&self) -> usize {
        self.channel_mask.count_ones() as usize
    }

    /// Total points the scan will produce.
    pub fn total_points(&self) -> u64 {
        u64::from(self.count) * u64::from(self.passes.max(1))
    }

    /// Checks the configuration against a device with `n_channels` channels that accepts at most
    /// `max_points` presets per pass.
    pub fn validate(&self, n_channels: u8, max_points: u32) -> Result<(), ConfigError> {
        if self.count == 0 {
            return Err(ConfigError::ZeroCount);
        }
        if self.count > max_points {
            return Err(ConfigError::TooManyPoints {
                count: self.count,
                max: max_points,
            });
        }
        if self.channel_mask == 0 {
            return Err(ConfigError::NoChannels);
        }
        let allowed = if n_channels >= 32 {
            u32::MAX
        } else {
            (1u32 << n_channels) - 1
        };
        if self.channel_mask & !allowed != 0 {
            return Err(ConfigError::ChannelMissing {
                mask: self.channel_mask,
                n_channels,
            });
        }
        if self.passes == 0 || (self.passes > 1 && self.direction != Direction::Bidirectional) {
            return Err(ConfigError::BadPasses {
                passes: self.passes,
            });
        }
        if self.mode == TriggerMode::StartStepCount {
            if self.step == 0 {
                return Err(ConfigError::ZeroStep);
            }
            let last = i128::from(self.start) + i128::from(self.step) * i128::from(self.count - 1);
            if i64::try_from(last).is_err() {
                return Err(ConfigError::PositionOverflow);
            }
        }
        Ok(())
    }

    /// Checks a list scan against the device's list window: with more than one pass the list is
    /// walked again, so all of it must be held at once.
    pub fn validate_list_window(&self, list_window: u32) -> Result<(), ConfigError> {
        if self.mode == TriggerMode::List && self.passes > 1 && self.count > list_window {
            return Err(ConfigError::ListExceedsWindow {
                count: self.count,
                window: list_window,
            });
        }
        Ok(())
    }

    /// Preset `i` of a start/step/count scan (None in list mode or past the end).
    pub fn preset(&self, i: u32) -> Option<i64> {
        if self.mode != TriggerMode::StartStepCount || i >= self.count {
            return None;
        }
        self.step
            .checked_mul(i64::from(i))
            .and_then(|d| self.start.checked_add(d))
    }
}
