//! Docker secrets by name. Values go to the engine in the request body and nowhere else.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::models::SecretSpec;

use cooper_recipe::secrets::SecretValue;

use crate::{Engine, EngineError, Result, STACK_LABEL};

impl Engine {
    /// Names of existing secrets among `names`.
    pub async fn existing_secrets(&self, names: &[String]) -> Result<Vec<String>> {
        let mut found: Vec<String> = self.secret_ids(names).await?.into_keys().collect();
        found.sort();
        Ok(found)
    }

    /// Secrets labelled with the stack (created by cooper or `docker stack deploy`) and any
    /// whose name starts with `<stack>_` (created by abra).
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
                let labelled = spec
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(STACK_LABEL))
                    .is_some_and(|v| v == stack);
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
                STACK_LABEL.to_string(),
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
