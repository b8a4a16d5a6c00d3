//! CI's share of the fuzzing: every input in `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`, and the hand-written seeds, run through the target bodies on
//! stable `cargo test`. A missing or empty corpus fails the test, so it cannot pass vacuously.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The input files of a directory (dotfiles such as `.gitkeep` are not inputs).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{} must exist: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = calyx_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: run scripts/fuzz, or restore the corpus"
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    let seeds = calyx_fuzz::seeds::seeds(target);

    let mut failed = Vec::new();
    let mut run_one = |name: String, bytes: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| run(bytes))).is_err() {
            failed.push(name);
        }
    };
    for path in corpus.iter().chain(&regressions) {
        let bytes = std::fs::read(path).expect("reading an input");
        run_one(path.display().to_string(), &bytes);
    }
    for (name, bytes) in &seeds {
        run_one(format!("seed {name}"), bytes);
    }
    // Straight to stderr, past the test harness's capture, so that CI's log shows the count.
    let _ = writeln!(
        std::io::stderr(),
        "{target}: replayed {} corpus, {} regression and {} seed inputs",
        corpus.len(),
        regressions.len(),
        seeds.len()
    );
    assert!(failed.is_empty(), "{target}: failing inputs: {failed:#?}");
}

#[test]
fn token_request_corpus_replays() {
    replay("token_request");
}

#[test]
fn redirect_uri_corpus_replays() {
    replay("redirect_uri");
}

#[test]
fn scope_corpus_replays() {
    replay("scope");
}

#[test]
fn guard_jwt_corpus_replays() {
    replay("guard_jwt");
}

/// Writes the hand-written seeds to `fuzz/corpus/<target>/seed-*`:
/// `cargo test -p calyx-fuzz --test replay -- --ignored write_seeds`.
#[test]
#[ignore = "writes files; run by hand to refresh the seeds"]
fn write_seeds() {
    for (target, _) in calyx_fuzz::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("creating the corpus directory");
        for (name, bytes) in calyx_fuzz::seeds::seeds(target) {
            std::fs::write(dir.join(name), bytes).expect("writing a seed");
        }
    }
}
