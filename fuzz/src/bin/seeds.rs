//! Writes the synthesised seeds into each target's corpus:
//! `seeds DIR` writes `DIR/TARGET/corpus/seed-NAME`.

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seeds DIR (e.g. testdata/fuzz)");
        std::process::exit(2);
    };
    for seed in ossify_fuzz::seeds::all() {
        let corpus = dir.join(seed.target).join("corpus");
        let path = corpus.join(format!("seed-{}", seed.name));
        std::fs::create_dir_all(&corpus)
            .and_then(|()| std::fs::write(&path, &seed.bytes))
            .unwrap_or_else(|error| {
                eprintln!("seeds: cannot write {}: {error}", path.display());
                std::process::exit(1);
            });
    }
}
