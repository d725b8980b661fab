//! Scan configuration sent by the host ([`ScanConfig`]) and the validation both sides share, so
//! the host can refuse a bad value before sending it and the firmware naks the same set.

use crate::fields::{code_field, record};
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
    /// `count` points at a fixed period (`step` device clock ticks), optionally only while the
    /// position is inside a window (`start` … `start + gate_span`).
    Time = 2,
}

impl TriggerMode {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::StartStepCount),
            1 => Some(Self::List),
            2 => Some(Self::Time),
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

/// The scan configuration (PROTOCOL.md §Configure). 40 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanConfig {
    /// Start/step/count or list.
    pub mode: TriggerMode,
    /// Which crossings fire.
    pub direction: Direction,
    /// Point encoding the device uses for this scan.
    pub encoding: Encoding,
    /// First preset (start/step/count mode), encoder counts; in time mode the low edge of the
    /// position window (when `gate_span` ≠ 0).
    pub start: i64,
    /// Distance between presets (start/step/count mode), encoder counts, non-zero, either sign;
    /// in time mode the period, device clock ticks.
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
    /// Time mode: width of the position window, counts (0 = no window: every period is a
    /// point). Must be 0 in the other modes.
    pub gate_span: u32,
}

/// Wire length of a [`ScanConfig`].
pub const SCAN_CONFIG_LEN: usize = 40;

code_field!(TriggerMode, Direction);

// PROTOCOL.md §Configure: the one field list both parse and emit follow (`_` = reserved byte).
record!('a, ScanConfig, "config", {
    mode, direction, encoding, _, start, step, count, passes, channel_mask, max_batch_points,
    max_latency_us, gate_span
});

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
            gate_span: 0,
        }
    }
}

/// What a configuration is checked against: the device's limits (from `DeviceInfo`) and, on the
/// host, how many points its waveforms hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Detector channels the device has.
    pub n_channels: u8,
    /// Most presets per pass (longest list) the device accepts.
    pub max_points: u32,
    /// List positions the device holds at once.
    pub list_window: u32,
    /// Most points of a whole scan (all passes) the receiver can store; `u64::MAX` on the device.
    pub capacity: u64,
    /// Shortest time-mode period, device clock ticks ([`crate::limits::min_period_ticks`] of the
    /// device's clock).
    pub min_period_ticks: u64,
}

impl Limits {
    /// A device's limits, with no storage bound.
    pub fn device(n_channels: u8, max_points: u32, list_window: u32) -> Self {
        Self {
            n_channels,
            max_points,
            list_window,
            capacity: u64::MAX,
            min_period_ticks: 1,
        }
    }

    /// The same limits for a device whose clock runs at `clock_hz` (sets the shortest period).
    pub fn with_clock(self, clock_hz: u64) -> Self {
        Self {
            min_period_ticks: crate::limits::min_period_ticks(clock_hz),
            ..self
        }
    }
}

/// What is wrong with a [`ScanConfig`] (or its position list) for a given device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `count` is 0 (in list mode: the position list is empty).
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
    /// The presets run against the scan direction (a negative step with direction positive,
    /// or a positive step with direction negative): only the first would ever fire.
    StepAgainstDirection {
        /// The step.
        step: i64,
        /// The direction.
        direction: Direction,
    },
    /// A list position is out of order for the direction: positive scans need strictly
    /// increasing positions, negative scans strictly decreasing ones, bidirectional scans one
    /// of the two.
    ListOrder {
        /// Index of the first position out of order.
        index: u32,
    },
    /// The position list does not hold `count` positions.
    ListLength {
        /// Positions given.
        len: u64,
        /// The configuration's count.
        count: u32,
    },
    /// The scan's points (count × passes) exceed what the receiver can store.
    ExceedsCapacity {
        /// Points of the scan.
        total: u64,
        /// Points the receiver stores.
        capacity: u64,
    },
    /// Time mode with a direction other than `Either` (time points fire in any direction).
    TimeDirection {
        /// The direction requested.
        direction: Direction,
    },
    /// Time mode period below the device's shortest or above 2³² − 1 ticks.
    BadPeriod {
        /// The period requested, ticks.
        period: i64,
        /// The shortest the device takes, ticks.
        min: u64,
    },
    /// A position window (`gate_span` ≠ 0) outside time mode.
    GateOutsideTime,
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
            Self::StepAgainstDirection { .. } => 9,
            Self::ListOrder { .. } => 10,
            Self::ListLength { .. } => 11,
            Self::ExceedsCapacity { .. } => 12,
            Self::TimeDirection { .. } => 13,
            Self::BadPeriod { .. } => 14,
            Self::GateOutsideTime => 15,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCount => f.write_str("no points: count is 0 (or the position list is empty)"),
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
                    "{passes} passes: need 1, or more with direction bidirectional"
                )
            }
            Self::PositionOverflow => {
                f.write_str("start + (count - 1) * step overflows the position range")
            }
            Self::ListExceedsWindow { count, window } => write!(
                f,
                "a list of {count} positions used for several passes must fit the device's list window of {window}"
            ),
            Self::StepAgainstDirection { step, direction } => write!(
                f,
                "step {step} runs against direction {direction:?}: only the first preset would fire"
            ),
            Self::ListOrder { index } => write!(
                f,
                "position {index} of the list is out of order for the scan direction"
            ),
            Self::ListLength { len, count } => {
                write!(f, "the list holds {len} positions, the scan needs {count}")
            }
            Self::ExceedsCapacity { total, capacity } => {
                write!(f, "{total} points exceed the {capacity} the waveforms hold")
            }
            Self::TimeDirection { direction } => write!(
                f,
                "time mode fires in any direction: direction must be either, not {direction:?}"
            ),
            Self::BadPeriod { period, min } => write!(
                f,
                "period of {period} clock ticks is outside {min} to 4294967295"
            ),
            Self::GateOutsideTime => {
                f.write_str("a position window (gate_span) is only for time mode")
            }
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

    /// Every rule a configuration must meet (PROTOCOL.md §Configure); the host checks it before
    /// sending, the device again on receipt, so both refuse the same set.
    pub fn validate(&self, limits: &Limits) -> Result<(), ConfigError> {
        if self.count == 0 {
            return Err(ConfigError::ZeroCount);
        }
        if self.count > limits.max_points {
            return Err(ConfigError::TooManyPoints {
                count: self.count,
                max: limits.max_points,
            });
        }
        if self.channel_mask == 0 {
            return Err(ConfigError::NoChannels);
        }
        let n_channels = limits.n_channels;
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
            let against = match self.direction {
                Direction::Positive => self.step < 0,
                Direction::Negative => self.step > 0,
                Direction::Either | Direction::Bidirectional => false,
            };
            if against && self.count > 1 {
                return Err(ConfigError::StepAgainstDirection {
                    step: self.step,
                    direction: self.direction,
                });
            }
            let last = i128::from(self.start) + i128::from(self.step) * i128::from(self.count - 1);
            if i64::try_from(last).is_err() {
                return Err(ConfigError::PositionOverflow);
            }
        }
        if self.mode == TriggerMode::Time {
            if self.direction != Direction::Either {
                return Err(ConfigError::TimeDirection {
                    direction: self.direction,
                });
            }
            let ok = u64::try_from(self.step)
                .is_ok_and(|p| p >= limits.min_period_ticks.max(1) && p <= u64::from(u32::MAX));
            if !ok {
                return Err(ConfigError::BadPeriod {
                    period: self.step,
                    min: limits.min_period_ticks.max(1),
                });
            }
            if self.start.checked_add(i64::from(self.gate_span)).is_none() {
                return Err(ConfigError::PositionOverflow);
            }
        } else if self.gate_span != 0 {
            return Err(ConfigError::GateOutsideTime);
        }
        if self.mode == TriggerMode::List && self.passes > 1 && self.count > limits.list_window {
            return Err(ConfigError::ListExceedsWindow {
                count: self.count,
                window: limits.list_window,
            });
        }
        if self.total_points() > limits.capacity {
            return Err(ConfigError::ExceedsCapacity {
                total: self.total_points(),
                capacity: limits.capacity,
            });
        }
        Ok(())
    }

    /// The rules of a list scan's positions: exactly `count` of them, ordered for the direction
    /// (strictly increasing for positive, strictly decreasing for negative, either of the two
    /// for bidirectional; any order for *either*, where each preset fires at its first
    /// crossing).
    pub fn validate_positions(&self, positions: &[i64]) -> Result<(), ConfigError> {
        if positions.len() as u64 != u64::from(self.count) {
            return Err(ConfigError::ListLength {
                len: positions.len() as u64,
                count: self.count,
            });
        }
        let rising = match self.direction {
            Direction::Positive => true,
            Direction::Negative => false,
            Direction::Either => return Ok(()),
            Direction::Bidirectional => match positions {
                [a, b, ..] => b > a,
                _ => return Ok(()),
            },
        };
        for (i, w) in positions.windows(2).enumerate() {
            let ordered = if rising { w[1] > w[0] } else { w[1] < w[0] };
            if !ordered {
                return Err(ConfigError::ListOrder {
                    index: i as u32 + 1,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::device(8, 1000, 64)
    }

    #[test]
    fn step_must_follow_direction() {
        let mut c = ScanConfig {
            step: -5,
            count: 10,
            ..ScanConfig::default()
        };
        assert_eq!(
            c.validate(&limits()),
            Err(ConfigError::StepAgainstDirection {
                step: -5,
                direction: Direction::Positive
            })
        );
        c.direction = Direction::Negative;
        assert_eq!(c.validate(&limits()), Ok(()));
        c.step = 5;
        assert!(c.validate(&limits()).is_err());
        c.direction = Direction::Either;
        assert_eq!(c.validate(&limits()), Ok(()));
        // A single preset has no direction to run against.
        c.direction = Direction::Negative;
        c.count = 1;
        assert_eq!(c.validate(&limits()), Ok(()));
    }

    #[test]
    fn time_mode_rules() {
        let l = Limits::device(8, 1000, 64).with_clock(100_000_000);
        assert_eq!(l.min_period_ticks, 1000, "10 µs of a 100 MHz clock");
        let t = ScanConfig {
            mode: TriggerMode::Time,
            direction: Direction::Either,
            step: 1000,
            count: 10,
            ..ScanConfig::default()
        };
        assert_eq!(t.validate(&l), Ok(()));
        let bad = |c: ScanConfig| c.validate(&l).map_err(|e| e.code());
        assert_eq!(bad(ScanConfig { step: 999, ..t }), Err(14));
        assert_eq!(bad(ScanConfig { step: -5, ..t }), Err(14));
        assert_eq!(bad(ScanConfig { step: 1 << 32, ..t }), Err(14));
        assert_eq!(
            bad(ScanConfig {
                step: u32::MAX.into(),
                ..t
            }),
            Ok(())
        );
        assert_eq!(
            bad(ScanConfig {
                direction: Direction::Positive,
                ..t
            }),
            Err(13)
        );
        assert_eq!(
            bad(ScanConfig {
                direction: Direction::Bidirectional,
                passes: 2,
                ..t
            }),
            Err(13)
        );
        assert_eq!(
            bad(ScanConfig {
                start: i64::MAX - 5,
                gate_span: 10,
                ..t
            }),
            Err(7)
        );
        assert_eq!(
            bad(ScanConfig {
                gate_span: 100,
                ..t
            }),
            Ok(())
        );
        // A window outside time mode.
        let ssc = ScanConfig {
            count: 10,
            gate_span: 1,
            ..ScanConfig::default()
        };
        assert_eq!(bad(ssc), Err(15));
        assert_eq!(crate::limits::min_period_ticks(0), 1);
        assert_eq!(crate::limits::min_period_ticks(1_000_000), 10);
    }

    #[test]
    fn capacity_bounds_the_whole_scan() {
        let c = ScanConfig {
            direction: Direction::Bidirectional,
            count: 600,
            passes: 2,
            ..ScanConfig::default()
        };
        let l = Limits {
            capacity: 1000,
            ..limits()
        };
        assert_eq!(
            c.validate(&l),
            Err(ConfigError::ExceedsCapacity {
                total: 1200,
                capacity: 1000
            })
        );
    }

    #[test]
    fn list_positions_follow_direction_and_count() {
        let mut c = ScanConfig {
            mode: TriggerMode::List,
            count: 3,
            ..ScanConfig::default()
        };
        assert_eq!(c.validate_positions(&[1, 2, 3]), Ok(()));
        assert_eq!(
            c.validate_positions(&[1, 3, 3]),
            Err(ConfigError::ListOrder { index: 2 })
        );
        assert_eq!(
            c.validate_positions(&[1, 2]),
            Err(ConfigError::ListLength { len: 2, count: 3 })
        );
        c.direction = Direction::Negative;
        assert_eq!(
            c.validate_positions(&[1, 2, 3]),
            Err(ConfigError::ListOrder { index: 1 })
        );
        c.direction = Direction::Bidirectional;
        assert_eq!(c.validate_positions(&[3, 2, 1]), Ok(()));
        assert!(c.validate_positions(&[3, 2, 4]).is_err());
        c.direction = Direction::Either;
        assert_eq!(c.validate_positions(&[3, 9, 1]), Ok(()));
        c.count = 0;
        assert_eq!(c.validate(&limits()), Err(ConfigError::ZeroCount));
    }
}
