//! Placeholder replaced by the terminal UI.
use crate::core::config::TillConfig;
use std::path::Path;
pub fn run(_data_dir: &Path, _config: TillConfig) -> anyhow::Result<()> {
    anyhow::bail!("the terminal UI is being written")
}
