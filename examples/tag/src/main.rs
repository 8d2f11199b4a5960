use std::process::ExitCode;

use clap::{Args, Subcommand};
use orrery_tag::Tag;

/// The game's own flags of `serve`, beside Orrery's.
#[derive(Debug, Args)]
struct TagFlags {
    /// Rooms in the ring.
    #[arg(long, env = "TAG_ROOMS", default_value_t = 4)]
    rooms: u32,
}

/// The game's own subcommands, beside `serve` and Orrery's.
#[derive(Debug, Subcommand)]
enum TagCommand {
    /// Print the rooms (id and doors) of a ring of N rooms.
    Rooms {
        #[arg(long, default_value_t = 4)]
        rooms: u32,
    },
}

fn run(command: TagCommand) -> anyhow::Result<ExitCode> {
    match command {
        TagCommand::Rooms { rooms } => {
            let game = Tag::new(rooms);
            for room in game.rooms() {
                let doors: Vec<String> = game.doors(*room).iter().map(|d| d.to_string()).collect();
                eprintln!("{room}  doors: {}", doors.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    orrery::Program::new("orrery-tag", env!("CARGO_PKG_VERSION"))
        .about("Tag across a ring of rooms, on Orrery")
        .flags::<TagFlags>()
        .commands(run)
        .main(|flags: TagFlags| Ok(Tag::new(flags.rooms)))
}
