//! flyscan-host (skeleton; filled in by its issue).
