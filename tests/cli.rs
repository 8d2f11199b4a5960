//! The `orrery` CLI: galaxy generation is deterministic, validation names the file and entity at fault, and the
//! server refuses to start on invalid content.

mod common;

use std::process::Command;

use common::*;

fn orrery(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orrery")).args(args).output().unwrap()
}

fn read_all(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push((
            entry.strip_prefix(dir).unwrap().display().to_string(),
            std::fs::read_to_string(&entry).unwrap(),
        ));
    }
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn generate_is_deterministic_and_validate_accepts_it() {
    let (a, b) = (temp_dir(), temp_dir());
    for dir in [&a, &b] {
        let out = orrery(&[
            "galaxy",
            "generate",
            "--seed",
            "11",
            "--regions",
            "2",
            "--sectors-per-region",
            "5",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(read_all(&a), read_all(&b), "same seed, same files");
    let out = orrery(&["galaxy", "validate", a.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid galaxy"));
}

#[tokio::test]
async fn invalid_content_is_refused_with_the_file_and_entity_named() {
    let dir = temp_dir();
    let out = orrery(&[
        "galaxy",
        "generate",
        "--seed",
        "3",
        "--regions",
        "1",
        "--sectors-per-region",
        "3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let region = walk(&dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("02-")))
        .unwrap();
    let text = std::fs::read_to_string(&region).unwrap();
    let start = text.find("to = \"").unwrap() + 6;
    let broken = format!(
        "{}00000000-0000-4000-8000-000000000000{}",
        &text[..start],
        &text[start + 36..]
    );
    std::fs::write(&region, broken).unwrap();

    let out = orrery(&["galaxy", "validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    let file = region.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(&*file), "names the file: {msg}");
    assert!(msg.contains("sector \""), "names the entity: {msg}");
    assert!(msg.contains("points at no sector"), "{msg}");

    let mut cfg = config(temp_dir());
    cfg.galaxy = orrery_api::GalaxySource::Dir(dir);
    let err = orrery_api::start(cfg).await.expect_err("the server does not start");
    assert!(format!("{err:#}").contains("points at no sector"), "{err:#}");
}

#[test]
fn every_command_explains_itself() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["galaxy", "generate", "--help"],
        &["galaxy", "validate", "--help"],
        &["migrate", "status", "--help"],
        &["migrate", "up", "--help"],
    ] {
        let out = orrery(args);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    }
    let out = orrery(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    // The game's own description of `serve` (`Program::serve_about`).
    assert!(help.contains("Run the space-trade world"), "{help}");
    for flag in [
        "--bind",
        "--data-dir",
        "--database-url",
        "--tick-hz",
        "--snapshot-interval",
        "--max-msgs-per-sec",
        "ORRERY_BIND",
    ] {
        assert!(help.contains(flag), "serve --help mentions {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_purge_deletes_guests_that_never_came_back() {
    let data_dir = temp_dir();
    let mut server = TestServer::start_with(config(data_dir.clone())).await;
    let (token, _) = server.guest("Gone").await;
    server.stop().await;
    let dir = data_dir.to_str().unwrap();
    let kept = orrery(&["guests", "purge", "--older-than-days", "1", "--data-dir", dir]);
    assert!(kept.status.success());
    assert!(String::from_utf8_lossy(&kept.stderr).contains("purged 0 guests"));
    let purged = orrery(&["guests", "purge", "--older-than-days", "0", "--data-dir", dir]);
    assert!(purged.status.success());
    assert!(
        String::from_utf8_lossy(&purged.stderr).contains("purged 1 guests"),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    let server = TestServer::start_with(config(data_dir)).await;
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, raw::upgrade_request(&token, "").as_bytes())
        .await
        .unwrap();
    let (head, _) = raw::read_head(&mut s).await;
    assert!(
        head.starts_with("HTTP/1.1 401"),
        "the purged guest's token no longer works: {head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_lists_and_applies_module_migrations_on_both_backends() {
    let db = orrery_actors::store::postgres::ScratchDatabase::create(&orrery_actors::store::postgres::test_admin_url())
        .await
        .expect("PostgreSQL for the tests (scripts/test.sh starts it)");
    let data_dir = temp_dir();
    let embedded = ["--data-dir", data_dir.to_str().unwrap()];
    let postgres = ["--database-url", db.url.as_str()];
    for store in [&embedded, &postgres] {
        let mut up = vec!["migrate", "up"];
        up.extend_from_slice(&store[..]);
        let out = orrery(&up);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("applied 7 migrations"), "{text}");
        let mut status = vec!["migrate", "status"];
        status.extend_from_slice(&store[..]);
        let out = orrery(&status);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        for module in ["identity", "world", "economy", "audit"] {
            assert!(
                text.lines().any(|l| l.starts_with(module) && l.contains("applied")),
                "{module} applied: {text}"
            );
        }
        assert!(!text.contains("pending"), "{text}");
    }
}
