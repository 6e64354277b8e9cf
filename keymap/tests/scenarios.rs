//! Combo behaviour as data: runs every `tests/scenarios/*.txt` file against a fresh
//! `ComboDetector` and reports failures as `file:line`.
//!
//! The line format is documented in `KEYS.md` ("Scenario files"). Keeping the behaviour in small
//! text files makes each case readable next to the manual's table, and adding a case needs no Rust.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use keymap::{ComboDetector, Command, TillKey};

/// What a step feeds the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Press(TillKey),
    Tick,
}

/// One meaningful line of a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `@<ms> <input> -> <commands>`: feed the input and expect exactly these commands.
    Step {
        at_ms: u64,
        input: Input,
        expect: Vec<Command>,
    },
    /// `? deadline <ms|none>`: expect `deadline_ms()` to be this.
    DeadlineIs(Option<u64>),
}

/// A parsed line and its 1-based line number.
#[derive(Debug)]
struct Numbered {
    line_no: usize,
    line: Line,
}

const STEP_FORM: &str = "'@<ms> <key|tick> -> <commands>'";
const CHECK_FORM: &str = "'? deadline <ms|none>'";

/// Parses one line; `Ok(None)` for blank and comment-only lines.
fn parse_line(text: &str) -> Result<Option<Line>, String> {
    let text = text
        .split_once('#')
        .map_or(text, |(content, _comment)| content)
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(check) = text.strip_prefix('?') {
        return parse_check(check).map(Some);
    }
    if text.starts_with('@') {
        return parse_step(text).map(Some);
    }
    Err(format!(
        "expected a step {STEP_FORM} or a check {CHECK_FORM}, got {text:?}"
    ))
}

fn parse_check(check: &str) -> Result<Line, String> {
    match check.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["deadline", "none"] => Ok(Line::DeadlineIs(None)),
        ["deadline", ms] => parse_ms(ms)
            .map(|ms| Line::DeadlineIs(Some(ms)))
            .ok_or_else(|| format!("bad deadline {ms:?}: expected milliseconds or 'none'")),
        _ => Err(format!(
            "bad check {:?}: expected {CHECK_FORM}",
            check.trim()
        )),
    }
}

fn parse_step(text: &str) -> Result<Line, String> {
    let Some((left, right)) = text.split_once("->") else {
        return Err(format!(
            "missing '->' in {text:?}: every step states what it emits \
             (write '->' with nothing after it for 'emits nothing')"
        ));
    };
    if right.contains("->") {
        return Err(format!("more than one '->' in {text:?}"));
    }
    let (at, input) = match left.split_whitespace().collect::<Vec<_>>().as_slice() {
        [at, input] => (*at, *input),
        other => {
            return Err(format!(
                "expected '@<ms> <key|tick>' before '->', got {} word(s) {other:?}",
                other.len()
            ))
        }
    };
    let at_ms = at
        .strip_prefix('@')
        .and_then(parse_ms)
        .ok_or_else(|| format!("bad time {at:?}: expected '@' and milliseconds, e.g. @1500"))?;
    let input = if input == "tick" {
        Input::Tick
    } else {
        Input::Press(input.parse::<TillKey>().map_err(|e| e.to_string())?)
    };
    let expect = right
        .split_whitespace()
        .map(|word| word.parse::<Command>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Line::Step {
        at_ms,
        input,
        expect,
    })
}

/// Decimal milliseconds, `_` allowed between digits.
fn parse_ms(text: &str) -> Option<u64> {
    let starts_with_digit = text.chars().next().is_some_and(|c| c.is_ascii_digit());
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    if !starts_with_digit || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Parses a whole file, collecting every malformed line as `(line_no, message)`.
fn parse_scenario(text: &str) -> Result<Vec<Numbered>, Vec<(usize, String)>> {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (line_no, raw) in (1..).zip(text.lines()) {
        match parse_line(raw) {
            Ok(Some(line)) => lines.push(Numbered { line_no, line }),
            Ok(None) => {}
            Err(message) => errors.push((line_no, message)),
        }
    }
    if lines.iter().all(|n| !matches!(n.line, Line::Step { .. })) {
        errors.push((0, "the scenario has no steps".to_owned()));
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

fn show(commands: &[Command]) -> String {
    if commands.is_empty() {
        "nothing".to_owned()
    } else {
        commands
            .iter()
            .map(Command::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs parsed lines against a fresh detector; the first mismatch as `(line_no, message)`.
fn run_scenario(lines: &[Numbered]) -> Result<(), (usize, String)> {
    let mut detector = ComboDetector::new();
    for Numbered { line_no, line } in lines {
        match line {
            Line::Step {
                at_ms,
                input,
                expect,
            } => {
                let (what, got) = match *input {
                    Input::Press(key) => (format!("@{at_ms} {key}"), detector.press(key, *at_ms)),
                    Input::Tick => (format!("@{at_ms} tick"), detector.tick(*at_ms)),
                };
                if got.as_slice() != expect.as_slice() {
                    return Err((
                        *line_no,
                        format!(
                            "{what}: expected {}, got {}",
                            show(expect),
                            show(got.as_slice())
                        ),
                    ));
                }
            }
            Line::DeadlineIs(expect) => {
                let got = detector.deadline_ms();
                if got != *expect {
                    return Err((
                        *line_no,
                        format!(
                            "deadline: expected {expect:?}, got {got:?} (pending: {:?})",
                            detector.pending()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// Every `.txt` file of the scenario folder, sorted, with its text.
fn scenario_files() -> Vec<(String, String)> {
    let dir = scenario_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    paths.retain(|p| p.extension().is_some_and(|ext| ext == "txt"));
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let shown = path
                .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
                .unwrap_or(&path)
                .display()
                .to_string();
            (shown, text)
        })
        .collect()
}

#[test]
fn every_scenario_file_passes() {
    let files = scenario_files();
    assert!(
        files.len() >= 5,
        "expected the scenario files in {}",
        scenario_dir().display()
    );
    let mut failures = String::new();
    let mut steps = 0;
    for (path, text) in &files {
        match parse_scenario(text) {
            Err(errors) => {
                for (line_no, message) in errors {
                    let _ = writeln!(failures, "{path}:{line_no}: malformed: {message}");
                }
            }
            Ok(lines) => {
                steps += lines.len();
                if let Err((line_no, message)) = run_scenario(&lines) {
                    let _ = writeln!(failures, "{path}:{line_no}: {message}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "scenario failures:\n{failures}");
    eprintln!("{} scenario files, {steps} steps and checks", files.len());
}

/// The scenarios together press every key and expect every command at least once, so the manual's
/// whole table (and every plain key) is covered by data, not only by unit tests.
#[test]
fn scenarios_cover_every_key_and_every_command() {
    let mut pressed = Vec::new();
    let mut expected = Vec::new();
    for (path, text) in scenario_files() {
        let lines = parse_scenario(&text).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        for numbered in lines {
            if let Line::Step { input, expect, .. } = numbered.line {
                if let Input::Press(key) = input {
                    pressed.push(key);
                }
                expected.extend(expect);
            }
        }
    }
    let missing_keys: Vec<String> = TillKey::ALL
        .into_iter()
        .filter(|k| !pressed.contains(k))
        .map(|k| k.to_string())
        .collect();
    let missing_commands: Vec<String> = Command::ALL
        .into_iter()
        .filter(|c| !expected.contains(c))
        .map(|c| c.to_string())
        .collect();
    assert!(
        missing_keys.is_empty() && missing_commands.is_empty(),
        "never pressed: {missing_keys:?}; never expected: {missing_commands:?}"
    );
}

#[test]
fn well_formed_lines_parse() {
    let step = |at_ms, input, expect: &[Command]| {
        Ok(Some(Line::Step {
            at_ms,
            input,
            expect: expect.to_vec(),
        }))
    };
    assert_eq!(parse_line(""), Ok(None));
    assert_eq!(parse_line("   # only a comment"), Ok(None));
    assert_eq!(
        parse_line("@0 Clear ->"),
        step(0, Input::Press(TillKey::Clear), &[])
    );
    assert_eq!(
        parse_line("@1_500\t清零 -> Clear   Digit(1)  # late"),
        step(
            1_500,
            Input::Press(TillKey::Clear),
            &[Command::Clear, Command::Digit(1)]
        )
    );
    assert_eq!(parse_line("@7 tick->"), step(7, Input::Tick, &[]));
    assert_eq!(
        parse_line("@7 . -> Dot"),
        step(7, Input::Press(TillKey::Dot), &[Command::Dot])
    );
    assert_eq!(
        parse_line("? deadline 1000"),
        Ok(Some(Line::DeadlineIs(Some(1000))))
    );
    assert_eq!(
        parse_line("?deadline none"),
        Ok(Some(Line::DeadlineIs(None)))
    );
}

#[test]
fn malformed_lines_are_reported_clearly() {
    let cases = [
        ("Clear -> ", "expected a step"),
        ("@0 Clear", "missing '->'"),
        ("@0 Clear -> -> Clear", "more than one '->'"),
        ("@ Clear ->", "bad time \"@\""),
        ("@-5 Clear ->", "bad time"),
        ("@1e3 Clear ->", "bad time"),
        ("@_1 Clear ->", "bad time"),
        ("@99999999999999999999 Clear ->", "bad time"),
        ("1000 Clear ->", "expected a step"),
        ("@0 ->", "got 1 word(s)"),
        ("@0 Clear 1 -> ShowClock", "got 3 word(s)"),
        ("@0 Clear+1 -> ShowClock", "\"Clear+1\" is not a till key"),
        ("@0 Tock ->", "\"Tock\" is not a till key"),
        ("@0 1 -> Digit(10)", "\"Digit(10)\" is not a command"),
        ("@0 1 -> digit(1)", "\"digit(1)\" is not a command"),
        ("@0 1 -> Digit(1),", "\"Digit(1),\" is not a command"),
        ("? deadline", "bad check"),
        ("? armed", "bad check"),
        ("? deadline soon", "bad deadline \"soon\""),
        ("? deadline 1 2", "bad check"),
    ];
    for (line, wanted) in cases {
        match parse_line(line) {
            Err(message) => assert!(
                message.contains(wanted),
                "{line:?}: message {message:?} lacks {wanted:?}"
            ),
            Ok(parsed) => panic!("{line:?} parsed as {parsed:?}"),
        }
    }
}

#[test]
fn every_malformed_line_of_a_file_is_reported_with_its_number() {
    let text = "# ok\n@0 Clear ->\n@1 Clear\n\n? deadline x\n@2 5 -> Clear\n";
    let errors = parse_scenario(text).expect_err("two lines are malformed");
    let numbers: Vec<usize> = errors.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [3, 5]);

    let only_checks = parse_scenario("? deadline none\n").expect_err("no steps");
    assert_eq!(only_checks, [(0, "the scenario has no steps".to_owned())]);
}

#[test]
fn a_wrong_expectation_names_its_line_and_both_sides() {
    let lines = parse_scenario("@0 Clear ->\n\n@300 1 -> ShowClock\n").expect("well formed");
    let (line_no, message) = run_scenario(&lines).expect_err("Clear+1 is not ShowClock");
    assert_eq!(line_no, 3);
    assert_eq!(
        message,
        "@300 1: expected ShowClock, got ShowRecentAmount(ThirdLast)"
    );

    let lines = parse_scenario("@0 F2 ->\n? deadline 1999\n").expect("well formed");
    let (line_no, message) = run_scenario(&lines).expect_err("the deadline is 2000");
    assert_eq!(line_no, 2);
    assert!(
        message.contains("expected Some(1999), got Some(2000)"),
        "{message}"
    );
}
