//! How to reach a registry: HTTP or HTTPS, which CAs to trust, which proxy.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};

use super::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const USER_AGENT: &str = concat!("ossify/", env!("CARGO_PKG_VERSION"));

/// Transport settings shared by every registry a resolution talks to.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// Hosts (`host` or `host:port`) reached over plain HTTP although not loopback.
    pub insecure_registries: Vec<String>,
    /// Extra PEM files of CAs to trust, besides the system's and `$SSL_CERT_FILE`.
    pub ca_certs: Vec<PathBuf>,
}

impl Transport {
    /// Plain HTTP for loopback hosts (as Docker does) and the insecure ones.
    pub fn plain_http(&self, host: &str) -> bool {
        let name = host_name(host);
        let loopback = name == "localhost"
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback
            || self
                .insecure_registries
                .iter()
                .any(|insecure| insecure == host || insecure == name)
    }

    /// The client that fetches manifests and blobs. It has no read
    /// timeout of its own: every read is timed by the caller's stall
    /// timeout. Proxies come from `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY` (or lowercase), as reqwest reads them.
    pub fn http_client(&self) -> Result<reqwest::Client, Error> {
        let mut certificates = Vec::new();
        for (path, pem) in self.ca_files()? {
            let bundle =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::CaCert {
                    path,
                    source: e.into(),
                })?;
            certificates.extend(bundle);
        }
        reqwest::Client::builder()
            .tls_certs_merge(certificates)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::HttpClient(e.into()))
    }

    /// An oci-client configuration for its token flow, reaching
    /// `http_hosts` over plain HTTP and every other registry over HTTPS.
    pub fn client_config(&self, http_hosts: Vec<String>) -> Result<ClientConfig, Error> {
        let extra_root_certificates = self
            .ca_files()?
            .into_iter()
            .map(|(_, data)| Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            })
            .collect();
        Ok(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(http_hosts),
            extra_root_certificates,
            connect_timeout: Some(CONNECT_TIMEOUT),
            user_agent: USER_AGENT,
            https_proxy: env("HTTPS_PROXY"),
            http_proxy: env("HTTP_PROXY"),
            no_proxy: env("NO_PROXY"),
            ..ClientConfig::default()
        })
    }

    /// The PEM files of extra CAs: `--ca-cert` and `$SSL_CERT_FILE`.
    fn ca_files(&self) -> Result<Vec<(PathBuf, Vec<u8>)>, Error> {
        let mut paths = self.ca_certs.clone();
        paths.extend(env("SSL_CERT_FILE").map(PathBuf::from));
        paths
            .into_iter()
            .map(|path| match std::fs::read(&path) {
                Ok(data) => Ok((path, data)),
                Err(e) => Err(Error::CaCert {
                    path,
                    source: e.into(),
                }),
            })
            .collect()
    }
}

/// An environment variable, upper or lower case, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_lowercase()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// `host:port` or `[v6]:port` without the port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(name, _)| &name[1..]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        let transport = Transport::default();
        for host in [
            "localhost:5000",
            "127.0.0.1",
            "127.3.2.1:80",
            "[::1]:5000",
            "::1",
        ] {
            assert!(transport.plain_http(host), "{host}");
        }
        for host in ["docker.io", "10.0.0.1:5000", "localhost.example"] {
            assert!(!transport.plain_http(host), "{host}");
        }
    }

    #[test]
    fn insecure_registries_by_name_or_host_port() {
        let transport = Transport {
            insecure_registries: vec!["registry.lan".into()],
            ..Transport::default()
        };
        assert!(transport.plain_http("registry.lan:5000"));
        assert!(!transport.plain_http("other.lan"));
    }
}
