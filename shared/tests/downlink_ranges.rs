//! Every downlink value out of its valid range is refused where it is decoded, with its reason
//! (docs/link.md, "Valid ranges of downlink values"), the code-payment settings of configuration
//! V2 included, while a valid one keeps its fields (a V1 configuration: in the V2 envelope, with
//! no code-payment settings); and a snapshot written before these checks that holds a value they
//! refuse still opens without that value. The old shapes below are the types as they were before the checks (plain
//! strings and numbers), so the tests can write what today's types cannot hold.

use shared::campus::{Blacklist, CampusConfig, CampusKey, CodePaymentSettings};
use shared::codec::*;
use shared::ids::*;
use shared::link::ToTill;
use shared::money::Fen;

fn uid() -> CardUid {
    CardUid::new(&[0xDE, 0xAD, 0xBE, 0xEF]).unwrap()
}

/// A campus configuration in the shape tills stored and servers sent before its values were
/// checked: plain strings and numbers, so a test can write what today's types refuse.
mod old_shape {
    use serde::Serialize;
    use shared::campus::{BlacklistInfo, OfflineLimits};
    use shared::ids::*;
    use shared::money::Fen;
    use shared::record::*;

    #[derive(Serialize, Clone)]
    pub struct MealPeriod {
        pub name: String,
        pub start: u16,
        pub end: u16,
    }

    #[derive(Serialize, Clone)]
    pub struct CampusConfig {
        pub version: u64,
        pub merchant_name: String,
        pub meal_periods: Vec<MealPeriod>,
        pub max_sale: Fen,
        pub fixed_price_presets: Vec<Fen>,
        pub offline: OfflineLimits,
    }

    #[derive(Serialize)]
    pub enum CampusConfigEnvelope {
        V1(CampusConfig),
    }

    /// `TillSnapshot` as snapshot version 2 stored it.
    #[derive(Serialize)]
    pub struct TillSnapshotV2 {
        pub next_seq: Seq,
        pub machine: MachineNumber,
        pub offline: bool,
        pub fixed_price: Option<Fen>,
        pub today: Option<DayTally>,
        pub meal: Option<MealTally>,
        pub recent_amounts: Vec<Fen>,
        pub last_sale: Option<LastSale>,
        pub pending: Vec<PendingSale>,
        pub pending_loads: Vec<PendingLoad>,
        pub campus: Option<CampusConfig>,
        pub blacklist: Option<BlacklistInfo>,
        pub server_time: Option<(UnixMillis, i64)>,
    }

    #[derive(Serialize)]
    pub enum SnapshotEnvelope {
        #[allow(dead_code, reason = "holds index 0, so that V2 encodes as 1")]
        V1(TillSnapshotV1),
        V2(Box<TillSnapshotV2>),
    }

    pub fn lunch() -> MealPeriod {
        MealPeriod {
            name: "午餐".into(),
            start: 11 * 60,
            end: 13 * 60,
        }
    }

    pub fn config(version: u64) -> CampusConfig {
        CampusConfig {
            version,
            merchant_name: "一食堂".into(),
            meal_periods: vec![lunch()],
            max_sale: Fen::from_yuan(50),
            fixed_price_presets: vec![Fen::from_yuan(8)],
            offline: OfflineLimits {
                max_blacklist_age_ms: 172_800_000,
                ..shared::testing::offline_limits()
            },
        }
    }

    pub fn snapshot(campus: Option<CampusConfig>) -> TillSnapshotV2 {
        TillSnapshotV2 {
            next_seq: Seq(42),
            machine: MachineNumber::new(58).unwrap(),
            offline: true,
            fixed_price: Some(Fen::new(800)),
            today: Some(DayTally {
                day: LocalDay(20_000),
                tally: SalesTally {
                    count: 2,
                    total: Fen::new(1500),
                },
            }),
            meal: None,
            recent_amounts: vec![Fen::new(700)],
            last_sale: None,
            pending: vec![],
            pending_loads: vec![],
            campus,
            blacklist: Some(BlacklistInfo {
                version: 3,
                entries: 1,
                issued_at: UnixMillis(1_700_000_000_000),
            }),
            server_time: Some((UnixMillis(1_700_000_000_000), -3)),
        }
    }
}

fn old_config_bytes(config: old_shape::CampusConfig) -> Vec<u8> {
    postcard::to_stdvec(&old_shape::CampusConfigEnvelope::V1(config)).unwrap()
}

/// The same configuration in today's envelope (V2), without code-payment settings.
fn v2_of(old: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x01]; // CampusConfigEnvelope::V2
    bytes.extend_from_slice(&old[1..]);
    bytes.push(0x00); // payments None
    bytes
}

/// Checks that `bytes` (a V2 configuration) are refused with a reason containing `expected`,
/// shown with ALARM, and that a link message carrying them is refused the same way.
fn assert_refused(bytes: &[u8], expected: &str) {
    let reason = refusal(decode_campus_config(bytes));
    assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
    let shown = decode_campus_config(bytes).unwrap_err().to_string();
    assert!(
        shown.starts_with("ALARM campus configuration refused: "),
        "{shown}"
    );
    let mut link = vec![0x00, 0x04]; // ToTillEnvelope::V1, ToTill::Config
    link.extend_from_slice(&bytes[1..]);
    assert_eq!(decode_to_till(&link).unwrap_err().to_string(), shown);
}

fn refusal(result: Result<CampusConfig, DecodeError>) -> String {
    match result {
        Err(DecodeError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal with its reason, got {other:?}"),
    }
}

#[test]
fn a_valid_campus_configuration_of_the_old_shape_keeps_its_fields_in_the_new_envelope() {
    let old = old_config_bytes(old_shape::config(7));
    let config = decode_campus_config(&old).unwrap();
    assert_eq!(config.merchant_name, "一食堂");
    assert_eq!(config.meal_periods[0].end.to_string(), "13:00");
    assert_eq!(config.payments, None);
    assert_eq!(encode_campus_config(&config), v2_of(&old));
    assert_eq!(decode_campus_config(&v2_of(&old)), Ok(config));
}

#[test]
fn campus_configurations_out_of_range_are_refused_with_their_reason() {
    use old_shape::config;
    let cases: Vec<(old_shape::CampusConfig, &str)> = vec![
        (
            old_shape::CampusConfig {
                meal_periods: vec![old_shape::MealPeriod {
                    end: u16::MAX, // Clear+6 showed "00:00-1092:15"
                    ..old_shape::lunch()
                }],
                ..config(2)
            },
            "meal period 0 end: minute 65535 is not within the day",
        ),
        (
            old_shape::CampusConfig {
                meal_periods: vec![old_shape::MealPeriod {
                    end: 24 * 60,
                    ..old_shape::lunch()
                }],
                ..config(2)
            },
            "minute 1440 is not within the day",
        ),
        (
            old_shape::CampusConfig {
                meal_periods: vec![old_shape::MealPeriod {
                    start: 13 * 60,
                    end: 11 * 60,
                    ..old_shape::lunch()
                }],
                ..config(2)
            },
            "does not start before it ends",
        ),
        (
            old_shape::CampusConfig {
                merchant_name: "一食堂\u{1b}[2J\u{1b}[H交易成功".into(),
                ..config(2)
            },
            "merchant name: name holds the invisible or control character U+001B",
        ),
        (
            old_shape::CampusConfig {
                meal_periods: vec![old_shape::MealPeriod {
                    name: "午餐\u{202e}".into(),
                    ..old_shape::lunch()
                }],
                ..config(2)
            },
            "meal period 0: name holds the invisible or control character U+202E",
        ),
        (
            old_shape::CampusConfig {
                merchant_name: "名".repeat(17),
                ..config(2)
            },
            "merchant name: name has 17 characters",
        ),
        (
            config(u64::MAX),
            "version 18446744073709551615 is not within",
        ),
        (config(0), "version 0 is not within"),
        (
            {
                let mut c = config(2);
                c.offline.max_sale = Fen::ZERO;
                c
            },
            "offline max_sale 0.00",
        ),
        (
            {
                let mut c = config(2);
                c.offline.max_unsent_total = Fen::new(u64::MAX);
                c
            },
            "offline max_unsent_total",
        ),
        (
            {
                let mut c = config(2);
                c.offline.max_blacklist_age_ms = u64::MAX;
                c
            },
            "offline max_blacklist_age_ms 18446744073709551615 ms",
        ),
        (
            {
                let mut c = config(2);
                c.offline.max_unsent_age_ms = 0;
                c
            },
            "offline max_unsent_age_ms 0 ms",
        ),
    ];
    for (config, expected) in cases {
        let old = old_config_bytes(config);
        // In the old envelope and in today's (and inside a link message): the same reason.
        let reason = refusal(decode_campus_config(&old));
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        assert_refused(&v2_of(&old), expected);
    }
}

/// A configuration with these code-payment settings (one good key, id 1, by default).
fn with_payments(interval: u64, window: u64, keys: Vec<CampusKey>) -> CampusConfig {
    CampusConfig {
        payments: Some(CodePaymentSettings {
            query_interval_ms: interval,
            pay_window_ms: window,
            virtual_card_keys: keys,
            offline_codes: Some(shared::campus::DEFAULT_OFFLINE_CODE_LIMITS),
        }),
        ..shared::testing::campus_config(3)
    }
}

fn key(id: u8, seed: u8) -> CampusKey {
    let public = shared::paycode::signing_key_from_seed([seed; 32])
        .verifying_key()
        .to_bytes();
    CampusKey { id, public }
}

#[test]
fn code_payment_settings_out_of_range_are_refused_with_their_reason() {
    let good = with_payments(3_000, 60_000, vec![key(1, 7), key(2, 8)]);
    assert_eq!(
        decode_campus_config(&encode_campus_config(&good)),
        Ok(good.clone())
    );
    let mut identity = [0u8; 32];
    identity[0] = 1; // the neutral point: small order, every signature would verify
    let cases = [
        (
            with_payments(999, 60_000, vec![]),
            "payments query_interval_ms 999 is not within 1000..=30000 ms",
        ),
        (
            with_payments(30_001, 60_000, vec![]),
            "payments query_interval_ms 30001 is not within",
        ),
        (
            with_payments(3_000, 19_999, vec![]),
            "payments pay_window_ms 19999 is not within 20000..=300000 ms",
        ),
        (
            with_payments(3_000, 300_001, vec![]),
            "payments pay_window_ms 300001 is not within",
        ),
        (
            with_payments(30_000, 20_000, vec![]),
            "payments pay_window_ms 20000 is not longer than query_interval_ms 30000",
        ),
        (
            with_payments(3_000, 60_000, (1..=5).map(|id| key(id, id)).collect()),
            "5 virtual-card keys, more than 4",
        ),
        (
            with_payments(3_000, 60_000, vec![key(1, 7), key(1, 8)]),
            "virtual-card key id 1 appears twice",
        ),
        (
            with_payments(
                3_000,
                60_000,
                vec![CampusKey {
                    id: 2,
                    public: [2; 32],
                }],
            ),
            "virtual-card key 2 is not a valid Ed25519 public key",
        ),
        (
            with_payments(
                3_000,
                60_000,
                vec![CampusKey {
                    id: 3,
                    public: identity,
                }],
            ),
            "virtual-card key 3 is not a valid Ed25519 public key",
        ),
    ];
    for (config, expected) in cases {
        assert!(config.check().is_err(), "{expected}");
        assert_refused(&encode_campus_config(&config), expected);
    }
    // The edges of each range are accepted.
    for (interval, window) in [(1_000, 20_000), (30_000, 300_000), (19_999, 20_000)] {
        let keys = (1..=4).map(|id| key(id, id)).collect();
        let edge = with_payments(interval, window, keys);
        assert_eq!(decode_campus_config(&encode_campus_config(&edge)), Ok(edge));
    }
}

#[test]
fn blacklists_with_uids_of_other_lengths_are_refused_with_their_reason() {
    let list = Blacklist::new(4, UnixMillis(1_700_000_000_000), vec![uid()]).unwrap();
    let mut bytes = encode_blacklist(&list);
    assert_eq!(decode_blacklist(&bytes), Ok(list));
    // The one entry's length byte sits after the envelope, version, time and count.
    let len_at = bytes.len() - 1 - CARD_UID_MAX_LEN;
    assert_eq!(bytes[len_at], 4);
    bytes[len_at] = 5;
    let refused = decode_blacklist(&bytes).unwrap_err().to_string();
    assert!(
        refused.starts_with("ALARM blacklist refused: entry 0 (5 bytes, DEADBEEF00)"),
        "{refused}"
    );
    let mut link = vec![0x00, 0x05]; // ToTillEnvelope::V1, ToTill::Blacklist
    link.extend_from_slice(&bytes[1..]);
    assert_eq!(decode_to_till(&link).unwrap_err().to_string(), refused);
}

#[test]
fn server_times_outside_the_plausible_window_are_refused() {
    use shared::mqtt::ServerTime;
    for server in [UnixMillis(0), UnixMillis(i64::MAX), UnixMillis(-1)] {
        let refused = decode_server_time(&encode_server_time(&ServerTime { server }))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("ALARM server time refused"), "{refused}");
        assert!(
            refused.contains("outside the plausible window"),
            "{refused}"
        );
        let on_link = decode_to_till(&encode_to_till(&ToTill::ServerTime { server }));
        assert!(
            matches!(on_link, Err(DecodeError::Refused { .. })),
            "{on_link:?}"
        );
    }
    let server = UnixMillis(1_800_000_000_000);
    assert_eq!(
        decode_to_till(&encode_to_till(&ToTill::ServerTime { server })),
        Ok(ToTill::ServerTime { server })
    );
}

#[test]
fn an_old_snapshot_holding_a_campus_value_now_refused_still_opens_without_it() {
    use old_shape::{config, snapshot, SnapshotEnvelope};
    let bad_meal = old_shape::CampusConfig {
        meal_periods: vec![old_shape::MealPeriod {
            end: u16::MAX,
            ..old_shape::lunch()
        }],
        ..config(6)
    };
    let bad_name = old_shape::CampusConfig {
        merchant_name: "\u{1b}[2J".into(),
        ..config(7)
    };
    for (campus, reason) in [
        (
            bad_meal,
            "campus configuration version 6: meal period 0 end: minute 65535",
        ),
        (
            bad_name,
            "campus configuration version 7: merchant name: name holds",
        ),
    ] {
        let bytes =
            postcard::to_stdvec(&SnapshotEnvelope::V2(Box::new(snapshot(Some(campus))))).unwrap();
        // The strict decoder refuses it (postcard cannot say why) ...
        assert!(decode_snapshot(&bytes).is_err());
        // ... the journal's opening decoder keeps everything else and says what it dropped.
        let (opened, dropped) = decode_snapshot_salvaging(&bytes).unwrap();
        assert_eq!(opened.campus, None);
        assert_eq!(opened.next_seq, Seq(42));
        assert_eq!(
            opened.days.first().map(|t| t.tally.total),
            Some(Fen::new(1500))
        );
        assert_eq!(opened.blacklist.map(|b| b.version), Some(3));
        assert_eq!(
            opened.server_time,
            Some((UnixMillis(1_700_000_000_000), -3))
        );
        assert_eq!(dropped.len(), 1);
        assert!(dropped[0].starts_with(reason), "{dropped:?}");
    }
    // A stored configuration that passes today's rules is kept, and nothing is reported.
    let bytes =
        postcard::to_stdvec(&SnapshotEnvelope::V2(Box::new(snapshot(Some(config(5)))))).unwrap();
    let (opened, dropped) = decode_snapshot_salvaging(&bytes).unwrap();
    assert_eq!(opened.campus.as_ref().map(|c| c.version), Some(5));
    assert_eq!(opened.campus.and_then(|c| c.payments), None);
    assert!(dropped.is_empty());
    assert_eq!(decode_snapshot(&bytes).map(|s| s.next_seq), Ok(Seq(42)));
}

#[test]
fn a_current_snapshot_holding_code_payment_settings_now_refused_still_opens_without_them() {
    use shared::record::TillSnapshot;
    let stored = |campus: CampusConfig| TillSnapshot {
        campus: Some(campus),
        ..TillSnapshot::factory_new()
    };
    let bad = with_payments(
        3_000,
        60_000,
        vec![CampusKey {
            id: 4,
            public: [2; 32],
        }],
    );
    let bytes = encode_snapshot(&stored(bad));
    assert!(decode_snapshot(&bytes).is_err());
    let (opened, dropped) = decode_snapshot_salvaging(&bytes).unwrap();
    assert_eq!(opened.campus, None);
    assert_eq!(
        dropped,
        ["campus configuration version 3: virtual-card key 4 is not a valid Ed25519 public key"]
    );
    let good = with_payments(3_000, 60_000, vec![key(1, 7)]);
    let bytes = encode_snapshot(&stored(good.clone()));
    assert_eq!(decode_snapshot(&bytes).map(|s| s.campus), Ok(Some(good)));
}

/// A configuration whose offline limits for virtual-card codes are (sale, day, count).
fn with_code_limits(sale: u64, day: u64, count: u8) -> CampusConfig {
    let mut config = with_payments(3_000, 60_000, vec![key(1, 7)]);
    if let Some(payments) = config.payments.as_mut() {
        payments.offline_codes = Some(shared::campus::OfflineCodeLimits {
            max_sale: Fen::new(sale),
            max_per_account_per_day: Fen::new(day),
            max_count_per_account_per_day: count,
        });
    }
    config
}

#[test]
fn offline_code_limits_out_of_range_are_refused_with_their_reason_and_their_edges_accepted() {
    let million = shared::campus::MAX_OFFLINE_MONEY_LIMIT.get();
    let cases = [
        (
            with_code_limits(0, 6_000, 4),
            "offline codes max_sale 0.00 is not within",
        ),
        (
            with_code_limits(3_000, 0, 4),
            "offline codes max_per_account_per_day 0.00 is not within",
        ),
        (
            with_code_limits(3_000, million + 1, 4),
            "offline codes max_per_account_per_day 1000000.01 is not within",
        ),
        (
            with_code_limits(6_001, 6_000, 4),
            "offline codes max_sale 60.01 is above max_per_account_per_day 60.00",
        ),
        (
            with_code_limits(3_000, 6_000, 0),
            "offline codes max_count_per_account_per_day 0 is not within 1..=20",
        ),
        (
            with_code_limits(3_000, 6_000, 21),
            "offline codes max_count_per_account_per_day 21 is not within",
        ),
    ];
    for (config, expected) in cases {
        assert!(config.check().is_err(), "{expected}");
        assert_refused(&encode_campus_config(&config), expected);
    }
    for edge in [
        with_code_limits(1, 1, 1),
        with_code_limits(million, million, 20),
        with_code_limits(6_000, 6_000, 4),
    ] {
        assert_eq!(decode_campus_config(&encode_campus_config(&edge)), Ok(edge));
    }
    // None configured is valid: tills then refuse virtual-card codes offline.
    let mut none = with_code_limits(1, 1, 1);
    none.payments.as_mut().unwrap().offline_codes = None;
    assert_eq!(decode_campus_config(&encode_campus_config(&none)), Ok(none));
}
