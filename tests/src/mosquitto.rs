//! A real Mosquitto broker for tests: generated config on a free loopback port (another one
//! when it was taken meanwhile), optional password file, ACL, TLS listener and persistence,
//! bounded wait until it accepts connections, SIGKILL or clean stop and restart on the same
//! port (retried when the bind fails), and stop on drop. Tests that need it panic with a clear message
//! when the `mosquitto` binary is missing (install the Debian package `mosquitto`).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest the broker may take to accept connections after starting.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between connection probes while the broker starts.
const BROKER_PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// How often a broker start is tried (a new port each time; the same port on a restart).
pub const BROKER_START_ATTEMPTS: u32 = 5;
/// The pause before trying a restart on the same port again.
const BROKER_RESTART_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Server certificate and key of a TLS listener (PEM files).
#[derive(Debug, Clone)]
pub struct BrokerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to configure the broker.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    /// `(user, password)` pairs for the password file; none means anonymous access.
    pub users: Vec<(String, String)>,
    /// The ACL file's text (see docs/mosquitto/acl).
    pub acl: Option<String>,
    /// Serve TLS instead of plain MQTT on the port.
    pub tls: Option<BrokerTls>,
    /// Keep sessions, subscriptions, queued and retained messages in a data directory under
    /// the broker's temporary directory (saved on a clean stop, [`Mosquitto::stop_and_start`]).
    pub persistence: bool,
    /// The broker's `max_packet_size` (bytes): larger publishes are refused. `None`: no limit,
    /// as a plain `mosquitto -p 1883`.
    pub max_packet_size: Option<usize>,
    /// `set_tcp_nodelay true`: the broker sends each packet at once (no Nagle's algorithm).
    pub tcp_nodelay: bool,
}

/// A running (or killed) Mosquitto process.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
    /// SIGKILLs so far.
    pub kills: u32,
}

fn mosquitto_binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join("mosquitto");
        if path.exists() {
            return path;
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let path = dir.join("mosquitto");
            if path.exists() {
                return path;
            }
        }
    }
    panic!(
        "the `mosquitto` binary is missing: these tests need a real broker \
         (apt-get install -y mosquitto; .ci/run installs it)"
    );
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding port 0 on loopback works");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// The configuration [`Mosquitto::start`] writes for `options` (without the `user` line).
fn generated_config(options: &MosquittoOptions, port: u16, dir: &Path) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "listener {port} 127.0.0.1");
    if options.persistence {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("the broker's data directory");
        let _ = writeln!(conf, "persistence true");
        let _ = writeln!(conf, "persistence_location {}/", data.display());
    } else {
        let _ = writeln!(conf, "persistence false");
    }
    if let Some(limit) = options.max_packet_size {
        let _ = writeln!(conf, "max_packet_size {limit}");
    }
    if options.tcp_nodelay {
        let _ = writeln!(conf, "set_tcp_nodelay true");
    }
    let _ = writeln!(conf, "log_dest stderr");
    let _ = writeln!(conf, "log_type error");
    let _ = writeln!(conf, "log_type warning");
    if let Some(tls) = &options.tls {
        let _ = writeln!(conf, "certfile {}", tls.cert.display());
        let _ = writeln!(conf, "keyfile {}", tls.key.display());
    }
    if options.users.is_empty() {
        let _ = writeln!(conf, "allow_anonymous true");
    } else {
        let passwords = write_password_file(dir, &options.users);
        let _ = writeln!(conf, "allow_anonymous false");
        let _ = writeln!(conf, "password_file {}", passwords.display());
    }
    if let Some(acl) = &options.acl {
        let acl_path = dir.join("acl");
        std::fs::write(&acl_path, acl).expect("writing the ACL file");
        let _ = writeln!(conf, "acl_file {}", acl_path.display());
    }
    conf
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Mosquitto {
    /// Writes the configuration and starts the broker; returns once it accepts connections.
    pub fn start(options: &MosquittoOptions) -> Mosquitto {
        let options = options.clone();
        Mosquitto::start_raw(move |port, dir| generated_config(&options, port, dir))
    }

    /// Starts the broker with a configuration written by `make(port, dir)` (for testing the
    /// example configuration in docs/mosquitto/ with its paths replaced). A port taken between
    /// [`free_port`] and the broker's bind is retried on another one, at most
    /// [`BROKER_START_ATTEMPTS`] times.
    pub fn start_raw(make: impl Fn(u16, &Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().expect("a temporary directory for the broker");
        let conf_path = dir.path().join("mosquitto.conf");
        let mut broker = Mosquitto {
            dir,
            conf: conf_path,
            port: 0,
            child: None,
            kills: 0,
        };
        let mut failures = Vec::new();
        for _ in 0..BROKER_START_ATTEMPTS {
            broker.port = free_port();
            let mut conf = make(broker.port, broker.dir.path());
            if running_as_root() {
                conf.push_str("\nuser root\n");
            }
            std::fs::write(&broker.conf, conf).expect("writing mosquitto.conf");
            match broker.try_launch() {
                Ok(()) => return broker,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "mosquitto did not start in {BROKER_START_ATTEMPTS} attempts on fresh ports:\n{}",
            failures.join("\n---\n")
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker process's id while it runs (the load test reads its memory in /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The directory holding the generated configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the process; Err with its log when it exited before accepting connections (a
    /// port taken meanwhile, most likely). Panics when it neither exits nor accepts in time.
    fn try_launch(&mut self) -> Result<(), String> {
        // Its own log file: Mosquitto warns on every start as root, which is noise in test output.
        let log_path = self.dir.path().join("mosquitto.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("the broker's log file opens");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    return Err(format!(
                        "mosquitto on port {} exited while starting ({status}):\n{log}",
                        self.port
                    ));
                }
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not accept connections on port {} within {BROKER_START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(BROKER_PROBE_INTERVAL);
        }
    }

    /// Starts the process again on the same port (the daemon and the campus are configured
    /// with it), retrying a bind that fails (someone took the port while the broker was down)
    /// at most [`BROKER_START_ATTEMPTS`] times.
    fn launch(&mut self) {
        let mut failures = Vec::new();
        for attempt in 0..BROKER_START_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(BROKER_RESTART_RETRY_DELAY);
            }
            match self.try_launch() {
                Ok(()) => return,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "mosquitto could not start again on port {} in {BROKER_START_ATTEMPTS} attempts:\n{}",
            self.port,
            failures.join("\n---\n")
        );
    }

    /// SIGKILL: the broker loses every session and in-flight message (with persistence on, all
    /// since its last save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Starts the broker again on the same port (after [`Mosquitto::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Stops the broker cleanly (SIGTERM: with persistence on it saves its state) and starts
    /// it again on the same port. Returns how long the stop took.
    pub fn stop_and_start(&mut self) -> Duration {
        let stopping = Instant::now();
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
        let stopped = stopping.elapsed();
        self.launch();
        stopped
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The largest packet [`retain_raw`] may send: room for a message far over every limit we set.
const RAW_CLIENT_MAX_PACKET_BYTES: usize = 64 * 1024 * 1024;
/// How long [`retain_raw`] waits for the broker to take its message.
const RAW_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Retains `payload` on `topic` as an anonymous client that knows no limit (what
/// `mosquitto_pub -r -f FILE` does); returns once the broker acknowledged it (QoS 1).
pub fn retain_raw(port: u16, topic: &str, payload: Vec<u8>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the raw publisher");
    runtime.block_on(async {
        let mut options = MqttOptions::new("raw-publisher", "127.0.0.1", port);
        options.set_max_packet_size(RAW_CLIENT_MAX_PACKET_BYTES, RAW_CLIENT_MAX_PACKET_BYTES);
        let (client, mut events) = AsyncClient::new(options, 4);
        client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .expect("the publish is queued");
        let deadline = tokio::time::Instant::now() + RAW_PUBLISH_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, events.poll())
                .await
                .expect("the broker acknowledges the raw message in time")
                .expect("the broker takes the raw message");
            if let Event::Incoming(Packet::PubAck(_)) = event {
                break;
            }
        }
        let _ = client.disconnect().await;
    });
}

/// Writes a Mosquitto password file (hashed, with `mosquitto_passwd`) in `dir`; returns its path.
pub fn write_password_file(dir: &Path, users: &[(String, String)]) -> PathBuf {
    let passwords = dir.join("passwd");
    for (index, (user, password)) in users.iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if index == 0 {
            command.arg("-c");
        }
        let status = command
            .arg("-b")
            .arg(&passwords)
            .arg(user)
            .arg(password)
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd (package mosquitto) runs");
        assert!(status.success(), "mosquitto_passwd failed for {user}");
    }
    passwords
}

/// A throw-away PKI for a TLS listener on 127.0.0.1, made with the `openssl` command.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server: BrokerTls,
}

/// Whether the `openssl` command can be run (the TLS tests need it to make certificates).
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Generates a CA and a server certificate for `127.0.0.1` (IP SAN) in `dir`; `None`, with a
/// `SKIPPED` line on standard output, when the `openssl` command is missing (Debian package
/// `openssl`).
pub fn make_test_pki(dir: &Path) -> Option<TestPki> {
    if !openssl_available() {
        println!(
            "SKIPPED: the `openssl` command is missing, needed to make the test certificates \
             (apt-get install -y openssl)"
        );
        return None;
    }
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command runs");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test campus CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writing the certificate extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    Some(TestPki {
        ca_cert: dir.join("ca.pem"),
        server: BrokerTls {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
    })
}
