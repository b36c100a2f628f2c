//! HTTP to an MLflow server, configured like MLflow's own client: credentials, timeout and retry
//! policy from the same environment variables, retries with exponential backoff and jitter on
//! connection errors, 408, 429, 5xx (and the 400 a saturated SQL pool answers with), and every other
//! error turned into an [`ApiError`] naming the request and quoting the server.

use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::ErrorBody;

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP Basic (`MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token (`MLFLOW_TRACKING_TOKEN`).
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Credentials.
    pub auth: Auth,
    /// Per-request timeout (`MLFLOW_HTTP_REQUEST_TIMEOUT`, seconds; default 120).
    pub timeout: Duration,
    /// Retries after the first try (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`; default 7).
    pub max_retries: u32,
    /// Backoff: `factor × 2^(retry − 1)` seconds plus up to 1 s of jitter, at most 60 s
    /// (`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`; default 2).
    pub backoff_factor: f64,
    /// Accept any TLS certificate (`MLFLOW_TRACKING_INSECURE_TLS=true`).
    pub insecure_tls: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            timeout: Duration::from_secs(120),
            max_retries: 7,
            backoff_factor: 2.0,
            insecure_tls: false,
        }
    }
}

/// Longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl ClientSettings {
    /// The settings MLflow's environment variables give; a malformed number is an error naming the
    /// variable.
    pub fn from_env() -> anyhow::Result<ClientSettings> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The settings from a variable lookup (`from_env` with `std::env::var`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<ClientSettings> {
        let defaults = ClientSettings::default();
        let number = |name: &str| -> anyhow::Result<Option<f64>> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| anyhow::anyhow!("{name}={v}: expected a non-negative number"))
                })
                .transpose()
        };
        let auth = match (
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
            var("MLFLOW_TRACKING_TOKEN"),
        ) {
            (Some(username), Some(password), _) => Auth::Basic { username, password },
            (Some(_), None, _) | (None, Some(_), _) => {
                anyhow::bail!("set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic auth), or neither")
            }
            (None, None, Some(token)) => Auth::Bearer(token),
            (None, None, None) => Auth::None,
        };
        Ok(ClientSettings {
            auth,
            timeout: number("MLFLOW_HTTP_REQUEST_TIMEOUT")?.map_or(defaults.timeout, Duration::from_secs_f64),
            max_retries: number("MLFLOW_HTTP_REQUEST_MAX_RETRIES")?.map_or(defaults.max_retries, |n| n as u32),
            backoff_factor: number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")?.unwrap_or(defaults.backoff_factor),
            insecure_tls: var("MLFLOW_TRACKING_INSECURE_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The wait before retry number `retry` (1-based).
    fn backoff(&self, retry: u32) -> Duration {
        let base = self.backoff_factor * 2f64.powi(retry.saturating_sub(1) as i32);
        let jitter = rand::rng().random_range(0.0..1.0);
        Duration::from_secs_f64(base + jitter).min(MAX_BACKOFF)
    }
}

/// An answer the server gave that is not a success (and not worth retrying).
#[derive(Debug, thiserror::Error)]
#[error("{request} answered {status}{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
pub struct ApiError {
    /// `POST http://host/api/2.0/mlflow/runs/log-batch`.
    pub request: String,
    /// HTTP status.
    pub status: u16,
    /// MLflow's `error_code`, when the body had one.
    pub code: Option<String>,
    /// MLflow's `message`, or the start of the body.
    pub message: String,
}

/// The server could not be reached, or kept failing (connection errors, timeouts, 408/429/5xx),
/// through every retry: an outage, as opposed to an answer refusing the request. It is the
/// outermost context of such an error (the last try's error is its source), so callers find it with
/// `error.downcast_ref::<ServerUnavailable>()` or [`is_server_unavailable`].
#[derive(Debug, thiserror::Error)]
#[error("{request}: gave up after {tries} tries")]
pub struct ServerUnavailable {
    /// `POST http://host/api/2.0/mlflow/runs/log-batch`.
    pub request: String,
    /// How many times the request was sent.
    pub tries: u32,
}

/// Whether `error` (or any error it wraps) is a [`ServerUnavailable`].
pub fn is_server_unavailable(error: &anyhow::Error) -> bool {
    error.downcast_ref::<ServerUnavailable>().is_some()
}

/// HTTP access to one MLflow server.
#[derive(Debug, Clone)]
pub struct RestClient {
    base: String,
    http: Client,
    settings: ClientSettings,
}

impl RestClient {
    /// A client of the server at `base` (`http(s)://host:port[/prefix]`).
    pub fn new(base: &str, settings: ClientSettings) -> anyhow::Result<RestClient> {
        let base = base.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).with_context(|| format!("`{base}` is not a URL"))?;
        let loopback = match url.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        let mut builder = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(settings.insecure_tls)
            .user_agent(concat!("fairlab/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // uvicorn with several workers leaves Nagle on for accepted sockets, so a request on a
            // kept-alive connection stalls ~40 ms (uvicorn issue 3149); fresh loopback connections
            // cost ~0.1 ms.
            builder = builder.pool_max_idle_per_host(0);
        }
        Ok(RestClient {
            base,
            http: builder.build().context("cannot build the HTTP client")?,
            settings,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /api/2.0/mlflow/<endpoint>?query`, decoded.
    pub fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &[(&str, &str)]) -> anyhow::Result<T> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let response = self.send(Method::GET, &url, |r| r.query(query))?;
        decode(&format!("GET {url}"), response)
    }

    /// `POST /api/2.0/mlflow/<endpoint>` with a JSON body, decoded.
    pub fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &impl Serialize) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body).context("cannot encode the request")?;
        self.post_encoded(endpoint, body)
    }

    /// `POST /api/2.0/mlflow/<endpoint>` with a body already encoded as JSON, decoded: what
    /// [`post`](Self::post) sends, without the encoding (the same retries and credentials).
    pub fn post_encoded<T: DeserializeOwned>(&self, endpoint: &str, body: Vec<u8>) -> anyhow::Result<T> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let response = self.send(Method::POST, &url, |r| {
            r.header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })?;
        decode(&format!("POST {url}"), response)
    }

    /// `PUT <path>` (below the base) with raw bytes.
    pub fn put_bytes(&self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        self.send(Method::PUT, &url, |r| r.body(bytes.to_vec()))?;
        Ok(())
    }

    /// `GET <path>` (below the base) as raw bytes.
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let response = self.send(Method::GET, &url, |r| r)?;
        Ok(response
            .bytes()
            .with_context(|| format!("GET {url}: reading the answer"))?
            .to_vec())
    }

    /// Send, retrying what is worth retrying; a final failure names the request.
    fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let request = format!("{method} {url}");
        let mut retry = 0;
        loop {
            let mut r = build(self.http.request(method.clone(), url));
            r = match &self.settings.auth {
                Auth::None => r,
                Auth::Basic { username, password } => r.basic_auth(username, Some(password)),
                Auth::Bearer(token) => r.bearer_auth(token),
            };
            let error: anyhow::Error = match r.send() {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let error = api_error(&request, response);
                    if !retryable_status(status, &error.message) {
                        return Err(error.into());
                    }
                    error.into()
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => e.into(),
                Err(e) => return Err(anyhow::Error::new(e).context(request)),
            };
            if retry >= self.settings.max_retries {
                return Err(error.context(ServerUnavailable {
                    request,
                    tries: retry + 1,
                }));
            }
            retry += 1;
            let wait = self.settings.backoff(retry);
            tracing::warn!(
                "{request}: {error:#}; retry {retry} of {} in {wait:.1?}",
                self.settings.max_retries
            );
            std::thread::sleep(wait);
        }
    }
}

/// 408, 429, 500, 502, 503, 504, and the 400 an overloaded SQL store answers with.
fn retryable_status(status: StatusCode, message: &str) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
        || (status == StatusCode::BAD_REQUEST && message.contains("QueuePool limit"))
}

/// The error of a failed response: MLflow's code and message, or the start of the body.
fn api_error(request: &str, response: Response) -> ApiError {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    let message = if body.message.is_empty() {
        let start: String = text.chars().take(300).collect();
        if start.trim().is_empty() {
            "(no message)".to_string()
        } else {
            start.trim().to_string()
        }
    } else {
        body.message
    };
    ApiError {
        request: request.to_string(),
        status,
        code: (!body.error_code.is_empty()).then_some(body.error_code),
        message,
    }
}

/// Decode a success's JSON body.
fn decode<T: DeserializeOwned>(request: &str, response: Response) -> anyhow::Result<T> {
    let text = response
        .text()
        .with_context(|| format!("{request}: reading the answer"))?;
    let text = if text.trim().is_empty() { "{}" } else { text.as_str() };
    serde_json::from_str(text).with_context(|| {
        let start: String = text.chars().take(200).collect();
        format!("{request}: unexpected answer `{start}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn settings_come_from_mlflows_variables() {
        let s = ClientSettings::from_vars(vars(&[
            ("MLFLOW_TRACKING_USERNAME", "ci"),
            ("MLFLOW_TRACKING_PASSWORD", "pw"),
            ("MLFLOW_TRACKING_TOKEN", "ignored when basic auth is set"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),
        ]))
        .unwrap();
        assert_eq!(
            s.auth,
            Auth::Basic {
                username: "ci".into(),
                password: "pw".into()
            }
        );
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.max_retries, 0);
        assert_eq!(format!("{:?}", s.auth), "Basic(ci, ***)", "no secret in debug output");
        let token = ClientSettings::from_vars(vars(&[("MLFLOW_TRACKING_TOKEN", "t")])).unwrap();
        assert_eq!(token.auth, Auth::Bearer("t".into()));
        let half = ClientSettings::from_vars(vars(&[("MLFLOW_TRACKING_USERNAME", "ci")])).unwrap_err();
        assert!(half.to_string().contains("both"), "{half}");
        let bad = ClientSettings::from_vars(vars(&[("MLFLOW_HTTP_REQUEST_TIMEOUT", "soon")])).unwrap_err();
        assert!(bad.to_string().contains("MLFLOW_HTTP_REQUEST_TIMEOUT=soon"), "{bad}");
    }

    #[test]
    fn what_is_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(code).unwrap(), ""), "{code}");
        }
        for code in [400, 401, 403, 404, 409] {
            assert!(!retryable_status(
                StatusCode::from_u16(code).unwrap(),
                "Changing param values is not allowed"
            ));
        }
        assert!(retryable_status(
            StatusCode::BAD_REQUEST,
            "QueuePool limit of size 5 overflow 10 reached"
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = ClientSettings::default();
        let first = s.backoff(1).as_secs_f64();
        assert!((2.0..3.0).contains(&first), "{first}");
        assert!((8.0..9.0).contains(&s.backoff(3).as_secs_f64()));
        assert_eq!(s.backoff(20), MAX_BACKOFF);
    }
}

#[cfg(test)]
mod fake_server_tests {
    //! The client against a small fake server on loopback that answers with canned responses: the
    //! error and retry paths a real server rarely takes on demand.

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Serve `answers` (status line and JSON body) in order, one per connection; returns the base
    /// URL and the count of requests served.
    fn fake(answers: Vec<(&'static str, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for (stream, (status, body)) in listener.incoming().zip(answers) {
                let mut stream = stream.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and a body of Content-Length bytes.
                loop {
                    let n = stream.read(&mut buf).unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        (base, served)
    }

    fn quick_retries() -> ClientSettings {
        ClientSettings {
            max_retries: 3,
            backoff_factor: 0.0,
            ..ClientSettings::default()
        }
    }

    #[test]
    fn server_errors_are_retried_until_an_answer() {
        let (base, served) = fake(vec![
            (
                "500 Internal Server Error",
                r#"{"error_code": "INTERNAL_ERROR", "message": "boom"}"#,
            ),
            ("503 Service Unavailable", ""),
            ("200 OK", r#"{"experiment_id": "7"}"#),
        ]);
        let client = RestClient::new(&base, quick_retries()).unwrap();
        let answer: serde_json::Value = client
            .post("experiments/create", &serde_json::json!({"name": "x"}))
            .unwrap();
        assert_eq!(answer["experiment_id"], "7");
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_bad_request_is_not_retried_and_quotes_the_server() {
        let (base, served) = fake(vec![(
            "400 Bad Request",
            r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Changing param values is not allowed."}"#,
        )]);
        let client = RestClient::new(&base, quick_retries()).unwrap();
        let error = client
            .post::<serde_json::Value>("runs/log-batch", &serde_json::json!({}))
            .unwrap_err();
        let api = error.downcast_ref::<ApiError>().unwrap();
        assert!(!is_server_unavailable(&error), "a refusal is not an outage");
        assert_eq!(api.status, 400);
        assert_eq!(api.code.as_deref(), Some("INVALID_PARAMETER_VALUE"));
        assert_eq!(
            error.to_string(),
            format!("POST {base}/api/2.0/mlflow/runs/log-batch answered 400 INVALID_PARAMETER_VALUE: Changing param values is not allowed.")
        );
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn giving_up_says_how_many_tries() {
        let (base, served) = fake(vec![("502 Bad Gateway", "<html>proxy</html>"); 4]);
        let client = RestClient::new(&base, quick_retries()).unwrap();
        let error = client
            .get::<serde_json::Value>("runs/get", &[("run_id", "r")])
            .unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("gave up after 4 tries"), "{text}");
        assert!(text.contains("answered 502: <html>proxy</html>"), "{text}");
        assert_eq!(served.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn an_unreachable_server_is_a_connection_error_after_the_retries() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = RestClient::new(
            &format!("http://127.0.0.1:{port}"),
            ClientSettings {
                max_retries: 1,
                backoff_factor: 0.0,
                ..ClientSettings::default()
            },
        )
        .unwrap();
        let error = client.get::<serde_json::Value>("runs/get", &[]).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("gave up after 2 tries"), "{text}");
        assert!(is_server_unavailable(&error));
    }
}
