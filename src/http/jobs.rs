//! Scheduled jobs (admin): list with schedule, next and last run; run one now.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::Path;
use crate::access::Admin;
use crate::error::ApiError;
use crate::jobs::{JobError, JobView};
use crate::state::AppState;

/// Every job (admin).
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", responses((status = 200, body = Vec<JobView>)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<JobView>>, ApiError> {
    Ok(Json(state.jobs.list().await))
}

/// What a run did.
#[derive(Serialize, ToSchema)]
pub struct RunResult {
    /// The job.
    pub name: String,
    /// Its summary.
    pub message: String,
}

/// Run a job now (admin); 409 when it is already running.
#[utoipa::path(post, path = "/v1/jobs/{name}/run", tag = "jobs", params(("name" = String, Path)), responses((status = 200, body = RunResult), (status = 409, body = crate::error::ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<RunResult>, ApiError> {
    match state.jobs.run_now(&name).await {
        Ok(message) => Ok(Json(RunResult { name, message })),
        Err(JobError::Unknown(n)) => Err(ApiError::NotFound(format!("no job named {n:?}"))),
        Err(e @ JobError::Running(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ JobError::Failed { .. }) => Err(ApiError::Internal(e.to_string())),
    }
}
