//! Schedules that cannot be missed: per instance and kind (nightly backup, weekly verify, daily
//! production-safe test, daily upgrade check), with a stable jitter inside a window so a
//! hundred instances do not start in the same second.
//!
//! A run is **owed** from the moment it fell due until a job for it succeeds. One tick of the
//! planner ([`Store::tick`]) takes the scheduler's lease (so of several `cooper serve` on one
//! store only one plans), settles the schedules whose last job ended, and queues a job for each
//! run that is due — one job, however many slots passed while cooper was stopped (catch-up),
//! never a second while one is queued or running. A run owed longer than its grace is
//! **overdue**; a failed one is tried again after a pause. Every write is a conditional UPDATE
//! on what the tick read, so two planners that both believed they held the lease still cannot
//! queue the same run twice.
//!
//! Time is a parameter everywhere (milliseconds since the epoch): tests drive the clock.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Result, Store, StoreError};

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
pub const WEEK: i64 = 7 * DAY;

/// What a schedule runs; each is a job kind of the dashboard.
pub const KINDS: &[&str] = &[
    "backup",
    "verify",
    "test",
    "upgrade-check",
    "upgrade-window",
];

/// When runs fall: every `every_ms`, inside a window that opens `window_start_ms` after each
/// period's start (periods counted from the Unix epoch, UTC) and lasts `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub every_ms: i64,
    pub window_start_ms: i64,
    pub window_ms: i64,
}

impl Cadence {
    pub fn check(&self) -> Result<()> {
        if self.every_ms < MINUTE {
            return Err(StoreError::Invalid(
                "a schedule runs at most once a minute: give a longer period".into(),
            ));
        }
        if self.window_ms < 1 || self.window_start_ms < 0 {
            return Err(StoreError::Invalid(
                "a schedule's window must start at or after the period's start and last at least 1 ms".into(),
            ));
        }
        if self.window_start_ms + self.window_ms > self.every_ms {
            return Err(StoreError::Invalid(format!(
                "the window ({} ms from {} ms) does not fit in the period ({} ms): shorten it",
                self.window_ms, self.window_start_ms, self.every_ms
            )));
        }
        Ok(())
    }
}

/// The federation's defaults (a co-op may set its own): backups nightly between 01:00 and
/// 05:00 UTC, verify weekly, tests daily between 06:00 and 08:00, upgrade checks daily between
/// 08:00 and 09:00.
pub fn default_cadence(kind: &str) -> Option<Cadence> {
    Some(match kind {
        "backup" => Cadence {
            every_ms: DAY,
            window_start_ms: HOUR,
            window_ms: 4 * HOUR,
        },
        // The epoch fell on a Thursday: 3 days in is a Sunday, 02:00–06:00.
        "verify" => Cadence {
            every_ms: WEEK,
            window_start_ms: 3 * DAY + 2 * HOUR,
            window_ms: 4 * HOUR,
        },
        "test" => Cadence {
            every_ms: DAY,
            window_start_ms: 6 * HOUR,
            window_ms: 2 * HOUR,
        },
        "upgrade-check" => Cadence {
            every_ms: DAY,
            window_start_ms: 8 * HOUR,
            window_ms: HOUR,
        },
        // The maintenance window: an upgrade the community agreed to is applied (rehearsed
        // first) only in it. 5 days in is a Tuesday, 02:00–04:00.
        "upgrade-window" => Cadence {
            every_ms: WEEK,
            window_start_ms: 5 * DAY + 2 * HOUR,
            window_ms: 2 * HOUR,
        },
        _ => return None,
    })
}

/// Whether `at` falls inside one of the cadence's windows (any period).
pub fn in_window(at: i64, c: &Cadence) -> bool {
    (at - c.window_start_ms).rem_euclid(c.every_ms) < c.window_ms
}

/// When the next window opens after `at` (`at` itself when one is open).
pub fn window_opens(at: i64, c: &Cadence) -> i64 {
    if in_window(at, c) {
        return at;
    }
    let k = (at - c.window_start_ms).div_euclid(c.every_ms) + 1;
    k * c.every_ms + c.window_start_ms
}

/// A stable place for this instance's runs inside the window: the same every period, spread
/// evenly across instances.
pub fn jitter(domain: &str, kind: &str, window_ms: i64) -> i64 {
    let h = Sha256::digest(format!("{domain}\n{kind}").as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (n % window_ms.max(1) as u64) as i64
}

/// The first slot strictly after `after`.
pub fn next_slot(after: i64, c: &Cadence, offset_ms: i64) -> i64 {
    let phase = c.window_start_ms + offset_ms;
    let k = (after - phase).div_euclid(c.every_ms) + 1;
    k * c.every_ms + phase
}

/// How long a run may be owed before it is overdue: a quarter of the period, at most 2 h.
pub fn grace(every_ms: i64) -> i64 {
    (every_ms / 4).min(2 * HOUR)
}

/// The pause before a failed run is tried again: an eighth of the period, 5 min to 1 h.
pub fn retry_pause(every_ms: i64) -> i64 {
    (every_ms / 8).clamp(5 * MINUTE, HOUR)
}

/// A schedule row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub domain: String,
    pub kind: String,
    pub cadence: Cadence,
    pub offset_ms: i64,
    pub enabled: bool,
    pub next_due: i64,
    /// When the oldest run still owed fell due (`None`: nothing owed).
    pub pending_since: Option<i64>,
    pub last_job: Option<String>,
    pub last_ok_at: Option<i64>,
    /// When a failed run is tried again.
    pub retry_at: Option<i64>,
}

impl Schedule {
    /// Owed longer than its grace: a run that was due and has not succeeded — including one
    /// that never started because cooper was stopped or the server unreachable.
    pub fn overdue(&self, now: i64) -> bool {
        if !self.enabled {
            return false;
        }
        let owed_since = match self.pending_since {
            Some(p) => p,
            None if self.next_due <= now => self.next_due,
            None => return false,
        };
        now - owed_since > grace(self.cadence.every_ms)
    }

    /// Since when the oldest owed run fell due, if any.
    pub fn owed_since(&self, now: i64) -> Option<i64> {
        self.pending_since
            .or((self.enabled && self.next_due <= now).then_some(self.next_due))
    }
}

/// What the planner decided for one schedule (pure: see [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// The last job succeeded: nothing is owed any more (then, maybe, a new run is due).
    Settle {
        ok_at: i64,
        then_run: bool,
    },
    /// Queue a job: `pending_since` (the oldest owed due time), the next slot.
    Run {
        pending_since: i64,
        next_due: i64,
    },
    /// A job is queued or running: the slots that passed meanwhile fold into it.
    Fold {
        next_due: i64,
    },
    /// The last job failed: try again at this time.
    RetryAt(i64),
}

/// The state of a schedule's last job, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastJob {
    None,
    InFlight,
    Succeeded {
        at: i64,
    },
    /// Failed, interrupted or cancelled.
    Failed,
}

/// The planner's rule for one schedule at `now`.
pub fn decide(s: &Schedule, last: LastJob, now: i64) -> Decision {
    if !s.enabled {
        return Decision::Nothing;
    }
    let due = s.next_due <= now;
    let next = next_slot(now, &s.cadence, s.offset_ms);
    match last {
        LastJob::InFlight if due => Decision::Fold { next_due: next },
        LastJob::InFlight => Decision::Nothing,
        LastJob::Succeeded { at } if s.pending_since.is_some() => Decision::Settle {
            ok_at: at,
            then_run: due,
        },
        // The pause is counted from when the planner first saw the failure (its own clock).
        LastJob::Failed if s.pending_since.is_some() => match s.retry_at {
            Some(r) if now >= r || due => Decision::Run {
                pending_since: s.pending_since.unwrap_or(s.next_due),
                next_due: if due { next } else { s.next_due },
            },
            Some(_) => Decision::Nothing,
            None if due => Decision::Run {
                pending_since: s.pending_since.unwrap_or(s.next_due),
                next_due: next,
            },
            None => Decision::RetryAt(now + retry_pause(s.cadence.every_ms)),
        },
        _ if due => Decision::Run {
            pending_since: s.pending_since.unwrap_or(s.next_due),
            next_due: next,
        },
        _ => Decision::Nothing,
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Another process holds the scheduler's lease: this one planned nothing.
    pub not_leader: bool,
    /// Jobs queued: `(domain, kind, job id)`.
    pub queued: Vec<(String, String, String)>,
    pub settled: usize,
    pub overdue: Vec<Schedule>,
}

const COLUMNS: &str = "s.domain, s.kind, s.every_ms, s.window_start_ms, s.window_ms, s.offset_ms, \
     s.enabled, s.next_due, s.pending_since, s.last_job, s.last_ok_at, s.retry_at";

fn schedule(r: &sqlx::any::AnyRow) -> Result<Schedule> {
    Ok(Schedule {
        domain: r.try_get("domain")?,
        kind: r.try_get("kind")?,
        cadence: Cadence {
            every_ms: r.try_get("every_ms")?,
            window_start_ms: r.try_get("window_start_ms")?,
            window_ms: r.try_get("window_ms")?,
        },
        offset_ms: r.try_get("offset_ms")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        next_due: r.try_get("next_due")?,
        pending_since: r.try_get("pending_since")?,
        last_job: r.try_get("last_job")?,
        last_ok_at: r.try_get("last_ok_at")?,
        retry_at: r.try_get("retry_at")?,
    })
}

fn check_kind(kind: &str) -> Result<()> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "unknown schedule kind {kind:?}: use one of {}",
            KINDS.join(", ")
        )))
    }
}

impl Store {
    /// Creates or changes an instance's schedule; the next run is the first slot after `now`
    /// (what is owed stays owed).
    pub async fn set_schedule(
        &self,
        domain: &str,
        kind: &str,
        cadence: Cadence,
        enabled: bool,
        now: i64,
    ) -> Result<Schedule> {
        check_kind(kind)?;
        cadence.check()?;
        let offset = jitter(domain, kind, cadence.window_ms);
        let next = next_slot(now, &cadence, offset);
        let changed = sqlx::query(
            "UPDATE schedules SET every_ms = $1, window_start_ms = $2, window_ms = $3, \
             offset_ms = $4, enabled = $5, next_due = $6 WHERE domain = $7 AND kind = $8",
        )
        .bind(cadence.every_ms)
        .bind(cadence.window_start_ms)
        .bind(cadence.window_ms)
        .bind(offset)
        .bind(i64::from(enabled))
        .bind(next)
        .bind(domain)
        .bind(kind)
        .execute(&self.pool)
        .await?;
        if changed.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO schedules (domain, kind, every_ms, window_start_ms, window_ms, \
                 offset_ms, enabled, next_due) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (domain, kind) DO NOTHING",
            )
            .bind(domain)
            .bind(kind)
            .bind(cadence.every_ms)
            .bind(cadence.window_start_ms)
            .bind(cadence.window_ms)
            .bind(offset)
            .bind(i64::from(enabled))
            .bind(next)
            .execute(&self.pool)
            .await?;
        }
        self.schedule(domain, kind)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("schedule {kind} of {domain} vanished")))
    }

    pub async fn schedule(&self, domain: &str, kind: &str) -> Result<Option<Schedule>> {
        let q = format!("SELECT {COLUMNS} FROM schedules s WHERE s.domain = $1 AND s.kind = $2");
        let row = sqlx::query(&q)
            .bind(domain)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(schedule).transpose()
    }

    /// An instance's schedules (all instances' with `None`), by domain then kind.
    pub async fn schedules(&self, domain: Option<&str>) -> Result<Vec<Schedule>> {
        let rows = match domain {
            Some(d) => {
                let q = format!(
                    "SELECT {COLUMNS} FROM schedules s WHERE s.domain = $1 ORDER BY s.kind"
                );
                sqlx::query(&q).bind(d).fetch_all(&self.pool).await?
            }
            None => {
                let q = format!("SELECT {COLUMNS} FROM schedules s ORDER BY s.domain, s.kind");
                sqlx::query(&q).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(schedule).collect()
    }

    /// Removes an instance's schedules (when it is removed).
    pub async fn delete_schedules(&self, domain: &str) -> Result<()> {
        sqlx::query("DELETE FROM schedules WHERE domain = $1")
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A co-op's default cadence for a kind (`coop_id` "" = the federation's), falling back
    /// to the federation's, then to [`default_cadence`]. `None` when the kind is switched off.
    pub async fn default_schedule(&self, coop_id: &str, kind: &str) -> Result<Option<Cadence>> {
        check_kind(kind)?;
        for coop in [coop_id, ""] {
            let row = sqlx::query(
                "SELECT every_ms, window_start_ms, window_ms, enabled FROM schedule_defaults \
                 WHERE coop_id = $1 AND kind = $2",
            )
            .bind(coop)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                if r.try_get::<i64, _>("enabled")? == 0 {
                    return Ok(None);
                }
                return Ok(Some(Cadence {
                    every_ms: r.try_get("every_ms")?,
                    window_start_ms: r.try_get("window_start_ms")?,
                    window_ms: r.try_get("window_ms")?,
                }));
            }
        }
        Ok(default_cadence(kind))
    }

    pub async fn set_default_schedule(
        &self,
        coop_id: &str,
        kind: &str,
        cadence: Cadence,
        enabled: bool,
    ) -> Result<()> {
        check_kind(kind)?;
        cadence.check()?;
        sqlx::query("DELETE FROM schedule_defaults WHERE coop_id = $1 AND kind = $2")
            .bind(coop_id)
            .bind(kind)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO schedule_defaults (coop_id, kind, every_ms, window_start_ms, window_ms, \
             enabled) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(coop_id)
        .bind(kind)
        .bind(cadence.every_ms)
        .bind(cadence.window_start_ms)
        .bind(cadence.window_ms)
        .bind(i64::from(enabled))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives an instance every schedule its co-op's defaults switch on (those it has already
    /// are kept as they are). Returns the schedules it has after.
    pub async fn attach_default_schedules(
        &self,
        domain: &str,
        coop_id: &str,
        now: i64,
    ) -> Result<Vec<Schedule>> {
        let have = self.schedules(Some(domain)).await?;
        for kind in KINDS {
            if have.iter().any(|s| s.kind == *kind) {
                continue;
            }
            if let Some(c) = self.default_schedule(coop_id, kind).await? {
                self.set_schedule(domain, kind, c, true, now).await?;
            }
        }
        self.schedules(Some(domain)).await
    }

    /// Takes (or keeps) a lease for `for_ms`: `true` when `holder` has it now. A lease whose
    /// holder stopped renewing it passes to the next who asks after it ran out.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        for_ms: i64,
    ) -> Result<bool> {
        sqlx::query(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind("")
        .bind(0_i64)
        .execute(&self.pool)
        .await?;
        let done = sqlx::query(
            "UPDATE leases SET holder = $1, until_ms = $2 \
             WHERE name = $3 AND (holder = $1 OR until_ms < $4)",
        )
        .bind(holder)
        .bind(now + for_ms)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One tick of the planner at `now` (see the module's text). `holder` names this process
    /// for the lease; jobs are queued as asked by `requested_by`, with `job_args` (JSON).
    pub async fn tick(
        &self,
        now: i64,
        holder: &str,
        requested_by: &str,
        job_args: &str,
    ) -> Result<Tick> {
        let mut out = Tick::default();
        if !self
            .take_lease("scheduler", holder, now, 5 * MINUTE)
            .await?
        {
            out.not_leader = true;
            return Ok(out);
        }
        let q = format!(
            "SELECT {COLUMNS}, j.state AS job_state, j.finished_at AS job_finished \
             FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job WHERE s.enabled = 1"
        );
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        for r in &rows {
            let mut s = schedule(r)?;
            let state: Option<String> = r.try_get("job_state")?;
            let finished: Option<i64> = r.try_get("job_finished")?;
            let last = match state.as_deref() {
                None => LastJob::None,
                Some("queued" | "running") => LastJob::InFlight,
                Some("succeeded") => LastJob::Succeeded {
                    at: finished.unwrap_or(now),
                },
                Some(_) => LastJob::Failed,
            };
            let mut decision = decide(&s, last, now);
            if let Decision::Settle { ok_at, then_run } = decision {
                if !self.settle(&s, ok_at).await? {
                    continue;
                }
                out.settled += 1;
                s.pending_since = None;
                s.last_ok_at = Some(ok_at);
                s.retry_at = None;
                decision = if then_run {
                    decide(&s, LastJob::None, now)
                } else {
                    Decision::Nothing
                };
            }
            match decision {
                Decision::Run {
                    pending_since,
                    next_due,
                } => {
                    if let Some(job) = self
                        .queue_run(&s, pending_since, next_due, requested_by, job_args)
                        .await?
                    {
                        out.queued.push((s.domain.clone(), s.kind.clone(), job));
                        s.pending_since = Some(pending_since);
                        s.next_due = next_due;
                    }
                }
                Decision::Fold { next_due } => {
                    sqlx::query(
                        "UPDATE schedules SET next_due = $1, \
                         pending_since = COALESCE(pending_since, next_due) \
                         WHERE domain = $2 AND kind = $3 AND next_due = $4",
                    )
                    .bind(next_due)
                    .bind(&s.domain)
                    .bind(&s.kind)
                    .bind(s.next_due)
                    .execute(&self.pool)
                    .await?;
                    s.pending_since = s.pending_since.or(Some(s.next_due));
                    s.next_due = next_due;
                }
                Decision::RetryAt(at) => {
                    sqlx::query(
                        "UPDATE schedules SET retry_at = $1 WHERE domain = $2 AND kind = $3",
                    )
                    .bind(at)
                    .bind(&s.domain)
                    .bind(&s.kind)
                    .execute(&self.pool)
                    .await?;
                    s.retry_at = Some(at);
                }
                Decision::Nothing | Decision::Settle { .. } => {}
            }
            if s.overdue(now) {
                out.overdue.push(s);
            }
        }
        Ok(out)
    }

    /// Nothing owed any more: only if the row still names the job the tick saw.
    async fn settle(&self, s: &Schedule, ok_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET pending_since = NULL, retry_at = NULL, last_ok_at = $1 \
             WHERE domain = $2 AND kind = $3 AND last_job = $4",
        )
        .bind(ok_at)
        .bind(&s.domain)
        .bind(&s.kind)
        .bind(s.last_job.as_deref().unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the run (a conditional UPDATE on what the tick read), then queues its job. `None`
    /// when another planner claimed it first.
    async fn queue_run(
        &self,
        s: &Schedule,
        pending_since: i64,
        next_due: i64,
        requested_by: &str,
        args: &str,
    ) -> Result<Option<String>> {
        let id = crate::new_id();
        // The claim and the job go together or not at all.
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE schedules SET next_due = $1, pending_since = $2, last_job = $3, retry_at = NULL \
             WHERE domain = $4 AND kind = $5 AND next_due = $6 AND COALESCE(last_job, '') = $7",
        )
        .bind(next_due)
        .bind(pending_since)
        .bind(&id)
        .bind(&s.domain)
        .bind(&s.kind)
        .bind(s.next_due)
        .bind(s.last_job.as_deref().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        crate::jobs::insert_job(&mut *tx, &id, &s.kind, &s.domain, args, requested_by).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Every enabled schedule that is overdue at `now` (the federation-wide list).
    pub async fn overdue_schedules(&self, now: i64) -> Result<Vec<Schedule>> {
        Ok(self
            .schedules(None)
            .await?
            .into_iter()
            .filter(|s| s.overdue(now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily() -> Cadence {
        default_cadence("backup").unwrap()
    }

    #[test]
    fn slots_fall_in_the_window_and_step_by_the_period() {
        let c = daily();
        for (domain, now) in [("a.example.org", 0), ("b.example.org", 5 * DAY + 123)] {
            let off = jitter(domain, "backup", c.window_ms);
            assert!((0..c.window_ms).contains(&off));
            let s = next_slot(now, &c, off);
            assert!(s > now);
            let in_day = s.rem_euclid(DAY);
            assert!((HOUR..5 * HOUR).contains(&in_day), "{in_day}");
            assert_eq!(next_slot(s, &c, off), s + DAY, "the next one a day later");
            assert_eq!(next_slot(s - 1, &c, off), s);
        }
    }

    #[test]
    fn windows_that_do_not_fit_are_refused() {
        let e = Cadence {
            every_ms: DAY,
            window_start_ms: 23 * HOUR,
            window_ms: 2 * HOUR,
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not fit"), "{e}");
        for k in KINDS {
            default_cadence(k).unwrap().check().unwrap();
        }
    }

    #[test]
    fn maintenance_windows() {
        let c = default_cadence("upgrade-window").unwrap();
        // 1970-01-06 (a Tuesday) 02:00 UTC opens it; 04:00 closes it.
        let opens = 5 * DAY + 2 * HOUR;
        assert!(!in_window(opens - 1, &c));
        assert!(in_window(opens, &c));
        assert!(in_window(opens + 2 * HOUR - 1, &c));
        assert!(!in_window(opens + 2 * HOUR, &c));
        assert!(in_window(opens + 52 * WEEK + HOUR, &c), "every week");
        assert_eq!(window_opens(opens - 1, &c), opens);
        assert_eq!(window_opens(opens + HOUR, &c), opens + HOUR, "open now");
        assert_eq!(window_opens(opens + 3 * HOUR, &c), opens + WEEK);
        // A real Monday, then its Tuesday 02:00–04:00 UTC.
        let tue = 1_764_547_200_000; // 2025-12-01 00:00 UTC, a Monday
        assert!(!in_window(tue + 2 * HOUR + 1, &c));
        assert!(in_window(tue + DAY + 2 * HOUR + 1, &c));
    }

    fn sched(next_due: i64) -> Schedule {
        Schedule {
            domain: "a".into(),
            kind: "backup".into(),
            cadence: daily(),
            offset_ms: 0,
            enabled: true,
            next_due,
            pending_since: None,
            last_job: None,
            last_ok_at: None,
            retry_at: None,
        }
    }

    #[test]
    fn the_planner_runs_once_folds_settles_and_retries() {
        let due = HOUR;
        // Due: run, owed since it fell due.
        let s = sched(due);
        assert_eq!(
            decide(&s, LastJob::None, due + 1),
            Decision::Run {
                pending_since: due,
                next_due: DAY + HOUR
            }
        );
        // Three days down: still one run, owed since the first missed slot.
        assert_eq!(
            decide(&s, LastJob::None, 3 * DAY + 2 * HOUR),
            Decision::Run {
                pending_since: due,
                next_due: 4 * DAY + HOUR
            }
        );
        assert!(s.overdue(3 * DAY));
        assert!(!s.overdue(due + 10 * MINUTE), "within grace");
        // A job in flight: the slot folds into it.
        let mut s = sched(DAY + HOUR);
        s.pending_since = Some(due);
        s.last_job = Some("j".into());
        assert_eq!(
            decide(&s, LastJob::InFlight, DAY + HOUR),
            Decision::Fold {
                next_due: 2 * DAY + HOUR
            }
        );
        // It succeeded: settled.
        assert_eq!(
            decide(&s, LastJob::Succeeded { at: 2 * HOUR }, 3 * HOUR),
            Decision::Settle {
                ok_at: 2 * HOUR,
                then_run: false
            }
        );
        // It failed: tried again after the pause (1 h for a daily schedule).
        assert_eq!(
            decide(&s, LastJob::Failed, 2 * HOUR),
            Decision::RetryAt(3 * HOUR)
        );
        s.retry_at = Some(3 * HOUR);
        assert_eq!(
            decide(&s, LastJob::Failed, 2 * HOUR + 2 * MINUTE),
            Decision::Nothing
        );
        assert_eq!(
            decide(&s, LastJob::Failed, 3 * HOUR),
            Decision::Run {
                pending_since: due,
                next_due: DAY + HOUR
            }
        );
        // Switched off: nothing, never overdue.
        let mut off = sched(due);
        off.enabled = false;
        assert_eq!(decide(&off, LastJob::None, 5 * DAY), Decision::Nothing);
        assert!(!off.overdue(5 * DAY));
    }
}
