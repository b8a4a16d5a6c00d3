//! The README's "Manage it" examples, run as written against `calyx serve --dev`: the
//! section's shell block goes to bash with only the server's address and the admin client's
//! printed id and secret filled in, and every `curl` must get a 2xx.

use calyx_testkit::Calyx;

mod common;
use common::*;

/// The first ```sh block after the heading `heading` in the README.
fn shell_block(heading: &str) -> String {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has {heading}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("a sh block")
        .1
        .split_once("\n```")
        .expect("a closed block")
        .0;
    block.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manage_it_examples_run_as_written() {
    let calyx = Calyx::in_temp_dir(BIN);
    let node = calyx.serve(&["--dev"]);
    let block = shell_block("## Manage it");

    // The block's first command is the one that prints the admin client; the test runs it
    // itself to fill in the next line's placeholders, as a reader copies them.
    let (create, rest) = block.split_once('\n').unwrap();
    assert!(create.starts_with("calyx admin create-client"), "{create}");
    let command = create.split('#').next().unwrap();
    let words = shlex::split(command).expect("a shell command line");
    let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    let printed = calyx.json(&args[..args.len() - 1]);
    let script = rest
        .replace("<client_id>", printed["client_id"].as_str().unwrap())
        .replace(
            "<client_secret>",
            printed["client_secret"].as_str().unwrap(),
        )
        .replace("http://127.0.0.1:8080", &node.base);

    // Every curl must succeed: a failing one stops the script.
    let prelude = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; echo; }\n";
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README block failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "\"name\":\"Globex\"",
        "\"items\":[",
        "\"disabled\":true",
        "\"disabled\":false",
        "\"client_secret\":",
        "\"secret\":",
        "client.disabled",
        "\"next_kid\":",
    ] {
        assert!(stdout.contains(expected), "{expected} in:\n{stdout}");
    }
}

/// The README's "Faces for people" commands, run as written (with `calyx` on the PATH and the
/// test's database): afterwards alice signs in to the console and globex-dev to the portal,
/// whose guide shows the entitled API, and the pages carry the brand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_faces_for_people_examples_run_as_written() {
    let calyx = Calyx::in_temp_dir(BIN);
    let script = shell_block("## Faces for people");
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .env("PATH", path)
        .env("CALYX_DATABASE_URL", calyx.database_url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README block failed:\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let node = calyx.serve(&[]);
    for (username, password, landing) in [
        ("alice", "a long operator password", "/console/"),
        ("globex-dev", "a long developer password", "/developers/"),
    ] {
        let b = calyx_testkit::Browser::new();
        let page = b
            .open(&format!("{}/signin?next={landing}", node.base))
            .await;
        assert!(page.html.contains("Acme Giving"), "{}", page.html);
        let resp = b
            .http
            .post(format!("{}/signin", node.base))
            .form(&[
                ("csrf", page.field("csrf").as_str()),
                ("next", landing),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{username}");
        let page = b.open(&format!("{}{landing}", node.base)).await;
        assert_eq!(page.status, 200, "{username}: {}", page.html);
        if username == "globex-dev" {
            let docs = b.open(&format!("{}/developers/docs", node.base)).await;
            assert!(
                docs.html.contains("https://api.acme.example/"),
                "{}",
                docs.html
            );
            assert!(docs.html.contains("read:orders"), "{}", docs.html);
        }
    }
}
