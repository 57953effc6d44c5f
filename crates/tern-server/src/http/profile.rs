//! CPU profiling on demand: `GET /api/v1/admin/debug/pprof/profile`
//! (role `admin`) samples every thread of the process for `seconds` and
//! answers a pprof protobuf (`go tool pprof`, Pyroscope, speedscope) or,
//! with `format=flamegraph`, an SVG flame graph. One profile at a time per
//! process (the sampler is process-wide): a second request gets 409.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pprof::protos::Message as _;
use serde::Deserialize;

use super::admin::Admin;
use super::error::ApiError;
use super::openapi::ErrorBody;
use crate::service::ServiceError;
use crate::state::AppState;

/// Where the profile is served.
pub const PATH: &str = "/api/v1/admin/debug/pprof/profile";
/// Duration of a profile when the request names none, seconds (capped by
/// `admin.profile_max_seconds`).
pub const DEFAULT_SECONDS: u64 = 10;
/// Samples per second and thread; 99 rather than 100 so the sampling does
/// not beat in step with periodic work.
const FREQUENCY_HZ: i32 = 99;
/// Samples taken inside these libraries are dropped: unwinding from inside
/// the unwinder or the vDSO can deadlock or crash (pprof-rs's advice).
/// Not `libc`, which pprof-rs also suggests: matched by substring, it
/// dropped every sample of the test binaries here.
const BLOCKLIST: &[&str] = &["libgcc", "pthread", "vdso"];

/// Set while a profile is being recorded anywhere in the process.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Query of the profile endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ProfileQuery {
    /// Seconds to sample, at least 1; default 10, capped to
    /// `admin.profile_max_seconds` (default 30).
    pub seconds: Option<u64>,
    /// `pprof` (default: gzip-less pprof protobuf) or `flamegraph` (SVG).
    pub format: Option<String>,
}

/// What to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pprof,
    Flamegraph,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/debug/pprof/profile",
    tag = "admin",
    params(ProfileQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The CPU profile: pprof protobuf (`application/octet-stream`) or, with `format=flamegraph`, an SVG (`image/svg+xml`)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "`bad_request`: `seconds` is 0 or not a number, or an unknown `format`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 409, description = "`conflict`: a profile is already being recorded", body = ErrorBody),
    )
)]
pub async fn profile(
    State(state): State<AppState>,
    Admin(by): Admin,
    Query(q): Query<ProfileQuery>,
) -> Result<Response, ApiError> {
    let max = state.hub.config().admin.profile_max_seconds;
    let seconds = match q.seconds {
        Some(0) => return Err(bad("seconds must be at least 1")),
        Some(s) => s.min(max),
        None => DEFAULT_SECONDS.min(max),
    };
    let format = match q.format.as_deref() {
        None | Some("pprof") => Format::Pprof,
        Some("flamegraph") => Format::Flamegraph,
        Some(other) => {
            return Err(bad(&format!(
                "unknown format {other:?}: expected pprof or flamegraph"
            )))
        }
    };
    let running = Running::claim()
        .ok_or_else(|| ServiceError::Conflict("a profile is already being recorded".into()))?;
    tracing::info!(by, seconds, ?format, "CPU profile started");
    // Sampling, sleeping and symbolising are all blocking work.
    let body = tokio::task::spawn_blocking(move || {
        let _running = running;
        record(Duration::from_secs(seconds), format)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("profiling task failed: {e}")))?
    .map_err(|e| ServiceError::Internal(format!("profiling failed: {e}")))?;
    let content_type = match format {
        Format::Pprof => "application/octet-stream",
        Format::Flamegraph => "image/svg+xml",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn bad(message: &str) -> ApiError {
    ServiceError::BadRequest(message.to_owned()).into()
}

/// Samples the process for `length`, then encodes the report.
fn record(length: Duration, format: Format) -> Result<Vec<u8>, pprof::Error> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        .blocklist(BLOCKLIST)
        .build()?;
    std::thread::sleep(length);
    let report = guard.report().build()?;
    drop(guard);
    let mut out = Vec::new();
    match format {
        Format::Pprof => out = report.pprof()?.encode_to_vec(),
        // The flame graph writer refuses an empty profile.
        Format::Flamegraph if report.data.is_empty() => out = IDLE_SVG.as_bytes().to_vec(),
        Format::Flamegraph => report.flamegraph(&mut out)?,
    }
    Ok(out)
}

/// The flame graph of a profile without samples (an idle process).
const IDLE_SVG: &str = concat!(
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40">"#,
    r#"<text x="10" y="25">no CPU samples: the process was idle</text></svg>"#,
    "\n"
);

/// Holds [`RUNNING`] until dropped.
struct Running;

impl Running {
    fn claim() -> Option<Self> {
        RUNNING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Self)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_claim_at_a_time() {
        let first = Running::claim();
        assert!(first.is_some());
        assert!(Running::claim().is_none());
        drop(first);
        assert!(Running::claim().is_some());
    }
}
