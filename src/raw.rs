//! Raw calls, for the endpoints of Comm100 v3 that the spec does not describe: the same auth,
//! retries, time budget, bounded bodies, error normalisation and spans as every generated
//! operation, with the body typed by serde or left raw.

use progenitor_client::{ClientHooks as _, ClientInfo as _, OperationInfo};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::generated::types;
use crate::Comm100;

/// The operation id under which raw calls are traced and their errors reported.
pub const RAW_OPERATION: &str = "raw_request";

/// The error of a raw call: the same type as the generated operations', so that
/// [`ApiErrorExt`](crate::ApiErrorExt) works on it.
pub type RawError = progenitor_client::Error<types::Error>;

impl Comm100 {
    /// A request to `path` under the API base (`https://api{N}.comm100.io/api/v3`), for an
    /// endpoint the spec does not describe. It goes through the same hooks as every operation:
    /// the token (refreshed and the request sent once more on a `401`), the retry rules (a
    /// POST is never sent again once it may have reached the server), the time budget, bounded
    /// bodies, spans, and error responses as `ErrorResponse` with Comm100's code and message.
    ///
    /// ```no_run
    /// # async fn run(c100: &comm100::Comm100) -> Result<(), comm100::RawError> {
    /// #[derive(serde::Deserialize)]
    /// struct Agent { id: i64, email: String }
    /// let agents: Vec<Agent> = c100.request(reqwest::Method::GET, "/agents").send_json().await?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, method: Method, path: &str) -> RawRequest<'_> {
        let client = self.client();
        let url = format!("{}/{}", client.baseurl(), path.trim_start_matches('/'));
        RawRequest {
            c100: self,
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

    /// Adds a header. `Authorization` and `User-Agent` are the client's own and are replaced.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sends the request and returns the response of a success (a `2xx`), its body already
    /// read within the limit. An error status is `Err(ErrorResponse)`, a `3xx` or `1xx`
    /// `Err(UnexpectedResponse)` (its body read within the error-body limit), and every other
    /// failure follows the rules of the generated operations (see
    /// [`ApiErrorExt`](crate::ApiErrorExt)).
    pub async fn send(self) -> Result<Response, RawError> {
        let client = self.c100.client();
        let mut request = self
            .builder
            .build()
            .map_err(|e| RawError::InvalidRequest(e.to_string()))?;
        let info = OperationInfo {
            operation_id: RAW_OPERATION,
        };
        client.pre::<types::Error>(&mut request, &info).await?;
        let result = client.exec(request, &info).await;
        client.post::<types::Error>(&result, &info).await?;
        let response = result.map_err(RawError::CommunicationError)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(RawError::ErrorResponse(
                crate::body::decode_response(response).await?,
            ));
        }
        Err(RawError::UnexpectedResponse(response))
    }

    /// Sends the request and decodes the body of a success as `T`.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, RawError> {
        let response = self.send().await?;
        Ok(crate::body::decode_response::<T, types::Error>(response)
            .await?
            .into_inner())
    }
}
