//! People, co-ops, communities, memberships, which co-op runs which server and which community
//! an app is for; sessions; single-use tokens (setup, invitations).

use sqlx::Row;

use crate::{hash_secret, new_id, new_secret, now_ms, Result, Store, StoreError};

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub name: String,
    pub federation_admin: bool,
    pub disabled: bool,
    /// The argon2id PHC string (never shown, never logged).
    pub password_hash: Option<String>,
    pub oidc_subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coop {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub id: String,
    pub name: String,
    pub coop_id: String,
}

/// A person's place: `kind` is `coop` (role `operator`) or `community` (`admin` | `member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub kind: String,
    pub target_id: String,
    pub role: String,
}

/// A single-use token's row (its secret is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub purpose: String,
    pub email: Option<String>,
    pub kind: Option<String>,
    pub target_id: Option<String>,
    pub role: Option<String>,
    pub created_by: Option<String>,
}

pub(crate) const PERSON_COLUMNS: &str =
    "id, email, name, federation_admin, disabled, password_hash, oidc_subject";

pub(crate) fn person(row: &sqlx::any::AnyRow) -> Result<Person> {
    Ok(Person {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        federation_admin: row.try_get::<i64, _>("federation_admin")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        password_hash: row.try_get("password_hash")?,
        oidc_subject: row.try_get("oidc_subject")?,
    })
}

impl Store {
    /// Adds a person. Emails are kept lower-case; a second person with the same email is refused.
    pub async fn add_person(
        &self,
        email: &str,
        name: &str,
        password_hash: Option<&str>,
        federation_admin: bool,
    ) -> Result<Person> {
        let email = email.trim().to_lowercase();
        if !email.contains('@') {
            return Err(StoreError::Invalid(format!(
                "{email:?} is not an email address"
            )));
        }
        if self.person_by_email(&email).await?.is_some() {
            return Err(StoreError::Invalid(format!(
                "{email} already has an account: log in, or reset its password"
            )));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO people (id, email, name, password_hash, federation_admin, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&email)
        .bind(name.trim())
        .bind(password_hash)
        .bind(federation_admin as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(self.person(&id).await?.expect("just inserted"))
    }

    pub async fn person(&self, id: &str) -> Result<Option<Person>> {
        let q = format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(person).transpose()
    }

    pub async fn person_by_email(&self, email: &str) -> Result<Option<Person>> {
        let q = format!("SELECT {PERSON_COLUMNS} FROM people WHERE email = $1");
        let row = sqlx::query(&q)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person).transpose()
    }

    pub async fn person_by_subject(&self, subject: &str) -> Result<Option<Person>> {
        let q = format!("SELECT {PERSON_COLUMNS} FROM people WHERE oidc_subject = $1");
        let row = sqlx::query(&q)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person).transpose()
    }

    /// Links an OpenID identity to a person who has none yet. `false` when the person is
    /// already linked (to this or another identity): one conditional UPDATE, so two logins at
    /// once cannot both link.
    pub async fn link_subject(&self, person_id: &str, subject: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE people SET oidc_subject = $1 WHERE id = $2 AND oidc_subject IS NULL",
        )
        .bind(subject)
        .bind(person_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_password_hash(&self, person_id: &str, hash: &str) -> Result<()> {
        sqlx::query("UPDATE people SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(person_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn people(&self) -> Result<Vec<Person>> {
        let q = format!("SELECT {PERSON_COLUMNS} FROM people ORDER BY email");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter().map(person).collect()
    }

    pub async fn count_admins(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM people WHERE federation_admin = 1 AND disabled = 0",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn add_coop(&self, name: &str) -> Result<Coop> {
        let id = new_id();
        sqlx::query("INSERT INTO coops (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(name.trim())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(Coop {
            id,
            name: name.trim().to_string(),
        })
    }

    pub async fn coops(&self) -> Result<Vec<Coop>> {
        let rows = sqlx::query("SELECT id, name FROM coops ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Coop {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    pub async fn add_community(&self, name: &str, coop_id: &str) -> Result<Community> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO communities (id, name, coop_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(name.trim())
        .bind(coop_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(Community {
            id,
            name: name.trim().to_string(),
            coop_id: coop_id.to_string(),
        })
    }

    pub async fn communities(&self) -> Result<Vec<Community>> {
        let rows = sqlx::query("SELECT id, name, coop_id FROM communities ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Community {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    coop_id: r.try_get("coop_id")?,
                })
            })
            .collect()
    }

    /// Puts a person in a co-op (`operator` | `treasurer`) or a community (`admin` | `member`), replacing
    /// their role there.
    pub async fn add_membership(
        &self,
        person_id: &str,
        kind: &str,
        target_id: &str,
        role: &str,
    ) -> Result<()> {
        match (kind, role) {
            ("coop", "operator" | "treasurer") | ("community", "admin" | "member") => {}
            _ => {
                return Err(StoreError::Invalid(format!(
                    "no role {role:?} in a {kind}: a co-op has operators and treasurers, a community admins and members"
                )))
            }
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM memberships WHERE person_id = $1 AND kind = $2 AND target_id = $3",
        )
        .bind(person_id)
        .bind(kind)
        .bind(target_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (person_id, kind, target_id, role) VALUES ($1, $2, $3, $4)",
        )
        .bind(person_id)
        .bind(kind)
        .bind(target_id)
        .bind(role)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn memberships(&self, person_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT kind, target_id, role FROM memberships WHERE person_id = $1 ORDER BY kind, target_id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    kind: r.try_get("kind")?,
                    target_id: r.try_get("target_id")?,
                    role: r.try_get("role")?,
                })
            })
            .collect()
    }

    /// Says which co-op operates a server.
    pub async fn set_server_owner(&self, server: &str, coop_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM server_owners WHERE server = $1")
            .bind(server)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO server_owners (server, coop_id) VALUES ($1, $2)")
            .bind(server)
            .bind(coop_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every server → co-op assignment.
    pub async fn server_owners(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT server, coop_id FROM server_owners")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("server")?, r.try_get("coop_id")?)))
            .collect()
    }

    /// Says which community an app is for.
    pub async fn set_instance_owner(&self, domain: &str, community_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM instance_owners WHERE domain = $1")
            .bind(domain)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO instance_owners (domain, community_id) VALUES ($1, $2)")
            .bind(domain)
            .bind(community_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every app → community assignment.
    pub async fn instance_owners(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT domain, community_id FROM instance_owners")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("domain")?, r.try_get("community_id")?)))
            .collect()
    }

    // --- sessions (the web layer's session store keeps its records here) ---

    pub async fn session_load(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("data")).transpose()?)
    }

    pub async fn session_save(
        &self,
        id: &str,
        person_id: Option<&str>,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, person_id, data, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(person_id)
        .bind(data)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a session only when its id is new; `false` when the id is taken.
    pub async fn session_create(
        &self,
        id: &str,
        person_id: Option<&str>,
        data: &str,
        expires_at: i64,
    ) -> Result<bool> {
        if self.session_exists(id).await? {
            return Ok(false);
        }
        self.session_save(id, person_id, data, expires_at).await?;
        Ok(true)
    }

    async fn session_exists(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 AS one FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub async fn session_delete(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a person (log out everywhere, a disabled account); how many ended.
    pub async fn revoke_sessions(&self, person_id: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE person_id = $1")
            .bind(person_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn sessions_of(&self, person_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE person_id = $1")
            .bind(person_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    // --- single-use tokens ---

    /// Issues a single-use token valid for `valid_ms`; returns the secret (shown once).
    pub async fn issue_token(&self, token: &Token, valid_ms: i64) -> Result<String> {
        let (secret, hash) = new_secret();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tokens (hash, purpose, email, kind, target_id, role, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&hash)
        .bind(&token.purpose)
        .bind(&token.email)
        .bind(&token.kind)
        .bind(&token.target_id)
        .bind(&token.role)
        .bind(&token.created_by)
        .bind(now)
        .bind(now + valid_ms)
        .execute(&self.pool)
        .await?;
        Ok(secret)
    }

    /// Uses a token once: `Some` the first time it is presented before expiry, `None` after.
    /// The row is claimed with one conditional update, so two uses at once cannot both win.
    pub async fn use_token(&self, purpose: &str, secret: &str) -> Result<Option<Token>> {
        let hash = hash_secret(secret);
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE tokens SET used_at = $1 WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $4",
        )
        .bind(now)
        .bind(&hash)
        .bind(purpose)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed != 1 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT purpose, email, kind, target_id, role, created_by FROM tokens WHERE hash = $1",
        )
        .bind(&hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(Token {
            purpose: row.try_get("purpose")?,
            email: row.try_get("email")?,
            kind: row.try_get("kind")?,
            target_id: row.try_get("target_id")?,
            role: row.try_get("role")?,
            created_by: row.try_get("created_by")?,
        }))
    }

    /// Whether a token is still usable (without using it).
    pub async fn token_valid(&self, purpose: &str, secret: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM tokens WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash_secret(secret))
        .bind(purpose)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Ends unused tokens of a purpose (a new setup token replaces the old one).
    pub async fn expire_tokens(&self, purpose: &str) -> Result<()> {
        sqlx::query("UPDATE tokens SET expires_at = 0 WHERE purpose = $1 AND used_at IS NULL")
            .bind(purpose)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
