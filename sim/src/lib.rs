//! flyscan-sim (skeleton; filled in by its issue).
