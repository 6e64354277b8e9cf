//! The till's command line: `sim` runs the whole till in a terminal on simulated hardware,
//! `script` replays a scripted day headless (see docs/script.md). Both keep their data (journal,
//! settings, simulated cards) in one directory, `pos-data/` unless told otherwise.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pos_firmware::core::config::{Lang, TillConfig};
use pos_firmware::settings::load_settings;
use pos_firmware::sim::cards::PausePoint;
use pos_firmware::sim::script::{parse_local, ScriptRunner, ScriptSetup, DEFAULT_START};

#[derive(Parser)]
#[command(name = "pos-firmware", version, about = "Campus canteen till firmware")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the till in this terminal on simulated hardware (keyboard = keypad, keys tap cards).
    Sim {
        #[command(flatten)]
        common: Common,
    },
    /// Replay a script of keys, taps, codes and time steps headless; print every display change.
    Script {
        /// The script file, or `-` for standard input (lines run as they arrive).
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Local time the virtual clock starts at ("YYYY-MM-DD HH:MM[:SS]").
        #[arg(long, default_value = DEFAULT_START)]
        start: String,
        /// Test hook: stop dead at this point of the next sale (for kill tests).
        #[arg(long, value_enum)]
        pause_at: Option<PauseArg>,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Where the journal, settings (till.toml) and simulated cards live.
    #[arg(long, default_value = "pos-data")]
    data_dir: PathBuf,
    /// Override the settings' language.
    #[arg(long, value_enum)]
    lang: Option<LangArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    Zh,
    En,
}

#[derive(Clone, Copy, ValueEnum)]
enum PauseArg {
    BeforeCardWrite,
    AfterCardWrite,
}

fn load_config(common: &Common) -> anyhow::Result<TillConfig> {
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("cannot create data directory {}", common.data_dir.display()))?;
    let mut config = load_settings(&common.data_dir)?;
    match common.lang {
        Some(LangArg::Zh) => config.lang = Lang::Zh,
        Some(LangArg::En) => config.lang = Lang::En,
        None => {}
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Sim { common } => {
            let config = load_config(&common)?;
            pos_firmware::sim::tui::run(&common.data_dir, config)
        }
        Cmd::Script {
            file,
            common,
            start,
            pause_at,
        } => {
            let config = load_config(&common)?;
            let Some(start) = parse_local(&start) else {
                bail!("--start: '{start}' is not YYYY-MM-DD HH:MM[:SS]");
            };
            let pause_at = pause_at.map(|p| match p {
                PauseArg::BeforeCardWrite => PausePoint::BeforeCardWrite,
                PauseArg::AfterCardWrite => PausePoint::AfterCardWrite,
            });
            let setup = ScriptSetup {
                data_dir: common.data_dir.clone(),
                config,
                start,
                pause_at,
            };
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let opened = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?;
                Box::new(BufReader::new(opened))
            };
            let stdout = std::io::stdout();
            let mut runner = match ScriptRunner::start(setup, stdout.lock()) {
                Ok(runner) => runner,
                Err(e) => {
                    // The till cannot start (journal locked or corrupt, cards file broken): it
                    // must not sell, and scripts tell this apart from a failed expectation.
                    eprintln!("cannot start the till: {e}");
                    std::process::exit(3);
                }
            };
            if let Err(e) = runner.run_lines(reader) {
                eprintln!("{e}");
                std::process::exit(match e {
                    pos_firmware::sim::script::ScriptError::Parse { .. } => 2,
                    pos_firmware::sim::script::ScriptError::Expectation { .. } => 1,
                    _ => 3,
                });
            }
            Ok(())
        }
    }
}
