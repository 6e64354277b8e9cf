//! The cards file, `sim-cards.toml` in the data directory: each card its name, UID and 64 blocks
//! in hex (one line per block, with a note naming the wallet's blocks), hand-editable and
//! validated on load. Written by hand rather than by serde: serde has no place for the notes.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CardsFile {
    #[serde(default)]
    card: Vec<CardFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CardFile {
    name: String,
    uid: String,
    blocks: Vec<String>,
}

/// The file's header comment.
pub(super) const FILE_HEADER: &str = "\
# Simulated Mifare Classic 1K cards (pos-firmware/src/sim/cards/store.rs). Each card is its UID and
# its 64 blocks (16 bytes = 32 hex digits each) as the emulated chip holds them, trailers with
# their real keys. The campus wallet is sector 1: block 4 the header, 5 and 6 the two state
# slots, 7 the trailer (key A | access bits | key B); see docs/card-layout.md. Wallet blocks
# carry MACs: a hand-edited balance reads as damaged data. Edit only while the simulator is
# stopped; delete this file to get the factory cards back.
";

pub(super) fn render_cards(stored: &[StoredCard], views: &[SimCard]) -> String {
    let mut text = String::from(FILE_HEADER);
    for (card, sim) in stored.iter().zip(views) {
        let what = match sim.kind {
            SimCardKind::Wallet => format!(
                "campus wallet: balance {}, counter {}, tag {}",
                sim.balance, sim.counter, sim.last_tag.0
            ),
            SimCardKind::OtherCampus(campus) => format!(
                "wallet of campus {campus}: balance {}, counter {}",
                sim.balance, sim.counter
            ),
            SimCardKind::Blank => "blank (transport keys)".into(),
            SimCardKind::Unreadable => "no wallet readable with the demo key".into(),
        };
        let _ = write!(
            text,
            "\n[[card]]\nname = \"{}\"\nuid = \"{}\"\n# {what}\nblocks = [\n",
            card.name, sim.uid
        );
        for n in 0..CARD_BLOCKS as u8 {
            let block = card.card.block(n).unwrap_or([0; 16]);
            let hex = hex::encode_upper(block);
            let note = match n {
                0 => " manufacturer (UID)",
                HEADER_BLOCK => " wallet header",
                5 | 6 => " wallet slot",
                TRAILER_BLOCK => " wallet trailer",
                n if emulator::access::is_trailer(n) => " trailer",
                _ => "",
            };
            let _ = writeln!(text, "  \"{hex}\", # {n}{note}");
        }
        text.push_str("]\n");
    }
    text
}

pub(super) fn parse_cards(text: &str) -> Result<Vec<StoredCard>, String> {
    let file: CardsFile = toml::from_str(text).map_err(|e| {
        let hint = if text.contains("balance") && !text.contains("blocks") {
            " (a cards file from before the emulated cards? delete it to get the factory cards)"
        } else {
            ""
        };
        format!("{}{hint}", e.to_string().trim_end())
    })?;
    // An empty file (or one of comments only) is refused like a cut-short one rather than taken
    // as "no cards": the cards' money lives in this file, and the factory cards would undo it.
    if file.card.is_empty() {
        return Err(
            "holds no cards (empty or cut short?): restore it from a copy, or delete it \
                    to get the factory cards back (their balances start afresh)"
                .to_string(),
        );
    }
    if file.card.len() > MAX_SIM_CARDS {
        return Err(format!(
            "{} cards: at most {MAX_SIM_CARDS}",
            file.card.len()
        ));
    }
    let mut stored: Vec<StoredCard> = Vec::with_capacity(file.card.len());
    for (number, entry) in file.card.into_iter().enumerate() {
        let (uid, card) = parse_card(&entry)
            .map_err(|e| format!("card {} ('{}'): {e}", number + 1, entry.name))?;
        if stored
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&entry.name) || s.uid == uid)
        {
            return Err(format!(
                "card {} ('{}'): its name or UID is used by an earlier card",
                number + 1,
                entry.name
            ));
        }
        stored.push(StoredCard {
            name: entry.name,
            uid,
            card,
        });
    }
    Ok(stored)
}

pub(super) fn parse_card(entry: &CardFile) -> Result<(CardUid, EmulatedCard), String> {
    check_name(&entry.name)?;
    let uid = CardUid::parse_hex(entry.uid.trim())
        .map_err(|_| format!("uid '{}' is not 4 or 7 bytes of hex", entry.uid))?;
    let mut card = EmulatedCard::blank(uid.as_bytes())
        .map_err(|_| format!("uid '{}': the emulator takes 4- or 7-byte UIDs", entry.uid))?;
    if entry.blocks.len() != CARD_BLOCKS {
        return Err(format!(
            "{} blocks: a Mifare Classic 1K has {CARD_BLOCKS}",
            entry.blocks.len()
        ));
    }
    for (n, line) in (0u8..).zip(&entry.blocks) {
        let block = parse_block(line).map_err(|e| format!("block {n}: {e}"))?;
        card.set_block(n, block).map_err(|e| e.to_string())?;
    }
    let block0 = card.block(0).unwrap_or([0; 16]);
    if !block0.starts_with(uid.as_bytes()) {
        return Err("block 0 does not start with the card's UID".into());
    }
    Ok((uid, card))
}

/// 32 hex digits; blanks between them are allowed.
pub(super) fn parse_block(line: &str) -> Result<Block, String> {
    let digits: Vec<u8> = line.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() != 32 {
        return Err(format!(
            "'{line}' has {} hex digits, a block 32",
            digits.len()
        ));
    }
    let mut block = [0u8; 16];
    hex::decode_to_slice(digits, &mut block).map_err(|_| format!("'{line}' is not hex"))?;
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::cards::tests::write_for;

    #[test]
    fn cards_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut cards = SimCards::open(dir.path()).unwrap();
        cards.tap(0);
        let write = write_for(&cards.cards()[0], 150);
        assert!(matches!(
            cards.write_card(&write),
            CardWriteOutcome::Written(_)
        ));
        let again = SimCards::open(dir.path()).unwrap();
        assert_eq!(again.cards()[0].balance, Fen::new(10_000 - 150));
        assert_eq!(again.cards()[0].counter, 1);
        assert_eq!(again.cards(), cards.cards());
        assert_eq!(again.blocks(0), cards.blocks(0));
    }

    #[test]
    fn a_broken_cards_file_is_refused_with_a_reason() {
        let good = render_cards(factory_cards().unwrap(), &default_cards());
        assert_eq!(parse_cards(&good).unwrap().len(), FACTORY.len());
        let cases = [
            ("nonsense", "TOML"),
            (
                "[[card]]\nname=\"x\"\nuid=\"1A2B3C4D\"\nbalance=\"1\"\ncounter=0\nlast_tag=0\ncampus=true",
                "before the emulated cards",
            ),
            ("[[card]]\nname=\"x\"\nuid=\"zz\"\nblocks=[]", "uid 'zz'"),
            ("[[card]]\nname=\"x\"\nuid=\"1A2B3C4D\"\nblocks=[\"00\"]", "1 blocks"),
            ("[[card]]\nname=\"a b\"\nuid=\"1A2B3C4D\"\nblocks=[]", "blanks"),
        ];
        for (text, expected) in cases {
            let error = parse_cards(text).unwrap_err();
            assert!(
                error.contains(expected) || (expected == "TOML" && !error.is_empty()),
                "{text}: {error}"
            );
        }
        let bad_block = good.replacen("  \"1A2B3C4D", "  \"1A2B3C4X", 1);
        let error = parse_cards(&bad_block).unwrap_err();
        assert!(error.contains("card 1 ('card-1'): block 0"), "{error}");
        let wrong_uid = good.replacen("  \"1A2B3C4D", "  \"1A2B3C4E", 1);
        let error = parse_cards(&wrong_uid).unwrap_err();
        assert!(
            error.contains("does not start with the card's UID"),
            "{error}"
        );
        let twice = format!("{good}{}", &good[FILE_HEADER.len()..]);
        let error = parse_cards(&twice).unwrap_err();
        assert!(error.contains("used by an earlier card"), "{error}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SIM_CARDS_FILE), [0xFF, 0xFE, 0x00]).unwrap();
        let error = SimCards::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains(SIM_CARDS_FILE), "{error}");
    }

    /// Regression: a `+` sign in a block's byte ("+0") was taken for the digit it precedes.
    #[test]
    fn a_block_takes_only_hex_digits() {
        let hex = "1A2B3C4D4008040068696A6B6C6D6E6F";
        assert!(parse_block(hex).is_ok());
        assert!(parse_block(&hex.replacen("1A", "+1", 1)).is_err());
    }

    /// A cards file as the simulator wrote it before the writer moved to `store.rs` (card-1
    /// after a ¥1.50 debit) still loads, card for card, and is written back the same (apart from
    /// the header comment, which names this file now).
    #[test]
    fn a_cards_file_written_by_the_old_writer_still_loads() {
        let old = include_str!("testdata/sim-cards-written-by-the-old-writer.toml");
        let stored = parse_cards(old).expect("the old file loads");
        let views: Vec<SimCard> = stored.iter().map(view).collect();
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let factory: Vec<String> = default_cards().into_iter().map(|c| c.name).collect();
        assert_eq!(names, factory);
        assert_eq!(views[0].balance, Fen::new(10_000 - 150));
        assert_eq!(views[0].counter, 1);
        assert_eq!(views[1..], default_cards()[1..]);
        let cards = |text: &str| text[text.find("\n[[card]]").unwrap()..].to_string();
        assert_eq!(cards(&render_cards(&stored, &views)), cards(old));
    }
}
