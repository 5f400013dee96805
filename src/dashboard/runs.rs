//! Which runs a dashboard serves, their journals (opened read-only), their
//! current views, and the run history list.
//!
//! A [`Catalog`] knows runs three ways: the folder of runs it scans (each
//! `<run-id>/journal.sqlite`), runs named explicitly (`serve RUN...`), and the
//! live run of `run --dashboard` (served before its journal exists). A run id
//! from a URL is only ever looked up among those, never joined to a path
//! unchecked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::Mutex;

use super::DashboardError;
use super::view::{RunView, Tracker};
use crate::journal::{Journal, RunOutcome, RunState};

/// Runs whose views are kept up to date in memory (the most recently viewed).
const VIEW_CACHE: usize = 4;

/// One run in the history list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Run id (its folder's name).
    pub run_id: String,
    /// The plan's `orchestrationId`.
    pub orchestration_id: Option<String>,
    /// How it ended (`None`: running, or stopped without a word).
    pub outcome: Option<RunOutcome>,
    /// This process is running it (`run --dashboard`).
    pub live: bool,
    /// Its first event.
    pub started_at_ms: Option<i64>,
    /// Its latest event.
    pub last_event_at_ms: Option<i64>,
    /// From the first agent start to the last agent end.
    pub duration_ms: Option<i64>,
    /// Agents.
    pub agents: usize,
    /// Agents completed.
    pub completed: usize,
    /// Agents failed, timed out or stalled.
    pub failed: usize,
    /// Agents blocked.
    pub blocked: usize,
    /// Agents running or waiting to retry.
    pub running: usize,
    /// Agents that did not run.
    pub not_run: usize,
    /// USD spent.
    pub cost_usd: f64,
    /// Why the journal could not be read, if it could not.
    pub error: Option<String>,
}

/// File sizes and times of a journal: when they are unchanged, so is the run.
type Signature = Vec<Option<(u64, SystemTime)>>;

/// The runs a dashboard serves.
#[derive(Debug)]
pub struct Catalog {
    runs_dir: Option<PathBuf>,
    pinned: Vec<(String, PathBuf)>,
    live: Option<(String, PathBuf)>,
    journals: Mutex<HashMap<PathBuf, Journal>>,
    views: Mutex<Vec<(String, Tracker)>>,
    history: Mutex<HashMap<PathBuf, (Signature, HistoryEntry)>>,
}

/// A name that can be a run folder or agent folder: letters, digits, `_`,
/// `-`, `.`, not starting with `.`.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn run_id_of(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl Catalog {
    /// A catalog of the runs in `runs_dir` (scanned on each listing), the
    /// run folders in `pinned`, and the `live` run (id and folder).
    pub fn new(
        runs_dir: Option<PathBuf>,
        pinned: Vec<PathBuf>,
        live: Option<(String, PathBuf)>,
    ) -> Self {
        Self {
            runs_dir,
            pinned: pinned.into_iter().map(|d| (run_id_of(&d), d)).collect(),
            live,
            journals: Mutex::new(HashMap::new()),
            views: Mutex::new(Vec::new()),
            history: Mutex::new(HashMap::new()),
        }
    }

    /// The id of the live run, if this catalog has one.
    pub fn live_run(&self) -> Option<&str> {
        self.live.as_ref().map(|(id, _)| id.as_str())
    }

    /// The folder of a run this catalog serves.
    pub fn dir_of(&self, run_id: &str) -> Option<PathBuf> {
        if let Some((id, dir)) = &self.live
            && id == run_id
        {
            return Some(dir.clone());
        }
        if let Some((_, dir)) = self.pinned.iter().find(|(id, _)| id == run_id) {
            return Some(dir.clone());
        }
        let runs = self.runs_dir.as_ref()?;
        if !is_safe_name(run_id) {
            return None;
        }
        let dir = runs.join(run_id);
        dir.join("journal.sqlite").is_file().then_some(dir)
    }

    /// Every run served: the live one, the pinned ones, the scanned ones.
    pub fn run_dirs(&self) -> Result<Vec<(String, PathBuf)>, DashboardError> {
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        out.extend(self.live.iter().cloned());
        out.extend(self.pinned.iter().cloned());
        if let Some(runs) = &self.runs_dir {
            match std::fs::read_dir(runs) {
                Ok(entries) => {
                    for entry in entries.filter_map(Result::ok) {
                        let dir = entry.path();
                        let id = entry.file_name().to_string_lossy().into_owned();
                        if is_safe_name(&id) && dir.join("journal.sqlite").is_file() {
                            out.push((id, dir));
                        }
                    }
                }
                // A run folder that does not exist yet lists no runs.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(DashboardError::Runs {
                        path: runs.clone(),
                        source,
                    });
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|(id, _)| seen.insert(id.clone()));
        Ok(out)
    }

    /// The run's journal, opened read-only (`None` before the run created it).
    pub async fn journal(&self, run_id: &str) -> Result<Option<Journal>, DashboardError> {
        let Some(dir) = self.dir_of(run_id) else {
            return Ok(None);
        };
        let path = dir.join("journal.sqlite");
        let mut journals = self.journals.lock().await;
        if let Some(journal) = journals.get(&path) {
            return Ok(Some(journal.clone()));
        }
        if !path.is_file() {
            return Ok(None);
        }
        let journal = Journal::open_read_only(&path).await?;
        journals.insert(path, journal.clone());
        Ok(Some(journal))
    }

    /// The current view of a run (`None`: no such run). A run whose journal
    /// does not exist yet has an empty view.
    pub async fn view(&self, run_id: &str, now_ms: i64) -> Result<Option<RunView>, DashboardError> {
        if self.dir_of(run_id).is_none() {
            return Ok(None);
        }
        let Some(journal) = self.journal(run_id).await? else {
            let mut view = Tracker::new().view(now_ms);
            view.run.run_id = run_id.to_string();
            return Ok(Some(view));
        };
        let mut views = self.views.lock().await;
        let mut tracker = match views.iter().position(|(id, _)| id == run_id) {
            Some(i) => views.remove(i).1,
            None => Tracker::new(),
        };
        let fresh = journal.read_after(tracker.last_seq()).await;
        let result = fresh.map(|records| {
            for record in &records {
                tracker.apply(record);
            }
            let mut view = tracker.view(now_ms);
            if view.run.run_id.is_empty() {
                view.run.run_id = run_id.to_string();
            }
            view
        });
        views.push((run_id.to_string(), tracker));
        if views.len() > VIEW_CACHE {
            views.remove(0);
        }
        Ok(Some(result?))
    }

    /// The history list: every run served, latest first.
    pub async fn history(&self, now_ms: i64) -> Result<Vec<HistoryEntry>, DashboardError> {
        let mut entries = Vec::new();
        for (id, dir) in self.run_dirs()? {
            let live = self.live_run() == Some(id.as_str());
            let path = dir.join("journal.sqlite");
            let signature = signature(&path);
            let cached = self.history.lock().await.get(&dir).cloned();
            let entry = match cached {
                Some((sig, entry)) if sig == signature && !live => entry,
                _ => {
                    let entry = self.history_entry(&id, &path, live, now_ms).await;
                    self.history
                        .lock()
                        .await
                        .insert(dir.clone(), (signature, entry.clone()));
                    entry
                }
            };
            entries.push(entry);
        }
        entries.sort_by(|a, b| {
            b.started_at_ms
                .cmp(&a.started_at_ms)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
        Ok(entries)
    }

    async fn history_entry(&self, id: &str, path: &Path, live: bool, now_ms: i64) -> HistoryEntry {
        let mut entry = HistoryEntry {
            run_id: id.to_string(),
            orchestration_id: None,
            outcome: None,
            live,
            started_at_ms: None,
            last_event_at_ms: None,
            duration_ms: None,
            agents: 0,
            completed: 0,
            failed: 0,
            blocked: 0,
            running: 0,
            not_run: 0,
            cost_usd: 0.0,
            error: None,
        };
        if !path.is_file() {
            return entry;
        }
        // Runs already open stay open; others are read with a short-lived connection.
        let cached = self.journals.lock().await.get(path).cloned();
        let (journal, temporary) = match cached {
            Some(j) => (j, false),
            None => match Journal::open_read_only(path).await {
                Ok(j) => (j, true),
                Err(e) => {
                    entry.error = Some(e.to_string());
                    return entry;
                }
            },
        };
        let records = journal.read_after(0).await;
        if temporary {
            journal.close().await;
        }
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                entry.error = Some(e.to_string());
                return entry;
            }
        };
        let state = RunState::replay(&records);
        let report = crate::report::run_report(&state, now_ms);
        let t = &report.totals;
        entry.orchestration_id = report.orchestration_id.clone();
        entry.outcome = state.outcome;
        entry.started_at_ms = records.first().map(|r| r.at_ms);
        entry.last_event_at_ms = records.last().map(|r| r.at_ms);
        entry.duration_ms = t.wall_time_ms;
        entry.agents = t.agents;
        entry.completed = t.completed;
        entry.failed = t.failed;
        entry.blocked = t.blocked;
        entry.running = t.running;
        entry.not_run = t.not_run;
        entry.cost_usd = t.cost_usd;
        entry
    }
}

fn signature(journal: &Path) -> Signature {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut name = journal.as_os_str().to_owned();
            name.push(suffix);
            let meta = std::fs::metadata(PathBuf::from(name)).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    #[test]
    fn only_plain_names_can_name_runs() {
        for ok in ["demo-20260101-101010-abcd", "a.b_c"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y"] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn lists_runs_and_views_them_as_their_journals_grow() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let journal = Journal::open(&runs.join("r1/journal.sqlite"))
            .await
            .unwrap();
        let plan = serde_json::json!({"orchestrationId": "p", "waves": [{"waveId": "w", "agents": [
            {"agentId": "A", "workDescription": "a"}]}]});
        journal
            .append(&[Event::RunStarted {
                run_id: "r1".into(),
                plan,
            }])
            .await
            .unwrap();
        std::fs::create_dir_all(runs.join("not-a-run")).unwrap();
        let live_dir = runs.join("live-run");
        let catalog = Catalog::new(
            Some(runs.clone()),
            Vec::new(),
            Some(("live-run".into(), live_dir)),
        );

        let ids: Vec<String> = catalog
            .run_dirs()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["live-run", "r1"]);
        assert!(catalog.dir_of("../r1").is_none());
        assert!(catalog.dir_of("not-a-run").is_none());

        let view = catalog.view("live-run", 0).await.unwrap().unwrap();
        assert_eq!(view.run.run_id, "live-run");
        assert!(view.agents.is_empty(), "no journal yet: an empty view");
        assert!(catalog.view("nope", 0).await.unwrap().is_none());

        let view = catalog.view("r1", 0).await.unwrap().unwrap();
        assert_eq!(view.agents[0].status, "pending");
        journal
            .append(&[Event::AgentStarted {
                agent: "A".into(),
                attempt: 1,
            }])
            .await
            .unwrap();
        let view = catalog.view("r1", 0).await.unwrap().unwrap();
        assert_eq!(view.agents[0].status, "running");
        assert_eq!(view.run.last_seq, 2);

        let history = catalog.history(0).await.unwrap();
        let r1 = history.iter().find(|h| h.run_id == "r1").unwrap();
        assert_eq!((r1.agents, r1.running), (1, 1));
        assert_eq!(r1.orchestration_id.as_deref(), Some("p"));
        assert!(history.iter().any(|h| h.run_id == "live-run" && h.live));
    }
}
