//! The command line: LinuxKit's spellings, LinuxKit's defaults, exit codes.

use std::path::PathBuf;
use std::process::Command;

use ossify::cli::{BuildArgs, Cli, Command as Sub};
use ossify::output::Format;
use ossify::output::{Destination, Stream, Target};

fn build_args(line: &[&str]) -> BuildArgs {
    match Cli::parse_from_any(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .command
    {
        Sub::Build(args) => args,
        other => panic!("{other:?}"),
    }
}

/// A line from a LinuxKit CI file, with only the program name changed,
/// means what ossify's own spelling means.
#[test]
fn a_linuxkit_build_line_parses_like_ossify_spelling() {
    let linuxkit = build_args(&[
        "ossify",
        "build",
        "-format",
        "iso-efi",
        "-format",
        "raw-bios",
        "-dir",
        "out",
        "-name",
        "edge",
        "-arch",
        "arm64",
        "-size",
        "2G",
        "-pull",
        "-cache",
        "/tmp/lkcache",
        "-disable-content-trust",
        "-no-sbom",
        "linuxkit.yml",
    ]);
    let ossify = build_args(&[
        "ossify",
        "build",
        "--format",
        "iso-efi",
        "-f",
        "raw-bios",
        "--dir",
        "out",
        "--name",
        "edge",
        "--arch",
        "arm64",
        "--size",
        "2G",
        "--pull",
        "--cache-dir",
        "/tmp/lkcache",
        "--no-sbom",
        "linuxkit.yml",
    ]);
    assert_eq!(linuxkit, ossify);
    assert_eq!(linuxkit.formats, ["iso-efi", "raw-bios"]);
    assert_eq!(linuxkit.dir, Some(PathBuf::from("out")));
    assert_eq!(
        linuxkit.images.registry.cache.cache_dir,
        Some(PathBuf::from("/tmp/lkcache"))
    );
    // Today's linuxkit (cobra) spells them with two dashes, and `--o`.
    let cobra = build_args(&[
        "ossify",
        "build",
        "--format=iso-efi,raw-bios",
        "--dir=out",
        "--name=edge",
        "--arch=arm64",
        "--size=2G",
        "--pull",
        "--cache=/tmp/lkcache",
        "--no-sbom",
        "linuxkit.yml",
    ]);
    assert_eq!(cobra.plan().unwrap(), ossify.plan().unwrap());
    let plan = linuxkit.plan().unwrap();
    assert_eq!(plan.formats, [Format::IsoEfi, Format::RawBios]);
    assert_eq!(
        plan.destination,
        Destination::Directory {
            dir: "out".into(),
            name: "edge".parse().unwrap()
        }
    );
}

#[test]
fn defaults_follow_linuxkit() {
    let plan = build_args(&["ossify", "build", "examples/hello.yml"])
        .plan()
        .unwrap();
    assert_eq!(plan.formats, [Format::KernelInitrd]);
    assert_eq!(
        plan.destination,
        Destination::Directory {
            dir: ".".into(),
            name: "hello".parse().unwrap()
        }
    );
    let stdin = build_args(&["ossify", "build", "base.yml", "-"])
        .plan()
        .unwrap();
    assert_eq!(
        stdin.destination,
        Destination::Directory {
            dir: ".".into(),
            name: "moby".parse().unwrap()
        }
    );
    let to_file = build_args(&["ossify", "build", "-o", "out.tar", "x.yml"])
        .plan()
        .unwrap();
    assert_eq!(to_file.formats, [Format::Tar]);
    assert_eq!(
        to_file.destination,
        Destination::Output(Target::File("out.tar".into()))
    );
    let to_stdout = build_args(&["ossify", "build", "--o", "-", "x.yml"])
        .plan()
        .unwrap();
    assert_eq!(
        to_stdout.destination,
        Destination::Output(Target::Stream(Stream::Stdout))
    );
    assert_eq!(
        build_args(&["ossify", "build", "x.yml"]).source_date_epoch,
        1_492_533_000
    );
}

#[test]
fn contradictory_lines_are_usage_errors() {
    for line in [
        &["ossify", "build", "-o", "-", "--json", "x.yml"][..],
        &["ossify", "build", "-o", "-", "-f", "iso-efi", "x.yml"],
        &["ossify", "build", "-o", "x", "-f", "kernel+initrd", "x.yml"],
        &["ossify", "build", "-f", "iso-uefi", "x.yml"],
    ] {
        assert!(build_args(line).plan().is_err(), "{line:?}");
    }
    for line in [
        &["ossify", "build", "-o", "x.tar", "--dir", "d", "x.yml"][..],
        &["ossify", "build", "--pull", "--offline", "x.yml"],
        &["ossify", "build"],
    ] {
        assert!(Cli::parse_from_any(line).is_err(), "{line:?}");
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn exit_codes_are_0_1_and_2() {
    assert_eq!(
        run(&["validate", "testdata/valid/base.yml"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["validate", "testdata/invalid/syntax.yml"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(run(&["validate"]).status.code(), Some(2));
    assert_eq!(
        run(&["build", "--frobnicate", "x.yml"]).status.code(),
        Some(2)
    );
    let usage = run(&["build", "-o", "-", "--json", "testdata/valid/base.yml"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--json"));
}

#[test]
fn build_says_which_formats_exist_instead_of_half_building() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&[
        "build",
        "--dir",
        dir.path().to_str().unwrap(),
        "-f",
        "rpi3",
        "testdata/valid/base.yml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("format rpi3 is not supported yet") && stderr.contains("kernel+initrd"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn build_reports_config_problems_with_positions() {
    let output = run(&["build", "testdata/invalid/semantics.yml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("testdata/invalid/semantics.yml:19:9: "),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_commands() {
    let help = run(&["build", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "--format",
        "--source-date-epoch",
        "SOURCE_DATE_EPOCH",
        "kernel+initrd",
        "stdin",
    ] {
        assert!(text.contains(expected), "build --help lacks {expected}");
    }
}

/// LinuxKit's persistent flags go before the subcommand, and its `-v N`
/// is a logging level; both mean what ossify's own spellings mean.
#[test]
fn linuxkit_persistent_flags_and_logging_levels_parse() {
    let linuxkit = build_args(&[
        "linuxkit",
        "--cache",
        "/c",
        "--mirror",
        "docker.io=http://m",
        "--cert-file",
        "ca.pem",
        "-v",
        "2",
        "build",
        "-format",
        "tar",
        "x.yml",
    ]);
    let ossify = build_args(&[
        "ossify",
        "build",
        "--cache-dir",
        "/c",
        "--mirror",
        "docker.io=http://m",
        "--ca-cert",
        "ca.pem",
        "--verbose",
        "-f",
        "tar",
        "x.yml",
    ]);
    assert_eq!(linuxkit, ossify);
    assert_eq!(linuxkit.configs, [PathBuf::from("x.yml")]);
    let quiet = build_args(&["linuxkit", "build", "-v", "0", "x.yml"]);
    assert!(quiet.verbosity.quiet && !quiet.verbosity.verbose);
    assert_eq!(quiet.configs, [PathBuf::from("x.yml")]);
    let info = build_args(&["linuxkit", "-v", "1", "build", "x.yml"]);
    assert!(!info.verbosity.quiet && !info.verbosity.verbose);
    let plain = build_args(&["ossify", "build", "-v", "x.yml"]);
    assert!(plain.verbosity.verbose);
    assert_eq!(plain.configs, [PathBuf::from("x.yml")]);
}

#[test]
fn a_bare_size_is_gib_as_in_linuxkit() {
    let size = |given: &str| {
        build_args(&["linuxkit", "build", "-size", given, "x.yml"])
            .plan()
            .unwrap()
            .disk_size
    };
    assert_eq!(size("2"), Some(2 << 30));
    assert_eq!(size("1024M"), Some(1 << 30));
    assert_eq!(size("3G"), Some(3 << 30));
}

#[test]
fn docker_and_input_tar_are_refused_with_what_to_do_instead() {
    for (line, says) in [
        (
            &["linuxkit", "build", "-docker", "x.yml"][..],
            "ossify cache import",
        ),
        (
            &["linuxkit", "build", "--input-tar", "old.tar", "x.yml"],
            "drop --input-tar",
        ),
    ] {
        let error = build_args(line).plan().unwrap_err();
        assert!(error.0.contains(says), "{line:?}: {error}");
        let output = run(&line[1..]);
        assert_eq!(output.status.code(), Some(2), "{line:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(says));
    }
}

/// `--dry-run` prints the merged configuration, which is itself a valid
/// configuration, and touches no cache.
#[test]
fn dry_run_prints_the_merged_config_and_reads_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let output = run(&[
        "build",
        "--dry-run",
        "--offline",
        "--cache-dir",
        cache.to_str().unwrap(),
        "testdata/valid/base.yml",
        "testdata/valid/extra.yml",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(!cache.exists(), "the cache was created");
    let merged = String::from_utf8(output.stdout).unwrap();
    for merged_from_both in ["linuxkit/kernel:6.6.13", "linuxkit/getty:v1.0.0"] {
        assert!(merged.contains(merged_from_both), "{merged}");
    }
    let printed = dir.path().join("printed.yml");
    std::fs::write(&printed, &merged).unwrap();
    let again = run(&["build", "--dry-run", printed.to_str().unwrap()]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), merged);
}

/// Serves `responses` on 127.0.0.1, one per connection, and returns the
/// base URL.
fn serve(responses: Vec<String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (response, stream) in responses.into_iter().zip(listener.incoming()) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).unwrap();
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    url
}

#[test]
fn a_config_named_by_url_is_fetched() {
    let text = std::fs::read_to_string("testdata/valid/base.yml").unwrap();
    let ok = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let base = serve(vec![ok, missing.to_owned()]);
    let local = run(&["build", "--dry-run", "testdata/valid/base.yml"]);
    let remote = run(&["build", "--dry-run", &format!("{base}/configs/base.yml")]);
    assert!(remote.status.success(), "{remote:?}");
    assert_eq!(remote.stdout, local.stdout);
    let url = format!("{base}/configs/gone.yml");
    let failed = run(&["build", "--dry-run", &url]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!("cannot fetch config file {url}")) && stderr.contains("404"),
        "{stderr}"
    );
}
