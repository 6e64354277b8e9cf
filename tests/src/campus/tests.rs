//! The campus simulator's own tests (its default configuration).

use super::*;

#[test]
fn the_default_configuration_announces_the_simulated_campus_key_and_default_timings() {
    use pos_firmware::sim::payments::{SIM_CAMPUS_KEY_ID, SIM_CAMPUS_KEY_SEED};
    let example = include_str!("../../../docs/campus-config.example.toml");
    let config = crate::campus_files::parse_campus_config(example).unwrap();
    let published = with_sim_code_payments(config);
    assert_eq!(published.check(), Ok(()));
    let payments = published.payments.clone().unwrap();
    assert_eq!(
        (payments.query_interval_ms, payments.pay_window_ms),
        (3_000, 60_000)
    );
    let signed = shared::paycode::signing_key_from_seed(SIM_CAMPUS_KEY_SEED).verifying_key();
    assert_eq!(published.virtual_card_key(SIM_CAMPUS_KEY_ID), Some(signed));
    // A configuration that sets its own settings keeps them.
    assert_eq!(with_sim_code_payments(published.clone()), published);
}
