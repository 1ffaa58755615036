//! One lock per app, so two operations on the same app never interleave.
//!
//! The lock is an exclusive `flock` on `servers/<server>/.<domain>.lock`; the kernel drops it
//! when the holding process dies, even by `kill -9`, so a stale lock cannot block anyone. The
//! file also records who holds it (pid, host, operation, start), which a waiting or refused
//! operation reports, and which tells the next holder that the previous one ended without
//! finishing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub operation: String,
    pub started: String,
    /// Set when the holder finished and released the lock.
    #[serde(default)]
    pub finished: bool,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, since {})",
            self.operation, self.pid, self.host, self.started
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "app {domain} is busy: {holder} holds its lock; wait for it to finish (or pass --wait)"
    )]
    Busy { domain: String, holder: String },
    #[error("app {domain} stayed busy for {waited:?}: {holder} holds its lock")]
    Timeout {
        domain: String,
        holder: String,
        waited: Duration,
    },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct AppLock {
    file: File,
    path: PathBuf,
    /// The previous holder, when it ended without releasing the lock cleanly (crashed or killed).
    pub recovered_from: Option<Holder>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl AppLock {
    /// Takes the lock for `domain` in `server_dir`. With `wait`, waits up to that long.
    pub fn acquire(
        server_dir: &Path,
        domain: &str,
        operation: &str,
        wait: Option<Duration>,
    ) -> Result<AppLock, LockError> {
        let path = server_dir.join(format!(".{domain}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file)
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "another cooper process".into());
                    match wait {
                        None => {
                            return Err(LockError::Busy {
                                domain: domain.into(),
                                holder,
                            })
                        }
                        Some(limit) if start.elapsed() >= limit => {
                            return Err(LockError::Timeout {
                                domain: domain.into(),
                                holder,
                                waited: start.elapsed(),
                            })
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let recovered_from = read_holder(&mut file).filter(|h| !h.finished);
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            started: now(),
            finished: false,
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(serde_json::to_string(&me).unwrap_or_default().as_bytes())
            .map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(AppLock {
            file,
            path,
            recovered_from,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AppLock {
    fn drop(&mut self) {
        if let Some(mut h) = read_holder(&mut self.file) {
            h.finished = true;
            let _ = self.file.set_len(0);
            let _ = self.file.seek(SeekFrom::Start(0));
            let _ = self
                .file
                .write_all(serde_json::to_string(&h).unwrap_or_default().as_bytes());
        }
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = AppLock::acquire(dir.path(), "a.example.org", "app deploy", None).unwrap();
        assert!(first.recovered_from.is_none());
        let err = AppLock::acquire(dir.path(), "a.example.org", "app undeploy", None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("app deploy") && text.contains(&std::process::id().to_string()),
            "{text}"
        );
        let err = AppLock::acquire(
            dir.path(),
            "a.example.org",
            "app undeploy",
            Some(Duration::from_millis(300)),
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }));
        drop(first);
        let again = AppLock::acquire(dir.path(), "a.example.org", "app undeploy", None).unwrap();
        assert!(
            again.recovered_from.is_none(),
            "a clean release is not a crash"
        );
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        // A holder record without the lock held: what a killed process leaves behind.
        let dead = Holder {
            pid: 999_999,
            host: "elsewhere".into(),
            operation: "app deploy".into(),
            started: "2026-01-01T00:00:00Z".into(),
            finished: false,
        };
        std::fs::write(
            dir.path().join(".a.example.org.lock"),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        let lock = AppLock::acquire(dir.path(), "a.example.org", "app deploy", None).unwrap();
        assert_eq!(lock.recovered_from, Some(dead));
    }
}
