//! Typed client for brain.
