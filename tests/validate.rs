//! `ossify validate` over hand-written corpora and LinuxKit's own configs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ossify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("ossify runs")
}

fn validate(files: &[&Path]) -> Output {
    let mut args = vec!["validate", "--json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    ossify(&args)
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn problems(output: &Output) -> Vec<(u64, u64, String)> {
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    result["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap(),
                p["column"].as_u64().unwrap(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_valid_config_validates_alone_and_merged() {
    let files = yml_files(Path::new("testdata/valid"));
    assert!(files.len() >= 4);
    for file in &files {
        let output = validate(&[file]);
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(problems(&output).is_empty());
    }
    let merged = validate(&[
        Path::new("testdata/valid/base.yml"),
        Path::new("testdata/valid/extra.yml"),
    ]);
    assert!(merged.status.success());
}

/// Each invalid file lists the problems it must produce as
/// `# expect: LINE:COL: text` comments; exactly those must be reported.
#[test]
fn every_invalid_config_reports_each_expected_problem_and_no_other() {
    let files = yml_files(Path::new("testdata/invalid"));
    assert!(files.len() >= 4);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut expected: Vec<(u64, u64, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| {
                let mut parts = e.splitn(3, ':');
                let line = parts.next().unwrap().parse().unwrap();
                let column = parts.next().unwrap().parse().unwrap();
                (line, column, parts.next().unwrap().trim().to_owned())
            })
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no expectations",
            file.display()
        );
        let output = validate(&[file]);
        assert_eq!(output.status.code(), Some(1), "{}", file.display());
        let mut found = problems(&output);
        expected.sort();
        found.sort();
        assert_eq!(
            found.len(),
            expected.len(),
            "{}: {found:#?}",
            file.display()
        );
        for ((line, column, text), (fline, fcolumn, message)) in expected.iter().zip(&found) {
            assert_eq!(
                (line, column),
                (fline, fcolumn),
                "{}: {message}",
                file.display()
            );
            assert!(
                message.contains(text.as_str()),
                "{}:{line}: `{message}` lacks `{text}`",
                file.display()
            );
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = &expected[0];
        let prefix = format!("{}:{}:{}: ", file.display(), first.0, first.1);
        assert!(
            stderr.contains(&prefix),
            "stderr names file:line:col: {stderr}"
        );
    }
}

#[test]
fn a_service_name_repeated_in_a_later_file_is_an_error_there() {
    let output = validate(&[
        Path::new("testdata/valid/extra.yml"),
        Path::new("testdata/merge/duplicate-service.yml"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("testdata/merge/duplicate-service.yml:3:5: duplicate services name `getty`: first defined at testdata/valid/extra.yml:"),
        "{stderr}"
    );
}

/// The corpus README: everything validates except three files, which fail
/// for the reasons it gives.
#[test]
fn linuxkit_corpus_gives_the_results_its_readme_states() {
    let corpus = Path::new("testdata/linuxkit-corpus");
    let expected_failures: BTreeMap<PathBuf, (u64, &str)> = [
        (
            corpus.join("test/cases/000_build/091_validate_linuxkit_yaml/linuxkit.yml"),
            (1, "unknown key `unknownField`"),
        ),
        (corpus.join("examples/static-ip.yml"), (28, "invalid YAML")),
        (
            corpus.join("test/cases/000_build/070_volumes/002_rw_on_ro/test.yml"),
            (8, "writes into volume `vola`, which is `readonly: true`"),
        ),
    ]
    .into_iter()
    .collect();
    let files = yml_files(corpus);
    assert!(files.len() > 150, "the corpus is all there");
    for file in &files {
        let output = validate(&[file]);
        match expected_failures.get(file) {
            Some((line, text)) => {
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{} must fail",
                    file.display()
                );
                let found = problems(&output);
                assert_eq!(found.len(), 1, "{found:?}");
                assert_eq!(found[0].0, *line);
                assert!(found[0].2.contains(text), "{found:?}");
            }
            None => assert!(
                output.status.success(),
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

/// LinuxKit's namespace tests build `common.yml` together with each
/// `test.yml` below it; every such pair validates.
#[test]
fn linuxkit_corpus_common_files_validate_with_each_test() {
    let files = yml_files(Path::new("testdata/linuxkit-corpus/test"));
    let mut checked = 0;
    for common in files.iter().filter(|f| f.ends_with("common.yml")) {
        let dir = common.parent().unwrap();
        for test in files
            .iter()
            .filter(|f| f.starts_with(dir) && f.ends_with("test.yml"))
        {
            let output = validate(&[common, test]);
            assert!(
                output.status.success(),
                "{}: {}",
                test.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked} pairs checked");
}

/// Other directories hold separate builds (a build and its `--input-tar`
/// rebuild): merged, they repeat service names, which LinuxKit refuses too.
#[test]
fn linuxkit_corpus_separate_builds_clash_when_merged() {
    let dir = Path::new("testdata/linuxkit-corpus/test/cases/000_build/060_input_tar/000_build");
    let output = validate(&[&dir.join("test1.yml"), &dir.join("test2.yml")]);
    assert_eq!(output.status.code(), Some(1));
    let found = problems(&output);
    assert!(
        found
            .iter()
            .all(|p| p.2.starts_with("duplicate services name")),
        "{found:?}"
    );
    assert_eq!(found.len(), 2);
}

#[test]
fn validate_warns_that_trust_is_ignored() {
    let output = ossify(&["validate", "testdata/valid/every-key.yml"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("every-key.yml:") && stderr.contains("`trust` is ignored"),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let output = ossify(&["validate", "testdata/no-such.yml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("cannot read config file testdata/no-such.yml")
    );
}

/// `ossify validate ARGS`, its standard input read from `stdin`.
fn validate_from(args: &[&str], stdin: std::fs::File) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ossify"))
        .arg("validate")
        .args(args)
        .stdin(stdin)
        .output()
        .expect("ossify runs")
}

#[test]
fn endless_config_input_stops_at_the_size_limit() {
    for (args, name) in [(["/dev/zero"], "/dev/zero"), (["-"], "-")] {
        let started = std::time::Instant::now();
        let output = validate_from(&args, std::fs::File::open("/dev/zero").unwrap());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot read config file {name}: it holds more than 16777216 bytes (16 MiB)"
            )),
            "{name}: {stderr}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{name}"
        );
    }
}

#[test]
fn a_config_from_a_pipe_or_a_fifo_is_read() {
    use std::io::Write;
    let config = b"onboot:\n  - name: a\n    image: a:1\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(config).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "stdin: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.yml");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `name` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, config).unwrap())
    };
    let output = ossify(&["validate", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "FIFO: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
