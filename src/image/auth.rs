//! Registry credentials from the Docker-style config files, in the order
//! podman, skopeo and docker look: `$REGISTRY_AUTH_FILE`,
//! `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`. Each may hold the
//! credentials or name a helper (`credHelpers`, `credsStore`).

use std::fs;
use std::path::PathBuf;

use docker_credential::DockerCredential;
use oci_client::secrets::RegistryAuth;

/// The credentials for `registry`, or anonymous access when none are configured.
pub fn credentials(registry: &str) -> RegistryAuth {
    let keys = config_keys(registry);
    config_files()
        .into_iter()
        .filter_map(|path| fs::read(path).ok())
        .find_map(|config| {
            keys.iter().find_map(|key| {
                docker_credential::get_credential_from_reader(config.as_slice(), key).ok()
            })
        })
        .map_or(RegistryAuth::Anonymous, |credential| match credential {
            DockerCredential::UsernamePassword(user, password) => {
                RegistryAuth::Basic(user, password)
            }
            DockerCredential::IdentityToken(token) => RegistryAuth::Bearer(token),
        })
}

/// The keys a registry may be filed under: Docker Hub's historic URL, and
/// the bare or URL form of any other host.
fn config_keys(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => vec![
            "https://index.docker.io/v1/".to_owned(),
            "docker.io".to_owned(),
            "index.docker.io".to_owned(),
        ],
        host => vec![
            host.to_owned(),
            format!("https://{host}"),
            format!("http://{host}"),
        ],
    }
}

fn config_files() -> Vec<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    [
        var("REGISTRY_AUTH_FILE"),
        var("DOCKER_CONFIG").map(|dir| dir.join("config.json")),
        var("HOME").map(|home| home.join(".docker/config.json")),
    ]
    .into_iter()
    .flatten()
    .collect()
}
