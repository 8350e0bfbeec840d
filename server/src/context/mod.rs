//! Context: what brain remembers about a project, rendered into the enhanced
//! prompt and kept inside the token budget.

pub mod budget;
pub mod build;
pub mod cache;
pub mod flight;
pub mod packet;
pub mod render;
pub mod tokens;
