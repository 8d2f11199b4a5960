//! The example's own binary: the library entry point gives it `serve` with Orrery's flags and the game's own, the
//! game's subcommands beside the generic ones, and a graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tag(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orrery-tag"))
        .args(args)
        .env_remove("TAG_ROOMS")
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_games_flags_and_commands_beside_orrerys() {
    let out = tag(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "Tag across a ring of rooms, on Orrery",
        "serve",
        "rooms",
        "guests",
        "accounts",
        "migrate",
        "admin",
    ] {
        assert!(help.contains(word), "--help mentions {word}:\n{help}");
    }
    let out = tag(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "Run the server",
        "--rooms",
        "TAG_ROOMS",
        "--bind",
        "ORRERY_BIND",
        "--data-dir",
        "--admin-token",
    ] {
        assert!(help.contains(word), "serve --help mentions {word}:\n{help}");
    }
    let out = tag(&["rooms", "--rooms", "3"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 3);
}

#[test]
fn a_flag_out_of_range_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = tag(&["serve", "--tick-hz", "0", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tick-hz must be between 1 and 1000"), "{stderr}");
}

#[test]
fn serve_runs_the_game_with_its_flag_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orrery-tag"))
        .args(["serve", "--bind", "127.0.0.1:0", "--rooms", "3", "--data-dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("a log line").unwrap();
        if let Some(rest) = line.split("listening addr=").nth(1) {
            break rest.trim().parse().unwrap();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());

    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"total\":3"), "three rooms, as --rooms says: {answer}");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server stops on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "a graceful shutdown exits 0: {status:?}");
    let log = log.join().unwrap().join("\n");
    assert!(log.contains("shutdown complete"), "{log}");
}
