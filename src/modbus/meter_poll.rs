//! Polling a DL/T 645 or CJ/T 188 meter on its line, with the poller's rules: one
//! request at a time with the line's gap, `retries` for a timeout, a dead meter given up
//! for the cycle after its first unanswered request, and the meter's refusal (its error
//! byte) kept apart from a damaged or foreign frame. A timeout or a bad frame drops the
//! connection, so a late answer is never read as the next one's.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::meter_config::MeterAddress;
use super::meter_profile::Answers;
use super::poller::{Job, Link, PollOutcome};
use super::profile::{MeterItem, Protocol};
use crate::dlt645::{self, link, Edition};
use crate::model::Quality;

/// A request on the wire and how its answer is read.
enum Ask {
    Dlt645 {
        edition: Edition,
        frame: dlt645::frame::Frame,
    },
    Cjt188 {
        frame: crate::cjt188::Frame,
    },
    /// A CJ/T 188 valve command (its answer is the valve's status).
    Valve {
        frame: crate::cjt188::Frame,
    },
}

enum Got {
    Said(Said),
    /// A damaged frame, or one that answers something else.
    Bad(String),
}

/// What the meter said to a request.
enum Said {
    /// The value's bytes (DL/T 645), or the meter-data answer's DATA (CJ/T 188).
    Data(Vec<u8>),
    /// The meter's abnormal answer with its error byte.
    Refused(u8),
    /// Where the valve stands after a valve command.
    Valve(crate::cjt188::Valve),
}

/// FE bytes before a request: four wake meters that sleep between requests (DL/T 645-2007
/// clause 6.2); CJ/T 188 meters take two.
const PREAMBLE_645: usize = 4;
const PREAMBLE_188: usize = 2;

async fn exchange(line: &mut Box<dyn link::Line>, ask: &Ask) -> std::io::Result<Got> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    Ok(match ask {
        Ask::Dlt645 { edition, frame } => {
            let wire = dlt645::frame::encode(frame, PREAMBLE_645).map_err(|e| invalid(e.to_string()))?;
            match link::exchange(line, &wire, link::dlt645).await? {
                Err(e) => Got::Bad(e.to_string()),
                Ok(answer) => match dlt645::read_answer(*edition, frame, &answer) {
                    Ok(Ok(bytes)) => Got::Said(Said::Data(bytes)),
                    Ok(Err(refusal)) => Got::Said(Said::Refused(refusal.0)),
                    Err(mismatch) => Got::Bad(mismatch.to_string()),
                },
            }
        }
        Ask::Cjt188 { frame } => {
            use crate::cjt188::Error;
            let wire = crate::cjt188::encode(frame, PREAMBLE_188).map_err(|e| invalid(e.to_string()))?;
            match link::exchange(line, &wire, link::cjt188).await? {
                Err(e) => Got::Bad(e.to_string()),
                Ok(answer) => match crate::cjt188::read_answer(frame, &answer) {
                    Ok(_) => Got::Said(Said::Data(answer.data)),
                    Err(Error::Abnormal(b)) => Got::Said(Said::Refused(b)),
                    Err(e @ (Error::OtherMeter { .. } | Error::Control(_))) => Got::Bad(e.to_string()),
                    // the meter's own frame whose data does not read: decoded (and
                    // flagged) point by point
                    Err(_) => Got::Said(Said::Data(answer.data)),
                },
            }
        }
        Ask::Valve { frame } => {
            use crate::cjt188::Error;
            let wire = crate::cjt188::encode(frame, PREAMBLE_188).map_err(|e| invalid(e.to_string()))?;
            match link::exchange(line, &wire, link::cjt188).await? {
                Err(e) => Got::Bad(e.to_string()),
                Ok(answer) => match crate::cjt188::valve_answer(frame, &answer) {
                    Ok(v) => Got::Said(Said::Valve(v)),
                    Err(Error::Abnormal(b)) => Got::Said(Said::Refused(b)),
                    Err(e) => Got::Bad(e.to_string()),
                },
            }
        }
    })
}

impl Job {
    /// One request to the meter, with its retries: the answer, or the quality of failing.
    async fn ask(&self, ask: &Ask) -> Result<Said, Quality> {
        let mut last = Quality::Timeout;
        for _ in 0..=self.device.retries {
            let Some(mut conn) = self.connection(true).await else {
                last = Quality::Transport;
                continue;
            };
            let Link::Meter(line) = &mut conn.link else { return Err(Quality::Transport) };
            let result = tokio::time::timeout(self.pool.timeout, exchange(line, ask)).await;
            conn.last_end = Instant::now();
            match result {
                Ok(Ok(Got::Bad(why))) => {
                    // dropped: what follows on the line may belong to this frame
                    self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.failed(why);
                    last = Quality::Transport;
                }
                Ok(Ok(Got::Said(said))) => {
                    self.pool.give(conn);
                    return Ok(said);
                }
                Ok(Err(e)) => {
                    self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.failed(format!("transport error: {e}"));
                    last = Quality::Transport;
                }
                Err(_) => {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    self.stats.failed(format!(
                        "no answer from meter {} within {}",
                        self.device.meter.map(|m| m.to_string()).unwrap_or_default(),
                        humantime::format_duration(self.pool.timeout)
                    ));
                    last = Quality::Timeout;
                }
            }
        }
        Err(last)
    }

    pub(super) async fn poll_meter(&self, meter: MeterAddress) -> PollOutcome {
        let started = Instant::now();
        let points = &self.device.profile.points;
        let mut answered = false;
        let answers = match meter {
            MeterAddress::Dlt645(address) => {
                let edition = match self.device.profile.protocol {
                    Protocol::Dlt645(e) => e,
                    _ => Edition::V2007,
                };
                let mut per_point = Vec::with_capacity(points.len());
                let mut dead: Option<Quality> = None;
                for p in points {
                    let Some(MeterItem::Dlt645 { di, .. }) = p.item else {
                        per_point.push(Err(Quality::DecodeError));
                        continue;
                    };
                    if let Some(q) = &dead {
                        per_point.push(Err(q.clone()));
                        continue;
                    }
                    let ask = Ask::Dlt645 { edition, frame: dlt645::read_request(edition, address, di) };
                    per_point.push(match self.ask(&ask).await {
                        Ok(Said::Data(bytes)) => {
                            answered = true;
                            Ok(bytes)
                        }
                        Ok(Said::Valve(_)) => Err(Quality::Transport),
                        Ok(Said::Refused(err)) => {
                            answered = true;
                            self.stats.count_exception(&[Arc::clone(&p.name)]);
                            Err(Quality::Exception(err))
                        }
                        Err(q) => {
                            dead = Some(q.clone());
                            Err(q)
                        }
                    });
                }
                Answers::Dlt645(per_point)
            }
            MeterAddress::Cjt188 { address, meter_type } => {
                let ask = Ask::Cjt188 { frame: crate::cjt188::read_request(meter_type, address, 0) };
                Answers::Cjt188(match self.ask(&ask).await {
                    Ok(Said::Data(data)) => {
                        answered = true;
                        Ok(data)
                    }
                    Ok(Said::Valve(_)) => Err(Quality::Transport),
                    Ok(Said::Refused(err)) => {
                        answered = true;
                        let names: Vec<Arc<str>> = points.iter().map(|p| p.name.clone()).collect();
                        self.stats.count_exception(&names);
                        Err(Quality::Exception(err))
                    }
                    Err(q) => Err(q),
                })
            }
        };
        let gateway = chrono::Utc::now().with_timezone(&self.tz).naive_local();
        let decoded = self.device.profile.decode_answers(&answers, Some(gateway));
        self.outcome(decoded, answered, Vec::new(), started)
    }
}

impl Job {
    /// Carries out a command on this device ([`super::command`]): the valve of a CJ/T 188
    /// meter, asked with the line's rules and retries; where the valve stands by the
    /// meter's answer.
    pub(super) async fn command(
        &self,
        action: super::command::Action,
    ) -> Result<crate::cjt188::Valve, super::command::CommandError> {
        use super::command::{Action, CommandError};
        let Some(MeterAddress::Cjt188 { address, meter_type }) = self.device.meter else {
            return Err(CommandError::NotAValveMeter(self.device.name.to_string()));
        };
        let open = action == Action::OpenValve;
        let frame = crate::cjt188::valve_request(meter_type, address, 0, open);
        tracing::warn!(device = %self.device.name, action = action.as_str(), "valve command sent");
        match self.ask(&Ask::Valve { frame }).await {
            Ok(Said::Valve(v)) => Ok(v),
            Ok(Said::Refused(b)) => Err(CommandError::Refused(b)),
            Ok(Said::Data(_)) => Err(CommandError::NoAnswer("an answer that is not the valve's".into())),
            Err(q) => Err(CommandError::NoAnswer(q.to_string())),
        }
    }
}

/// Asks the one DL/T 645 meter on `bus` for its address (DL/T 645-2007 clause 7.5: 13H to
/// the wildcard AAAAAAAAAAAA). Only a line with a single meter can answer it cleanly:
/// several answer at once and collide, which reads as no answer or a damaged frame.
pub async fn discover(bus: &super::config::Bus) -> Result<dlt645::frame::Address, String> {
    let mut line = super::transport::open_line(&bus.transport, bus.timeout)
        .await
        .map_err(|e| format!("cannot open {}: {e}", bus.transport))?;
    let wire = dlt645::frame::encode(&dlt645::read_address_request(), PREAMBLE_645).map_err(|e| e.to_string())?;
    match tokio::time::timeout(bus.timeout, link::exchange(&mut line, &wire, link::dlt645)).await {
        Err(_) => Err(format!(
            "no meter answered the read-address request within {}: no DL/T 645-2007 meter on the line, or more than one (their answers collide; discover with one meter connected)",
            humantime::format_duration(bus.timeout)
        )),
        Ok(Err(e)) => Err(format!("the line failed: {e}")),
        Ok(Ok(Err(e))) => Err(format!("a damaged answer ({e}): perhaps several meters answered at once")),
        Ok(Ok(Ok(answer))) => dlt645::address_answer(&answer).map_err(|e| e.to_string()),
    }
}
