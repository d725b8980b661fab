//! flyscan-firmware (skeleton; filled in by its issue).
