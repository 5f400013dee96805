//! Creating a new SQLite journal file in one step.
//!
//! Every run starts by creating its journal. Left to the pool, SQLite made
//! the empty file, switched it to WAL through a rollback journal, and applied
//! the migrations one transaction each, flushing the disk seven times on the
//! way: 7–10 ms of a run's start-up, before any agent could start (BENCHMARKS.md,
//! ninth session). Here one connection creates the file with flushing off,
//! switches it to WAL and writes the whole schema (every migration, in
//! order) in one transaction. Then the file and its folder are flushed once
//! each, here ([`Flush::Now`]) or by the journal's first sync together with
//! its write-ahead log ([`Flush::WithFirstSync`]: a run's journal, whose
//! first sync comes with its first agents' commit, so that no flush of the
//! disk stands between the command and its first agents; see
//! `engine::writer` for the power-loss window this belongs to).
//!
//! The schema is the migrations' own SQL, so a created journal and a
//! migrated old one cannot differ; `user_version` records how many ran.

use std::path::Path;

use super::store::JournalError;

/// When a created journal's file and folder are flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Before [`create_if_missing`] returns.
    Now,
    /// Later, by the caller's first sync of the journal ([`flush_created`]).
    WithFirstSync,
}

/// Creates the journal at `path` with `migrations` applied (see the module
/// documentation) and says so, or leaves an existing file alone (it is
/// opened and migrated as it is) and returns `false`.
pub(crate) fn create_if_missing(
    path: &Path,
    migrations: &[&str],
    flush: Flush,
) -> Result<bool, JournalError> {
    let failed = |source| JournalError::Create {
        path: path.to_path_buf(),
        source,
    };
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    // `create_new`: the run's own file, never someone else's.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io(e)),
    }
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    connection
        .pragma_update(None, "synchronous", "OFF")
        .map_err(failed)?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(io(std::io::Error::other(format!(
            "the file system does not support SQLite's WAL mode (journal_mode stayed {mode})"
        ))));
    }
    let mut schema = String::from("BEGIN;\n");
    for sql in migrations {
        schema.push_str(sql);
        schema.push_str(";\n");
    }
    schema.push_str(&format!(
        "PRAGMA user_version = {};\nCOMMIT;",
        migrations.len()
    ));
    connection.execute_batch(&schema).map_err(failed)?;
    drop_without_checkpoint(connection).map_err(failed)?;
    if flush == Flush::Now {
        flush_created(path).map_err(|(path, source)| JournalError::Io { path, source })?;
    }
    Ok(true)
}

/// Flushes a created journal's file (its header says WAL) and the folder's
/// entries for it and its log; the log's contents are flushed by the
/// journal's syncs. Says which file failed.
pub(crate) fn flush_created(path: &Path) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| (path.to_path_buf(), e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| (dir.to_path_buf(), e))?;
    }
    Ok(())
}

/// Closes `connection` leaving the schema in the write-ahead log: the last
/// connection to close would otherwise copy the log into the file and delete
/// it, work the run's own connections, opened next, would redo.
fn drop_without_checkpoint(connection: rusqlite::Connection) -> Result<(), rusqlite::Error> {
    connection
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map(|_| ())?;
    connection.close().map_err(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &[&str] = &[
        "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)",
        "CREATE TABLE t2 (a INTEGER PRIMARY KEY); INSERT INTO t2 SELECT a FROM t",
        "ALTER TABLE t ADD COLUMN c TEXT",
    ];

    #[test]
    fn a_created_file_is_in_wal_mode_with_every_migration_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        assert!(create_if_missing(&path, SCHEMA, Flush::Now).unwrap());
        let connection = rusqlite::Connection::open(&path).unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
        connection
            .execute("INSERT INTO t (a, b, c) VALUES (1, 'x', 'y')", [])
            .unwrap();
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
    }

    #[test]
    fn an_existing_file_is_left_alone_and_a_bad_migration_leaves_no_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        std::fs::write(&path, b"keep").unwrap();
        assert!(!create_if_missing(&path, SCHEMA, Flush::Now).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");

        let other = dir.path().join("other.sqlite");
        let e =
            create_if_missing(&other, &["CREATE TABLE t (a)", "NOT SQL"], Flush::Now).unwrap_err();
        assert!(e.to_string().contains("other.sqlite"), "{e}");
        let connection = rusqlite::Connection::open(&other).unwrap();
        let tables: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "the transaction was rolled back");
    }
}
