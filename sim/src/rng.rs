//! Independent, reproducible random streams: each process (encoder faults, each detector
//! channel, each link direction, jitter) draws from its own generator derived from the scenario
//! seed and a fixed stream id, so changing one process never shifts the numbers of another.

use rand::SeedableRng;
use rand::rngs::SmallRng;

/// Stream ids (any distinct constants).
pub mod stream {
    /// Motor jitter phases and frequencies.
    pub const JITTER: u64 = 1;
    /// Encoder glitches and missing edges.
    pub const ENCODER: u64 = 2;
    /// Link, device → host.
    pub const LINK_UP: u64 = 3;
    /// Link, host → device.
    pub const LINK_DOWN: u64 = 4;
    /// Detector channel `i` uses `DETECTOR + i`.
    pub const DETECTOR: u64 = 100;
}

/// The generator of stream `id` under `seed`.
pub fn rng_for(seed: u64, id: u64) -> SmallRng {
    // SplitMix64 finaliser: well-separated seeds for neighbouring ids.
    let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}
