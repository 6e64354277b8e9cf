//! A real Mosquitto broker for tests: generated config on a free loopback port, optional
//! password file, ACL and TLS listener, bounded wait until it accepts connections, SIGKILL and
//! restart on the same port, and stop on drop. Tests that need it panic with a clear message
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

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Mosquitto {
    /// Writes the configuration and starts the broker; returns once it accepts connections.
    pub fn start(options: &MosquittoOptions) -> Mosquitto {
        let dir = tempfile::tempdir().expect("a temporary directory for the broker");
        let port = free_port();
        let mut conf = String::new();
        let _ = writeln!(conf, "listener {port} 127.0.0.1");
        let _ = writeln!(conf, "persistence false");
        let _ = writeln!(conf, "log_dest stderr");
        let _ = writeln!(conf, "log_type error");
        let _ = writeln!(conf, "log_type warning");
        // Mosquitto started as root drops to the `mosquitto` user, who cannot read our temp dir.
        if running_as_root() {
            let _ = writeln!(conf, "user root");
        }
        if let Some(tls) = &options.tls {
            let _ = writeln!(conf, "certfile {}", tls.cert.display());
            let _ = writeln!(conf, "keyfile {}", tls.key.display());
        }
        if options.users.is_empty() {
            let _ = writeln!(conf, "allow_anonymous true");
        } else {
            let passwords = write_password_file(dir.path(), &options.users);
            let _ = writeln!(conf, "allow_anonymous false");
            let _ = writeln!(conf, "password_file {}", passwords.display());
        }
        if let Some(acl) = &options.acl {
            let acl_path = dir.path().join("acl");
            std::fs::write(&acl_path, acl).expect("writing the ACL file");
            let _ = writeln!(conf, "acl_file {}", acl_path.display());
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("writing mosquitto.conf");
        let mut broker = Mosquitto {
            dir,
            conf: conf_path,
            port,
            child: None,
            kills: 0,
        };
        broker.launch();
        broker
    }

    /// Starts the broker with a configuration written by `make(port, dir)` (for testing the
    /// example configuration in docs/mosquitto/ with its paths replaced).
    pub fn start_raw(make: impl FnOnce(u16, &Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().expect("a temporary directory for the broker");
        let port = free_port();
        let mut conf = make(port, dir.path());
        if running_as_root() {
            conf.push_str("\nuser root\n");
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("writing mosquitto.conf");
        let mut broker = Mosquitto {
            dir,
            conf: conf_path,
            port,
            child: None,
            kills: 0,
        };
        broker.launch();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the generated configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn launch(&mut self) {
        // Its own log file: Mosquitto warns on every start as root, which is noise in test output.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))
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
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("mosquitto.log"))
                        .unwrap_or_default();
                    panic!("mosquitto exited while starting ({status}):\n{log}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not accept connections on port {} within {BROKER_START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(BROKER_PROBE_INTERVAL);
        }
    }

    /// SIGKILL: the broker loses every session and in-flight message (persistence is off).
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
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// Generates a CA and a server certificate for `127.0.0.1` (IP SAN) in `dir`.
pub fn make_test_pki(dir: &Path) -> TestPki {
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
    TestPki {
        ca_cert: dir.join("ca.pem"),
        server: BrokerTls {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        },
    }
}
