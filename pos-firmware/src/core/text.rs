//! Every text the till shows, in Chinese (default) and English. Kept in one place so that the
//! wording is consistent and a translation is a one-file change.

use super::config::{Lang, MealLabel};
use shared::Fen;

/// Picks the text for `lang`.
pub fn tr(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => en.to_string(),
    }
}

pub fn yuan(amount: Fen) -> String {
    format!("¥{amount}")
}

pub fn meal_name(lang: Lang, label: &MealLabel) -> String {
    match label {
        MealLabel::Breakfast => tr(lang, "早餐", "Breakfast"),
        MealLabel::Lunch => tr(lang, "午餐", "Lunch"),
        MealLabel::Dinner => tr(lang, "晚餐", "Dinner"),
        MealLabel::Named(name) => name.clone(),
    }
}

pub fn count_and_total(lang: Lang, count: u32, total: Fen) -> String {
    match lang {
        Lang::Zh => format!("{count}笔 {}", yuan(total)),
        Lang::En if count == 1 => format!("1 sale {}", yuan(total)),
        Lang::En => format!("{count} sales {}", yuan(total)),
    }
}

pub fn balance(lang: Lang, balance: Fen) -> String {
    match lang {
        Lang::Zh => format!("余额 {}", yuan(balance)),
        Lang::En => format!("Balance {}", yuan(balance)),
    }
}

/// The merchant's lines when the card reader chip itself fails (dead, unplugged): not the
/// card's fault, and tapping again does not help.
pub fn reader_fault(lang: Lang) -> Vec<String> {
    vec![
        tr(lang, "读卡器故障", "Card reader fault"),
        tr(lang, "请联系维护", "Call maintenance"),
    ]
}

/// The payer's lines for the same fault: the till cannot take the card for now.
pub fn reader_fault_customer(lang: Lang) -> Vec<String> {
    vec![
        tr(lang, "读卡器故障", "Card reader fault"),
        tr(lang, "暂不能刷卡", "Cards cannot pay now"),
    ]
}

/// The merchant's lines while the data directory is full: selling stopped, the operator must
/// free space (the till restarts from its journal once there is space again).
pub fn storage_full(lang: Lang) -> Vec<String> {
    vec![
        tr(lang, "存储已满", "Storage full"),
        tr(lang, "暂停收款", "Selling stopped"),
        tr(lang, "请清理存储空间", "Free up storage"),
    ]
}

/// The payer's lines while the data directory is full.
pub fn storage_full_customer(lang: Lang) -> Vec<String> {
    vec![
        tr(lang, "暂停收款", "Till paused"),
        tr(lang, "请稍候", "Please wait"),
    ]
}
