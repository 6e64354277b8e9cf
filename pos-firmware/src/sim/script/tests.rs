//! The runner's own lines: faults, card copies, the reader switch, durations, and the code-payment
//! lines (named codes, the campus's switch and accounts) and the campus app's.

use super::*;

fn runner(dir: &Path) -> ScriptRunner<Vec<u8>> {
    let setup = ScriptSetup {
        data_dir: dir.to_path_buf(),
        config: TillConfig::default(),
        start: parse_local(DEFAULT_START).unwrap(),
        pause_at: None,
        link: None,
    };
    ScriptRunner::start(setup, Vec::new()).unwrap()
}

#[test]
fn fault_and_card_copy_lines_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = runner(dir.path());
    let error = run.run_line("fault pulled-away").unwrap_err().to_string();
    assert!(
        error.contains("unknown fault 'pulled-away'") && error.contains("half-written"),
        "{error}"
    );
    let error = run.run_line("restore-card card-1").unwrap_err().to_string();
    assert!(error.contains("no saved copy 'card-1 copy'"), "{error}");
    let error = run.run_line("snapshot-card nope").unwrap_err().to_string();
    assert!(error.contains("no simulated card 'nope'"), "{error}");
    run.run_line("fault garbled-acked").unwrap();
    assert_eq!(run.cards().armed_fault(), Some(WriteFault::GarbledAcked));
    run.run_line("snapshot-card card-1 before").unwrap();
    run.run_line("restore-card CARD-1 before").unwrap();
}

#[test]
fn reader_lines_break_and_repair_the_emulated_chip() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = runner(dir.path());
    let error = run.run_line("reader unplugged").unwrap_err().to_string();
    assert!(error.contains("reader dead|repaired"), "{error}");
    run.run_line("reader dead").unwrap();
    assert!(run.cards().reader_broken());
    run.run_line("reader repaired").unwrap();
    assert!(!run.cards().reader_broken());
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration_ms("500ms"), Some(500));
    assert_eq!(parse_duration_ms("3s"), Some(3000));
    assert_eq!(parse_duration_ms("2m"), Some(120_000));
    assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
    assert_eq!(parse_duration_ms("1d"), None);
    assert_eq!(parse_duration_ms("s"), None);
    assert_eq!(parse_duration_ms("99999999999999999999h"), None);
}

#[test]
fn named_codes_are_made_by_the_campus_and_raw_text_stays_raw() {
    use super::orders::{parse_code_spec, CodeSpec};
    use crate::sim::payments::{behaviour_of, WalletBehaviour};
    use shared::pay::DeclineReason;
    use shared::paycode::{CodeMethod, PaymentCode};

    assert_eq!(parse_code_spec("134567890123456789"), Ok(None));
    assert_eq!(parse_code_spec(""), Ok(None));
    let spec = parse_code_spec("alipay user-paying-then-paid 8 payer 42")
        .unwrap()
        .unwrap();
    assert_eq!(
        spec,
        CodeSpec::Wallet {
            method: CodeMethod::Alipay,
            behaviour: WalletBehaviour::UserPayingThenPaid { after_s: 8 },
            payer: Some(42),
        }
    );
    let mut campus = super::orders::LocalCampus::new();
    let code = campus.make_code(&spec, UnixMillis(0)).unwrap();
    assert_eq!(
        PaymentCode::recognise(&code).unwrap().method(),
        CodeMethod::Alipay
    );
    assert_eq!(
        behaviour_of(&code),
        Some(WalletBehaviour::UserPayingThenPaid { after_s: 8 })
    );
    let declined = parse_code_spec("unionpay declined insufficient-funds")
        .unwrap()
        .unwrap();
    let code = campus.make_code(&declined, UnixMillis(0)).unwrap();
    assert_eq!(
        behaviour_of(&code),
        Some(WalletBehaviour::Declined(DeclineReason::InsufficientFunds))
    );
    for bad in [
        "wechat",
        "wechat paid-later",
        "wechat declined broke",
        "alipay user-paying-then-paid 300",
        "virtual",
        "virtual-replay again",
    ] {
        assert!(parse_code_spec(bad).is_err(), "{bad}");
    }
}

#[test]
fn virtual_card_codes_verify_expire_and_replay_as_the_campus_made_them() {
    use super::orders::{CodeSpec, LocalCampus};
    use crate::sim::payments::SIM_CAMPUS_KEY_SEED;
    use shared::paycode::{signing_key_from_seed, PaymentCode};

    let key = signing_key_from_seed(SIM_CAMPUS_KEY_SEED).verifying_key();
    let keys = move |_id: u8| Some(key);
    let now = UnixMillis(1_795_000_000_000);
    let mut campus = LocalCampus::new();
    let alice = CodeSpec::Virtual {
        account: "alice".into(),
    };
    let text = campus.make_code(&alice, now).unwrap();
    let code = PaymentCode::recognise(&text)
        .unwrap()
        .virtual_card()
        .unwrap();
    assert_eq!(code.account, campus.account("alice").unwrap().account);
    assert!(code.verify(&keys, now).is_ok());
    let expired = CodeSpec::VirtualExpired {
        account: "alice".into(),
    };
    let old = campus.make_code(&expired, now).unwrap();
    let old = PaymentCode::recognise(&old)
        .unwrap()
        .virtual_card()
        .unwrap();
    assert!(
        old.verify(&keys, now).is_err(),
        "expired at the till's clock"
    );
    // The replay is the last fresh code, not the expired one.
    assert_eq!(
        campus.make_code(&CodeSpec::VirtualReplay, now).unwrap(),
        text
    );
    let nobody = CodeSpec::Virtual {
        account: "mallory".into(),
    };
    assert!(campus.make_code(&nobody, now).is_err());
}

#[test]
fn backend_lines_declare_accounts_and_expect_reads_the_campus() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = runner(dir.path());
    run.run_line("backend account dora 42 12.50").unwrap();
    // The first declaration replaces the default accounts.
    let error = run.run_line("expect balance alice 100.00").unwrap_err();
    assert!(
        error.to_string().contains("no campus account 'alice'"),
        "{error}"
    );
    run.run_line("expect balance dora 12.50").unwrap();
    run.run_line("expect ledger 0 entries").unwrap();
    // Once the campus answered (here: a balance was read), the accounts are fixed.
    let error = run.run_line("backend account eve 44 1.00").unwrap_err();
    assert!(error.to_string().contains("before the first"), "{error}");
    let error = run.run_line("backend sideways").unwrap_err();
    assert!(error.to_string().contains("usage: backend"), "{error}");
    run.run_line("backend down").unwrap();
    run.run_line("backend silent").unwrap();
    run.run_line("backend up").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut run = runner(dir.path());
    run.run_line("backend account dora 42 12.50").unwrap();
    let error = run.run_line("backend account dora 43 1.00").unwrap_err();
    assert!(error.to_string().contains("declared twice"), "{error}");

    // Without declarations: the default accounts.
    let dir = tempfile::tempdir().unwrap();
    let mut run = runner(dir.path());
    run.run_line("expect balance alice 100.00").unwrap();
    run.run_line("expect balance bob 3.00").unwrap();
}

#[test]
fn the_picker_offers_every_behaviour_of_every_wallet_and_each_account() {
    use super::orders::{picker_choices, CodeSpec, LocalCampus};
    use crate::sim::payments::WalletBehaviour;
    use std::collections::HashSet;
    let campus = LocalCampus::new();
    let choices = picker_choices(&campus);
    let behaviours: HashSet<String> = choices
        .iter()
        .filter_map(|(_, spec)| match spec {
            CodeSpec::Wallet { behaviour, .. } => Some(
                format!("{behaviour:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap()
                    .to_string(),
            ),
            _ => None,
        })
        .collect();
    for behaviour in [
        WalletBehaviour::PaidAtOnce,
        WalletBehaviour::UserPayingThenPaid { after_s: 8 },
        WalletBehaviour::UserPayingNever,
        WalletBehaviour::Declined(shared::pay::DeclineReason::InsufficientFunds),
        WalletBehaviour::NoAnswer,
        WalletBehaviour::DuplicatePrompt,
        WalletBehaviour::PaidDuringReversal,
    ] {
        let name = format!("{behaviour:?}");
        let name = name.split(['(', ' ']).next().unwrap();
        assert!(behaviours.contains(name), "{name} is not offered");
    }
    for account in campus.accounts() {
        assert!(choices.iter().any(
            |(_, spec)| matches!(spec, CodeSpec::Virtual { account: a } if *a == account.name)
        ));
    }
    assert!(choices
        .iter()
        .any(|(_, spec)| *spec == CodeSpec::VirtualReplay));
}

#[test]
fn a_qr_shown_is_printed_once_as_a_qr_line_and_written_as_a_png_with_qr_png() {
    let dir = tempfile::tempdir().unwrap();
    let pngs = dir.path().join("qr");
    let mut run = runner(dir.path()).with_qr_png(pngs.clone());
    let mut displays = run.printed.clone();
    displays.qr = Some("CQ1FIRST".to_string());
    run.print_displays(&displays, false).unwrap();
    run.print_displays(&displays, false).unwrap();
    displays.qr = Some("CQ1SECOND".to_string());
    run.print_displays(&displays, false).unwrap();
    displays.qr = None;
    run.print_displays(&displays, false).unwrap();
    let text = String::from_utf8(run.out.clone()).unwrap();
    let qr_lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter(|l| l.starts_with("QR"))
        .collect();
    let first = pngs.join("qr-0001.png");
    let second = pngs.join("qr-0002.png");
    assert_eq!(
        qr_lines,
        vec![
            "QR CQ1FIRST".to_string(),
            format!("QR-PNG {}", first.display()),
            "QR CQ1SECOND".to_string(),
            format!("QR-PNG {}", second.display()),
        ]
    );
    let png = std::fs::read(&first).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(second.exists());
    assert!(!pngs.join("qr-0003.png").exists());
}

/// A runner whose till holds the simulated campus's QR key (as the CLI's), offline by hand.
fn offline_qr_runner(dir: &Path) -> ScriptRunner<Vec<u8>> {
    let setup = ScriptSetup {
        data_dir: dir.to_path_buf(),
        config: TillConfig {
            demo_qr_master: Some(crate::sim::payments::SIM_QR_MASTER_KEY),
            ..TillConfig::default()
        },
        start: parse_local(DEFAULT_START).unwrap(),
        pause_at: None,
        link: None,
    };
    let mut run = ScriptRunner::start(setup, Vec::new()).unwrap();
    run.run_line("keys Clear 7").unwrap();
    run.run_line("keys Clear").unwrap();
    run
}

fn printed(run: ScriptRunner<Vec<u8>>) -> String {
    String::from_utf8(run.into_output()).unwrap()
}

#[test]
fn the_app_lines_need_a_qr_shown_and_a_code_paid_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = offline_qr_runner(dir.path());
    let error = run.run_line("app pay alice").unwrap_err().to_string();
    assert!(error.contains("no QR code yet"), "{error}");
    let error = run.run_line("app type").unwrap_err().to_string();
    assert!(error.contains("no code yet"), "{error}");
    let error = run.run_line("app scan alice").unwrap_err().to_string();
    assert!(
        error.contains("usage: app pay ACCOUNT, or app type"),
        "{error}"
    );
    run.run_line("type 8").unwrap();
    run.run_line("keys Enter").unwrap();
    let error = run.run_line("app pay nobody").unwrap_err().to_string();
    assert!(error.contains("no campus account 'nobody'"), "{error}");
}

#[test]
fn the_app_refuses_a_qr_the_account_cannot_cover_and_pays_it_once_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = offline_qr_runner(dir.path());
    run.run_line("type 8").unwrap();
    run.run_line("keys Enter").unwrap();
    run.run_line("app pay bob").unwrap(); // ¥3.00 does not cover ¥8.00
    run.run_line("app pay alice").unwrap();
    run.run_line("app pay alice").unwrap(); // the app retrying: the same code, no new charge
    run.run_line("app pay bob").unwrap(); // paid already, by another account
    run.run_line("expect balance alice 92.00").unwrap();
    run.run_line("expect balance bob 3.00").unwrap();
    run.run_line("app type").unwrap();
    run.run_line("expect merchant 交易成功 | ¥8.00").unwrap();
    let out = printed(run);
    let apps: Vec<&str> = out.lines().filter(|l| l.contains(" APP ")).collect();
    assert_eq!(apps.len(), 4, "{out}");
    assert!(
        apps[0].contains("refused: the balance does not cover"),
        "{out}"
    );
    let code = |line: &str| line.rsplit_once("code ").map(|(_, c)| c.to_string());
    assert!(apps[1].contains("paid by alice (2026000001)"), "{out}");
    assert_eq!(code(apps[1]).unwrap().len(), 6);
    assert_eq!(code(apps[1]), code(apps[2]));
    assert!(apps[3].contains("refused: this order was already paid from another account"));
}
