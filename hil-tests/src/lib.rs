//! flyscan-hil-tests (skeleton; filled in by its issue).
