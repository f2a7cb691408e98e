//! Helpers shared by the integration tests.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use comm100_sandbox::{DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID, Sandbox};
use serde_json::{Value, json};

/// A client that does not reuse connections, so that a dropped connection never leaks into the
/// next request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

pub fn token_url(sb: &Sandbox) -> String {
    format!("{}/adminwebservice/api/jwttoken/generate", sb.portal_url())
}

pub fn segments_url(sb: &Sandbox) -> String {
    format!("{}/livechat/customerSegments", sb.api_url())
}

pub fn segment_url(sb: &Sandbox, id: &str) -> String {
    format!("{}/livechat/customerSegments/{id}", sb.api_url())
}

pub fn credentials(email: &str, password: &str, site: i64) -> Value {
    json!({"LoginType": "Password", "Username": email, "Password": password, "SiteId": site})
}

pub async fn token_for(sb: &Sandbox, email: &str, password: &str, site: i64) -> String {
    let response = client()
        .post(token_url(sb))
        .json(&credentials(email, password, site))
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token body");
    body["token"].as_str().expect("token string").to_owned()
}

pub async fn token(sb: &Sandbox) -> String {
    token_for(sb, DEFAULT_EMAIL, DEFAULT_PASSWORD, DEFAULT_SITE_ID).await
}

pub fn segment(name: &str) -> Value {
    json!({
        "name": name,
        "conditions": [{"field": "CurrentPageUrl", "operator": "include", "value": "live"}]
    })
}

/// The seed's full example.
pub fn seed_segment() -> Value {
    json!({
        "name": "livechat15293908029",
        "color": "339FD9",
        "isEnable": false,
        "order": 1,
        "description": "",
        "conditionMetType": "all",
        "logicalExpression": "",
        "conditions": [
            {"field": "CurrentPageUrl", "operator": "include", "value": "live", "order": 1}
        ],
        "alertTo": {"agentIds": [4, 5], "departmentIds": []}
    })
}

pub async fn create(sb: &Sandbox, token: &str, body: &Value) -> reqwest::Response {
    client()
        .post(segments_url(sb))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("create request")
}

/// Sends a request that the test does not wait for, and waits until it is in the log.
pub async fn in_flight(
    request: reqwest::RequestBuilder,
    controls: &comm100_sandbox::Controls,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let logged = controls.requests().len();
    let pending = tokio::spawn(request.send());
    controls.wait_for_requests(logged + 1).await;
    pending
}

/// Stops the sandbox, by `shutdown` or by dropping the handle, and expects it stopped well
/// under the 5 s the server gives open connections to finish; `what` names what might hold it
/// up.
pub async fn stop_promptly(sb: Sandbox, by_drop: bool, what: &str) {
    let controls = sb.controls();
    let stopping = async {
        if by_drop {
            drop(sb);
            controls.wait_stopped().await;
        } else {
            sb.shutdown().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), stopping)
        .await
        .unwrap_or_else(|_| panic!("{what} (drop: {by_drop}) held up the stop"));
}

/// The URL of a new segment named `name`, created for `token`.
pub async fn created_url(sb: &Sandbox, token: &str, name: &str) -> String {
    let response = create(sb, token, &segment(name)).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("the created segment");
    segment_url(sb, created["id"].as_str().expect("an id"))
}

/// Deletes the segment at `url`.
pub async fn delete(url: &str, token: &str) -> reqwest::Response {
    client()
        .delete(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("a delete response")
}

/// `GET url`, with the bearer token when one is given.
pub async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let request = client().get(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("a response")
}

/// `GET url`, with the bearer token when one is given, expecting `200` and JSON.
pub async fn get_ok<T: serde::de::DeserializeOwned>(url: &str, token: Option<&str>) -> T {
    let response = get(url, token).await;
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("a JSON body")
}

/// Posts `body` to the admin route `/__sandbox/{path}`.
pub async fn admin_post(sb: &Sandbox, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/__sandbox/{path}", sb.portal_url()))
        .json(&body)
        .send()
        .await
        .expect("an admin response")
}

/// Posts `body` to an admin route and expects it done (`204`).
pub async fn admin_set(sb: &Sandbox, path: &str, body: Value) {
    let response = admin_post(sb, path, body.clone()).await;
    assert_eq!(response.status(), 204, "{path} {body}");
}

/// Asserts the JSON error schema and the status; returns the message.
pub async fn expect_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], json!(i64::from(status) * 1000), "{body}");
    body["message"].as_str().expect("message").to_owned()
}

/// Lists with `token` over HTTP/2 (by prior knowledge, with hyper's client), on a connection of
/// its own, and returns the response, its body unread.
pub async fn http2_list(sb: &Sandbox, token: &str) -> hyper::Response<hyper::body::Incoming> {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let stream = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(segments_url(sb))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    response
}

/// Asserts that each value has exactly this JSON form, both ways.
pub fn assert_json_forms<T>(cases: impl IntoIterator<Item = (T, Value)>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for (value, json) in cases {
        assert_eq!(serde_json::to_value(&value).unwrap(), json, "{value:?}");
        assert_eq!(serde_json::from_value::<T>(json).unwrap(), value);
    }
}

pub fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("json")
}

/// The seeded agent's login body.
pub fn default_credentials() -> Value {
    credentials(
        comm100_sandbox::DEFAULT_EMAIL,
        comm100_sandbox::DEFAULT_PASSWORD,
        DEFAULT_SITE_ID,
    )
}

/// The sandbox binary, running; killed on drop, even when an assertion fails.
#[cfg(feature = "binary")]
pub struct Binary {
    child: std::process::Child,
    /// What it printed up to and including the `admin routes:` line.
    pub printed: Vec<String>,
    /// The control-panel base it printed.
    pub portal: String,
    /// The API base it printed.
    pub api: String,
}

#[cfg(feature = "binary")]
impl Binary {
    /// Starts the binary with these arguments and reads the URLs it prints.
    pub fn spawn(args: &[&str]) -> Binary {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let mut child = Command::new(env!("CARGO_BIN_EXE_comm100-sandbox"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the binary");
        let stdout = child.stdout.take().unwrap();
        let mut binary = Binary {
            child,
            printed: Vec::new(),
            portal: String::new(),
            api: String::new(),
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("admin routes:");
            binary.printed.push(line);
            if done {
                break;
            }
        }
        let after = |label: &str| {
            binary
                .printed
                .iter()
                .find_map(|l| l.split(label).nth(1))
                .unwrap_or_else(|| panic!("no {label:?} line in {:?}", binary.printed))
                .trim()
                .to_owned()
        };
        let (portal, api) = (after("control-panel base: "), after("API base:"));
        binary.portal = portal;
        binary.api = api;
        binary
    }
}

#[cfg(feature = "binary")]
impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
