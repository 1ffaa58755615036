//! The store's behaviour, the same tests on SQLite and on Postgres (`COOPER_TEST_POSTGRES`,
//! set by `scripts/test`; in CI its absence fails the Postgres half instead of skipping it).

use cooper_store::{testing, JobState, RecordRow, Store, Token};

#[macro_use]
mod common;

on_both!(people_and_memberships, |s: Store| async move {
    let p = s
        .add_person("Ada@Example.org", "Ada", Some("$argon2id$x"), true)
        .await
        .unwrap();
    assert_eq!(p.email, "ada@example.org");
    assert!(p.federation_admin);
    let again = s.add_person("ada@example.org", "Ada 2", None, false).await;
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("already has an account"));
    let coop = s.add_coop("Autonomic").await.unwrap();
    let com = s.add_community("Radio Bielefeld", &coop.id).await.unwrap();
    s.add_membership(&p.id, "community", &com.id, "member")
        .await
        .unwrap();
    s.add_membership(&p.id, "community", &com.id, "admin")
        .await
        .unwrap();
    let m = s.memberships(&p.id).await.unwrap();
    assert_eq!(m.len(), 1, "a new role replaces the old one: {m:?}");
    assert_eq!(m[0].role, "admin");
    let bad = s.add_membership(&p.id, "coop", &coop.id, "admin").await;
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("a co-op has operators"));
    s.set_server_owner("default", &coop.id).await.unwrap();
    s.set_instance_owner("radio.example.org", &com.id)
        .await
        .unwrap();
    assert_eq!(
        s.server_owners().await.unwrap(),
        vec![("default".into(), coop.id.clone())]
    );
    assert_eq!(s.count_admins().await.unwrap(), 1);
});

on_both!(tokens_are_single_use, |s: Store| async move {
    let t = Token {
        purpose: "invite".into(),
        email: Some("b@example.org".into()),
        kind: Some("community".into()),
        target_id: Some("c1".into()),
        role: Some("member".into()),
        created_by: None,
    };
    let secret = s.issue_token(&t, 60_000).await.unwrap();
    assert!(s.token_valid("invite", &secret).await.unwrap());
    assert!(
        !s.token_valid("setup", &secret).await.unwrap(),
        "purpose is part of the key"
    );
    // Two uses at once: exactly one wins.
    let (a, b) = tokio::join!(
        s.use_token("invite", &secret),
        s.use_token("invite", &secret)
    );
    let wins = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(wins, 1);
    assert!(s.use_token("invite", &secret).await.unwrap().is_none());
    let expired = s.issue_token(&t, -1).await.unwrap();
    assert!(s.use_token("invite", &expired).await.unwrap().is_none());
});

on_both!(sessions_are_revocable, |s: Store| async move {
    let p = s
        .add_person("c@example.org", "C", None, false)
        .await
        .unwrap();
    let later = cooper_store::now_ms() + 60_000;
    assert!(s
        .session_create("s1", Some(&p.id), "{}", later)
        .await
        .unwrap());
    assert!(
        !s.session_create("s1", None, "{}", later).await.unwrap(),
        "ids are never reused"
    );
    s.session_save("s2", Some(&p.id), "{\"a\":1}", later)
        .await
        .unwrap();
    s.session_save("gone", None, "{}", cooper_store::now_ms() - 1)
        .await
        .unwrap();
    assert_eq!(
        s.session_load("s2").await.unwrap().as_deref(),
        Some("{\"a\":1}")
    );
    assert_eq!(
        s.session_load("gone").await.unwrap(),
        None,
        "expired sessions do not load"
    );
    assert_eq!(s.revoke_sessions(&p.id).await.unwrap(), 2);
    assert_eq!(s.session_load("s1").await.unwrap(), None);
});

on_both!(jobs_run_one_at_a_time_per_app, |s: Store| async move {
    let a1 = s
        .create_job("deploy", "a.example.org", "{}", "p")
        .await
        .unwrap();
    let a2 = s
        .create_job("backup", "a.example.org", "{}", "p")
        .await
        .unwrap();
    let b1 = s
        .create_job("deploy", "b.example.org", "{}", "p")
        .await
        .unwrap();
    let first = s.claim_job().await.unwrap().unwrap();
    assert_eq!(first.id, a1.id);
    assert_eq!(first.state, JobState::Running);
    let second = s.claim_job().await.unwrap().unwrap();
    assert_eq!(
        second.id, b1.id,
        "a.example.org's second job waits for its first"
    );
    assert!(s.claim_job().await.unwrap().is_none());
    s.finish_job(
        &a1.id,
        JobState::Succeeded,
        "deployed 1.0.0",
        Some("/r.json"),
    )
    .await
    .unwrap();
    assert_eq!(s.claim_job().await.unwrap().unwrap().id, a2.id);
    assert_eq!(s.add_job_line(&a2.id, "one").await.unwrap(), 1);
    assert_eq!(s.add_job_line(&a2.id, "two").await.unwrap(), 2);
    let lines = s.job_lines(&a2.id, 1).await.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["two"]
    );
    // Held by a live process with a lease that runs: nobody interrupts them.
    let live = |_: &str| false;
    let now = cooper_store::now_ms();
    assert!(s
        .interrupt_abandoned_jobs(now, &live)
        .await
        .unwrap()
        .is_empty());
    // Their owner died (a restart finds them): both interrupted, a1 untouched.
    let me = cooper_store::this_process();
    let dead = |o: &str| o == me;
    assert!(!cooper_store::owner_gone(&me, &me), "we are alive");
    let cut = s.interrupt_abandoned_jobs(now, &dead).await.unwrap();
    assert_eq!(cut.len(), 2);
    assert!(
        s.interrupt_abandoned_jobs(now, &dead)
            .await
            .unwrap()
            .is_empty(),
        "marked once"
    );
    assert_eq!(
        s.job(&a2.id).await.unwrap().unwrap().state,
        JobState::Interrupted
    );
    assert_eq!(
        s.job(&a1.id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    let queued = s
        .create_job("deploy", "c.example.org", "{}", "p")
        .await
        .unwrap();
    assert_eq!(
        s.cancel_job(&queued.id).await.unwrap(),
        Some(JobState::Cancelled)
    );
    assert_eq!(s.jobs(Some("a.example.org"), 10).await.unwrap().len(), 2);
    // A job that cannot stop midway is cancelled only while queued: once a worker claimed
    // it, the cancel changes nothing.
    let restart = s
        .create_job("restart", "d.example.org", "{}", "p")
        .await
        .unwrap();
    assert_eq!(s.claim_job().await.unwrap().unwrap().id, restart.id);
    assert_eq!(
        s.cancel_queued_job(&restart.id).await.unwrap(),
        Some(JobState::Running)
    );
    assert!(!s.job(&restart.id).await.unwrap().unwrap().cancel_requested);
});

on_both!(
    job_leases_are_held_renewed_and_lost,
    |s: Store| async move {
        let a = s
            .create_job("backup", "a.example.org", "{}", "p")
            .await
            .unwrap();
        let b = s
            .create_job("backup", "b.example.org", "{}", "p")
            .await
            .unwrap();
        let live = |_: &str| false;
        let ja = s.claim_job_for("host-1:10", 1_000).await.unwrap().unwrap();
        let jb = s.claim_job_for("host-2:20", 1_000).await.unwrap().unwrap();
        assert_eq!(
            (ja.id.as_str(), jb.id.as_str()),
            (a.id.as_str(), b.id.as_str())
        );
        assert_eq!((ja.attempts, ja.owner.as_deref()), (1, Some("host-1:10")));
        let t0 = ja.lease_until.unwrap();
        // host-1 renews; host-2 goes silent. After both first leases ran out, only b is cut.
        let renewed = s.renew_job_leases("host-1:10", 60_000).await.unwrap();
        assert_eq!(renewed.len(), 1);
        assert!(renewed[0].lease_until.unwrap() > t0 + 50_000);
        let later = t0 + 5_000;
        let cut = s.interrupt_abandoned_jobs(later, &live).await.unwrap();
        assert_eq!(
            cut.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
            [b.id.as_str()]
        );
        assert_eq!(
            s.job(&a.id).await.unwrap().unwrap().state,
            JobState::Running
        );
        assert_eq!(
            s.job(&b.id).await.unwrap().unwrap().state,
            JobState::Interrupted
        );
        // A cancel asked through another process reaches the owner with its renewal.
        s.cancel_job(&a.id).await.unwrap();
        let renewed = s.renew_job_leases("host-1:10", 60_000).await.unwrap();
        assert!(renewed[0].cancel_requested);
        // Renewing touches only the owner's running jobs.
        assert!(s
            .renew_job_leases("host-2:20", 60_000)
            .await
            .unwrap()
            .is_empty());
    }
);

on_both!(requests_audit_and_records, |s: Store| async move {
    let r = s
        .create_request("upgrade", "a.example.org", "p", "please")
        .await
        .unwrap();
    assert!(s
        .decide_request(&r.id, "approved", "op", Some("j1"))
        .await
        .unwrap());
    assert!(
        !s.decide_request(&r.id, "declined", "op", None)
            .await
            .unwrap(),
        "decided once"
    );
    assert_eq!(
        s.requests(Some("a.example.org"), true).await.unwrap().len(),
        0
    );
    s.audit(
        "ada",
        "deploy",
        Some("a.example.org"),
        Some("default"),
        "ok",
        "1.0.0",
    )
    .await
    .unwrap();
    s.audit("ada", "login", None, None, "ok", "").await.unwrap();
    let log = s.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].action, "login", "newest first");
    let row = RecordRow {
        path: "/x/1.json".into(),
        domain: "a.example.org".into(),
        operation: "app deploy".into(),
        started: "2026-12-01T00:00:00Z".into(),
        ok: Some(true),
        error: None,
        made_snapshot: None,
    };
    s.index_record(&row).await.unwrap();
    s.index_record(&row).await.unwrap();
    assert_eq!(s.record_count().await.unwrap(), 1);
    assert_eq!(s.records("a.example.org", 5).await.unwrap(), vec![row]);
    // The newest snapshot made counts as the last backup, whichever operation made it: a
    // failed upgrade's safety backup is still a backup; a failed backup is none.
    let at = |path: &str, op: &str, started: &str, ok: bool, snap: Option<&str>| RecordRow {
        path: path.into(),
        domain: "a.example.org".into(),
        operation: op.into(),
        started: started.into(),
        ok: Some(ok),
        error: None,
        made_snapshot: snap.map(str::to_string),
    };
    for r in [
        at(
            "/x/2.json",
            "backup create",
            "2026-12-01T01:00:00Z",
            true,
            Some("aaaa"),
        ),
        at(
            "/x/3.json",
            "app upgrade",
            "2026-12-01T02:00:00Z",
            false,
            Some("bbbb"),
        ),
        at(
            "/x/4.json",
            "backup create",
            "2026-12-01T03:00:00Z",
            false,
            None,
        ),
    ] {
        s.index_record(&r).await.unwrap();
    }
    let latest = s.latest_records().await.unwrap();
    let get = |op: &str| {
        latest
            .iter()
            .find(|(d, o, _)| d == "a.example.org" && o == op)
            .map(|(_, _, t)| t.clone())
    };
    assert_eq!(
        get(cooper_store::BACKUP).as_deref(),
        Some("2026-12-01T02:00:00Z")
    );
    assert_eq!(
        get("backup create").as_deref(),
        Some("2026-12-01T01:00:00Z")
    );
    assert_eq!(get("app upgrade"), None, "the upgrade failed");
});

on_both!(an_openid_identity_links_once, |s: Store| async move {
    let p = s
        .add_person("ada@example.org", "Ada", None, false)
        .await
        .unwrap();
    assert!(s
        .person_by_subject("https://id.example.org#ada")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .link_subject(&p.id, "https://id.example.org#ada")
        .await
        .unwrap());
    let found = s
        .person_by_subject("https://id.example.org#ada")
        .await
        .unwrap()
        .expect("linked");
    assert_eq!(found.id, p.id);
    // A second identity cannot take over a linked account.
    assert!(!s
        .link_subject(&p.id, "https://id.example.org#mallory")
        .await
        .unwrap());
    assert_eq!(
        s.person(&p.id)
            .await
            .unwrap()
            .unwrap()
            .oidc_subject
            .as_deref(),
        Some("https://id.example.org#ada")
    );
});

/// Finishes a job the way a worker does (claimed, then ended).
async fn run_job(s: &Store, id: &str, ok: bool) {
    let mut claimed = Vec::new();
    while let Some(j) = s.claim_job().await.unwrap() {
        let mine = j.id == id;
        claimed.push(j.id);
        if mine {
            break;
        }
    }
    assert!(claimed.iter().any(|c| c == id), "job {id} was queued");
    let state = if ok {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    s.finish_job(id, state, "done", None).await.unwrap();
    // Others claimed on the way go back to succeeded (they are not under test here).
    for c in claimed.iter().filter(|c| *c != id) {
        s.finish_job(c, JobState::Succeeded, "done", None)
            .await
            .unwrap();
    }
}

on_both!(
    schedules_run_once_catch_up_and_stay_owed_until_done,
    |s: Store| async move {
        use cooper_store::schedules::{default_cadence, DAY, HOUR, MINUTE};
        let t0 = 10 * DAY; // midnight UTC
        let daily = default_cadence("backup").unwrap();
        for d in ["a.example.org", "b.example.org", "c.example.org"] {
            s.set_schedule(d, "backup", daily, true, t0).await.unwrap();
        }
        let all = s.schedules(None).await.unwrap();
        assert_eq!(all.len(), 3);
        for x in &all {
            assert!(x.next_due > t0 && x.next_due < t0 + 5 * HOUR, "{x:?}");
        }
        // Nothing before the window.
        let t = s
            .tick(t0 + 30 * MINUTE, "A", "scheduler", "{}")
            .await
            .unwrap();
        assert!(t.queued.is_empty(), "{t:?}");
        // After the window: each instance once; a second tick queues nothing more.
        let t = s.tick(t0 + 5 * HOUR, "A", "scheduler", "{}").await.unwrap();
        assert_eq!(t.queued.len(), 3, "{t:?}");
        let again = s
            .tick(t0 + 5 * HOUR + MINUTE, "A", "scheduler", "{}")
            .await
            .unwrap();
        assert!(again.queued.is_empty(), "no double runs: {again:?}");
        // Another process on the same store is not the planner while A's lease runs.
        let b = s
            .tick(t0 + 5 * HOUR + MINUTE, "B", "scheduler", "{}")
            .await
            .unwrap();
        assert!(b.not_leader);
        // a succeeds, b fails, c never runs (its server was down, say).
        let job = |d: &str| {
            t.queued
                .iter()
                .find(|(dd, _, _)| dd == d)
                .map(|(_, _, j)| j.clone())
                .unwrap()
        };
        run_job(&s, &job("a.example.org"), true).await;
        run_job(&s, &job("b.example.org"), false).await;
        let t1 = t0 + 5 * HOUR + 2 * MINUTE;
        let t = s.tick(t1, "A", "scheduler", "{}").await.unwrap();
        assert_eq!(t.settled, 1);
        let a = s
            .schedule("a.example.org", "backup")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.pending_since, None);
        assert!(a.last_ok_at.is_some());
        // b is tried again after the pause (1 h for a daily schedule, from when the planner saw
        // the failure), not before.
        assert!(s
            .tick(t1 + 30 * MINUTE, "A", "scheduler", "{}")
            .await
            .unwrap()
            .queued
            .is_empty());
        let retry = s
            .tick(t1 + 61 * MINUTE, "A", "scheduler", "{}")
            .await
            .unwrap();
        assert_eq!(
            retry
                .queued
                .iter()
                .map(|q| q.0.as_str())
                .collect::<Vec<_>>(),
            ["b.example.org"]
        );
        // Past the grace (2 h), b and c are overdue; a is not.
        let late = t0 + 8 * HOUR;
        let overdue: Vec<String> = s
            .overdue_schedules(late)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.domain)
            .collect();
        assert_eq!(overdue, ["b.example.org", "c.example.org"]);

        // cooper serve stops for three days (A's lease runs out; B takes over). One run each,
        // owed since the first slot missed.
        let back = t0 + 4 * DAY + 12 * HOUR;
        let t = s.tick(back, "B", "scheduler", "{}").await.unwrap();
        assert!(!t.not_leader, "the lease passed on");
        let domains: Vec<&str> = t.queued.iter().map(|q| q.0.as_str()).collect();
        assert_eq!(
            domains,
            ["a.example.org"],
            "b and c still have a job queued: {t:?}"
        );
        let a = s
            .schedule("a.example.org", "backup")
            .await
            .unwrap()
            .unwrap();
        assert!(
            a.pending_since.unwrap() < t0 + 2 * DAY,
            "owed since the first missed slot"
        );
        assert!(a.next_due > back && a.next_due < back + DAY);
        assert!(t.overdue.iter().any(|x| x.domain == "a.example.org"));
    }
);

on_both!(
    two_planners_at_once_queue_each_run_once,
    |s: Store| async move {
        use cooper_store::schedules::{default_cadence, DAY, HOUR};
        let t0 = 20 * DAY;
        let daily = default_cadence("backup").unwrap();
        for i in 0..20 {
            s.set_schedule(&format!("i{i}.example.org"), "backup", daily, true, t0)
                .await
                .unwrap();
        }
        // Two ticks at once under the same holder (both past the lease): the conditional
        // claims let each run through once.
        let (x, y) = tokio::join!(
            s.tick(t0 + 6 * HOUR, "A", "scheduler", "{}"),
            s.tick(t0 + 6 * HOUR, "A", "scheduler", "{}")
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.queued.len() + y.queued.len(), 20, "{x:?} {y:?}");
        assert_eq!(s.jobs(None, 100).await.unwrap().len(), 20);
    }
);

on_both!(
    defaults_per_coop_fall_back_to_the_federation,
    |s: Store| async move {
        use cooper_store::schedules::{Cadence, DAY, HOUR};
        let weekly_backup = Cadence {
            every_ms: 7 * DAY,
            window_start_ms: 0,
            window_ms: 6 * HOUR,
        };
        s.set_default_schedule("coop1", "backup", weekly_backup, true)
            .await
            .unwrap();
        s.set_default_schedule("coop1", "test", weekly_backup, false)
            .await
            .unwrap();
        let got = s
            .attach_default_schedules("a.example.org", "coop1", 0)
            .await
            .unwrap();
        let kinds: Vec<&str> = got.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["backup", "upgrade-check", "upgrade-window", "verify"],
            "test is off for coop1"
        );
        assert_eq!(got[0].cadence, weekly_backup);
        let other = s
            .attach_default_schedules("b.example.org", "coop2", 0)
            .await
            .unwrap();
        assert_eq!(other.len(), 5, "the federation's defaults");
        let e = s
            .set_schedule("a.example.org", "dance", weekly_backup, true, 0)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown schedule kind"), "{e}");
    }
);

on_both!(
    the_outbox_dedupes_backs_off_and_gives_up,
    |s: Store| async move {
        use cooper_store::notify::{backoff_ms, MAX_ATTEMPTS};
        use cooper_store::NewOutgoing;
        let m = |dedupe: Option<&str>, at: i64| NewOutgoing {
            channel: "email",
            target: "ada@example.org",
            event: "job.failed",
            subject: "x failed",
            body: "x failed",
            dedupe: dedupe.map(str::to_string),
            send_at: at,
            one_time: false,
        };
        assert!(s.enqueue(&m(Some("k1"), 100)).await.unwrap());
        assert!(
            !s.enqueue(&m(Some("k1"), 100)).await.unwrap(),
            "the same news once"
        );
        assert!(s.enqueue(&m(None, 200)).await.unwrap());
        assert!(
            s.enqueue(&m(None, 200)).await.unwrap(),
            "no key: every one goes"
        );
        assert_eq!(s.due_messages(150, 10).await.unwrap().len(), 1);
        assert_eq!(s.due_messages(250, 10).await.unwrap().len(), 3);
        assert_eq!(
            s.pending_for("email", "ada@example.org")
                .await
                .unwrap()
                .len(),
            3
        );
        let first = s.due_messages(150, 10).await.unwrap().remove(0);
        assert_eq!(
            s.mark_failed(&first, "refused", 1000).await.unwrap(),
            "pending"
        );
        let again = s
            .outbox(10)
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.id == first.id)
            .unwrap();
        assert_eq!((again.attempts, again.next_at), (1, 1000 + backoff_ms(1)));
        let mut row = again;
        for _ in 1..MAX_ATTEMPTS {
            let state = s.mark_failed(&row, "refused", 2000).await.unwrap();
            row = s
                .outbox(10)
                .await
                .unwrap()
                .into_iter()
                .find(|o| o.id == first.id)
                .unwrap();
            if row.attempts == MAX_ATTEMPTS {
                assert_eq!(state, "failed");
            }
        }
        assert_eq!(row.state, "failed");
        let hook = s
            .add_webhook("https://hooks.example.org/x", &[], "ada")
            .await
            .unwrap();
        assert!(hook.wants("anything") && hook.secret.len() >= 32);
        let e = s
            .add_webhook("ftp://x", &[], "ada")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("https://"), "{e}");
        assert!(s.delete_webhook(&hook.id).await.unwrap());
        assert!(s.webhooks().await.unwrap().is_empty());
        // A one-time link leaves the store with the mail; an ordinary body stays.
        let link = "https://coop.example.org/invite/tok-3f9a";
        assert!(s
            .enqueue(&NewOutgoing {
                one_time: true,
                body: link,
                ..m(None, 300)
            })
            .await
            .unwrap());
        let pending = s.pending_for("email", "ada@example.org").await.unwrap();
        let invite = pending.iter().find(|o| o.body == link).unwrap().clone();
        let plain = pending
            .iter()
            .find(|o| o.body == "x failed")
            .unwrap()
            .clone();
        s.mark_sent(&invite.id, 400).await.unwrap();
        s.mark_sent(&plain.id, 400).await.unwrap();
        let all = s.outbox(20).await.unwrap();
        let body = |id: &str| all.iter().find(|o| o.id == id).unwrap().body.clone();
        assert_eq!(body(&invite.id), cooper_store::notify::DELIVERED_ONE_TIME);
        assert_eq!(body(&plain.id), "x failed");
        assert!(all.iter().all(|o| !o.body.contains("tok-3f9a")));
    }
);

on_both!(instance_requests_are_decided_once, |s: Store| async move {
    use cooper_store::NewInstanceRequest;
    let new = NewInstanceRequest {
        community: "Radio Bielefeld",
        email: "Ops@Radio.example",
        recipe: "bonfire",
        version: "1.0.0+1",
        answers: r#"{"options":["mail"]}"#,
        domain: "radio.coop.example",
    };
    let r = s.create_instance_request(&new).await.unwrap();
    assert_eq!(
        (r.state.as_str(), r.email.as_str()),
        ("new", "ops@radio.example")
    );
    let e = s
        .create_instance_request(&new)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already asked for"), "{e}");
    assert_eq!(s.instance_requests(true).await.unwrap().len(), 1);
    assert!(s
        .move_instance_request(&r.id, &["new", "needs-information"], "declined", "olga")
        .await
        .unwrap());
    assert!(
        !s.move_instance_request(&r.id, &["new"], "approved", "ada")
            .await
            .unwrap(),
        "decided once"
    );
    assert!(s.instance_requests(true).await.unwrap().is_empty());
    // Declined: the address may be asked for again.
    s.create_instance_request(&new).await.unwrap();
    s.add_request_comment(&r.id, "olga", "we have no room this month")
        .await
        .unwrap();
    assert_eq!(
        s.request_comments(&r.id).await.unwrap()[0].1,
        "we have no room this month"
    );
    let e = s
        .move_instance_request(&r.id, &["declined"], "flying", "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown request state"), "{e}");
    // The second request: approved onto a server once, tried again after a failure.
    let again = s.instance_requests(true).await.unwrap().remove(0);
    assert_ne!(again.id, r.id, "the declined one is not open");
    assert!(s
        .approve_instance_request(&again.id, "default", "ada")
        .await
        .unwrap());
    assert!(
        !s.approve_instance_request(&again.id, "other", "olga")
            .await
            .unwrap(),
        "approved once"
    );
    let got = s.instance_request(&again.id).await.unwrap().unwrap();
    assert_eq!(
        (got.state.as_str(), got.server.as_deref()),
        ("provisioning", Some("default"))
    );
    assert!(s
        .move_instance_request(&again.id, &["provisioning"], "failed", "cooper serve")
        .await
        .unwrap());
    assert!(s
        .approve_instance_request(&again.id, "default", "ada")
        .await
        .unwrap());
});

on_both!(a_consent_waits_for_its_window_once, |s: Store| async move {
    let d = "pads.example.org";
    assert!(s.waiting_consent(d).await.unwrap().is_none());
    s.give_consent(d, "1.1.0+1.1", "carla@example.org", 10)
        .await
        .unwrap();
    let c = s.waiting_consent(d).await.unwrap().unwrap();
    assert_eq!(
        (c.version.as_str(), c.given_by.as_str(), c.state.as_str()),
        ("1.1.0+1.1", "carla@example.org", "consented")
    );
    // A newer release agreed to replaces the one waiting.
    s.give_consent(d, "1.2.0+1.2", "carla@example.org", 20)
        .await
        .unwrap();
    let all = s.consents(d).await.unwrap();
    let states: Vec<(&str, &str)> = all
        .iter()
        .map(|c| (c.version.as_str(), c.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [("1.2.0+1.2", "consented"), ("1.1.0+1.1", "withdrawn")]
    );
    // Settled once: a second settle (another process) changes nothing.
    assert!(s
        .settle_consent(d, "1.2.0+1.2", "applied", "upgraded", Some("job1"), 30)
        .await
        .unwrap());
    assert!(!s
        .settle_consent(d, "1.2.0+1.2", "failed", "late", Some("job2"), 31)
        .await
        .unwrap());
    let c = &s.consents(d).await.unwrap()[0];
    assert_eq!(
        (c.state.as_str(), c.job.as_deref(), c.settled_at),
        ("applied", Some("job1"), Some(30))
    );
    assert!(s.waiting_consent(d).await.unwrap().is_none());
    // Withdrawn before the window: nothing waits; agreeing again makes it wait again.
    s.give_consent(d, "1.3.0+1.3", "carla@example.org", 40)
        .await
        .unwrap();
    assert!(s.withdraw_consent(d, "1.3.0+1.3", 41).await.unwrap());
    assert!(!s.withdraw_consent(d, "1.3.0+1.3", 42).await.unwrap());
    assert!(s.waiting_consent(d).await.unwrap().is_none());
    s.give_consent(d, "1.3.0+1.3", "dan@example.org", 50)
        .await
        .unwrap();
    let c = s.waiting_consent(d).await.unwrap().unwrap();
    assert_eq!((c.given_by.as_str(), c.given_at), ("dan@example.org", 50));
    let e = s
        .settle_consent(d, "1.3.0+1.3", "maybe", "", None, 51)
        .await;
    assert!(e.unwrap_err().to_string().contains("applied or failed"));
});
