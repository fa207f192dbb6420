//! [`TestServer`] runs the `velo` binary on a free port and a temporary data directory; [`RedisServer`]
//! runs the reference `redis-server`. Both are killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::resp::Conn;

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn wait_ready(child: &mut Child, port: u16, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("{what} exited early with {status}");
            return false;
        }
        if answers_ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One PING on a fresh connection. Any failure (refused, reset while the server starts, or a port
/// another process took) means "not ready yet", never a panic: the caller retries or tries another port.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    let Ok(read) = stream.read(&mut reply) else { return false };
    // A server with `requirepass` answers NOAUTH: it is up all the same.
    reply[..read].starts_with(b"+PONG") || reply[..read].starts_with(b"-NOAUTH")
}

/// `velo serve` on a free port.
pub struct TestServer {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its data directory.
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on a fresh temporary directory.
    pub fn start() -> TestServer {
        let tempdir = tempfile::tempdir().expect("temporary directory");
        let mut server = TestServer::start_in(tempdir.path(), &[]);
        server._tempdir = Some(tempdir);
        server
    }

    /// A server on `dir` with extra flags.
    pub fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(env!("CARGO_BIN_EXE_velo"))
                .args(["serve", "--port", &port.to_string(), "--dir"])
                .arg(dir)
                .args(["--log-level", "warn"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn velo");
            if wait_ready(&mut child, port, "velo serve") {
                return TestServer { child: Some(child), port, dir: dir.to_path_buf(), _tempdir: None };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("velo serve did not start");
    }

    /// A new connection.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe_sigterm(child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits for the process to exit by itself (after SHUTDOWN); returns the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The reference `redis-server`, without persistence.
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// True if `redis-server` can be run.
pub fn redis_available() -> bool {
    Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

impl RedisServer {
    /// Starts `redis-server`; panics with installation advice when it is missing.
    pub fn start() -> RedisServer {
        if !redis_available() {
            panic!("redis-server not found: install it with `apt-get install redis-server`");
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            if wait_ready(&mut child, port, "redis-server") {
                return RedisServer { child, port, _dir: dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }
}

impl RedisServer {
    /// Starts `redis-server` on `dir` (kept by the caller) with extra arguments (`--dbfilename x.rdb`).
    pub fn start_in(dir: &Path, extra: &[&str]) -> RedisServer {
        Self::spawn(None, dir, extra).unwrap_or_else(|| panic!("redis-server did not start"))
    }

    /// Starts `redis-server` with the config file `config` (before the flags, where Redis wants it) on
    /// `dir`; `save` comes from the file.
    pub fn start_with_config(config: &Path, dir: &Path) -> RedisServer {
        Self::spawn(Some(config), dir, &[])
            .unwrap_or_else(|| panic!("redis-server did not start with {}", config.display()))
    }

    /// Up to five attempts on free ports; without a config file, snapshots are off (`--save ""`).
    fn spawn(config: Option<&Path>, dir: &Path, extra: &[&str]) -> Option<RedisServer> {
        let keep = tempfile::tempdir().expect("temporary directory");
        for _attempt in 0..5 {
            let port = free_port();
            let mut command = Command::new("redis-server");
            match config {
                Some(config) => command.arg(config),
                None => command.args(["--save", ""]),
            };
            let mut child = command
                .args(["--port", &port.to_string(), "--appendonly", "no", "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            if wait_ready(&mut child, port, "redis-server") {
                return Some(RedisServer { child, port, _dir: keep });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
