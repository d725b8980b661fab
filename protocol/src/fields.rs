//! One field list per message, read by both directions. A [`Field`] is a value with a wire form:
//! it parses itself from the front of a payload with nom and emits itself through a
//! [`Cursor`]. [`record!`] turns a struct's field list (names only, in wire order; the types
//! come from the struct) into its parser and its emitter, so the two can never disagree about
//! the order or the width of a field.

use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};
use crate::limits::MAX_DETAIL;
use nom::number::complete::{le_i64, le_u8, le_u16, le_u32, le_u64};

type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// Where a field is being read: the message type (for `Truncated`) and the field's name as
/// PROTOCOL.md spells it, `record.field` (for `InvalidField`).
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// Message type being parsed.
    pub msg_type: u8,
    /// Field name.
    pub field: &'static str,
}

impl At {
    /// The payload ended inside this field.
    pub fn truncated(self) -> ParseError {
        ParseError::Truncated {
            msg_type: self.msg_type,
        }
    }

    /// The field holds a value outside its range.
    pub fn invalid(self, value: u64) -> ParseError {
        ParseError::InvalidField {
            field: self.field,
            value,
        }
    }
}

/// A value with a wire form, parsed from and emitted into a message payload.
pub trait Field<'a>: Sized {
    /// Reads the value from the front of `i`; returns the rest.
    fn parse(i: &'a [u8], at: At) -> Result<(&'a [u8], Self), ParseError>;
    /// Appends the value.
    fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError>;
}

macro_rules! int_fields {
    ($($t:ty => $nom:ident, $put:ident;)*) => {$(
        impl<'a> Field<'a> for $t {
            #[inline]
            fn parse(i: &'a [u8], at: At) -> Result<(&'a [u8], Self), ParseError> {
                $nom::<_, NomErr<'_>>(i).map_err(|_| at.truncated())
            }
            #[inline]
            fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError> {
                c.$put(*self)
            }
        }
    )*};
}

int_fields! {
    u8 => le_u8, u8;
    u16 => le_u16, u16;
    u32 => le_u32, u32;
    u64 => le_u64, u64;
    i64 => le_i64, i64;
}

/// A reserved byte: sent as 0, ignored on receipt (PROTOCOL.md, *What the decoder accepts*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved;

impl<'a> Field<'a> for Reserved {
    fn parse(i: &'a [u8], at: At) -> Result<(&'a [u8], Self), ParseError> {
        let (r, _) = u8::parse(i, at)?;
        Ok((r, Reserved))
    }
    fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError> {
        c.u8(0)
    }
}

/// The rest of the payload, as is (a point batch's data).
impl<'a> Field<'a> for &'a [u8] {
    fn parse(i: &'a [u8], _: At) -> Result<(&'a [u8], Self), ParseError> {
        Ok((&i[i.len()..], i))
    }
    fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError> {
        c.put(self)
    }
}

/// Text with a one-byte length before it (`len` ≤ 64, then UTF-8), as in a `CommandReply`.
impl<'a> Field<'a> for heapless::String<MAX_DETAIL> {
    fn parse(i: &'a [u8], at: At) -> Result<(&'a [u8], Self), ParseError> {
        let (r, len) = u8::parse(i, at)?;
        let len = usize::from(len);
        if len > MAX_DETAIL {
            return Err(ParseError::InvalidField {
                field: "reply.len",
                value: len as u64,
            });
        }
        let (text, r) = r.split_at_checked(len).ok_or(at.truncated())?;
        let text = core::str::from_utf8(text).map_err(|_| at.invalid(len as u64))?;
        let mut s = heapless::String::new();
        // Cannot fail: len ≤ MAX_DETAIL was checked above.
        let _ = s.push_str(text);
        Ok((r, s))
    }
    fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError> {
        // A heapless::String<64> never holds more than 64 bytes.
        c.u8(self.len() as u8)?;
        c.put(self.as_bytes())
    }
}

/// Implements [`Field`] for a one-byte code enum with `from_u8` (unknown codes are
/// `InvalidField`) and `#[repr(u8)]`.
macro_rules! code_field {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> $crate::fields::Field<'a> for $t {
            #[inline]
            fn parse(
                i: &'a [u8],
                at: $crate::fields::At,
            ) -> Result<(&'a [u8], Self), $crate::error::ParseError> {
                let (r, v) = <u8 as $crate::fields::Field>::parse(i, at)?;
                let code = <$t>::from_u8(v).ok_or(at.invalid(v.into()))?;
                Ok((r, code))
            }
            #[inline]
            fn emit(
                &self,
                c: &mut $crate::cursor::Cursor<'_>,
            ) -> Result<(), $crate::error::EncodeError> {
                c.u8(*self as u8)
            }
        }
    )*};
}
pub(crate) use code_field;

/// Parses the named fields in order into `$ctor { … }`; `_` is a reserved byte. Expands to
/// `(rest, value)`.
macro_rules! parse_fields {
    ($i:ident, $t:expr, $p:literal, [$($ctor:tt)+], [$($done:ident)*]) => {
        ($i, $($ctor)+ { $($done),* })
    };
    ($i:ident, $t:expr, $p:literal, [$($ctor:tt)+], [$($done:ident)*] _ $(, $($rest:tt)*)?) => {{
        let at = $crate::fields::At { msg_type: $t, field: concat!($p, ".reserved") };
        let ($i, $crate::fields::Reserved) =
            <$crate::fields::Reserved as $crate::fields::Field>::parse($i, at)?;
        $crate::fields::parse_fields!($i, $t, $p, [$($ctor)+], [$($done)*] $($($rest)*)?)
    }};
    ($i:ident, $t:expr, $p:literal, [$($ctor:tt)+], [$($done:ident)*] $f:ident $(, $($rest:tt)*)?) => {{
        let at = $crate::fields::At { msg_type: $t, field: concat!($p, ".", stringify!($f)) };
        let ($i, $f) = $crate::fields::Field::parse($i, at)?;
        $crate::fields::parse_fields!($i, $t, $p, [$($ctor)+], [$($done)* $f] $($($rest)*)?)
    }};
}
pub(crate) use parse_fields;

/// Emits `$v.field` for each named field in order; `_` is a reserved byte.
macro_rules! emit_fields {
    ($c:ident, $v:expr $(,)?) => {};
    ($c:ident, $v:expr, _ $(, $($rest:tt)*)?) => {
        $crate::fields::Field::emit(&$crate::fields::Reserved, $c)?;
        $crate::fields::emit_fields!($c, $v $(, $($rest)*)?);
    };
    ($c:ident, $v:expr, $f:ident $(, $($rest:tt)*)?) => {
        $crate::fields::Field::emit(&$v.$f, $c)?;
        $crate::fields::emit_fields!($c, $v $(, $($rest)*)?);
    };
}
pub(crate) use emit_fields;

/// The wire layout of a struct, as one list of its field names in wire order (`_` marks a
/// reserved byte; the types are the struct's own). Implements [`Field`] for it; errors name
/// fields `prefix.field`. With `check(parse_check, emit_check)` the parsed value, and the value
/// about to be emitted, must also pass those functions.
macro_rules! record {
    ($lt:lifetime, $ty:ty, $p:literal, { $($fields:tt)* }) => {
        $crate::fields::record!($lt, $ty, $p, check(|_, _| Ok(()), |_| Ok(())), { $($fields)* });
    };
    ($lt:lifetime, $ty:ty, $p:literal, check($pc:expr, $ec:expr), { $($fields:tt)* }) => {
        impl<$lt> $crate::fields::Field<$lt> for $ty {
            fn parse(
                i: &$lt [u8],
                at: $crate::fields::At,
            ) -> Result<(&$lt [u8], Self), $crate::error::ParseError> {
                let t = at.msg_type;
                let (r, v) = $crate::fields::parse_fields!(i, t, $p, [Self], [] $($fields)*);
                let check: fn(&Self, u8) -> Result<(), $crate::error::ParseError> = $pc;
                check(&v, t)?;
                Ok((r, v))
            }
            fn emit(
                &self,
                c: &mut $crate::cursor::Cursor<'_>,
            ) -> Result<(), $crate::error::EncodeError> {
                let check: fn(&Self) -> Result<(), $crate::error::EncodeError> = $ec;
                check(self)?;
                $crate::fields::emit_fields!(c, self, $($fields)*);
                Ok(())
            }
        }
    };
}
pub(crate) use record;
