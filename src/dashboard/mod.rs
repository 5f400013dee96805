//! The web dashboard: a live view of runs in a browser, and the same views as
//! one self-contained HTML file.
//!
//! - [`view`]: what the pages show (runs, waves, agents, their histories),
//!   folded from journal events by a [`view::Tracker`].
//! - [`timeline`]: the Gantt rows' data and the critical path, from actual
//!   durations where known and estimates elsewhere.
//! - [`runs`]: which runs are served, their journals (opened read-only) and
//!   the run history list.
//! - [`sse`]: the live event stream; one server-sent event per journal event,
//!   whose `id:` is the journal sequence number, so a reconnecting browser
//!   resumes after its `Last-Event-ID` with nothing missed or repeated.
//! - [`auth`]: the bind rule (only `127.0.0.1` and `[::1]` go without a token)
//!   and the token check on every request.
//! - [`output`]: agents' output tails, with secret values redacted.
//! - [`page`]: the one HTML page (inline CSS and JS, embedded in the binary),
//!   for the server and for `report --html`.
//! - [`server`]: the axum routes, binding, and running the server on its own
//!   thread beside a run.
//!
//! The dashboard never writes a journal and never hooks into the run engine:
//! it polls the run's SQLite journal (WAL mode lets it read while the run
//! writes), on its own thread and runtime, so a slow browser cannot slow the run.

pub mod auth;
pub mod output;
pub mod page;
pub mod runs;
pub mod server;
pub mod sse;
pub mod timeline;
pub mod view;

use std::net::SocketAddr;

pub use auth::Token;
pub use server::{DashboardArgs, LiveDashboard};

/// What can go wrong when serving the dashboard or writing its HTML report.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The address is reachable from other hosts (or users) and no token was given.
    #[error(
        "the dashboard on {addr} would be reachable from other machines or users: give it a token with --token (or LLMO_DASHBOARD_TOKEN); only 127.0.0.1 and [::1] may go without one"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The token is empty or has characters an HTTP header or URL cannot carry.
    #[error("the dashboard token must be 1 to 256 visible ASCII characters (no spaces)")]
    BadToken,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not be started.
    #[error("cannot start the dashboard: {0}")]
    Start(std::io::Error),
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A folder of runs could not be listed.
    #[error("cannot list runs in {path}: {source}")]
    Runs {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
