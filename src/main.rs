//! The `pumphouse` command: argument parsing and dispatch only. The work is in
//! `pumphouse::cli` (one module per command) and `pumphouse::gateway` (the service).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use clap::{Parser, Subcommand, ValueEnum};
use pumphouse::cli::{self, Report};
use pumphouse::config::{Config, Mode};
use pumphouse::gateway;
use pumphouse::lang::Lang;

#[derive(Parser)]
#[command(
    name = "pumphouse",
    version,
    about = "Campus water-and-power gateway: Modbus meters → readings, ledgers and alerts"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Threads that run the pollers, the sinks and the page: 1 runs them all on one
    /// thread (fewest wake-ups: the default on a box of one or two cores); 0 sizes it to
    /// the machine. The store's writer and blocking work have threads of their own.
    #[arg(long, global = true, env = "PUMPHOUSE_THREADS")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration and print the polling plan.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run the gateway: poll, commit to the local store, deliver to MQTT and InfluxDB.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Poll one device once and print its decoded points.
    Probe {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long, required_unless_present = "discover")]
        device: Option<String>,
        /// Ask the one DL/T 645 meter on this bus for its address (read address, 13H).
        #[arg(long, conflicts_with = "device")]
        discover: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The monthly zone ledger: consumption, balance, revenue, cost and the gap.
    Ledger {
        #[arg(short, long)]
        config: PathBuf,
        /// The month, YYYY-MM (in the site's time zone).
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value_t = FormatArg::Json)]
        format: FormatArg,
        /// Labels in Chinese or English (default: the site's `[site] language`).
        #[arg(long, value_parser = Lang::parse)]
        lang: Option<Lang>,
        /// Where to write it (stdout when absent; required for xlsx).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Record an audited correction (manual reading, meter replacement, tariff change), or list them.
    Correct {
        #[arg(short, long)]
        config: PathBuf,
        /// Who records it (shown in the ledger).
        #[arg(long, default_value = "")]
        by: String,
        /// Why (shown in the ledger).
        #[arg(long, default_value = "")]
        why: String,
        #[command(subcommand)]
        what: cli::correct::What,
    },
    /// Alerts: evaluate the rules over stored readings, list them, acknowledge one.
    Alerts {
        #[arg(short, long)]
        config: PathBuf,
        #[command(subcommand)]
        what: AlertsWhat,
    },
    /// The asset register: `renewal` ranks its pipe sections for renewal.
    Assets {
        #[arg(short, long)]
        config: PathBuf,
        #[command(subcommand)]
        what: AssetsWhat,
    },
    /// Import readings from a CSV (ts,device,point,value) into the store.
    Import {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        csv: PathBuf,
    },
    /// Publish the group feed once: the months, days and alerts that changed since the
    /// last time (--all: every one), retained on the broker for `pumphouse group`.
    Feed {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        all: bool,
    },
    /// Run the group service: every campus gateway's feed, the group's figures and page.
    Group {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the network map: zones, inlets, meters and unmetered uses.
    Topology {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = TopologyFormat::Text)]
        format: TopologyFormat,
    },
    /// List device profiles, or show one.
    Profiles {
        /// Include the profiles defined in this configuration.
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<ProfilesAction>,
    },
    /// Serve a simulated pump house over Modbus TCP.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: String,
        #[command(flatten)]
        sim: SimOpts,
        /// Print a gateway configuration that polls this simulator, and exit.
        #[arg(long)]
        print_config: bool,
        /// Polling interval written by --print-config.
        #[arg(long, default_value = "10s")]
        interval: String,
        /// Serve N identical benchmark devices (unit ids 1..=N) instead of the campus.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=247))]
        fleet: Option<u8>,
        /// Holding registers per fleet device.
        #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=2000))]
        fleet_registers: u16,
    },
    /// Serve a simulated RS-485 line of DL/T 645 electricity and CJ/T 188 water meters.
    SimulateMeters {
        /// The serial port to answer on (one end of a socat pty pair).
        #[arg(long, conflicts_with = "listen", required_unless_present = "listen")]
        serial: Option<PathBuf>,
        /// Answer on TCP instead, as a serial server in transparent mode.
        #[arg(long)]
        listen: Option<String>,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Simulated start time (RFC 3339); default now.
        #[arg(long)]
        start: Option<DateTime<Utc>>,
        /// Print a gateway configuration that polls this line (its `device` is the port
        /// given: write the other end of the pair there), and exit.
        #[arg(long)]
        print_config: bool,
        #[arg(long, default_value = "10s")]
        interval: String,
        /// Serve only these meters (by name; repeatable), e.g. one meter to discover.
        #[arg(long)]
        only: Vec<String>,
    },
    /// Run the simulated pump house and the gateway together, showing live readings.
    Demo {
        #[command(flatten)]
        sim: SimOpts,
        /// How often each device is polled.
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Stop after this long (e.g. 30s); default: until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Print every reading as a JSON line instead of the live summary.
        #[arg(long)]
        json: bool,
        /// The local store (default: pumphouse-demo/store.db in the temp directory).
        #[arg(long)]
        store: Option<PathBuf>,
        /// The page and API (/, /healthz, /metrics, /api/…), or "off".
        #[arg(long, default_value = "127.0.0.1:9109")]
        http: String,
        /// Months of history generated before this one, hourly (0: none). Default: from
        /// January of last year (at least 13 months), so that this year's months all have
        /// a baseline month.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=36))]
        history: Option<u32>,
        /// Also send everything to InfluxDB (1.x API): http://HOST:PORT/DATABASE, the
        /// database created if missing.
        #[arg(long)]
        influxdb: Option<String>,
        /// Also publish everything over MQTT: mqtt://HOST:PORT.
        #[arg(long)]
        mqtt: Option<String>,
        /// A file with the HTTP token: acknowledging alerts on the page and the API needs it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AlertsWhat {
    /// Run the rules over the stored readings (default: all of them) and record the alerts.
    Evaluate {
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        #[arg(long)]
        to: Option<DateTime<Utc>>,
    },
    /// List alerts, newest first.
    List {
        #[arg(long)]
        json: bool,
        /// Only alerts that have not cleared.
        #[arg(long)]
        active: bool,
    },
    /// Acknowledge an alert.
    Ack {
        id: i64,
        #[arg(long)]
        by: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Csv,
    Xlsx,
    /// The three targets and each utility's gap, for a terminal.
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum RenewalFormat {
    Text,
    Csv,
    Json,
}

impl From<RenewalFormat> for cli::assets::RenewalFormat {
    fn from(f: RenewalFormat) -> Self {
        match f {
            RenewalFormat::Text => cli::assets::RenewalFormat::Text,
            RenewalFormat::Csv => cli::assets::RenewalFormat::Csv,
            RenewalFormat::Json => cli::assets::RenewalFormat::Json,
        }
    }
}

#[derive(Subcommand)]
enum AssetsWhat {
    /// The pipe sections ranked for renewal, each with its reason.
    Renewal {
        #[arg(long, value_enum, default_value_t = RenewalFormat::Text)]
        format: RenewalFormat,
    },
    /// The register's valves: last exercised (recorded, or seen moving), and when due.
    Valves {
        #[arg(long)]
        json: bool,
    },
    /// Records work done by hand on a valve or a pipe section of the register, kept as an
    /// audit trail.
    Record {
        /// The valve's or the section's id in [[assets.valves]] or [[assets.pipes]].
        asset: String,
        /// exercise or repair (a pipe section: repair).
        #[arg(long)]
        kind: String,
        /// For a pipe section's repair: the burst or leak alert it ended, which the renewal
        /// list then counts against this section alone.
        #[arg(long)]
        alert: Option<i64>,
        /// The local day it was done (YYYY-MM-DD); default today.
        #[arg(long)]
        on: Option<String>,
        #[arg(long)]
        by: String,
        #[arg(long)]
        why: String,
    },
}

fn assets(path: &std::path::Path, what: AssetsWhat) -> Result<String, Failure> {
    let cfg = config(path, Mode::Check)?;
    Ok(match what {
        AssetsWhat::Renewal { format } => cli::assets::renewal(&cfg, format.into())?,
        AssetsWhat::Valves { json } => cli::valves::valves(&cfg, json)?,
        AssetsWhat::Record { asset, kind, alert, on, by, why } => cli::valves::record(
            &cfg,
            &cli::valves::Record { asset: &asset, kind: &kind, alert, on: on.as_deref(), by: &by, why: &why },
        )?,
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum TopologyFormat {
    Text,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// The schematic the page draws, in the site's language (print it on A3).
    Svg,
}

#[derive(Subcommand)]
enum ProfilesAction {
    /// Print one profile.
    Show { name: String },
}

#[derive(clap::Args)]
struct SimOpts {
    /// Simulated seconds per real second (e.g. 60 runs a day in 24 minutes).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Simulated start time (RFC 3339); default now.
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// A fault: leak:ZONE:M3H, stuck:DEVICE, silent:DEVICE, valve-stuck:DEVICE:PCT, each
    /// with an optional @WHEN (+10m, 23:00, or RFC 3339). Repeatable.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// A TOML file of [[scenario]] tables.
    #[arg(long)]
    scenario_file: Option<PathBuf>,
    #[arg(long, default_value = "Asia/Shanghai")]
    timezone: chrono_tz::Tz,
    #[arg(long, default_value = "demo-campus")]
    site: String,
}

impl SimOpts {
    fn into_args(self) -> anyhow::Result<cli::demo::SimArgs> {
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0) {
            anyhow::bail!("--speed {} must be above 0 and at most 100000", self.speed);
        }
        Ok(cli::demo::SimArgs {
            speed: self.speed,
            start: self.start,
            scenarios: self.scenarios,
            scenario_file: self.scenario_file,
            timezone: self.timezone,
            site: self.site,
        })
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUMPHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Why a command did not succeed.
/// `pumphouse feed`: the group feed once.
async fn feed(path: &std::path::Path, all: bool) -> Result<Report, Failure> {
    let cfg = std::sync::Arc::new(config(path, Mode::Run)?);
    if cfg.mqtt.is_none() {
        return Err(anyhow::anyhow!("{} has no [mqtt]: the group feed goes to a broker", path.display()).into());
    }
    let store = std::sync::Arc::new(cli::open_store(&cfg, true)?);
    let started = std::time::Instant::now();
    let sent = gateway::feed::publish(cfg, store, all, "group-once").await.map_err(anyhow::Error::msg)?;
    Ok(Report::text(format!(
        "{} document(s) published ({} bytes) in {:.1} s\n",
        sent.documents,
        sent.bytes,
        started.elapsed().as_secs_f64()
    )))
}

enum Failure {
    /// The configuration is invalid: every problem, exit code 2.
    Config(pumphouse::config::diag::ConfigErrors),
    /// Anything else: the error and its causes, exit code 1.
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Error(e.into())
    }
}

fn config(path: &std::path::Path, mode: Mode) -> Result<Config, Failure> {
    cli::load_config(path, mode).map_err(Failure::Config)
}

/// The one place a command's result becomes output and an exit code.
fn finish(result: Result<Report, Failure>) -> ExitCode {
    match result {
        Ok(r) => {
            use std::io::Write as _;
            let mut out = std::io::stdout();
            // a closed stdout (piped into head) is not an error of the command
            let _ = out.write_all(r.stdout.as_bytes()).and_then(|()| out.flush());
            eprint!("{}", r.stderr);
            ExitCode::from(r.code)
        }
        Err(Failure::Config(e)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = cli.threads.unwrap_or(if cores <= 2 { 1 } else { 0 });
    let built = match threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => return finish(Err(Failure::Error(anyhow::anyhow!("cannot start the runtime: {e}")))),
    };
    finish(runtime.block_on(run(cli.command)))
}

async fn run(command: Command) -> Result<Report, Failure> {
    match command {
        Command::Check { config: path } => {
            let cfg = config(&path, Mode::Check)?;
            let mut advice = cli::check::losses_advice(&cfg)?.join("\n");
            if !advice.is_empty() {
                advice.push('\n');
            }
            Ok(Report::text(format!("{}\n{advice}{}: valid\n", cli::check::plan_report(&cfg), path.display())))
        }
        Command::Run { config: path } => {
            let cfg = config(&path, Mode::Run)?;
            gateway::run(cfg).await?;
            Ok(Report::default())
        }
        Command::Feed { config: path, all } => feed(&path, all).await,
        Command::Group { config: path } => {
            let cfg = pumphouse::group::config::load(&path).map_err(anyhow::Error::msg)?;
            pumphouse::group::run(cfg).await?;
            Ok(Report::default())
        }
        Command::Probe { config: path, device, json, discover } => {
            let cfg = config(&path, Mode::Check)?;
            let device = match (device, discover) {
                (_, Some(bus)) => return cli::probe::discover(&cfg, &bus).await.map_err(Into::into),
                (Some(d), None) => d,
                (None, None) => return Err(anyhow::anyhow!("give --device NAME or --discover BUS").into()),
            };
            let (text, answered) = cli::probe::probe(&cfg, &device, json).await?;
            if !answered {
                return Ok(Report {
                    stdout: text,
                    stderr: format!("error: device `{device}` did not answer\n"),
                    code: 1,
                });
            }
            Ok(Report::text(text))
        }
        Command::Ledger { config: path, month, format, lang, output } => {
            let cfg = config(&path, Mode::Check)?;
            let format = match format {
                FormatArg::Json => cli::ledger::LedgerFormat::Json,
                FormatArg::Csv => cli::ledger::LedgerFormat::Csv,
                FormatArg::Xlsx => cli::ledger::LedgerFormat::Xlsx,
                FormatArg::Text => cli::ledger::LedgerFormat::Text,
            };
            let lang = lang.unwrap_or(cfg.ledger.language);
            cli::ledger::ledger(&cfg, &month, format, lang, output.as_deref())?;
            Ok(Report::default())
        }
        Command::Correct { config: path, by, why, what } => {
            let cfg = config(&path, Mode::Check)?;
            Ok(cli::correct::run(&cfg, &by, &why, what)?)
        }
        Command::Alerts { config: path, what } => {
            let cfg = config(&path, Mode::Check)?;
            Ok(Report::text(match what {
                AlertsWhat::Evaluate { from, to } => cli::alerts::alerts_evaluate(&cfg, from, to)?,
                AlertsWhat::List { json, active } => cli::alerts::alerts_list(&cfg, json, active)?,
                AlertsWhat::Ack { id, by } => cli::alerts::alerts_ack(&cfg, id, &by)?,
            }))
        }
        Command::Assets { config: path, what } => Ok(Report::text(assets(&path, what)?)),
        Command::Import { config: path, csv } => {
            let cfg = config(&path, Mode::Check)?;
            Ok(cli::import::run(&cfg, &csv)?)
        }
        Command::Topology { config: path, format } => {
            let cfg = config(&path, Mode::Check)?;
            let format = match format {
                TopologyFormat::Text => cli::topology::TopologyFormat::Text,
                TopologyFormat::Dot => cli::topology::TopologyFormat::Dot,
                TopologyFormat::Svg => cli::topology::TopologyFormat::Svg,
            };
            Ok(Report::text(cli::topology::topology(&cfg, format)?))
        }
        Command::Profiles { config: path, action } => {
            let cfg = path.as_deref().map(|c| config(c, Mode::Check)).transpose()?;
            Ok(Report::text(match action {
                None => cli::profiles::profiles_list(cfg.as_ref())?,
                Some(ProfilesAction::Show { name }) => cli::profiles::profiles_show(cfg.as_ref(), &name)?,
            }))
        }
        Command::Simulate { listen, sim, print_config, interval, fleet, fleet_registers } => {
            let args = sim.into_args()?;
            let print = print_config.then_some(interval.as_str());
            cli::demo::simulate(&listen, &args, fleet.map(|n| (n, fleet_registers)), print).await?;
            Ok(Report::default())
        }
        Command::SimulateMeters { serial, listen, speed, start, print_config, interval, only } => {
            if !(speed.is_finite() && speed > 0.0 && speed <= 100_000.0) {
                return Err(anyhow::anyhow!("--speed {speed} must be above 0 and at most 100000").into());
            }
            let serve = match (&serial, &listen) {
                (Some(p), _) => cli::demo::meter_line::Serve::Serial(p),
                (None, Some(a)) => cli::demo::meter_line::Serve::Tcp(a),
                (None, None) => return Err(anyhow::anyhow!("give --serial PATH or --listen HOST:PORT").into()),
            };
            let print = print_config.then_some(interval.as_str());
            cli::demo::meter_line::simulate_meters(serve, speed, start, print, &only).await?;
            Ok(Report::default())
        }
        Command::Demo { sim, interval, duration, json, store, http, history, influxdb, mqtt, token_file } => {
            let options = cli::demo::DemoOptions {
                sim: sim.into_args()?,
                interval,
                duration,
                json,
                store: store.unwrap_or_else(cli::demo::default_demo_store),
                http,
                history,
                influxdb,
                mqtt,
                token_file,
            };
            cli::demo::demo(&options).await?;
            Ok(Report::default())
        }
    }
}
