//! The instance list's index: every app with small integer keys (server, recipe, community,
//! state) and its orders precomputed, rebuilt when the live state it was made from is older
//! than the live cache's time. A request then filters, sorts and pages by scanning integers
//! and builds whole rows only for the page it shows — so the list stays fast with ten thousand
//! apps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::authz::{Owners, Viewer};
use crate::views::AppInfo;
use crate::AppState;

/// No community.
const NONE: u16 = u16::MAX;

/// The states, in their sort order.
pub const TONES: [&str; 6] = ["bad", "unknown", "warn", "idle", "ok", ""];

fn tone_id(t: &str) -> u8 {
    TONES.iter().position(|x| *x == t).unwrap_or(5) as u8
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    server: u16,
    recipe: u16,
    community: u16,
    tone: u8,
}

/// The index (one per few seconds, shared by every request).
pub struct Index {
    at: Instant,
    pub apps: Arc<Vec<AppInfo>>,
    entries: Vec<Entry>,
    pub servers: Vec<String>,
    pub recipes: Vec<String>,
    /// (id, name)
    pub communities: Vec<(String, String)>,
    community_names: Vec<String>,
    /// The filters' choices when everything is visible (federation admins).
    everything: (Vec<String>, Vec<String>, Vec<String>),
    /// The co-op of each server (by server key).
    server_coop: Vec<Option<String>>,
    /// Orders: by domain (the apps' order), server, recipe, community, state.
    orders: HashMap<&'static str, Vec<u32>>,
}

/// What a request asks of the list.
pub struct Query<'a> {
    pub server: &'a str,
    pub recipe: &'a str,
    pub community: &'a str,
    pub state: &'a str,
    pub sort: &'a str,
    pub offset: usize,
    pub limit: usize,
}

/// What the list answers: the page's apps, how many match, and the choices of the filters
/// (among what the person may see).
pub struct Answer {
    pub page: Vec<usize>,
    pub total: usize,
    pub servers: Vec<String>,
    pub recipes: Vec<String>,
    pub communities: Vec<String>,
}

fn key(names: &mut Vec<String>, map: &mut HashMap<String, u16>, name: &str) -> u16 {
    if let Some(k) = map.get(name) {
        return *k;
    }
    let k = names.len() as u16;
    names.push(name.to_string());
    map.insert(name.to_string(), k);
    k
}

impl Index {
    async fn build(s: &AppState, owners: &Owners) -> Index {
        let apps = s.apps.all();
        let mut servers = Vec::new();
        let mut server_keys = HashMap::new();
        for name in s.apps.servers() {
            key(&mut servers, &mut server_keys, &name);
        }
        for a in apps.iter() {
            key(&mut servers, &mut server_keys, &a.server);
        }
        let live = s.live.servers(&servers).await;
        let mut recipes = Vec::new();
        let mut recipe_keys = HashMap::new();
        let mut communities: Vec<(String, String)> = owners
            .community_names
            .iter()
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect();
        communities.sort_by(|a, b| a.1.cmp(&b.1));
        let community_keys: HashMap<&str, u16> = communities
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.as_str(), i as u16))
            .collect();
        let entries: Vec<Entry> = apps
            .iter()
            .map(|a| Entry {
                server: server_keys[&a.server],
                recipe: key(&mut recipes, &mut recipe_keys, &a.recipe),
                community: owners
                    .instance_community
                    .get(&a.domain)
                    .and_then(|c| community_keys.get(c.as_str()).copied())
                    .unwrap_or(NONE),
                tone: tone_id(crate::live::tone(&live[&a.server], &a.stack)),
            })
            .collect();
        let by = |f: &dyn Fn(&Entry) -> (u16, u16)| {
            let mut o: Vec<u32> = (0..entries.len() as u32).collect();
            // Stable: ties keep the domain order.
            o.sort_by_key(|&i| f(&entries[i as usize]));
            o
        };
        let mut orders = HashMap::new();
        orders.insert("", (0..entries.len() as u32).collect());
        // Name order of servers and recipes (keys are in first-seen order).
        let rank = |names: &Vec<String>| {
            let mut idx: Vec<usize> = (0..names.len()).collect();
            idx.sort_by(|a, b| names[*a].cmp(&names[*b]));
            let mut r = vec![0u16; names.len()];
            for (pos, i) in idx.into_iter().enumerate() {
                r[i] = pos as u16;
            }
            r
        };
        let (sr, rr) = (rank(&servers), rank(&recipes));
        orders.insert("server", by(&|e| (sr[e.server as usize], 0)));
        orders.insert("recipe", by(&|e| (rr[e.recipe as usize], 0)));
        orders.insert("community", by(&|e| (e.community, 0)));
        orders.insert("state", by(&|e| (e.tone as u16, 0)));
        let server_coop = servers
            .iter()
            .map(|srv| owners.server_coop.get(srv).cloned())
            .collect();
        let community_names: Vec<String> = communities.iter().map(|(_, n)| n.clone()).collect();
        let mut index = Index {
            at: Instant::now(),
            apps,
            entries,
            servers,
            recipes,
            communities,
            community_names,
            server_coop,
            orders,
            everything: Default::default(),
        };
        let all = index.facets(Vec::new(), 0, &|_| true);
        index.everything = (all.servers, all.recipes, all.communities);
        index
    }

    /// Filters, sorts and pages for one viewer.
    pub fn query(&self, v: &Viewer, q: &Query) -> Answer {
        let all = v.is_admin();
        let server_ok: Vec<bool> = self
            .server_coop
            .iter()
            .map(|c| all || c.as_ref().is_some_and(|c| v.coops.contains(c)))
            .collect();
        let community_ok: Vec<bool> = self
            .communities
            .iter()
            .map(|(id, _)| all || v.communities.contains_key(id))
            .collect();
        let visible = |e: &Entry| {
            server_ok[e.server as usize]
                || (e.community != NONE && community_ok[e.community as usize])
        };
        let find = |names: &[String], want: &str| -> Option<Option<u16>> {
            if want.is_empty() {
                Some(None)
            } else {
                names.iter().position(|n| n == want).map(|i| Some(i as u16))
            }
        };
        let (Some(fs), Some(fr), Some(fc)) = (
            find(&self.servers, q.server),
            find(&self.recipes, q.recipe),
            find(&self.community_names, q.community),
        ) else {
            return self.facets(Vec::new(), 0, &visible);
        };
        let ft = (!q.state.is_empty()).then(|| tone_id(q.state));
        let order = self.orders.get(q.sort).unwrap_or(&self.orders[""]);
        let mut total = 0;
        let mut page = Vec::new();
        for &i in order {
            let e = &self.entries[i as usize];
            if !visible(e)
                || fs.is_some_and(|s| s != e.server)
                || fr.is_some_and(|r| r != e.recipe)
                || fc.is_some_and(|c| c != e.community)
                || ft.is_some_and(|t| t != e.tone)
            {
                continue;
            }
            if total >= q.offset && page.len() < q.limit {
                page.push(i as usize);
            }
            total += 1;
        }
        if all {
            let (servers, recipes, communities) = self.everything.clone();
            return Answer {
                page,
                total,
                servers,
                recipes,
                communities,
            };
        }
        self.facets(page, total, &visible)
    }

    fn facets(&self, page: Vec<usize>, total: usize, visible: &dyn Fn(&Entry) -> bool) -> Answer {
        let mut s = vec![false; self.servers.len()];
        let mut r = vec![false; self.recipes.len()];
        let mut c = vec![false; self.communities.len()];
        for e in self.entries.iter().filter(|e| visible(e)) {
            s[e.server as usize] = true;
            r[e.recipe as usize] = true;
            if e.community != NONE {
                c[e.community as usize] = true;
            }
        }
        let pick = |names: &[String], on: &[bool]| {
            let mut v: Vec<String> = names
                .iter()
                .zip(on)
                .filter(|(_, on)| **on)
                .map(|(n, _)| n.clone())
                .collect();
            v.sort();
            v
        };
        Answer {
            page,
            total,
            servers: pick(&self.servers, &s),
            recipes: pick(&self.recipes, &r),
            communities: pick(&self.community_names, &c),
        }
    }
}

/// The shared index, rebuilt by one request when stale (the others use the previous one).
#[derive(Default)]
pub struct ListCache {
    index: Mutex<Option<Arc<Index>>>,
    building: Arc<tokio::sync::Mutex<()>>,
}

impl ListCache {
    /// The index. When it is stale, one request starts a rebuild in the background and every
    /// request meanwhile uses the current one; only the very first build is waited for.
    pub async fn get(&self, s: &AppState, owners: &Arc<Owners>, ttl: Duration) -> Arc<Index> {
        let current = self.index.lock().expect("list lock").clone();
        match current {
            Some(i) if i.at.elapsed() < ttl => i,
            Some(i) => {
                if let Ok(turn) = self.building.clone().try_lock_owned() {
                    let (s, owners) = (s.clone(), owners.clone());
                    tokio::spawn(async move {
                        let fresh = Arc::new(Index::build(&s, &owners).await);
                        *s.list.index.lock().expect("list lock") = Some(fresh);
                        drop(turn);
                    });
                }
                i
            }
            None => {
                let _turn = self.building.lock().await;
                if let Some(i) = self.index.lock().expect("list lock").clone() {
                    return i;
                }
                let fresh = Arc::new(Index::build(s, owners).await);
                *self.index.lock().expect("list lock") = Some(fresh.clone());
                fresh
            }
        }
    }

    pub fn forget(&self) {
        *self.index.lock().expect("list lock") = None;
    }
}
