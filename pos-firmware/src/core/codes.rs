//! Recognises the payment codes a scanner may read (WeChat Pay, Alipay, UnionPay) by their
//! published shapes.

/// The kinds of payment code a scanner may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    WeChat,
    Alipay,
    UnionPay,
    Unknown,
}

/// Tells payment codes apart by their published shapes: WeChat Pay 18 digits starting 10–15,
/// Alipay 16–24 digits starting 25–30, UnionPay QR 19 digits starting 62.
pub fn classify_code(code: &str) -> CodeKind {
    let code = code.trim();
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return CodeKind::Unknown;
    }
    let prefix: u32 = code.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    match (code.len(), prefix) {
        (18, 10..=15) => CodeKind::WeChat,
        (16..=24, 25..=30) => CodeKind::Alipay,
        (19, 62) => CodeKind::UnionPay,
        _ => CodeKind::Unknown,
    }
}
