//! Fixed-size buffers for the large tables (resend history, transmit queue, list window).
//!
//! Without `std` they are plain arrays inside the firmware object (place it in a `static`).
//! With `std` they are allocated once, at construction, on the heap: hundreds of KiB inside a
//! value would overflow thread stacks while the object is built and moved. Either way the size
//! is fixed and nothing is allocated after construction.

use core::ops::{Deref, DerefMut};

/// A `[T; N]` that lives inline (no_std) or in one start-up allocation (std).
#[derive(Debug, Clone)]
pub struct Buf<T, const N: usize>(
    #[cfg(feature = "std")] std::boxed::Box<[T; N]>,
    #[cfg(not(feature = "std"))] [T; N],
);

impl<T: Copy + Default, const N: usize> Default for Buf<T, N> {
    fn default() -> Self {
        #[cfg(feature = "std")]
        {
            let v: std::boxed::Box<[T]> = std::vec![T::default(); N].into_boxed_slice();
            match v.try_into() {
                Ok(b) => Self(b),
                // The slice has exactly N elements, so the conversion cannot fail.
                Err(_) => unreachable!("boxed slice of N elements"),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            Self([T::default(); N])
        }
    }
}

impl<T, const N: usize> Deref for Buf<T, N> {
    type Target = [T; N];
    fn deref(&self) -> &[T; N] {
        &self.0
    }
}

impl<T, const N: usize> DerefMut for Buf<T, N> {
    fn deref_mut(&mut self) -> &mut [T; N] {
        &mut self.0
    }
}
