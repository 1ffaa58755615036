//! Jobs (an operation asked for in the dashboard, run by the worker pool) and their lines,
//! requests that wait for an operator, the audit log, and the index of operation records.

use sqlx::Row;

use crate::{new_id, now_ms, Result, Store, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// `cooper serve` stopped while the job ran; what is known was written and cleanup ran.
    Interrupted,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<JobState> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "interrupted" => JobState::Interrupted,
            "cancelled" => JobState::Cancelled,
            other => return Err(StoreError::Invalid(format!("unknown job state {other:?}"))),
        })
    }

    pub fn finished(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub domain: String,
    /// The operation's arguments as JSON (version, snapshot, …; never secret values).
    pub args: String,
    pub state: JobState,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub record_path: Option<String>,
    pub cancel_requested: bool,
    /// The process that holds (or held) it (see [`this_process`]).
    pub owner: Option<String>,
    /// Until when (ms) its owner's lease runs; renewed while the job runs.
    pub lease_until: Option<i64>,
    /// How many times a worker took it.
    pub attempts: i64,
}

/// One line of a job's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLine {
    pub seq: i64,
    pub at: i64,
    pub line: String,
}

/// A request by a community admin, waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub kind: String,
    pub domain: String,
    pub requested_by: String,
    pub note: String,
    pub created_at: i64,
    pub state: String,
    pub decided_by: Option<String>,
    pub job_id: Option<String>,
}

/// One line of the audit log: who did what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub domain: Option<String>,
    pub server: Option<String>,
    pub outcome: String,
    pub detail: String,
}

/// The operation name [`Store::latest_records`] gives the newest snapshot made.
pub const BACKUP: &str = "backup";

/// An indexed operation record (the file under `$ABRA_DIR/cooper/records` is the truth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub path: String,
    pub domain: String,
    pub operation: String,
    pub started: String,
    pub ok: Option<bool>,
    pub error: Option<String>,
    /// The snapshot this operation made (a backup, or an upgrade's safety backup).
    pub made_snapshot: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, domain, args, state, requested_by, created_at, started_at, \
                           finished_at, outcome, record_path, cancel_requested, owner, \
                           lease_until, attempts";

fn job(r: &sqlx::any::AnyRow) -> Result<Job> {
    Ok(Job {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        domain: r.try_get("domain")?,
        args: r.try_get("args")?,
        state: JobState::parse(&r.try_get::<String, _>("state")?)?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        outcome: r.try_get("outcome")?,
        record_path: r.try_get("record_path")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        owner: r.try_get("owner")?,
        lease_until: r.try_get("lease_until")?,
        attempts: r.try_get("attempts")?,
    })
}

fn request(r: &sqlx::any::AnyRow) -> Result<Request> {
    Ok(Request {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        domain: r.try_get("domain")?,
        requested_by: r.try_get("requested_by")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        job_id: r.try_get("job_id")?,
    })
}

/// Queues a job with this id (on the pool, or inside a transaction).
pub(crate) async fn insert_job<'e, E>(
    e: E,
    id: &str,
    kind: &str,
    domain: &str,
    args: &str,
    requested_by: &str,
) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO jobs (id, kind, domain, args, state, requested_by, created_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6)",
    )
    .bind(id)
    .bind(kind)
    .bind(domain)
    .bind(args)
    .bind(requested_by)
    .bind(now_ms())
    .execute(e)
    .await?;
    Ok(())
}

/// How long a job's lease runs unless renewed (its owner renews it every third of that).
pub const DEFAULT_LEASE_MS: i64 = 30_000;

/// This process as a job's owner: `<host>:<pid>:<nonce>:<space>`. The nonce tells this run
/// from an earlier one with the same pid (a container's pid 1 after a restart); the space
/// (the kernel's boot id and the pid namespace) tells whether a pid can be looked up here.
pub fn this_process() -> String {
    static ME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().replace(':', "-"))
            .unwrap_or_else(|_| "unknown-host".into());
        let nonce = &new_id()[..8];
        format!("{host}:{}:{nonce}:{}", std::process::id(), process_space())
    })
    .clone()
}

/// Where pids mean the same thing: this boot of the kernel and this pid namespace.
fn process_space() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().chars().take(8).collect::<String>())
        .unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| {
            p.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    format!("{boot}-{ns}")
}

/// An owner's parts (see [`this_process`]): host, pid and process space; `None` for a
/// string not in that form.
fn owner_parts(owner: &str) -> Option<(&str, u32, &str)> {
    let mut it = owner.splitn(4, ':');
    let host = it.next()?;
    let pid = it.next()?.parse().ok()?;
    let _nonce = it.next()?;
    Some((host, pid, it.next()?))
}

/// A job owner in words: `process 4711 on dash-1`.
pub fn owner_in_words(owner: &str) -> String {
    match owner_parts(owner) {
        Some((host, pid, _)) => format!("process {pid} on {host}"),
        None => owner.to_string(),
    }
}

/// Whether the process `owner` names (see [`this_process`]) has certainly ended, as seen by
/// `me`: it lived where pids are comparable with ours and its pid is gone, or it is an earlier
/// run with our pid. Elsewhere nothing is certain and its lease decides.
pub fn owner_gone(me: &str, owner: &str) -> bool {
    if owner == me {
        return false;
    }
    let (Some((_, pid, space)), Some((_, my_pid, my_space))) =
        (owner_parts(owner), owner_parts(me))
    else {
        return false;
    };
    if space != my_space || space.starts_with('-') {
        return false;
    }
    pid == my_pid || !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Store {
    /// Queues a job.
    pub async fn create_job(
        &self,
        kind: &str,
        domain: &str,
        args: &str,
        requested_by: &str,
    ) -> Result<Job> {
        let id = new_id();
        insert_job(&self.pool, &id, kind, domain, args, requested_by).await?;
        Ok(self.job(&id).await?.expect("just inserted"))
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let q = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(job).transpose()
    }

    /// The newest jobs, of one app or of all.
    pub async fn jobs(&self, domain: Option<&str>, limit: i64) -> Result<Vec<Job>> {
        let rows = match domain {
            Some(d) => {
                let q = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE domain = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                sqlx::query(&q)
                    .bind(d)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let q = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC LIMIT $1"
                );
                sqlx::query(&q).bind(limit).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(job).collect()
    }

    /// Takes the oldest queued job whose app has no running job, marking it running, held by
    /// `owner` for `lease_ms` (renew with [`Store::renew_job_leases`]). Two workers — of one
    /// process or of several on one store — never take the same job: the take is one
    /// conditional update.
    pub async fn claim_job_for(&self, owner: &str, lease_ms: i64) -> Result<Option<Job>> {
        let q = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'queued' AND domain NOT IN \
             (SELECT domain FROM jobs WHERE state = 'running') ORDER BY created_at, id LIMIT 8"
        );
        let candidates = sqlx::query(&q).fetch_all(&self.pool).await?;
        for c in candidates.iter().map(job) {
            let c = c?;
            let now = now_ms();
            let taken = sqlx::query(
                "UPDATE jobs SET state = 'running', started_at = $1, owner = $2, \
                 lease_until = $3, attempts = attempts + 1 WHERE id = $4 AND state = 'queued' \
                 AND domain NOT IN (SELECT domain FROM jobs WHERE state = 'running')",
            )
            .bind(now)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(&c.id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if taken == 1 {
                return self.job(&c.id).await;
            }
        }
        Ok(None)
    }

    /// [`Store::claim_job_for`] by this process, with a lease of [`DEFAULT_LEASE_MS`].
    pub async fn claim_job(&self) -> Result<Option<Job>> {
        self.claim_job_for(&this_process(), DEFAULT_LEASE_MS).await
    }

    /// Extends the leases of the jobs `owner` runs; returns those jobs (their
    /// `cancel_requested` tells the owner about a cancel asked through another process).
    pub async fn renew_job_leases(&self, owner: &str, lease_ms: i64) -> Result<Vec<Job>> {
        sqlx::query("UPDATE jobs SET lease_until = $1 WHERE owner = $2 AND state = 'running'")
            .bind(now_ms() + lease_ms)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        let q = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE owner = $1 AND state = 'running'");
        let rows = sqlx::query(&q).bind(owner).fetch_all(&self.pool).await?;
        rows.iter().map(job).collect()
    }

    /// Ends a job with its state and outcome (a sentence) and its record's path.
    pub async fn finish_job(
        &self,
        id: &str,
        state: JobState,
        outcome: &str,
        record_path: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = $1, outcome = $2, record_path = $3, finished_at = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(outcome)
        .bind(record_path)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Asks a job to stop; a queued job is cancelled at once. Returns the state after.
    pub async fn cancel_job(&self, id: &str) -> Result<Option<JobState>> {
        self.cancel_queued_job(id).await?;
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND state = 'running'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(self.job(id).await?.map(|j| j.state))
    }

    /// Cancels a job only if it has not started (one conditional UPDATE: a worker that
    /// claimed it first wins). Returns the job's state after.
    pub async fn cancel_queued_job(&self, id: &str) -> Result<Option<JobState>> {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', outcome = 'cancelled before it started', \
             finished_at = $1 WHERE id = $2 AND state = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(self.job(id).await?.map(|j| j.state))
    }

    /// Running jobs nobody holds any more, marked interrupted and returned (the caller runs
    /// their cleanup): a lease that ran out before `now`, no owner (a job from before leases),
    /// or an owner `gone` says is a process that has ended. Every process on the store may
    /// call this: the mark is one conditional update, so each job is returned to one caller.
    pub async fn interrupt_abandoned_jobs(
        &self,
        now: i64,
        gone: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<Job>> {
        let q = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running'");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        let running: Vec<Job> = rows.iter().map(job).collect::<Result<_>>()?;
        let mut cut = Vec::new();
        for j in running {
            let abandoned = match (&j.owner, j.lease_until) {
                (None, _) | (_, None) => true,
                (Some(owner), Some(until)) => until < now || gone(owner),
            };
            if !abandoned {
                continue;
            }
            let marked = sqlx::query(
                "UPDATE jobs SET state = 'interrupted', finished_at = $1, \
                 outcome = 'cooper serve stopped while this job ran' WHERE id = $2 \
                 AND state = 'running' AND attempts = $3",
            )
            .bind(now_ms())
            .bind(&j.id)
            .bind(j.attempts)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if marked == 1 {
                cut.push(j);
            }
        }
        Ok(cut)
    }

    /// Sets a finished job's outcome (after an interrupted job's cleanup).
    pub async fn set_job_outcome(&self, id: &str, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET outcome = $1 WHERE id = $2")
            .bind(outcome)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends a progress line to a job; returns its sequence number.
    pub async fn add_job_line(&self, job_id: &str, line: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM job_lines WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(&self.pool)
            .await?;
        let seq: i64 = row.try_get::<i64, _>("n")? + 1;
        sqlx::query("INSERT INTO job_lines (job_id, seq, at, line) VALUES ($1, $2, $3, $4)")
            .bind(job_id)
            .bind(seq)
            .bind(now_ms())
            .bind(line)
            .execute(&self.pool)
            .await?;
        Ok(seq)
    }

    /// A job's lines after `after` (0: all).
    pub async fn job_lines(&self, job_id: &str, after: i64) -> Result<Vec<JobLine>> {
        let rows = sqlx::query(
            "SELECT seq, at, line FROM job_lines WHERE job_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(job_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobLine {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    line: r.try_get("line")?,
                })
            })
            .collect()
    }

    // --- requests ---

    pub async fn create_request(
        &self,
        kind: &str,
        domain: &str,
        requested_by: &str,
        note: &str,
    ) -> Result<Request> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO requests (id, kind, domain, requested_by, note, created_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
        )
        .bind(&id)
        .bind(kind)
        .bind(domain)
        .bind(requested_by)
        .bind(note)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(self.request(&id).await?.expect("just inserted"))
    }

    pub async fn request(&self, id: &str) -> Result<Option<Request>> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request).transpose()
    }

    pub async fn requests(&self, domain: Option<&str>, pending_only: bool) -> Result<Vec<Request>> {
        let mut q = String::from("SELECT * FROM requests WHERE 1 = 1");
        if domain.is_some() {
            q.push_str(" AND domain = $1");
        }
        if pending_only {
            q.push_str(" AND state = 'pending'");
        }
        q.push_str(" ORDER BY created_at DESC LIMIT 200");
        let mut query = sqlx::query(&q);
        if let Some(d) = domain {
            query = query.bind(d);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(request).collect()
    }

    /// Decides a pending request once (`approved` with the job it started, or `declined`).
    pub async fn decide_request(
        &self,
        id: &str,
        state: &str,
        decided_by: &str,
        job_id: Option<&str>,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE requests SET state = $1, decided_by = $2, decided_at = $3, job_id = $4 \
             WHERE id = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(decided_by)
        .bind(now_ms())
        .bind(job_id)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    // --- audit ---

    /// Adds a line to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        domain: Option<&str>,
        server: Option<&str>,
        outcome: &str,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (id, at, actor, action, domain, server, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(domain)
        .bind(server)
        .bind(outcome)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest audit lines (newest first).
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, domain, server, outcome, detail FROM audit \
             ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    domain: r.try_get("domain")?,
                    server: r.try_get("server")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    // --- records index ---

    /// Adds (or refreshes) a record in the index.
    pub async fn index_record(&self, r: &RecordRow) -> Result<()> {
        sqlx::query("DELETE FROM records WHERE path = $1")
            .bind(&r.path)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO records (path, domain, operation, started, ok, error, made_snapshot) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.path)
        .bind(&r.domain)
        .bind(&r.operation)
        .bind(&r.started)
        .bind(r.ok.map(i64::from))
        .bind(&r.error)
        .bind(&r.made_snapshot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM records")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The newest successful record of each (app, operation): `(domain, operation, started)`;
    /// and, as operation [`BACKUP`], the newest record of each app that made a snapshot (a
    /// backup, or an upgrade's safety backup, which stays a backup when the upgrade failed).
    pub async fn latest_records(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT domain, operation, MAX(started) AS started FROM records WHERE ok = 1 \
             GROUP BY domain, operation \
             UNION ALL \
             SELECT domain, 'backup' AS operation, MAX(started) AS started FROM records \
             WHERE made_snapshot IS NOT NULL GROUP BY domain \
             UNION ALL \
             SELECT domain, 'in service' AS operation, MIN(started) AS started FROM records \
             WHERE ok = 1 AND operation = 'app deploy' GROUP BY domain",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("domain")?,
                    r.try_get("operation")?,
                    r.try_get("started")?,
                ))
            })
            .collect()
    }

    /// An app's indexed records, newest first.
    pub async fn records(&self, domain: &str, limit: i64) -> Result<Vec<RecordRow>> {
        let rows = sqlx::query(
            "SELECT path, domain, operation, started, ok, error, made_snapshot FROM records \
             WHERE domain = $1 ORDER BY started DESC LIMIT $2",
        )
        .bind(domain)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordRow {
                    path: r.try_get("path")?,
                    domain: r.try_get("domain")?,
                    operation: r.try_get("operation")?,
                    started: r.try_get("started")?,
                    ok: r.try_get::<Option<i64>, _>("ok")?.map(|v| v != 0),
                    error: r.try_get("error")?,
                    made_snapshot: r.try_get("made_snapshot")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_gone_only_when_that_is_certain() {
        let me = this_process();
        let mut parts: Vec<String> = me.splitn(4, ':').map(str::to_string).collect();
        let space = parts[3].clone();
        // An earlier run with our pid (a container's pid 1 after a restart).
        parts[2] = "00000000".into();
        assert!(owner_gone(&me, &parts.join(":")));
        // A pid of our space that does not exist (pids stop well below this).
        let dead = format!("h:4194305:n:{space}");
        assert!(owner_gone(&me, &dead));
        // A live pid of our space (pid 1 always is).
        assert!(!owner_gone(&me, &format!("h:1:n:{space}")));
        // Another machine or container: only its lease can tell.
        assert!(!owner_gone(&me, "elsewhere:4194305:n:other-space"));
        assert!(!owner_gone(&me, "garbage"));
        assert!(!owner_gone(&me, &me));
        assert_eq!(
            owner_in_words("dash-1:4711:ab12cd34:x-1"),
            "process 4711 on dash-1"
        );
        assert_eq!(owner_in_words("garbage"), "garbage");
    }
}
