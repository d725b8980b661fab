//! flyscan firmware core (skeleton; filled in by its issue).
#![cfg_attr(not(feature = "std"), no_std)]

pub mod fpga {
    //! FPGA access layer.
    pub mod regs;
}
