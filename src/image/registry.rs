//! Talking to one registry over HTTP. Manifests and blobs stream chunk by
//! chunk into the cache's verifying writer, never whole into memory, each
//! stopped one byte past the size it may have; every read is timed by the
//! stall timeout; failures are retried a bounded number of times and
//! reported with what failed and why. oci-client does one thing here: the
//! token flow, when a registry answers 401.

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use oci_client::client::ClientConfig;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::distribution::Reference as OciReference;
use reqwest::{RequestBuilder, Response, StatusCode, header};
use tokio::time::Instant;

use super::error::FetchError;
use super::limit::Limit;
use super::manifest::ACCEPTED;
use super::store::{BlobWriter, Store};
use super::transport::Transport;
use super::{Digest, Error, Mirror, Progress, Reference, auth};

/// How many times a request is tried before its failure is reported.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A download that receives less than this within one stall timeout has
/// stalled: a trickle of a few bytes a second is as good as nothing.
const MIN_PROGRESS: u64 = 1024;

/// The most of an error response read for its message.
const MAX_ERROR_BODY: u64 = 16 * 1024;

/// A connection pool shared by every pull of one resolution.
pub struct Registry {
    http: reqwest::Client,
    /// oci-client for the token flow, made when a registry first asks
    /// for credentials.
    token_client: OnceLock<Client>,
    transport: Transport,
    /// Registries reached over plain HTTP, for the token client.
    http_hosts: Vec<String>,
    stall_timeout: Duration,
}

/// Where one reference's content is fetched from: its own registry or the
/// mirror configured for it.
pub struct Remote {
    reference: OciReference,
    /// The host actually contacted, for messages.
    host: String,
    plain_http: bool,
    /// Read on first use: a credential helper may itself go online.
    credentials: OnceLock<RegistryAuth>,
    /// What authorises requests, once the registry asked for it.
    authorization: Mutex<Option<Authorization>>,
    /// The reference as the user wrote it (normalised), for messages.
    name: String,
}

#[derive(Clone)]
enum Authorization {
    Bearer(String),
    Basic(String, String),
}

impl Remote {
    pub fn new(reference: &Reference, mirrors: &[Mirror], transport: &Transport) -> Self {
        let mut oci = reference.as_oci().clone();
        let mirror = mirrors.iter().find(|m| m.registry == reference.registry());
        if let Some(mirror) = mirror {
            oci.set_mirror_registry(mirror.host.clone());
        }
        let host = oci.resolve_registry().to_owned();
        Self {
            plain_http: mirror.is_some_and(|m| m.plain_http) || transport.plain_http(&host),
            host,
            reference: oci,
            credentials: OnceLock::new(),
            authorization: Mutex::new(None),
            name: reference.to_string(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this remote is reached over plain HTTP.
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    fn credentials(&self) -> &RegistryAuth {
        self.credentials
            .get_or_init(|| auth::credentials(&self.host))
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        let authorization = self
            .authorization
            .lock()
            .expect("no thread panics holding it")
            .clone();
        match authorization {
            Some(Authorization::Bearer(token)) => request.bearer_auth(token),
            Some(Authorization::Basic(user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }
}

/// One thing to fetch from a remote.
struct Fetch<'a> {
    remote: &'a Remote,
    /// `manifests/<tag or digest>` or `blobs/<digest>`.
    path: String,
    /// What it is, for messages: "blob sha256:… of REF".
    what: String,
    limit: Limit,
    /// The digest it must have, when known before fetching.
    digest: Option<&'a Digest>,
}

impl Fetch<'_> {
    fn is_manifest(&self) -> bool {
        self.path.starts_with("manifests/")
    }

    fn failed(&self, source: FetchError) -> Error {
        Error::Fetch {
            host: self.remote.host.clone(),
            what: self.what.clone(),
            source: Box::new(source),
        }
    }
}

/// Why one attempt failed: worth another try, or final.
enum Attempt {
    Retry(FetchError),
    Fail(Error),
}

impl Registry {
    pub fn new(
        transport: Transport,
        http_hosts: Vec<String>,
        stall_timeout: Duration,
    ) -> Result<Self, Error> {
        Ok(Self {
            http: transport.http_client()?,
            token_client: OnceLock::new(),
            transport,
            http_hosts,
            stall_timeout,
        })
    }

    /// Fetches a manifest or index by `digest`, or by the remote's own tag,
    /// into the store, and returns its digest.
    pub async fn fetch_manifest(
        &self,
        remote: &Remote,
        digest: Option<&Digest>,
        limit: Limit,
        store: &Store,
    ) -> Result<Digest, Error> {
        let fetch = match digest {
            Some(digest) => Fetch {
                remote,
                path: format!("manifests/{digest}"),
                what: format!("manifest {digest} of {}", remote.name),
                limit,
                digest: Some(digest),
            },
            None => Fetch {
                remote,
                path: format!("manifests/{}", remote.reference.tag().unwrap_or("latest")),
                what: format!("the manifest of {}", remote.name),
                limit,
                digest: None,
            },
        };
        self.attempts(&fetch, || async {
            let response = self.get(&fetch).await?;
            let announced = response
                .headers()
                .get("docker-content-digest")
                .and_then(|value| value.to_str().ok()?.parse::<Digest>().ok());
            let writer = self.download(&fetch, response, store, None).await?;
            commit(&fetch, writer, fetch.digest.or(announced.as_ref()))
        })
        .await
    }

    /// Streams blob `digest`, of the size `limit` declares, into the store.
    pub async fn fetch_blob(
        &self,
        remote: &Remote,
        digest: &Digest,
        limit: Limit,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let fetch = Fetch {
            remote,
            path: format!("blobs/{digest}"),
            what: format!("blob {digest} of {}", remote.name),
            limit,
            digest: Some(digest),
        };
        self.attempts(&fetch, || async {
            progress.blob_started(digest, limit.declared().unwrap_or(0));
            let response = self.get(&fetch).await?;
            let writer = self
                .download(&fetch, response, store, Some((progress, digest)))
                .await?;
            commit(&fetch, writer, Some(digest))?;
            progress.blob_finished(digest);
            Ok(())
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or has failed
    /// [`ATTEMPTS`] times, doubling the pause between tries.
    async fn attempts<T, F, Fut>(&self, fetch: &Fetch<'_>, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt>>,
    {
        if let Some(declared) = fetch.limit.declared() {
            fetch
                .limit
                .check(declared)
                .map_err(|e| fetch.failed(FetchError::Oversized(e)))?;
        }
        let mut backoff = FIRST_BACKOFF;
        for tries in 1.. {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry(last)) if tries >= ATTEMPTS => {
                    return Err(fetch.failed(FetchError::GaveUp {
                        attempts: ATTEMPTS,
                        last: Box::new(last),
                    }));
                }
                Err(Attempt::Retry(_)) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        unreachable!("the loop only ends by returning")
    }

    /// Sends the request for `fetch` and returns a successful response,
    /// getting credentials once if the registry asks for them.
    async fn get(&self, fetch: &Fetch<'_>) -> Result<Response, Attempt> {
        let remote = fetch.remote;
        let url = format!(
            "{scheme}://{host}/v2/{repository}/{path}{namespace}",
            scheme = if remote.plain_http { "http" } else { "https" },
            host = remote.host,
            repository = remote.reference.repository(),
            path = fetch.path,
            namespace = remote
                .reference
                .namespace()
                .map(|ns| format!("?ns={ns}"))
                .unwrap_or_default(),
        );
        let mut authenticated = false;
        loop {
            let mut request = remote.authorize(self.http.get(&url));
            if fetch.is_manifest() {
                request = request.header(header::ACCEPT, ACCEPTED.join(", "));
            }
            let response = self.timed(request.send()).await?;
            match response.status() {
                StatusCode::OK => return Ok(response),
                StatusCode::UNAUTHORIZED if !authenticated => {
                    authenticated = true;
                    self.authenticate(remote).await?;
                }
                _ => return Err(self.refused(fetch, response).await),
            }
        }
    }

    /// Sorts an error response into retryable or final.
    async fn refused(&self, fetch: &Fetch<'_>, response: Response) -> Attempt {
        let status = response.status();
        let reason = FetchError::Status {
            status,
            message: self.error_message(response).await,
        };
        let host = fetch.remote.host.clone();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Attempt::Fail(Error::AuthRequired {
                    host,
                    source: Box::new(reason),
                })
            }
            StatusCode::NOT_FOUND if fetch.is_manifest() => Attempt::Fail(Error::NotFound {
                reference: fetch.remote.name.clone(),
                source: Box::new(reason),
            }),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(reason),
            status if status.is_server_error() => Attempt::Retry(reason),
            _ => Attempt::Fail(fetch.failed(reason)),
        }
    }

    /// What an error response says: the messages of an OCI error body, or
    /// the start of any other text. Empty when it says nothing in time.
    async fn error_message(&self, mut response: Response) -> String {
        let mut body = Vec::new();
        let mut window = StallWindow::new(self.stall_timeout);
        while (body.len() as u64) < MAX_ERROR_BODY {
            match window.read(response.chunk()).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let messages: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("errors")?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let message = e.get("message").and_then(|m| m.as_str());
                let code = e.get("code").and_then(|c| c.as_str());
                message.or(code).map(str::to_owned)
            })
            .collect();
        if !messages.is_empty() {
            return messages.join("; ");
        }
        let text = String::from_utf8_lossy(&body);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        line.unwrap_or_default().chars().take(200).collect()
    }

    /// Asks for a token (or settles on basic credentials) after a 401,
    /// through oci-client's token flow.
    async fn authenticate(&self, remote: &Remote) -> Result<(), Attempt> {
        let client = self.token_client().map_err(Attempt::Fail)?;
        let credentials = remote.credentials();
        let token = tokio::time::timeout(
            self.stall_timeout,
            client.auth(&remote.reference, credentials, RegistryOperation::Pull),
        )
        .await
        .map_err(|_| {
            Attempt::Retry(FetchError::Stalled {
                timeout: self.stall_timeout,
            })
        })?;
        let authorization = match token {
            Ok(Some(token)) => Some(Authorization::Bearer(token)),
            Ok(None) => match credentials {
                RegistryAuth::Basic(user, password) => {
                    Some(Authorization::Basic(user.clone(), password.clone()))
                }
                _ => None,
            },
            Err(OciDistributionError::RequestError(e)) => {
                return Err(Attempt::Retry(FetchError::Network(e)));
            }
            Err(e) => {
                return Err(Attempt::Fail(Error::AuthRequired {
                    host: remote.host.clone(),
                    source: Box::new(FetchError::Authentication(e)),
                }));
            }
        };
        *remote
            .authorization
            .lock()
            .expect("no thread panics holding it") = authorization;
        Ok(())
    }

    fn token_client(&self) -> Result<&Client, Error> {
        if let Some(client) = self.token_client.get() {
            return Ok(client);
        }
        let config: ClientConfig = self.transport.client_config(self.http_hosts.clone())?;
        let client = Client::try_from(config).map_err(|e| Error::HttpClient(e.into()))?;
        Ok(self.token_client.get_or_init(|| client))
    }

    /// Streams the body of `response` into a new blob of the store,
    /// checking its size before and after every chunk and the stall
    /// timeout on every read.
    async fn download(
        &self,
        fetch: &Fetch<'_>,
        mut response: Response,
        store: &Store,
        progress: Option<(&dyn Progress, &Digest)>,
    ) -> Result<BlobWriter, Attempt> {
        let oversized = |e| Attempt::Fail(fetch.failed(FetchError::Oversized(e)));
        if let Some(length) = response.content_length() {
            fetch.limit.check(length).map_err(oversized)?;
        }
        let mut writer = store.blob_writer().map_err(Attempt::Fail)?;
        let mut window = StallWindow::new(self.stall_timeout);
        while let Some(chunk) = window
            .read(response.chunk())
            .await
            .map_err(Attempt::Retry)?
        {
            writer.write(&chunk).map_err(Attempt::Fail)?;
            fetch.limit.check(writer.len()).map_err(oversized)?;
            if let Some((progress, digest)) = progress {
                progress.blob_advanced(digest, writer.len());
            }
        }
        if let Some(size) = fetch.limit.declared()
            && writer.len() < size
        {
            return Err(Attempt::Retry(FetchError::Truncated {
                received: writer.len(),
                size,
            }));
        }
        Ok(writer)
    }

    /// `send`, failing as stalled when no response comes within the stall
    /// timeout.
    async fn timed(
        &self,
        send: impl Future<Output = reqwest::Result<Response>>,
    ) -> Result<Response, Attempt> {
        match tokio::time::timeout(self.stall_timeout, send).await {
            Err(_) => Err(Attempt::Retry(FetchError::Stalled {
                timeout: self.stall_timeout,
            })),
            Ok(Err(e)) if e.is_builder() => Err(Attempt::Fail(Error::HttpClient(e.into()))),
            Ok(Err(e)) => Err(Attempt::Retry(FetchError::Network(e))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// Moves a downloaded blob under its digest, checked against `expected`.
fn commit(
    fetch: &Fetch<'_>,
    writer: BlobWriter,
    expected: Option<&Digest>,
) -> Result<Digest, Attempt> {
    writer.commit(expected).map_err(|e| {
        Attempt::Fail(match e {
            Error::DigestMismatch { actual, .. } => {
                fetch.failed(FetchError::WrongContent { actual })
            }
            other => other,
        })
    })
}

/// The stall timeout, enforced on every read: each `timeout` must bring
/// [`MIN_PROGRESS`] bytes, or the end of the body.
struct StallWindow {
    timeout: Duration,
    deadline: Instant,
    received: u64,
}

impl StallWindow {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            deadline: Instant::now() + timeout,
            received: 0,
        }
    }

    async fn read(
        &mut self,
        read: impl Future<Output = reqwest::Result<Option<Bytes>>>,
    ) -> Result<Option<Bytes>, FetchError> {
        let chunk = tokio::time::timeout_at(self.deadline, read)
            .await
            .map_err(|_| FetchError::Stalled {
                timeout: self.timeout,
            })?
            .map_err(FetchError::Network)?;
        if let Some(chunk) = &chunk {
            self.received += chunk.len() as u64;
            if self.received >= MIN_PROGRESS {
                self.received = 0;
                self.deadline = Instant::now() + self.timeout;
            }
        }
        Ok(chunk)
    }
}
