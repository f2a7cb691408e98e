//! The API routes, as Comm100 serves them: the token route and the customer segments.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::REFUSED_TOKEN_MESSAGE;
use crate::http::{SEGMENTS_PATH, TOKEN_PATH, TOKEN_PATH_API, bearer, error_response};
use crate::jwt;
use crate::oddities;
use crate::segments::{parse_segment, parse_uuid};
use crate::state::Inner;

/// The API routes.
pub(crate) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(TOKEN_PATH_API, post(token))
        .route(SEGMENTS_PATH, get(list).post(create))
        .route(
            "/api/v3/livechat/customerSegments/{id}",
            get(get_one).put(update).delete(delete),
        )
}

/// A failed request, answered with the JSON error schema.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self(StatusCode::UNAUTHORIZED, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        error_response(self.0, self.1)
    }
}

fn parse_json(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("The request body is required."));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

fn field_str<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match obj.get(key) {
        None => Err(ApiError::bad_request(format!(
            "The field '{key}' is required."
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!(
            "The field '{key}' must be a string."
        ))),
    }
}

/// `POST /adminwebservice/api/jwttoken/generate`.
async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Result<Response<Body>, ApiError> {
    let body = parse_json(&body)?;
    let Value::Object(obj) = &body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    let login_type = field_str(obj, "LoginType")?;
    if !login_type.eq_ignore_ascii_case("password") {
        return Err(ApiError::bad_request(
            "The field 'LoginType' must be 'Password'.",
        ));
    }
    let username = field_str(obj, "Username")?;
    let password = field_str(obj, "Password")?;
    let site_id = match obj.get("SiteId") {
        None => return Err(ApiError::bad_request("The field 'SiteId' is required.")),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("The field 'SiteId' must be an integer."))?,
    };
    let mut state = inner.state();
    let agent = state
        .agents
        .iter()
        .find(|a| {
            a.site_id == site_id && a.email.eq_ignore_ascii_case(username) && a.password == password
        })
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("Invalid username, password or site id."))?;
    let (token, claims) = jwt::issue(
        &inner.secret,
        agent.id,
        agent.site_id,
        state.token_lifetime,
        &inner.issuer,
        inner.now_secs(),
    );
    state.live_tokens.insert(claims.jti);
    Ok(axum::Json(json!({ "token": token })).into_response())
}

/// The site a request acts on, from its bearer token.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<i64, ApiError> {
    let token = match bearer(headers) {
        None => {
            return Err(ApiError::unauthorized(
                "The Authorization header is missing; send 'Authorization: Bearer <token>'.",
            ));
        }
        Some(None) => {
            return Err(ApiError::unauthorized(
                "The Authorization header is not a bearer token.",
            ));
        }
        Some(Some(token)) => token,
    };
    let claims = jwt::verify(&inner.secret, token, inner.now_secs())
        .map_err(|e| ApiError::unauthorized(format!("{}.", capitalise(&e.to_string()))))?;
    {
        let state = inner.state();
        if !state.live_tokens.contains(&claims.jti) {
            return Err(ApiError::unauthorized("The bearer token has been revoked."));
        }
        if state.refuse_valid_tokens {
            return Err(ApiError::unauthorized(REFUSED_TOKEN_MESSAGE));
        }
    }
    claims
        .site_id
        .parse()
        .map_err(|_| ApiError::unauthorized("The bearer token names no site."))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A stored segment's JSON as the API serves it: as stored, unless the forward-compatibility
/// mode rewrites it.
fn segment_json(inner: &Inner, json: serde_json::Map<String, Value>) -> Value {
    let mut value = Value::Object(json);
    if inner.state().forward_compat {
        oddities::forward_compat(&mut value);
    }
    value
}

fn path_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    parse_uuid(id).ok_or_else(|| {
        ApiError::bad_request(format!("The id '{id}' in the path is not a valid uuid."))
    })
}

fn not_found_segment(id: uuid::Uuid) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("The customer segment '{id}' does not exist."),
    )
}

/// `GET /livechat/customerSegments`.
async fn list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let segments = inner.state().sorted_segments(site);
    let body: Vec<Value> = segments
        .into_iter()
        .map(|s| segment_json(&inner, s.json))
        .collect();
    Ok(axum::Json(body).into_response())
}

/// `GET /livechat/customerSegments/{id}`.
async fn get_one(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let segment = inner
        .state()
        .sites
        .get(&site)
        .and_then(|s| s.iter().find(|s| s.id == id).map(|s| s.json.clone()))
        .ok_or_else(|| not_found_segment(id))?;
    Ok(axum::Json(segment_json(&inner, segment)).into_response())
}

/// `POST /livechat/customerSegments`.
async fn create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let input = parse_segment(parse_json(&body)?).map_err(ApiError::bad_request)?;
    let id = uuid::Uuid::new_v4();
    let segment = {
        let mut state = inner.state();
        let order = input
            .order
            .map_or_else(|| state.next_order(site), i64::from);
        let json = input.into_json(id, order);
        state.store(site, id, order, json.clone());
        json
    };
    let location = format!("{}/livechat/customerSegments/{id}", inner.api_url);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(segment_json(&inner, segment)),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a URL is a header value"),
    );
    Ok(response)
}

/// `PUT /livechat/customerSegments/{id}`: replaces the whole segment (unknown fields included)
/// with the body, keeping its id, and its order when the body names none.
async fn update(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let input = parse_segment(parse_json(&body)?).map_err(ApiError::bad_request)?;
    let segment = {
        let mut state = inner.state();
        let slot = state
            .sites
            .get_mut(&site)
            .and_then(|s| s.iter_mut().find(|s| s.id == id))
            .ok_or_else(|| not_found_segment(id))?;
        slot.order = input.order.map_or(slot.order, i64::from);
        slot.json = input.into_json(id, slot.order);
        slot.json.clone()
    };
    Ok(axum::Json(segment_json(&inner, segment)).into_response())
}

/// `DELETE /livechat/customerSegments/{id}`.
async fn delete(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response<Body>, ApiError> {
    let site = authenticate(&inner, &headers)?;
    let id = path_id(&id)?;
    let mut state = inner.state();
    let segments = state
        .sites
        .get_mut(&site)
        .ok_or_else(|| not_found_segment(id))?;
    let index = segments
        .iter()
        .position(|s| s.id == id)
        .ok_or_else(|| not_found_segment(id))?;
    segments.remove(index);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        format!("No resource at {method} {}.", uri.path()),
    )
}
