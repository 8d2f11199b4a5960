//! Engine micro-benchmarks: one sector tick with 100 / 1,000 / 10,000 moving ships (half of them changing course
//! each tick), the thrust commands that change their velocities, and the encoding of a 100-moving-ship delta as JSON
//! and as binary (postcard).
//!
//! Run: `cargo bench --bench engine`. Frame sizes are printed once and recorded as criterion byte throughput.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use orrery_actors::sector::encode_frame;
use orrery_engine::galaxy::{generate, GenerateParams};
use orrery_engine::spacetrade::{Command, Rules, SectorState, SpaceTrade};
use orrery_engine::{CharacterSeed, Game};
use orrery_protocol::{codec, Encoding, ServerFrame, ServerMessage};
use uuid::Uuid;

/// Fixed step of a 20 Hz tick.
const DT: f32 = 0.05;

fn game() -> SpaceTrade {
    let galaxy = generate(GenerateParams {
        seed: 2102,
        regions: 1,
        sectors_per_region: 3,
    });
    SpaceTrade::new(Arc::new(galaxy), Rules::default())
}

/// A sector (the spawn sector, with its station) holding `n` ships named like the sector-sync load test's players.
fn sector_with_ships(game: &SpaceTrade, n: usize) -> SectorState {
    let mut sector = game.new_sector(game.spawn_sector());
    for i in 0..n {
        let seed = CharacterSeed {
            character_id: Uuid::from_u128(i as u128 + 1),
            name: format!("r0c{i}"),
        };
        let (_, ship) = game.spawn(&seed, 0);
        game.admit(&mut sector, ship, 0);
    }
    // Flush the admissions so that the measured ticks only carry motion.
    let _ = game.tick(&mut sector, DT);
    sector
}

/// Gives a fresh velocity (different each round) to every ship whose index has the parity `round % 2` when `half`,
/// to every ship otherwise; one `thrust` command per steered ship. Velocities point towards the sector's centre on
/// both axes, so no ship is ever stopped by a wall: every ship moves in every tick. Steering half the ships per
/// tick is the sector-sync scenario's load (inputs at 10 Hz, ticks at 20 Hz).
fn steer(game: &SpaceTrade, sector: &mut SectorState, round: u32, half: bool, ships: &mut Vec<(Uuid, f32, f32)>) {
    let centre = sector.size() / 2.0;
    ships.clear();
    ships.extend(sector.ships().iter().map(|s| (s.id, s.x, s.y)));
    for (i, &(id, x, y)) in ships.iter().enumerate() {
        if half && i as u32 % 2 != round % 2 {
            continue;
        }
        let speed = 20.0 + ((i as u32 * 7 + round * 13) % 80) as f32;
        let vx = if x < centre { speed } else { -speed };
        let vy = if y < centre { speed * 0.5 } else { -speed * 0.5 };
        let _ = game.handle(sector, id, Command::Thrust { vx, vy }, 0);
    }
}

fn tick(c: &mut Criterion) {
    let game = game();
    let mut group = c.benchmark_group("sector_tick");
    for n in [100usize, 1_000, 10_000] {
        let mut sector = sector_with_ships(&game, n);
        let mut ships = Vec::with_capacity(n);
        let mut round = 0u32;
        group.throughput(Throughput::Elements(n as u64));
        // The tick alone (building the delta included): every ship moves, half of them changed course since the
        // previous tick (the thrusts are not timed).
        group.bench_function(BenchmarkId::new("moving_ships", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round = round.wrapping_add(1);
                    steer(&game, &mut sector, round, true, &mut ships);
                    let t = Instant::now();
                    let delta = game.tick(&mut sector, DT);
                    black_box(&delta);
                    drop(delta);
                    total += t.elapsed();
                }
                total
            })
        });
        // One thrust command per ship (the sector actor's work for inputs; throughput counts commands).
        group.bench_function(BenchmarkId::new("thrust_every_ship", n), |b| {
            b.iter(|| {
                round = round.wrapping_add(1);
                steer(&game, &mut sector, round, false, &mut ships);
            })
        });
        let _ = game.tick(&mut sector, DT);
    }
    group.finish();
}

/// The delta frame of a 100-ship sector in which every ship moved and `steered` of them changed course.
fn delta_frame(game: &SpaceTrade, steered: Steered) -> ServerFrame<SpaceTrade> {
    let mut sector = sector_with_ships(game, 100);
    let mut ships = Vec::new();
    // Two rounds: everyone gets a velocity, then (maybe) half or all change it again.
    steer(game, &mut sector, 0, false, &mut ships);
    let _ = game.tick(&mut sector, DT);
    match steered {
        Steered::None => {}
        Steered::Half => steer(game, &mut sector, 1, true, &mut ships),
        Steered::All => steer(game, &mut sector, 1, false, &mut ships),
    }
    let delta = game.tick(&mut sector, DT).expect("a delta");
    ServerFrame::<SpaceTrade>::new(
        None,
        ServerMessage::Delta {
            sector: sector.id(),
            seq: 123_456,
            tick: 1_234_567,
            body: delta,
        },
    )
}

#[derive(Debug, Clone, Copy)]
enum Steered {
    None,
    Half,
    All,
}

fn delta_encoding(c: &mut Criterion) {
    let game = game();
    for (steered, what) in [
        (Steered::None, "none changed course"),
        (Steered::Half, "half changed course (the scenario's load)"),
        (Steered::All, "all changed course"),
    ] {
        let frame = delta_frame(&game, steered);
        eprintln!(
            "delta of 100 moving ships, {what}: JSON {} B, binary {} B ({} B as a WebSocket frame)",
            codec::server_to_json(&frame).unwrap().len(),
            codec::server_to_bin(&frame).unwrap().len(),
            encode_frame(&frame, Encoding::Binary).len(),
        );
    }
    eprintln!("(target: <= 1000 B binary for 100 moving ships; Colyseus: 2001 B)");

    let frame = delta_frame(&game, Steered::Half);
    let json = codec::server_to_json(&frame).unwrap().len();
    let bin = codec::server_to_bin(&frame).unwrap().len();
    let framed = encode_frame(&frame, Encoding::Binary).len();
    let mut group = c.benchmark_group("delta_100_ships_half_steered");
    group.throughput(Throughput::Bytes(json as u64));
    group.bench_function("encode_json", |b| b.iter(|| codec::server_to_json(black_box(&frame))));
    group.throughput(Throughput::Bytes(bin as u64));
    group.bench_function("encode_bin", |b| b.iter(|| codec::server_to_bin(black_box(&frame))));
    group.throughput(Throughput::Bytes(framed as u64));
    group.bench_function("encode_frame_bin", |b| {
        b.iter(|| encode_frame(black_box(&frame), Encoding::Binary))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tick, delta_encoding
}
criterion_main!(benches);
