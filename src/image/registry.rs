//! Talking to one registry through oci-client's streaming calls: manifests
//! by tag or digest, blobs streamed chunk by chunk into the cache (never a
//! whole layer in memory), with bounded retries and errors mapped to
//! messages a person can act on.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::TryStreamExt;
use oci_client::Client;
use oci_client::client::ClientConfig;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_spec::distribution::Reference as OciReference;

use super::manifest::ACCEPTED;
use super::store::Store;
use super::transport::Transport;
use super::{Digest, Error, Mirror, Progress, Reference, auth};

/// How many times a request is tried before its failure is reported.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A connection pool and token cache shared by every pull of one resolution.
pub struct Registry {
    client: Client,
}

/// Where one reference's content is fetched from: its own registry or the
/// mirror configured for it.
pub struct Remote {
    reference: OciReference,
    /// The host actually contacted, for messages.
    host: String,
    plain_http: bool,
    /// Read on first use: a credential helper may itself go online.
    auth: OnceLock<RegistryAuth>,
    /// The reference as the user wrote it (normalised), for messages.
    name: String,
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
            auth: OnceLock::new(),
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

    fn auth(&self) -> &RegistryAuth {
        self.auth.get_or_init(|| auth::credentials(&self.host))
    }

    /// The same repository (on the same mirror) at `digest`.
    fn at_digest(&self, digest: &Digest) -> OciReference {
        self.reference.clone_with_digest(digest.to_string())
    }
}

/// Why one attempt failed: worth another try, or final.
enum Failure {
    Transient(String),
    Final(Error),
}

impl Registry {
    pub fn new(config: ClientConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }

    /// Fetches a manifest or index by `digest`, or by the remote's own tag,
    /// into the store, and returns its digest.
    pub async fn fetch_manifest(
        &self,
        remote: &Remote,
        digest: Option<&Digest>,
        store: &Store,
    ) -> Result<Digest, Error> {
        let reference = match digest {
            Some(digest) => remote.at_digest(digest),
            None => remote.reference.clone(),
        };
        let (bytes, _) = retry(remote, || async {
            self.client
                .pull_manifest_raw(&reference, remote.auth(), &ACCEPTED)
                .await
                .map_err(|e| classify(remote, e))
        })
        .await?;
        let mut writer = store.blob_writer()?;
        writer.write(&bytes)?;
        writer.commit(digest).map_err(|e| wrong_content(remote, e))
    }

    /// Streams blob `digest` of `size` bytes into the store.
    pub async fn fetch_blob(
        &self,
        remote: &Remote,
        digest: &Digest,
        size: u64,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        self.client
            .store_auth_if_needed(&remote.host, remote.auth())
            .await;
        let reference = remote.at_digest(digest);
        let descriptor = oci_client::manifest::OciDescriptor {
            digest: digest.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        retry(remote, || async {
            progress.blob_started(digest, size);
            let mut stream = self
                .client
                .pull_blob_stream(&reference, &descriptor)
                .await
                .map_err(|e| classify(remote, e))?;
            let mut writer = store.blob_writer().map_err(Failure::Final)?;
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|e| classify(remote, OciDistributionError::IoError(e)))?
            {
                writer.write(&chunk).map_err(Failure::Final)?;
                if writer.len() > size {
                    return Err(Failure::Final(Error::Registry {
                        host: remote.host.clone(),
                        message: format!("{digest} is larger than the {size} bytes declared"),
                    }));
                }
                progress.blob_advanced(digest, writer.len());
            }
            writer
                .commit(Some(digest))
                .map_err(|e| Failure::Final(wrong_content(remote, e)))?;
            progress.blob_finished(digest);
            Ok(())
        })
        .await
    }
}

/// Runs `attempt` until it succeeds, fails for good, or has failed
/// [`ATTEMPTS`] times, doubling the pause between tries.
async fn retry<T, F, Fut>(remote: &Remote, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut backoff = FIRST_BACKOFF;
    for tries in 1.. {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient(message)) if tries >= ATTEMPTS => {
                return Err(Error::Registry {
                    host: remote.host.clone(),
                    message: format!("{message} (gave up after {ATTEMPTS} attempts)"),
                });
            }
            Err(Failure::Transient(_)) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Sorts a client error into retryable or final, and words the final ones.
fn classify(remote: &Remote, error: OciDistributionError) -> Failure {
    let auth_required = || {
        Failure::Final(Error::AuthRequired {
            host: remote.host.clone(),
        })
    };
    let not_found = || {
        Failure::Final(Error::NotFound {
            reference: remote.name.clone(),
        })
    };
    match error {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => auth_required(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<_> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                auth_required()
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                Failure::Transient(envelope.to_string())
            } else {
                Failure::Final(Error::Registry {
                    host: remote.host.clone(),
                    message: envelope.to_string(),
                })
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => auth_required(),
            404 => not_found(),
            429 | 500.. => Failure::Transient(format!("HTTP {code}: {message}")),
            _ => Failure::Final(Error::Registry {
                host: remote.host.clone(),
                message: format!("HTTP {code}: {message}"),
            }),
        },
        OciDistributionError::IoError(e) => {
            match e.get_ref().and_then(|inner| inner.downcast_ref()) {
                Some(oci_client::errors::DigestError::VerificationError { expected, actual }) => {
                    Failure::Final(Error::Registry {
                        host: remote.host.clone(),
                        message: format!(
                            "sent content for {expected} that hashes to {actual}; it was discarded"
                        ),
                    })
                }
                _ => Failure::Transient(e.to_string()),
            }
        }
        OciDistributionError::RequestError(e) => Failure::Transient(error_chain(&e)),
        other => Failure::Final(Error::Registry {
            host: remote.host.clone(),
            message: other.to_string(),
        }),
    }
}

fn wrong_content(remote: &Remote, error: Error) -> Error {
    match error {
        Error::DigestMismatch { expected, actual } => Error::WrongContent {
            host: remote.host.clone(),
            expected,
            actual,
        },
        other => other,
    }
}

/// A reqwest error with its causes, which hold the useful part
/// ("connection refused", "certificate unknown").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
