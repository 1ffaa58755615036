//! The scheduler's loop in `cooper serve`: a tick of [`cooper_store::Store::tick`] now and
//! then (at start too, which is the catch-up after a stop). Which of several `cooper serve`
//! on one store plans is settled by the lease in the store; the jobs it queues run on the same
//! worker pool as everyone's.

use std::time::Duration;

use crate::jobs::Args;
use crate::AppState;

/// This process's name for the lease: host, process id and a random part (a restarted
/// process is a new holder; its old lease runs out).
pub fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Ticks every `every` until the process ends.
pub async fn run(s: AppState, every: Duration) {
    let holder = holder();
    let args = serde_json::to_string(&Args {
        scheduled: true,
        min_level: s.config.min_level,
        ..Default::default()
    })
    .unwrap_or_else(|_| "{}".into());
    // Overdue runs already announced by this process: every tick lists them again until they
    // succeed, and each would cost the audience's queries (the outbox's dedupe key keeps a
    // restart from announcing twice).
    let mut announced: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        match s
            .store
            .tick(cooper_store::now_ms(), &holder, "scheduler", &args)
            .await
        {
            Ok(t) => {
                for _ in &t.queued {
                    s.jobs.wake();
                }
                for o in &t.overdue {
                    let since = o.owed_since(cooper_store::now_ms()).unwrap_or(o.next_due);
                    let key = format!("overdue|{}|{}|{since}", o.domain, o.kind);
                    if !announced.insert(key.clone()) {
                        continue;
                    }
                    s.notifier
                        .emit_logged(crate::notify::Event {
                            event: "schedule.overdue",
                            domain: Some(o.domain.clone()),
                            server: s.apps.server_of(&o.domain),
                            title: format!("The {} of {} is overdue", o.kind, o.domain),
                            detail: format!(
                                "It fell due at {} and has not succeeded since; cooper tries again at the next chance.",
                                crate::views::when(since)
                            ),
                            link: Some(format!("/instances/{}#schedules", o.domain)),
                            dedupe: Some(key),
                        })
                        .await;
                }
            }
            Err(e) => eprintln!("cooper serve: the scheduler's tick failed: {e}"),
        }
        if let Err(e) = federation(&s.store, &s.notifier, cooper_store::now_ms()).await {
            eprintln!("cooper serve: the federation's tick failed: {e}");
        }
        tokio::time::sleep(every).await;
    }
}

/// How far ahead meetings are planned (so the next ones exist to put agenda items on).
pub const PLAN_AHEAD_MS: i64 = 62 * 86_400_000;

/// What the federation's practice does on each tick at `now` (a parameter, so tests control
/// the clock): plans the meetings ahead, closes the decisions whose deadline has come and
/// announces them, and sends the reminders of reviews that are due (each once: the store
/// claims them, and the outbox's keys keep a second process from sending them again).
pub async fn federation(
    store: &cooper_store::Store,
    notifier: &crate::notify::Notifier,
    now: i64,
) -> anyhow::Result<()> {
    store
        .plan_meetings(now - 86_400_000, now + PLAN_AHEAD_MS)
        .await?;
    for p in store.decide_due_proposals(now).await? {
        let title = match &p.number {
            Some(n) => format!("{n} passed: {}", p.title),
            None => format!("Not passed ({}): {}", p.state, p.title),
        };
        notifier
            .emit_logged(crate::notify::Event {
                event: "decision.made",
                domain: None,
                server: None,
                title,
                detail: format!("{} — {}", p.size, p.reason),
                link: Some(format!("/federation/decisions/{}", p.id)),
                dedupe: Some(format!("decision|{}", p.id)),
            })
            .await;
    }
    let today = cooper_store::practice::day_of(now);
    for r in store.claim_review_reminders(today).await? {
        let state = match r.review.state(today) {
            cooper_federation::ReviewState::Overdue { days } => {
                format!("It is overdue by {days} days.")
            }
            cooper_federation::ReviewState::DueSoon { days_left } => {
                format!("It is due in {days_left} days.")
            }
            _ => "It is due today.".to_string(),
        };
        notifier
            .emit_logged(crate::notify::Event {
                event: "review.reminder",
                domain: None,
                server: None,
                title: format!("Review due: {}", r.review.title),
                detail: format!(
                    "{} asked for it by {}. {state} It is on the next meeting's agenda until the minutes record it held.",
                    r.review.source, r.review.due
                ),
                link: Some("/federation#reviews".into()),
                dedupe: Some(format!("review|{}|{today}", r.id)),
            })
            .await;
    }
    Ok(())
}

/// "every day", "every 7 days", "every 6 h".
pub fn every_words(ms: i64) -> String {
    use cooper_store::schedules::{DAY, HOUR, MINUTE};
    match ms {
        DAY => "every day".into(),
        m if m % DAY == 0 => format!("every {} days", m / DAY),
        HOUR => "every hour".into(),
        m if m % HOUR == 0 => format!("every {} h", m / HOUR),
        m => format!("every {} min", m / MINUTE),
    }
}
