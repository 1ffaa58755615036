//! The setup wizard's questions for real recipes' samples (copied from Co-op Cloud recipes
//! into `tests/fixtures/samples`), and the answers written back.

use std::path::Path;

use cooper_recipe::envfile::EnvFile;
use cooper_recipe::wizard::{apply, derive, validate, Answers, FieldKind};

fn sample(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/samples")
            .join(format!("{name}.env.sample")),
    )
    .unwrap()
}

fn option<'a>(f: &'a cooper_recipe::wizard::Form, id: &str) -> &'a cooper_recipe::wizard::Opt {
    f.options
        .iter()
        .find(|o| o.id == id)
        .unwrap_or_else(|| panic!("no option {id}: {f:#?}"))
}

#[test]
fn real_samples_give_named_options_with_their_fields() {
    let b = derive(&sample("bonfire")).unwrap();
    assert_eq!(option(&b, "sonic").title, "SEARCH BACKEND");
    assert_eq!(option(&b, "basicauth").title, "BASIC_AUTH");
    assert_eq!(option(&b, "mail").title, "MAIL");
    let oidc = option(&b, "auth-openid");
    assert_eq!(oidc.title, "OpenID Connect");
    assert!(oidc.help[0].contains("callback url"), "{:?}", oidc.help);
    let rt = oidc
        .fields
        .iter()
        .find(|f| f.key == "OPENID_1_RESPONSE_TYPE")
        .unwrap();
    assert_eq!(rt.default, "code");
    assert!(oidc
        .fields
        .iter()
        .any(|f| f.key == "OPENID_1_CLIENT_ID" && f.required()));
    assert_eq!(
        oidc.fields
            .iter()
            .find(|f| f.key == "OPENID_1_ENABLE_SIGNUP")
            .unwrap()
            .kind,
        FieldKind::Flag
    );
    assert_ne!(option(&b, "github").title, option(&b, "akismet").title);

    let t = derive(&sample("traefik")).unwrap();
    assert_eq!(t.options.len(), 9, "{:#?}", t.options);
    let smtp = option(&t, "smtp");
    assert_eq!(smtp.title, "SMTP port 587");
    assert_eq!(smtp.fields[0].key, "SMTP_ENABLED");
    assert_eq!(smtp.fields[0].kind, FieldKind::Flag);

    // Documentation-style samples: one option per sub-heading, the "multiple overlays"
    // example is not offered again.
    let l = derive(&sample("llamenos")).unwrap();
    let ids: Vec<&str> = l.options.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["transcription", "asterisk", "signal"]);
    assert_eq!(option(&l, "transcription").fields.len(), 2);

    assert!(derive(&sample("gaseous")).unwrap().options.is_empty());
}

#[test]
fn every_option_on_gives_an_env_that_reads_back() {
    for r in ["bonfire", "traefik", "llamenos", "gaseous"] {
        let text = sample(r);
        let f = derive(&text).unwrap();
        let mut a = Answers::default();
        for o in &f.options {
            a.options.insert(o.id.clone());
            for field in o.fields.iter().filter(|x| x.required()) {
                let v = match field.kind {
                    FieldKind::Email => "ops@coop.example",
                    FieldKind::Number => "1",
                    FieldKind::Flag => "true",
                    FieldKind::Text => "set by the wizard",
                };
                a.values.insert(field.key.clone(), v.into());
            }
            for sec in &o.secrets {
                a.secrets
                    .insert(sec.name.clone(), "x".repeat(sec.length.unwrap_or(12)));
            }
        }
        for sec in &f.secrets {
            a.secrets
                .insert(sec.name.clone(), "x".repeat(sec.length.unwrap_or(12)));
        }
        assert_eq!(validate(&f, &a), Vec::new(), "{r}");
        let out = apply(&text, &f, &a).unwrap();
        let env = EnvFile::parse(&out).unwrap_or_else(|e| panic!("{r}: {e}\n{out}"));
        // Only a COMPOSE_FILE line may be added (when the sample has no active one).
        let had_compose = EnvFile::parse(&text).unwrap().get("COMPOSE_FILE").is_some();
        let added = usize::from(!had_compose && !f.options.is_empty());
        assert_eq!(
            out.lines().count(),
            text.lines().count() + added,
            "{r}: no line lost"
        );
        let compose = env.get("COMPOSE_FILE").unwrap_or("compose.yml");
        for o in &f.options {
            for overlay in &o.overlays {
                assert!(
                    compose.split(':').any(|c| c == overlay),
                    "{r}: {overlay} in {compose}"
                );
            }
            for field in &o.fields {
                assert!(env.get(&field.key).is_some(), "{r}: {} set", field.key);
            }
        }
        // The wizard's form of the written env still offers the same options (provisioning
        // derives it again from the app's .env).
        assert_eq!(
            derive(&out).unwrap().options.len(),
            0,
            "{r}: all switched on"
        );
    }
}

#[test]
fn overlays_written_as_full_lists_add_up() {
    let text = sample("traefik");
    let f = derive(&text).unwrap();
    let mut a = Answers::default();
    a.options.insert("keycloak".into());
    a.options.insert("smtp".into());
    let env = EnvFile::parse(&apply(&text, &f, &a).unwrap()).unwrap();
    assert_eq!(
        env.get("COMPOSE_FILE"),
        Some("compose.yml:compose.keycloak.yml:compose.smtp.yml")
    );
    assert_eq!(env.get("SMTP_ENABLED"), Some("1"));
    assert_eq!(env.get("KEYCLOAK_MIDDLEWARE_ENABLED"), Some("1"));
    assert_eq!(env.get("GITEA_SSH_ENABLED"), None);
}
