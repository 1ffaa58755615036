//! Short-lived copies of what every page reads and few requests change: who owns what (from the
//! store), the newest successful record of each app and operation (from the record index), the
//! newest release of each recipe (from its git repository) and the catalogue's test levels.
//! Each is read again after a few seconds, and dropped at once when this process changes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cooper_recipe::abra_dir::AbraDir;
use cooper_store::Store;

use crate::authz::{Owners, Viewer};

/// (domain, operation) → when its newest successful record started (RFC 3339).
pub type Latest = HashMap<(String, String), String>;

struct Slot<T> {
    at: Instant,
    value: Arc<T>,
}

struct Cell<T>(Mutex<Option<Slot<T>>>, AtomicBool);

impl<T> Default for Cell<T> {
    fn default() -> Self {
        Cell(Mutex::new(None), AtomicBool::new(false))
    }
}

/// What a cell has: a fresh value, a stale one (and whether the caller should refresh it), or
/// nothing.
enum Have<T> {
    Fresh(Arc<T>),
    Stale(Arc<T>, bool),
    Nothing,
}

impl<T> Cell<T> {
    fn fresh(&self, ttl: Duration) -> Option<Arc<T>> {
        let g = self.0.lock().expect("cache lock");
        g.as_ref()
            .filter(|s| s.at.elapsed() < ttl)
            .map(|s| s.value.clone())
    }

    /// Stale-while-refreshing: one caller is told to refresh, the others keep the old value.
    fn have(&self, ttl: Duration) -> Have<T> {
        let g = self.0.lock().expect("cache lock");
        match g.as_ref() {
            Some(s) if s.at.elapsed() < ttl => Have::Fresh(s.value.clone()),
            Some(s) => Have::Stale(s.value.clone(), !self.1.swap(true, Ordering::AcqRel)),
            None => Have::Nothing,
        }
    }
    fn put(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        self.1.store(false, Ordering::Release);
        *self.0.lock().expect("cache lock") = Some(Slot {
            at: Instant::now(),
            value: value.clone(),
        });
        value
    }
    fn forget(&self) {
        *self.0.lock().expect("cache lock") = None;
    }
}

/// Every release of each local recipe (oldest first) and the catalogue's levels.
#[derive(Debug, Default)]
pub struct Releases {
    pub versions: HashMap<String, Vec<String>>,
    pub levels: HashMap<(String, String), u8>,
}

impl Releases {
    /// A recipe's newest release.
    pub fn newest(&self, recipe: &str) -> Option<&String> {
        self.versions.get(recipe).and_then(|v| v.last())
    }
}

#[derive(Default)]
pub struct Caches {
    viewers: Mutex<HashMap<String, (Instant, Option<Viewer>)>>,
    owners: Cell<Owners>,
    latest: Cell<Latest>,
    releases: Cell<Releases>,
}

const SHORT: Duration = Duration::from_secs(2);
const LONG: Duration = Duration::from_secs(30);

/// How long a person's memberships are kept between reads.
const VIEWER: Duration = Duration::from_secs(1);

impl Caches {
    /// A person with their memberships (`None`: no such person).
    pub async fn viewer(
        &self,
        store: &Store,
        person: &str,
    ) -> cooper_store::Result<Option<Viewer>> {
        if let Some((at, v)) = self.viewers.lock().expect("cache lock").get(person) {
            if at.elapsed() < VIEWER {
                return Ok(v.clone());
            }
        }
        let v = match store.person(person).await? {
            Some(p) => Some(Viewer::load(store, p).await?),
            None => None,
        };
        let mut all = self.viewers.lock().expect("cache lock");
        if all.len() > 10_000 {
            all.retain(|_, (at, _)| at.elapsed() < VIEWER);
        }
        all.insert(person.to_string(), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forgets every person's copy (after a membership or account changed here).
    pub fn forget_viewers(&self) {
        self.viewers.lock().expect("cache lock").clear();
    }

    /// Who owns what. When the copy is stale, one request starts reading it again in the
    /// background and every request meanwhile uses the copy (no request waits for it).
    pub async fn owners(&self, state: &crate::AppState) -> cooper_store::Result<Arc<Owners>> {
        match self.owners.have(SHORT) {
            Have::Fresh(o) => Ok(o),
            Have::Stale(o, refresh) => {
                if refresh {
                    let state = state.clone();
                    tokio::spawn(async move {
                        match Owners::load(&state.store).await {
                            Ok(fresh) => {
                                state.caches.owners.put(fresh);
                            }
                            Err(_) => state.caches.owners.1.store(false, Ordering::Release),
                        }
                    });
                }
                Ok(o)
            }
            Have::Nothing => Ok(self.owners.put(Owners::load(&state.store).await?)),
        }
    }

    pub fn forget_owners(&self) {
        self.owners.forget()
    }

    pub async fn latest(&self, store: &Store) -> Arc<Latest> {
        if let Some(l) = self.latest.fresh(SHORT) {
            return l;
        }
        let rows = store.latest_records().await.unwrap_or_default();
        self.latest
            .put(rows.into_iter().map(|(d, o, t)| ((d, o), t)).collect())
    }

    pub fn forget_latest(&self) {
        self.latest.forget()
    }

    /// The releases of every recipe in `$ABRA_DIR/recipes` and the catalogue's levels.
    pub fn releases(&self, abra: &AbraDir) -> Arc<Releases> {
        if let Some(r) = self.releases.fresh(LONG) {
            return r;
        }
        let mut versions = HashMap::new();
        for name in abra.recipes().unwrap_or_default() {
            let v = cooper_recipe::repo::RecipeRepo::open(&name, &abra.recipes_dir().join(&name))
                .ok()
                .and_then(|repo| repo.versions().ok())
                .map(|vs| vs.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            versions.insert(name, v);
        }
        let mut levels = HashMap::new();
        if let Ok(Some(cat)) = cooper_ops::catalogue::read(abra) {
            for (name, meta) in cat {
                for (version, level) in meta.cooper_levels {
                    levels.insert((name.clone(), version), level);
                }
            }
        }
        self.releases.put(Releases { versions, levels })
    }
}
