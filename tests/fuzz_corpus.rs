//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`) and crash reproducers (`fuzz/regressions/<target>/`)
//! through the fuzz targets' own bodies, on stable and without libfuzzer, so CI catches a regression on any input
//! the fuzzers once found interesting. The bodies live in `fuzz/src/bodies.rs`, shared with the fuzz crate.

#[path = "../fuzz/src/bodies.rs"]
mod bodies;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The regular files of a folder, sorted (an absent folder has none).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file of `dir` through `body`, naming the file that panicked; returns how many ran.
fn replay(target: &str, body: bodies::Body, dir: &Path) -> usize {
    let files = files_in(dir);
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!(
                "fuzz target {target} panicked on {} ({} bytes); reproduce with \
                 `cd fuzz && cargo +nightly fuzz run {target} {}`",
                path.display(),
                data.len(),
                path.display()
            );
        }
    }
    files.len()
}

#[test]
fn every_target_has_a_corpus_and_none_of_it_panics() {
    let root = fuzz_dir();
    for &(target, body) in bodies::TARGETS {
        let corpus = root.join("corpus").join(target);
        let ran = replay(target, body, &corpus);
        assert!(
            ran > 0,
            "the corpus of {target} ({}) is empty or missing",
            corpus.display()
        );
        replay(target, body, &root.join("regressions").join(target));
    }
}

#[test]
fn every_corpus_folder_is_a_target() {
    // A corpus folder nobody replays (a renamed target) would be dead weight that looks like coverage.
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("read fuzz folder entry");
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                bodies::TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{kind}/{name} names no target in fuzz/src/bodies.rs"
            );
        }
    }
}

#[test]
fn a_generated_galaxy_loads_through_the_galaxy_target_input_format() {
    // The seed format of `galaxy_content` reaches the success path (and its round-trip checks), not only errors.
    use orrery_engine::galaxy::{generate, ContentFormat, Galaxy, GenerateParams};
    let galaxy = generate(GenerateParams {
        seed: 7,
        regions: 2,
        sectors_per_region: 3,
    });
    for format in [ContentFormat::Toml, ContentFormat::Json] {
        let files = galaxy.to_files(format);
        let input = bodies::galaxy_input_from_files(&files).expect("the target's file names cover a small galaxy");
        let parsed = bodies::galaxy_files_from_input(&input);
        assert_eq!(parsed.len(), files.len());
        assert_eq!(Galaxy::from_files_all(parsed).expect("generated content loads"), galaxy);
        bodies::galaxy_content(&input);
    }
}

/// Writes hand-made seeds into `fuzz/corpus/<target>/seed-*` (run it before a first fuzzing session, or to
/// reseed: `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`; then `cargo fuzz cmin` as usual).
#[test]
#[ignore = "writes files into fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    use orrery_engine::galaxy::{generate, Commodity, ContentFormat, GenerateParams};
    use orrery_engine::spacetrade::{Command, Side};
    use orrery_protocol::codec::{client_to_bin, client_to_json};
    use orrery_protocol::messages::{ChatChannel, ClientFrame, ClientMessage};

    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create corpus folder");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    };

    let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let frames: Vec<ClientFrame<Command>> = vec![
        ClientFrame::new(None, ClientMessage::Ping),
        ClientFrame::new(Some(1), ClientMessage::Resync),
        ClientFrame::new(
            Some(2),
            ClientMessage::Chat {
                channel: ChatChannel::Sector,
                text: "hello".into(),
            },
        ),
        ClientFrame::new(
            None,
            ClientMessage::Chat {
                channel: ChatChannel::Global,
                text: "h\u{e9}llo \"w\"\n".into(),
            },
        ),
        ClientFrame::new(Some(3), ClientMessage::Game(Command::Thrust { vx: 12.5, vy: -3.0 })),
        ClientFrame::new(Some(u64::MAX), ClientMessage::Game(Command::Warp { to: id })),
        ClientFrame::new(
            Some(4),
            ClientMessage::Game(Command::Trade {
                station: id,
                commodity: Commodity::LuxuryGoods,
                side: Side::Sell,
                qty: 7,
                key: None,
            }),
        ),
    ];
    for (i, f) in frames.iter().enumerate() {
        write("client_json", &i.to_string(), client_to_json(f).as_bytes());
        write("client_bin", &i.to_string(), &client_to_bin(f));
    }

    // ws_frames: [head (limit, chunking), cut a, cut b] then masked client frames.
    let masked = |first: u8, payload: &[u8]| {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    };
    let json = client_to_json(&frames[4]);
    let bin = client_to_bin(&frames[6]);
    let streams: Vec<(&str, Vec<u8>)> = vec![
        ("text", masked(0x81, json.as_bytes())),
        ("binary", masked(0x82, &bin)),
        (
            "fragmented",
            [
                masked(0x01, b"{\"type\":"),
                masked(0x89, b"hi"),
                masked(0x80, b"\"ping\"}"),
            ]
            .concat(),
        ),
        (
            "control",
            [
                masked(0x89, b""),
                masked(0x8a, b"x"),
                masked(0x88, &1000u16.to_be_bytes()),
            ]
            .concat(),
        ),
        ("long16", masked(0x82, &[7u8; 300])),
        // A 64-bit length field holding a small length (legal, if not minimal): keeps the seed under 4 KiB.
        (
            "long64",
            [&[0x82u8, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4][..], b"hello"].concat(),
        ),
    ];
    for (name, stream) in streams {
        for head in [6u8, 5 | 8, 6 | 24, 3 | 16] {
            let mut input = vec![head, 100, 60];
            input.extend_from_slice(&stream);
            write("ws_frames", &format!("{name}-{head}"), &input);
        }
    }

    // Generated galaxies (`orrery galaxy generate --regions 1 --sectors-per-region 3` and smaller), JSON minified
    // so that each seed stays within the 4 KiB `-max_len` the galaxy target runs with.
    for (i, params) in [(1u64, 1u32, 3u32), (7, 1, 1), (11, 2, 1)].into_iter().enumerate() {
        let galaxy = generate(GenerateParams {
            seed: params.0,
            regions: params.1,
            sectors_per_region: params.2,
        });
        for format in [ContentFormat::Toml, ContentFormat::Json] {
            let mut files = galaxy.to_files(format);
            if format == ContentFormat::Json {
                for (_, text) in &mut files {
                    let value: serde_json::Value = serde_json::from_str(text).expect("written JSON parses");
                    *text = value.to_string();
                }
            }
            let input = bodies::galaxy_input_from_files(&files).expect("seed input");
            write("galaxy_content", &format!("{i}-{}", format.extension()), &input);
        }
    }

    let guest_bodies: [&[u8]; 7] = [
        b"",
        b" \n",
        b"{}",
        b"{\"name\":\"Ada\"}",
        b"{\"name\":\"  Grace Hopper  \",\"sector\":\"01234567-89ab-cdef-0123-456789abcdef\"}",
        b"{\"name\":null}",
        b"{\"name\":\"\\u00e9\\t\"}",
    ];
    for (i, body) in guest_bodies.iter().enumerate() {
        write("http_guest_body", &i.to_string(), body);
    }
}
