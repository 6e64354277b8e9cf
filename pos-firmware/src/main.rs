//! The till's command line: `sim` runs the whole till in a terminal on simulated hardware,
//! `script` replays a scripted day headless (see docs/script.md). Both keep their data (journal,
//! settings, simulated cards) in one directory, `pos-data/` unless told otherwise. Both can run
//! the link server the sync daemon connects to (`--link`, see docs/link.md).

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pos_firmware::core::config::{Lang, TillConfig};
use pos_firmware::link::SIM_LINK_SOCKET_NAME;
use pos_firmware::settings::load_settings;
use pos_firmware::sim::cards::PausePoint;
use pos_firmware::sim::script::{parse_local, ScriptRunner, ScriptSetup, DEFAULT_START};

/// The simulator's log file in its data directory (the terminal UI owns standard error's screen).
const SIM_LOG_FILE_NAME: &str = "pos-firmware.log";

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
        /// The link socket the sync daemon connects to [default: DATA_DIR/link.sock].
        #[arg(long, value_name = "PATH")]
        link: Option<PathBuf>,
        /// Run without the link server.
        #[arg(long, conflicts_with = "link")]
        no_link: bool,
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
        /// Run the link server on this socket (off by default); the script then also handles
        /// the link while it waits for lines.
        #[arg(long, value_name = "PATH")]
        link: Option<PathBuf>,
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

/// Log lines (tracing) go to standard error, or to a file when the terminal UI owns the screen;
/// `RUST_LOG` filters them (default: info).
fn init_logging(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Sim {
            common,
            link,
            no_link,
        } => {
            let config = load_config(&common)?;
            init_logging(Some(&common.data_dir.join(SIM_LOG_FILE_NAME)))?;
            let link = match (no_link, link) {
                (true, _) => None,
                (false, Some(path)) => Some(path),
                (false, None) => Some(common.data_dir.join(SIM_LINK_SOCKET_NAME)),
            };
            pos_firmware::sim::tui::run(&common.data_dir, config, link.as_deref())
        }
        Cmd::Script {
            file,
            common,
            start,
            pause_at,
            link,
        } => {
            init_logging(None)?;
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
                link: link.clone(),
            };
            let reader: Box<dyn BufRead + Send> = if file.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
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
            let result = match link {
                Some(_) => runner.run_live(reader),
                None => runner.run_lines(reader),
            };
            if let Err(e) = result {
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
