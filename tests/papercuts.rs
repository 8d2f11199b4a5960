//! Small things a newcomer trips over: colour codes in log files, `/metrics` without HELP lines, a data directory
//! that does not exist yet, and the load tester's answer to a server that does not allow spawn choice.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real binary serving a small galaxy, its log (stderr and stdout) going to `log`, with NO_COLOR unset.
fn serve_logging_to(log: &Path, data_dir: &Path, extra: &[&str]) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_orrery"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--regions",
            "1",
            "--sectors-per-region",
            "3",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("NO_COLOR")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// Waits for the `listening` line in the log; the address.
fn listening(log: &Path, child: &mut Child) -> std::net::SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening addr=").nth(1) {
            return rest
                .lines()
                .next()
                .unwrap()
                .trim()
                .parse()
                .expect("an address after addr=");
        }
        assert!(child.try_wait().unwrap().is_none(), "the server exited early:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the server did not log `listening`:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a graceful shutdown exits 0: {status:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the server did not stop on SIGTERM");
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    answer
}

/// A server whose log goes to a file writes no ANSI escape codes; its data directory is created with its missing
/// parents; and every series of `/metrics` has a `# HELP` line, the key ones with the expected text.
#[test]
fn a_log_file_has_no_colour_and_every_metric_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let data = dir.path().join("deep").join("er").join("data");
    let mut child = serve_logging_to(&log, &data, &[]);
    let addr = listening(&log, &mut child);
    let metrics = get(addr, "/metrics");
    terminate(&mut child);

    let text = std::fs::read(&log).unwrap();
    assert!(!text.is_empty());
    assert!(
        !text.contains(&0x1b),
        "no ESC bytes in a log file:\n{}",
        String::from_utf8_lossy(&text)
    );
    assert!(data.join("orrery.db").exists());

    let help: std::collections::BTreeMap<&str, &str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP ")?.split_once(' '))
        .collect();
    let typed: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(typed.len() >= 10, "a running server has series: {metrics}");
    for name in &typed {
        assert!(
            help.get(name).is_some_and(|h| !h.trim().is_empty()),
            "{name} has a HELP line:\n{metrics}"
        );
    }
    for (name, words) in [
        ("orrery_sessions_connected", "Live WebSocket sessions"),
        ("orrery_ticks_total", "Sector ticks"),
        ("orrery_tick_duration_seconds", "one sector tick"),
        ("orrery_deltas_total", "Deltas produced"),
        ("orrery_bytes_sent_total", "Bytes"),
        ("orrery_storage_available", "store takes writes"),
    ] {
        let line = help
            .get(name)
            .unwrap_or_else(|| panic!("{name} is described:\n{metrics}"));
        assert!(line.contains(words), "{name}: {line}");
    }
}

/// The load tester, refused spawn choice by the server, names the flag the server needs.
#[test]
fn the_load_tester_names_allow_spawn_choice() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut child = serve_logging_to(&log, &dir.path().join("data"), &["--guest-logins-per-minute", "0"]);
    let addr = listening(&log, &mut child);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios/smoke.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_orrery"))
        .arg("loadtest")
        .arg("--scenario")
        .arg(&scenario)
        .args(["--server", &addr.to_string(), "--no-progress", "--idle-wait-secs", "0"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    terminate(&mut child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--allow-spawn-choice"), "{stderr}");
    assert!(!stderr.contains("login_http_400"), "{stderr}");
}

/// The embedded store opens a file whose directories do not exist yet, and answers a path it cannot create with
/// an error, not a panic.
#[tokio::test]
async fn the_sqlite_store_creates_missing_parent_directories() {
    use orrery_actors::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a").join("b").join("game.db");
    let store = SqliteStore::open(&file).await.expect("opens under missing directories");
    drop(store);
    assert!(file.exists());

    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = SqliteStore::open(&blocker.join("sub").join("game.db"))
        .await
        .expect_err("cannot create under a file");
    assert!(err.to_string().contains("creating the directory"), "{err}");
}
