//! Registry credentials from Docker-style config files, against a registry
//! that requires basic auth. One test, because it sets process-wide
//! environment variables.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::Path;
use std::process::Command;

use base64::prelude::*;
use ossify::image::{Error, Options, Resolver, Store};
use support::{LayerBlob, Layout, Registry, layer_tar};

const USER: &str = "builder";
const PASSWORD: &str = "Pa55-never-printed";

fn resolve(target: &str) -> Result<(), Error> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Resolver::new(store, Options::default())
        .resolve(&[target.parse().unwrap()])
        .map(drop)
}

fn set_env(name: &str, value: Option<&Path>) {
    // SAFETY: this test binary runs this single test, and no other thread
    // reads the environment while it is changed.
    unsafe {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
}

fn assert_auth_required(target: &str, host: &str) {
    let error = resolve(target).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("authentication required for {host} (check docker login / REGISTRY_AUTH_FILE)")
    );
    assert!(!format!("{error:?}").contains(PASSWORD));
}

#[test]
#[ignore = "heavy: needs docker-registry, htpasswd and skopeo (scripts/test.sh)"]
fn credentials_come_from_docker_config_files() {
    let registry = Registry::start_with_auth(USER, PASSWORD);
    let mut layout = Layout::new();
    let image = layout.image(
        "amd64",
        &[LayerBlob::gzip(layer_tar(&[(
            "secret",
            b"only for builders\n",
        )]))],
    );
    layout.name(image, "image");
    registry.push(&layout, "image", "private/app:1");
    let target = format!("{}/private/app:1", registry.addr);
    let host = registry.addr.as_str();
    let home = tempfile::tempdir().unwrap();
    set_env("HOME", Some(home.path()));
    set_env("DOCKER_CONFIG", None);
    set_env("REGISTRY_AUTH_FILE", None);

    assert_auth_required(&target, host);

    let encoded = BASE64_STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let auth_file = write(
        home.path(),
        "auth.json",
        &format!(r#"{{"auths": {{"{host}": {{"auth": "{encoded}"}}}}}}"#),
    );
    set_env("REGISTRY_AUTH_FILE", Some(&auth_file));
    resolve(&target).unwrap();
    set_env("REGISTRY_AUTH_FILE", None);

    let docker_config = home.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    write(
        &docker_config,
        "config.json",
        &format!(
            r#"{{"auths": {{"http://{host}": {{"username": "{USER}", "password": "wrong"}}}}}}"#
        ),
    );
    set_env("DOCKER_CONFIG", Some(&docker_config));
    assert_auth_required(&target, host);

    let helpers = home.path().join("bin");
    std::fs::create_dir(&helpers).unwrap();
    let helper = write(
        &helpers,
        "docker-credential-ossify-test",
        &format!(
            "#!/bin/sh\nread server\necho '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
        ),
    );
    Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    set_env("PATH", Some(Path::new(&path)));
    write(
        &docker_config,
        "config.json",
        &format!(r#"{{"credHelpers": {{"{host}": "ossify-test"}}}}"#),
    );
    resolve(&target).unwrap();
}

fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
