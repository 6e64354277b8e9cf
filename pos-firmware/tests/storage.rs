//! The till against its own storage and its command line's input: a data directory that fills
//! up while selling (a real, small tmpfs), one it may not write (run as an unprivileged user),
//! a cards file that is empty, and a script that is not text or not a file. Each test is the
//! regression test of an item of issue 15 (6, 8, 9): it failed before the fix.
//!
//! The full-disk tests mount a tmpfs and the read-only test drops to uid 65534 with `setpriv`;
//! both need root (tests and CI run as root). Without root, `mount` or `setpriv` they print why
//! and return.

use keymap::TillKey;
use pos_firmware::core::config::TillConfig;
use pos_firmware::journal::Journal;
use pos_firmware::runtime::{Input, Now, TillRuntime};
use pos_firmware::sim::cards::{default_cards, SimCards, SIM_CARDS_FILE};
use shared::record::RecordBody;
use shared::{Fen, Seq, UnixMillis};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pos-firmware");
/// The small filesystem the full-disk tests fill: sled writes its log in 512 KiB segments.
const TMPFS_SIZE: &str = "size=4m";
/// Room left when the disk is filled before a run: enough to open the journal and sell a while.
const HEADROOM_BYTES: u64 = 768 * 1024;
/// How long a full-disk run may take to fill the disk.
const FILL_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `script` with `script -` on `data_dir` and returns what it printed.
fn run_script(data_dir: &Path, script: impl AsRef<[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(["script", "-", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A till that refuses to start (a bad cards file) exits without reading its script: what
    // it says is in its output, the broken pipe says nothing.
    let written = child.stdin.take().unwrap().write_all(script.as_ref());
    if let Err(error) = written {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

/// Runs the script file at `script` on `data_dir`.
fn run_script_file(script: &Path, data_dir: &Path) -> Output {
    Command::new(BIN)
        .arg("script")
        .arg(script)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    /// `None` (with the reason printed) where this machine cannot mount one.
    fn mount() -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let mount = parent.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", TMPFS_SIZE, "tmpfs"])
            .arg(&mount)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs {
                _parent: parent,
                mount,
            }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (not root?): {}",
                    text(&out.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command: {e}");
                None
            }
        }
    }

    /// Fills the filesystem with a file, then gives back `headroom` bytes of it.
    fn fill_leaving(&self, headroom: u64) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(headroom)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// The journal's money facts: committed amount per card, and every intent resolved at most once.
fn committed_per_card(dir: &Path) -> BTreeMap<String, Fen> {
    let journal = Journal::open(dir).unwrap();
    let mut committed = BTreeMap::<String, Fen>::new();
    let mut intents = BTreeMap::new();
    for record in journal.records_from(Seq::FIRST) {
        let record = record.unwrap();
        match record.body {
            RecordBody::SaleIntent(_) => {
                intents.insert(record.seq, 0u32);
            }
            RecordBody::SaleCommitted(sale) => {
                *intents
                    .get_mut(&sale.intent)
                    .expect("commit of a known intent") += 1;
                let card = format!("{:?}", sale.payer);
                let sum = committed.entry(card).or_insert(Fen::ZERO);
                *sum = sum.checked_add(sale.amount).unwrap();
            }
            RecordBody::SaleAborted(sale) => {
                *intents
                    .get_mut(&sale.intent)
                    .expect("abort of a known intent") += 1
            }
            RecordBody::SaleInDoubt(sale) => {
                *intents
                    .get_mut(&sale.intent)
                    .expect("in-doubt of a known intent") += 1
            }
            _ => {}
        }
    }
    assert!(
        intents.values().all(|&n| n <= 1),
        "an intent resolved twice: {intents:?}"
    );
    committed
}

fn card_balance(dir: &Path, name: &str) -> Fen {
    SimCards::open(dir).unwrap().by_name(name).unwrap().balance
}

/// Issue 15 item 6, as the merchant met it: the simulator's cards file is the first write to
/// fail, and the till asked "请重新刷卡" again and again with no cause in the log.
#[test]
fn a_data_directory_that_fills_up_stops_selling_with_storage_full_until_space_returns() {
    let Some(fs) = Tmpfs::mount() else { return };
    let data = fs.mount.join("data");
    let setup = run_script(&data, "sales 1 1.00 card-1\n");
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let filler = fs.fill_leaving(HEADROOM_BYTES);

    let mut child = Command::new(BIN)
        .args(["script", "-", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut all = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut all).unwrap();
        all
    });
    // Far more sales than the room left holds (about 1000 fit), then a marker.
    let sale = "type 0.01\nkeys Enter\ntap card-1\n";
    stdin
        .write_all(format!("{}show\n", sale.repeat(3000)).as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + FILL_TIMEOUT;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|l: &String| l != "> show") {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("no end of the sales ({e}); last lines: {:?}", seen.last()),
        }
    }
    let stopped_at = seen
        .iter()
        .position(|l| l.contains("M| 存储已满 | 暂停收款"))
        .expect("the merchant's screen names the full storage");
    assert!(
        seen[stopped_at + 1..]
            .iter()
            .all(|l| !l.contains(" J| ") && !l.contains("请重新刷卡")),
        "nothing is journaled or asked for once the storage is full"
    );
    let shown = lines.recv_timeout(FILL_TIMEOUT).unwrap();
    assert!(
        shown.contains("M| 存储已满"),
        "the screen stays on storage full: {shown}"
    );

    // Space comes back: the next check (a tick, at most STORAGE_RETRY_MS later) restarts the till.
    std::fs::remove_file(filler).unwrap();
    stdin.write_all(b"wait 6s\nshow\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    out_thread.join().unwrap();
    seen.extend(lines.try_iter());
    let log = err_thread.join().unwrap();
    assert_eq!(status.code(), Some(3), "{}", seen.join("\n"));
    assert!(
        seen.iter()
            .any(|l| l.contains("FATAL") && l.contains("storage has room again")),
        "{:?}",
        seen.last_chunk::<4>()
    );
    assert!(
        log.contains("ALARM storage full") && log.contains("No space left on device"),
        "the log names the cause with the OS error:\n{log}"
    );

    // The restarted till settles the sale the full disk interrupted and sells again.
    let resumed = run_script(&data, "tap card-1\nsales 2 0.01 card-1\n");
    assert!(
        resumed.status.success(),
        "{}\n{}",
        text(&resumed.stdout),
        text(&resumed.stderr)
    );
    let committed = committed_per_card(&data);
    let card_1 = committed.values().copied().next().unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        card_balance(&data, "card-1"),
        Fen::new(10_000).checked_sub(card_1).unwrap(),
        "no money lost, none taken twice"
    );
}

/// A key press of the in-process till, 100 ms after the last input.
fn step(
    runtime: &mut TillRuntime,
    cards: &mut SimCards,
    clock: &mut Now,
    input: Input,
) -> Vec<pos_firmware::runtime::Output> {
    clock.mono_ms += 100;
    clock.wall = UnixMillis(clock.wall.0 + 100);
    runtime
        .handle(input, *clock, cards)
        .expect("a full disk is not fatal")
}

/// Issue 15 item 6, the journal's side: with the cards in memory the journal's append is what
/// fails. Before the fix the failed append was fatal; now selling stops on 存储已满 and no card is
/// written after an intent that did not become durable.
#[test]
fn a_journal_append_on_a_full_disk_stops_selling_and_writes_no_card() {
    let Some(fs) = Tmpfs::mount() else { return };
    let data = fs.mount.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut clock = Now {
        wall: UnixMillis(1_795_000_000_000),
        mono_ms: 0,
    };
    let mut cards = SimCards::in_memory(default_cards()).unwrap();
    let mut runtime = TillRuntime::open(&data, TillConfig::default(), clock).unwrap();
    let filler = fs.fill_leaving(HEADROOM_BYTES);
    let digit = |d| TillKey::digit(d).unwrap();
    let amount = [digit(0), TillKey::Dot, digit(0), digit(1)];
    let mut sales = 0;
    while runtime.storage_full().is_none() {
        assert!(sales < 5_000, "the disk never filled");
        sales += 1;
        for key in amount.into_iter().chain([TillKey::Enter]) {
            step(&mut runtime, &mut cards, &mut clock, Input::Key(key));
        }
        let read = cards.tap_named("card-1").unwrap();
        step(&mut runtime, &mut cards, &mut clock, Input::Card(read));
    }
    assert!(
        runtime
            .storage_full()
            .unwrap()
            .contains("No space left on device"),
        "{:?}",
        runtime.storage_full()
    );
    assert_eq!(runtime.displays().merchant.lines[0], "存储已满");
    // A tap now reaches nothing: no record, no card write.
    let balance = cards.by_name("card-1").unwrap().balance;
    let read = cards.tap_named("card-1").unwrap();
    let outputs = step(&mut runtime, &mut cards, &mut clock, Input::Card(read));
    assert!(outputs
        .iter()
        .all(|o| !matches!(o, pos_firmware::runtime::Output::Journaled(_))));
    assert_eq!(cards.by_name("card-1").unwrap().balance, balance);

    // Space back; the restarted till settles the interrupted sale at the card's next tap.
    drop(runtime);
    std::fs::remove_file(filler).unwrap();
    let mut runtime = TillRuntime::open(&data, TillConfig::default(), clock).unwrap();
    let read = cards.tap_named("card-1").unwrap();
    step(&mut runtime, &mut cards, &mut clock, Input::Card(read));
    drop(runtime);
    let committed = committed_per_card(&data);
    let spent = committed.values().copied().next().unwrap_or(Fen::ZERO);
    assert_eq!(
        cards.by_name("card-1").unwrap().balance,
        Fen::new(10_000).checked_sub(spent).unwrap(),
        "the card holds exactly what the journal committed"
    );
}

/// Issue 15 item 6: a data directory the till may not write is refused at start, with its path.
#[test]
fn a_data_directory_that_is_not_writable_is_refused_at_start_with_its_path() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no setpriv to run the till as an unprivileged user");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    // An existing data directory with a journal, then owned by root and read-only to others.
    let setup = run_script(&data, "sales 1 1.00 card-1\n");
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [vec!["script", "-"], vec!["sim", "--no-link"]] {
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(&args)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(
            stderr.contains(&format!(
                "data directory {} is not writable",
                data.display()
            )) && stderr.contains("Permission denied"),
            "{args:?}: {stderr}"
        );
    }
}

/// Issue 15 item 8: a script that is not UTF-8 is bad input (exit 2, the line and what is wrong).
#[test]
fn a_script_that_is_not_utf8_is_an_input_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("latin1.till");
    std::fs::write(&script, b"show\n# caf\xe9\nshow\n").unwrap();
    let output = run_script_file(&script, &dir.path().join("data"));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("script {}: line 2", script.display()))
            && stderr.contains("not UTF-8"),
        "{stderr}"
    );

    // The same from standard input.
    let output = run_script(&dir.path().join("data"), "show\nshow \u{0}\n");
    assert!(
        output.status.success(),
        "a NUL is UTF-8: {}",
        text(&output.stderr)
    );
    let output = run_script(&dir.path().join("data"), b"show\nshow\n\xff\xfe\n");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("script standard input: line 3") && stderr.contains("not UTF-8"),
        "{stderr}"
    );
}

/// Issue 15 item 8: a script path that is a directory (or missing) is bad input, exit 2.
#[test]
fn a_script_path_that_is_a_directory_or_missing_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    for (path, says) in [
        (dir.path().to_path_buf(), "is a directory"),
        (dir.path().join("missing.till"), "cannot open it"),
    ] {
        let output = run_script_file(&path, &dir.path().join("data"));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("script {}: {says}", path.display())),
            "{stderr}"
        );
    }
}

/// Issue 15 item 9: an empty cards file is refused like a truncated one, and left as it is.
#[test]
fn an_empty_or_comment_only_cards_file_is_refused_not_taken_as_no_cards() {
    for contents in ["", "\n", "# my cards\n\n"] {
        let dir = tempfile::tempdir().unwrap();
        let cards = dir.path().join(SIM_CARDS_FILE);
        std::fs::write(&cards, contents).unwrap();
        let output = run_script(dir.path(), "sales 1 1.00 card-1\n");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{contents:?}: {stderr}");
        assert!(
            stderr.contains(&cards.display().to_string()) && stderr.contains("holds no cards"),
            "{contents:?}: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&cards).unwrap(), contents);
        assert!(SimCards::open(dir.path()).is_err());
    }
}
