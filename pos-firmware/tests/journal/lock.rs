//! sled's exclusive lock: a second open, in this process or from another one, is `Locked`, and the
//! journal opens again once its owner is gone.

use super::*;

#[test]
fn second_open_in_this_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = journal_with(dir.path(), &lunch_steps(3));
    match Journal::open(dir.path()) {
        Err(JournalError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The refused open changed nothing for the owner.
    assert_eq!(journal.last_seq(), Some(Seq(3)));
    drop(journal);
    // Once the owner is gone, the journal opens at once (sled's lingering lock is waited out).
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(3)));
}

/// Environment variable that turns [`child_opens_journal`] into the child side of
/// [`second_open_from_another_process_is_locked`].
const CHILD_DIR_ENV: &str = "POS_JOURNAL_TEST_CHILD_DIR";

/// Helper run in a child process: opens the journal named by [`CHILD_DIR_ENV`] and prints the
/// outcome. Does nothing (passes) in a normal test run.
#[test]
fn child_opens_journal() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    match Journal::open(Path::new(&dir)) {
        Ok(journal) => println!(
            "CHILD-RESULT ok last={}",
            journal.last_seq().map_or(0, |s| s.0)
        ),
        Err(JournalError::Locked { .. }) => println!("CHILD-RESULT locked"),
        Err(e) => println!("CHILD-RESULT error {e}"),
    }
}

fn open_in_child(dir: &Path) -> String {
    // Unwrap: the test binary knows its own path.
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            // The child test by its name in this binary (module path included).
            "lock::child_opens_journal",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
        .to_string()
}

#[test]
fn second_open_from_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = journal_with(dir.path(), &lunch_steps(4));
    assert_eq!(open_in_child(dir.path()), "locked");
    drop(journal);
    // The lock is released with the owner: now the child gets the journal.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(open_in_child(dir.path()), "ok last=4");
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq(), Some(Seq(4)));
}
