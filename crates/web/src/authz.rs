//! Who may see and do what: rights are levels on resources (an instance, a server, a job, a
//! request), worked out in one place from a person's memberships and who owns what. A resource
//! someone has no right to does not exist for them: absent from lists, 404 on its page.

use std::collections::{HashMap, HashSet};

use cooper_store::{Person, Store};

/// Levels of right on a resource, each including the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Right {
    None,
    /// See its status, version, jobs, backups and tests.
    Read,
    /// Ask an operator for an upgrade, a restore or an export (community admins).
    Request,
    /// Act on it: deploy, upgrade, back up, restore, see logs (operators).
    Execute,
}

/// The role a person has, as shown on pages (rights are still checked per resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    CommunityAdmin,
    /// Keeps a co-op's books (sees them, adds entries, closes months with an operator); no
    /// right on its servers or instances.
    Treasurer,
    Operator,
    FederationAdmin,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::CommunityAdmin => "community admin",
            Role::Treasurer => "treasurer",
            Role::Operator => "operator",
            Role::FederationAdmin => "federation admin",
        }
    }
}

/// Which co-op runs each server, which community each app is for, which co-op each community
/// belongs to — read from the store once per request.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    pub server_coop: HashMap<String, String>,
    pub instance_community: HashMap<String, String>,
    pub community_coop: HashMap<String, String>,
    pub coop_names: HashMap<String, String>,
    pub community_names: HashMap<String, String>,
}

impl Owners {
    pub async fn load(store: &Store) -> cooper_store::Result<Owners> {
        let communities = store.communities().await?;
        Ok(Owners {
            server_coop: store.server_owners().await?.into_iter().collect(),
            instance_community: store.instance_owners().await?.into_iter().collect(),
            community_coop: communities
                .iter()
                .map(|c| (c.id.clone(), c.coop_id.clone()))
                .collect(),
            coop_names: store
                .coops()
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
            community_names: communities.into_iter().map(|c| (c.id, c.name)).collect(),
        })
    }
}

/// A logged-in person with their memberships.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub person: Person,
    /// Co-ops they operate for.
    pub coops: HashSet<String>,
    /// Co-ops whose books they keep.
    pub treasurer_of: HashSet<String>,
    /// Communities they belong to, with their role there (`admin` | `member`).
    pub communities: HashMap<String, String>,
    /// Member organisations of the federation they speak for (vote, propose, add to agendas).
    pub speaks_for: Vec<(String, String)>,
}

impl Viewer {
    pub async fn load(store: &Store, person: Person) -> cooper_store::Result<Viewer> {
        let mut coops = HashSet::new();
        let mut treasurer_of = HashSet::new();
        let mut communities = HashMap::new();
        for m in store.memberships(&person.id).await? {
            match (m.kind.as_str(), m.role.as_str()) {
                ("coop", "treasurer") => {
                    treasurer_of.insert(m.target_id);
                }
                ("coop", _) => {
                    coops.insert(m.target_id);
                }
                _ => {
                    communities.insert(m.target_id, m.role);
                }
            }
        }
        let speaks_for = store
            .fed_members_of(&person.id)
            .await?
            .into_iter()
            .map(|m| (m.id, m.name))
            .collect();
        Ok(Viewer {
            person,
            coops,
            treasurer_of,
            communities,
            speaks_for,
        })
    }

    pub fn is_admin(&self) -> bool {
        self.person.federation_admin
    }

    /// The highest role, for the page header.
    pub fn role(&self) -> Role {
        if self.is_admin() {
            Role::FederationAdmin
        } else if !self.coops.is_empty() {
            Role::Operator
        } else if !self.treasurer_of.is_empty() {
            Role::Treasurer
        } else if self.communities.values().any(|r| r == "admin") {
            Role::CommunityAdmin
        } else {
            Role::Member
        }
    }

    /// The right on an app (`domain` on `server`).
    pub fn on_instance(&self, domain: &str, server: &str, owners: &Owners) -> Right {
        if self.is_admin() || self.operates(server, owners) {
            return Right::Execute;
        }
        match owners
            .instance_community
            .get(domain)
            .and_then(|c| self.communities.get(c))
            .map(String::as_str)
        {
            Some("admin") => Right::Request,
            Some(_) => Right::Read,
            None => Right::None,
        }
    }

    /// The right on a server: operators of its co-op (and federation admins) act on it;
    /// nobody else sees it.
    pub fn on_server(&self, server: &str, owners: &Owners) -> Right {
        if self.is_admin() || self.operates(server, owners) {
            Right::Execute
        } else {
            Right::None
        }
    }

    /// The right on a co-op's books: its operators and treasurers keep them (and federation
    /// admins); nobody else sees them.
    pub fn on_coop(&self, coop: &str) -> Right {
        if self.is_admin() || self.coops.contains(coop) || self.treasurer_of.contains(coop) {
            Right::Execute
        } else {
            Right::None
        }
    }

    /// The right on a community's books: its people read them; its co-op's operators and
    /// treasurers keep them.
    pub fn on_community(&self, community: &str, owners: &Owners) -> Right {
        if let Some(coop) = owners.community_coop.get(community) {
            if self.on_coop(coop) == Right::Execute {
                return Right::Execute;
            }
        } else if self.is_admin() {
            return Right::Execute;
        }
        if self.communities.contains_key(community) {
            Right::Read
        } else {
            Right::None
        }
    }

    /// The right in the federation's own practice: its admins keep the register of members,
    /// dues and rhythms; the people of member organisations read it and take part (vote,
    /// propose, add to agendas, write minutes); nobody else sees member data.
    pub fn on_federation(&self) -> Right {
        if self.is_admin() {
            Right::Execute
        } else if !self.speaks_for.is_empty() {
            Right::Read
        } else {
            Right::None
        }
    }

    /// The role a person closes a co-op's month in: `treasurer` or `operator` (federation
    /// admins who are neither do not close).
    pub fn closes_as(&self, coop: &str) -> Option<&'static str> {
        if self.treasurer_of.contains(coop) {
            Some("treasurer")
        } else if self.coops.contains(coop) {
            Some("operator")
        } else {
            None
        }
    }

    fn operates(&self, server: &str, owners: &Owners) -> bool {
        owners
            .server_coop
            .get(server)
            .is_some_and(|c| self.coops.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(admin: bool) -> Person {
        Person {
            id: "p".into(),
            email: "p@example.org".into(),
            name: "P".into(),
            federation_admin: admin,
            disabled: false,
            password_hash: None,
            oidc_subject: None,
        }
    }

    fn owners() -> Owners {
        Owners {
            server_coop: [("s1".to_string(), "coopA".to_string())].into(),
            instance_community: [("a.example.org".to_string(), "comA".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn rights_follow_memberships_not_roles() {
        let o = owners();
        let mut v = Viewer {
            person: person(false),
            coops: HashSet::new(),
            treasurer_of: HashSet::new(),
            communities: HashMap::new(),
            speaks_for: Vec::new(),
        };
        assert_eq!(v.on_instance("a.example.org", "s1", &o), Right::None);
        v.communities.insert("comA".into(), "member".into());
        assert_eq!(v.on_instance("a.example.org", "s1", &o), Right::Read);
        assert_eq!(v.on_instance("b.example.org", "s1", &o), Right::None);
        v.communities.insert("comA".into(), "admin".into());
        assert_eq!(v.on_instance("a.example.org", "s1", &o), Right::Request);
        assert_eq!(v.on_server("s1", &o), Right::None);
        v.coops.insert("coopB".into());
        assert_eq!(v.on_server("s1", &o), Right::None, "another co-op's server");
        v.coops.insert("coopA".into());
        assert_eq!(v.on_instance("b.example.org", "s1", &o), Right::Execute);
        assert_eq!(v.role(), Role::Operator);
        let admin = Viewer {
            person: person(true),
            coops: HashSet::new(),
            treasurer_of: HashSet::new(),
            communities: HashMap::new(),
            speaks_for: Vec::new(),
        };
        assert_eq!(admin.on_server("unowned", &o), Right::Execute);
    }

    #[test]
    fn treasurers_keep_books_and_touch_nothing_else() {
        let mut o = owners();
        o.community_coop.insert("comA".into(), "coopA".into());
        o.community_coop.insert("comB".into(), "coopB".into());
        let mut t = Viewer {
            person: person(false),
            coops: HashSet::new(),
            treasurer_of: ["coopA".to_string()].into(),
            communities: HashMap::new(),
            speaks_for: Vec::new(),
        };
        assert_eq!(t.role(), Role::Treasurer);
        assert_eq!(t.on_coop("coopA"), Right::Execute);
        assert_eq!(t.on_coop("coopB"), Right::None);
        assert_eq!(t.on_community("comA", &o), Right::Execute);
        assert_eq!(t.on_community("comB", &o), Right::None);
        assert_eq!(t.on_server("s1", &o), Right::None, "no right on servers");
        assert_eq!(t.on_instance("a.example.org", "s1", &o), Right::None);
        assert_eq!(t.closes_as("coopA"), Some("treasurer"));
        t.communities.insert("comB".into(), "member".into());
        assert_eq!(t.on_community("comB", &o), Right::Read, "a member reads");
        assert_eq!(t.on_coop("coopB"), Right::None, "not the co-op's books");
    }
}
