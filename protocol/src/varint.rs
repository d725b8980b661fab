//! Unsigned LEB128 varints and zigzag mapping for signed values (PROTOCOL.md §Varints).
//!
//! Decoding is strict: at most 10 bytes, the 10th byte may only carry the top bit of a u64, and
//! a padded encoding (a final 0x00 after a continuation byte) is refused, so every u64 has
//! exactly one accepted encoding and nothing overflows.

use nom::IResult;

/// Longest varint of a u64.
pub const MAX_VARINT_LEN: usize = 10;

/// Maps a signed value onto an unsigned one so small magnitudes of either sign are short.
#[inline]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Writes `v` into `out` (which must hold [`MAX_VARINT_LEN`] bytes) and returns its length.
#[inline]
pub fn encode_u64(mut v: u64, out: &mut [u8; MAX_VARINT_LEN]) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Length of the varint encoding of `v`.
#[inline]
pub const fn encoded_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// nom parser for one varint. Errors with `Incomplete`-free `Eof` on truncation, `TooLarge` on
/// an encoding longer than 10 bytes or overflowing 64 bits, and `Verify` on a padded encoding
/// (a final 0x00 byte after a continuation byte).
#[inline]
pub fn parse_u64(input: &[u8]) -> IResult<&[u8], u64> {
    // Fast paths: in compact point data almost every varint is one or two bytes.
    match input {
        [b0, rest @ ..] if *b0 < 0x80 => return Ok((rest, u64::from(*b0))),
        [b0, b1, rest @ ..] if *b1 < 0x80 && *b1 != 0 => {
            return Ok((rest, u64::from(*b0 & 0x7f) | (u64::from(*b1) << 7)));
        }
        _ => {}
    }
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(MAX_VARINT_LEN) {
        if i == MAX_VARINT_LEN - 1 && b > 1 {
            return Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // A last byte of 0 after a continuation byte is an over-long encoding of a shorter
            // varint; refusing it keeps exactly one accepted encoding per value.
            if b == 0 && i > 0 {
                return Err(nom::Err::Error(nom::error::Error::new(
                    input,
                    nom::error::ErrorKind::Verify,
                )));
            }
            return Ok((&input[i + 1..], v));
        }
    }
    if input.len() >= MAX_VARINT_LEN {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TooLarge,
        )));
    }
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Eof,
    )))
}

/// nom parser for a zigzag-mapped signed varint.
#[inline]
pub fn parse_i64(input: &[u8]) -> IResult<&[u8], i64> {
    let (rest, v) = parse_u64(input)?;
    Ok((rest, unzigzag(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        // value, encoding (PROTOCOL.md §Varints table)
        let rows: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, bytes) in rows {
            let mut out = [0u8; MAX_VARINT_LEN];
            let n = encode_u64(*v, &mut out);
            assert_eq!(&out[..n], *bytes, "encoding of {v}");
            assert_eq!(encoded_len(*v), n);
            assert_eq!(parse_u64(bytes), Ok((&[][..], *v)));
        }
        for (v, z) in [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ] {
            assert_eq!(zigzag(v), z);
            assert_eq!(unzigzag(z), v);
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert!(parse_u64(&[0xff; 10]).is_err());
        assert!(parse_u64(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]).is_err());
        assert!(parse_u64(&[0x80]).is_err());
        // Padded encodings of 0 and 1 are not canonical, so they are refused.
        assert!(parse_u64(&[0x80, 0x00]).is_err());
        assert!(parse_u64(&[0x81, 0x80, 0x00]).is_err());
        assert!(parse_u64(&[]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(v: u64, s: i64) {
            let mut out = [0u8; MAX_VARINT_LEN];
            let n = encode_u64(v, &mut out);
            prop_assert_eq!(parse_u64(&out[..n]), Ok((&[][..], v)));
            prop_assert_eq!(unzigzag(zigzag(s)), s);
        }
    }
}
