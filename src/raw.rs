//! Raw calls, for the endpoints of Comm100 v3 that the spec does not describe: the same auth,
//! retries, time budget, bounded bodies, error normalisation and spans as every generated
//! operation, with the body typed by serde or left raw.

use percent_encoding::percent_decode_str;
use progenitor_client::{ClientHooks as _, ClientInfo as _, OperationInfo};
use reqwest::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING,
};
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::same_origin;
use crate::generated::types;
use crate::{ApiError, Comm100};

/// The operation id under which raw calls are traced and their errors reported.
pub const RAW_OPERATION: &str = "raw_request";

/// progenitor's error, which the raw calls use inside before turning it into an [`ApiError`].
type ProgenitorError = progenitor_client::Error<types::Error>;

impl Comm100 {
    /// A request to `path` under the API base (`https://api{N}.comm100.io/api/v3`), for an
    /// endpoint the spec does not describe. It goes through the same hooks as every operation:
    /// the token (refreshed and the request sent once more on a `401`), the retry rules (a
    /// POST is never sent again once it may have reached the server), the time budget, bounded
    /// bodies, spans, and every failure as an [`ApiError`] with Comm100's code and message.
    ///
    /// The path must stay under the API base, since the request carries the token: a path
    /// with a dot segment (`.` or `..`, also percent-encoded as `%2e`, and with `\` taken as
    /// a separator too) is refused at `send` with
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), and nothing is sent.
    ///
    /// The documents this crate is built from (`docs/reference/`) describe the customer-segment
    /// paths, used here; Comm100's other v3 endpoints live under the same base (`/global/…`,
    /// `/livechat/…`, `/report/…`). The sandbox answers `404` to paths it does not serve.
    ///
    /// ```no_run
    /// # async fn run(c100: &comm100::Comm100) -> Result<(), comm100::ApiError> {
    /// #[derive(serde::Deserialize)]
    /// struct Segment { id: comm100::uuid::Uuid, name: Option<String> }
    /// let path = "/livechat/customerSegments";
    /// let segments: Vec<Segment> = c100.request(comm100::Method::GET, path).send_json().await?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, method: Method, path: &str) -> RawRequest<'_> {
        let client = self.client();
        let url = format!("{}/{}", client.baseurl(), path.trim_start_matches('/'));
        RawRequest {
            c100: self,
            refused: path_problem(path, &url, self.endpoints().api_base()),
            builder: client.client().request(method, url),
        }
    }

    /// A `GET` of `path` under the API base; see [`Comm100::request`].
    pub fn get(&self, path: &str) -> RawRequest<'_> {
        self.request(Method::GET, path)
    }

    /// A `POST` to `path` under the API base; see [`Comm100::request`].
    pub fn post(&self, path: &str) -> RawRequest<'_> {
        self.request(Method::POST, path)
    }

    /// A `PUT` to `path` under the API base; see [`Comm100::request`].
    pub fn put(&self, path: &str) -> RawRequest<'_> {
        self.request(Method::PUT, path)
    }

    /// A `DELETE` of `path` under the API base; see [`Comm100::request`].
    pub fn delete(&self, path: &str) -> RawRequest<'_> {
        self.request(Method::DELETE, path)
    }
}

/// A raw call being built; see [`Comm100::request`]. Nothing is sent until `send`.
#[must_use = "a raw request does nothing until it is sent"]
pub struct RawRequest<'a> {
    c100: &'a Comm100,
    builder: reqwest::RequestBuilder,
    /// The first reason to refuse the request, reported by `send` before anything is sent.
    refused: Option<String>,
}

impl std::fmt::Debug for RawRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequest").finish_non_exhaustive()
    }
}

impl RawRequest<'_> {
    /// Adds query parameters, serialised with serde (a struct, a map, or pairs).
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Adds a header. `User-Agent` is the client's own and is replaced. `Host`,
    /// `Authorization`, `Content-Length`, `Transfer-Encoding` and `Connection` are refused at
    /// `send` with `InvalidRequest`, and nothing is sent: the token goes only where the client
    /// sends it, and the framing is the HTTP library's.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if [
            HOST,
            AUTHORIZATION,
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            CONNECTION,
        ]
        .contains(&name)
        {
            self.refused.get_or_insert_with(|| {
                format!("the header `{name}` cannot be set on a raw request: the client sets it")
            });
            return self;
        }
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sends the request and returns the response of a success (a `2xx`), its body already
    /// read within the limit. Every failure is an [`ApiError`], by the rules of the generated
    /// operations: an error status with its code and message, a `3xx` or `1xx` as
    /// [`ErrorKind::Protocol`](crate::ErrorKind::Protocol) (its body read within the
    /// error-body limit), and the outcome rules of the README's decision table.
    pub async fn send(self) -> Result<Response, ApiError> {
        let response = self.send_raw().await?;
        Ok(crate::body::readable(response))
    }

    /// Sends the request and decodes the body of a success as `T`.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let response = self.send_raw().await?;
        Ok(crate::body::decode_response::<T, types::Error>(response)
            .await?
            .into_inner())
    }

    async fn send_raw(self) -> Result<Response, ProgenitorError> {
        if let Some(problem) = self.refused {
            return Err(ProgenitorError::InvalidRequest(problem));
        }
        let client = self.c100.client();
        let mut request = self
            .builder
            .build()
            .map_err(|e| ProgenitorError::InvalidRequest(e.to_string()))?;
        let info = OperationInfo {
            operation_id: RAW_OPERATION,
        };
        client.pre::<types::Error>(&mut request, &info).await?;
        let result = client.exec(request, &info).await;
        client.post::<types::Error>(&result, &info).await?;
        let response = result.map_err(ProgenitorError::CommunicationError)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(ProgenitorError::ErrorResponse(
                crate::body::decode_response(response).await?,
            ));
        }
        Err(ProgenitorError::UnexpectedResponse(response))
    }
}

/// Why a raw path is refused, if it is: a dot segment, which the client, a proxy or the server
/// resolves and which would take the request, with its token, out of the API base; or a joined
/// `url` that is not under `base` (its origin, and its path below the base's).
fn path_problem(path: &str, url: &str, base: &Url) -> Option<String> {
    let before_query = path.split(['?', '#']).next().unwrap_or_default();
    // Decoded until nothing changes, for a server that decodes twice (`%252e` is then `.`);
    // three rounds cover any server worth talking to.
    let mut decoded = before_query.to_string();
    for _ in 0..3 {
        let next = percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    // `\` is a separator for the URL parser and for some servers.
    if decoded.split(['/', '\\']).any(|s| s == "." || s == "..") {
        return Some(format!(
            "the path `{path}` has a dot segment (`.` or `..`, maybe percent-encoded), which would leave the API base"
        ));
    }
    // A URL that does not parse is reqwest's to refuse, at `send`.
    let joined = Url::parse(url).ok()?;
    let base_path = base.path().trim_end_matches('/');
    let below = joined
        .path()
        .strip_prefix(base_path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    (!(below && same_origin(base, &joined))).then(|| {
        format!("the path `{path}` leads to `{joined}`, which is not under the API base `{base}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_api_base_are_refused() {
        let base = Url::parse("https://api1.comm100.io/api/v3").unwrap();
        let problem = |path: &str| {
            let url = format!("{}/{}", base.as_str(), path.trim_start_matches('/'));
            path_problem(path, &url, &base)
        };
        for fine in [
            "/livechat/agents",
            "livechat/agents/",
            "/livechat/customerSegments/5f0c?x=../y",
            "/a.b/..c/c../...",
            "/livechat/%2e%2e%2e",
            "/a#../..",
        ] {
            assert_eq!(problem(fine), None, "{fine}");
        }
        for refused in [
            "../admin",
            "/livechat/../../admin",
            "/livechat/./agents",
            "/livechat/.",
            "/%2e%2e/admin",
            "/%2E%2e/admin",
            "/%2E./admin",
            "/.%2e/admin",
            "/%2e/admin",
            "/..%2fadmin",
            "/..%5cadmin",
            "\\..\\admin",
            "/livechat\\..\\..\\admin",
            "/%252e%252e/admin",
        ] {
            let problem = problem(refused).unwrap_or_else(|| panic!("{refused} was not refused"));
            assert!(problem.contains("dot segment"), "{problem}");
        }
        // Whatever the path, the joined URL is checked too.
        let other = path_problem("/x", "https://evil.example/api/v3/x", &base).unwrap();
        assert!(other.contains("not under the API base"), "{other}");
        let sibling = path_problem("/x", "https://api1.comm100.io/api/v30/x", &base);
        assert!(sibling.is_some());
    }
}
