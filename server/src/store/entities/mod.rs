//! SeaORM entities, one per table created by `brain-migrations`.
//! Only `store` uses them; the rest of the server sees `crate::model` types.

pub mod admin_keys;
pub mod api_keys;
pub mod conversation_turns;
pub mod events;
pub mod image_analyses;
pub mod jobs;
pub mod memories;
pub mod orchestrations;
pub mod projects;
pub mod scenes;
pub mod store_probe;
pub mod tenants;
