//! Claims about the tree that a reader relies on, checked on every `cargo test` (in the spirit
//! of rust-analyzer's `tidy.rs`): comments and docs cite RFCs and this repository, never
//! documents outside it; ARCHITECTURE.md names only files that exist; the client and the guard
//! depend on no other Calyx crate; the server chooses HTTP status codes only in `error.rs` and
//! the route files; core reads no clock and does no IO; endpoints read typed requests, not
//! parameters by name; route files do not import each other; the store is plain Rust; the
//! docs name only files and tests that exist; OpenAPI schema types have unique names.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file and folder of the repository, build output and installed packages aside.
fn paths() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if ["target", "node_modules", ".git"].contains(&name.as_str()) {
                continue;
            }
            out.push(path.clone());
            if path.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut all = Vec::new();
    walk(&root(), &mut all);
    all
}

/// The text files a person reads: sources, manifests, scripts, docs (not fuzz inputs).
fn text_files() -> Vec<PathBuf> {
    paths()
        .into_iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            ["rs", "md", "toml", "sh", "sql", "mjs", "html", "css"]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
                || p.parent()
                    .is_some_and(|d| d.ends_with("scripts") || d.ends_with("bench"))
        })
        .collect()
}

#[test]
fn nothing_cites_documents_outside_the_repository() {
    // Built from pieces so that this file does not match itself.
    let banned = [
        format!("{} §", "SPEC"),
        format!("{} style", "SPEC"),
        format!("{} doc", "seed"),
    ];
    let mut hits = Vec::new();
    for path in text_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b.as_str())) {
                hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "cite an RFC or a file of this repository instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn architecture_md_names_only_files_that_exist() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let all: Vec<String> = paths()
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut missing = Vec::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        let is_path = !quoted.contains(' ')
            && !quoted.contains("://")
            && !quoted.starts_with('/')
            && (quoted.contains('/') || [".rs", ".md", ".sql"].iter().any(|e| quoted.ends_with(e)));
        if !is_path {
            continue;
        }
        // `templates/*.html`, `fuzz/corpus/<target>/`: the part before the pattern must exist.
        let wanted = quoted
            .split(['*', '<'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        let exists = all
            .iter()
            .any(|f| f == wanted || f.ends_with(&format!("/{wanted}")));
        if !exists {
            missing.push(quoted.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the tree does not have: {missing:?}"
    );
}

#[test]
fn the_client_and_the_guard_depend_on_no_server_side_calyx_crate() {
    // The guard may use calyx-token (JWT claims, DPoP proof checks: protocol code without IO
    // or server state); neither may use what only an issuer has (store, server, core).
    for (krate, allowed) in [("client", &[][..]), ("guard", &["calyx-token"][..])] {
        let manifest =
            std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
        let mut section = String::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
            } else if section == "[dependencies]"
                && line.starts_with("calyx")
                && !allowed.iter().any(|a| {
                    line.starts_with(&format!("{a} ")) || line.starts_with(&format!("{a}."))
                })
            {
                panic!("calyx-{krate} depends on {line}: it must work against any issuer");
            }
        }
    }
}

#[test]
fn status_codes_are_chosen_only_in_error_rs_and_the_route_files() {
    let src = root().join("crates/server/src");
    let mut hits = Vec::new();
    for path in text_files() {
        let Ok(rel) = path.strip_prefix(&src) else {
            continue;
        };
        // The HTML pages' handlers (`pages/`) are route files too: they answer requests.
        if rel == Path::new("error.rs") || rel.starts_with("routes") || rel.starts_with("pages") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("StatusCode::") {
                hits.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "choose the status in error.rs, a route file or a page handler:\n{}",
        hits.join("\n")
    );
}

/// Lines of the `.rs` files below `dir` (relative to the repository) that contain any of
/// `needles`, as `file:line: text`; `#[cfg(test)]` modules count too.
fn lines_containing(dir: &str, needles: &[&str]) -> Vec<String> {
    let dir = root().join(dir);
    let mut hits = Vec::new();
    for path in text_files() {
        if !path.starts_with(&dir) || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if needles.iter().any(|needle| code.contains(needle)) {
                hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn core_reads_no_clock_and_does_no_io() {
    let hits = lines_containing(
        "crates/core/src",
        &[
            "SystemTime",
            "Instant::now",
            "std::fs",
            "std::net",
            "std::io",
            "std::env",
            "std::process",
            "std::thread",
            "tokio",
            "getrandom",
            "rand::",
        ],
    );
    assert!(
        hits.is_empty(),
        "core takes time and randomness as arguments and does no IO:\n{}",
        hits.join("\n")
    );
    let manifest = std::fs::read_to_string(root().join("crates/core/Cargo.toml")).unwrap();
    for io in ["tokio", "sqlx", "reqwest", "axum", "hyper", "rand"] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(io)),
            "calyx-core depends on {io}"
        );
    }
}

#[test]
fn endpoints_read_typed_requests_not_parameters_by_name() {
    let hits = lines_containing("crates/server/src", &["params.get(", ".require(\""]);
    assert!(
        hits.is_empty(),
        "parse into a calyx_core::request type instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_store_is_plain_rust() {
    let hits = lines_containing("crates/store/src", &["macro_rules!"]);
    assert!(
        hits.is_empty(),
        "write the store as code rustfmt and the IDE can see:\n{}",
        hits.join("\n")
    );
}

/// Names defined by the workspace's Rust sources: types (struct, enum, trait, type alias),
/// enum variants, functions, modules, constants and macros.
fn defined_names() -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    for path in text_files() {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        names.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                if [
                    "struct",
                    "enum",
                    "trait",
                    "type",
                    "fn",
                    "mod",
                    "const",
                    "macro_rules!",
                ]
                .contains(&pair[0])
                {
                    names.insert(pair[1].to_owned());
                }
            }
            // An enum variant: a line that is a capitalised name and then `,`, `(` or ` {`.
            let t = line.trim();
            let head: String = t
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if head.starts_with(|c: char| c.is_ascii_uppercase())
                && ["", ",", "(", " {"]
                    .iter()
                    .any(|rest| t[head.len()..].starts_with(rest))
            {
                names.insert(head);
            }
        }
    }
    names
}

#[test]
fn architecture_md_names_only_types_functions_and_macros_that_exist() {
    // Names from outside the workspace that the document may use.
    const EXTERNAL: [&str; 7] = [
        "Debug",
        "SecretString",
        "Executor",
        "Encode",
        "Decode",
        "Any",
        "macro_rules",
    ];
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let defined = defined_names();
    let mut missing = Vec::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        // `a::{B, C}` names B and C inside a.
        let (base, braced) = match quoted.split_once("::{") {
            Some((base, rest)) => (base, rest.trim_end_matches('}')),
            None => (quoted, ""),
        };
        let code_like = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '!')
        };
        if !code_like(base) {
            continue;
        }
        let mut segments: Vec<&str> = base.split("::").collect();
        segments.extend(braced.split(',').map(str::trim).filter(|s| !s.is_empty()));
        // A bare lowercase word (`sid`, `subtle`) is prose; names with a path, a capital or
        // a `!` are claims about the code.
        let is_claim = segments.len() > 1
            || base.ends_with('!')
            || base.starts_with(|c: char| c.is_ascii_uppercase());
        // Other crates' items (`axum::serve`) are theirs to keep.
        let foreign = ["axum", "jsonwebtoken", "sqlx", "hyper", "tokio"].contains(&segments[0]);
        if !is_claim || foreign {
            continue;
        }
        for segment in segments {
            let name = segment.trim_end_matches('!');
            // `CALYX_TEST_DATABASE_URL`, `UPDATE`: environment variables and SQL, not items.
            if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                continue;
            }
            if !defined.contains(name) && !EXTERNAL.contains(&name) {
                missing.push(format!("{quoted} ({name})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the code does not define: {missing:?}"
    );
}

#[test]
fn route_files_do_not_import_each_other() {
    let dir = root().join("crates/server/src/routes");
    let routes: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "mod.rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let needles: Vec<String> = routes
        .iter()
        .flat_map(|r| [format!("super::{r}"), format!("routes::{r}")])
        .collect();
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let hits: Vec<String> = lines_containing("crates/server/src/routes", &needles)
        .into_iter()
        .filter(|hit| !hit.contains("routes/mod.rs:"))
        .collect();
    assert!(
        hits.is_empty(),
        "share through a server module (authn, issue, bearer) instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn docs_name_only_files_and_tests_that_exist() {
    let mut docs = vec![root().join("README.md"), root().join("bench/RESULTS.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        docs.push(entry.unwrap().path());
    }
    let mut missing = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(doc).unwrap();
        // `crates/x/src/y.rs` or `crates/x/tests/y.rs::test_name`.
        for start in text.match_indices("crates/").map(|(i, _)| i) {
            let reference: String = text[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "_/.-:".contains(*c))
                .collect();
            let Some(rs) = reference.find(".rs") else {
                continue;
            };
            let (file, rest) = reference.split_at(rs + 3);
            let Ok(source) = std::fs::read_to_string(root().join(file)) else {
                missing.push(format!("{}: {file}", doc.display()));
                continue;
            };
            if let Some(name) = rest.strip_prefix("::").filter(|n| !n.is_empty()) {
                if !source.contains(&format!("fn {name}(")) {
                    missing.push(format!("{}: {file}::{name}", doc.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name what is not there: {missing:#?}"
    );
}

/// OpenAPI schemas are named after their Rust type, and utoipa keeps only the last of two
/// types with one name: the other's operations would then be documented with the wrong
/// shape (as once happened to `/v2/users` when the management API added its own user type).
#[test]
fn openapi_schema_types_have_unique_names() {
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    for path in text_files() {
        let in_scope = ["crates/server/src", "crates/core/src"]
            .iter()
            .any(|d| path.starts_with(root().join(d)));
        if !in_scope || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut pending = false;
        for line in text.lines() {
            let line = line.trim();
            if line.contains("ToSchema") && line.starts_with("#[") {
                pending = true;
            }
            let decl = line
                .strip_prefix("pub struct ")
                .or_else(|| line.strip_prefix("pub enum "));
            if let (true, Some(decl)) = (pending, decl) {
                pending = false;
                let name: String = decl
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let here = path.display().to_string();
                if let Some(first) = seen.insert(name.clone(), here.clone()) {
                    clashes.push(format!("{name}: {first} and {here}"));
                }
            }
        }
    }
    assert!(
        clashes.is_empty(),
        "schema names defined twice: {clashes:?}"
    );
    assert!(
        seen.len() > 20,
        "the scan finds the schema types ({})",
        seen.len()
    );
}
