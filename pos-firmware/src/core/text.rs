//! Every text the till shows, in Chinese (default) and English side by side: one [`Text`]
//! constant per fixed text (grouped by the file that shows it), one function per text with
//! values in it. Kept in one place so that the wording is consistent and a translation is a
//! one-file change; the core's flows name a text, they never spell one (`tests/tidy.rs` fails
//! on a `tr("…", "…")` pair or a `Lang::Zh =>` format anywhere else under `core/`).

use super::config::{Lang, MealLabel, MealPeriod};
use shared::Fen;

/// One text of the till in both languages, side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub zh: &'static str,
    pub en: &'static str,
}

impl Text {
    pub const fn new(zh: &'static str, en: &'static str) -> Text {
        Text { zh, en }
    }

    /// The text in `lang`.
    pub fn get(self, lang: Lang) -> String {
        tr(lang, self.zh, self.en)
    }
}

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

// ----- downlink ----------------------------------------------------------------------
pub const LINK_DOWN: Text = Text::new("链路断", "LINK DOWN");
pub const NET_DOWN: Text = Text::new("网断", "NET DOWN");
pub const LINK_DOWN_2: Text = Text::new("链路断开", "link down");
pub const ONLINE: Text = Text::new("已联网", "online");
pub const SERVER_DOWN: Text = Text::new("服务器断开", "server down");
pub const CONNECTED: Text = Text::new("已连接", "connected");
pub const NO_SERVER_TIME_YET: Text = Text::new("未与服务器对时", "No server time yet");

// ----- flows/browse ------------------------------------------------------------------
pub const UP_DOWN_BROWSE_CLEAR_EXITS: Text =
    Text::new("上下键翻看 清零退出", "Up/Down browse, Clear exits");
pub const NO_SALES_YET: Text = Text::new("暂无流水", "No sales yet");
pub const NO_MORE_SALES: Text = Text::new("没有更多了", "No more sales");
pub const LOOKING_UP: Text = Text::new("查询中", "Looking up");
pub const SALE: Text = Text::new("流水", "Sale");
pub const PAID: Text = Text::new("成功", "paid");

// ----- flows/card_centre -------------------------------------------------------------
pub const TAP_THE_CARD_TO_LOAD: Text = Text::new("请刷卡充值", "Tap the card to load");
pub const CLEAR_CANCELS: Text = Text::new("清零取消", "Clear cancels");
pub const WRITING_KEEP_THE_CARD_STILL: Text =
    Text::new("正在写卡 请勿移卡", "Writing: keep the card still");
pub const TAP_A_BLANK_CARD: Text = Text::new("请放空白卡", "Tap a blank card");
pub const CLEAR_EXITS: Text = Text::new("清零退出", "Clear exits");
pub const ENTER_AN_AMOUNT_FIRST: Text = Text::new("请先输入金额", "Enter an amount first");
pub const WHOLE_YUAN_ONLY: Text = Text::new("充值须为整数元", "Whole yuan only");
pub const TAP_THE_SAME_CARD_AGAIN: Text = Text::new("请用原卡重新刷卡", "Tap the same card again");
pub const CLEAR_GIVES_UP: Text = Text::new("清零放弃", "Clear gives up");
pub const CARD_WORN_OUT_REPLACE_IT: Text =
    Text::new("卡片计数已满 请换卡", "Card worn out: replace it");
pub const LOAD_FAILED_TOO_OFTEN: Text = Text::new("多次充值失败 已锁定", "Load failed too often");
pub const SERVER_SETTLES_REFUND: Text = Text::new("由后台处理退款", "Server settles refund");
pub const EARLIER_LOAD_ARRIVED: Text = Text::new("上次充值已到账", "Earlier load arrived");
pub const CONTINUING_EARLIER_LOAD: Text = Text::new("继续上次充值", "Continuing earlier load");
pub const EARLIER_LOAD_DID_NOT_ARRIVE: Text =
    Text::new("上次充值未到账", "Earlier load did not arrive");
pub const RECORDED_FOR_REFUND: Text = Text::new("已记录退款", "Recorded for refund");
pub const EARLIER_LOAD_NOT_ON_CARD: Text = Text::new("上次充值未到账", "Earlier load not on card");
pub const REFUND_RECORDED: Text = Text::new("已记录退款", "Refund recorded");
pub const CARD_CHANGED_CANNOT_RESUME: Text =
    Text::new("卡内余额已变 不能继续充值", "Card changed: cannot resume");
pub const RECORDED_FOR_REFUND_2: Text = Text::new("已记录 由后台退款", "Recorded for refund");
pub const CARD_WRITE_FAILED_NOT_LOADED: Text =
    Text::new("写卡失败 未充值", "Card write failed, not loaded");
pub const TAP_AGAIN: Text = Text::new("请重新刷卡", "Tap again");
pub const LOAD_OK: Text = Text::new("充值成功", "Load OK");
pub const NOT_ISSUED: Text = Text::new("未开卡", "Not issued");
pub const ALREADY_ISSUED: Text = Text::new("此卡已开通", "Already issued");
pub const NOT_A_BLANK_CARD: Text = Text::new("不是空白卡", "Not a blank card");
pub const CARD_READ_FAILED: Text = Text::new("读卡失败", "Card read failed");
pub const ISSUING_INTERRUPTED: Text = Text::new("开卡中断", "Issuing interrupted");
pub const PUT_THE_CARD_BACK: Text = Text::new("请放回原卡重试", "Put the card back");
pub const CARD: Text = Text::new("卡号", "Card");
pub const CARD_ISSUED: Text = Text::new("开卡成功", "Card issued");
pub const LOAD_AMOUNT: Text = Text::new("充值金额", "Load amount");
pub const ENTER_OK_CLEAR_BACK: Text = Text::new("回车确认 清零返回", "Enter: OK Clear: back");
pub const TOP_UP: Text = Text::new("充值", "Top-up");
pub const LOAD_UNFINISHED_TAP_AGAIN: Text =
    Text::new("充值未完成 请重新刷卡", "Load unfinished: tap again");
pub const TAP_YOUR_CARD_AGAIN: Text = Text::new("请重新刷卡", "Tap your card again");
pub const LOAD_TAP_THE_CARD: Text = Text::new("充值 请刷卡", "Load: tap the card");
pub const TOP_UP_TAP_CARD: Text = Text::new("充值 请刷卡", "Top-up: tap card");
pub const LOADING_KEEP_CARD: Text = Text::new("充值写卡中 请勿移卡", "Loading, keep card");
pub const LOADING_KEEP_CARD_2: Text = Text::new("充值中 请勿移卡", "Loading, keep card");
pub const ISSUE_TAP_BLANK_CARD: Text = Text::new("开卡: 请放空白卡", "Issue: tap blank card");
pub const ISSUING_KEEP_CARD: Text = Text::new("开卡中 请勿移卡", "Issuing, keep card");
pub const KEEP_THE_CARD_STILL: Text = Text::new("请勿移卡", "Keep the card still");

// ----- flows/entry -------------------------------------------------------------------
pub const PICK_A_NUMBER_CLEAR: Text = Text::new("数字选择 清零取消", "Pick a number, Clear");
pub const AT_MOST_2_DECIMALS: Text = Text::new("最多两位小数", "At most 2 decimals");
pub const ALREADY_HAS_A_POINT: Text = Text::new("已有小数点", "Already has a point");
pub const ALREADY_FIXED_PRICE: Text = Text::new("已在定额模式", "Already fixed-price");
pub const TYPE_THE_FIXED_AMOUNT_FIRST: Text =
    Text::new("请先输入定额金额", "Type the fixed amount first");
pub const FIXED_PRICE_MODE: Text = Text::new("定额模式", "Fixed-price mode");
pub const NOT_IN_FIXED_PRICE_MODE: Text = Text::new("未在定额模式", "Not in fixed-price mode");
pub const FIXED_PRICE_OFF: Text = Text::new("已取消定额", "Fixed price off");
pub const ENTER_AMOUNT: Text = Text::new("请输入金额", "Enter amount");
pub const PICK_FIXED_PRICE_CLEAR: Text = Text::new("选择定额 清零取消", "Pick fixed price, Clear");

// ----- flows/messages ----------------------------------------------------------------
pub const BROWSING_CLEAR_TO_EXIT: Text = Text::new("浏览中: 清零退出", "Browsing: Clear to exit");
pub const IN_SETUP_CLEAR_TO_EXIT: Text = Text::new("设置中: 清零退出", "In setup: Clear to exit");
pub const FINISH_OR_CANCEL_THE_SALE_FIRST: Text =
    Text::new("请先完成或取消交易", "Finish or cancel the sale first");
pub const INVALID_KEY_COMBO: Text = Text::new("无效组合键", "Invalid key combo");
pub const TILL_TIME: Text = Text::new("本机时间", "Till time");
pub const UNFINISHED_SALES_TO_CHECK: Text =
    Text::new("有未完成交易待核对", "Unfinished sales to check");
pub const KEY_NOT_USED_HERE: Text = Text::new("无效按键", "Key not used here");
pub const LAST_SALE: Text = Text::new("倒数第一笔", "Last sale");
pub const SECOND_LAST_SALE: Text = Text::new("倒数第二笔", "Second-last sale");
pub const THIRD_LAST_SALE: Text = Text::new("倒数第三笔", "Third-last sale");
pub const NONE: Text = Text::new("无记录", "None");
pub const TODAY: Text = Text::new("今日累计", "Today");
pub const MEAL_TOTAL: Text = Text::new("餐累", "Meal total");
pub const NOT_IN_A_MEAL_PERIOD: Text = Text::new("当前不在用餐时段", "Not in a meal period");
pub const OFFLINE_MODE_ON: Text = Text::new("已设为脱机模式", "Offline mode on");
pub const OFFLINE_MODE_OFF: Text = Text::new("已恢复联机模式", "Offline mode off");
pub const MACHINE: Text = Text::new("机号", "Machine");
pub const VERSION: Text = Text::new("版本", "Version");
pub const TERMINAL: Text = Text::new("终端", "Terminal");

// ----- flows/sale --------------------------------------------------------------------
pub const CLEAR_DEL_LEAVES_IT: Text = Text::new("清零+删除 退出定额", "Clear+Del leaves it");
pub const SALE_CANCELLED: Text = Text::new("交易已取消", "Sale cancelled");
pub const WAITING_FOR_PAYMENT: Text = Text::new("等待付款", "Waiting for payment");
pub const CLEAR_CANCELS_2: Text = Text::new("清零取消交易", "Clear cancels");
pub const CHARGING_KEEP_THE_CARD_STILL: Text =
    Text::new("正在扣款 请勿移卡", "Charging: keep the card still");
pub const CONFIRMED_TAP_AGAIN: Text = Text::new("已确认 请再次刷卡", "Confirmed: tap again");
pub const ENTER_CONFIRMS_CLEAR_CANCELS: Text =
    Text::new("回车确认 清零取消", "Enter confirms, Clear cancels");
pub const MERCHANT_MUST_CONFIRM_FIRST: Text =
    Text::new("请商户先确认", "Merchant must confirm first");
pub const NOT_CHARGED_CLEAR_DEL_LEAVES_FIXED: Text = Text::new(
    "未扣款 清零+删除退出定额",
    "Not charged; Clear+Del leaves fixed price",
);
pub const INSUFFICIENT_BALANCE: Text = Text::new("余额不足", "Insufficient balance");
pub const CARD_WORN_OUT_SEE_CARD_CENTRE: Text = Text::new(
    "卡片计数已满 请到卡务中心",
    "Card worn out: see card centre",
);
pub const CARD_WRITE_FAILED_NOT_CHARGED: Text =
    Text::new("写卡失败 未扣款", "Card write failed, not charged");
pub const EARLIER_UNFINISHED_SALE_PAID: Text =
    Text::new("上笔未完成交易: 已扣款", "Earlier unfinished sale: paid");
pub const EARLIER_SALE_PAID: Text = Text::new("上笔已扣款", "Earlier sale paid");
pub const TAP_AGAIN_TO_PAY: Text = Text::new("请再刷一次", "Tap again to pay");
pub const ENTER_THE_AMOUNT_AGAIN: Text = Text::new("请重新输入金额", "Enter the amount again");
pub const EARLIER_UNFINISHED_SALE_NOT_CHARGED: Text = Text::new(
    "上笔未完成交易: 未扣款",
    "Earlier unfinished sale: not charged",
);
pub const EARLIER_SALE_NOT_PAID: Text = Text::new("上笔未扣款", "Earlier sale not paid");
pub const EARLIER_SALE_CANNOT_BE_CHECKED: Text =
    Text::new("上笔交易无法确认", "Earlier sale cannot be checked");
pub const RECORDED_FOR_THE_SERVER: Text = Text::new("已记录 由后台核对", "Recorded for the server");
pub const SALE_UNFINISHED: Text = Text::new("交易未完成", "Sale unfinished");
pub const CHECKED_AT_THE_CARD_S_NEXT: Text =
    Text::new("该卡下次刷卡时核对", "Checked at the card's next tap");
pub const PAYMENT_OK: Text = Text::new("交易成功", "Payment OK");
pub const TAP_THE_CARD_AGAIN: Text = Text::new("请重新刷卡", "Tap the card again");
pub const FIXED_PRICE: Text = Text::new("定额收款", "Fixed price");
pub const TAP_CARD_TO_PAY: Text = Text::new("请刷卡", "Tap card to pay");
pub const PLEASE_PAY: Text = Text::new("请付款", "Please pay");
pub const CHARGING_KEEP_CARD: Text = Text::new("扣款中 请勿移卡", "Charging, keep card");
pub const DUPLICATE_PAYMENT: Text = Text::new("重复消费提醒", "Duplicate payment?");
pub const SAME_CARD_SAME: Text = Text::new("同卡同额", "Same card, same");
pub const ENTER_GO_ON_CLEAR_STOP: Text =
    Text::new("回车确认 清零取消", "Enter: go on  Clear: stop");
pub const PAID_THIS_JUST_NOW: Text = Text::new("重复消费提醒", "Paid this just now");
pub const CONFIRM_WITH_MERCHANT: Text = Text::new("请与商户确认", "Confirm with merchant");

// ----- flows/staff -------------------------------------------------------------------
pub const PICK_1_3_CLEAR_EXITS: Text = Text::new("请选1-3 清零退出", "Pick 1-3, Clear exits");
pub const NUMBER_MUST_BE_1_9999: Text = Text::new("机号须为1-9999", "Number must be 1-9999");
pub const WRONG_PIN_LOCKED: Text = Text::new("密码错误 已锁定", "Wrong PIN: locked");
pub const WRONG_PIN: Text = Text::new("密码错误", "Wrong PIN");
pub const PICK_1_3: Text = Text::new("请选1-3", "Pick 1-3");
pub const NUMBER_UNCHANGED: Text = Text::new("机号未变", "Number unchanged");
pub const MACHINE_NUMBER_NOW: Text = Text::new("机号已设为", "Machine number now");
pub const STAFF_MENU: Text = Text::new("管理菜单", "Staff menu");
pub const PIN: Text = Text::new("密码", "PIN");
pub const N1_NO_2_ISSUE_3_LOAD: Text = Text::new("1机号 2开卡 3充值", "1 No. 2 Issue 3 Load");
pub const SET_MACHINE_NUMBER: Text = Text::new("设置机号", "Set machine number");
pub const NEW_NUMBER: Text = Text::new("新机号", "New number");

// ----- offline -----------------------------------------------------------------------
pub const PER_SALE: Text = Text::new("脱机单笔限额", "Per sale");
pub const PER_CARD_A_DAY: Text = Text::new("每卡每日限额", "Per card a day");
pub const UNSENT_TOTAL: Text = Text::new("未上传金额上限", "Unsent total");
pub const OFFLINE_LIMIT: Text = Text::new("脱机收款受限", "Offline limit");
pub const RECONNECT_TO_UPLOAD: Text = Text::new("请恢复联网上传", "Reconnect to upload");
pub const UNSENT_RECORDS_TOO_OLD: Text = Text::new("未上传记录过久", "Unsent records too old");
pub const BLACKLIST_TOO_OLD: Text = Text::new("黑名单过期", "Blacklist too old");
pub const RECONNECT_TO_UPDATE: Text = Text::new("请恢复联网更新", "Reconnect to update");

// ----- screens -----------------------------------------------------------------------
pub const NO: Text = Text::new("机号", "No.");
pub const OFFLINE: Text = Text::new("脱机", "OFFLINE");
pub const ONLINE_2: Text = Text::new("联机", "ONLINE");
pub const FIXED: Text = Text::new("定额", "FIXED ");
pub const WELCOME: Text = Text::new("欢迎光临", "Welcome");

// ----- tap ---------------------------------------------------------------------------
pub const CARD_REPORTED_LOST: Text = Text::new("挂失卡 请联系卡务中心", "Card reported lost");
pub const EXIT_FIRST_CLEAR: Text = Text::new("请先退出(清零)", "Exit first (Clear)");
pub const NOT_A_CAMPUS_CARD: Text = Text::new("非本校园卡", "Not a campus card");
pub const CARD_NOT_ISSUED: Text = Text::new("未开通的卡", "Card not issued");
pub const SEE_THE_CARD_CENTRE: Text = Text::new("请到卡务中心", "See the card centre");
pub const CARD_OF_ANOTHER_CAMPUS: Text = Text::new("非本校园卡(外校)", "Card of another campus");
pub const CARD_KEY_MISMATCH: Text = Text::new("卡片密钥错误", "Card key mismatch");
pub const CARD_DATA_CHECK_FAILED: Text = Text::new("卡片数据校验失败", "Card data check failed");
pub const CARD_DATA_IS_STALE: Text = Text::new("卡片数据异常", "Card data is stale");
pub const OFFLINE_CODES_CANNOT_PAY: Text =
    Text::new("脱机模式不能扫码付款", "Offline: codes cannot pay");
pub const PLEASE_USE_THE_CAMPUS_CARD: Text = Text::new("请刷校园卡", "Please use the campus card");

// ----- texts with values in them ---------------------------------------------------------------

pub fn loads_are_multiples_of(lang: Lang, step: Fen) -> String {
    match lang {
        Lang::Zh => format!("充值须为{}的整数倍", yuan(step)),
        Lang::En => format!("Loads are multiples of {}", yuan(step)),
    }
}

pub fn over_the_card_limit(lang: Lang, max: Fen) -> String {
    match lang {
        Lang::Zh => format!("超过卡内上限 {}", yuan(max)),
        Lang::En => format!("Over the card limit {}", yuan(max)),
    }
}

pub fn load_would_exceed(lang: Lang, max: Fen) -> String {
    match lang {
        Lang::Zh => format!("充值后超过上限 {}", yuan(max)),
        Lang::En => format!("Would exceed {}", yuan(max)),
    }
}

pub fn over_the_sale_limit(lang: Lang, max: Fen) -> String {
    match lang {
        Lang::Zh => format!("超过单笔限额 {}", yuan(max)),
        Lang::En => format!("Over the limit {}", yuan(max)),
    }
}

pub fn amount_over_the_sale_limit(lang: Lang, amount: Fen, max: Fen) -> String {
    match lang {
        Lang::Zh => format!("{} 超过单笔限额 {}", yuan(amount), yuan(max)),
        Lang::En => format!("{} over the limit {}", yuan(amount), yuan(max)),
    }
}

pub fn pick_one_to(lang: Lang, last: usize) -> String {
    match lang {
        Lang::Zh => format!("请选1-{last}"),
        Lang::En => format!("Pick 1-{last}"),
    }
}

pub fn tap_those_cards_again(lang: Lang, count: usize) -> String {
    match lang {
        Lang::Zh => format!("{count}笔: 请原卡再刷一次"),
        Lang::En => format!("{count}: tap those cards again"),
    }
}

/// Clear+6's title: the meal's name and its period.
pub fn meal_total_title(lang: Lang, meal: &MealPeriod) -> String {
    match lang {
        Lang::Zh => format!(
            "{}累计 {}-{}",
            meal_name(lang, &meal.label),
            meal.start,
            meal.end
        ),
        Lang::En => format!(
            "{} {}-{}",
            meal_name(lang, &meal.label),
            meal.start,
            meal.end
        ),
    }
}

pub fn pin_locked_for(lang: Lang, minutes: u64) -> String {
    match lang {
        Lang::Zh => format!("密码错误过多 {minutes}分钟后再试"),
        Lang::En => format!("Too many wrong PINs: wait {minutes} min"),
    }
}

/// The status line's count of unresolved sales and top-ups (with its leading space).
pub fn unresolved_on_status(lang: Lang, unresolved: usize) -> String {
    match lang {
        Lang::Zh => format!(" 待核{unresolved}"),
        Lang::En => format!(" CHECK {unresolved}"),
    }
}

/// The status line's count of unsent records: the long form and the short one.
pub fn unsent_on_status(lang: Lang, n: u64) -> (String, String) {
    match lang {
        Lang::Zh => (format!("未上传{n}笔"), format!("未传{n}")),
        Lang::En => (format!("UNSENT {n}"), format!("U{n}")),
    }
}

/// Clear+8's line about the link: its state and the unsent count.
pub fn link_and_unsent(lang: Lang, state: &str, unsent: u64) -> String {
    match lang {
        Lang::Zh => format!("{state} 未上传{unsent}笔"),
        Lang::En => format!("{state}, {unsent} unsent"),
    }
}

/// Clear+0's line about the server's clock ("+1.5").
pub fn server_clock_difference(lang: Lang, seconds: &str) -> String {
    match lang {
        Lang::Zh => format!("服务器差 {seconds}秒"),
        Lang::En => format!("Server {seconds}s"),
    }
}

/// Clear+0's count of server-clock corrections not journaled (with its leading separator).
pub fn unjournaled_corrections(lang: Lang, unjournaled: u64) -> String {
    match lang {
        Lang::Zh => format!(" 未记{unjournaled}次"),
        Lang::En => format!(", {unjournaled} unlogged"),
    }
}

/// A short age: "25分" / "3时" / "2天", or "25m" / "3h" / "2d".
pub fn short_age(lang: Lang, ms: u64) -> String {
    let minutes = ms / 60_000;
    let (n, unit) = if minutes < 60 {
        (minutes, Text::new("分", "m"))
    } else if minutes < 48 * 60 {
        (minutes / 60, Text::new("时", "h"))
    } else {
        (minutes / (24 * 60), Text::new("天", "d"))
    };
    format!("{n}{}", unit.get(lang))
}

/// An offline limit as the refusal shows it: its name and its amount.
pub fn limit_line(lang: Lang, name: Text, limit: Fen) -> String {
    format!("{} {}", name.get(lang), yuan(limit))
}

// ----- code payments (flows/order.rs) ----------------------------------------------------------
pub const UNRECOGNISED_PAYMENT_CODE: Text = Text::new("无法识别的付款码", "Unrecognised code");
pub const ENTER_THE_AMOUNT_BEFORE_THE_CODE: Text =
    Text::new("请先输入金额", "Enter the amount first");
pub const CARD_WRITE_IN_PROGRESS: Text = Text::new("正在写卡 请稍候", "Card write in progress");
pub const ORDER_IN_PROGRESS: Text = Text::new("付款进行中 请稍候", "Payment in progress");
pub const CODE_ALREADY_USED: Text = Text::new("付款码已使用", "Code already used");
pub const CODE_EXPIRED_REFRESH: Text =
    Text::new("付款码已过期, 请刷新", "Code expired, refresh it");
/// A virtual-card code the till's campus keys refuse (forged, altered, or of a key the campus
/// did not announce); the second line says why.
pub const CODE_INVALID: Text = Text::new("付款码无效", "Code invalid");
pub const CODE_SIGNATURE_BAD: Text = Text::new("签名不符", "Signature does not verify");

/// The second line of [`CODE_INVALID`] when the code names a key the till does not hold.
pub fn code_key_unknown(lang: Lang, id: u8) -> String {
    match lang {
        Lang::Zh => format!("未知密钥 {id}"),
        Lang::En => format!("Unknown key {id}"),
    }
}
pub const NO_LINK_CODES_CANNOT_PAY: Text =
    Text::new("未接同步程序 不能扫码", "No link: codes cannot pay");
pub const LINK_DOWN_CODES_CANNOT_PAY: Text =
    Text::new("链路断开 不能扫码", "Link down: codes cannot pay");
pub const SERVER_DOWN_CODES_CANNOT_PAY: Text =
    Text::new("服务器不通 不能扫码", "Server down: codes cannot pay");
pub const TOO_MANY_OPEN_ORDERS: Text = Text::new("未完成订单过多", "Too many open orders");
pub const METHOD_VIRTUAL_CARD: Text = Text::new("虚拟卡", "Virtual card");
pub const METHOD_WECHAT: Text = Text::new("微信", "WeChat");
pub const METHOD_ALIPAY: Text = Text::new("支付宝", "Alipay");
pub const METHOD_UNIONPAY: Text = Text::new("云闪付", "UnionPay");
pub const METHOD_OFFLINE_QR: Text = Text::new("扫一扫", "Offline QR");
pub const METHOD_CARD: Text = Text::new("校园卡", "Card");
pub const ORDER_PAYING: Text = Text::new("正在支付", "paying");
pub const ORDER_PLEASE_WAIT: Text = Text::new("支付中 请稍候", "Paying, please wait");
pub const CLEAR_CANCELS_ORDER: Text = Text::new("清零撤销", "Clear cancels");
pub const WAITING_FOR_THE_PAYER: Text = Text::new("等待确认", "awaiting payer");
pub const CONFIRM_ON_YOUR_PHONE: Text = Text::new("请在手机上确认", "Confirm on your phone");
pub const ORDER_REVERSING: Text = Text::new("正在撤销订单", "Reversing the order");
pub const ORDER_BEING_CANCELLED: Text = Text::new("交易取消中", "Cancelling");
pub const CLEAR_TO_BACKGROUND: Text = Text::new("清零转后台", "Clear: background");
pub const ORDER_TO_BACKGROUND: Text = Text::new("订单转后台处理", "Order goes on in background");
pub const ORDER_DECLINED: Text = Text::new("支付失败", "Payment declined");
pub const ORDER_REVERSED: Text = Text::new("已撤销", "Reversed");
pub const MONEY_BACK_TO_THE_PAYER: Text = Text::new("已退款给付款人", "Payer refunded");
pub const NOTHING_CHARGED: Text = Text::new("未扣款", "Nothing charged");
pub const EARLIER_ORDER_PAID: Text = Text::new("之前的订单已付款", "Earlier order paid");
pub const EARLIER_ORDER_REVERSED: Text = Text::new("之前的订单已撤销", "Earlier order reversed");
pub const EARLIER_ORDER_DECLINED: Text = Text::new("之前的订单未付款", "Earlier order declined");
pub const PAID_AFTER_CLOSE: Text = Text::new("订单关闭后被扣款", "Paid after close");
pub const REFUND_TO_CHASE: Text = Text::new("待退款 见清零+9", "Refund due, see Clear+9");
pub const ORDER_NOT_SENT: Text = Text::new("订单未能发出", "Order could not be sent");
pub const TAKE_CARD_OR_CASH: Text = Text::new("请刷卡或收现金", "Take card or cash");
pub const CODES_CANNOT_PAY_NOW: Text = Text::new("暂不能扫码付款", "Codes cannot pay now");
pub const NETWORK_DOWN: Text = Text::new("网络不通", "Network down");
pub const STARTUP_ORDERS_PLEASE_WAIT: Text = Text::new("请稍候", "Please wait");
pub const BY_CODE: Text = Text::new("码", "codes");
pub const PAID_AFTER_CLOSE_BROWSE: Text = Text::new("撤销后付款", "Paid after close");
pub const DECLINE_INSUFFICIENT_FUNDS: Text = Text::new("余额不足", "Insufficient funds");
pub const DECLINE_CODE_EXPIRED: Text = Text::new("付款码已过期", "Code expired");
pub const DECLINE_CODE_INVALID: Text = Text::new("付款码无效", "Code invalid");
pub const DECLINE_CODE_USED: Text = Text::new("付款码已使用", "Code already used");
pub const DECLINE_ACCOUNT_FROZEN: Text = Text::new("账户已冻结", "Account frozen");
pub const DECLINE_PAYER_CANCELLED: Text = Text::new("付款人已取消", "Payer cancelled");
pub const DECLINE_OVER_LIMIT: Text = Text::new("超过付款限额", "Over the payer's limit");

/// How a payment method is named on the till.
pub fn method_name(lang: Lang, method: shared::paycode::CodeMethod) -> String {
    use shared::paycode::CodeMethod;
    match method {
        CodeMethod::VirtualCard => METHOD_VIRTUAL_CARD.get(lang),
        CodeMethod::WeChat => METHOD_WECHAT.get(lang),
        CodeMethod::Alipay => METHOD_ALIPAY.get(lang),
        CodeMethod::UnionPay => METHOD_UNIONPAY.get(lang),
        CodeMethod::OfflineQr => METHOD_OFFLINE_QR.get(lang),
    }
}

/// Why a back end declined a code payment, as the till says it.
pub fn decline_reason(lang: Lang, reason: shared::pay::DeclineReason) -> String {
    use shared::pay::DeclineReason;
    match reason {
        DeclineReason::InsufficientFunds => DECLINE_INSUFFICIENT_FUNDS.get(lang),
        DeclineReason::CodeExpired => DECLINE_CODE_EXPIRED.get(lang),
        DeclineReason::CodeInvalid => DECLINE_CODE_INVALID.get(lang),
        DeclineReason::CodeUsed => DECLINE_CODE_USED.get(lang),
        DeclineReason::AccountFrozen => DECLINE_ACCOUNT_FROZEN.get(lang),
        DeclineReason::PayerCancelled => DECLINE_PAYER_CANCELLED.get(lang),
        DeclineReason::OverLimit => DECLINE_OVER_LIMIT.get(lang),
        DeclineReason::Other(code) => match lang {
            Lang::Zh => format!("支付被拒绝({code})"),
            Lang::En => format!("Declined ({code})"),
        },
    }
}

/// The waiting screen's countdown line: seconds left, and that Clear cancels.
pub fn seconds_left(lang: Lang, seconds: u64) -> String {
    match lang {
        Lang::Zh => format!("剩{seconds}秒 清零撤销"),
        Lang::En => format!("{seconds}s left, Clear cancels"),
    }
}

/// The start-up screen's title: how many orders from before the restart are being settled.
pub fn checking_open_orders(lang: Lang, count: usize) -> String {
    match lang {
        Lang::Zh => format!("核对未完成订单 {count}"),
        Lang::En => format!("Checking open orders {count}"),
    }
}

/// Clear+5 / Clear+6's split line: the card's part and the codes' part.
pub fn card_and_code_split(lang: Lang, card: (u32, Fen), code: (u32, Fen)) -> String {
    match lang {
        Lang::Zh => format!(
            "卡{}笔{} 码{}笔{}",
            card.0,
            yuan(card.1),
            code.0,
            yuan(code.1)
        ),
        Lang::En => format!(
            "Card {} {} Code {} {}",
            card.0,
            yuan(card.1),
            code.0,
            yuan(code.1)
        ),
    }
}

// ----- issue 11: the status line's offline state, the offline QR order ------------------------

/// Why the till is offline, on the status line.
pub const OFFLINE_MANUAL: Text = Text::new("手动", "MANUAL");
pub const CUSTOMER_TAP_OR_SCAN: Text = Text::new("请刷卡或扫码", "Tap card or scan");
pub const MERCHANT_TAP_OR_SCAN: Text = Text::new("刷卡或扫码付款", "Card or scan QR");
pub const QR_CLEAR_TO_BACKGROUND: Text = Text::new("清零转后台", "Clear: to background");
pub const NO_QR_KEY_CARDS_ONLY: Text = Text::new("无二维码 仅收卡", "No QR: cards only");
pub const QR_CANNOT_BE_MADE: Text =
    Text::new("无法生成二维码 仅收卡", "No QR possible: cards only");
pub const QR_CODE_CONFIRMED: Text = Text::new("确认码正确", "Code confirmed");
pub const QR_CODE_WRONG: Text = Text::new("确认码错误", "Wrong code");
pub const QR_CODE_SIX_DIGITS: Text = Text::new("确认码为6位数字", "The code has 6 digits");
pub const QR_WAIT_FOR_CAMPUS: Text =
    Text::new("错误次数过多 等联网核对", "Too many: wait for campus");
pub const QR_ORDER_TO_BACKGROUND: Text =
    Text::new("扫码订单转后台 联网后核对", "QR order kept: checked online");
pub const QR_EXPIRED_TO_BACKGROUND: Text =
    Text::new("二维码已过期 联网后核对", "QR expired: checked online");
pub const QR_ORDER_KEPT_CARD_PAYS: Text =
    Text::new("扫码订单保留 联网后核对", "QR order kept for checking");

/// The merchant's line while a QR shows: the confirmation code typed so far.
pub fn qr_code_typed(lang: Lang, typed: &str) -> String {
    let shown = format!("{typed:_<6}");
    match lang {
        Lang::Zh => format!("确认码 {shown}"),
        Lang::En => format!("Code {shown}"),
    }
}

/// A wrong confirmation code: how many tries are left.
pub fn qr_tries_left(lang: Lang, left: u8) -> String {
    match lang {
        Lang::Zh => format!("还可输入{left}次"),
        Lang::En => format!("{left} tries left"),
    }
}

/// The status line's count of pending offline QR orders.
pub fn qr_pending_on_status(lang: Lang, n: usize) -> String {
    match lang {
        Lang::Zh => format!(" 码单{n}"),
        Lang::En => format!(" QR {n}"),
    }
}
/// Clear+9's title of a pending code order.
pub const PENDING_ORDER: Text = Text::new("待核订单", "Pending");
pub const QR_PENDING_CHECKED_ONLINE: Text =
    Text::new("待付款 联网后核对", "Unpaid: checked online");
pub const ORDER_BEING_SETTLED: Text = Text::new("核对中", "Being settled");
// ----- offline virtual cards (flows/offline_code.rs) -------------------------------------------

/// A wallet's code (WeChat, Alipay, UnionPay) offline: the till's own QR is the way.
pub const OFFER_THE_QR: Text = Text::new("请改用扫码付款(二维码)", "Offer the QR code instead");
/// The payer's line when a wallet's code cannot pay offline.
pub const TAP_CARD_OR_SCAN_THE_QR: Text = Text::new("请刷卡或扫二维码", "Tap card or scan the QR");
/// Offline, no virtual-card code is accepted: the campus set no offline limits for codes.
pub const OFFLINE_CODES_NOT_ALLOWED: Text =
    Text::new("校园未开通脱机付款码", "Campus allows no offline codes");
/// Offline, the till holds no campus key to verify a virtual-card code with.
pub const NO_KEYS_TO_VERIFY_OFFLINE: Text =
    Text::new("无校园密钥 无法脱机验码", "No campus keys to verify");
/// A virtual-card code issued later than the till's clock says it is now.
pub const CODE_NOT_YET_VALID: Text = Text::new("付款码时间不符", "Code time is wrong");
pub const CHECK_THE_CLOCK: Text = Text::new("请核对时钟", "Check the clock");
/// The list of codes accepted offline is full of unexpired ones (or the accounts' day tallies).
pub const OFFLINE_CODE_LIST_FULL: Text = Text::new("脱机付款码记录已满", "Offline code list full");
/// The title of an offline virtual-card limit's refusal.
pub const OFFLINE_CODE_LIMIT: Text = Text::new("超过脱机付款码限额", "Offline code limit");
pub const PER_ACCOUNT_A_DAY: Text = Text::new("每账户每日", "Per account a day");
/// The success screen's mark of a sale accepted offline (the campus charges it on upload).
pub const OFFLINE_SALE: Text = Text::new("脱机", "Offline");

/// An offline virtual-card refusal: the account paid `max` codes here today already.
pub fn offline_codes_a_day(lang: Lang, max: u8) -> String {
    match lang {
        Lang::Zh => format!("每账户每日最多{max}笔"),
        Lang::En => format!("At most {max} a day per account"),
    }
}
