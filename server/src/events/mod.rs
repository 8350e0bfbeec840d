//! Events: the outbox of late results, and their live delivery.
//!
//! Every late result (an image's facts, or its failure) is an `events` row
//! written in the transaction that produced it, with a per-project cursor that
//! increases in commit order. The store is the truth; live delivery is only a
//! wake-up:
//!
//! - after a local commit the writer calls [`EventBus::publish`];
//! - on PostgreSQL the writing transaction also sends `pg_notify` with
//!   "project_id:cursor", and every replica's listener ([`listener`]) turns it
//!   into a `publish`, so a subscriber on replica B hears of A's commits;
//! - a per-project hub ([`hub`]) reads the new events from the store once per
//!   wake-up and fans them out to that project's subscribers;
//! - a subscriber ([`Watch`]) replays stored events after its cursor, then
//!   follows the hub, with no gap and no duplicate; if it falls behind (its
//!   buffer fills) it catches up from the store on its own and rejoins.

mod hub;
pub mod listener;
mod watch;

pub use self::{
    hub::EventBus,
    watch::{Watch, WatchItem},
};
use crate::model::Event;
