//! Configuration files named by an http(s) URL, which `linuxkit build`
//! fetches as it reads local ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{MAX_CONFIG_SIZE, ReadError, Source};
use crate::image::Transport;

/// How long fetching one configuration may take in all; a config is a few
/// KiB, so a server that needs longer is stuck.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A configuration URL could not be fetched; the caller names the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot set up HTTP")]
    Client(#[source] crate::image::Error),
    #[error("the request failed (check the URL and the network)")]
    Request(#[source] reqwest::Error),
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot start the HTTP runtime")]
    Runtime(#[source] std::io::Error),
}

/// The URL `path` is, if it starts with `http://` or `https://`.
pub fn config_url(path: &Path) -> Option<&str> {
    path.to_str()
        .filter(|p| p.starts_with("http://") || p.starts_with("https://"))
}

/// Fetches the configuration at `url`, at most [`MAX_CONFIG_SIZE`] bytes;
/// its problems are reported under the URL.
pub fn fetch(url: &str) -> Result<Source, FetchError> {
    let client = Transport::default()
        .http_client()
        .map_err(FetchError::Client)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FetchError::Runtime)?;
    let body = runtime.block_on(async {
        let mut response = client
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(FetchError::Request)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::Request)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_CONFIG_SIZE {
                return Err(ReadError::TooLarge.into());
            }
        }
        Ok(body)
    })?;
    Ok(Source {
        path: PathBuf::from(url),
        text: String::from_utf8(body).map_err(ReadError::NotText)?,
    })
}
