//! A fresh device session id at every start (std only): the host tells a restarted device from
//! one that only went quiet by a `boot_id` it has not seen (PROTOCOL.md §Sessions).

use std::io::Read;

/// A random `u32` from the OS (`/dev/urandom`); if that cannot be read, one mixed from the
/// clock and the process id, which still differs between two starts.
pub fn random() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u32::from_le_bytes(b);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Fold the 128-bit clock and the pid together; a cheap mix is enough to tell starts apart.
    let x = nanos ^ (u128::from(std::process::id()) << 64);
    (x as u32) ^ ((x >> 32) as u32) ^ ((x >> 64) as u32) ^ ((x >> 96) as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_starts_differ() {
        // 2⁻³² chance of a false failure; three draws make a collision of all three negligible.
        let a = super::random();
        let b = super::random();
        let c = super::random();
        assert!(a != b || b != c, "three equal boot ids: {a}");
    }
}
