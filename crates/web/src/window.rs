//! The maintenance window: an upgrade the community agreed to (on the instance's page) is
//! applied only inside the instance's `upgrade-window` schedule, and always rehearsed on a
//! restored copy first (`cooper app upgrade --rehearse`). Outside the window, or with nothing
//! agreed, the window's run says so and changes nothing; a run that comes late (cooper was
//! down during the window) waits for the next window rather than upgrading at an hour the
//! community did not agree to.

use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::version::RecipeVersion;
use cooper_store::schedules::{default_cadence, in_window, window_opens};
use cooper_store::{Consent, Store};

/// What a window's run does, decided when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do; the reason.
    Nothing(String),
    /// An agreed upgrade waits for the next window; the reason.
    Wait(String),
    /// Apply the agreed upgrade now.
    Apply(Consent),
}

/// Decides what the window's run of `domain` does at `now`.
pub async fn decide(store: &Store, domain: &str, now: i64) -> Decision {
    let consent = match store.waiting_consent(domain).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Decision::Nothing(
                "no upgrade is agreed by the community: nothing to do in this window".into(),
            )
        }
        Err(e) => return Decision::Nothing(format!("the consents could not be read: {e}")),
    };
    let cadence = store
        .schedules(Some(domain))
        .await
        .ok()
        .and_then(|l| l.into_iter().find(|s| s.kind == "upgrade-window"))
        .map(|s| s.cadence)
        .or_else(|| default_cadence("upgrade-window"))
        .expect("the federation has a default window");
    if !in_window(now, &cadence) {
        return Decision::Wait(format!(
            "outside the maintenance window: the agreed upgrade to {} waits for the next one ({})",
            consent.version,
            crate::views::when(window_opens(now, &cadence))
        ));
    }
    Decision::Apply(consent)
}

/// Runs the window's decision; `Ok` is the job's summary.
pub async fn perform(
    abra: &AbraDir,
    domain: &str,
    decision: &Decision,
    probe: &str,
    reporter: &mut dyn cooper_ops::Reporter,
) -> Result<String, String> {
    let consent = match decision {
        Decision::Nothing(why) | Decision::Wait(why) => return Ok(why.clone()),
        Decision::Apply(c) => c,
    };
    let agreed = format!(
        "agreed by {} on {}",
        consent.given_by,
        crate::views::when(consent.given_at)
    );
    // Upgraded by other means meanwhile: the agreement is met.
    if let Some(running) = running_version(abra, domain).await {
        if let (Ok(r), Ok(v)) = (
            RecipeVersion::parse(&running),
            RecipeVersion::parse(&consent.version),
        ) {
            if r >= v {
                return Ok(format!(
                    "runs {running} already; the upgrade to {} ({agreed}) is in place",
                    consent.version
                ));
            }
        }
    }
    reporter.info(&format!(
        "the maintenance window is open: upgrading {domain} to {} ({agreed}), rehearsed on a copy first",
        consent.version
    ));
    let req = cooper_ops::rehearse::RehearseRequest {
        domain: domain.to_string(),
        version: Some(consent.version.clone()),
        probe_image: probe.to_string(),
        timeout: None,
    };
    match cooper_ops::rehearse::rehearse(abra, &req, reporter).await {
        Ok(r) if r.upgraded => Ok(format!(
            "rehearsed on {}, then upgraded {} → {} ({agreed})",
            r.staging, r.from, r.to
        )),
        Ok(r) => Err(format!(
            "the rehearsal of {} on {} did not pass; production still runs {}",
            r.to, r.staging, r.from
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn running_version(abra: &AbraDir, domain: &str) -> Option<String> {
    let app = abra.app(domain).ok()?;
    let engine = cooper_ops::connect(abra, &app.at.server).await.ok()?;
    cooper_ops::deploy::deployed_version(&engine, &cooper_ops::stack_of(&app))
        .await
        .ok()
        .flatten()
        .map(|(v, _)| v)
}

/// After the run: a consent applied (or failed) is settled; waiting ones stay.
pub async fn settle(store: &Store, decision: &Decision, job: &str, ok: bool, outcome: &str) {
    if let Decision::Apply(c) = decision {
        let state = if ok { "applied" } else { "failed" };
        let _ = store
            .settle_consent(
                &c.domain,
                &c.version,
                state,
                outcome,
                Some(job),
                cooper_store::now_ms(),
            )
            .await;
    }
}
