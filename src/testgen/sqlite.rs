//! The generated-tests cache in one SQLite file ([`SqliteCache`]), the store verdict ships.
//!
//! **Where**: `generated-tests.sqlite3` in `testgen.cache_dir`, by default `testgen/` in the
//! verdict cache directory (`$VERDICT_CACHE_DIR`, else `$XDG_CACHE_HOME/verdict`, else
//! `~/.cache/verdict`). The JSON files (`<digest>.json`) an earlier verdict wrote there are
//! ignored, not migrated: delete them.
//!
//! **Sharing between processes**: WAL journal (readers never wait for the writer), a busy
//! timeout of [`BUSY_TIMEOUT`], and every write one transaction. A generation is stored with
//! `INSERT OR IGNORE` and read back in the same transaction, so when two processes generate the
//! same key at once the first row stays and both use it. Validations are upserts (the latest
//! decision per key, method and basis).
//!
//! **Schema**: `PRAGMA user_version` is [`SCHEMA_VERSION`]. An empty file gets the schema; a
//! file of another version (or not a database, or with other tables) is reported and bypassed:
//! scoring goes on without a persistent cache, and `verdict tests show` fails with the reason.
//!
//! **Threads**: the connection lives on a thread of its own; callers send it jobs and await the
//! answer, so no SQLite call runs on the async runtime's workers. Dropping the cache lets the
//! thread finish the queued jobs (recorded validations) and waits for it.
//!
//! **Bounds**: a row larger than [`MAX_ROW_BYTES`] is refused (reported, treated as absent),
//! and `entries` reads at most [`MAX_VALIDATIONS`] validations and [`MAX_PROBLEMS`] names per
//! entry.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::cache::{now, CacheError, CacheKey, Entry, Generated, TestCache, Validation};
use super::extract::Extraction;
use super::prompt::Shape;

/// The file name in the cache directory.
pub const FILE_NAME: &str = "generated-tests.sqlite3";

/// The schema version (`PRAGMA user_version`) this verdict reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest row read back (answer, tests and dropped candidates together).
pub const MAX_ROW_BYTES: i64 = 8 << 20;

/// The most validations `entries` reads per generation.
pub const MAX_VALIDATIONS: usize = 32;

/// The most problem names `entries` reads per generation.
pub const MAX_PROBLEMS: usize = 32;

const SCHEMA: &str = "
CREATE TABLE generations (
    key            TEXT PRIMARY KEY,
    problem_sha256 TEXT NOT NULL,
    entry_point    TEXT,
    model          TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    shape          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    answer         TEXT NOT NULL,
    finish_reason  TEXT,
    extraction     TEXT NOT NULL
);
CREATE TABLE problems (
    name TEXT NOT NULL,
    key  TEXT NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE INDEX problems_by_key ON problems (key);
CREATE TABLE validations (
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    basis      TEXT NOT NULL,
    problem    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    decision   TEXT NOT NULL,
    PRIMARY KEY (key, method, basis)
);
";

/// Whether the file may be created and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create the file (and its directory) if needed; read and write.
    ReadWrite,
    /// Read an existing file only (`verdict tests show`).
    ReadOnly,
}

enum Job {
    Get(
        CacheKey,
        oneshot::Sender<Result<Option<Generated>, CacheError>>,
    ),
    Put(
        Box<Generated>,
        String,
        oneshot::Sender<Result<Generated, CacheError>>,
    ),
    Record(Validation),
    Entries(
        String,
        usize,
        oneshot::Sender<Result<Vec<Entry>, CacheError>>,
    ),
}

/// The generated-tests cache in a SQLite file. See the module doc.
pub struct SqliteCache {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteCache {
    /// The cache in the file `path`, opened on its own thread at the first request. A file that
    /// cannot be used is reported once (a warning) and every request fails with the reason.
    pub fn open(path: impl Into<PathBuf>, access: Access) -> Self {
        let path = path.into();
        let (tx, rx) = mpsc::channel();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("testgen-cache".into())
            .spawn(move || serve(&thread_path, access, rx));
        let (jobs, thread) = match thread {
            Ok(t) => (Some(tx), Some(t)),
            Err(e) => {
                // Every request then fails with "closed": generation goes on uncached.
                tracing::warn!(path = %path.display(), error = %e,
                    "No thread for the generated-tests cache; going on without it.");
                (None, None)
            }
        };
        SqliteCache {
            path,
            jobs: Mutex::new(jobs),
            thread: Mutex::new(thread),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl Into<String>) -> CacheError {
        CacheError {
            location: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn send(&self, job: Job) -> Result<(), CacheError> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.as_ref()
            .ok_or_else(|| self.error("closed"))?
            .send(job)
            .map_err(|_| self.error("the cache thread has stopped"))
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, CacheError>>) -> Job,
    ) -> Result<T, CacheError> {
        let (tx, rx) = oneshot::channel();
        self.send(job(tx))?;
        rx.await
            .map_err(|_| self.error("the cache thread has stopped"))?
    }
}

impl Drop for SqliteCache {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queued jobs are done.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

#[async_trait::async_trait]
impl TestCache for SqliteCache {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn get(&self, key: &CacheKey) -> Result<Option<Generated>, CacheError> {
        let key = key.clone();
        self.ask(|tx| Job::Get(key, tx)).await
    }

    async fn put(&self, generated: &Generated, problem: &str) -> Result<Generated, CacheError> {
        let (g, p) = (Box::new(generated.clone()), problem.to_string());
        self.ask(|tx| Job::Put(g, p, tx)).await
    }

    fn record(&self, validation: Validation) {
        if let Err(e) = self.send(Job::Record(validation)) {
            tracing::warn!(error = %e, "Validation not recorded.");
        }
    }

    async fn entries(&self, problem: &str, limit: usize) -> Result<Vec<Entry>, CacheError> {
        let p = problem.to_string();
        self.ask(|tx| Job::Entries(p, limit, tx)).await
    }
}

/// The cache thread: open at the first job, then answer jobs until the channel closes.
fn serve(path: &Path, access: Access, jobs: mpsc::Receiver<Job>) {
    let mut db: Option<Result<Connection, String>> = None;
    let err = |reason: String| CacheError {
        location: path.display().to_string(),
        reason,
    };
    for job in jobs {
        let conn = db.get_or_insert_with(|| {
            open(path, access).inspect_err(|e| {
                if access == Access::ReadWrite {
                    tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        "The generated-tests cache cannot be used; going on without it \
                         (delete the file or set testgen.cache_dir)."
                    );
                }
            })
        });
        let conn = conn.as_mut().map_err(|e| e.clone());
        match job {
            Job::Get(key, reply) => {
                let _ = reply.send(conn.and_then(|c| get(c, &key)).map_err(err));
            }
            Job::Put(g, problem, reply) => {
                let _ = reply.send(conn.and_then(|c| put(c, &g, &problem)).map_err(err));
            }
            Job::Record(v) => {
                if let Err(e) = conn.and_then(|c| record(c, &v)) {
                    tracing::warn!(path = %path.display(), error = %e, "Validation not recorded.");
                }
            }
            Job::Entries(problem, limit, reply) => {
                let _ = reply.send(conn.and_then(|c| entries(c, &problem, limit)).map_err(err));
            }
        }
    }
}

fn open(path: &Path, access: Access) -> Result<Connection, String> {
    let flags = match access {
        Access::ReadWrite => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        }
        Access::ReadOnly => {
            if !path.exists() {
                return Err(
                    "no such file (nothing was generated with this cache directory)".into(),
                );
            }
            OpenFlags::SQLITE_OPEN_READ_ONLY
        }
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    let not_usable = |e: rusqlite::Error| format!("not a usable SQLite database: {e}");
    if access == Access::ReadWrite {
        // Persistent once set; every process asks, the first one switches.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(not_usable)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::info!(path = %path.display(), mode, "WAL journal not available here.");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(not_usable)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(not_usable)?;
        let version = schema_version(&tx).map_err(not_usable)?;
        if version == 0 {
            tx.execute_batch(SCHEMA)
                .map_err(|e| format!("not a generated-tests cache (creating the schema: {e})"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(not_usable)?;
        }
        check_version(version)?;
        tx.commit().map_err(not_usable)?;
    } else {
        let version = schema_version(&conn).map_err(not_usable)?;
        if version == 0 {
            return Err("not a generated-tests cache (no schema)".into());
        }
        check_version(version)?;
    }
    Ok(conn)
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn check_version(version: i64) -> Result<(), String> {
    match version {
        0 | SCHEMA_VERSION => Ok(()),
        v if v > SCHEMA_VERSION => Err(format!(
            "schema version {v} is newer than this verdict's ({SCHEMA_VERSION}); \
             use a newer verdict or another testgen.cache_dir"
        )),
        v => Err(format!(
            "unknown schema version {v} (this verdict's is {SCHEMA_VERSION})"
        )),
    }
}

const SELECT_GENERATION: &str = "SELECT key, problem_sha256, entry_point, model, prompt_version, \
     seed, n, shape, created_at, answer, finish_reason, extraction, \
     length(CAST(answer AS BLOB)) + length(CAST(extraction AS BLOB)) \
     + ifnull(length(CAST(finish_reason AS BLOB)), 0) FROM generations";

/// A generation row: (digest, created_at, generation). Checks the size before reading the text.
fn read_generation(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entry, String>> {
    let digest: String = row.get(0)?;
    let size: i64 = row.get(12)?;
    if size > MAX_ROW_BYTES {
        return Ok(Err(format!(
            "entry {digest} is {size} bytes, more than the {MAX_ROW_BYTES} a row may hold"
        )));
    }
    let shape: String = row.get(7)?;
    let shape = match serde_json::from_value::<Shape>(serde_json::Value::String(shape.clone())) {
        Ok(s) => s,
        Err(_) => return Ok(Err(format!("entry {digest}: unknown shape {shape:?}"))),
    };
    let seed: i64 = row.get(5)?;
    let n: i64 = row.get(6)?;
    let key = CacheKey {
        problem_sha256: row.get(1)?,
        entry_point: row.get(2)?,
        model: row.get(3)?,
        prompt_version: row.get(4)?,
        seed: seed as u64,
        n: usize::try_from(n).unwrap_or(usize::MAX),
        shape,
    };
    if key.digest() != digest {
        return Ok(Err(format!(
            "entry {digest}: its key parts do not hash to it"
        )));
    }
    let created_at: i64 = row.get(8)?;
    let extraction: String = row.get(11)?;
    let extraction: Extraction = match serde_json::from_str(&extraction) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("entry {digest}: unreadable tests: {e}"))),
    };
    Ok(Ok(Entry {
        digest,
        created_at: created_at.max(0) as u64,
        generated: Generated {
            key,
            answer: row.get(9)?,
            finish_reason: row.get(10)?,
            extraction,
        },
        problems: Vec::new(),
        validations: Vec::new(),
    }))
}

fn get_by_digest(conn: &Connection, digest: &str) -> Result<Option<Entry>, String> {
    let sql = format!("{SELECT_GENERATION} WHERE key = ?1");
    conn.query_row(&sql, [digest], read_generation)
        .optional()
        .map_err(|e| e.to_string())?
        .transpose()
}

fn get(conn: &mut Connection, key: &CacheKey) -> Result<Option<Generated>, String> {
    match get_by_digest(conn, &key.digest()) {
        Ok(e) => Ok(e.map(|e| e.generated)),
        Err(e) => {
            tracing::warn!(error = %e, "A cached generation was unreadable; treated as absent.");
            Ok(None)
        }
    }
}

fn put(conn: &mut Connection, g: &Generated, problem: &str) -> Result<Generated, String> {
    let digest = g.key.digest();
    let extraction = serde_json::to_string(&g.extraction).expect("an extraction serializes");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT OR IGNORE INTO generations (key, problem_sha256, entry_point, model, \
         prompt_version, seed, n, shape, created_at, answer, finish_reason, extraction) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            digest,
            g.key.problem_sha256,
            g.key.entry_point,
            g.key.model,
            g.key.prompt_version,
            g.key.seed as i64,
            g.key.n as i64,
            g.key.shape.as_str(),
            now() as i64,
            g.answer,
            g.finish_reason,
            extraction,
        ],
    )
    .map_err(|e| e.to_string())?;
    name(&tx, problem, &digest)?;
    let stored = get_by_digest(&tx, &digest)?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(stored.map_or_else(|| g.clone(), |e| e.generated))
}

fn name(conn: &Connection, problem: &str, digest: &str) -> Result<(), String> {
    conn.execute(
        "INSERT OR IGNORE INTO problems (name, key) VALUES (?1, ?2)",
        params![problem, digest],
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

fn record(conn: &mut Connection, v: &Validation) -> Result<(), String> {
    let decision = serde_json::to_string(v).expect("a validation serializes");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO validations (key, method, basis, problem, at, decision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key, method, basis) DO UPDATE SET \
         problem = excluded.problem, at = excluded.at, decision = excluded.decision",
        params![
            v.key,
            v.method.as_str(),
            v.basis,
            v.problem,
            now() as i64,
            decision
        ],
    )
    .map_err(|e| e.to_string())?;
    name(&tx, &v.problem, &v.key)?;
    tx.commit().map_err(|e| e.to_string())
}

fn entries(conn: &mut Connection, problem: &str, limit: usize) -> Result<Vec<Entry>, String> {
    let sql = format!(
        "{SELECT_GENERATION} WHERE key IN (SELECT key FROM problems WHERE name = ?1) \
         OR key = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![problem, limit as i64], read_generation)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows {
        let mut entry = row.map_err(|e| e.to_string())??;
        entry.problems = conn
            .prepare("SELECT name FROM problems WHERE key = ?1 ORDER BY name LIMIT ?2")
            .and_then(|mut s| {
                s.query_map(params![entry.digest, MAX_PROBLEMS as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare(
                "SELECT decision, at, length(CAST(decision AS BLOB)) FROM validations \
                 WHERE key = ?1 ORDER BY at DESC, rowid DESC LIMIT ?2",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![entry.digest, MAX_VALIDATIONS as i64], |r| {
                let size: i64 = r.get(2)?;
                if size > MAX_ROW_BYTES {
                    return Ok(Err(format!("a validation is {size} bytes")));
                }
                let text: String = r.get(0)?;
                let at: i64 = r.get(1)?;
                Ok(serde_json::from_str::<Validation>(&text)
                    .map(|mut v| {
                        v.at = at.max(0) as u64;
                        v
                    })
                    .map_err(|e| format!("an unreadable validation: {e}")))
            })
            .map_err(|e| e.to_string())?;
        for v in rows {
            entry.validations.push(v.map_err(|e| e.to_string())??);
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::cache::Method;
    use crate::testgen::DropReason;

    fn key(n: usize) -> CacheKey {
        CacheKey {
            problem_sha256: CacheKey::hash_problem("p"),
            entry_point: Some("f".into()),
            model: "m".into(),
            prompt_version: "v1".into(),
            seed: u64::MAX,
            n,
            shape: Shape::Assert,
        }
    }

    fn generation(n: usize, answer: &str) -> Generated {
        Generated {
            key: key(n),
            answer: answer.into(),
            finish_reason: Some("stop".into()),
            extraction: crate::testgen::extract_tests(answer, Shape::Assert, Some("f"), n),
        }
    }

    #[tokio::test]
    async fn entries_round_trip_and_the_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE_NAME);
        let cache = SqliteCache::open(&path, Access::ReadWrite);
        assert_eq!(cache.get(&key(8)).await.unwrap(), None);
        let first = generation(8, "assert f(1) == 1\nprint(2)");
        assert_eq!(cache.put(&first, "p1").await.unwrap(), first);
        assert_eq!(cache.get(&key(8)).await.unwrap(), Some(first.clone()));
        assert_eq!(cache.get(&key(9)).await.unwrap(), None);
        let second = generation(8, "assert f(2) == 2");
        assert_eq!(
            cache.put(&second, "p2").await.unwrap(),
            first,
            "a second writer of the key gets the stored entry"
        );
        cache.record(Validation {
            key: key(8).digest(),
            problem: "p3".into(),
            method: Method::Reference,
            basis: "r".into(),
            kept: vec![],
            dropped: vec![(0, DropReason::ReferenceFails)],
            note: None,
            at: 0,
        });
        let entries = cache.entries("p3", 10).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].problems, ["p1", "p2", "p3"]);
        assert_eq!(
            entries[0].validations[0].dropped[0].1,
            DropReason::ReferenceFails
        );
        assert_eq!(entries[0].generated.extraction.rejected[0].text, "print(2)");
        assert_eq!(cache.entries(&key(8).digest(), 10).await.unwrap().len(), 1);
        // Another N for the same problem: a second entry, listed first (newest).
        cache
            .put(&generation(3, "assert f(3) == 3"), "p1")
            .await
            .unwrap();
        let both = cache.entries("p1", 10).await.unwrap();
        assert_eq!(
            both.iter().map(|e| e.generated.key.n).collect::<Vec<_>>(),
            [3, 8]
        );
        assert_eq!(cache.entries("p1", 1).await.unwrap().len(), 1, "bounded");
        assert!(cache.entries("nobody", 10).await.unwrap().is_empty());
        drop(cache);

        let again = SqliteCache::open(&path, Access::ReadOnly);
        assert_eq!(again.entries("p1", 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_corrupt_or_foreign_file_is_a_clear_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(
            &path,
            b"this is not a database, just some text that is long enough",
        )
        .unwrap();
        let cache = SqliteCache::open(&path, Access::ReadWrite);
        let e = cache.get(&key(8)).await.unwrap_err();
        assert!(
            e.to_string().contains("not a usable SQLite database"),
            "{e}"
        );
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        assert!(cache
            .put(&generation(8, "assert f(1) == 1"), "p")
            .await
            .is_err());
        drop(cache);

        let newer = dir.path().join("newer.sqlite3");
        let conn = Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let e = SqliteCache::open(&newer, Access::ReadWrite)
            .get(&key(8))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("schema version 7 is newer"), "{e}");

        let missing = SqliteCache::open(dir.path().join("none.sqlite3"), Access::ReadOnly);
        let e = missing.entries("p", 1).await.unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }

    #[tokio::test]
    async fn an_oversized_or_tampered_row_is_treated_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let cache = SqliteCache::open(&path, Access::ReadWrite);
        cache
            .put(&generation(8, "assert f(1) == 1"), "p")
            .await
            .unwrap();
        cache
            .put(&generation(9, "assert f(1) == 1"), "p")
            .await
            .unwrap();
        drop(cache);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE generations SET answer = ?1 WHERE n = 8",
            [" ".repeat(MAX_ROW_BYTES as usize + 1)],
        )
        .unwrap();
        conn.execute("UPDATE generations SET model = 'other' WHERE n = 9", [])
            .unwrap();
        drop(conn);
        let cache = SqliteCache::open(&path, Access::ReadWrite);
        assert_eq!(cache.get(&key(8)).await.unwrap(), None);
        assert_eq!(cache.get(&key(9)).await.unwrap(), None);
        let e = cache.entries("p", 10).await.unwrap_err();
        assert!(
            e.to_string().contains("bytes, more than") || e.to_string().contains("do not hash"),
            "{e}"
        );
    }
}
