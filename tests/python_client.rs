//! The standard-library Python client in examples/, written from docs/protocol.md alone, plays a full session
//! (login, keyframe, deltas, thrust, trade, chat, warp, errors) against a real server, and finds its ship again
//! after a restart.

mod common;

use std::process::Command;

use common::*;

fn client(server: &TestServer, token_file: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/orrery_client.py"))
        .args(["--server", &server.addr().to_string(), "--token-file"])
        .arg(token_file)
        .args(extra)
        .output()
        .expect("python3 runs (it is part of the test environment)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ship_line(output: &str) -> String {
    output
        .lines()
        .find(|l| l.starts_with("SHIP "))
        .unwrap_or_else(|| panic!("no SHIP line in:\n{output}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_plays_a_session_and_finds_its_ship_after_a_restart() {
    let mut server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let token = data_dir.join("python-token");
    // The client blocks on its own sockets; the server keeps running on the runtime's other worker.
    let (ok, out) = tokio::task::block_in_place(|| client(&server, &token, &[]));
    assert!(ok, "python client failed:\n{out}");
    let before = ship_line(&out);
    server.stop().await;

    let server = TestServer::start_with(config(data_dir)).await;
    let (ok, out) = tokio::task::block_in_place(|| client(&server, &token, &["--check-only"]));
    assert!(ok, "python check failed:\n{out}");
    assert_eq!(ship_line(&out), before);
}
