//! The `ossify` command: parses the command line, runs one command, and
//! turns its outcome into messages and an exit code (0 success, 1 failure,
//! 2 usage error, 128 + N when ended by signal N).

use std::process::ExitCode;

use anyhow::Context;
use std::io::Write;
use std::sync::Arc;

use ossify::build;
use ossify::cli::progress::{Downloads, Progress, Stages};
use ossify::cli::remote_config;
use ossify::cli::{
    BuildArgs, CacheCommand, Cli, Command, DiffArgs, LockArgs, PullArgs, UsageError, ValidateArgs,
    VerifyArgs,
};
use ossify::config::{self, Problem, Source};
use ossify::image;
use ossify::lock::LockFile;
use ossify::output::manifest::{ConfigRecord, Manifest};
use ossify::output::{Destination, Stream, Target, TargetWriter};
use ossify::rebuild::Rebuild;
use serde_json::json;

fn main() -> ExitCode {
    if let Err(error) = end_cleanly_on_signals() {
        eprintln!("error: cannot set up signal handling: {error}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::parse_from_any(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let outcome = match cli.command {
        Command::Build(args) => build(&args),
        Command::Validate(args) => validate(&args),
        Command::Pull(args) => pull(&args),
        Command::Cache(command) => cache(&command),
        Command::Lock(args) => lock(&args),
        Command::Verify(args) => verify(&args),
        Command::Diff(args) => diff(&args),
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

/// SIGINT, SIGTERM (how CI runners cancel a job) and SIGHUP all end the
/// process the same way: the temporary files of outputs being written are
/// removed, a commit under way is let finish, and the exit status is
/// 128 + the signal's number, as a shell reports a process it killed.
///
/// The signals are blocked in every thread and taken by one thread that
/// waits for them, so the cleanup runs as ordinary code rather than in a
/// signal handler. It must be called before any other thread starts, for
/// threads inherit the mask. A signal the parent set to be ignored (as
/// `nohup` does SIGHUP) stays ignored: it is discarded, never delivered.
fn end_cleanly_on_signals() -> std::io::Result<()> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the
    // calls only read and write the set given.
    let signals = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        match libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) {
            0 => set,
            error => return Err(std::io::Error::from_raw_os_error(error)),
        }
    };
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: `signals` is an initialised set, `signal` a valid
                // place for the result.
                if unsafe { libc::sigwait(&signals, &mut signal) } == 0 {
                    let _held = ossify::output::atomic::abandon_in_progress();
                    std::process::exit(128 + signal);
                }
            }
        })
        .map(drop)
}

fn read_sources(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Source>> {
    paths
        .iter()
        .map(|path| match remote_config::config_url(path) {
            Some(url) => {
                remote_config::fetch(url).with_context(|| format!("cannot fetch config file {url}"))
            }
            None => Source::read(path)
                .with_context(|| format!("cannot read config file {}", path.display())),
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
    let (loaded, configs) = load_configs(&args.configs, &progress)?;
    if args.dry_run {
        let yaml = serde_saphyr::to_string(&loaded.config)
            .context("cannot print the configuration as YAML")?;
        std::io::stdout().write_all(yaml.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Destination::Directory { dir, .. } = &plan.destination {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    }
    let pins = if args.locked || args.frozen {
        let path = lock_path(args.lockfile.as_deref(), &args.configs)?;
        let lock = LockFile::read(&path)?;
        lock.check_configs(&path, &configs)?;
        Some(lock.pins(&path)?)
    } else {
        None
    };
    let policy = if args.frozen {
        image::Policy::Offline
    } else {
        args.network.policy()
    };
    let resolve = args.images.resolve_options(policy)?;
    let stages = Stages::new(&progress);
    let stage = |message: &str| stages.start(message);
    let request = build::Request {
        formats: &plan.formats,
        destination: &plan.destination,
        source_date_epoch: args.source_date_epoch,
        cache_dir: args.images.registry.cache.cache_dir.clone(),
        boot_image: args.boot_image.clone(),
        disk_size: plan.disk_size,
        root: plan.root,
        initrd_compression: args.initrd_compression,
        decompress_kernel: args.decompress_kernel,
        reuse: !args.no_reuse,
        sbom: sbom_options(args, &progress),
        resolve,
        configs: &configs,
        pins: pins.as_ref(),
        progress: Arc::new(Downloads::new(&progress)),
        stage: &stage,
    };
    let manifest = build::build(&loaded.config, &request)?;
    stages.end();
    if args.json {
        std::io::stdout().write_all(&manifest.to_json())?;
    } else {
        for output in &manifest.outputs {
            progress.info(format!("{}  sha256:{}", output.file, output.sha256));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The SBOM a build writes: LinuxKit's file, dated SOURCE_DATE_EPOCH
/// unless `--sbom-current-time` asks for the clock.
fn sbom_options(args: &BuildArgs, progress: &Progress) -> Option<ossify::assemble::SbomOptions> {
    if args.no_sbom {
        return None;
    }
    let created = if args.sbom_current_time {
        progress.warn("--sbom-current-time dates the SBOM now: the outputs differ on every build");
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(args.source_date_epoch, |d| d.as_secs())
    } else {
        args.source_date_epoch
    };
    Some(ossify::assemble::SbomOptions {
        path: args.sbom_output.clone(),
        created,
    })
}

fn pull(args: &PullArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.verbosity);
    let references = args
        .references
        .iter()
        .map(|r| {
            r.parse()
                .with_context(|| format!("invalid image reference `{r}`"))
        })
        .collect::<anyhow::Result<Vec<image::Reference>>>()?;
    let store = args.images.registry.cache.open()?;
    let resolver = image::Resolver::new(
        store,
        args.images.resolve_options(if args.pull {
            image::Policy::Pull
        } else {
            image::Policy::Cached
        })?,
    )
    .with_progress(Arc::new(Downloads::new(&progress)));
    for resolved in resolver.resolve(&references)?.images {
        println!("{}", resolved.pinned());
    }
    Ok(ExitCode::SUCCESS)
}

fn cache(command: &CacheCommand) -> anyhow::Result<ExitCode> {
    let parse = |r: &str| -> anyhow::Result<image::Reference> {
        r.parse()
            .with_context(|| format!("invalid image reference `{r}`"))
    };
    match command {
        CacheCommand::Ls { cache, json } => {
            let mut images = Vec::new();
            for image in cache.existing()?.list()? {
                match &image.missing {
                    Some(missing) => eprintln!(
                        "warning: {} is incomplete (blob {missing} is missing) and not listed: \
                         `ossify pull {0}` fetches it, `ossify cache rm {0}` forgets it",
                        image.name
                    ),
                    None => images.push(image),
                }
            }
            if *json {
                let list: Vec<_> = images
                    .iter()
                    .map(|i| {
                        json!({
                            "name": i.name,
                            "digest": i.digest.to_string(),
                            "platforms": i.platforms,
                            "size": i.size,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for i in &images {
                    println!(
                        "{}\t{}\t{}\t{}",
                        i.name,
                        i.digest,
                        i.platforms.join(","),
                        i.size
                    );
                }
            }
        }
        CacheCommand::Rm { cache, references } => {
            let store = cache.existing()?;
            let mut missing = Vec::new();
            for r in references {
                if !store.remove(&parse(r)?)? {
                    missing.push(r.as_str());
                }
            }
            if !missing.is_empty() {
                anyhow::bail!("not in the cache: {}", missing.join(", "));
            }
        }
        CacheCommand::Clean { cache, reuse } => {
            let store = cache.existing()?;
            if *reuse {
                store.clean_reuse()?
            } else {
                store.clean()?
            }
        }
        CacheCommand::Import { cache, path } => {
            let names = cache
                .open()?
                .import(path)
                .with_context(|| format!("cannot import {}", path.display()))?;
            for name in names {
                println!("{name}");
            }
        }
        CacheCommand::Export {
            cache,
            reference,
            output,
        } => {
            let target = Target::from_arg(output).map_err(|e| UsageError(e.to_string()))?;
            let reference = parse(reference)?;
            let store = cache.existing()?;
            let mut out = TargetWriter::open(&target)?;
            store.export(&reference, &mut out, output)?;
            out.finish()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads, merges and checks `paths`, printing warnings; fails listing every
/// problem. Returns the configuration and each file as a manifest records
/// it.
fn load_configs(
    paths: &[std::path::PathBuf],
    progress: &Progress,
) -> anyhow::Result<(config::Loaded, Vec<ConfigRecord>)> {
    let sources = read_sources(paths)?;
    let loaded = config::load(&sources).map_err(|problems| {
        anyhow::anyhow!(
            "{problems}\n{} problem(s) in the configuration",
            problems.0.len()
        )
    })?;
    for warning in &loaded.warnings {
        progress.warn(warning.to_string());
    }
    let records = sources
        .into_iter()
        .map(|source| {
            let file = source.path.file_name().map_or_else(
                || source.path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            ConfigRecord::new(file, source.text)
        })
        .collect();
    Ok((loaded, records))
}

/// The lock file `--lockfile` names, else the one beside the last config.
fn lock_path(
    lockfile: Option<&std::path::Path>,
    configs: &[std::path::PathBuf],
) -> Result<std::path::PathBuf, UsageError> {
    match lockfile {
        Some(path) => Ok(path.to_owned()),
        None => ossify::lock::default_path(configs).ok_or_else(|| {
            UsageError(
                "the config comes from standard input or a URL, so there is no lock file beside \
                 it: name one with --lockfile"
                    .into(),
            )
        }),
    }
}

fn lock(args: &LockArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.verbosity);
    let path = match args.lockfile.as_deref() {
        Some(path) if path == std::path::Path::new("-") => None,
        lockfile => Some(lock_path(lockfile, &args.configs)?),
    };
    let (loaded, configs) = load_configs(&args.configs, &progress)?;
    let stages = Stages::new(&progress);
    let stage = |message: &str| stages.start(message);
    let request = build::Request {
        formats: &[],
        destination: &Destination::Output(Target::Stream(Stream::Stdout)),
        source_date_epoch: ossify::cli::DEFAULT_SOURCE_DATE_EPOCH,
        cache_dir: args.images.registry.cache.cache_dir.clone(),
        boot_image: args.boot_image.clone(),
        disk_size: None,
        root: Default::default(),
        initrd_compression: Default::default(),
        decompress_kernel: false,
        reuse: false,
        sbom: None,
        resolve: args.images.resolve_options(args.network.policy())?,
        configs: &configs,
        pins: None,
        progress: Arc::new(Downloads::new(&progress)),
        stage: &stage,
    };
    let images = build::lock(&loaded.config, &request)?;
    stages.end();
    let lock = LockFile::new(&configs, images);
    match path {
        None => std::io::stdout().write_all(&lock.to_json())?,
        Some(path) => {
            write_whole(&path, &lock.to_json())
                .with_context(|| format!("cannot write lock file {}", path.display()))?;
            progress.info(format!(
                "{}: {} image(s) pinned",
                path.display(),
                lock.images.len()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` through a temporary file, so that `path` is
/// either as it was or complete.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = ossify::output::atomic::AtomicFile::create(path)?;
    file.write_all(bytes)?;
    ossify::output::atomic::commit(vec![file.finish()?], None).map_err(std::io::Error::other)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.rebuild {
        return rebuild(args);
    }
    let mut mismatched = 0;
    for path in &args.manifests {
        let manifest = Manifest::read(path)
            .with_context(|| format!("cannot use manifest {}", path.display()))?;
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let mismatches = manifest
            .verify(dir)
            .with_context(|| format!("cannot check the outputs of {}", path.display()))?;
        if args.json {
            let differences: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
            let object = json!({"manifest": path, "identical": mismatches.is_empty(), "differences": differences});
            println!("{}", serde_json::to_string_pretty(&object)?);
        }
        for mismatch in &mismatches {
            eprintln!("{}: {mismatch}", path.display());
        }
        if mismatches.is_empty() {
            eprintln!(
                "{}: {} output(s) match",
                path.display(),
                manifest.outputs.len()
            );
        }
        mismatched += mismatches.len();
    }
    Ok(if mismatched == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `verify --rebuild`: each manifest's build made again in a temporary
/// directory and compared with the files beside it.
fn rebuild(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.verbosity);
    let mut all_identical = true;
    for path in &args.manifests {
        let rebuild = Rebuild::read(path)
            .with_context(|| format!("cannot rebuild from manifest {}", path.display()))?;
        let scratch = tempfile::Builder::new()
            .prefix("ossify-rebuild-")
            .tempdir()
            .context("cannot make a temporary directory for the rebuild")?;
        let destination = rebuild.destination(scratch.path());
        let stages = Stages::new(&progress);
        let stage = |message: &str| stages.start(message);
        let request = rebuild.request(
            &destination,
            args.registry.cache.cache_dir.clone(),
            args.registry.resolve_options(image::Policy::Cached, None)?,
            Arc::new(Downloads::new(&progress)),
            &stage,
        );
        let rebuilt = build::build(&rebuild.config, &request)
            .with_context(|| format!("cannot rebuild {}", path.display()))?;
        stages.end();
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let report = rebuild
            .compare(dir, &rebuilt, scratch.path())
            .with_context(|| format!("cannot compare the rebuild of {}", path.display()))?;
        all_identical &= report.identical();
        if args.json {
            let object =
                json!({"manifest": path, "identical": report.identical(), "report": report});
            println!("{}", serde_json::to_string_pretty(&object)?);
        } else {
            for output in &report.outputs {
                eprintln!("{}: {output}", path.display());
            }
            for input in &report.changed_inputs {
                eprintln!("{}: {input}", path.display());
            }
        }
    }
    Ok(if all_identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `diff A B`: what two builds' manifests record differently.
fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let read = |path: &std::path::Path| {
        Manifest::read(path).with_context(|| format!("cannot use manifest {}", path.display()))
    };
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let changes = ossify::output::diff::diff(&a, &b);
    if args.json {
        let object =
            json!({"a": args.a, "b": args.b, "identical": changes.is_empty(), "changes": changes});
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else if changes.is_empty() {
        println!(
            "{} and {} record the same build",
            args.a.display(),
            args.b.display()
        );
    } else {
        for change in &changes {
            println!("{change}");
        }
        println!(
            "{} difference(s) between {} and {}",
            changes.len(),
            args.a.display(),
            args.b.display()
        );
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(configs: &[std::path::PathBuf]) -> String {
    configs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}
