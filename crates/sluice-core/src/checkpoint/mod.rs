//! Checkpoints: what a job writes so that a restart resumes after its last
//! completed batch, with no gap and no duplicate.
//!
//! This module is being built in steps (issue 8). So far: the
//! [`manifest`], the small file whose atomic write commits a batch and names
//! everything a restart needs. `SET checkpoint` is still refused.

pub mod manifest;

pub use manifest::{MANIFEST_VERSION, Manifest, ManifestStore};
