//! Docker secrets by name. Values go to the engine in the request body and nowhere else.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::models::SecretSpec;

use cooper_recipe::secrets::SecretValue;

use crate::{Engine, EngineError, Result, STACK_LABEL};

/// The label cooper puts on the secrets it creates: `cooper.stack=<stack>`. Not Docker's
/// `com.docker.stack.namespace`, because `docker stack rm` deletes every secret carrying that
/// one, and an app's secrets must outlive its stack (their generated values were shown once).
pub const SECRET_STACK_LABEL: &str = "cooper.stack";

impl Engine {
    /// Names of existing secrets among `names`.
    pub async fn existing_secrets(&self, names: &[String]) -> Result<Vec<String>> {
        let mut found: Vec<String> = self.secret_ids(names).await?.into_keys().collect();
        found.sort();
        Ok(found)
    }

    /// Secrets labelled with the stack (`cooper.stack`, or Docker's stack label as earlier
    /// cooper versions and `docker stack deploy` set it) and any whose name starts with
    /// `<stack>_` (created by abra).
    pub async fn stack_secrets(&self, stack: &str) -> Result<Vec<(String, String)>> {
        let list = self
            .docker
            .list_secrets(None::<bollard::query_parameters::ListSecretsOptions>)
            .await
            .map_err(EngineError::api("listing secrets"))?;
        let prefix = format!("{stack}_");
        let mut out: Vec<(String, String)> = list
            .into_iter()
            .filter_map(|s| {
                let spec = s.spec?;
                let name = spec.name?;
                let labels = spec.labels.unwrap_or_default();
                let labelled = [SECRET_STACK_LABEL, STACK_LABEL]
                    .iter()
                    .any(|k| labels.get(*k).is_some_and(|v| v == stack));
                (labelled || name.starts_with(&prefix)).then_some((name, s.id?))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Creates a secret. Fails if one with that name exists (Swarm secrets are immutable).
    pub async fn create_secret(&self, name: &str, stack: &str, value: &SecretValue) -> Result<()> {
        let spec = SecretSpec {
            name: Some(name.to_string()),
            labels: Some(HashMap::from([(
                SECRET_STACK_LABEL.to_string(),
                stack.to_string(),
            )])),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value.expose())),
            ..Default::default()
        };
        self.docker
            .create_secret(spec)
            .await
            .map_err(EngineError::api(format!("creating secret {name}")))?;
        Ok(())
    }

    /// Moves the given secrets from Docker's stack label to cooper's own (only labels of a
    /// secret can change), so that `docker stack rm` no longer deletes them. Earlier cooper
    /// versions labelled their secrets with the stack namespace; a deploy relabels them.
    /// Returns the names relabelled.
    pub async fn relabel_secrets(&self, names: &[String]) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let filters = HashMap::from([("name".to_string(), names.to_vec())]);
        let list = self
            .docker
            .list_secrets(Some(
                bollard::query_parameters::ListSecretsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing secrets"))?;
        let mut done = Vec::new();
        for secret in list {
            let (Some(id), Some(mut spec), Some(version)) =
                (secret.id, secret.spec, secret.version.and_then(|v| v.index))
            else {
                continue;
            };
            let name = spec.name.clone().unwrap_or_default();
            let mut labels = spec.labels.take().unwrap_or_default();
            if !names.contains(&name) {
                continue;
            }
            let Some(stack) = labels.remove(STACK_LABEL) else {
                continue;
            };
            labels.insert(SECRET_STACK_LABEL.to_string(), stack);
            spec.labels = Some(labels);
            self.docker
                .update_secret(
                    &id,
                    spec,
                    bollard::query_parameters::UpdateSecretOptionsBuilder::default()
                        .version(version as i64)
                        .build(),
                )
                .await
                .map_err(EngineError::api(format!("relabelling secret {name}")))?;
            done.push(name);
        }
        Ok(done)
    }

    /// Removes a secret by name; `false` when there was none.
    pub async fn remove_secret(&self, name: &str) -> Result<bool> {
        let Some(id) = self.secret_ids(&[name.to_string()]).await?.remove(name) else {
            return Ok(false);
        };
        self.docker
            .delete_secret(&id)
            .await
            .map_err(EngineError::api(format!("removing secret {name}")))?;
        Ok(true)
    }
}
