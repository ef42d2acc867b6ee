//! How to reach a registry: HTTP or HTTPS, which CAs to trust, which proxy.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};

use super::Error;

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

    /// An oci-client configuration that reaches `http_hosts` over plain
    /// HTTP and every other registry over HTTPS.
    pub fn client_config(&self, http_hosts: Vec<String>) -> Result<ClientConfig, Error> {
        let env = |name: &str| {
            std::env::var(name)
                .or_else(|_| std::env::var(name.to_lowercase()))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let mut ca_files = self.ca_certs.clone();
        ca_files.extend(env("SSL_CERT_FILE").map(PathBuf::from));
        let extra_root_certificates = ca_files
            .into_iter()
            .map(|path| {
                std::fs::read(&path)
                    .map(|data| Certificate {
                        encoding: CertificateEncoding::Pem,
                        data,
                    })
                    .map_err(|e| Error::CaCert {
                        path,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(http_hosts),
            extra_root_certificates,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            https_proxy: env("HTTPS_PROXY"),
            http_proxy: env("HTTP_PROXY"),
            no_proxy: env("NO_PROXY"),
            ..ClientConfig::default()
        })
    }
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
