//! PostgreSQL `LISTEN` on a dedicated connection: how replicas hear about
//! each other's commits. Notifications carry ids only; the store holds the data.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};

use crate::error::{Error, Result};

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Channel it arrived on.
    pub channel: String,
    /// Its payload.
    pub payload: String,
}

/// A listening connection (outside the pools, so it never starves queries).
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// Connects to `url` and listens on `channels`. A connection attempt,
    /// here and when `recv` reconnects, gives up after `connect_timeout`
    /// (sqlx's own default is 30 s, so a stopped database went unnoticed that long).
    pub async fn connect(url: &str, channels: &[&str], connect_timeout: Duration) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(connect_timeout)
            .connect_lazy(url)
            .map_err(Error::store_unavailable)?;
        let mut inner = PgListener::connect_with(&pool).await.map_err(Error::store_unavailable)?;
        inner.listen_all(channels.iter().copied()).await.map_err(Error::store_unavailable)?;
        Ok(Self { inner })
    }

    /// The next notification; `Ok(None)` when the connection was lost and
    /// re-established, in which case notifications may have been missed.
    pub async fn recv(&mut self) -> Result<Option<Notification>> {
        match self.inner.try_recv().await {
            Ok(Some(n)) => Ok(Some(Notification { channel: n.channel().to_owned(), payload: n.payload().to_owned() })),
            Ok(None) => Ok(None),
            Err(err) => Err(Error::store_unavailable(err)),
        }
    }
}
