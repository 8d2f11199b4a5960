//! The scenario file (TOML): what load to generate and the service-level objectives a run must meet.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Which protocol encoding the simulated clients negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingName {
    /// `orrery.bin.v1` (postcard).
    #[default]
    Binary,
    /// `orrery.json.v1`.
    Json,
}

impl EncodingName {
    /// The WebSocket subprotocol naming this encoding.
    pub fn subprotocol(self) -> &'static str {
        match self {
            EncodingName::Binary => orrery_protocol::SUBPROTOCOL_BIN,
            EncodingName::Json => orrery_protocol::SUBPROTOCOL_JSON,
        }
    }
}

/// A load-test scenario. Every field but `name`, `rooms` and `clients_per_room` has a default (see docs/loadtest.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    #[serde(default)]
    pub encoding: EncodingName,
    /// Rooms (sectors) used: the first `rooms` sectors of the non-nexus regions.
    pub rooms: u32,
    pub clients_per_room: u32,
    /// Clients of the first rooms, one number per room, instead of `clients_per_room` (e.g. one crowded room
    /// among ordinary ones); the rooms not listed have `clients_per_room`.
    #[serde(default)]
    pub room_clients: Vec<u32>,
    /// Clients per room that decode every frame (the first ones of each room); the rest only count frames.
    #[serde(default = "defaults::decoders_per_room")]
    pub decoders_per_room: u32,
    /// Joins (login + WebSocket + welcome + keyframe) in flight at once.
    #[serde(default = "defaults::join_concurrency")]
    pub join_concurrency: u32,
    /// A join not complete after this long fails (`join_timeout`).
    #[serde(default = "defaults::join_timeout_secs")]
    pub join_timeout_secs: f64,
    #[serde(default = "defaults::warmup_secs")]
    pub warmup_secs: f64,
    #[serde(default = "defaults::window_secs")]
    pub window_secs: f64,
    /// Thrust inputs per second per client (random phase, fresh random velocity each).
    #[serde(default = "defaults::thrust_hz")]
    pub thrust_hz: f64,
    /// Warps per second per decoder client (only decoders know where warps lead).
    #[serde(default)]
    pub warp_hz: f64,
    /// Trades per second per decoder client.
    #[serde(default)]
    pub trade_hz: f64,
    /// Sector chat lines per second per client.
    #[serde(default)]
    pub chat_hz: f64,
    /// Seed of the load generator's random numbers (phases, velocities); random when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub slo: Slo,
}

/// Service-level objectives; each one that is set must hold or the run exits with code 2.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Delivered patch frames / (tick rate x connected clients x window) at least this.
    pub min_delivered_ratio: Option<f64>,
    /// Input-to-visible round trip p99 at most this many milliseconds.
    pub max_rtt_p99_ms: Option<f64>,
    /// Measured inputs still unresolved 1 s after the window / measured inputs at most this.
    pub max_unresolved_ratio: Option<f64>,
    /// Server tick overruns / ticks over the window at most this.
    pub max_tick_overrun_ratio: Option<f64>,
    /// `error` frames received by decoders during the window at most this many.
    pub max_errors: Option<u64>,
    /// Clients that failed to join or were disconnected before the window ended at most this many.
    pub max_failed_clients: Option<u64>,
}

mod defaults {
    pub fn decoders_per_room() -> u32 {
        10
    }
    pub fn join_concurrency() -> u32 {
        20
    }
    pub fn join_timeout_secs() -> f64 {
        10.0
    }
    pub fn warmup_secs() -> f64 {
        5.0
    }
    pub fn window_secs() -> f64 {
        30.0
    }
    pub fn thrust_hz() -> f64 {
        10.0
    }
}

/// A scenario file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing the scenario: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text)
    }

    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError::Invalid(m.to_owned()));
        if self.rooms == 0 || self.clients_per_room == 0 {
            return bad("rooms and clients_per_room must be at least 1");
        }
        if self.room_clients.len() > self.rooms as usize {
            return bad("room_clients lists more rooms than `rooms`");
        }
        if self.room_clients.contains(&0) {
            return bad("every room in room_clients needs at least 1 client");
        }
        if self.join_concurrency == 0 {
            return bad("join_concurrency must be at least 1");
        }
        let secs = [
            ("warmup_secs", self.warmup_secs),
            ("window_secs", self.window_secs),
            ("join_timeout_secs", self.join_timeout_secs),
        ];
        for (name, v) in secs {
            if !v.is_finite() || v < 0.0 {
                return Err(ScenarioError::Invalid(format!("{name} must be a non-negative number")));
            }
        }
        if self.window_secs <= 0.0 || self.join_timeout_secs <= 0.0 {
            return bad("window_secs and join_timeout_secs must be positive");
        }
        let rates = [
            ("thrust_hz", self.thrust_hz),
            ("warp_hz", self.warp_hz),
            ("trade_hz", self.trade_hz),
            ("chat_hz", self.chat_hz),
        ];
        for (name, v) in rates {
            if !v.is_finite() || !(0.0..=1000.0).contains(&v) {
                return Err(ScenarioError::Invalid(format!("{name} must be between 0 and 1000")));
            }
        }
        Ok(())
    }

    /// Total clients.
    pub fn clients(&self) -> u32 {
        (0..self.rooms).map(|r| self.clients_in_room(r)).sum()
    }

    /// Clients of room `room`.
    pub fn clients_in_room(&self, room: u32) -> u32 {
        self.room_clients
            .get(room as usize)
            .copied()
            .unwrap_or(self.clients_per_room)
    }

    /// Decoder clients of room `room` (never more than the room holds).
    pub fn decoders_in_room(&self, room: u32) -> u32 {
        self.decoders_per_room.min(self.clients_in_room(room))
    }

    /// Whether the rooms differ in size (`room_clients`).
    pub fn uneven(&self) -> bool {
        (0..self.rooms).any(|r| self.clients_in_room(r) != self.clients_per_room)
    }

    /// Every client's (room, index in room), rooms interleaved: client *i* of a scenario with equal rooms is in
    /// room *i* mod `rooms`; with `room_clients`, the rooms that are full drop out of the rotation.
    pub fn placements(&self) -> Vec<(u32, u32)> {
        let most = (0..self.rooms).map(|r| self.clients_in_room(r)).max().unwrap_or(0);
        let mut out = Vec::with_capacity(self.clients() as usize);
        for index in 0..most {
            for room in 0..self.rooms {
                if index < self.clients_in_room(room) {
                    out.push((room, index));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario_gets_the_reference_defaults() {
        let s = Scenario::parse("name = \"x\"\nrooms = 2\nclients_per_room = 100\n").unwrap();
        assert_eq!(s.encoding, EncodingName::Binary);
        assert_eq!(s.decoders_per_room, 10);
        assert_eq!(s.join_concurrency, 20);
        assert_eq!(s.join_timeout_secs, 10.0);
        assert_eq!(s.warmup_secs, 5.0);
        assert_eq!(s.window_secs, 30.0);
        assert_eq!(s.thrust_hz, 10.0);
        assert_eq!((s.warp_hz, s.trade_hz, s.chat_hz), (0.0, 0.0, 0.0));
        assert_eq!(s.seed, None);
        assert_eq!(s.slo, Slo::default());
        assert_eq!(s.clients(), 200);
    }

    #[test]
    fn full_scenario_parses() {
        let s = Scenario::parse(
            r#"
            name = "smoke"
            encoding = "json"
            rooms = 2
            clients_per_room = 5
            decoders_per_room = 10
            join_concurrency = 4
            join_timeout_secs = 3
            warmup_secs = 1
            window_secs = 3.5
            thrust_hz = 10
            warp_hz = 0.5
            trade_hz = 0.5
            chat_hz = 0.2
            seed = 7
            [slo]
            min_delivered_ratio = 0.99
            max_rtt_p99_ms = 100
            max_unresolved_ratio = 0.01
            max_tick_overrun_ratio = 0.001
            max_errors = 0
            max_failed_clients = 0
            "#,
        )
        .unwrap();
        assert_eq!(s.encoding, EncodingName::Json);
        assert_eq!(s.decoders_in_room(0), 5, "never more decoders than clients");
        assert_eq!(s.window_secs, 3.5);
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.slo.max_rtt_p99_ms, Some(100.0));
        assert_eq!(s.slo.max_errors, Some(0));
        assert_eq!(s.slo.max_failed_clients, Some(0));
    }

    #[test]
    fn the_bench_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                names.push(s.name);
            }
        }
        names.sort();
        assert!(names.contains(&"sector-sync-E".to_owned()), "{names:?}");
        assert!(names.contains(&"smoke".to_owned()), "{names:?}");
        let e = Scenario::load(&dir.join("sector-sync-E.toml")).unwrap();
        assert_eq!((e.rooms, e.clients_per_room, e.decoders_per_room), (50, 100, 10));
        assert_eq!(e.slo.max_rtt_p99_ms, Some(100.0));
    }

    #[test]
    fn room_clients_make_uneven_rooms_interleaved() {
        let s = Scenario::parse("name = \"x\"\nrooms = 3\nclients_per_room = 2\nroom_clients = [4]\n").unwrap();
        assert_eq!(s.clients(), 8);
        assert!(s.uneven());
        assert_eq!((s.clients_in_room(0), s.clients_in_room(2)), (4, 2));
        assert_eq!(
            s.placements(),
            vec![(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2), (0, 3)]
        );
        let even = Scenario::parse("name = \"x\"\nrooms = 3\nclients_per_room = 2\n").unwrap();
        assert!(!even.uneven());
        let i_mod_rooms: Vec<(u32, u32)> = (0..6).map(|i| (i % 3, i / 3)).collect();
        assert_eq!(
            even.placements(),
            i_mod_rooms,
            "as before: client i in room i mod rooms"
        );
        assert!(Scenario::parse("name = \"x\"\nrooms = 1\nclients_per_room = 2\nroom_clients = [1, 2]\n").is_err());
        assert!(Scenario::parse("name = \"x\"\nrooms = 2\nclients_per_room = 2\nroom_clients = [0]\n").is_err());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(matches!(
            Scenario::parse("name = \"x\"\nrooms = 1\nclients_per_room = 1\nthrust = 5\n"),
            Err(ScenarioError::Parse(_))
        ));
        assert!(matches!(
            Scenario::parse("name = \"x\"\nrooms = 1\nclients_per_room = 1\n[slo]\nmax_rtt = 5\n"),
            Err(ScenarioError::Parse(_))
        ));
        assert!(matches!(
            Scenario::parse("name = \"x\"\nrooms = 0\nclients_per_room = 1\n"),
            Err(ScenarioError::Invalid(_))
        ));
        assert!(matches!(
            Scenario::parse("name = \"x\"\nrooms = 1\nclients_per_room = 1\nthrust_hz = -1\n"),
            Err(ScenarioError::Invalid(_))
        ));
        assert!(matches!(
            Scenario::parse("name = \"x\"\nrooms = 1\nclients_per_room = 1\nwindow_secs = 0\n"),
            Err(ScenarioError::Invalid(_))
        ));
        assert!(
            Scenario::parse("rooms = 1\nclients_per_room = 1\n").is_err(),
            "name is required"
        );
    }
}
