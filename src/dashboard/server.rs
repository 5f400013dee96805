//! The dashboard's HTTP server.
//!
//! Routes (every one behind [`auth::require`](super::auth::require)):
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page (HTML with inline CSS and JS) |
//! | `GET /api/runs` | the run history ([`HistoryEntry`](super::runs::HistoryEntry) list) |
//! | `GET /api/runs/{run}` | a run's [`RunView`](super::view::RunView) |
//! | `GET /api/runs/{run}/events` | its live event stream ([`sse`](super::sse)) |
//! | `GET /api/runs/{run}/agents/{agent}/output?bytes=N` | the end of an agent's `output.log` |
//!
//! [`Bound::spawn`] runs the server on a thread of its own with its own
//! runtime: beside a run (`run --dashboard`) it never competes with the
//! engine's tasks.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use futures::Stream;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::auth::{self, Access, Token};
use super::output::{self, Redactor};
use super::runs::{Catalog, is_safe_name};
use super::{DashboardError, page, sse};

/// The dashboard's default address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// `--dashboard [ADDR]` and `--token` of `run`, `resume` and `ingest`.
#[derive(Debug, Args, Clone, Default)]
pub struct DashboardArgs {
    /// Serve the live web dashboard of this run on ADDR (default
    /// 127.0.0.1:7878; a bare port means 127.0.0.1:PORT; port 0 picks a free
    /// one). The URL is printed on stderr. Any address but 127.0.0.1 or
    /// [::1] needs --token.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = DEFAULT_ADDR,
        value_parser = parse_addr
    )]
    pub dashboard: Option<SocketAddr>,
    /// The dashboard's access token: every request must carry it
    /// (`Authorization: Bearer T` or `?token=T`). Used with --dashboard.
    #[arg(
        long,
        env = "LLMO_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "T"
    )]
    pub token: Option<String>,
}

impl DashboardArgs {
    /// Starts the live dashboard of the run `run_id` (folder `run_dir`, in
    /// the folder of runs `runs_dir`) when `--dashboard` was given, and prints
    /// its URL on stderr. It stops when the returned handle is dropped.
    pub fn start_live(
        &self,
        runs_dir: &Path,
        run_id: &str,
        run_dir: &Path,
    ) -> Result<Option<LiveDashboard>, DashboardError> {
        let Some(addr) = self.dashboard else {
            return Ok(None);
        };
        let bound = Bound::bind(addr, self.token.as_deref())?;
        let catalog = Catalog::new(
            Some(runs_dir.to_path_buf()),
            Vec::new(),
            Some((run_id.to_string(), run_dir.to_path_buf())),
        );
        eprintln!("dashboard: {}", bound.url());
        if bound.access.token.is_some() {
            eprintln!(
                "dashboard: requests need the token (Authorization: Bearer <token>, or ?token=<token> in the URL)"
            );
        }
        bound.spawn(catalog).map(Some)
    }
}

/// Parses `127.0.0.1:7878`, `[::1]:7878`, `localhost:7878` or a bare port.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = text
        .strip_prefix("localhost:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    Err(format!(
        "{text:?} is not an address: expected IP:PORT (127.0.0.1:7878, [::1]:7878, 0.0.0.0:7878) or a port"
    ))
}

/// A bound listener with its access rules, not serving yet.
#[derive(Debug)]
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    access: Access,
}

impl Bound {
    /// Checks the bind rule ([`auth::check_exposure`]) and binds `addr`.
    pub fn bind(addr: SocketAddr, token: Option<&str>) -> Result<Bound, DashboardError> {
        let token = token.map(Token::new).transpose()?;
        auth::check_exposure(addr, token.as_ref())?;
        let bind_error = |source| DashboardError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Bound {
            listener,
            addr,
            access: Access { token },
        })
    }

    /// The address bound (with the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/` (a wildcard address is shown as 127.0.0.1). Never
    /// includes the token.
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/")
    }

    /// Serves `catalog` until `shutdown` resolves (on the current runtime).
    pub async fn serve(
        self,
        catalog: Catalog,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // On shutdown the event streams end cleanly (their last chunk is
        // sent), so open pages see the stream close, not a cut connection.
        let closing = CancellationToken::new();
        let app = router(catalog, self.access, closing.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.cancel();
            })
            .await
    }

    /// Serves `catalog` on a thread of its own (with its own runtime) until
    /// the returned handle is dropped.
    pub fn spawn(self, catalog: Catalog) -> Result<LiveDashboard, DashboardError> {
        let url = self.url();
        let (stop, stopped) = oneshot::channel::<()>();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DashboardError::Start)?;
        std::thread::Builder::new()
            .name("llmo-dashboard".into())
            .spawn(move || {
                let served = runtime.block_on(self.serve(catalog, async {
                    let _ = stopped.await;
                }));
                if let Err(e) = served {
                    eprintln!("dashboard: stopped: {e}");
                }
                // Whatever is still open is not waited for.
                runtime.shutdown_background();
                let _ = done.send(());
            })
            .map_err(DashboardError::Start)?;
        Ok(LiveDashboard {
            url,
            stop: Some(stop),
            finished,
        })
    }
}

/// A dashboard serving on its own thread; dropping it stops the server.
#[derive(Debug)]
pub struct LiveDashboard {
    /// Its URL (without the token).
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    finished: std::sync::mpsc::Receiver<()>,
}

/// How long stopping a dashboard waits for its connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long a run's dashboard goes on serving once the run ended, so that
/// open pages receive its last events (a few of the streams' poll intervals).
pub const LINGER: Duration = Duration::from_millis(600);

impl Drop for LiveDashboard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            std::thread::sleep(LINGER);
            let _ = stop.send(());
            let _ = self.finished.recv_timeout(CLOSE_WAIT);
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
struct App {
    catalog: Arc<Catalog>,
    redactor: Arc<Redactor>,
    page: String,
    /// Fires when the server stops: event streams end.
    closing: CancellationToken,
}

type AppState = State<Arc<App>>;

/// All routes, behind the access check and with the security headers.
fn router(catalog: Catalog, access: Access, closing: CancellationToken) -> Router {
    let token = access.token.as_ref().map(|t| t.value().to_string());
    let redactor = Redactor::from_env(&token.iter().map(String::as_str).collect::<Vec<_>>());
    let app = Arc::new(App {
        page: page::live_page(catalog.live_run()),
        catalog: Arc::new(catalog),
        redactor: Arc::new(redactor),
        closing,
    });
    Router::new()
        .route("/", get(index))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{run}", get(run_view))
        .route("/api/runs/{run}/events", get(events))
        .route("/api/runs/{run}/agents/{agent}/output", get(agent_output))
        .fallback(not_found)
        .with_state(app)
        .layer(middleware::from_fn_with_state(
            Arc::new(access),
            auth::require,
        ))
        .layer(middleware::from_fn(security_headers))
}

/// No caching (live data, and URLs may carry the token), no sniffing, no referrer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn index(State(app): AppState) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        app.page.clone(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page::LIVE_CSP),
    );
    response
}

fn json<T: Serialize>(redactor: &Redactor, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/json")],
            redactor.redact(text),
        )
            .into_response(),
        Err(e) => failure(&format!("cannot serialize: {e}")),
    }
}

fn failure(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("500 Internal Server Error: {message}\n"),
    )
        .into_response()
}

fn no_run(run: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("404 Not Found: this dashboard serves no run {run:?}\n"),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 Not Found\n").into_response()
}

async fn list_runs(State(app): AppState) -> Response {
    match app.catalog.history(crate::journal::now_ms()).await {
        Ok(history) => json(&app.redactor, &history),
        Err(e) => failure(&e.to_string()),
    }
}

async fn run_view(State(app): AppState, UrlPath(run): UrlPath<String>) -> Response {
    match app.catalog.view(&run, crate::journal::now_ms()).await {
        Ok(Some(view)) => json(&app.redactor, &view),
        Ok(None) => no_run(&run),
        Err(e) => failure(&e.to_string()),
    }
}

async fn events(State(app): AppState, UrlPath(run): UrlPath<String>, request: Request) -> Response {
    if app.catalog.dir_of(&run).is_none() {
        return no_run(&run);
    }
    let after = match sse::start_after(request.headers(), request.uri().query()) {
        Ok(after) => after,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("400 Bad Request: {message}\n"),
            )
                .into_response();
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(sse::pump(
        app.catalog.clone(),
        run,
        after,
        app.redactor.clone(),
        tx,
        app.closing.clone(),
    ));
    let mut response = Sse::new(receiver_stream(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn receiver_stream(
    mut rx: mpsc::Receiver<axum::response::sse::Event>,
) -> impl Stream<Item = Result<axum::response::sse::Event, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|event| event.map(Ok)))
}

async fn agent_output(
    State(app): AppState,
    UrlPath((run, agent)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(dir) = app.catalog.dir_of(&run) else {
        return no_run(&run);
    };
    if !is_safe_name(&agent) {
        return (StatusCode::NOT_FOUND, "404 Not Found: no such agent\n").into_response();
    }
    let bytes = request
        .uri()
        .query()
        .and_then(|q| auth::query_param(q, "bytes"))
        .and_then(|b| String::from_utf8_lossy(&b).parse::<u64>().ok())
        .unwrap_or(output::DEFAULT_TAIL_BYTES)
        .clamp(1, output::MAX_TAIL_BYTES);
    let path: PathBuf = dir.join("agents").join(&agent).join("output.log");
    let read = tokio::task::spawn_blocking(move || output::tail(&path, bytes)).await;
    match read {
        Ok(Ok(text)) => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(app.redactor.redact(text.unwrap_or_default())))
            .unwrap_or_else(|e| failure(&e.to_string())),
        Ok(Err(e)) => failure(&format!("cannot read the output of {agent}: {e}")),
        Err(e) => failure(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_from_the_usual_spellings() {
        assert_eq!(
            parse_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(parse_addr("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(
            parse_addr("example.com:80")
                .unwrap_err()
                .contains("IP:PORT")
        );
    }

    #[test]
    fn binding_refuses_exposed_addresses_without_a_token() {
        let err = Bound::bind("0.0.0.0:0".parse().unwrap(), None).unwrap_err();
        assert!(matches!(err, DashboardError::TokenRequired { .. }));
        assert!(matches!(
            Bound::bind("127.0.0.1:0".parse().unwrap(), Some("")).unwrap_err(),
            DashboardError::BadToken
        ));
        let bound = Bound::bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        assert!(bound.url().starts_with("http://127.0.0.1:"));
        assert_ne!(bound.addr().port(), 0);
    }
}
