//! What the till writes to its journal: one [`JournalRecord`] per event that matters for money or
//! for how the till behaves, and the [`TillSnapshot`] written in the same transaction so that a
//! restart knows totals, modes and unresolved sales without replaying the journal.
//!
//! These types are encoded with postcard (see [`crate::codec`]), which writes enum variants by
//! position and structs without field names. Therefore: enums here are append-only (new variants
//! at the end, never reorder or remove), and a struct that must change gets a new envelope
//! version instead of an edited field list.

use crate::campus::{BlacklistInfo, CampusConfig, CampusConfigV1};
use crate::ids::{CardUid, LocalDay, MachineNumber, MinuteOfDay, Seq, UnixMillis};
use crate::money::Fen;
use crate::pay::{CodePayer, DeclineReason};
use crate::paycode::{CodeDigest, CodeHint, CodeMethod, VirtualAccount};
use serde::{Deserialize, Serialize};

/// One journal entry. `seq` is contiguous per terminal; `machine` is the machine number the till
/// had when it wrote the record (records keep it even if staff renumber the till later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub seq: Seq,
    pub at: UnixMillis,
    pub machine: MachineNumber,
    pub body: RecordBody,
}

/// What happened. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordBody {
    /// A sale is about to touch the payer's money. Written durably before the card is written.
    SaleIntent(SaleIntent),
    /// The money moved: the card holds the debit. Resolves the intent `intent`.
    SaleCommitted(SaleCommitted),
    /// The money did not move. Resolves the intent `intent`.
    SaleAborted(SaleAborted),
    /// The till cannot learn whether the money moved; the server settles it.
    SaleInDoubt(SaleInDoubt),
    /// Offline or fixed-price mode switched.
    ModeChanged(ModeChange),
    /// Staff gave the till a new machine number.
    MachineNumberChanged {
        old: MachineNumber,
        new: MachineNumber,
    },
    /// Card-centre staff issued (formatted) a blank card as a campus wallet.
    CardIssued(CardIssued),
    /// A top-up is about to write the card (cash was taken by the card centre).
    LoadIntent(LoadIntent),
    /// The top-up reached the card. Resolves the intent `intent`.
    LoadCommitted(LoadCommitted),
    /// The top-up certainly did not reach the card. Resolves the intent `intent`.
    LoadAborted(LoadAborted),
    /// The till cannot learn whether the top-up reached the card: the server settles it and
    /// refunds the cash if its ledger shows the load never arrived.
    LoadInDoubt(LoadInDoubt),
    /// A campus configuration from the server was applied.
    CampusConfigApplied { version: u64 },
    /// The lost-card blacklist was replaced as a whole.
    BlacklistReplaced(BlacklistInfo),
    /// The server's clock was seen; `offset_ms` is server minus till.
    ServerTimeSeen { server: UnixMillis, offset_ms: i64 },
    /// A card was refused because its data contradicts what this till knows (an alarm for the
    /// server: a replayed or cloned card).
    CardAnomaly(CardAnomaly),
    /// The staff PIN's wrong-attempt count or lockout changed: a wrong PIN was typed (the count
    /// went up, and at the last allowed attempt the menu locked), or the right PIN after wrong
    /// ones cleared them. Journaled so that a restart keeps them (the snapshot written with it
    /// holds the same state).
    StaffPinChanged(StaffPinState),
    /// The interrupted top-up `intent` is written again on its unchanged card: this is resume
    /// number `resume` (1-based). Durable before the write, so a restart cannot grant more
    /// resumes than the limit.
    LoadResumed { intent: Seq, resume: u8 },
    /// Issuing (formatting) the card `uid` was interrupted: its writes may have landed. If it
    /// comes back to the issue screen reading exactly as issued, the issue is journaled then.
    CardIssueInterrupted { uid: CardUid },
    /// A code payment is about to be submitted to the campus server (the order's id is this
    /// record's seq). Written durably before the submit leaves the till.
    OrderIntent(OrderIntent),
    /// The till asks the campus server to reverse the order `intent` (the merchant cancelled,
    /// or the payer did not confirm in time). From here on only a reversal or a final answer
    /// settles it; a "paid" answer to an older query no longer commits it.
    OrderReversing { intent: Seq, why: ReverseWhy },
    /// The order `intent` was paid: the money moved. Resolves it.
    OrderPaid(OrderPaid),
    /// The order `intent` ended without a sale: declined, or reversed (refunded if it had been
    /// paid). Resolves it.
    OrderClosed(OrderClosed),
    /// The campus said "paid" for the order `intent`, which this till had already closed: the
    /// payer's money moved without a sale. A refund to chase (shown on Clear+9, uploaded).
    OrderPaidAfterClose { intent: Seq, payer: CodePayer },
    /// Offline, the till accepted a campus virtual-card code it verified itself (signature,
    /// expiry, nonce not seen here, the campus's offline limits). The sale is done; the campus
    /// charges the account when this record is uploaded. It keeps the signed code's fields (the
    /// campus's evidence that the payer authorised it; spent here and expired within minutes).
    OfflineCodeSale(OfflineCodeSale),
    /// The merchant typed the confirmation code of the offline QR order `intent` and it matched:
    /// journaled just before the `OrderPaid` that settles it (`attempts` wrong codes before it).
    QrConfirmedByCode { intent: Seq, attempts: u8 },
    /// A wrong confirmation code was typed for the offline QR order `intent` (the count is
    /// durable, so a restart cannot grant more guesses).
    QrCodeRejected { intent: Seq, attempts: u8 },
}

/// An offline sale paid by a campus virtual-card code (see [`RecordBody::OfflineCodeSale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCodeSale {
    pub amount: Fen,
    pub account: VirtualAccount,
    pub key_id: u8,
    pub issued_at_s: u32,
    pub valid_for_s: u16,
    pub nonce: u64,
    #[serde(with = "signature_bytes")]
    pub signature: [u8; 64],
    pub fixed_price: bool,
}

/// serde for a 64-byte signature (serde derives arrays up to 32 only).
mod signature_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        let (a, b) = bytes.split_at(32);
        let a: [u8; 32] = a.try_into().expect("32 bytes");
        let b: [u8; 32] = b.try_into().expect("32 bytes");
        (a, b).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let (a, b) = <([u8; 32], [u8; 32])>::deserialize(d)?;
        let mut out = [0; 64];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        Ok(out)
    }
}

/// What one campus account paid by virtual card at this till offline on one local day (for the
/// campus's offline limits per account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineAccountDay {
    pub account: VirtualAccount,
    pub day: LocalDay,
    pub tally: SalesTally,
}

/// A virtual-card code nonce this till accepted offline (a code is refused if its nonce is here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenNonce {
    pub key_id: u8,
    pub nonce: u64,
    /// When the code stops being valid: past it, the nonce can be forgotten.
    pub expires_at: UnixMillis,
}

/// What a till saw on a card that cannot be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAnomaly {
    pub uid: CardUid,
    pub kind: CardAnomalyKind,
}

/// Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardAnomalyKind {
    /// The card's transaction counter is below one this till itself wrote: its blocks were
    /// restored from an earlier copy.
    CounterWentBack { on_card: u32, known: u32 },
}

/// Who pays. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payer {
    CampusCard(CardUid),
    /// The campus app's virtual card of this account.
    VirtualCard(VirtualAccount),
    /// A wallet (WeChat Pay, Alipay, UnionPay) payer, by the payer id its back end returned.
    Wallet {
        method: CodeMethod,
        payer: u64,
    },
    /// The payer of an offline QR order confirmed at the till by its confirmation code: the
    /// campus knows the account, the till does not (yet).
    CampusApp,
}

impl std::fmt::Display for Payer {
    /// How a payer is named on the till and in logs: a card's UID, a campus account, or a
    /// wallet payer's id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payer::CampusCard(uid) => write!(f, "card {uid}"),
            Payer::VirtualCard(account) => write!(f, "virtual card {account}"),
            Payer::Wallet { method, payer } => write!(f, "{method:?} payer {payer:x}"),
            Payer::CampusApp => write!(f, "campus app"),
        }
    }
}

impl Payer {
    /// The payer of a paid code order.
    pub fn of_code(method: CodeMethod, payer: CodePayer) -> Payer {
        match payer {
            CodePayer::Campus(account) => Payer::VirtualCard(account),
            CodePayer::Wallet(id) => Payer::Wallet { method, payer: id },
        }
    }
}

/// A code payment as the till journals it before submitting it. The code itself is never
/// journaled: only its digest (to tell the same code scanned again) and its last characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub amount: Fen,
    pub method: CodeMethod,
    pub code: CodeDigest,
    pub hint: CodeHint,
    /// The campus account of a virtual-card code (known before paying).
    pub account: Option<VirtualAccount>,
    pub fixed_price: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub intent: Seq,
    pub amount: Fen,
    pub payer: Payer,
    /// The campus account's balance after it (virtual cards).
    pub balance_after: Option<Fen>,
    /// When the back end booked it (its clock).
    pub booked_at: UnixMillis,
    /// Learnt from a query after the till stopped waiting on screen (a restart, a lost answer).
    pub recovered: bool,
}

/// How an order ended without a sale. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEnd {
    Declined(DeclineReason),
    /// Closed by the reversal the till asked for; `refunded`: it had been paid, and the money
    /// went back to the payer.
    Reversed {
        refunded: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderClosed {
    pub intent: Seq,
    pub end: OrderEnd,
}

/// Why the till asks for a reversal. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReverseWhy {
    /// The merchant pressed Clear while the payer was confirming.
    MerchantCancelled,
    /// The payer did not confirm within the payment window.
    WindowOver,
    /// After a restart the campus did not know the order (the submit never arrived): reversing
    /// closes its id so a submit still in flight can never charge it.
    NotFoundAfterRestart,
    /// Too many orders were unresolved; the oldest is closed.
    TooManyUnresolved,
    /// The request could not leave the till (no daemon, or the daemon has no broker) while the
    /// merchant waited: the merchant takes the card or cash instead, and the order is reversed
    /// once the route is back, so a submit that did get out can never charge it.
    RouteDown,
}

/// A code-payment order whose intent is durable but whose outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    pub intent: Seq,
    pub at: UnixMillis,
    pub order: OrderIntent,
    /// Whether a reversal was asked for (`OrderReversing` journaled).
    pub reversing: bool,
}

/// A short tag the till writes onto the card together with each debit, so that a later read of
/// the card tells whether this very debit reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnTag(pub u32);

/// The card's state the debit starts from and the state it must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDebitPlan {
    pub counter_before: u32,
    pub balance_before: Fen,
    pub tag: TxnTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleIntent {
    pub amount: Fen,
    pub payer: Payer,
    pub card: CardDebitPlan,
    pub fixed_price: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleCommitted {
    pub intent: Seq,
    pub amount: Fen,
    pub payer: Payer,
    pub balance_after: Fen,
    /// Resolved from a later read of the card (re-tap or after a restart), not from the write.
    pub recovered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleAborted {
    pub intent: Seq,
    pub reason: AbortReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardIssued {
    pub uid: CardUid,
    pub opening_balance: Fen,
}

/// A top-up: `card` is the state the write starts from (its `tag` is written with the load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadIntent {
    pub amount: Fen,
    pub uid: CardUid,
    pub card: CardDebitPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadCommitted {
    pub intent: Seq,
    pub amount: Fen,
    pub uid: CardUid,
    pub balance_after: Fen,
    /// Resolved from a later read of the card, not from the write.
    pub recovered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadAborted {
    pub intent: Seq,
    pub reason: AbortReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadInDoubt {
    pub intent: Seq,
    pub reason: InDoubtReason,
}

/// A top-up whose intent is durable but whose outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLoad {
    pub intent: Seq,
    pub at: UnixMillis,
    pub load: LoadIntent,
    /// How many times the card write was resumed so far (since snapshot version 3; 0 for a
    /// load migrated from an older snapshot).
    pub resumes: u8,
}

/// [`PendingLoad`] as snapshot version 2 stored it (no resume count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLoadV2 {
    pub intent: Seq,
    pub at: UnixMillis,
    pub load: LoadIntent,
}

impl From<PendingLoadV2> for PendingLoad {
    fn from(v2: PendingLoadV2) -> PendingLoad {
        PendingLoad {
            intent: v2.intent,
            at: v2.at,
            load: v2.load,
            resumes: 0,
        }
    }
}

/// Why a sale did not take money. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortReason {
    /// A read of the card after an interrupted write showed the debit never reached it.
    CardNotDebited,
    /// The reader reported the write failed before it changed the card.
    WriteRefused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleInDoubt {
    pub intent: Seq,
    pub reason: InDoubtReason,
}

/// Why the till gave up resolving a sale itself. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InDoubtReason {
    /// Too many unresolved sales were waiting for their cards; the oldest goes to the server.
    TooManyUnresolved,
    /// The card came back, but it was used elsewhere since, so its state cannot tell.
    CardMovedOn,
    /// The card did not come back to this till within the time limit.
    CardNeverReturned,
    /// A top-up was resumed the most times allowed and still did not reach the card.
    ResumeLimitReached,
}

/// Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeChange {
    OfflineOn,
    OfflineOff,
    FixedPriceOn(Fen),
    FixedPriceOff,
}

/// A count of sales and their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SalesTally {
    pub count: u32,
    pub total: Fen,
}

impl SalesTally {
    /// Adds one sale; `None` if the total would overflow (the caller treats that as a fault).
    pub fn plus(self, amount: Fen) -> Option<SalesTally> {
        Some(SalesTally {
            count: self.count.checked_add(1)?,
            total: self.total.checked_add(amount)?,
        })
    }
}

/// The sales of one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTally {
    pub day: LocalDay,
    pub tally: SalesTally,
}

/// The sales of one meal period of one day; the period is named by its start minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MealTally {
    pub day: LocalDay,
    pub meal_start: MinuteOfDay,
    pub tally: SalesTally,
}

/// The last committed sale, for the duplicate-payment reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSale {
    pub payer: Payer,
    pub amount: Fen,
    pub at: UnixMillis,
}

/// A sale whose intent is durable but whose outcome is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSale {
    pub intent: Seq,
    pub at: UnixMillis,
    pub sale: SaleIntent,
}

/// The most recent sale amounts kept for Clear+1/2/3.
pub const RECENT_AMOUNTS_LEN: usize = 3;

/// How a sale was paid, for Clear+1/2/3. Append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaidBy {
    /// A campus card at the reader.
    Card,
    /// A payment code (virtual card, WeChat, Alipay, UnionPay).
    Code(CodeMethod),
}

/// How many local days' sales tallies the snapshot keeps (Clear+5). A week and a day: after the
/// clock is set back or forward, the days it left keep their totals, so returning to one shows
/// what that day sold. Past the limit the day furthest in the past goes first, never the
/// clock's day or the sale's (see the firmware's `count_in_tallies`). 13 to 20 bytes a day.
pub const TALLY_DAYS_KEPT: usize = 8;

/// How many meal tallies (one meal period of one day, Clear+6) the snapshot keeps: enough for
/// the three meals of every kept day with a few to spare. 15 to 22 bytes a meal.
pub const TALLY_MEALS_KEPT: usize = 3 * TALLY_DAYS_KEPT;

/// The staff PIN's wrong-attempt count and lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StaffPinState {
    /// Wrong PINs in a row.
    pub failures: u8,
    /// The staff menu stays locked until then.
    pub locked_until: Option<UnixMillis>,
}

/// The till's durable state, rewritten with every record. A restart starts from it.
///
/// Size: under 768 bytes besides the unresolved sales and top-ups, even with every tally list
/// full of the largest figures (bounded by [`TALLY_DAYS_KEPT`] and [`TALLY_MEALS_KEPT`];
/// `shared::codec`'s tests pin it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillSnapshot {
    /// The seq the next record gets; always last record's seq + 1.
    pub next_seq: Seq,
    pub machine: MachineNumber,
    pub offline: bool,
    pub fixed_price: Option<Fen>,
    /// Sales per local day of their intent, ascending by day; at most [`TALLY_DAYS_KEPT`].
    pub days: Vec<DayTally>,
    /// Sales per meal period of their intent, ascending by (day, start); at most
    /// [`TALLY_MEALS_KEPT`].
    pub meals: Vec<MealTally>,
    /// Oldest first; at most [`RECENT_AMOUNTS_LEN`].
    pub recent_amounts: Vec<Fen>,
    pub last_sale: Option<LastSale>,
    /// Oldest first; bounded by the firmware's limit on unresolved sales.
    pub pending: Vec<PendingSale>,
    /// Top-ups waiting for their card to come back; oldest first, bounded like `pending`.
    pub pending_loads: Vec<PendingLoad>,
    /// The campus configuration last applied (None: the till's own settings only).
    #[serde(deserialize_with = "crate::campus::salvage_stored_campus")]
    pub campus: Option<CampusConfig>,
    /// The blacklist the till holds (the list itself is stored beside the journal).
    pub blacklist: Option<BlacklistInfo>,
    /// The server's clock as last seen: (server time, offset server minus till).
    pub server_time: Option<(UnixMillis, i64)>,
    // ----- since snapshot version 3 --------------------------------------------------------
    /// Wrong staff PINs and the lockout they caused.
    pub staff_pin: StaffPinState,
    /// The card whose issue was interrupted last (its writes may have landed).
    pub interrupted_issue: Option<CardUid>,
    // ----- since snapshot version 4 --------------------------------------------------------
    /// Code-payment orders not settled yet; oldest first, bounded like `pending`.
    pub pending_orders: Vec<PendingOrder>,
    /// The part of `days` paid by code (virtual card, WeChat, Alipay, UnionPay), same days.
    pub code_days: Vec<DayTally>,
    /// The part of `meals` paid by code, same meals.
    pub code_meals: Vec<MealTally>,
    /// How each of `recent_amounts` was paid, in the same order (a snapshot migrated from an
    /// older version: all by card).
    pub recent_methods: Vec<PaidBy>,
    /// What campus accounts paid by virtual card offline here, per local day (bounded by the
    /// firmware's limits).
    pub offline_accounts: Vec<OfflineAccountDay>,
    /// Nonces of virtual-card codes accepted offline and not expired yet (bounded).
    pub seen_nonces: Vec<SeenNonce>,
    /// Wrong confirmation codes typed per pending offline QR order: (intent, attempts).
    pub qr_attempts: Vec<(Seq, u8)>,
}

/// The snapshot as version 3 stored it; read only to migrate old journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillSnapshotV3 {
    pub next_seq: Seq,
    pub machine: MachineNumber,
    pub offline: bool,
    pub fixed_price: Option<Fen>,
    pub days: Vec<DayTally>,
    pub meals: Vec<MealTally>,
    pub recent_amounts: Vec<Fen>,
    pub last_sale: Option<LastSale>,
    pub pending: Vec<PendingSale>,
    pub pending_loads: Vec<PendingLoad>,
    /// The shape before code payments, salvaged like [`TillSnapshot::campus`].
    #[serde(deserialize_with = "crate::campus::salvage_stored_campus_v1")]
    pub campus: Option<CampusConfigV1>,
    pub blacklist: Option<BlacklistInfo>,
    pub server_time: Option<(UnixMillis, i64)>,
    pub staff_pin: StaffPinState,
    pub interrupted_issue: Option<CardUid>,
}

/// Version 3 knew no code payments: no orders, every sale was a card's, and its campus
/// configuration carried no code-payment settings.
impl From<TillSnapshotV3> for TillSnapshot {
    fn from(v3: TillSnapshotV3) -> TillSnapshot {
        TillSnapshot {
            next_seq: v3.next_seq,
            machine: v3.machine,
            offline: v3.offline,
            fixed_price: v3.fixed_price,
            days: v3.days,
            meals: v3.meals,
            recent_methods: vec![PaidBy::Card; v3.recent_amounts.len()],
            recent_amounts: v3.recent_amounts,
            last_sale: v3.last_sale,
            pending: v3.pending,
            pending_loads: v3.pending_loads,
            campus: v3.campus.map(CampusConfig::from),
            blacklist: v3.blacklist,
            server_time: v3.server_time,
            staff_pin: v3.staff_pin,
            interrupted_issue: v3.interrupted_issue,
            pending_orders: Vec::new(),
            code_days: Vec::new(),
            code_meals: Vec::new(),
            offline_accounts: Vec::new(),
            seen_nonces: Vec::new(),
            qr_attempts: Vec::new(),
        }
    }
}

impl TillSnapshot {
    /// The tally of local day `day` (zero if the snapshot keeps none for it).
    pub fn day_tally(&self, day: LocalDay) -> SalesTally {
        self.days
            .iter()
            .find(|t| t.day == day)
            .map(|t| t.tally)
            .unwrap_or_default()
    }

    /// The tally of the meal period starting at `meal_start` on `day`.
    pub fn meal_tally(&self, day: LocalDay, meal_start: MinuteOfDay) -> SalesTally {
        self.meals
            .iter()
            .find(|m| m.day == day && m.meal_start == meal_start)
            .map(|m| m.tally)
            .unwrap_or_default()
    }
}

/// The snapshot as version 2 stored it; read only to migrate old journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub pending_loads: Vec<PendingLoadV2>,
    /// The shape before code payments, salvaged like [`TillSnapshot::campus`]: a stored value
    /// refused today falls back to none.
    #[serde(deserialize_with = "crate::campus::salvage_stored_campus_v1")]
    pub campus: Option<CampusConfigV1>,
    pub blacklist: Option<BlacklistInfo>,
    pub server_time: Option<(UnixMillis, i64)>,
}

/// The snapshot as version 1 stored it; read only to migrate old journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillSnapshotV1 {
    pub next_seq: Seq,
    pub machine: MachineNumber,
    pub offline: bool,
    pub fixed_price: Option<Fen>,
    pub today: Option<DayTally>,
    pub meal: Option<MealTally>,
    pub recent_amounts: Vec<Fen>,
    pub last_sale: Option<LastSale>,
    pub pending: Vec<PendingSale>,
}

impl From<TillSnapshotV1> for TillSnapshotV2 {
    fn from(v1: TillSnapshotV1) -> TillSnapshotV2 {
        TillSnapshotV2 {
            next_seq: v1.next_seq,
            machine: v1.machine,
            offline: v1.offline,
            fixed_price: v1.fixed_price,
            today: v1.today,
            meal: v1.meal,
            recent_amounts: v1.recent_amounts,
            last_sale: v1.last_sale,
            pending: v1.pending,
            pending_loads: Vec::new(),
            campus: None,
            blacklist: None,
            server_time: None,
        }
    }
}

/// Version 2 kept one day's and one meal's tally: they become the only kept ones. The PIN
/// lockout, the resume counts and the interrupted issue were not stored: they start empty.
impl From<TillSnapshotV2> for TillSnapshot {
    fn from(v2: TillSnapshotV2) -> TillSnapshot {
        TillSnapshot {
            next_seq: v2.next_seq,
            machine: v2.machine,
            offline: v2.offline,
            fixed_price: v2.fixed_price,
            days: v2.today.into_iter().collect(),
            meals: v2.meal.into_iter().collect(),
            recent_methods: vec![PaidBy::Card; v2.recent_amounts.len()],
            recent_amounts: v2.recent_amounts,
            last_sale: v2.last_sale,
            pending: v2.pending,
            pending_loads: v2
                .pending_loads
                .into_iter()
                .map(PendingLoad::from)
                .collect(),
            campus: v2.campus.map(CampusConfig::from),
            blacklist: v2.blacklist,
            server_time: v2.server_time,
            staff_pin: StaffPinState::default(),
            interrupted_issue: None,
            pending_orders: Vec::new(),
            code_days: Vec::new(),
            code_meals: Vec::new(),
            offline_accounts: Vec::new(),
            seen_nonces: Vec::new(),
            qr_attempts: Vec::new(),
        }
    }
}

impl From<TillSnapshotV1> for TillSnapshot {
    fn from(v1: TillSnapshotV1) -> TillSnapshot {
        TillSnapshotV2::from(v1).into()
    }
}

impl TillSnapshot {
    /// The state of a till that has never written a record.
    pub fn factory_new() -> TillSnapshot {
        TillSnapshot {
            next_seq: Seq::FIRST,
            machine: MachineNumber::FACTORY_DEFAULT,
            offline: false,
            fixed_price: None,
            days: Vec::new(),
            meals: Vec::new(),
            recent_amounts: Vec::new(),
            last_sale: None,
            pending: Vec::new(),
            pending_loads: Vec::new(),
            campus: None,
            blacklist: None,
            server_time: None,
            staff_pin: StaffPinState::default(),
            interrupted_issue: None,
            pending_orders: Vec::new(),
            code_days: Vec::new(),
            code_meals: Vec::new(),
            recent_methods: Vec::new(),
            offline_accounts: Vec::new(),
            seen_nonces: Vec::new(),
            qr_attempts: Vec::new(),
        }
    }
}
