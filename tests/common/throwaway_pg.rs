//! A throwaway PostgreSQL server for tests that stop and start their database: its own data directory under the
//! system temp dir, `initdb` with trust authentication, listening on 127.0.0.1 on a free port (its unix socket in
//! the temp dir too). Never the shared server: a test may kill this one (`pg_ctl stop -m immediate`, as a crash
//! would) and start it again on the same port. Dropping it stops it and removes its directory.
//!
//! The server binaries are looked for under `/usr/lib/postgresql/<version>/bin` (the newest version wins), or in
//! `ORRERY_PG_BIN` when set. `initdb` refuses to run as root, so under root every server command runs as the
//! `postgres` OS user (`runuser`), which then owns the directory. Missing binaries fail the test with a message
//! saying so: the tests that need them never skip.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The OS user the server runs as when the tests run as root.
const OS_USER: &str = "postgres";
/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_WAIT_S: &str = "60";

/// A PostgreSQL server of the test's own.
#[derive(Debug)]
pub struct ThrowawayPg {
    /// Everything of it: `data/`, `sock/`, `server.log`.
    dir: PathBuf,
    bin: PathBuf,
    /// Whether commands run as [`OS_USER`] (the tests run as root).
    as_os_user: bool,
    pub port: u16,
}

impl ThrowawayPg {
    /// Creates and starts a server; panics, saying why, if it cannot.
    pub async fn start() -> Self {
        let bin = find_bin();
        let dir = std::env::temp_dir().join(format!("orrery-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("sock")).expect("creating the throwaway PostgreSQL directory");
        let as_os_user = running_as_root();
        if as_os_user {
            let chown = std::process::Command::new("chown")
                .args(["-R", &format!("{OS_USER}:{OS_USER}")])
                .arg(&dir)
                .output()
                .expect("running chown");
            assert!(
                chown.status.success(),
                "chown of {} to the `{OS_USER}` OS user failed (initdb refuses root): {}",
                dir.display(),
                String::from_utf8_lossy(&chown.stderr)
            );
        }
        let port = free_port();
        let pg = Self {
            dir,
            bin,
            as_os_user,
            port,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D".into(),
                data.into(),
                "-U".into(),
                "postgres".into(),
                "-A".into(),
                "trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
        )
        .await;
        pg.start_again().await;
        pg
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on the same port and waits until it takes connections.
    pub async fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c max_connections=40",
            self.port,
            self.dir.join("sock").display()
        );
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data().into(),
                "-l".into(),
                log.into(),
                "-o".into(),
                options.into(),
                "-w".into(),
                "-t".into(),
                PG_CTL_WAIT_S.into(),
                "start".into(),
            ],
        )
        .await;
    }

    /// Kills the server at once (`pg_ctl stop -m immediate`: no shutdown checkpoint, connections cut, as in a
    /// crash) and waits until it is gone.
    pub async fn stop_immediate(&self) {
        self.run("pg_ctl", &self.stop_args()).await;
    }

    /// Runs SQL through `psql` (as the `postgres` role, with `default_transaction_read_only` off for its own
    /// session) and returns what it printed; panics if it fails.
    pub async fn psql(&self, sql: &str) -> String {
        let out = tokio::process::Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .env("PGOPTIONS", "-c default_transaction_read_only=off")
            .current_dir(&self.dir)
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.join("psql").display()));
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn stop_args(&self) -> Vec<OsString> {
        vec![
            "-D".into(),
            self.data().into(),
            "-m".into(),
            "immediate".into(),
            "-w".into(),
            "-t".into(),
            PG_CTL_WAIT_S.into(),
            "stop".into(),
        ]
    }

    /// The command running one of the server's binaries (as the OS user under root).
    fn command(&self, program: &str, args: &[OsString]) -> std::process::Command {
        let path = self.bin.join(program);
        let mut c = if self.as_os_user {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        // The OS user may not be allowed into the test's working directory.
        c.args(args).current_dir(&self.dir);
        c
    }

    /// Runs a server binary to completion off the runtime's threads; panics with its output and the server log if
    /// it fails.
    async fn run(&self, program: &str, args: &[OsString]) {
        let mut command = tokio::process::Command::from(self.command(program, args));
        let out: Output = command
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {program} from {}: {e}", self.bin.display()));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed ({}):\n{}\n{}\nserver log:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        // Stopped already, or never started: pg_ctl fails, which is fine.
        let _ = self
            .command("pg_ctl", &self.stop_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`; panics, saying what to install, when there is none.
fn find_bin() -> PathBuf {
    let has_tools = |dir: &Path| ["initdb", "pg_ctl", "psql"].iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("ORRERY_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            has_tools(&dir),
            "ORRERY_PG_BIN={} has no initdb, pg_ctl and psql",
            dir.display()
        );
        return dir;
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "this test starts a throwaway PostgreSQL server and needs initdb, pg_ctl and psql under \
             /usr/lib/postgresql/<version>/bin (install the PostgreSQL server package, e.g. `postgresql`), or \
             ORRERY_PG_BIN pointing at them"
        ),
    }
}

/// Whether the test process runs as root (`/proc/self` belongs to the process's effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A port nobody listens on now: bound, noted and released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
