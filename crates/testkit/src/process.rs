//! Programs run as child processes: the `calyx` binary ([`Calyx`] for its commands,
//! [`ServeProcess`] for `calyx serve`), and any server that announces its address on its first
//! lines of output ([`Reaped`], [`spawn_announcing`]).

use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::endpoint::Endpoint;

/// A child process killed (and reaped) when dropped, even by a panicking test.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` with its stdout piped and reads lines until one starts with `prefix`: the
/// child, the rest of that line, and every line read up to it. Panics if the output ends
/// first.
pub fn spawn_announcing(cmd: &mut Command, prefix: &str) -> (Reaped, String, String) {
    let mut child = Reaped(cmd.stdout(Stdio::piped()).spawn().unwrap());
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (rest, printed) = read_until_announced(&mut stdout, prefix).unwrap_or_else(|printed| {
        panic!("the process exited before printing {prefix:?}: {printed}")
    });
    (child, rest, printed)
}

/// Reads lines until one starts with `prefix`: the rest of that line and every line read;
/// what was read when the output ends first.
fn read_until_announced(
    stdout: &mut impl BufRead,
    prefix: &str,
) -> Result<(String, String), String> {
    let mut printed = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            return Err(printed);
        }
        printed.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return Ok((rest.to_owned(), printed));
        }
    }
}

/// The `calyx` binary on one database: its commands, and `calyx serve`.
pub struct Calyx {
    bin: PathBuf,
    database_url: String,
    dir: Option<tempfile::TempDir>,
}

impl Calyx {
    /// `bin` (the test's `env!("CARGO_BIN_EXE_calyx")`) on `database_url`.
    pub fn new(bin: impl Into<PathBuf>, database_url: &str) -> Calyx {
        Calyx {
            bin: bin.into(),
            database_url: database_url.to_owned(),
            dir: None,
        }
    }

    /// `bin` in a temporary directory of its own (its working directory), on a SQLite file
    /// there.
    pub fn in_temp_dir(bin: impl Into<PathBuf>) -> Calyx {
        let dir = tempfile::tempdir().unwrap();
        let mut calyx = Calyx::new(bin, &crate::database::sqlite_url(dir.path()));
        calyx.dir = Some(dir);
        calyx
    }

    /// `bin` with a temporary directory of its own (its working directory), on a fresh test
    /// database: PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server, else SQLite there.
    pub async fn on_test_database(bin: impl Into<PathBuf>) -> Calyx {
        let dir = tempfile::tempdir().unwrap();
        let mut calyx = Calyx::new(bin, &crate::database::test_database(dir.path()).await);
        calyx.dir = Some(dir);
        calyx
    }

    /// The database.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The temporary directory of [`Calyx::in_temp_dir`].
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("a Calyx with a directory").path()
    }

    /// A command for the binary on the database, with `RUST_LOG` unset.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("CALYX_DATABASE_URL", &self.database_url)
            .env_remove("RUST_LOG");
        if let Some(dir) = &self.dir {
            c.current_dir(dir.path());
        }
        c
    }

    /// Runs `args` with `input` on its stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed and print one JSON object (`--json` is added).
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.command().args(args).arg("--json").output().unwrap();
        json_of(args, out)
    }

    /// Like [`Calyx::json`], with `input` on stdin (e.g. `--password-stdin`).
    pub fn json_with_input(&self, args: &[&str], input: &str) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        json_of(args, self.run_with_input(&all, input))
    }

    /// Starts `calyx serve` on a free loopback port with `args`, logging warnings to the
    /// test's stderr; returns once it listens.
    pub fn serve(&self, args: &[&str]) -> ServeProcess {
        let mut cmd = self.command();
        cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        self.start(cmd, args, None)
    }

    /// Like [`Calyx::serve`], logging at trace level to the file `log`.
    pub fn serve_logged(&self, args: &[&str], log: &Path) -> ServeProcess {
        let mut cmd = self.command();
        cmd.env("RUST_LOG", "trace")
            .stderr(std::fs::File::create(log).unwrap());
        self.start(cmd, args, Some(log.to_owned()))
    }

    fn start(&self, mut cmd: Command, args: &[&str], log: Option<PathBuf>) -> ServeProcess {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let Ok((addr, printed)) = read_until_announced(&mut stdout, "listening on ") else {
            let log = log.as_ref().map(std::fs::read_to_string);
            panic!("serve exited early: {log:?}");
        };
        // Keep reading (the --dev banner) in the background so the pipe never fills.
        let (tx, more) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        ServeProcess {
            endpoint: Endpoint::new(format!("http://{addr}")),
            child,
            addr,
            printed,
            more,
            log,
        }
    }
}

fn json_of(args: &[&str], out: Output) -> Value {
    assert!(
        out.status.success(),
        "calyx {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "calyx {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A running `calyx serve`, killed when dropped. Dereferences to its [`Endpoint`].
pub struct ServeProcess {
    endpoint: Endpoint,
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: String,
    /// What it printed up to and including the address.
    pub printed: String,
    /// Each line it prints after that.
    pub more: std::sync::mpsc::Receiver<String>,
    /// Its log file, for [`Calyx::serve_logged`].
    pub log: Option<PathBuf>,
}

impl Deref for ServeProcess {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl ServeProcess {
    /// Sends SIGTERM and waits (10 s at most) for an exit with status 0.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        // The shell's builtin kill: no dependency on a kill binary being installed.
        let kill = format!("kill -TERM {pid}");
        assert!(Command::new("sh")
            .args(["-c", &kill])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it outright (SIGKILL: no shutdown, no flush) and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
