//! What the core knows of a campus card: the wallet state a reader read, the write it asks the
//! reader to make, and what came of that write. The reader behind it (the MFRC522 driver and the
//! Mifare Classic wallet, on the real chip or the emulated one) is a driver; the core decides
//! only from these values.

use shared::record::TxnTag;
use shared::{CardUid, Fen, LocalDay, Seq, TerminalId};

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

/// What this till's journal knows of a card (part of [`CardFacts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CardHistory {
    /// The highest transaction counter this till saw on the card or wrote to it.
    pub known_counter: Option<u32>,
    /// What the card spent at this till on that local day.
    pub spent: Option<(LocalDay, Fen)>,
}

/// What the journal knows that a tap needs: the answer to `Effect::LookUpCard`, given to
/// `Till::handle_card_facts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CardFacts {
    /// What the journal's card index knows of the tapped card.
    pub history: CardHistory,
    /// What the journal holds that the campus server has not acknowledged (the offline limits).
    pub unsent: super::offline::UnsentSummary,
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
    /// The reader chip itself failed (SPI error, no answer, wrong version: dead or unplugged):
    /// tapping again does not help, maintenance must look at the till.
    ReaderFault,
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

/// What a later read of the card says about a write (a sale's debit or a top-up) that was
/// interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEvidence {
    /// The card holds exactly this write.
    OnCard,
    /// The card is exactly as before the write.
    NotOnCard,
    /// The card was written by something else since: it cannot tell.
    Unknowable,
}

/// Compares the card as read now with the state a write started from and the balance it was
/// to leave. The write's tag tells this write from another one that left the same numbers.
pub fn write_evidence(
    card: &CardImage,
    counter_before: u32,
    balance_before: Fen,
    balance_after: Option<Fen>,
    tag: TxnTag,
) -> WriteEvidence {
    if Some(card.counter) == counter_before.checked_add(1)
        && card.last_tag == tag
        && Some(card.balance) == balance_after
    {
        WriteEvidence::OnCard
    } else if card.counter == counter_before && card.balance == balance_before {
        WriteEvidence::NotOnCard
    } else {
        WriteEvidence::Unknowable
    }
}

/// The transaction tag of the state a card is issued with (no sale or load has written it yet).
pub const ISSUE_TAG: TxnTag = TxnTag(0);
/// The transaction counter of the state a card is issued with.
pub const ISSUE_COUNTER: u32 = 0;

/// Whether `card` is still exactly as issued with `opening_balance`: no sale or load since.
pub fn is_as_issued(card: &CardImage, opening_balance: Fen) -> bool {
    card.counter == ISSUE_COUNTER && card.last_tag == ISSUE_TAG && card.balance == opening_balance
}

/// What came of issuing (formatting) a blank card as a campus wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    /// The card is a campus wallet now, read back as this.
    Issued(CardImage),
    /// Nothing was written: no blank card on the reader, or it left before the first write.
    NotIssued(IssueRefusal),
    /// The card left during formatting: it may be half-formatted. Tapping it again in the issue
    /// screen finishes the job if its keys are still the factory ones, and records the issue if
    /// the writes did land (the card reads as freshly issued); otherwise the card centre's
    /// recovery procedure applies (docs/card-layout.md). `uid`: the card's, when it answered.
    Interrupted { uid: Option<CardUid> },
}

/// Why a card was not issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueRefusal {
    /// The card is already a campus wallet.
    AlreadyIssued,
    /// The card is not a blank Mifare Classic card (other keys, another type).
    NotBlank,
    /// No card answered.
    NoCard,
    /// The reader chip itself failed before anything was written.
    ReaderFault,
}
