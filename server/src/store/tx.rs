//! The store's write transaction, and what the store learns from its outcome.
//!
//! Domain code opens a [`WriteTx`] with [`Store::begin_write`], calls the
//! store's methods on it and commits; it never sees SeaORM. Every statement
//! and the commit report whether the store failed to write (disk full, I/O
//! error, connection lost, lock timeout) to [`WriteHealth`], which the health
//! probe reads: a store that answers reads but cannot write is NOT_SERVING,
//! until a probe write of real size commits again.
//!
//! [`Store::begin_write`]: super::Store::begin_write

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement};

use super::{Backend, is_unavailable};
use crate::error::{Error, Result};

/// Whether the store's most recent write failed because the store could not
/// write (as opposed to a constraint or a bug). Shared by every clone of a
/// [`Store`](super::Store).
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    failing: AtomicBool,
}

impl WriteHealth {
    /// A write failed because the store could not take it.
    pub(crate) fn failed(&self) {
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::warn!("the store refused a write; health is NOT_SERVING until a probe write commits");
        }
    }

    /// A write committed.
    pub(crate) fn committed(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("the store takes writes again");
        }
    }

    /// Whether the last write outcome was a failure of the store.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }
}

/// An open write transaction (`BEGIN IMMEDIATE` on SQLite). Dropping it
/// without [`WriteTx::commit`] rolls it back; the pool then checks that its
/// connection is outside any transaction before anyone reuses it.
pub struct WriteTx {
    txn: DatabaseTransaction,
    outcome: Outcome,
}

/// Reports a transaction's failure to [`WriteHealth`] when it ends without a commit.
struct Outcome {
    writes: Arc<WriteHealth>,
    backend: Backend,
    /// A statement failed because the store could not take it.
    store_failed: AtomicBool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if self.store_failed.load(Ordering::Acquire) {
            self.writes.failed();
        }
    }
}

impl WriteTx {
    pub(super) fn new(txn: DatabaseTransaction, backend: Backend, writes: Arc<WriteHealth>) -> Self {
        Self { txn, outcome: Outcome { writes, backend, store_failed: AtomicBool::new(false) } }
    }

    /// The database this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.outcome.backend
    }

    /// Commits. On failure nothing of the transaction is stored.
    pub async fn commit(self) -> Result<()> {
        let Self { txn, outcome } = self;
        match txn.commit().await {
            Ok(()) => {
                outcome.writes.committed();
                // Statements that failed earlier were handled by the caller; the commit stands.
                outcome.store_failed.store(false, Ordering::Release);
                Ok(())
            }
            Err(err) => {
                if is_unavailable(&err) {
                    outcome.store_failed.store(true, Ordering::Release);
                }
                Err(Error::from(err))
            }
        }
    }

    /// Rolls back now instead of on drop (a statement the caller expected to
    /// fail, such as a unique violation, spoils a PostgreSQL transaction).
    pub async fn rollback(self) -> Result<()> {
        let Self { txn, outcome: _outcome } = self;
        txn.rollback().await.map_err(Error::from)
    }

    fn note<T>(&self, result: std::result::Result<T, DbErr>) -> std::result::Result<T, DbErr> {
        if let Err(err) = &result
            && is_unavailable(err)
        {
            self.outcome.store_failed.store(true, Ordering::Release);
        }
        result
    }
}

/// Store modules run their statements on the transaction directly; every
/// failure is seen by [`WriteTx::note`].
#[async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> std::result::Result<ExecResult, DbErr> {
        self.note(self.txn.execute_raw(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> std::result::Result<ExecResult, DbErr> {
        self.note(self.txn.execute_unprepared(sql).await)
    }

    async fn query_one_raw(&self, stmt: Statement) -> std::result::Result<Option<QueryResult>, DbErr> {
        self.note(self.txn.query_one_raw(stmt).await)
    }

    async fn query_all_raw(&self, stmt: Statement) -> std::result::Result<Vec<QueryResult>, DbErr> {
        self.note(self.txn.query_all_raw(stmt).await)
    }
}
