//! Commands to a device, carried out by its bus's own task between polls, so that a line
//! still carries one request at a time and a command never collides with a read. Today
//! one command exists: a CJ/T 188 prepaid meter's valve (A017H, open 55H / close 99H).
//!
//! The HTTP layer sends a [`Command`] through [`Commands`] and waits for the meter's
//! answer; the bus task puts the command ahead of the polls that are due, asks the meter
//! with the bus's timeout and retries (opening or closing twice is harmless), and replies
//! with where the valve stands by the meter's own answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::cjt188::Valve;

/// What a command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OpenValve,
    CloseValve,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "open" => Some(Action::OpenValve),
            "close" => Some(Action::CloseValve),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::OpenValve => "open",
            Action::CloseValve => "close",
        }
    }
}

/// A command on its way to a bus task, with where its answer goes.
#[derive(Debug)]
pub struct Command {
    pub device: Arc<str>,
    pub action: Action,
    pub reply: oneshot::Sender<Result<Valve, CommandError>>,
}

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no device `{0}` is configured")]
    UnknownDevice(String),
    #[error("device `{0}` is not a CJ/T 188 meter: only those take a valve command here")]
    NotAValveMeter(String),
    #[error("the meter refused the command (status {0:02X}H): it has no valve, or its prepayment locks it")]
    Refused(u8),
    #[error("the meter did not answer ({0})")]
    NoAnswer(String),
    #[error("the bus of device `{0}` is not running")]
    BusDown(String),
}

/// Each device's way to its bus task.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    by_device: HashMap<Arc<str>, mpsc::Sender<Command>>,
}

/// One bus's end of the command channel; the bus task holds the lock while it runs (a
/// restarted task takes it up again).
pub type Inbox = Arc<tokio::sync::Mutex<mpsc::Receiver<Command>>>;

impl Commands {
    /// A channel for a bus and its devices; returns the bus task's end.
    pub fn add_bus<'a>(&mut self, devices: impl Iterator<Item = &'a Arc<str>>) -> Inbox {
        let (tx, rx) = mpsc::channel(16);
        for d in devices {
            self.by_device.insert(d.clone(), tx.clone());
        }
        Arc::new(tokio::sync::Mutex::new(rx))
    }

    /// Sends `action` to `device` and waits up to `wait` for the meter's answer.
    pub async fn send(&self, device: &str, action: Action, wait: Duration) -> Result<Valve, CommandError> {
        let Some(tx) = self.by_device.get(device) else {
            return Err(CommandError::UnknownDevice(device.to_string()));
        };
        let (reply, answer) = oneshot::channel();
        let cmd = Command { device: device.into(), action, reply };
        let down = || CommandError::BusDown(device.to_string());
        tokio::time::timeout(wait, tx.send(cmd)).await.map_err(|_| down())?.map_err(|_| down())?;
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(down()),
            Err(_) => Err(CommandError::NoAnswer(format!(
                "no reply from the bus within {}",
                humantime::format_duration(wait)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_reaches_its_bus_and_an_unknown_device_is_named() {
        let mut c = Commands::default();
        let name: Arc<str> = "staff-w-1".into();
        let inbox = c.add_bus([name].iter());
        let bus = tokio::spawn(async move {
            let cmd = inbox.lock().await.recv().await.unwrap();
            assert_eq!((&*cmd.device, cmd.action), ("staff-w-1", Action::CloseValve));
            let _ = cmd.reply.send(Ok(Valve::Closed));
        });
        assert_eq!(c.send("staff-w-1", Action::CloseValve, Duration::from_secs(5)).await, Ok(Valve::Closed));
        bus.await.unwrap();
        assert_eq!(
            c.send("nobody", Action::OpenValve, Duration::from_secs(1)).await,
            Err(CommandError::UnknownDevice("nobody".into()))
        );
        // the bus task gone: said so, not waited on forever
        assert_eq!(
            c.send("staff-w-1", Action::OpenValve, Duration::from_secs(1)).await,
            Err(CommandError::BusDown("staff-w-1".into()))
        );
    }
}
