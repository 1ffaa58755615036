//! The provisioning job of an approved request: [`perform`] runs
//! [`cooper_ops::provision::provision`] with the request's answers and the secrets the
//! operator gave (taken from the [`crate::vault::Vault`]), and keeps the initial credentials
//! there for the requester; [`settle`] then moves the request on — live: the community made
//! under the server's co-op and made the instance's owner, the requester its admin (invited
//! when they have no account), the co-op's default schedules attached, the requester told;
//! failed: the request says which step failed and what is left.

use cooper_ops::app::NewApp;
use cooper_ops::provision::{provision, ProvisionRequest};
use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::wizard::Answers;
use cooper_store::{JobState, Token};

use crate::jobs::{Args, JobReporter, Jobs};
use crate::vault::Vault;

/// How long the requester's invitation stays valid.
pub const INVITE_VALID_MS: i64 = 14 * 24 * 3600 * 1000;

/// Who settles requests in the audit log and comments.
const SETTLER: &str = "cooper serve";

pub(crate) async fn perform(
    abra: &AbraDir,
    domain: &str,
    args: &Args,
    reporter: &mut JobReporter,
    vault: &Vault,
    probe_image: &str,
) -> Result<String, String> {
    let Some(p) = &args.provision else {
        return Err("this provisioning job has no request's answers".into());
    };
    let given = args
        .request
        .as_deref()
        .map(|r| vault.take_given(r))
        .unwrap_or_default();
    let req = ProvisionRequest {
        app: NewApp {
            server: p.server.clone(),
            domain: domain.to_string(),
            recipe: p.recipe.clone(),
            version: Some(p.version.clone()),
            chaos: false,
            answers: Some(Answers {
                options: p.options.clone(),
                values: p.values.clone(),
                secrets: Default::default(),
            }),
            settings: None,
        },
        secrets: given,
        keep_on_failure: p.keep,
        wait_lock: Some(std::time::Duration::from_secs(120)),
        probe_image: probe_image.to_string(),
        fail_after: None,
        restore_from: None,
    };
    match provision(abra, &req, reporter).await {
        Ok(done) => {
            let waiting = done.credentials.len();
            vault.hand_over(domain, &p.email, done.credentials);
            let steps: Vec<String> = done
                .steps
                .iter()
                .map(|s| format!("{}: {}", s.step.id(), s.summary))
                .collect();
            Ok(format!(
                "live: {} {} runs on {} ({}){}",
                p.recipe,
                done.version,
                done.server,
                steps.join("; "),
                if waiting > 0 {
                    format!("; {waiting} initial credential(s) wait for {}", p.email)
                } else {
                    String::new()
                }
            ))
        }
        Err(failed) => Err(failed.to_string()),
    }
}

/// After the job: the request moves on and the requester hears of it. Returns lines for the
/// job's log.
pub(crate) async fn settle(
    jobs: &Jobs,
    job: &cooper_store::Job,
    args: &Args,
    state: JobState,
    outcome: &str,
) -> Vec<String> {
    let (Some(id), Some(p)) = (&args.request, &args.provision) else {
        return Vec::new();
    };
    let store = &jobs.store;
    let domain = &job.domain;
    let mut lines = Vec::new();
    if state != JobState::Succeeded {
        let _ = store
            .move_instance_request(id, &["provisioning"], "failed", SETTLER)
            .await;
        let _ = store
            .add_request_comment(
                id,
                SETTLER,
                &format!("Provisioning did not finish: {outcome}"),
            )
            .await;
        jobs.notifier
            .tell(
                &p.email,
                "request.approved",
                &format!("Setting up {domain} did not work yet"),
                "Your request was approved, but setting up the instance failed. The co-op's \
                 operators have the details and will try again or write to you.",
                None,
            )
            .await;
        lines.push("the request is marked failed; the operators see why on the queue".into());
        return lines;
    }
    let _ = store
        .move_instance_request(id, &["provisioning"], "live", SETTLER)
        .await;
    let now = cooper_store::now_ms();
    let Some(coop) = &p.coop else {
        let note = format!(
            "{domain} is live, but no co-op runs server {}: set the owners on the People page, \
             then invite {} as the community's admin",
            p.server, p.email
        );
        let _ = store.add_request_comment(id, SETTLER, &note).await;
        lines.push(note);
        return lines;
    };
    // The community (one of this name under this co-op, or a new one) owns the instance.
    let community = match store.communities().await {
        Ok(list) => match list
            .into_iter()
            .find(|c| c.coop_id == *coop && c.name == p.community)
        {
            Some(c) => Ok(c),
            None => store.add_community(&p.community, coop).await,
        },
        Err(e) => Err(e),
    };
    let community = match community {
        Ok(c) => c,
        Err(e) => {
            lines.push(format!(
                "could not record the community {}: {e}",
                p.community
            ));
            return lines;
        }
    };
    if let Err(e) = store.set_instance_owner(domain, &community.id).await {
        lines.push(format!("could not record the instance's owner: {e}"));
    }
    match store.attach_default_schedules(domain, coop, now).await {
        Ok(list) => lines.push(format!(
            "schedules attached: {}",
            list.iter()
                .map(|s| s.kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => lines.push(format!("could not attach the schedules: {e}")),
    }
    let credentials = if jobs.vault.waiting_for(domain, &p.email) {
        format!(
            " The first time you open {domain} on the dashboard you can read its initial \
             credentials — once: after that only a reset gives new ones."
        )
    } else {
        String::new()
    };
    // The requester: an admin of the community, invited when they have no account yet.
    match store.person_by_email(&p.email).await {
        Ok(Some(person)) => {
            let _ = store
                .add_membership(&person.id, "community", &community.id, "admin")
                .await;
            jobs.notifier
                .tell(
                    &p.email,
                    "instance.live",
                    &format!("{domain} is live"),
                    &format!("Your instance is ready.{credentials}"),
                    Some(&format!("/instances/{domain}")),
                )
                .await;
            lines.push(format!("{} is now an admin of {}", p.email, community.name));
        }
        Ok(None) => {
            let token = Token {
                purpose: "invite".into(),
                email: Some(p.email.clone()),
                kind: Some("community".into()),
                target_id: Some(community.id.clone()),
                role: Some("admin".into()),
                created_by: Some(SETTLER.into()),
            };
            match store.issue_token(&token, INVITE_VALID_MS).await {
                Ok(secret) => {
                    jobs.notifier
                        .tell_once(
                            &p.email,
                            "instance.live",
                            &format!("{domain} is live: your account"),
                            &format!(
                                "Your instance is ready. Make your account with this link \
                                 (valid for 14 days, once).{credentials}"
                            ),
                            &format!("/invite/{secret}"),
                        )
                        .await;
                    lines.push(format!(
                        "{} is invited as the admin of {} (the link went by e-mail; an \
                         operator can make a new one from the queue)",
                        p.email, community.name
                    ));
                }
                Err(e) => lines.push(format!("could not invite {}: {e}", p.email)),
            }
        }
        Err(e) => lines.push(format!("could not look up {}: {e}", p.email)),
    }
    let _ = store
        .add_request_comment(id, SETTLER, &format!("Live. {}", lines.join("; ")))
        .await;
    jobs.notifier
        .emit_logged(crate::notify::Event {
            event: "instance.live",
            domain: Some(domain.clone()),
            server: Some(p.server.clone()),
            title: format!("{domain} is live"),
            detail: outcome.to_string(),
            link: Some(format!("/instances/{domain}")),
            dedupe: None,
        })
        .await;
    lines
}
