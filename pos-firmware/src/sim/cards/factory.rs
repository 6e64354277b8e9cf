//! The factory cards (the six a fresh data directory starts with), and how cards are made from
//! views as the card centre would: issued through the real wallet on the emulated reader, then
//! given the view's state with the key; and what a card's blocks decode to ([`view`]).

use super::*;

/// How a factory card is made.
#[derive(Debug, Clone, Copy)]
pub(super) enum Make {
    /// Issued by the card centre for `campus` with `balance`.
    Issued {
        campus: CampusId,
        balance: Fen,
    },
    Blank,
    /// Another system's keys in the wallet sector.
    ForeignKeys,
}

/// The simulator's factory cards: name, UID, how they are made.
pub(super) const FACTORY: [(&str, &[u8], Make); 6] = [
    (
        "card-1",
        &[0x1A, 0x2B, 0x3C, 0x4D],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(10_000),
        },
    ),
    (
        "card-2",
        &[0x04, 0x52, 0x61, 0x7A, 0x8B, 0x9C, 0x80],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(5_000),
        },
    ),
    (
        "card-3",
        &[0x5E, 0x6F, 0x70, 0x81],
        Make::Issued {
            campus: DEMO_CAMPUS,
            balance: Fen::new(300),
        },
    ),
    (
        "bus-card",
        &[0x99, 0x88, 0x77, 0x66],
        Make::Issued {
            campus: OTHER_CAMPUS,
            balance: Fen::new(2_000),
        },
    ),
    ("blank-card", &[0xB1, 0xA2, 0xC3, 0xD4], Make::Blank),
    ("metro-card", &[0x3E, 0x7A, 0x0F, 0x11], Make::ForeignKeys),
];

/// The factory cards, made once per process (issuing runs the whole driver path).
pub(super) fn factory_cards() -> Result<&'static [StoredCard], String> {
    static FACTORY_CARDS: OnceLock<Result<Vec<StoredCard>, String>> = OnceLock::new();
    FACTORY_CARDS
        .get_or_init(|| {
            let mut maker = CardMaker::new()?;
            FACTORY
                .iter()
                .map(|(name, uid, make)| {
                    let card = maker
                        .make(uid, *make, None)
                        .map_err(|e| format!("{name}: {e}"))?;
                    Ok(StoredCard {
                        name: (*name).to_string(),
                        uid: CardUid::new(uid).map_err(|e| format!("{name}: {e}"))?,
                        card,
                    })
                })
                .collect()
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// The cards a fresh simulator starts with, as views: card-1 (¥100), card-2 (¥50, 7-byte UID),
/// card-3 (¥3), bus-card (another campus's wallet), blank-card (transport keys, for the card
/// centre's issue), metro-card (another system's keys). Empty only if the emulated reader
/// cannot be brought up, which `SimCards::open` reports.
pub fn default_cards() -> Vec<SimCard> {
    factory_cards()
        .map(|cards| cards.iter().map(view).collect())
        .unwrap_or_default()
}

/// Makes cards the way the card centre does: a blank emulated card, issued through the wallet
/// on an emulated reader; a state other than the opening one is then written with the key.
pub(super) struct CardMaker {
    control: EmulatorControl,
    reader: EmulatedReader,
}

impl CardMaker {
    fn new() -> Result<CardMaker, String> {
        let control = EmulatorControl::new();
        let reader = Mfrc522Reader::new(control.device(), ReaderOptions::EMULATOR)
            .map_err(|e| e.to_string())?;
        Ok(CardMaker { control, reader })
    }

    /// A card with `uid` made as `make`; for an issued card, `state` replaces the opening state.
    fn make(
        &mut self,
        uid: &[u8],
        make: Make,
        state: Option<SlotState>,
    ) -> Result<EmulatedCard, String> {
        let mut card = EmulatedCard::blank(uid).map_err(|e| e.to_string())?;
        match make {
            Make::Blank => {}
            Make::ForeignKeys => {
                let mut trailer = card
                    .block(TRAILER_BLOCK)
                    .ok_or("no trailer block".to_string())?;
                trailer[..6].copy_from_slice(&FOREIGN_SECTOR_KEY);
                trailer[10..].copy_from_slice(&FOREIGN_SECTOR_KEY);
                card.set_block(TRAILER_BLOCK, trailer)
                    .map_err(|e| e.to_string())?;
            }
            Make::Issued { campus, balance } => {
                let uid = CardUid::new(uid).map_err(|e| e.to_string())?;
                let cfg = WalletConfig {
                    master: MasterKey::demo(),
                    campus,
                };
                let tail: [u8; 4] = uid.as_bytes()[uid.as_bytes().len().saturating_sub(4)..]
                    .try_into()
                    .map_err(|_| "short UID".to_string())?;
                self.control.place_card(card);
                let issued = issue_card(
                    &mut self.reader,
                    &cfg,
                    CardSerial(u32::from_be_bytes(tail)),
                    balance,
                );
                card = self
                    .control
                    .remove_card()
                    .ok_or("the card left the emulated reader".to_string())?;
                issued.map_err(|e| format!("issuing failed: {e}"))?;
                if let Some(state) = state {
                    let mac = cfg.master.card_keys(&uid).mac;
                    for slot in Slot::BOTH {
                        let block = encode_slot(&state, slot, campus, &uid, &mac)
                            .map_err(|e| e.to_string())?;
                        card.set_block(slot.block(), block)
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        Ok(card)
    }
}

/// What `card`'s blocks decode to with the demo master key.
pub(super) fn view(stored: &StoredCard) -> SimCard {
    let card = &stored.card;
    let uid = stored.uid;
    let mut sim = SimCard {
        name: stored.name.clone(),
        uid,
        balance: Fen::ZERO,
        counter: 0,
        last_tag: TxnTag(0),
        campus: false,
        kind: SimCardKind::Unreadable,
    };
    let block = |n: u8| card.block(n).unwrap_or([0; 16]);
    let trailer = block(TRAILER_BLOCK);
    if trailer[..6] == TRANSPORT_KEY && (HEADER_BLOCK..TRAILER_BLOCK).all(|b| block(b) == [0; 16]) {
        sim.kind = SimCardKind::Blank;
        return sim;
    }
    let keys = MasterKey::demo().card_keys(&uid);
    if trailer[..6] != keys.key_a {
        return sim;
    }
    let Ok(header) = decode_header(&block(HEADER_BLOCK), &uid, &keys.mac) else {
        return sim;
    };
    let slots = Slot::BOTH
        .map(|slot| decode_slot(&block(slot.block()), slot, header.campus, &uid, &keys.mac).ok());
    let Ok((_, state)) = choose_slot(slots[0], slots[1]) else {
        return sim;
    };
    sim.balance = state.balance;
    sim.counter = state.counter;
    sim.last_tag = state.tag;
    if header.campus == DEMO_CAMPUS {
        sim.kind = SimCardKind::Wallet;
        sim.campus = true;
    } else {
        sim.kind = SimCardKind::OtherCampus(header.campus.0);
    }
    sim
}

/// Makes emulated cards matching `views`.
pub(super) fn make_cards(views: &[SimCard]) -> Result<Vec<StoredCard>, SimCardsError> {
    let mut maker = CardMaker::new().map_err(SimCardsError::Reader)?;
    let mut stored: Vec<StoredCard> = Vec::with_capacity(views.len());
    for sim in views {
        let fail = |detail: String| SimCardsError::Card {
            name: sim.name.clone(),
            detail,
        };
        check_name(&sim.name).map_err(fail)?;
        if stored
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&sim.name) || s.uid == sim.uid)
        {
            return Err(fail("a card with that name or UID comes earlier".into()));
        }
        let state = SlotState {
            counter: sim.counter,
            balance: sim.balance,
            tag: sim.last_tag,
        };
        let (make, state) = match sim.kind {
            SimCardKind::Wallet => (
                Make::Issued {
                    campus: DEMO_CAMPUS,
                    balance: sim.balance,
                },
                Some(state),
            ),
            SimCardKind::OtherCampus(campus) => (
                Make::Issued {
                    campus: CampusId(campus),
                    balance: sim.balance,
                },
                Some(state),
            ),
            SimCardKind::Blank => (Make::Blank, None),
            SimCardKind::Unreadable => (Make::ForeignKeys, None),
        };
        let card = maker.make(sim.uid.as_bytes(), make, state).map_err(fail)?;
        stored.push(StoredCard {
            name: sim.name.clone(),
            uid: sim.uid,
            card,
        });
    }
    Ok(stored)
}

/// A card name must work in a script line (`tap NAME`, `expect card NAME 1.00`) and in the file.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_CARD_NAME_CHARS {
        return Err(format!(
            "a card name has 1 to {MAX_CARD_NAME_CHARS} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\' || c == '#')
    {
        return Err(format!(
            "card name '{name}' may not hold blanks, quotes, backslashes or '#'"
        ));
    }
    Ok(())
}
