//! The body of every fuzz target, one function per target, each taking the raw fuzz input.
//!
//! This one file is compiled twice: by the fuzz crate (`fuzz/src/lib.rs`, for `cargo +nightly fuzz run`) and by
//! the corpus replay test of the root package (`tests/fuzz_corpus.rs`, `#[path]`-included, on stable in CI). So it
//! may only name crates that both have: `orrery_actors`, `orrery_protocol`, `orrery_engine`, `orrery_api` and std.
//!
//! Besides "never panics", each body checks a property that holds for every input the code accepts; a failed
//! `assert!` is a finding like any panic.

use orrery_actors::net::{FrameReader, WsEvent};
use orrery_api::auth::{parse_guest_body, valid_name, MAX_NAME};
use orrery_engine::galaxy::{ContentFormat, Galaxy};
use orrery_engine::spacetrade::Command;
use orrery_protocol::codec::{client_from_bin, client_from_json, client_to_bin, client_to_json};
use orrery_protocol::messages::{ClientFrame, ClientMessage};

/// A target's body: takes the raw fuzz input; panics on a finding.
pub type Body = fn(&[u8]);

/// Every target by name (the name is the folder under `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("ws_frames", ws_frames),
    ("client_json", client_json),
    ("client_bin", client_bin),
    ("galaxy_content", galaxy_content),
    ("http_guest_body", http_guest_body),
];

/// Message size limits `ws_frames` picks from (low three bits of the first byte): both sides of the 125/126 and
/// 65535/65536 length encodings, and 0 (every non-empty message is too big).
const WS_MAX: [usize; 8] = [0, 1, 16, 125, 126, 1024, 65_536, 1 << 20];

/// `ws_frames`: the WebSocket client-frame parser, fed the input in chunks.
///
/// Input: byte 0 picks the message limit (bits 0-2) and the chunking (bits 3-4: whole, three chunks cut at
/// bytes 1 and 2 scaled to the length, or runs of `1 + byte1 % 16` bytes); the rest is the stream.
/// Property: the events (and the error that ends them, if any) do not depend on how the stream was chunked, and
/// no message is larger than the limit.
pub fn ws_frames(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let max = WS_MAX[usize::from(head & 7)];
    let (a, b, stream) = match rest {
        [a, b, stream @ ..] => (usize::from(*a), usize::from(*b), stream),
        _ => (0, 0, rest),
    };

    // The reference: everything pushed at once.
    let mut whole = FrameReader::new(max);
    whole.push(stream);
    let mut expected = Vec::new();
    drain(&mut whole, max, &mut expected);
    whole.release_idle();

    // The same stream in chunks, draining after each one as the sector does after each `recv`.
    let chunks: Vec<&[u8]> = match (head >> 3) & 3 {
        0 => vec![stream],
        1 | 2 => {
            let len = stream.len();
            let cut1 = a * len / 256;
            let cut2 = cut1 + b * (len - cut1) / 256;
            vec![&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]]
        }
        _ => stream.chunks(1 + a % 16).collect(),
    };
    let mut reader = FrameReader::new(max);
    let mut got = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        if !drain(&mut reader, max, &mut got) {
            break;
        }
        reader.release_idle();
    }
    assert_eq!(got, expected, "events depend on how the stream was chunked");
}

/// Reads events until the reader needs more bytes (true) or fails (false, the error recorded last).
fn drain(reader: &mut FrameReader, max: usize, out: &mut Vec<Result<WsEvent, orrery_actors::net::WsError>>) -> bool {
    loop {
        match reader.next_event() {
            Ok(None) => return true,
            Ok(Some(event)) => {
                match &event {
                    WsEvent::Text(t) => assert!(t.len() <= max, "text message over the limit"),
                    WsEvent::Binary(b) => assert!(b.len() <= max, "binary message over the limit"),
                    WsEvent::Ping(p) => assert!(p.len() <= 125, "ping payload over 125 bytes"),
                    WsEvent::Pong | WsEvent::Close(_) => {}
                }
                out.push(Ok(event));
            }
            Err(e) => {
                out.push(Err(e));
                return false;
            }
        }
    }
}

/// True when the frame carries a float that JSON cannot (NaN or an infinity: `1e39` as an `f32` is one).
fn has_non_finite(frame: &ClientFrame<Command>) -> bool {
    matches!(&frame.msg, ClientMessage::Game(Command::Thrust { vx, vy }) if !vx.is_finite() || !vy.is_finite())
}

/// `client_json`: a client's JSON text frame (inputs that are not UTF-8 are skipped: the WebSocket layer rejects
/// them before the codec).
/// Property: what JSON decodes, binary carries unchanged, and JSON can encode it again (finite floats).
pub fn client_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = client_from_json::<Command>(text) else {
        return;
    };
    let bin = client_to_bin(&frame);
    let back = client_from_bin::<Command>(&bin).expect("a decoded JSON frame does not survive the binary codec");
    assert_eq!(
        client_to_bin(&back),
        bin,
        "binary round trip changed a decoded JSON frame"
    );
    if !has_non_finite(&frame) {
        let json = client_to_json(&frame);
        let again = client_from_json::<Command>(&json);
        assert!(again.is_ok(), "re-encoded JSON does not decode: {json} ({again:?})");
    }
}

/// `client_bin`: a client's binary (postcard) frame.
/// Property: re-encoding a decoded frame gives bytes that decode to the same frame, and JSON can carry it
/// (finite floats).
pub fn client_bin(data: &[u8]) {
    let Ok(frame) = client_from_bin::<Command>(data) else {
        return;
    };
    let bin = client_to_bin(&frame);
    let back = client_from_bin::<Command>(&bin).expect("a re-encoded binary frame does not decode");
    assert_eq!(client_to_bin(&back), bin, "binary round trip is not stable");
    if !has_non_finite(&frame) {
        let json = client_to_json(&frame);
        let again = client_from_json::<Command>(&json);
        assert!(
            again.is_ok(),
            "a decoded binary frame does not survive JSON: {json} ({again:?})"
        );
    }
}

/// The file names `galaxy_content` picks from (first byte of each file, modulo the length): the names
/// `Galaxy::to_files` writes in both formats, and names it must accept, ignore or reject.
pub const GALAXY_FILE_NAMES: &[&str; 16] = &[
    "galaxy.toml",
    "galaxy.json",
    "regions/01-alpha.toml",
    "regions/02-beta.toml",
    "regions/03-gamma.toml",
    "regions/01-alpha.json",
    "regions/02-beta.json",
    "regions/03-gamma.json",
    "./regions/04-delta.TOML",
    "regions\\05-epsilon.Json",
    "README.md",
    "regions/sub/06.toml",
    "regions/.toml",
    "other.toml",
    "galaxy",
    "regions/01-alpha.toml",
];

/// Separates files in a `galaxy_content` input.
pub const GALAXY_FILE_SEPARATOR: u8 = 0;

/// At most this many files are taken from one input.
const GALAXY_MAX_FILES: usize = 8;

/// Splits a `galaxy_content` input into `(name, text)` files: NUL-separated parts, each a name index byte then
/// the text (invalid UTF-8 replaced).
pub fn galaxy_files_from_input(data: &[u8]) -> Vec<(String, String)> {
    data.split(|&b| b == GALAXY_FILE_SEPARATOR)
        .filter_map(|part| part.split_first())
        .take(GALAXY_MAX_FILES)
        .map(|(&pick, text)| {
            let name = GALAXY_FILE_NAMES[usize::from(pick) % GALAXY_FILE_NAMES.len()];
            (name.to_owned(), String::from_utf8_lossy(text).into_owned())
        })
        .collect()
}

/// An input that [`galaxy_files_from_input`] turns into `files` as written by `Galaxy::to_files` (to seed the
/// corpus with generated galaxies): the galaxy file keeps its name, the k-th region file (in path order) becomes
/// the k-th region name of its format in [`GALAXY_FILE_NAMES`]. `None` if there are more region files than names,
/// or a text holds a NUL.
pub fn galaxy_input_from_files(files: &[(String, String)]) -> Option<Vec<u8>> {
    let mut regions: Vec<&(String, String)> = files.iter().filter(|(n, _)| n.starts_with("regions/")).collect();
    regions.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let mut used = Vec::new();
    for (name, text) in files.iter().filter(|(n, _)| !n.starts_with("regions/")).chain(regions) {
        let pick = if name.starts_with("regions/") {
            let ext = name.rsplit_once('.')?.1;
            GALAXY_FILE_NAMES.iter().enumerate().position(|(i, n)| {
                n.starts_with("regions/0") && n.ends_with(&format!(".{ext}")) && !used.contains(&i)
            })?
        } else {
            GALAXY_FILE_NAMES.iter().position(|n| n == name)?
        };
        used.push(pick);
        if text.as_bytes().contains(&GALAXY_FILE_SEPARATOR) {
            return None;
        }
        if !out.is_empty() {
            out.push(GALAXY_FILE_SEPARATOR);
        }
        // `pick + 16` and `pick + 32` name the same file as `pick` (16 names) and are never the separator (0);
        // bit 4 (set in the first) makes `galaxy_content` write the galaxy back in JSON: keep the file's format.
        let offset = if name.ends_with(".json") { 16 } else { 32 };
        out.push(u8::try_from(pick + offset).ok()?);
        out.extend_from_slice(text.as_bytes());
    }
    Some(out)
}

/// `galaxy_content`: parsing and validating content files (`Galaxy::from_files_all`).
/// Property: an error is never an empty list, and content that loads is written back to files that load as the
/// same galaxy (in JSON when bit 4 of the first byte is set, else TOML: the file pick uses bits 0-3 only, and one
/// round trip per input keeps the target fast).
pub fn galaxy_content(data: &[u8]) {
    let files = galaxy_files_from_input(data);
    let galaxy = match Galaxy::from_files_all(files) {
        Ok(g) => g,
        Err(errors) => {
            assert!(!errors.is_empty(), "from_files_all failed with no error");
            return;
        }
    };
    let format = match data.first() {
        Some(b) if b & 0x10 != 0 => ContentFormat::Json,
        _ => ContentFormat::Toml,
    };
    let written = galaxy.to_files(format);
    match Galaxy::from_files_all(written.clone()) {
        Ok(again) => assert_eq!(again, galaxy, "{format:?} round trip changed the galaxy"),
        Err(errors) => panic!("content that loaded does not load again from {format:?}: {errors:?}\n{written:?}"),
    }
}

/// `http_guest_body`: the body of `POST /v1/auth/guest`.
/// Property: an accepted name is a valid name as it stands (trimmed, at most `MAX_NAME` characters).
pub fn http_guest_body(data: &[u8]) {
    let Ok(req) = parse_guest_body(data) else {
        return;
    };
    if let Some(name) = &req.name {
        assert!(name.chars().count() <= MAX_NAME, "accepted name too long: {name:?}");
        assert_eq!(
            valid_name(name).ok().as_deref(),
            Some(name.as_str()),
            "accepted name is not valid"
        );
    }
}
