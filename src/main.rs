//! The `ossify` command: parses the command line, runs one command, and
//! turns its outcome into messages and an exit code (0 success, 1 failure,
//! 2 usage error).

use std::process::ExitCode;

use anyhow::Context;
use ossify::cli::progress::Progress;
use ossify::cli::{BuildArgs, Cli, Command, UsageError, ValidateArgs};
use ossify::config::{self, Problem, Source};
use ossify::output::Format;
use serde_json::json;

fn main() -> ExitCode {
    let cli = match Cli::parse_from_any(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let outcome = match cli.command {
        Command::Build(args) => build(&args),
        Command::Validate(args) => validate(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn read_sources(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Source>> {
    paths
        .iter()
        .map(|path| {
            Source::read(path)
                .with_context(|| format!("cannot read config file {}", path.display()))
        })
        .collect()
}

fn problem_json(problem: &Problem) -> serde_json::Value {
    json!({
        "file": problem.position.file.display().to_string(),
        "line": problem.position.line,
        "column": problem.position.column,
        "message": problem.message,
    })
}

fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.verbosity);
    let sources = read_sources(&args.configs)?;
    let (problems, warnings) = match config::load(&sources) {
        Ok(loaded) => (Vec::new(), loaded.warnings),
        Err(problems) => (problems.0, Vec::new()),
    };
    for warning in &warnings {
        progress.warn(warning.to_string());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    if args.json {
        let result = json!({
            "valid": problems.is_empty(),
            "problems": problems.iter().map(problem_json).collect::<Vec<_>>(),
            "warnings": warnings.iter().map(problem_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    if problems.is_empty() {
        progress.info(format!("{} valid", describe(&args.configs)));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} problem(s) in {}",
            problems.len(),
            describe(&args.configs)
        );
        Ok(ExitCode::FAILURE)
    }
}

fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.verbosity);
    let plan = args.plan()?;
    let sources = read_sources(&args.configs)?;
    let step = progress.step(format!("reading {}", describe(&args.configs)));
    let loaded = config::load(&sources).map_err(|problems| {
        anyhow::anyhow!(
            "{problems}\n{} problem(s) in the configuration",
            problems.0.len()
        )
    })?;
    step.finish("configuration valid");
    for warning in &loaded.warnings {
        progress.warn(warning.to_string());
    }
    progress.detail(format!(
        "formats: {:?}, destination: {:?}",
        plan.formats, plan.destination
    ));
    let unsupported: Vec<String> = plan
        .formats
        .iter()
        .filter(|f| !Format::supported().contains(f))
        .map(|f| f.to_string())
        .collect();
    anyhow::bail!(
        "format {} not supported yet; this version of ossify checks configurations \
         (`ossify validate`) and knows these formats: {}",
        unsupported.join(", "),
        Format::all_names().join(", ")
    )
}

fn describe(configs: &[std::path::PathBuf]) -> String {
    configs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}
