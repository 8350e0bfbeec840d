//! The statement log (`statement_log_file`): the text of every distinct SQL
//! statement the server runs, once each, without parameter values, so a test
//! can check the plan of every query the server really issues.

use std::{
    collections::HashSet,
    io::Write,
    sync::{Arc, Mutex},
};

use sea_orm::DatabaseConnection;

use crate::{config::StoreSettings, error::Error};

struct StatementLog {
    seen: Mutex<HashSet<String>>,
    file: Mutex<std::fs::File>,
}

impl StatementLog {
    fn record(&self, sql: &str) {
        let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let fresh = self.seen.lock().map(|mut seen| seen.insert(line.clone())).unwrap_or(false);
        if fresh && let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// Makes the connections report their statements to the log, when one is configured.
pub(super) fn attach(
    settings: &StoreSettings,
    connections: [DatabaseConnection; 3],
) -> Result<(DatabaseConnection, DatabaseConnection, DatabaseConnection), Error> {
    let [mut a, mut b, mut c] = connections;
    if let Some(path) = &settings.statement_log_file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::internal(format!("cannot open statement_log_file {}: {e}", path.display())))?;
        let log = Arc::new(StatementLog { seen: Mutex::default(), file: Mutex::new(file) });
        for conn in [&mut a, &mut b, &mut c] {
            let log = log.clone();
            conn.set_metric_callback(move |info| log.record(&info.statement.sql));
        }
    }
    Ok((a, b, c))
}
