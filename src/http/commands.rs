//! `POST /api/devices/{device}/valve` and `GET /api/commands`: a CJ/T 188 prepaid
//! meter's valve opened or closed from the page's API, behind the gateway's token, said
//! by whom and why, and logged with the meter's answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::{blocking, AppState};
use crate::cjt188::Valve;
use crate::modbus::command::{Action, CommandError};
use crate::untrusted::{typed, NAME_MAX};

/// The longest reason kept.
const WHY_MAX: usize = 500;

/// How long an operator waits: the command's turn on the line and the meter's answer
/// with the bus's retries.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ValveRequest {
    action: String,
    by: String,
    why: String,
}

fn valve_word(v: Valve) -> &'static str {
    match v {
        Valve::Open => "open",
        Valve::Closed => "closed",
        Valve::Abnormal => "abnormal",
    }
}

fn said(code: StatusCode, text: String) -> Response {
    (code, format!("{text}\n")).into_response()
}

/// `POST /api/devices/{device}/valve` with `{"action": "close", "by": NAME, "why": TEXT}`.
pub(super) async fn valve(
    State(st): State<Arc<AppState>>,
    Path(device): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = super::refusal(&st, &headers) {
        return r;
    }
    let req: ValveRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return said(
                StatusCode::BAD_REQUEST,
                format!("the body is {{\"action\": \"open\" or \"close\", \"by\": NAME, \"why\": TEXT}}: {e}"),
            )
        }
    };
    let Some(action) = Action::parse(req.action.trim()) else {
        return said(StatusCode::BAD_REQUEST, format!("action `{}`: use open or close", req.action));
    };
    let (by, why) = match (typed("by", &req.by, NAME_MAX), typed("why", &req.why, WHY_MAX)) {
        (Ok(b), Ok(w)) => (b.to_string(), w.to_string()),
        (Err(e), _) | (_, Err(e)) => return said(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match st.config.devices.iter().find(|d| *d.name == *device) {
        None => return said(StatusCode::NOT_FOUND, format!("no device `{device}` is configured")),
        Some(d) if !matches!(d.meter, Some(crate::modbus::meter_config::MeterAddress::Cjt188 { .. })) => {
            return said(StatusCode::CONFLICT, CommandError::NotAValveMeter(device).to_string())
        }
        Some(_) => {}
    }
    let at = Utc::now();
    let result = st.commands.send(&device, action, WAIT).await;
    let outcome = match &result {
        Ok(v) => format!("valve {}", valve_word(*v)),
        Err(e) => e.to_string(),
    };
    tracing::warn!(%device, action = action.as_str(), %by, %why, %outcome, "command");
    let (d, a, b, w, o) = (device.clone(), action.as_str(), by.clone(), why.clone(), outcome.clone());
    let st2 = st.clone();
    let id = match blocking(move || st2.store.log_command(at, &d, a, &b, &w, &o)).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match result {
        Ok(v) => Json(serde_json::json!({
            "command": id,
            "device": device,
            "action": action.as_str(),
            "valve": valve_word(v),
            "by": by,
            "at": at.to_rfc3339(),
        }))
        .into_response(),
        Err(e) => {
            let code = match e {
                CommandError::UnknownDevice(_) => StatusCode::NOT_FOUND,
                CommandError::NotAValveMeter(_) => StatusCode::CONFLICT,
                CommandError::Refused(_) => StatusCode::BAD_GATEWAY,
                CommandError::NoAnswer(_) => StatusCode::GATEWAY_TIMEOUT,
                CommandError::BusDown(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            said(code, format!("command #{id}: {device}: {e}"))
        }
    }
}

/// `GET /api/commands`: the last 200 commands, newest first.
pub(super) async fn list(State(st): State<Arc<AppState>>) -> Response {
    match blocking(move || st.store.commands(200)).await {
        Ok(rows) => Json(rows).into_response(),
        Err(r) => r,
    }
}
