//! `pumphouse simulate-meters`: a line of DL/T 645 and CJ/T 188 meters on a serial port
//! (one end of a socat pty pair) or on TCP, as a serial server in transparent mode.

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_serial::SerialPortBuilderExt;

use crate::sim::{meters, Clock};

/// Where the line is served.
pub enum Serve<'a> {
    Serial(&'a Path),
    Tcp(&'a str),
}

pub async fn simulate_meters(
    serve: Serve<'_>,
    speed: f64,
    start: Option<DateTime<Utc>>,
    print_config: Option<&str>,
    only: &[String],
) -> anyhow::Result<()> {
    let mut line = meters::dormitory_line();
    if !only.is_empty() {
        let names: Vec<String> = line.iter().map(|m| m.name().to_string()).collect();
        line.retain(|m| only.iter().any(|o| o == m.name()));
        if line.len() != only.len() {
            anyhow::bail!("--only names a meter the line does not have; its meters: {}", names.join(", "));
        }
    }
    if let Some(interval) = print_config {
        let bus = match &serve {
            Serve::Serial(p) => format!(
                "transport = \"rtu\"\ndevice = \"{}\"   # the other end of the pair\nbaud = 2400\nparity = \"even\"",
                p.display()
            ),
            Serve::Tcp(a) => format!("transport = \"rtu-over-tcp\"\naddress = \"{a}\"\nbaud = 2400"),
        };
        print!("{}", meters::gateway_config(&line, "demo-campus", &bus, interval));
        return Ok(());
    }
    let clock = Clock::new(start.unwrap_or_else(Utc::now), speed);
    match serve {
        Serve::Serial(path) => {
            let mut port = tokio_serial::new(path.to_string_lossy(), 2400)
                .parity(tokio_serial::Parity::Even)
                .open_native_async()
                .with_context(|| format!("cannot open {}", path.display()))?;
            eprintln!("serving {} meters on {}", line.len(), path.display());
            meters::serve_line(&mut port, &line, &meters::Valves::default(), &clock).await?;
        }
        Serve::Tcp(address) => {
            let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
            eprintln!("serving {} meters on {}", line.len(), listener.local_addr()?);
            serve_tcp(listener, line, clock, tokio_util::sync::CancellationToken::new()).await;
        }
    }
    Ok(())
}

/// Serves `line` to every connection on `listener`, as a serial server in transparent
/// mode would, until `cancel` fires; the valves' states are shared by the connections.
pub async fn serve_tcp(
    listener: TcpListener,
    line: Vec<meters::Meter>,
    clock: Clock,
    cancel: tokio_util::sync::CancellationToken,
) {
    let valves = meters::Valves::default();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "the meter line cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (line, valves, stop) = (line.clone(), valves.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                r = meters::serve_line(&mut stream, &line, &valves, &clock) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "meter line connection ended");
                    }
                }
            }
        });
    }
}
