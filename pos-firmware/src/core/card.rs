//! What the core knows of a campus card: the wallet state a reader read, the write it asks the
//! reader to make, and what came of that write. The reader behind it (simulated now, MFRC522 +
//! Mifare Classic later) is a driver; the core decides only from these values.

use shared::record::TxnTag;
use shared::{CardUid, Fen, Seq, TerminalId};

/// A campus card's wallet as read from the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardImage {
    pub uid: CardUid,
    pub balance: Fen,
    /// Counts the card's debits and loads; each write increments it by one.
    pub counter: u32,
    /// The tag of the transaction that last wrote the card.
    pub last_tag: TxnTag,
}

/// What a tap produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRead {
    Card(CardImage),
    /// The reader saw a card but could not read a campus wallet from it.
    Unreadable(CardProblem),
}

/// Why a card cannot pay, as the reader and the wallet layout find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProblem {
    /// The card left the field or the radio link failed mid-read: tap again.
    ReadFailed,
    /// Not a Mifare Classic campus card at all (a bus card, a phone, another card type).
    NotCampusCard,
    /// A Mifare Classic card still on its factory (transport) keys: never issued.
    Unformatted,
    /// A campus wallet of another campus (its header names another campus id).
    OtherCampus,
    /// The wallet sector does not open with this card's derived key: wrong keys, a card keyed
    /// by another system, or a master key that does not match.
    WrongKey,
    /// The wallet's data fails its MAC in both slots: forged or cloned data.
    BadMac,
}

/// The one write that moves the money: the card's new state. The reader must refuse it if the
/// card's counter is no longer `counter_before` (someone else wrote it since the read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardWrite {
    pub uid: CardUid,
    pub counter_before: u32,
    pub new_counter: u32,
    pub new_balance: Fen,
    pub tag: TxnTag,
}

/// What came of a [`CardWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardWriteOutcome {
    /// Written and read back: this is the card now.
    Written(CardImage),
    /// Certainly not written: the card is unchanged.
    Refused,
    /// The card left (or the link failed) while writing: the card may or may not hold the write.
    Unknown,
}

/// The tag a sale writes onto the card: a mix of the till's identity and the intent's seq, so
/// that a later read tells whether this very sale reached the card.
pub fn txn_tag(terminal: TerminalId, intent: Seq) -> TxnTag {
    // splitmix64 finaliser: cheap, and every input bit affects the low 32 bits.
    let mut z = terminal.0 ^ intent.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    TxnTag(z as u32)
}

/// What a later read of the card says about a sale whose write was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitEvidence {
    /// The card holds exactly this debit.
    Debited,
    /// The card is exactly as before the debit.
    NotDebited,
    /// The card was written by something else since: it cannot tell.
    Unknowable,
}

/// Compares the card as read now with the state the sale started from.
pub fn debit_evidence(
    card: &CardImage,
    counter_before: u32,
    balance_before: Fen,
    amount: Fen,
    tag: TxnTag,
) -> DebitEvidence {
    let debited_balance = balance_before.checked_sub(amount);
    if Some(card.counter) == counter_before.checked_add(1)
        && card.last_tag == tag
        && Some(card.balance) == debited_balance
    {
        DebitEvidence::Debited
    } else if card.counter == counter_before && card.balance == balance_before {
        DebitEvidence::NotDebited
    } else {
        DebitEvidence::Unknowable
    }
}
