//! `--db FILE`: the history of fingerprints across triage runs, in an SQLite database
//! (rusqlite with SQLite bundled, so every machine has the same SQLite and CI needs no
//! system library).
//!
//! Tables: `runs` (one row per triage run), `fingerprints` (first seen, last seen, total
//! occurrences and runs of each fingerprint) and `sightings` (occurrences of a fingerprint in
//! a run). The schema version is SQLite's `user_version`; a newer one is refused, a file
//! that is not SQLite (or is damaged) is a clear error. Each run is one transaction, and
//! concurrent runs wait for each other (busy timeout) instead of failing.

use super::{History, Report};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The schema this wedge writes.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("--db {path}: {what}")]
    Db { path: String, what: String },
}

/// An open history database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    wedge_version TEXT NOT NULL,
    inputs TEXT NOT NULL,
    files INTEGER NOT NULL,
    failures INTEGER NOT NULL
);
CREATE TABLE fingerprints (
    fingerprint TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    signature TEXT,
    title TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    count INTEGER NOT NULL,
    runs INTEGER NOT NULL
);
CREATE TABLE sightings (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    fingerprint TEXT NOT NULL REFERENCES fingerprints(fingerprint),
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, fingerprint)
);
";

impl Db {
    fn err(&self, e: impl std::fmt::Display) -> DbError {
        explain(&self.path, e)
    }

    /// Opens (or creates) the database at `path` and checks or creates its schema.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path).map_err(|e| explain(path, e))?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| db.err(e))?;
        // The first read of the file: a file that is not SQLite fails here.
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db.err(e))?;
        let tables: i64 = db
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| db.err(e))?;
        match version {
            0 if tables == 0 => {
                db.conn
                    .execute_batch(&format!(
                        "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                    ))
                    .map_err(|e| db.err(e))?;
            }
            0 => {
                return Err(db.err(
                    "an SQLite database, but not a wedge triage history (no schema version)",
                ));
            }
            SCHEMA_VERSION => {}
            v if v > SCHEMA_VERSION => {
                return Err(db.err(format!(
                    "history schema version {v} was written by a newer wedge (this one reads {SCHEMA_VERSION})"
                )));
            }
            v => return Err(db.err(format!("unknown history schema version {v}"))),
        }
        Ok(db)
    }

    /// Records this run's groups and fills in each group's history (this run included).
    pub fn record(
        &mut self,
        report: &mut Report,
        inputs: &[PathBuf],
        now: &str,
    ) -> Result<(), DbError> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| explain(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let inputs_text = inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let files =
            report.files.logs + report.files.cores + report.files.junit + report.files.bundles;
        let failures: u64 = report.groups.iter().map(|g| g.count).sum();
        tx.execute(
            "INSERT INTO runs (started_at, wedge_version, inputs, files, failures) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, env!("CARGO_PKG_VERSION"), inputs_text, files as i64, failures as i64],
        )
        .map_err(e)?;
        let run_id = tx.last_insert_rowid();
        for g in report.groups.iter_mut() {
            tx.execute(
                "INSERT INTO fingerprints (fingerprint, status, signature, title, first_seen, last_seen, count, runs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 1)
                 ON CONFLICT (fingerprint) DO UPDATE SET
                    status = excluded.status, signature = excluded.signature, title = excluded.title,
                    last_seen = excluded.last_seen, count = count + excluded.count, runs = runs + 1",
                params![g.fingerprint, g.status.name(), g.signature, g.title, now, g.count as i64],
            )
            .map_err(e)?;
            tx.execute(
                "INSERT INTO sightings (run_id, fingerprint, count) VALUES (?1, ?2, ?3)",
                params![run_id, g.fingerprint, g.count as i64],
            )
            .map_err(e)?;
            g.history = tx
                .query_row(
                    "SELECT first_seen, last_seen, count, runs FROM fingerprints WHERE fingerprint = ?1",
                    params![g.fingerprint],
                    |r| {
                        Ok(History {
                            first_seen: r.get(0)?,
                            last_seen: r.get(1)?,
                            total_count: r.get::<_, i64>(2)?.max(0) as u64,
                            runs: r.get::<_, i64>(3)?.max(0) as u64,
                        })
                    },
                )
                .optional()
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }
}

/// A database error in words a user can act on.
fn explain(path: &Path, e: impl std::fmt::Display) -> DbError {
    let what = e.to_string();
    let what = if what.contains("file is not a database") {
        format!("not an SQLite database ({what})")
    } else if what.contains("malformed") {
        format!("the SQLite database is damaged ({what})")
    } else {
        what
    };
    DbError::Db {
        path: path.display().to_string(),
        what,
    }
}

/// Now as RFC 3339 UTC with milliseconds: `2026-12-02T14:30:05.123Z`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_millis() as i64)
}

/// Milliseconds since the epoch as RFC 3339 UTC (proleptic Gregorian calendar).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_221_805_123), "2026-12-02T14:30:05.123Z");
    }

    #[test]
    fn garbage_and_foreign_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5au8; 8192]).unwrap();
        let e = Db::open(&junk).err().expect("garbage refused").to_string();
        assert!(e.contains("not an SQLite database"), "{e}");
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = Db::open(&other).err().expect("foreign refused").to_string();
        assert!(e.contains("not a wedge triage history"), "{e}");
        let fresh = dir.path().join("fresh.db");
        Db::open(&fresh).unwrap();
        Db::open(&fresh).unwrap();
    }
}
