//! Drivers run agents on platforms. This module starts with platform detection
//! (`--platform auto` and `doctor`); the drivers themselves follow.

pub mod detect;
