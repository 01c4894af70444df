//! A private PostgreSQL cluster for tests: `initdb` in a temporary directory, `postgres` on a
//! free 127.0.0.1 port (its unix socket inside that directory), `fsync=off`, trust
//! authentication for the `postgres` superuser, stopped (`pg_ctl stop -m immediate`) and removed
//! on drop.
//!
//! The binaries are looked up on `PATH`, then in `/usr/lib/postgresql/*/bin` (newest first, where
//! Debian's `postgresql` package puts them). PostgreSQL refuses to run as root: as root, the
//! directory is given to the `postgres` OS user and `initdb`/`pg_ctl` run as that user through
//! `runuser` (util-linux) or, failing that, `setpriv`.
//!
//! ```no_run
//! use cerebrum_testkit::postgres::PostgresCluster;
//!
//! // `None`: PostgreSQL is not installed and CEREBRUM_REQUIRE_ENGINES is not set (skipped).
//! let Some(cluster) = PostgresCluster::start()? else { return Ok(()) };
//! let url = cluster.fresh_database()?; // postgres://postgres@127.0.0.1:PORT/test_…
//! # let _ = url;
//! # Ok::<(), cerebrum_testkit::TestkitError>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::{TestkitError, engine_missing, find_binary, free_port};

/// The engine name used in skip lines and errors.
pub const ENGINE: &str = "PostgreSQL";

/// The superuser of a test cluster (trust authentication, no password).
pub const SUPERUSER: &str = "postgres";

/// The OS user PostgreSQL runs as when the tests run as root.
const OS_USER: &str = "postgres";

/// How many ports are tried when the chosen one is taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// The cluster of [`PostgresCluster::shared`], while some test holds it.
static SHARED: Mutex<Weak<PostgresCluster>> = Mutex::new(Weak::new());

/// How the binaries run when the tests run as root.
#[derive(Debug, Clone)]
enum RunAs {
    /// `runuser -u postgres -- PROGRAM …`.
    Runuser(PathBuf),
    /// `setpriv --reuid UID --regid GID --clear-groups -- PROGRAM …`.
    Setpriv {
        setpriv: PathBuf,
        uid: u32,
        gid: u32,
    },
}

/// A running private PostgreSQL cluster; stopped and deleted on drop.
#[derive(Debug)]
pub struct PostgresCluster {
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    next_database: AtomicU32,
}

/// The directory holding `initdb` and `pg_ctl`: from `PATH` (symlinks resolved), else the newest
/// `/usr/lib/postgresql/*/bin`. `None` when PostgreSQL is not installed.
#[must_use]
pub fn find_bin_dir() -> Option<PathBuf> {
    let initdb = find_binary("initdb", &debian_bin_dirs())?;
    let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    let dir = initdb.parent()?.to_path_buf();
    dir.join("pg_ctl").is_file().then_some(dir)
}

/// `/usr/lib/postgresql/<version>/bin`, newest version first.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let major = name.split('.').next()?.parse::<u32>().ok()?;
                    Some((major, entry.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The uid and gid of `user`, from `/etc/passwd`.
fn os_user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

fn sbin_dirs() -> Vec<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .collect()
}

fn describe(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!(
        "{}; stdout: {}; stderr: {}",
        output.status,
        stdout.trim(),
        stderr.trim()
    )
}

impl PostgresCluster {
    /// Starts a new private cluster. `Ok(None)` (after a loud `SKIPPED` line on stderr) when
    /// PostgreSQL is not installed, unless `CEREBRUM_REQUIRE_ENGINES=1`, which makes that an
    /// error.
    pub fn start() -> Result<Option<Self>, TestkitError> {
        let Some(bin_dir) = find_bin_dir() else {
            engine_missing(
                ENGINE,
                "initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin (install postgresql)",
            )?;
            return Ok(None);
        };
        // As root, the data must belong to an unprivileged user: /tmp is reachable by it
        // whatever TMPDIR says.
        let probe = tempfile::Builder::new()
            .prefix("cerebrum-pg-")
            .tempdir()
            .map_err(|err| TestkitError::io("cannot create a temporary directory", err))?;
        let is_root = is_owned_by_root(probe.path());
        let (dir, run_as) = if is_root {
            drop(probe);
            let Some((uid, gid)) = os_user_ids(OS_USER) else {
                engine_missing(
                    ENGINE,
                    "running as root and there is no `postgres` OS user to run PostgreSQL as (install postgresql)",
                )?;
                return Ok(None);
            };
            let run_as = if let Some(runuser) = find_binary("runuser", &sbin_dirs()) {
                RunAs::Runuser(runuser)
            } else if let Some(setpriv) = find_binary("setpriv", &sbin_dirs()) {
                RunAs::Setpriv { setpriv, uid, gid }
            } else {
                engine_missing(
                    ENGINE,
                    "running as root and neither runuser nor setpriv was found to drop privileges",
                )?;
                return Ok(None);
            };
            let dir = tempfile::Builder::new()
                .prefix("cerebrum-pg-")
                .tempdir_in("/tmp")
                .map_err(|err| TestkitError::io("cannot create a directory in /tmp", err))?;
            #[cfg(unix)]
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|err| {
                TestkitError::io(
                    format!("cannot chown {} to postgres", dir.path().display()),
                    err,
                )
            })?;
            (dir, Some(run_as))
        } else {
            (probe, None)
        };
        let mut cluster = Self {
            dir,
            bin_dir,
            port: 0,
            run_as,
            next_database: AtomicU32::new(0),
        };
        cluster.init()?;
        cluster.launch()?;
        Ok(Some(cluster))
    }

    /// A cluster shared by the tests of one process while at least one of them holds it:
    /// started by the first caller, stopped when the last [`Arc`] is dropped. Give each test its
    /// own database ([`PostgresCluster::fresh_database`]). `Ok(None)` as for
    /// [`PostgresCluster::start`].
    pub fn shared() -> Result<Option<Arc<Self>>, TestkitError> {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = slot.upgrade() {
            return Ok(Some(cluster));
        }
        let Some(cluster) = Self::start()? else {
            return Ok(None);
        };
        let cluster = Arc::new(cluster);
        *slot = Arc::downgrade(&cluster);
        Ok(Some(cluster))
    }

    /// The URL of the default `postgres` database:
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    #[must_use]
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of `database` on this cluster.
    #[must_use]
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port (on 127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the cluster's unix socket (the temporary directory).
    #[must_use]
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log (useful in a failing test's message).
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Creates the database `name` (`[a-z_][a-z0-9_]*`, at most 63 bytes) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, TestkitError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(TestkitError::Invalid(format!(
                "database name {name:?}: use [a-z_][a-z0-9_]*, at most 63 bytes"
            )));
        }
        let createdb = self.bin_dir.join("createdb");
        let port = self.port.to_string();
        let output = Command::new(&createdb)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])
            .env_remove("PGPASSWORD")
            .current_dir(self.dir.path())
            .output()
            .map_err(|err| TestkitError::io(format!("cannot run {}", createdb.display()), err))?;
        if !output.status.success() {
            return Err(TestkitError::Command {
                command: format!("createdb {name}"),
                detail: describe(&output),
            });
        }
        Ok(self.url_for(name))
    }

    /// Creates a database with a new unique name (`test_<pid>_<n>`) and returns its URL.
    pub fn fresh_database(&self) -> Result<String, TestkitError> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("test_{}_{n}", std::process::id()))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A command running `program` from the cluster's bin directory, as the `postgres` OS user
    /// when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = match &self.run_as {
            None => Command::new(program),
            Some(RunAs::Runuser(runuser)) => {
                let mut command = Command::new(runuser);
                command.args(["-u", OS_USER, "--"]).arg(program);
                command
            }
            Some(RunAs::Setpriv { setpriv, uid, gid }) => {
                let mut command = Command::new(setpriv);
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(program);
                command
            }
        };
        // The current directory must be readable by the `postgres` user.
        command
            .current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        command
    }

    fn run(&self, mut command: Command, what: &str) -> Result<Output, TestkitError> {
        let output = command
            .output()
            .map_err(|err| TestkitError::io(format!("cannot run {what}"), err))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(TestkitError::Command {
                command: what.to_owned(),
                detail: describe(&output),
            })
        }
    }

    fn init(&self) -> Result<(), TestkitError> {
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        self.run(initdb, "initdb").map(drop)
    }

    fn launch(&mut self) -> Result<(), TestkitError> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            self.port =
                free_port().map_err(|err| TestkitError::io("cannot find a free port", err))?;
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                self.port,
                self.dir.path().display()
            );
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match self.run(pg_ctl, "pg_ctl start") {
                Ok(_) => return Ok(()),
                Err(err) => {
                    let log = self.log();
                    let port_taken =
                        log.contains("could not bind") || log.contains("already in use");
                    last = Some(TestkitError::Command {
                        command: "pg_ctl start".into(),
                        detail: format!("{err}; log: {log}"),
                    });
                    if !port_taken {
                        break;
                    }
                    // A stale log would make every later attempt look like a port clash.
                    let _ = std::fs::remove_file(self.log_file());
                }
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no start attempt".into())))
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = pg_ctl.output();
    }
}

#[cfg(unix)]
fn is_owned_by_root(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).is_ok_and(|meta| meta.uid() == 0)
}

#[cfg(not(unix))]
fn is_owned_by_root(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_give_ids() {
        // `root` exists on every unix machine the tests run on.
        if Path::new("/etc/passwd").exists() {
            assert_eq!(os_user_ids("root"), Some((0, 0)));
        }
        assert_eq!(os_user_ids("cerebrum-no-such-user"), None);
    }

    #[test]
    fn a_cluster_starts_serves_databases_and_stops() {
        let Some(cluster) = PostgresCluster::start().unwrap() else {
            return;
        };
        let url = cluster.fresh_database().unwrap();
        assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
        assert!(cluster.create_database("Bad-Name").is_err());
        assert!(cluster.create_database("").is_err());
        let port = cluster.port();
        let dir = cluster.socket_dir().to_path_buf();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        drop(cluster);
        assert!(!dir.exists(), "the temporary directory is removed");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server is stopped"
        );
    }

    #[test]
    fn the_shared_cluster_is_reused_while_held() {
        let Some(first) = PostgresCluster::shared().unwrap() else {
            return;
        };
        let second = PostgresCluster::shared().unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_ne!(
            first.fresh_database().unwrap(),
            second.fresh_database().unwrap()
        );
    }
}
