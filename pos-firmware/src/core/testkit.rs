//! What the flows' unit tests share: a till on English texts at a fixed time, keys typed as a
//! string, cards, and the effects a driver would run, so each test reads as the merchant's
//! and the payer's steps.

use keymap::Command;
use shared::record::{RecordBody, TillSnapshot, TxnTag};
use shared::{CardUid, Fen, TerminalId, UnixMillis};

use super::card::{CardFacts, CardImage, CardRead, CardWrite};
use super::config::{Lang, TillConfig};
use super::{Effect, Till};

/// The tests' wall clock.
pub const NOW: UnixMillis = UnixMillis(1_795_400_000_000);

/// A factory-new till showing English texts.
pub fn till() -> Till {
    let config = TillConfig {
        lang: Lang::En,
        ..TillConfig::default()
    };
    Till::new(config, TerminalId(9), TillSnapshot::factory_new(), NOW)
}

/// Types `keys`: digits, `.`, `C` Clear, `D` Delete, `E` Enter, `U` Up, `N` Down (Next).
pub fn keys(till: &mut Till, keys: &str) {
    for key in keys.chars() {
        let command = match key {
            '0'..='9' => Command::Digit(key as u8 - b'0'),
            '.' => Command::Dot,
            'C' => Command::Clear,
            'D' => Command::Delete,
            'E' => Command::Enter,
            'U' => Command::Up,
            'N' => Command::Down,
            other => panic!("no key {other:?} in the test alphabet"),
        };
        till.handle_command(command, NOW);
    }
}

/// Opens the card centre's top-up screen: the staff combo, the staff PIN, menu 3.
pub fn open_card_centre(till: &mut Till) {
    till.handle_command(Command::SetMachineNumber, NOW);
    keys(till, "123456E3");
}

/// A campus card with `yuan` on it and its counter at `counter`.
pub fn card(yuan: u64, counter: u32) -> CardImage {
    CardImage {
        uid: CardUid::new(&[0xCA, 0xFE, 0x00, 0x01]).expect("a 4-byte UID"),
        balance: Fen::from_yuan(yuan),
        counter,
        last_tag: TxnTag(0),
    }
}

/// Taps `card` and answers the core's look-up: the journal knows nothing of it, nothing is
/// unsent. (The `LookUpCard` effect stays in the queue, before the tap's own effects.)
pub fn tap(till: &mut Till, card: CardImage) {
    till.handle_card(CardRead::Card(card), NOW);
    till.handle_card_facts(CardFacts::default(), NOW);
}

/// What a driver would carry out now: every effect, in order.
pub fn effects(till: &mut Till) -> Vec<Effect> {
    std::iter::from_fn(|| till.poll_effect()).collect()
}

/// The records of `effects`, in order.
pub fn records(effects: &[Effect]) -> Vec<RecordBody> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Journal { record, .. } => Some(record.body.clone()),
            _ => None,
        })
        .collect()
}

/// The card write among `effects`.
pub fn card_write(effects: &[Effect]) -> Option<CardWrite> {
    effects.iter().find_map(|effect| match effect {
        Effect::WriteCard(write) => Some(*write),
        _ => None,
    })
}

/// The card as `write` leaves it.
pub fn written(card: CardImage, write: CardWrite) -> CardImage {
    CardImage {
        balance: write.new_balance,
        counter: write.new_counter,
        last_tag: write.tag,
        ..card
    }
}

/// The merchant's display, lines joined by " | " (the status line left out).
pub fn merchant(till: &Till) -> String {
    till.displays().merchant.lines[1..].join(" | ")
}

/// The link to the campus server is up (a daemon connected, its broker up): codes may pay.
pub fn online(till: &mut Till) {
    let status = super::LinkStatus {
        daemon_connected: true,
        broker: Some(shared::link::BrokerLink::Up),
        unsent: 0,
        oldest_unsent_at: None,
    };
    till.handle_link_status(status, NOW);
}

/// A factory-new till on English texts whose link to the campus server is up.
pub fn online_till() -> Till {
    let mut till = till();
    online(&mut till);
    till
}

/// A WeChat Pay code (18 digits starting 13), different per `n`.
pub fn wechat_code(n: u8) -> String {
    format!("1345678901234567{n:02}")
}

/// A campus virtual-card code of `account`, issued at `issued` and valid 60 s, signed with a
/// test key.
/// Code-payment settings as a campus configuration carries them: the default timings, the
/// campus keys `(key id, seed of the signing key whose public half it is)` and `offline_codes`.
pub fn code_payments(
    keys: &[(u8, u8)],
    offline_codes: Option<shared::campus::OfflineCodeLimits>,
) -> shared::campus::CodePaymentSettings {
    let virtual_card_keys = keys
        .iter()
        .map(|&(id, seed)| shared::campus::CampusKey {
            id,
            public: shared::paycode::signing_key_from_seed([seed; 32])
                .verifying_key()
                .to_bytes(),
        })
        .collect();
    shared::campus::CodePaymentSettings {
        query_interval_ms: 3_000,
        pay_window_ms: 60_000,
        virtual_card_keys,
        offline_codes,
    }
}

pub fn virtual_code(account: u64, issued: UnixMillis, nonce: u64) -> String {
    let key = shared::paycode::signing_key_from_seed([7; 32]);
    let issued_s = u32::try_from(issued.0 / 1000).expect("a time in range");
    shared::paycode::VirtualCardCode::sign(
        &key,
        1,
        shared::paycode::VirtualAccount(account),
        issued_s,
        60,
        nonce,
    )
}

/// The order requests among `effects`, in order.
pub fn order_calls(effects: &[Effect]) -> Vec<shared::pay::OrderCall> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Order(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}
